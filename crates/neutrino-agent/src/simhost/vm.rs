//! Simulated VMs: a namespace whose `eth0` is plugged into a host bridge the
//! way os-vif plugs a Nova instance (`external_ids:iface-id`, `attached-mac`,
//! `iface-status=active`, `vm-uuid`).

use std::sync::Arc;
use std::time::Instant;

use crate::cmd::Output;
use crate::error::{Error, Result};
use crate::link::check_ifname;
use crate::netns::Netns;
use crate::ovsdb::{Commit, InterfaceSpec, InterfaceType, PortSpec};

use super::cleanup::RunState;
use super::{random_uuid, SimHost};

/// How the VM is plugged into the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlugKind {
    /// A veth pair: `tapXXXXXXXXXXX` on the bridge, `eth0` in the VM (like a tap).
    #[default]
    Veth,
    /// An OVS internal port moved into the VM namespace (like Neutron's DHCP/router
    /// ports). With the netdev datapath the port keeps forwarding after the move,
    /// but ovs-vswitchd can no longer read its status (it logs `No such device`).
    Internal,
}

/// What VM to create.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// Short name (namespace `<prefix>vm-<name>`).
    pub name: String,
    /// Neutron port id (`external_ids:iface-id`); random by default.
    pub port_id: String,
    /// Instance UUID (`external_ids:vm-uuid`); random by default.
    pub vm_uuid: String,
    /// MAC address of `eth0`.
    pub mac: String,
    /// Address with prefix length, e.g. `10.0.0.1/24`.
    pub cidr: Option<String>,
    /// Default gateway.
    pub gateway: Option<String>,
    /// MTU of `eth0` (and of the host side).
    pub mtu: Option<u32>,
    /// Bridge to plug into.
    pub bridge: String,
    /// Plug style.
    pub plug: PlugKind,
    /// Access VLAN to set on the port right away (an agent would do it on the event).
    pub tag: Option<u16>,
    /// Switch off TX checksum offload in the VM (needed for TCP through the netdev datapath).
    pub tx_offload_off: bool,
    /// Wait until ovs-vswitchd has the port (ofport assigned) before returning.
    pub wait: bool,
}

impl VmSpec {
    /// A VM `name` with `mac`, plugged as a veth into `br-int`.
    pub fn new(name: &str, mac: &str) -> VmSpec {
        VmSpec {
            name: name.to_string(),
            port_id: random_uuid(),
            vm_uuid: random_uuid(),
            mac: mac.to_string(),
            cidr: None,
            gateway: None,
            mtu: None,
            bridge: crate::bridges::INT_BRIDGE.to_string(),
            plug: PlugKind::Veth,
            tag: None,
            tx_offload_off: true,
            wait: true,
        }
    }
    /// Sets the address.
    pub fn cidr(mut self, cidr: &str) -> Self {
        self.cidr = Some(cidr.into());
        self
    }
    /// Sets the default gateway.
    pub fn gateway(mut self, gw: &str) -> Self {
        self.gateway = Some(gw.into());
        self
    }
    /// Sets the MTU.
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }
    /// Sets the port id.
    pub fn port_id(mut self, id: &str) -> Self {
        self.port_id = id.into();
        self
    }
    /// Sets the access VLAN.
    pub fn tag(mut self, tag: u16) -> Self {
        self.tag = Some(tag);
        self
    }
    /// Sets the bridge.
    pub fn bridge(mut self, br: &str) -> Self {
        self.bridge = br.into();
        self
    }
    /// Sets the plug style.
    pub fn plug(mut self, p: PlugKind) -> Self {
        self.plug = p;
        self
    }
    /// Returns without waiting for ovs-vswitchd.
    pub fn no_wait(mut self) -> Self {
        self.wait = false;
        self
    }

    /// The bridge-side device name: `tap` + the first 11 characters of the port id (Neutron's rule).
    pub fn device_name(&self) -> String {
        let id: String = self.port_id.chars().take(11).collect();
        format!("tap{id}")
    }

    fn port_spec(&self) -> PortSpec {
        let kind = match self.plug {
            PlugKind::Veth => InterfaceType::System,
            PlugKind::Internal => InterfaceType::Internal,
        };
        let mut iface = InterfaceSpec::vm_port(self.device_name(), kind, &self.port_id, &self.mac, &self.vm_uuid);
        if let Some(m) = self.mtu.filter(|_| self.plug == PlugKind::Internal) {
            iface = iface.mtu_request(i64::from(m));
        }
        let mut p = PortSpec::single(iface);
        p.tag = self.tag;
        p
    }
}

/// A simulated VM.
#[derive(Debug, Clone)]
pub struct SimVm {
    /// Short name.
    pub name: String,
    /// Its namespace.
    pub netns: Netns,
    /// Neutron port id.
    pub port_id: String,
    /// Bridge-side device (also the OVS port/interface name).
    pub device: String,
    /// Name of the interface inside the VM.
    pub ifname: String,
    /// MAC address.
    pub mac: String,
    /// Address with prefix length, if any.
    pub cidr: Option<String>,
    #[allow(dead_code)]
    run: Arc<RunState>,
}

impl SimVm {
    /// Its IPv4 address without the prefix length.
    pub fn ip(&self) -> Option<&str> {
        self.cidr.as_deref().and_then(|c| c.split('/').next())
    }

