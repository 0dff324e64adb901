//! The DHCP port's device: a veth pair `tap<port id[:11]>` (on the host's
//! integration bridge, plugged os-vif style with `external_ids:iface-id`
//! so the host's L2 agent wires it) ↔ `ns-<port id[:11]>` (in the qdhcp
//! namespace, with the port's MAC, MTU and addresses). Neutron's
//! `OVSInterfaceDriver` with `ovs_use_veth = True` names them the same way.
//!
//! The host's OVS may be a simulated one: its devices then live in the
//! host's namespace ([`DhcpAgentConfig::bridge_netns`]) and its OVSDB is
//! reached through its own socket; the qdhcp namespaces are global.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use super::config::DhcpAgentConfig;
use super::error::{DhcpError, Result};
use crate::cmd::Cmd;
use crate::link::IpBatch;
use crate::netns::Netns;
use crate::ovsdb::{Client, Commit, InterfaceSpec, PortSpec};

/// `external_ids` key marking the OVS ports of this agent's DHCP devices
/// (its value is the network id), for cleaning up after a crash.
pub const OVS_NETWORK_KEY: &str = "neutrino-dhcp-network";

/// What the DHCP device of a network must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The DHCP port id.
    pub port_id: String,
    /// The network id.
    pub network_id: String,
    /// The port's MAC.
    pub mac: String,
    /// MTU (None: leave the default).
    pub mtu: Option<u32>,
    /// Addresses with prefix length.
    pub cidrs: Vec<String>,
    /// Default gateways (at most one per IP version).
    pub gateways: Vec<IpAddr>,
}

impl DeviceSpec {
    /// The bridge-side device (`tap` + 11 characters of the port id).
    pub fn tap(&self) -> String {
        tap_name(&self.port_id)
    }

    /// The device inside the namespace (`ns-` + 11 characters of the port id).
    pub fn ns_dev(&self) -> String {
        format!("ns-{}", short_id(&self.port_id))
    }
}

fn short_id(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(11).collect()
}

/// The bridge-side device name of a DHCP port.
pub fn tap_name(port_id: &str) -> String {
    format!("tap{}", short_id(port_id))
}

/// The current state of a link in a namespace (from `ip -j addr show`).
#[derive(Debug, Clone, Default)]
struct LinkNow {
    mac: String,
    mtu: u32,
    up: bool,
    cidrs: Vec<String>,
}

fn parse_addr_show(text: &str) -> BTreeMap<String, LinkNow> {
    let v: Value = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for l in v.as_array().into_iter().flatten() {
        let Some(name) = l.get("ifname").and_then(Value::as_str) else { continue };
        let mut now = LinkNow {
            mac: l.get("address").and_then(Value::as_str).unwrap_or("").to_string(),
            mtu: l.get("mtu").and_then(Value::as_u64).unwrap_or(0) as u32,
            up: l.get("flags").and_then(Value::as_array).is_some_and(|f| f.iter().any(|x| x == "UP")),
            cidrs: vec![],
        };
        for a in l.get("addr_info").and_then(Value::as_array).into_iter().flatten() {
            if a.get("scope").and_then(Value::as_str) == Some("link") {
                continue;
            }
            if let (Some(ip), Some(p)) =
                (a.get("local").and_then(Value::as_str), a.get("prefixlen").and_then(Value::as_u64))
            {
                now.cidrs.push(format!("{ip}/{p}"));
            }
        }
        out.insert(name.to_string(), now);
    }
    out
}

/// Plugs and unplugs DHCP devices on one host.
#[derive(Debug)]
pub struct Plugger {
    cfg: Arc<DhcpAgentConfig>,
    ovs: tokio::sync::OnceCell<Client>,
}

impl Plugger {
    /// A plugger for the host of `cfg` (OVSDB is connected on first use).
    pub fn new(cfg: Arc<DhcpAgentConfig>) -> Plugger {
        Plugger { cfg, ovs: tokio::sync::OnceCell::new() }
    }

