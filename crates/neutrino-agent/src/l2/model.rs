//! What the agent knows about the host: networks present (with their local
//! VLAN and segment), wired ports, and the plugged interfaces OVSDB reports.

use std::collections::BTreeSet;

use neutrino_lib::southbound::{BoundSegment, DeviceDetails, Peer};

use crate::ovsdb::TunnelType;

/// How a network leaves the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum NetSegment {
    /// Host-local only.
    Local,
    /// Untagged on a physical network.
    Flat {
        /// Physical network.
        physnet: String,
    },
    /// A VLAN on a physical network.
    Vlan {
        /// Physical network.
        physnet: String,
        /// Provider VLAN id.
        vid: u16,
    },
    /// An overlay tunnel.
    Tunnel {
        /// Tunnel type.
        kind: TunnelType,
        /// VNI / GRE key.
        segid: u32,
    },
}

impl NetSegment {
    /// From the server's bound segment; `None` for an unknown type or a bad id.
    pub fn from_bound(s: &BoundSegment) -> Option<NetSegment> {
        let physnet = || s.physical_network.clone().filter(|p| !p.is_empty());
        Some(match s.network_type.as_str() {
            "local" => NetSegment::Local,
            "flat" => NetSegment::Flat { physnet: physnet()? },
            "vlan" => NetSegment::Vlan {
                physnet: physnet()?,
                vid: u16::try_from(s.segmentation_id?).ok().filter(|v| (1..=4094).contains(v))?,
            },
            t => {
                let kind = match t {
                    "vxlan" => TunnelType::Vxlan,
                    "gre" => TunnelType::Gre,
                    "geneve" => TunnelType::Geneve,
                    _ => return None,
                };
                let segid = u32::try_from(s.segmentation_id?).ok().filter(|v| *v > 0 && *v < (1 << 24))?;
                NetSegment::Tunnel { kind, segid }
            }
        })
    }

    /// `network_type` as Neutron names it.
    pub fn network_type(&self) -> &'static str {
        match self {
            NetSegment::Local => "local",
            NetSegment::Flat { .. } => "flat",
            NetSegment::Vlan { .. } => "vlan",
            NetSegment::Tunnel { kind, .. } => kind.as_str(),
        }
    }

    /// The physical network, for flat and VLAN segments.
    pub fn physnet(&self) -> Option<&str> {
        match self {
            NetSegment::Flat { physnet } | NetSegment::Vlan { physnet, .. } => Some(physnet),
            _ => None,
        }
    }

    /// The segmentation id as text (empty for local/flat).
    pub fn segmentation_id(&self) -> String {
        match self {
            NetSegment::Vlan { vid, .. } => vid.to_string(),
            NetSegment::Tunnel { segid, .. } => segid.to_string(),
            _ => String::new(),
        }
    }
}

/// A network with ports on this host.
#[derive(Debug, Clone)]
pub struct Net {
    /// Network id.
    pub id: String,
    /// Local VLAN on br-int.
    pub lvid: u16,
    /// How it leaves the host.
    pub segment: NetSegment,
    /// Remote hosts with ports on it (l2population).
    pub peers: Vec<Peer>,
    /// Local ports (ids).
    pub ports: BTreeSet<String>,
}

/// A wired port.
#[derive(Debug, Clone)]
pub struct WiredPort {
    /// The OVS interface (and port) name.
    pub iface: String,
    /// OpenFlow port on br-int.
    pub ofport: u32,
    /// Its network's local VLAN.
    pub lvid: u16,
    /// What the server said about it.
    pub details: DeviceDetails,
}

impl WiredPort {
    /// Whether the port is trusted (a network:* port: DHCP, router): never filtered.
    pub fn trusted(&self) -> bool {
        self.details.device_owner.starts_with("network:")
    }

    /// Whether port security applies (anti-spoofing, security groups).
    pub fn secured(&self) -> bool {
        self.details.port_security_enabled && !self.trusted()
    }

    /// The MACs the port may use: its own and those of its allowed address pairs.
    pub fn macs(&self) -> BTreeSet<String> {
        let mut m: BTreeSet<String> = BTreeSet::new();
        m.insert(self.details.mac_address.to_ascii_lowercase());
        for p in &self.details.allowed_address_pairs {
            m.insert(p.mac_address.to_ascii_lowercase());
        }
        m
    }
}

/// An interface with an `iface-id`, as OVSDB reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugged {
    /// The Neutron port id (`external_ids:iface-id`).
    pub port_id: String,
    /// OpenFlow port number.
    pub ofport: u32,
    /// `external_ids:attached-mac`.
    pub mac: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(t: &str, p: Option<&str>, id: Option<i64>) -> BoundSegment {
        BoundSegment { network_type: t.into(), physical_network: p.map(String::from), segmentation_id: id }
    }

    #[test]
    fn segments() {
        assert_eq!(
            NetSegment::from_bound(&seg("vlan", Some("physnet1"), Some(100))),
            Some(NetSegment::Vlan { physnet: "physnet1".into(), vid: 100 })
        );
        assert_eq!(NetSegment::from_bound(&seg("vlan", Some("physnet1"), Some(4095))), None);
        assert_eq!(NetSegment::from_bound(&seg("vlan", None, Some(100))), None);
        assert_eq!(
            NetSegment::from_bound(&seg("geneve", None, Some(7))),
            Some(NetSegment::Tunnel { kind: TunnelType::Geneve, segid: 7 })
        );
        assert_eq!(
            NetSegment::from_bound(&seg("flat", Some("p"), None)),
            Some(NetSegment::Flat { physnet: "p".into() })
        );
        assert_eq!(NetSegment::from_bound(&seg("opflex", None, None)), None);
        assert_eq!(NetSegment::from_bound(&seg("local", None, None)), Some(NetSegment::Local));
    }
}
