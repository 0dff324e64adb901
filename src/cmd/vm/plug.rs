//! The "VM" side of `neutrino vm`: a network namespace whose `eth0` carries
//! the port's MAC, plugged into the simulated host's br-int the way os-vif
//! plugs a Nova instance (a tap-like device named `tap<port id[:11]>` with
//! `external_ids:{iface-id, attached-mac, iface-status=active, vm-uuid}`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use neutrino_agent::link::IpBatch;
use neutrino_agent::netns::Netns;
use neutrino_agent::ovsdb::{Client, Commit, Endpoint, InterfaceSpec, InterfaceType, PortSpec};
use serde_json::{json, Value};

use crate::sim::SimHostRecord;

/// A VM as `neutrino vm` records it (`<state dir>/vms/<name>.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct VmRecord {
    /// Name.
    pub name: String,
    /// Host (`binding:host_id`).
    pub host: String,
    /// Namespace.
    pub netns: String,
    /// Host-side device (and OVS port) name.
    pub device: String,
    /// Neutron port.
    pub port_id: String,
    /// Instance UUID (`device_id`).
    pub vm_uuid: String,
    /// Network.
    pub network_id: String,
    /// MAC address.
    pub mac: String,
    /// Project of the port.
    pub project_id: String,
    /// Whether `vm boot` created the port (deleted with the VM) or was given it (unbound only).
    pub own_port: bool,
}

impl VmRecord {
    fn path(dir: &Path, name: &str) -> PathBuf {
        dir.join("vms").join(format!("{name}.json"))
    }