    /// The host's OVSDB client.
    pub async fn ovsdb(&self) -> Result<&Client> {
        Ok(self.ovs.get_or_try_init(|| Client::connect(self.cfg.ovsdb.clone())).await?)
    }

    fn bridge_ip(&self) -> IpBatch {
        IpBatch::new(self.cfg.bridge_netns.as_deref())
    }

    /// Makes the namespace and the device match `spec`. With `verify`
    /// false and `known == spec` (nothing changed since the last time) it
    /// only checks that the namespace still exists.
    pub async fn ensure(&self, netns: &str, spec: &DeviceSpec, known: Option<&DeviceSpec>, verify: bool) -> Result<()> {
        let ns = Netns::new(netns);
        if !verify && known == Some(spec) && ns.exists() {
            return Ok(());
        }
        let (tap, dev) = (spec.tap(), spec.ns_dev());
        let fresh_ns = !ns.exists();
        if fresh_ns {
            Netns::create_many(&[netns.to_string()]).await?;
        }
        let now = if fresh_ns {
            BTreeMap::new()
        } else {
            let out = ns.ip_cmd(&["-j", "addr", "show"]).run().await?;
            parse_addr_show(&out.stdout)
        };
        let mut b = ns.ip();
        let mut created = false;
        let current = match now.get(&dev) {
            Some(c) => c.clone(),
            None => {
                self.create_veth(netns, spec, &tap, &dev).await?;
                created = true;
                LinkNow { mac: spec.mac.clone(), mtu: spec.mtu.unwrap_or(0), ..LinkNow::default() }
            }
        };
        if now.get("lo").is_none_or(|l| !l.up) {
            b.link_up("lo");
        }
        if !current.mac.eq_ignore_ascii_case(&spec.mac) {
            b.set_mac(&dev, &spec.mac);
        }
        if let Some(m) = spec.mtu.filter(|m| *m != current.mtu) {
            b.set_mtu(&dev, m);
        }
        if !current.up {
            b.link_up(&dev);
        }
        for c in current.cidrs.iter().filter(|c| !spec.cidrs.contains(c)) {
            b.line(format!("addr del {c} dev {dev}"));
        }
        for c in spec.cidrs.iter().filter(|c| created || !current.cidrs.contains(c)) {
            // No DAD for IPv6: the address is the server's allocation.
            let extra = if c.contains(':') { " nodad" } else { "" };
            b.line(format!("addr replace {c} dev {dev}{extra}"));
        }
        for g in &spec.gateways {
            b.route_replace("default", Some(&g.to_string()), Some(&dev));
        }
        b.run().await?;
        if fresh_ns || created {
            self.tune(&ns, &dev).await;
        }
        self.plug_ovs(spec, &tap).await?;
        tracing::debug!(netns, device = %dev, fresh_ns, created, "DHCP device ready");
        Ok(())
    }

    async fn create_veth(&self, netns: &str, spec: &DeviceSpec, tap: &str, dev: &str) -> Result<()> {
        let mut b = self.bridge_ip();
        b.veth(tap, dev, Some(netns), Some(&spec.mac), spec.mtu).link_up(tap);
        if let Err(first) = b.run().await {
            // A leftover bridge-side device of an earlier run: replace it.
            if crate::link::delete_link(self.cfg.bridge_netns.as_deref(), tap).await? {
                tracing::info!(device = tap, "replaced a stale DHCP device");
                b.run().await?;
            } else {
                return Err(first.into());
            }
        }
        Ok(())
    }

    /// Namespace settings: no IPv6 autoconfiguration from router
    /// advertisements (addresses are static), and no TX checksum offload on
    /// the device — as Neutron's CHECKSUM fill rule, so DHCP replies cross
    /// a userspace datapath with valid UDP checksums.
    async fn tune(&self, ns: &Netns, dev: &str) {
        let mut script = String::new();
        if std::path::Path::new("/proc/sys/net/ipv6").exists() {
            script.push_str(&format!(
                "sysctl -q -w net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.{dev}.accept_ra=0; "
            ));
        }
        if crate::cmd::which("ethtool") {
            script.push_str(&format!("ethtool -K {dev} tx off >/dev/null 2>&1; "));
        }
        script.push_str("true");
        match ns.output(&["sh", "-c", &script]).await {
            Ok(o) if !o.success => {
                tracing::warn!(netns = %ns.name(), stderr = %o.stderr, "tuning the DHCP namespace failed")
            }
            Err(e) => tracing::warn!(netns = %ns.name(), error = %e, "tuning the DHCP namespace failed"),
            _ => {}
        }
    }

