//! A first version of the Neutron OVS-agent flow tables, as pure functions
//! from "what networks/ports/tunnels this host has" to [`Flow`] lists that
//! [`crate::openflow::Ofctl::sync`] installs.
//!
//! Table numbers are Neutron's (`neutron/plugins/ml2/drivers/openvswitch/agent/common/constants.py`),
//! so dumps read the same as on a Neutron node.
//!
//! # br-int
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 0 LOCAL_SWITCHING | 65535 | `vlan_tci=0x0fff/0x1fff` (dead VLAN 4095) | drop |
//! | 0 | 10 | `in_port=<vm>,arp` | `resubmit(,24)` |
//! | 0 | 9 | `in_port=<vm>` | `resubmit(,25)` |
//! | 0 | 3 | `in_port=<int-br-X>,dl_vlan=<segid>` (VLAN net) | `mod_vlan_vid:<lvid>,resubmit(,60)` |
//! | 0 | 3 | `in_port=<int-br-X>,vlan_tci=0x0000/0x1fff` (flat net) | `mod_vlan_vid:<lvid>,resubmit(,60)` |
//! | 0 | 2 | `in_port=<int-br-X>` | drop |
//! | 0 | 0 | | `resubmit(,60)` |
//! | 23 CANARY | 0 | | drop |
//! | 24 ARP_SPOOF | 2 | `in_port=<vm>,arp,arp_spa=<ip>` | `resubmit(,25)` |
//! | 24 | 0 | | drop |
//! | 25 MAC_SPOOF | 2 | `in_port=<vm>,dl_src=<mac>` | `resubmit(,60)` |
//! | 25 | 0 | | drop |
//! | 60 TRANSIENT | 3 | | `NORMAL` |
//!
//! VM ports are access ports (`Port.tag` = the network's local VLAN), so
//! `NORMAL` keeps networks apart on br-int and tags frames towards the patch ports.
//!
//! # br-tun
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 0 | 1 | `in_port=<patch-int>` | `resubmit(,2)` |
//! | 0 | 1 | `in_port=<tunnel port>` | `resubmit(,3 / 4 / 6)` for gre / vxlan / geneve |
//! | 0 | 0 | | drop |
//! | 2 PATCH_LV_TO_TUN | 0 | `dl_dst=00:00:00:00:00:00/01:00:00:00:00:00` (unicast) | `resubmit(,20)` |
//! | 2 | 0 | `dl_dst=01:00:00:00:00:00/01:00:00:00:00:00` (multicast) | `resubmit(,22)` |
//! | 3 GRE / 4 VXLAN / 6 GENEVE _TUN_TO_LV | 1 | `tun_id=<segid>` | `mod_vlan_vid:<lvid>,resubmit(,10)` |
//! | 3 / 4 / 6 | 0 | | drop |
//! | 10 LEARN_FROM_TUN | 1 | | `output:<patch-int>` (no `learn()`: l2pop fills table 20) |
//! | 20 UCAST_TO_TUN | 2 | `dl_vlan=<lvid>,dl_dst=<remote mac>` | `strip_vlan,load:<segid>->NXM_NX_TUN_ID[],output:<tunnel port>` |
//! | 20 | 0 | | `resubmit(,22)` |
//! | 22 FLOOD_TO_TUN | 1 | `dl_vlan=<lvid>` | `strip_vlan,set_tunnel:<segid>,output:<each tunnel port of the net>` |
//! | 22 | 0 | | drop |
//!
//! # br-&lt;physnet&gt;
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 0 | 4 | `in_port=<phy-br-X>,dl_vlan=<lvid>` | `mod_vlan_vid:<segid>,NORMAL` (VLAN) or `strip_vlan,NORMAL` (flat) |
//! | 0 | 2 | `in_port=<phy-br-X>` | drop |
//! | 0 | 0 | | `NORMAL` |
//!
//! OVS prints some actions differently under OpenFlow 1.3 (`pop_vlan`,
//! `set_field:0x3e9->tun_id`, `push_vlan:0x8100,set_field:4097->vlan_vid`);
//! [`crate::openflow::Ofctl::sync`] canonicalises before comparing.

use std::collections::BTreeMap;

use crate::openflow::{Action, Flow, Match};
use crate::ovsdb::TunnelType;

/// br-int tables (the L2 agent's).
pub use crate::l2::int_bridge::tables as int_tables;
/// br-tun tables (the L2 agent's).
pub use crate::l2::tunnels::tables as tun_tables;

/// Neutron's dead VLAN: ports wait there until the L2 agent wires them.
pub use crate::l2::local_vlan::DEAD_VLAN;

/// How a network is carried between hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An overlay tunnel with this segmentation id (VNI / GRE key).
    Tunnel {
        /// Tunnel type.
        kind: TunnelType,
        /// Segmentation id.
        segid: u32,
    },
    /// A VLAN on a physical network.
    Vlan {
        /// Physical network.
        physnet: String,
        /// Provider VLAN id.
        vlan: u16,
    },
    /// Untagged on a physical network.
    Flat {
        /// Physical network.
        physnet: String,
    },
}

