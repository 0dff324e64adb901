//! `neutrino vm`: plays Nova's part on the simulated hosts of `neutrino up
//! --sim-hosts N` — creates a port through the API (`binding:host_id`,
//! `device_owner compute:nova`, `device_id`), plugs a "VM" (a network
//! namespace) into that host's br-int as os-vif does, waits until the port
//! is ACTIVE, configures the address, and tells Nova when there is one.
//!
//! ```text
//! neutrino vm boot NAME --network NET [--host HOST] [--fixed-ip IP] [--security-group SG]…
//! neutrino vm exec NAME -- CMD…
//! neutrino vm list
//! neutrino vm delete NAME
//! ```

mod api;
mod plug;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::sim::SimRecord;
use api::Api;
use plug::VmRecord;

/// Arguments of `neutrino vm`.
#[derive(Args)]
pub struct VmArgs {
    /// State directory of the running `neutrino up --sim-hosts N`.
    #[arg(long, env = "NEUTRINO_STATE_DIR", global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: VmCmd,
}

#[derive(Subcommand)]
enum VmCmd {
    /// Creates a port and a VM on a simulated host, waits until it is ACTIVE.
    Boot(BootArgs),
    /// Runs a command inside a VM (its exit status is the command's).
    Exec {
        /// The VM.
        name: String,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Lists the VMs.
    List,
    /// Unplugs and deletes a VM and its port.
    Delete {
        /// The VM.
        name: String,
    },
}

#[derive(Args)]
struct BootArgs {
    /// VM name (letters, digits, `-`, `_`; at most 40).
    name: String,
    /// Network name or id (the port's network with `--port`).
    #[arg(long, required_unless_present = "port")]
    network: Option<String>,
    /// An existing port to use (Nova's `--nic port-id=`): bound to the host
    /// at boot, unbound (not deleted) at `vm delete`.
    #[arg(long, conflicts_with_all = ["fixed_ip", "security_groups"])]
    port: Option<String>,
    /// Simulated host (default: the one with the fewest VMs).
    #[arg(long)]
    host: Option<String>,
    /// A fixed IP for the port.
    #[arg(long)]
    fixed_ip: Option<String>,
    /// Security group names or ids (default: the project's default group).
    #[arg(long = "security-group")]
    security_groups: Vec<String>,
    /// Seconds to wait for the port to go ACTIVE.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// Runs a `neutrino vm` command.
pub async fn run(args: VmArgs) -> anyhow::Result<()> {
    let dir = args.state_dir.clone().unwrap_or_else(crate::cmd::up::default_state_dir);
    match args.cmd {
        VmCmd::Boot(b) => boot(&dir, b).await,
        VmCmd::Exec { name, command } => exec(&dir, &name, &command),
        VmCmd::List => list(&dir).await,
        VmCmd::Delete { name } => delete(&dir, &name).await,
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 40 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Finds a resource by id, else by name (exactly one).
async fn find(api: &Api, collection: &str, key: &str, name_or_id: &str) -> anyhow::Result<Value> {
    let r = api.call("GET", &format!("{collection}/{name_or_id}"), None, None).await?;
    if r.status == 200 {
        return Ok(r.body[key].clone());
    }
    let body = api.expect("GET", &format!("{collection}?name={name_or_id}"), None, None, 200).await?;
    let found = body[collection].as_array().cloned().unwrap_or_default();
    match found.len() {
        1 => Ok(found[0].clone()),
        0 => bail!("no {key} named {name_or_id}"),
        n => bail!("{n} {collection} are named {name_or_id}: use the id"),
    }
}

async fn boot(dir: &std::path::Path, b: BootArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if !valid_name(&b.name) {
        bail!("bad VM name {:?}", b.name);
    }
    if VmRecord::load(dir, &b.name).is_ok() {
        bail!("a VM named {} exists", b.name);
    }
    let sim = SimRecord::load(dir)?;
    let host = match &b.host {
        Some(h) => sim.host(h).with_context(|| format!("no simulated host {h}"))?.clone(),
        None => {
            let vms = VmRecord::all(dir);
            sim.hosts
                .iter()
                .min_by_key(|h| (vms.iter().filter(|v| v.host == h.name).count(), h.name.clone()))
                .context("no simulated hosts")?
                .clone()
        }
    };
    let api = Api::from_state_dir(dir).await?;
    let existing = match &b.port {
        Some(p) => Some(api.expect("GET", &format!("ports/{p}"), None, None, 200).await?["port"].clone()),
        None => None,
    };
    let net = match (&existing, &b.network) {
        (Some(p), _) => find(&api, "networks", "network", p["network_id"].as_str().unwrap_or_default()).await?,
        (None, Some(n)) => find(&api, "networks", "network", n).await?,
        (None, None) => bail!("--network or --port is needed"),
    };
    let net_id = net["id"].as_str().context("network without id")?.to_string();
    let vm_uuid = neutrino_agent::simhost::random_uuid();
    let created = match existing {
        Some(p) => {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            let project = p["project_id"].as_str().unwrap_or_default().to_string();
            let update = json!({"port": {
                "device_owner": "compute:nova",
                "device_id": vm_uuid,
                "binding:host_id": host.name,
            }});
            api.expect("PUT", &format!("ports/{id}"), Some(&project), Some(&update), 200).await?
        }
        None => {
            let project = net["project_id"].as_str().unwrap_or_default().to_string();
            let groups = security_groups(&api, &project, &b.security_groups).await?;
            let mut port = json!({
                "network_id": net_id,
                "name": b.name,
                "device_owner": "compute:nova",
                "device_id": vm_uuid,
                "binding:host_id": host.name,
                "project_id": project,
            });
            if let Some(ip) = &b.fixed_ip {
                port["fixed_ips"] = json!([{"ip_address": ip}]);
            }
            if !groups.is_empty() {
                port["security_groups"] = Value::Array(groups);
            }
            api.expect("POST", "ports", Some(&project), Some(&json!({"port": port})), 201).await?
        }
    };
    let port = created["port"].clone();
    let port_id = port["id"].as_str().context("port without id")?.to_string();
    let project = port["project_id"].as_str().unwrap_or_default().to_string();
    let rec = VmRecord {
        name: b.name.clone(),
        host: host.name.clone(),
        netns: format!("{}{}", sim.vm_prefix, b.name),
        device: plug::device_name(&port_id),
        port_id: port_id.clone(),
        vm_uuid: vm_uuid.clone(),
        network_id: net_id.clone(),
        mac: port["mac_address"].as_str().unwrap_or_default().to_string(),
        project_id: project.clone(),
        own_port: b.port.is_none(),
    };
    rec.save(dir)?;
    let mtu = net["mtu"].as_u64().and_then(|m| u32::try_from(m).ok()).unwrap_or(1500);
    let ipv6 = port["fixed_ips"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x["ip_address"].as_str().is_some_and(|a| a.contains(':'))));
    plug::plug(&host, &rec, mtu, ipv6).await?;
    let plugged = started.elapsed();
    // Nova waits for network-vif-plugged: the port going ACTIVE.
    let deadline = Instant::now() + Duration::from_secs(b.timeout);
    let port = loop {
        let p = api.expect("GET", &format!("ports/{port_id}"), Some(&project), None, 200).await?;
        if p["port"]["status"] == "ACTIVE" {
            break p["port"].clone();
        }
        if Instant::now() > deadline {
            bail!(
                "port {port_id} of VM {} is still {} after {} s (binding: {}); `neutrino vm delete {}` removes it",
                b.name,
                p["port"]["status"],
                b.timeout,
                p["port"]["binding:vif_type"],
                b.name
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let active = started.elapsed();
    if api.notify_vif_plugged(&vm_uuid, &port_id).await? {
        tracing::info!(vm = %b.name, "network-vif-plugged sent to Nova");
    }
    let (addrs, gateway, dhcp) = addressing(&api, &project, &port).await?;
    // The DHCP hook: a guest with a DHCP client asks for its address when a
    // DHCP agent serves the network; otherwise the address is set statically.
    let mut via = "static";
    if dhcp && run_dhcp_client(&rec).await {
        via = "dhcp";
    } else {
        plug::configure(&rec, &addrs, gateway.as_deref()).await?;
    }
    let out = json!({
        "name": rec.name,
        "host": rec.host,
        "port_id": port_id,
        "mac_address": rec.mac,
        "addresses": addrs,
        "netns": rec.netns,
        "addressing": via,
        "plugged_ms": plugged.as_millis() as u64,
        "active_ms": active.as_millis() as u64,
        "total_ms": started.elapsed().as_millis() as u64,
    });
    println!("{out}");
    Ok(())
}

/// Security group names or ids of a project → ids.
async fn security_groups(api: &Api, project: &str, names: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut ids = Vec::new();
    for g in names {
        let r = api.call("GET", &format!("security-groups/{g}"), Some(project), None).await?;
        if r.status == 200 {
            ids.push(r.body["security_group"]["id"].clone());
            continue;
        }
        let body = api
            .expect("GET", &format!("security-groups?name={g}&project_id={project}"), Some(project), None, 200)
            .await?;
        match body["security_groups"].as_array().map(Vec::as_slice) {
            Some([one]) => ids.push(one["id"].clone()),
            _ => bail!("no single security group named {g} in project {project}"),
        }
    }
    Ok(ids)
}

/// The port's addresses with their prefix lengths, the default gateway, and
/// whether DHCP serves it (a DHCP-enabled subnet on a network a DHCP agent hosts).
async fn addressing(api: &Api, project: &str, port: &Value) -> anyhow::Result<(Vec<String>, Option<String>, bool)> {
    let mut addrs = Vec::new();
    let mut gateway = None;
    let mut dhcp_subnet = false;
    for f in port["fixed_ips"].as_array().into_iter().flatten() {
        let (Some(ip), Some(sid)) = (f["ip_address"].as_str(), f["subnet_id"].as_str()) else { continue };
        let s = api.expect("GET", &format!("subnets/{sid}"), Some(project), None, 200).await?;
        let cidr = s["subnet"]["cidr"].as_str().unwrap_or_default();
        let len = cidr.split_once('/').map(|(_, l)| l).unwrap_or(if ip.contains(':') { "64" } else { "32" });
        addrs.push(format!("{ip}/{len}"));
        if !ip.contains(':') {
            dhcp_subnet |= s["subnet"]["enable_dhcp"].as_bool().unwrap_or(false);
            if gateway.is_none() {
                gateway = s["subnet"]["gateway_ip"].as_str().map(String::from);
            }
        }
    }
    let mut served = false;
    if dhcp_subnet {
        let net = port["network_id"].as_str().unwrap_or_default();
        let r = api.call("GET", &format!("networks/{net}/dhcp-agents"), Some(project), None).await?;
        served = r.status == 200 && r.body["agents"].as_array().is_some_and(|a| !a.is_empty());
    }
    Ok((addrs, gateway, served))
}

/// The guest's DHCP client (busybox `udhcpc`), configuring eth0 with what the
/// DHCP agent offers; false when no client is installed or no lease came.
async fn run_dhcp_client(vm: &VmRecord) -> bool {
    if !neutrino_agent::cmd::which("udhcpc") {
        return false;
    }
    let script = std::env::temp_dir().join(format!("neutrino-vm-udhcpc-{}.sh", std::process::id()));
    let text = "#!/bin/sh\n# neutrino vm: configures eth0 from the lease; never touches resolv.conf\n\
        case \"$1\" in bound|renew)\n  ip addr flush dev \"$interface\"\n  ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n\
        [ -n \"$mtu\" ] && ip link set \"$interface\" mtu \"$mtu\"\n\
        for r in $router; do ip route replace default via \"$r\" dev \"$interface\"; break; done ;;\nesac\nexit 0\n";
    if std::fs::write(&script, text).is_err() {
        return false;
    }
    let _ = std::process::Command::new("chmod").arg("+x").arg(&script).status();
    let ns = neutrino_agent::netns::Netns::new(vm.netns.as_str());
    let s = script.display().to_string();
    let out = ns.output(&["udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", &s]).await;
    let _ = std::fs::remove_file(&script);
    matches!(out, Ok(o) if o.success)
}

fn exec(dir: &std::path::Path, name: &str, command: &[String]) -> anyhow::Result<()> {
    let rec = VmRecord::load(dir, name)?;
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &rec.netns])
        .args(command)
        .status()
        .with_context(|| format!("running {command:?} in {name}"))?;
    std::process::exit(status.code().unwrap_or(128 + 9));
}

async fn list(dir: &std::path::Path) -> anyhow::Result<()> {
    let vms = VmRecord::all(dir);
    let api = Api::from_state_dir(dir).await.ok();
    println!("{:<20} {:<12} {:<38} {:<8} ADDRESSES", "NAME", "HOST", "PORT", "STATUS");
    for v in vms {
        let (status, ips) = match &api {
            Some(a) => match a.call("GET", &format!("ports/{}", v.port_id), Some(&v.project_id), None).await {
                Ok(r) if r.status == 200 => (
                    r.body["port"]["status"].as_str().unwrap_or("?").to_string(),
                    r.body["port"]["fixed_ips"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f["ip_address"].as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                Ok(r) if r.status == 404 => ("GONE".into(), String::new()),
                _ => ("?".into(), String::new()),
            },
            None => ("?".into(), String::new()),
        };
        println!("{:<20} {:<12} {:<38} {:<8} {}", v.name, v.host, v.port_id, status, ips);
    }
    Ok(())
}

async fn delete(dir: &std::path::Path, name: &str) -> anyhow::Result<()> {
    let rec = VmRecord::load(dir, name)?;
    let sim = SimRecord::load(dir).ok();
    plug::unplug(sim.as_ref().and_then(|s| s.host(&rec.host)), &rec).await?;
    let api = Api::from_state_dir(dir).await?;
    if rec.own_port {
        let r = api.call("DELETE", &format!("ports/{}", rec.port_id), Some(&rec.project_id), None).await?;
        if r.status != 204 && r.status != 404 {
            bail!("deleting port {}: HTTP {}: {}", rec.port_id, r.status, r.body);
        }
    } else {
        // The L2 agent reports the unplugged device down to the host the
        // port is bound to: let it, before the port is unbound.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let r = api.call("GET", &format!("ports/{}", rec.port_id), Some(&rec.project_id), None).await?;
            if r.status != 200 || r.body["port"]["status"] != "ACTIVE" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        // A port the user brought stays, unbound (as Nova leaves it).
        let update = json!({"port": {"device_owner": "", "device_id": "", "binding:host_id": ""}});
        let r = api.call("PUT", &format!("ports/{}", rec.port_id), Some(&rec.project_id), Some(&update)).await?;
        if r.status != 200 && r.status != 404 {
            bail!("unbinding port {}: HTTP {}: {}", rec.port_id, r.status, r.body);
        }
    }
    VmRecord::remove(dir, name);
    println!("{}", json!({"deleted": name, "port_id": rec.port_id}));
    Ok(())
}