    /// Runs a command inside the VM; non-zero exit is an error.
    pub async fn exec(&self, argv: &[&str]) -> Result<Output> {
        self.netns.exec(argv).await
    }

    /// Runs a command inside the VM, whatever its exit status.
    pub async fn output(&self, argv: &[&str]) -> Result<Output> {
        self.netns.output(argv).await
    }

    /// Pings `ip` `count` times (0.2 s apart, 1 s timeout); true if any reply came back.
    pub async fn ping(&self, ip: &str, count: u32) -> Result<bool> {
        let c = count.to_string();
        let out = self.netns.output(&["ping", "-n", "-q", "-c", &c, "-i", "0.2", "-W", "1", ip]).await?;
        Ok(out.success)
    }
}

impl SimHost {
    /// Creates one VM and plugs it into its bridge.
    pub async fn add_vm(&self, spec: &VmSpec) -> Result<SimVm> {
        self.add_vms(std::slice::from_ref(spec))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("add_vms returned no VM".into()))
    }

    /// Creates VMs in bulk: one `ip -batch` for all namespaces, one for all
    /// host-side devices, one small batch per VM, one OVSDB transaction.
    pub async fn add_vms(&self, specs: &[VmSpec]) -> Result<Vec<SimVm>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        for s in specs {
            check_ifname(&s.device_name())?;
            if s.name.is_empty() || s.name.contains(['/', ' ']) {
                return Err(Error::Invalid(format!("bad VM name {:?}", s.name)));
            }
        }
        let names: Vec<String> = specs.iter().map(|s| self.vm_netns_name(&s.name)).collect();
        let namespaces = Netns::create_many(&names).await?;

        let veths: Vec<&VmSpec> = specs.iter().filter(|s| s.plug == PlugKind::Veth).collect();
        if !veths.is_empty() {
            let mut b = self.ip();
            for (s, ns) in specs.iter().zip(&namespaces) {
                if s.plug == PlugKind::Veth {
                    let dev = s.device_name();
                    b.veth(&dev, "eth0", Some(ns.name()), Some(&s.mac), s.mtu).link_up(&dev);
                }
            }
            b.run().await?;
        }
        // OVSDB: one transaction for all ports.
        let ports: Vec<PortSpec> = specs.iter().map(VmSpec::port_spec).collect();
        let bridges: std::collections::BTreeSet<&str> = specs.iter().map(|s| s.bridge.as_str()).collect();
        let wait = specs.iter().any(|s| s.wait || s.plug == PlugKind::Internal);
        for br in bridges {
            let these: Vec<PortSpec> =
                specs.iter().zip(&ports).filter(|(s, _)| s.bridge == br).map(|(_, p)| p.clone()).collect();
            let commit = if wait { Commit::default() } else { Commit::NoWait };
            self.ovsdb().add_ports(br, &these, commit).await?;
        }
        // Internal ports exist once ovs-vswitchd created them: move them in.
        let internals: Vec<(&VmSpec, &Netns)> =
            specs.iter().zip(&namespaces).filter(|(s, _)| s.plug == PlugKind::Internal).collect();
        if !internals.is_empty() {
            let mut b = self.ip();
            for (s, ns) in &internals {
                b.set_netns(&s.device_name(), ns.name());
            }
            b.run().await?;
        }
        let mut vms = Vec::with_capacity(specs.len());
        for (s, ns) in specs.iter().zip(namespaces) {
            let ifname = match s.plug {
                PlugKind::Veth => "eth0".to_string(),
                PlugKind::Internal => s.device_name(),
            };
            let mut b = ns.ip();
            b.link_up("lo");
            if s.plug == PlugKind::Internal {
                b.set_mac(&ifname, &s.mac);
                if let Some(m) = s.mtu {
                    b.set_mtu(&ifname, m);
                }
            }
            b.link_up(&ifname);
            if let Some(c) = &s.cidr {
                b.addr_replace(&ifname, c);
            }
            if let Some(g) = &s.gateway {
                b.route_replace("default", Some(g), None);
            }
            b.run().await?;
            if s.tx_offload_off && crate::cmd::which("ethtool") {
                // The userspace datapath does not complete partial checksums.
                let out = ns.output(&["ethtool", "-K", &ifname, "tx", "off"]).await?;
                if !out.success {
                    tracing::debug!(vm = %s.name, stderr = %out.stderr, "ethtool tx off failed");
                }
            }
            vms.push(SimVm {
                name: s.name.clone(),
                netns: ns,
                port_id: s.port_id.clone(),
                device: s.device_name(),
                ifname,
                mac: s.mac.clone(),
                cidr: s.cidr.clone(),
                run: self.run_state().clone(),
            });
        }
        tracing::info!(
            host = %self.name(),
            vms = specs.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "VMs plugged"
        );
        Ok(vms)
    }

    /// Unplugs a VM (OVSDB port removed) and deletes its namespace.
    pub async fn remove_vm(&self, vm: &SimVm) -> Result<()> {
        self.ovsdb().del_port(&vm.device, Commit::NoWait).await?;
        for p in vm.netns.pids() {
            // SAFETY: kill(2) on a process living in the VM's namespace.
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
        vm.netns.delete().await?;
        // A veth's host side disappears with its peer's namespace.
        Ok(())
    }
}
