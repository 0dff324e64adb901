//! Converging one network: fetch its data from the server, make sure the
//! DHCP port, the namespace, the device and dnsmasq match it, and report
//! the ports DHCP now serves. Also the opposite, tearing a network down.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::sync::mpsc;

use super::config::DhcpAgentConfig;
use super::device::{self, DeviceSpec, Plugger};
use super::dnsmasq::{self, ConfDir, Rendered};
use super::error::{DhcpError, Result};
use super::files;
use super::model::{NetModel, Port};
use super::release;
use super::rpc::PluginApi;

/// What the agent remembers about a network it serves.
#[derive(Debug, Clone)]
pub struct NetState {
    /// The DHCP device.
    pub device: DeviceSpec,
    /// dnsmasq's command line.
    pub cmdline: Vec<String>,
    /// The files dnsmasq was last given.
    pub rendered: Rendered,
    /// dnsmasq's pid.
    pub pid: i32,
    /// Ports reported ready, with the revision reported.
    pub reported: HashMap<String, i64>,
    /// Ports with host entries.
    pub ports: usize,
    /// DHCP-enabled subnets.
    pub subnets: usize,
}

/// What a network job produced.
#[derive(Debug)]
pub enum Outcome {
    /// The network is served; these ports just became ready.
    Serving(Box<NetState>, Vec<String>),
    /// The network is not (or no longer) served here.
    NotServed,
}

/// What the network jobs share.
#[derive(Debug)]
pub struct Ctx {
    /// The configuration.
    pub cfg: Arc<DhcpAgentConfig>,
    /// The server.
    pub plugin: PluginApi,
    /// The host's OVS.
    pub plugger: Plugger,
    /// Where dnsmasq exits are reported: (network id, pid).
    pub exits: mpsc::UnboundedSender<(String, i32)>,
    /// `dhcp<uuid5(host)>-`, the device_id prefix of this agent's DHCP ports.
    pub device_id_prefix: String,
}

/// The version 5 UUID of `name` in the DNS namespace (Python's
/// `uuid.uuid5(uuid.NAMESPACE_DNS, name)`).
pub fn uuid5_dns(name: &str) -> String {
    const NAMESPACE_DNS: [u8; 16] =
        [0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8];
    let mut h = Sha1::new();
    h.update(NAMESPACE_DNS);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &x[0..8], &x[8..12], &x[12..16], &x[16..20], &x[20..32])
}

/// Neutron's DHCP port `device_id` prefix of a host: `dhcp` + the version 5
/// UUID of the host's short name + `-` (the network id follows).
pub fn device_id_prefix(host: &str) -> String {
    format!("dhcp{}-", uuid5_dns(host.split('.').next().unwrap_or(host)))
}

impl Ctx {
    /// The qdhcp namespace of a network.
    pub fn netns(&self, network_id: &str) -> String {
        format!("{}{network_id}", self.cfg.netns_prefix)
    }

    /// The DHCP port `device_id` of this agent on a network.
    pub fn device_id(&self, network_id: &str) -> String {
        format!("{}{network_id}", self.device_id_prefix)
    }

    /// The conf dir of a network.
    pub fn conf_dir(&self, network_id: &str) -> ConfDir {
        ConfDir::new(&self.cfg.state_dir, network_id)
    }
}

/// The DHCP device of `port` on `net`: its addresses on the DHCP subnets
/// and the default gateway per IP version (first DHCP subnet with a
/// gateway inside it, as Neutron sets the qdhcp namespace's default route).
fn device_spec(net: &NetModel, port: &Port) -> DeviceSpec {
    let mut cidrs = Vec::new();
    let mut gateways: Vec<IpAddr> = Vec::new();
    for f in &port.fixed_ips {
        let Some(s) = net.subnet(&f.subnet_id).filter(|s| s.enable_dhcp) else { continue };
        cidrs.push(format!("{}/{}", f.ip_address, s.cidr.prefix_len()));
        if let Some(g) = s.gateway_ip.filter(|g| s.cidr.contains(g)) {
            if !gateways.iter().any(|x| x.is_ipv4() == g.is_ipv4()) {
                gateways.push(g);
            }
        }
    }
    DeviceSpec {
        port_id: port.id.clone(),
        network_id: net.id.clone(),
        mac: port.mac_address.clone(),
        mtu: u32::try_from(net.mtu).ok().filter(|m| *m >= 68),
        cidrs,
        gateways,
    }
}

