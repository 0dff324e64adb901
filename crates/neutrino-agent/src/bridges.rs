//! The Neutron OVS bridge layout:
//!
//! ```text
//!        VM ports (access ports, tag = local VLAN)
//!                     |
//!   br-int  (fail_mode=secure) --patch-tun/patch-int-- br-tun (secure)
//!      |                                                  | vxlan-<hexip> / gre-<hexip> / geneve-<hexip>
//!      | int-br-<physnet> / phy-br-<physnet>              |   (options:key=flow, local_ip, remote_ip)
//!   br-<physnet> (secure) -- <nic>                     underlay
//! ```
//!
//! The datapath type is a parameter: `system` where the openvswitch kernel
//! module exists, `netdev` (userspace) here. All helpers are idempotent.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};
use crate::ovsdb::{BridgeSpec, Client, Commit, DatapathType, FailMode, InterfaceSpec, PortSpec, TunnelType};

/// OpenFlow versions enabled on agent bridges.
pub const OF_PROTOCOLS: &[&str] = &["OpenFlow10", "OpenFlow13", "OpenFlow14"];
/// Default integration bridge name.
pub const INT_BRIDGE: &str = "br-int";
/// Default tunnel bridge name.
pub const TUN_BRIDGE: &str = "br-tun";
/// Patch port on br-int towards br-tun.
pub const PATCH_TUN: &str = "patch-tun";
/// Patch port on br-tun towards br-int.
pub const PATCH_INT: &str = "patch-int";

/// Neutron's tunnel port name: `<type>-<remote ip as 8 hex digits>`, e.g. `vxlan-c6336402`.
pub fn tunnel_port_name(t: TunnelType, remote_ip: Ipv4Addr) -> String {
    format!("{}-{:08x}", t.as_str(), u32::from(remote_ip))
}

/// A patch port name `<prefix><bridge>` limited to 15 characters (Neutron's
/// `int-br-X` / `phy-br-X`); long names are shortened with a hash suffix.
pub fn patch_port_name(prefix: &str, bridge: &str) -> String {
    let full = format!("{prefix}{bridge}");
    if full.len() <= crate::link::IFNAMSIZ_MAX {
        return full;
    }
    // FNV-1a, stable across runs.
    let mut h: u32 = 0x811c9dc5;
    for b in full.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    let keep = crate::link::IFNAMSIZ_MAX - 7;
    format!("{}-{:06x}", &full[..keep], h & 0xff_ffff)
}

/// Ports of the br-int ↔ br-tun patch pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunBridgePorts {
    /// OpenFlow port of `patch-int` on br-tun.
    pub patch_int: u32,
    /// OpenFlow port of `patch-tun` on br-int.
    pub patch_tun: u32,
}

/// A tunnel port on br-tun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelPort {
    /// Port name (`vxlan-c6336402`).
    pub name: String,
    /// Tunnel type.
    pub kind: TunnelType,
    /// Remote endpoint.
    pub remote_ip: Ipv4Addr,
    /// OpenFlow port number.
    pub ofport: u32,
}

/// A provider bridge and its patch pair with br-int.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderBridge {
    /// Physical network name.
    pub physnet: String,
    /// Bridge name (`br-<physnet>` by default).
    pub bridge: String,
    /// Patch port on br-int (`int-br-<physnet>`).
    pub int_patch: String,
    /// Patch port on the provider bridge (`phy-br-<physnet>`).
    pub phy_patch: String,
    /// OpenFlow port of `int_patch` on br-int.
    pub int_ofport: u32,
    /// OpenFlow port of `phy_patch` on the provider bridge.
    pub phy_ofport: u32,
    /// OpenFlow port of the NIC on the provider bridge, if one was attached.
    pub nic_ofport: Option<u32>,
}

/// Creates the agent bridges of one host.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Datapath type of every bridge.
    pub datapath_type: DatapathType,
    /// Integration bridge name.
    pub int_bridge: String,
    /// Tunnel bridge name.
    pub tun_bridge: String,
    /// How long to wait for ovs-vswitchd to apply changes.
    pub commit: Commit,
}

impl Layout {
    /// The default names with the given datapath type.
    pub fn new(datapath_type: DatapathType) -> Layout {
        Layout {
            datapath_type,
            int_bridge: INT_BRIDGE.into(),
            tun_bridge: TUN_BRIDGE.into(),
            commit: Commit::default(),
        }
    }

    fn bridge_spec(&self, name: &str) -> BridgeSpec {
        BridgeSpec::new(name).datapath(self.datapath_type).fail_mode(FailMode::Secure).protocols(OF_PROTOCOLS)
    }