    async fn plug_ovs(&self, spec: &DeviceSpec, tap: &str) -> Result<()> {
        let db = self.ovsdb().await?;
        let mut want = BTreeMap::new();
        want.insert("iface-id".to_string(), spec.port_id.clone());
        want.insert("attached-mac".to_string(), spec.mac.clone());
        want.insert("iface-status".to_string(), "active".to_string());
        want.insert(OVS_NETWORK_KEY.to_string(), spec.network_id.clone());
        match db.find_interface(tap).await? {
            None => {
                let mut iface = InterfaceSpec::system(tap);
                for (k, v) in &want {
                    iface = iface.external_id(k, v);
                }
                db.add_port(&self.cfg.integration_bridge, &PortSpec::single(iface), Commit::NoWait).await?;
                tracing::info!(device = tap, bridge = %self.cfg.integration_bridge, port = %spec.port_id, "DHCP device plugged");
            }
            Some(i) => {
                if want.iter().any(|(k, v)| i.external_ids.get(k) != Some(v)) {
                    db.set_interface_external_ids(tap, &want).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes the OVS port of a DHCP device (the namespace is deleted by
    /// the caller, which removes the veth pair).
    pub async fn unplug(&self, tap: &str) -> Result<()> {
        let db = self.ovsdb().await?;
        db.del_port(tap, Commit::NoWait).await?;
        // A leftover bridge-side device (its peer namespace is gone first
        // normally, taking it with it).
        let _ = crate::link::delete_link(self.cfg.bridge_netns.as_deref(), tap).await;
        Ok(())
    }

    /// The DHCP devices plugged by this agent on the bridge: (OVS port name, network id).
    pub async fn plugged(&self) -> Result<Vec<(String, String)>> {
        let db = self.ovsdb().await?;
        Ok(db
            .list_interfaces()
            .await?
            .into_iter()
            .filter_map(|i| i.external_ids.get(OVS_NETWORK_KEY).cloned().map(|n| (i.name.clone(), n)))
            .collect())
    }
}

/// Deletes a qdhcp namespace after killing every process still inside it.
pub async fn delete_namespace(netns: &str) -> Result<()> {
    let ns = Netns::new(netns);
    if !ns.exists() {
        return Ok(());
    }
    for pid in ns.pids() {
        super::dnsmasq::stop(pid, std::time::Duration::from_secs(2)).await;
    }
    ns.delete().await.map_err(DhcpError::from)
}

trait IpCmd {
    fn ip_cmd(&self, args: &[&str]) -> Cmd;
}

impl IpCmd for Netns {
    fn ip_cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new("ip").args(["-n", self.name()]).args(args.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let s = DeviceSpec {
            port_id: "0123456789ab-cdef".into(),
            network_id: "n".into(),
            mac: "fa:16:3e:00:00:01".into(),
            mtu: None,
            cidrs: vec![],
            gateways: vec![],
        };
        assert_eq!(s.tap(), "tap0123456789a");
        assert_eq!(s.ns_dev(), "ns-0123456789a");
    }

    #[test]
    fn parses_ip_addr_show() {
        let t = r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
            {"ifindex":2,"ifname":"ns-x","flags":["BROADCAST","UP"],"mtu":1450,"address":"fa:16:3e:00:00:02","addr_info":[{"family":"inet","local":"10.0.0.2","prefixlen":24,"scope":"global"},{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#;
        let m = parse_addr_show(t);
        assert!(m["lo"].up);
        assert_eq!(m["ns-x"].cidrs, vec!["10.0.0.2/24"]);
        assert_eq!(m["ns-x"].mtu, 1450);
    }
}