/// Makes `network_id` served as the server describes it. `prev` is what
/// the agent knew; `verify` re-checks the devices and process even when
/// nothing seems to have changed (full resyncs).
pub async fn converge(ctx: &Ctx, network_id: &str, prev: Option<NetState>, verify: bool) -> Result<Outcome> {
    let Some(info) = ctx.plugin.network_info(network_id).await? else {
        tracing::info!(network = network_id, "network gone: tearing DHCP down");
        teardown(ctx, network_id, prev.as_ref(), true).await?;
        return Ok(Outcome::NotServed);
    };
    let mut net = NetModel::from_wire(&info)?;
    let dhcp_subnets: BTreeSet<String> = net.dhcp_subnets().map(|s| s.id.clone()).collect();
    if dhcp_subnets.is_empty() {
        tracing::info!(network = network_id, "no DHCP-enabled subnet: tearing DHCP down");
        teardown(ctx, network_id, prev.as_ref(), true).await?;
        return Ok(Outcome::NotServed);
    }
    // The DHCP port: ours (device_id), bound here, with an address on every DHCP subnet.
    let device_id = ctx.device_id(network_id);
    let mine = net
        .ports
        .iter()
        .find(|p| p.device_id == device_id && p.device_owner == neutrino_lib::defs::DEVICE_OWNER_DHCP)
        .cloned();
    let port = match mine {
        Some(p)
            if p.host == ctx.cfg.host
                && p.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect::<BTreeSet<_>>() == dhcp_subnets =>
        {
            p
        }
        _ => {
            let ids: Vec<String> = dhcp_subnets.iter().cloned().collect();
            let p = match ctx.plugin.create_dhcp_port(network_id, &device_id, &ids).await {
                Ok(p) => p,
                Err(DhcpError::Rpc(neutrino_rpc::RpcError::Remote { kind, .. }))
                    if kind == "NetworkNotFound" || kind == "SubnetNotFound" =>
                {
                    // Deleted meanwhile: its removal notification follows.
                    tracing::info!(network = network_id, "network gone while creating the DHCP port");
                    teardown(ctx, network_id, prev.as_ref(), true).await?;
                    return Ok(Outcome::NotServed);
                }
                Err(e) => return Err(e),
            };
            tracing::info!(network = network_id, port = %p.id, "DHCP port ready on the server");
            net.upsert_port(p.clone());
            p
        }
    };
    let spec = device_spec(&net, &port);
    let netns = ctx.netns(network_id);
    if let Some(old) = prev.as_ref().filter(|o| o.device.port_id != spec.port_id) {
        // Another DHCP port replaced ours: drop the old device.
        ctx.plugger.unplug(&old.device.tap()).await?;
        let _ = crate::link::delete_link(Some(&netns), &old.device.ns_dev()).await;
    }
    ctx.plugger.ensure(&netns, &spec, prev.as_ref().map(|p| &p.device), verify).await?;

    let dir = ctx.conf_dir(network_id);
    dir.ensure()?;
    let rendered = Rendered::of(&net);
    let cmdline = dnsmasq::command_line(&ctx.cfg, &net, &dir, &spec.ns_dev());
    let running = match prev.as_ref() {
        Some(p) if !verify && dnsmasq::alive(p.pid) => Some(p.pid),
        _ => dnsmasq::running_pid(&dir),
    };
    let changed = prev.as_ref().is_none_or(|p| p.rendered != rendered || verify) && rendered.differs(&dir);
    let pid = match running {
        Some(pid) if same_cmdline(prev.as_ref(), pid, &cmdline, verify) => {
            if changed && dnsmasq::reload_crashes(&dir.read("host")) {
                // dnsmasq 2.90 dies on SIGHUP after serving a tagged host entry.
                tracing::debug!(network = network_id, pid, "tagged host entries: restarting dnsmasq instead of SIGHUP");
                restart(ctx, network_id, Some(pid), &dir, &net, &rendered, &netns, &cmdline).await?
            } else if changed {
                release_stale(network_id, &net, &dir, &netns, &spec).await;
                rendered.write(&dir)?;
                dnsmasq::reload(pid)?;
                tracing::debug!(network = network_id, pid, "dnsmasq reloaded");
                pid
            } else {
                pid
            }
        }
        other => {
            if let Some(pid) = other {
                tracing::info!(network = network_id, pid, "dnsmasq configuration changed: restarting it");
            }
            restart(ctx, network_id, other, &dir, &net, &rendered, &netns, &cmdline).await?
        }
    };

    // Ports whose host entry is live now.
    let mut reported = prev.map(|p| p.reported).unwrap_or_default();
    reported.retain(|id, _| net.ports.iter().any(|p| p.id == *id));
    let mut ready = Vec::new();
    for p in &net.ports {
        let served = p.requires_dhcp()
            && p.device_owner != neutrino_lib::defs::DEVICE_OWNER_DHCP
            && p.fixed_ips.iter().any(|f| dhcp_subnets.contains(&f.subnet_id));
        if served && p.status != "ACTIVE" && reported.get(&p.id) != Some(&p.revision_number) {
            reported.insert(p.id.clone(), p.revision_number);
            ready.push(p.id.clone());
        }
    }
    let ports = net.ports.iter().filter(|p| p.requires_dhcp()).count();
    Ok(Outcome::Serving(
        Box::new(NetState { device: spec, cmdline, rendered, pid, reported, ports, subnets: dhcp_subnets.len() }),
        ready,
    ))
}