    /// Ensures br-int exists (secure fail mode: no flows until the agent installs them).
    pub async fn ensure_int_bridge(&self, db: &Client) -> Result<()> {
        db.add_bridge(&self.bridge_spec(&self.int_bridge), self.commit).await.map(|_| ())
    }

    /// Ensures br-tun exists and is patched to br-int.
    pub async fn ensure_tun_bridge(&self, db: &Client) -> Result<TunBridgePorts> {
        self.ensure_int_bridge(db).await?;
        db.add_bridge(&self.bridge_spec(&self.tun_bridge), Commit::NoWait).await?;
        db.add_port(&self.int_bridge, &PortSpec::single(InterfaceSpec::patch(PATCH_TUN, PATCH_INT)), Commit::NoWait)
            .await?;
        db.add_port(&self.tun_bridge, &PortSpec::single(InterfaceSpec::patch(PATCH_INT, PATCH_TUN)), self.commit)
            .await?;
        Ok(TunBridgePorts { patch_int: db.ofport(PATCH_INT).await?, patch_tun: db.ofport(PATCH_TUN).await? })
    }

    /// Ensures a flow-based tunnel port (`key=flow`) to `remote_ip` on br-tun.
    pub async fn ensure_tunnel_port(
        &self,
        db: &Client,
        kind: TunnelType,
        local_ip: Ipv4Addr,
        remote_ip: Ipv4Addr,
    ) -> Result<TunnelPort> {
        let name = tunnel_port_name(kind, remote_ip);
        let iface = InterfaceSpec::tunnel(name.as_str(), kind, &local_ip.to_string(), &remote_ip.to_string());
        db.add_port(&self.tun_bridge, &PortSpec::single(iface), self.commit).await?;
        let ofport = db.ofport(&name).await?;
        tracing::info!(port = %name, ofport, %remote_ip, "tunnel port ready");
        Ok(TunnelPort { name, kind, remote_ip, ofport })
    }

    /// Removes a tunnel port (no error if absent).
    pub async fn remove_tunnel_port(&self, db: &Client, kind: TunnelType, remote_ip: Ipv4Addr) -> Result<bool> {
        db.del_port(&tunnel_port_name(kind, remote_ip), self.commit).await
    }

    /// Ensures provider bridge `bridge` for `physnet`, patched to br-int
    /// (`int-<bridge>` ↔ `phy-<bridge>`), with `nic` (an existing device) attached.
    pub async fn ensure_provider_bridge(
        &self,
        db: &Client,
        physnet: &str,
        bridge: &str,
        nic: Option<&str>,
    ) -> Result<ProviderBridge> {
        crate::link::check_ifname(bridge)?;
        if physnet.is_empty() {
            return Err(Error::Invalid("empty physical network name".into()));
        }
        self.ensure_int_bridge(db).await?;
        let spec = self.bridge_spec(bridge).external_id("physical_network", physnet);
        db.add_bridge(&spec, Commit::NoWait).await?;
        let int_patch = patch_port_name("int-", bridge);
        let phy_patch = patch_port_name("phy-", bridge);
        db.add_port(
            &self.int_bridge,
            &PortSpec::single(InterfaceSpec::patch(int_patch.as_str(), &phy_patch)),
            Commit::NoWait,
        )
        .await?;
        let commit_phy = if nic.is_some() { Commit::NoWait } else { self.commit };
        db.add_port(bridge, &PortSpec::single(InterfaceSpec::patch(phy_patch.as_str(), &int_patch)), commit_phy)
            .await?;
        let nic_ofport = match nic {
            Some(n) => {
                db.add_port(bridge, &PortSpec::single(InterfaceSpec::system(n)), self.commit).await?;
                Some(db.ofport(n).await?)
            }
            None => None,
        };
        Ok(ProviderBridge {
            physnet: physnet.into(),
            bridge: bridge.into(),
            int_ofport: db.ofport(&int_patch).await?,
            phy_ofport: db.ofport(&phy_patch).await?,
            int_patch,
            phy_patch,
            nic_ofport,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(tunnel_port_name(TunnelType::Vxlan, Ipv4Addr::new(198, 51, 100, 2)), "vxlan-c6336402");
        assert_eq!(tunnel_port_name(TunnelType::Geneve, Ipv4Addr::new(10, 0, 0, 1)), "geneve-0a000001");
        assert_eq!(patch_port_name("int-", "br-phys"), "int-br-phys");
        let long = patch_port_name("phy-", "br-physnet-long");
        assert_eq!(long.len(), 15);
        assert_eq!(long, patch_port_name("phy-", "br-physnet-long"));
    }
}