    /// Saves the record.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let p = Self::path(dir, &self.name);
        std::fs::create_dir_all(dir.join("vms"))?;
        let v = json!({
            "name": self.name, "host": self.host, "netns": self.netns, "device": self.device,
            "port_id": self.port_id, "vm_uuid": self.vm_uuid, "network_id": self.network_id,
            "mac": self.mac, "project_id": self.project_id, "own_port": self.own_port,
        });
        std::fs::write(&p, serde_json::to_vec_pretty(&v)?).with_context(|| format!("writing {}", p.display()))
    }

    fn from_json(v: &Value) -> Option<VmRecord> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Some(VmRecord {
            name: s("name")?,
            host: s("host")?,
            netns: s("netns")?,
            device: s("device")?,
            port_id: s("port_id")?,
            vm_uuid: s("vm_uuid")?,
            network_id: s("network_id")?,
            mac: s("mac")?,
            project_id: s("project_id").unwrap_or_default(),
            own_port: v.get("own_port").and_then(Value::as_bool).unwrap_or(true),
        })
    }

    /// Loads one record.
    pub fn load(dir: &Path, name: &str) -> anyhow::Result<VmRecord> {
        let p = Self::path(dir, name);
        let text = std::fs::read_to_string(&p).with_context(|| format!("no VM {name} ({} missing)", p.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        Self::from_json(&v).with_context(|| format!("{}: not a VM record", p.display()))
    }

    /// All records, by name.
    pub fn all(dir: &Path) -> Vec<VmRecord> {
        let mut out: Vec<VmRecord> = std::fs::read_dir(dir.join("vms"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .filter_map(|v| Self::from_json(&v))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Removes the record.
    pub fn remove(dir: &Path, name: &str) {
        let _ = std::fs::remove_file(Self::path(dir, name));
    }
}

/// The bridge-side device of a port (Nova's `tap` + 11 characters of the id).
pub fn device_name(port_id: &str) -> String {
    format!("tap{}", port_id.chars().take(11).collect::<String>())
}

/// Keeps `ip netns exec` in the VM from ever touching the machine's
/// resolv.conf (a DHCP client's script would write there): it bind-mounts
/// `/etc/netns/<ns>/resolv.conf` instead.
fn shadow_resolv_conf(ns: &str) -> anyhow::Result<()> {
    let d = Path::new("/etc/netns").join(ns);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    std::fs::write(d.join("resolv.conf"), format!("# {ns}: a neutrino VM, not the machine's resolv.conf\n"))?;
    Ok(())
}

/// Creates the VM namespace and plugs it into the host's br-int. Without
/// IPv6 addresses on the port, IPv6 is off on both ends of the veth (no
/// link-local chatter flooding the simulated networks).
pub async fn plug(host: &SimHostRecord, vm: &VmRecord, mtu: u32, ipv6: bool) -> anyhow::Result<()> {
    let ns = Netns::create(vm.netns.as_str()).await.with_context(|| format!("creating namespace {}", vm.netns))?;
    shadow_resolv_conf(&vm.netns)?;
    let mut b = IpBatch::new(Some(&host.netns));
    b.veth(&vm.device, "eth0", Some(ns.name()), Some(&vm.mac), Some(mtu));
    b.run().await.context("creating the VM's veth pair")?;
    if !ipv6 {
        let host_ns = Netns::new(host.netns.as_str());
        let (tap, eth0) =
            (format!("net.ipv6.conf.{}.disable_ipv6=1", vm.device), "net.ipv6.conf.eth0.disable_ipv6=1".to_string());
        let (argv_tap, argv_eth0) = (["sysctl", "-qw", tap.as_str()], ["sysctl", "-qw", eth0.as_str()]);
        let (a, b) = tokio::join!(host_ns.output(&argv_tap), ns.output(&argv_eth0));
        for r in [a, b] {
            if let Some(o) = r.ok().filter(|o| !o.success) {
                tracing::debug!(stderr = %o.stderr, "disabling IPv6 failed");
            }
        }
    }
    let mut b = IpBatch::new(Some(&host.netns));
    b.link_up(&vm.device);
    b.run().await.context("bringing the VM's veth up")?;
    let mut b = ns.ip();
    b.link_up("lo").link_up("eth0");
    b.run().await.context("bringing eth0 up")?;
    if neutrino_agent::cmd::which("ethtool") {
        // The userspace datapath does not complete partial checksums (TCP).
        let _ = ns.output(&["ethtool", "-K", "eth0", "tx", "off"]).await;
    }
    let db = Client::connect(Endpoint::unix(&host.ovsdb)).await.context("connecting to the host's OVSDB")?;
    let iface = InterfaceSpec::vm_port(vm.device.as_str(), InterfaceType::System, &vm.port_id, &vm.mac, &vm.vm_uuid);
    db.add_port(&host.integration_bridge, &PortSpec::single(iface), Commit::NoWait)
        .await
        .with_context(|| format!("plugging {} into {}", vm.device, host.integration_bridge))?;
    Ok(())
}

/// Configures addresses (`ip/len`) and the default route in the VM.
pub async fn configure(vm: &VmRecord, addrs: &[String], gateway: Option<&str>) -> anyhow::Result<()> {
    let ns = Netns::new(vm.netns.as_str());
    let mut b = ns.ip();
    for a in addrs {
        if a.contains(':') {
            b.line(format!("-6 addr replace {a} dev eth0 nodad"));
        } else {
            b.addr_replace("eth0", a);
        }
    }
    if let Some(g) = gateway {
        b.route_replace("default", Some(g), Some("eth0"));
    }
    b.run().await.context("configuring the VM's addresses")
}

/// Unplugs and deletes the VM (no error for what is already gone).
pub async fn unplug(host: Option<&SimHostRecord>, vm: &VmRecord) -> anyhow::Result<()> {
    if let Some(h) = host {
        if let Ok(db) = Client::connect(Endpoint::unix(&h.ovsdb)).await {
            db.del_port(&vm.device, Commit::NoWait).await.with_context(|| format!("unplugging {}", vm.device))?;
        }
    }
    let ns = Netns::new(vm.netns.as_str());
    if ns.exists() {
        for p in ns.pids() {
            let _ = std::process::Command::new("kill").args(["-KILL", &p.to_string()]).status();
        }
        ns.delete().await.with_context(|| format!("deleting namespace {}", vm.netns))?;
    }
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&vm.netns));
    Ok(())
}