/// Releases the leases of ports that are gone (or moved), which would keep
/// their addresses from the next owner, and waits until dnsmasq processed
/// that (before it re-reads its files). Failures are logged only.
async fn release_stale(network_id: &str, net: &NetModel, dir: &ConfDir, netns: &str, spec: &DeviceSpec) {
    let stale = release::stale_leases(net, &release::read_leases(&dir.read("leases")));
    if stale.is_empty() {
        return;
    }
    let which: Vec<String> = stale.iter().map(|l| format!("{} {}", l.mac, l.ip)).collect();
    match release::release(netns, &spec.ns_dev(), &spec.cidrs, stale.clone()).await {
        Ok(n) => {
            let gone = release::wait_released(&dir.file("leases"), &stale, Duration::from_millis(500)).await;
            tracing::debug!(network = network_id, leases = n, ?which, gone, "released stale leases");
        }
        Err(e) => tracing::warn!(network = network_id, error = %e, "releasing stale leases failed"),
    }
}

/// (Re)starts dnsmasq with fresh files: the lease file is rebuilt from the
/// ports (leases of ports that are gone disappear with it).
#[allow(clippy::too_many_arguments)]
async fn restart(
    ctx: &Ctx,
    network_id: &str,
    old: Option<i32>,
    dir: &ConfDir,
    net: &NetModel,
    rendered: &Rendered,
    netns: &str,
    cmdline: &[String],
) -> Result<i32> {
    if let Some(pid) = old {
        dnsmasq::stop(pid, Duration::from_secs(3)).await;
    }
    rendered.write(dir)?;
    dir.write_if_changed("leases", &files::init_leases(net, &dir.read("leases")))?;
    start(ctx, network_id, dir, netns, cmdline).await
}

fn same_cmdline(prev: Option<&NetState>, pid: i32, cmdline: &[String], verify: bool) -> bool {
    match prev {
        Some(p) if !verify && p.pid == pid => p.cmdline == cmdline,
        _ => dnsmasq::process_args(pid).is_some_and(|a| a == cmdline),
    }
}

async fn start(ctx: &Ctx, network_id: &str, dir: &ConfDir, netns: &str, cmdline: &[String]) -> Result<i32> {
    let (pid, mut child) = dnsmasq::spawn(&ctx.cfg, dir, netns, cmdline)?;
    if let Err(e) = dnsmasq::wait_started(dir, pid, &mut child, Duration::from_secs(5)).await {
        dnsmasq::stop(pid, Duration::from_secs(1)).await;
        let _ = child.wait().await;
        return Err(e);
    }
    tracing::info!(network = network_id, pid, "dnsmasq started");
    let exits = ctx.exits.clone();
    let id = network_id.to_string();
    tokio::spawn(async move {
        let status = child.wait().await;
        tracing::debug!(network = %id, pid, ?status, "dnsmasq exited");
        let _ = exits.send((id, pid));
    });
    Ok(pid)
}

/// Stops serving a network here: dnsmasq, device, namespace, files and,
/// with `release`, the DHCP port on the server.
pub async fn teardown(ctx: &Ctx, network_id: &str, prev: Option<&NetState>, release: bool) -> Result<()> {
    let dir = ctx.conf_dir(network_id);
    if let Some(pid) =
        prev.map(|p| p.pid).filter(|p| dnsmasq::running_pid(&dir) == Some(*p)).or_else(|| dnsmasq::running_pid(&dir))
    {
        dnsmasq::stop(pid, Duration::from_secs(3)).await;
    }
    let mut taps: Vec<String> = prev.map(|p| vec![p.device.tap()]).unwrap_or_default();
    for (tap, net) in ctx.plugger.plugged().await? {
        if net == network_id && !taps.contains(&tap) {
            taps.push(tap);
        }
    }
    for tap in &taps {
        ctx.plugger.unplug(tap).await?;
    }
    device::delete_namespace(&ctx.netns(network_id)).await?;
    dir.remove()?;
    if release {
        ctx.plugin.release_dhcp_port(network_id, &ctx.device_id(network_id)).await?;
    }
    tracing::info!(network = network_id, release, "DHCP torn down");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_is_neutrons() {
        // Python's documented example: uuid5(NAMESPACE_DNS, "python.org").
        assert_eq!(uuid5_dns("python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
        assert_eq!(device_id_prefix("h1.example.org"), format!("dhcp{}-", uuid5_dns("h1")));
    }
}