/// A network present on this host, with its local VLAN on br-int.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNet {
    /// Local VLAN id (host-specific, 1..4094).
    pub lvid: u16,
    /// Segment.
    pub segment: Segment,
}

/// l2population state of a tunnel network on this host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TunnelFdb {
    /// Tunnel ports (OpenFlow numbers on br-tun) towards hosts with ports on the network.
    pub flood_ports: Vec<u32>,
    /// Remote MACs and the tunnel port leading to them.
    pub unicast: Vec<(String, u32)>,
}

/// A VM port on br-int, for the anti-spoofing flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPort {
    /// OpenFlow port on br-int.
    pub ofport: u32,
    /// The port's MAC.
    pub mac: String,
    /// Its fixed IPv4 addresses.
    pub ips: Vec<String>,
}

/// Base flows of br-int plus provider-network ingress translation.
/// `phys_ports` maps a physnet to the OpenFlow port of `int-br-<physnet>` on br-int.
pub fn int_bridge_flows(cookie: u64, nets: &[LocalNet], phys_ports: &BTreeMap<String, u32>) -> Vec<Flow> {
    use int_tables::*;
    let mut f = vec![
        Flow::new(LOCAL_SWITCHING, 65535)
            .cookie(cookie)
            .matching(Match::any().field("vlan_tci", format!("{DEAD_VLAN:#06x}/0x1fff"))),
        Flow::new(LOCAL_SWITCHING, 0).cookie(cookie).action(Action::Resubmit(TRANSIENT)),
        Flow::new(CANARY, 0).cookie(cookie),
        Flow::new(ARP_SPOOF, 0).cookie(cookie),
        Flow::new(MAC_SPOOF, 0).cookie(cookie),
        Flow::new(TRANSIENT, 3).cookie(cookie).action(Action::Normal),
    ];
    for port in phys_ports.values() {
        f.push(Flow::new(LOCAL_SWITCHING, 2).cookie(cookie).matching(Match::any().in_port(*port)));
    }
    for n in nets {
        let (physnet, m) = match &n.segment {
            Segment::Vlan { physnet, vlan } => (physnet, Match::any().dl_vlan(*vlan)),
            Segment::Flat { physnet } => (physnet, Match::any().untagged()),
            Segment::Tunnel { .. } => continue,
        };
        let Some(port) = phys_ports.get(physnet) else { continue };
        let mut mm = Match::any().in_port(*port);
        mm.0.extend(m.0);
        f.push(
            Flow::new(LOCAL_SWITCHING, 3)
                .cookie(cookie)
                .matching(mm)
                .action(Action::ModVlanVid(n.lvid))
                .action(Action::Resubmit(TRANSIENT)),
        );
    }
    f
}

/// Anti-spoofing flows of one VM port on br-int (tables 0, 24, 25).
pub fn vm_port_flows(cookie: u64, port: &VmPort) -> Vec<Flow> {
    use int_tables::*;
    let mut f = vec![
        Flow::new(LOCAL_SWITCHING, 10)
            .cookie(cookie)
            .matching(Match::any().in_port(port.ofport).proto("arp"))
            .action(Action::Resubmit(ARP_SPOOF)),
        Flow::new(LOCAL_SWITCHING, 9)
            .cookie(cookie)
            .matching(Match::any().in_port(port.ofport))
            .action(Action::Resubmit(MAC_SPOOF)),
        Flow::new(MAC_SPOOF, 2)
            .cookie(cookie)
            .matching(Match::any().in_port(port.ofport).dl_src(&port.mac))
            .action(Action::Resubmit(TRANSIENT)),
    ];
    for ip in &port.ips {
        f.push(
            Flow::new(ARP_SPOOF, 2)
                .cookie(cookie)
                .matching(Match::any().in_port(port.ofport).proto("arp").field("arp_spa", ip))
                .action(Action::Resubmit(MAC_SPOOF)),
        );
    }
    f
}

/// All flows of br-tun. `tunnels` are the tunnel ports (type, OpenFlow port);
/// `fdb` gives, per local VLAN of a tunnel network, where to flood and which
/// remote MACs are behind which tunnel port.
pub fn tun_bridge_flows(
    cookie: u64,
    patch_int: u32,
    tunnels: &[(TunnelType, u32)],
    nets: &[LocalNet],
    fdb: &BTreeMap<u16, TunnelFdb>,
) -> Vec<Flow> {
    use tun_tables::*;
    let mut f = vec![
        Flow::new(LOCAL_SWITCHING, 1)
            .cookie(cookie)
            .matching(Match::any().in_port(patch_int))
            .action(Action::Resubmit(PATCH_LV_TO_TUN)),
        Flow::new(LOCAL_SWITCHING, 0).cookie(cookie),
        Flow::new(PATCH_LV_TO_TUN, 0)
            .cookie(cookie)
            .matching(Match::any().field("dl_dst", "00:00:00:00:00:00/01:00:00:00:00:00"))
            .action(Action::Resubmit(UCAST_TO_TUN)),
        Flow::new(PATCH_LV_TO_TUN, 0)
            .cookie(cookie)
            .matching(Match::any().field("dl_dst", "01:00:00:00:00:00/01:00:00:00:00:00"))
            .action(Action::Resubmit(FLOOD_TO_TUN)),
        Flow::new(GRE_TUN_TO_LV, 0).cookie(cookie),
        Flow::new(VXLAN_TUN_TO_LV, 0).cookie(cookie),
        Flow::new(GENEVE_TUN_TO_LV, 0).cookie(cookie),
        Flow::new(LEARN_FROM_TUN, 1).cookie(cookie).action(Action::Output(patch_int)),
        Flow::new(UCAST_TO_TUN, 0).cookie(cookie).action(Action::Resubmit(FLOOD_TO_TUN)),
        Flow::new(FLOOD_TO_TUN, 0).cookie(cookie),
    ];
    for (kind, port) in tunnels {
        f.push(
            Flow::new(LOCAL_SWITCHING, 1)
                .cookie(cookie)
                .matching(Match::any().in_port(*port))
                .action(Action::Resubmit(tun_to_lv(*kind))),
        );
    }
    for n in nets {
        let Segment::Tunnel { kind, segid } = &n.segment else { continue };
        let segid = u64::from(*segid);
        f.push(
            Flow::new(tun_to_lv(*kind), 1)
                .cookie(cookie)
                .matching(Match::any().tun_id(segid))
                .action(Action::ModVlanVid(n.lvid))
                .action(Action::Resubmit(LEARN_FROM_TUN)),
        );
        let Some(entry) = fdb.get(&n.lvid) else { continue };
        if !entry.flood_ports.is_empty() {
            let mut fl = Flow::new(FLOOD_TO_TUN, 1)
                .cookie(cookie)
                .matching(Match::any().dl_vlan(n.lvid))
                .action(Action::StripVlan)
                .action(Action::SetTunnel(segid));
            for p in &entry.flood_ports {
                fl = fl.action(Action::Output(*p));
            }
            f.push(fl);
        }
        for (mac, port) in &entry.unicast {
            f.push(
                Flow::new(UCAST_TO_TUN, 2)
                    .cookie(cookie)
                    .matching(Match::any().dl_vlan(n.lvid).dl_dst(mac))
                    .action(Action::StripVlan)
                    .action(Action::Load { value: format!("{segid:#x}"), dst: "NXM_NX_TUN_ID[]".into() })
                    .action(Action::Output(*port)),
            );
        }
    }
    f
}

/// Flows of a provider bridge: local VLAN → provider VLAN (or untagged for
/// flat) on the way out; everything else NORMAL. `phy_patch` is the OpenFlow
/// port of `phy-br-<physnet>`.
pub fn phys_bridge_flows(cookie: u64, physnet: &str, phy_patch: u32, nets: &[LocalNet]) -> Vec<Flow> {
    let mut f = vec![
        Flow::new(0, 2).cookie(cookie).matching(Match::any().in_port(phy_patch)),
        Flow::new(0, 0).cookie(cookie).action(Action::Normal),
    ];
    for n in nets {
        let translate = match &n.segment {
            Segment::Vlan { physnet: p, vlan } if p == physnet => Action::ModVlanVid(*vlan),
            Segment::Flat { physnet: p } if p == physnet => Action::StripVlan,
            _ => continue,
        };
        f.push(
            Flow::new(0, 4)
                .cookie(cookie)
                .matching(Match::any().in_port(phy_patch).dl_vlan(n.lvid))
                .action(translate)
                .action(Action::Normal),
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tun_flows_shape() {
        let nets = vec![
            LocalNet { lvid: 1, segment: Segment::Tunnel { kind: TunnelType::Vxlan, segid: 1001 } },
            LocalNet { lvid: 2, segment: Segment::Vlan { physnet: "phys".into(), vlan: 100 } },
        ];
        let mut fdb = BTreeMap::new();
        fdb.insert(1, TunnelFdb { flood_ports: vec![5], unicast: vec![("fa:16:3e:00:00:01".into(), 5)] });
        let f = tun_bridge_flows(7, 1, &[(TunnelType::Vxlan, 5)], &nets, &fdb);
        let text: Vec<String> = f.iter().map(Flow::render).collect();
        assert!(text
            .contains(&"table=4,priority=1,cookie=0x7,tun_id=0x3e9,actions=mod_vlan_vid:1,resubmit(,10)".to_string()));
        assert!(text.contains(
            &"table=22,priority=1,cookie=0x7,dl_vlan=1,actions=strip_vlan,set_tunnel:0x3e9,output:5".to_string()
        ));
        assert!(text.iter().all(|t| !t.contains("dl_vlan=2")), "VLAN nets stay off br-tun");
        let p = phys_bridge_flows(7, "phys", 3, &nets);
        assert!(
            p.iter()
                .any(|f| f.render()
                    == "table=0,priority=4,cookie=0x7,in_port=3,dl_vlan=2,actions=mod_vlan_vid:100,NORMAL")
        );
    }
}
