//! br-tun: tunnel ports and the tunnel bridge's flows, with l2population
//! (unicast to known remote MACs, flooding only to hosts with ports on the
//! network) and an ARP responder for remote ports.
//!
//! | table | priority | match | actions | owner |
//! |---|---|---|---|---|
//! | 0 | 1 | `in_port=patch-int` | `resubmit(,2)` | base |
//! | 0 | 1 | `in_port=<tunnel port>` | `resubmit(,3/4/6)` (gre/vxlan/geneve) | tunnel |
//! | 0 | 0 | | drop | base |
//! | 2 PATCH_LV_TO_TUN | 1 | `arp,dl_dst=ff:ff:ff:ff:ff:ff` | `resubmit(,21)` | base |
//! | 2 | 0 | unicast / multicast `dl_dst` | `resubmit(,20)` / `resubmit(,22)` | base |
//! | 3/4/6 *_TUN_TO_LV | 1 | `tun_id=<segid>` | `mod_vlan_vid:<lvid>,resubmit(,10)` | network |
//! | 10 LEARN_FROM_TUN | 1 | | `output:<patch-int>` | base |
//! | 20 UCAST_TO_TUN | 2 | `dl_vlan=<lvid>,dl_dst=<remote MAC>` | `strip_vlan,load:<segid>->tun_id,output:<tunnel>` | network |
//! | 20 | 0 | | `resubmit(,22)` | base |
//! | 21 ARP_RESPONDER | 1 | `arp,dl_vlan=<lvid>,arp_op=1,arp_tpa=<remote IP>` | answer in place, `IN_PORT` | network |
//! | 21 | 0 | | `resubmit(,22)` | base |
//! | 22 FLOOD_TO_TUN | 1 | `dl_vlan=<lvid>` | `strip_vlan,set_tunnel:<segid>,output:<each peer's tunnel>` | network |
//! | 22 | 0 | | drop | base |

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::openflow::{Action, Flow, Match};
use crate::ovsdb::TunnelType;

use super::cookies::Owner;
use super::model::{Net, NetSegment};

/// br-tun tables.
pub mod tables {
    /// Entry table.
    pub const LOCAL_SWITCHING: u8 = 0;
    /// From br-int: unicast or flood.
    pub const PATCH_LV_TO_TUN: u8 = 2;
    /// GRE: segment id → local VLAN.
    pub const GRE_TUN_TO_LV: u8 = 3;
    /// VXLAN: segment id → local VLAN.
    pub const VXLAN_TUN_TO_LV: u8 = 4;
    /// Geneve: segment id → local VLAN.
    pub const GENEVE_TUN_TO_LV: u8 = 6;
    /// From tunnels to br-int.
    pub const LEARN_FROM_TUN: u8 = 10;
    /// Known unicast destinations.
    pub const UCAST_TO_TUN: u8 = 20;
    /// ARP answers for remote ports.
    pub const ARP_RESPONDER: u8 = 21;
    /// Flooding to the network's remote hosts.
    pub const FLOOD_TO_TUN: u8 = 22;

    /// The `*_TUN_TO_LV` table of a tunnel type.
    pub fn tun_to_lv(t: crate::ovsdb::TunnelType) -> u8 {
        match t {
            crate::ovsdb::TunnelType::Gre => GRE_TUN_TO_LV,
            crate::ovsdb::TunnelType::Vxlan => VXLAN_TUN_TO_LV,
            crate::ovsdb::TunnelType::Geneve => GENEVE_TUN_TO_LV,
        }
    }
}

/// Tunnel ports on br-tun: (type, remote IP) → OpenFlow port.
pub type TunnelPorts = BTreeMap<(TunnelType, Ipv4Addr), u32>;

/// The fixed flows of br-tun.
pub fn base_flows(patch_int: u32, arp_responder: bool) -> Vec<Flow> {
    use tables::*;
    let c = Owner::Base.cookie();
    let mut f = vec![
        Flow::new(LOCAL_SWITCHING, 1)
            .cookie(c)
            .matching(Match::any().in_port(patch_int))
            .action(Action::Resubmit(PATCH_LV_TO_TUN)),
        Flow::new(LOCAL_SWITCHING, 0).cookie(c),
        Flow::new(PATCH_LV_TO_TUN, 0)
            .cookie(c)
            .matching(Match::any().field("dl_dst", "00:00:00:00:00:00/01:00:00:00:00:00"))
            .action(Action::Resubmit(UCAST_TO_TUN)),
        Flow::new(PATCH_LV_TO_TUN, 0)
            .cookie(c)
            .matching(Match::any().field("dl_dst", "01:00:00:00:00:00/01:00:00:00:00:00"))
            .action(Action::Resubmit(FLOOD_TO_TUN)),
        Flow::new(GRE_TUN_TO_LV, 0).cookie(c),
        Flow::new(VXLAN_TUN_TO_LV, 0).cookie(c),
        Flow::new(GENEVE_TUN_TO_LV, 0).cookie(c),
        Flow::new(LEARN_FROM_TUN, 1).cookie(c).action(Action::Output(patch_int)),
        Flow::new(UCAST_TO_TUN, 0).cookie(c).action(Action::Resubmit(FLOOD_TO_TUN)),
        Flow::new(ARP_RESPONDER, 0).cookie(c).action(Action::Resubmit(FLOOD_TO_TUN)),
        Flow::new(FLOOD_TO_TUN, 0).cookie(c),
    ];
    if arp_responder {
        f.push(
            Flow::new(PATCH_LV_TO_TUN, 1)
                .cookie(c)
                .matching(Match::any().proto("arp").dl_dst("ff:ff:ff:ff:ff:ff"))
                .action(Action::Resubmit(ARP_RESPONDER)),
        );
    }
    f
}

/// The flow of one tunnel port: what it receives goes to its type's table.
pub fn tunnel_port_flows(kind: TunnelType, ofport: u32) -> Vec<Flow> {
    vec![Flow::new(tables::LOCAL_SWITCHING, 1)
        .cookie(Owner::Tunnel(ofport).cookie())
        .matching(Match::any().in_port(ofport))
        .action(Action::Resubmit(tables::tun_to_lv(kind)))]
}

/// The tunnels the networks need: one per (type, remote endpoint) of a peer
/// with ports on a tunnel network.
pub fn desired_tunnels<'a>(
    nets: impl Iterator<Item = &'a Net>,
    local_ip: Ipv4Addr,
) -> BTreeSet<(TunnelType, Ipv4Addr)> {
    let mut out = BTreeSet::new();
    for n in nets {
        let NetSegment::Tunnel { kind, .. } = n.segment else { continue };
        for p in n.peers.iter().filter(|p| !p.ports.is_empty()) {
            if let Some(ip) = p.tunnel_ip.as_deref().and_then(|s| s.parse::<Ipv4Addr>().ok()) {
                if ip != local_ip {
                    out.insert((kind, ip));
                }
            }
        }
    }
    out
}

fn mac_hex(mac: &str) -> Option<String> {
    let h: String = mac.split(':').collect();
    (h.len() == 12 && h.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("0x{}", h.to_ascii_lowercase()))
}

/// ARP responder actions: turn the request into the answer for (`mac`, `ip`)
/// and send it back where it came from.
fn arp_answer(mac: &str, ip: Ipv4Addr) -> Option<Vec<Action>> {
    let raw = |s: String| Action::Raw(s);
    Some(vec![
        raw("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]".into()),
        raw(format!("mod_dl_src:{mac}")),
        Action::Load { value: "0x2".into(), dst: "NXM_OF_ARP_OP[]".into() },
        raw("move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]".into()),
        raw("move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]".into()),
        Action::Load { value: mac_hex(mac)?, dst: "NXM_NX_ARP_SHA[]".into() },
        Action::Load { value: format!("{:#x}", u32::from(ip)), dst: "NXM_OF_ARP_SPA[]".into() },
        Action::InPort,
    ])
}

/// A tunnel network's flows on br-tun: tunnel → local VLAN, unicast to the
/// peers' MACs, flooding to the peers, ARP answers for the peers' addresses.
pub fn network_flows(net: &Net, tunnels: &TunnelPorts, arp_responder: bool) -> Vec<Flow> {
    use tables::*;
    let NetSegment::Tunnel { kind, segid } = net.segment else { return Vec::new() };
    let c = Owner::Network(net.lvid).cookie();
    let seg = u64::from(segid);
    let mut f = vec![Flow::new(tun_to_lv(kind), 1)
        .cookie(c)
        .matching(Match::any().tun_id(seg))
        .action(Action::ModVlanVid(net.lvid))
        .action(Action::Resubmit(LEARN_FROM_TUN))];
    let mut flood: BTreeSet<u32> = BTreeSet::new();
    let mut unicast: BTreeMap<String, u32> = BTreeMap::new();
    let mut arp: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for peer in net.peers.iter().filter(|p| !p.ports.is_empty()) {
        let Some(ip) = peer.tunnel_ip.as_deref().and_then(|s| s.parse::<Ipv4Addr>().ok()) else { continue };
        let Some(port) = tunnels.get(&(kind, ip)) else { continue };
        flood.insert(*port);
        for pp in &peer.ports {
            let mac = pp.mac_address.to_ascii_lowercase();
            for a in pp.ip_addresses.iter().filter_map(|a| a.parse::<Ipv4Addr>().ok()) {
                arp.insert(a, mac.clone());
            }
            unicast.insert(mac, *port);
        }
    }
    if !flood.is_empty() {
        let mut acts = vec![Action::StripVlan, Action::SetTunnel(seg)];
        acts.extend(flood.iter().map(|p| Action::Output(*p)));
        f.push(Flow::new(FLOOD_TO_TUN, 1).cookie(c).matching(Match::any().dl_vlan(net.lvid)).actions(acts));
    }
    for (mac, port) in unicast {
        f.push(
            Flow::new(UCAST_TO_TUN, 2)
                .cookie(c)
                .matching(Match::any().dl_vlan(net.lvid).dl_dst(&mac))
                .action(Action::StripVlan)
                .action(Action::Load { value: format!("{seg:#x}"), dst: "NXM_NX_TUN_ID[]".into() })
                .action(Action::Output(port)),
        );
    }
    if arp_responder {
        for (ip, mac) in arp {
            let Some(acts) = arp_answer(&mac, ip) else { continue };
            f.push(
                Flow::new(ARP_RESPONDER, 1)
                    .cookie(c)
                    .matching(Match::any().proto("arp").dl_vlan(net.lvid).field("arp_op", 1).field("arp_tpa", ip))
                    .actions(acts),
            );
        }
    }
    f
}

/// Parses a tunnel port found on br-tun: its type and remote endpoint.
pub fn parse_tunnel_iface(i: &crate::ovsdb::Interface) -> Option<(TunnelType, Ipv4Addr)> {
    let kind = match i.kind {
        crate::ovsdb::InterfaceType::Vxlan => TunnelType::Vxlan,
        crate::ovsdb::InterfaceType::Gre => TunnelType::Gre,
        crate::ovsdb::InterfaceType::Geneve => TunnelType::Geneve,
        _ => return None,
    };
    let ip = i.options.get("remote_ip")?.parse().ok()?;
    Some((kind, ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_lib::southbound::{Peer, PeerPort};

    #[test]
    fn l2pop_flows() {
        let net = Net {
            id: "n".into(),
            lvid: 2,
            segment: NetSegment::Tunnel { kind: TunnelType::Vxlan, segid: 1001 },
            peers: vec![
                Peer {
                    host: "h2".into(),
                    tunnel_ip: Some("198.51.100.2".into()),
                    ports: vec![PeerPort {
                        mac_address: "FA:16:3E:00:00:02".into(),
                        ip_addresses: vec!["10.0.0.2".into()],
                    }],
                },
                Peer { host: "h3".into(), tunnel_ip: Some("198.51.100.3".into()), ports: vec![] },
                Peer {
                    host: "h4".into(),
                    tunnel_ip: None,
                    ports: vec![PeerPort { mac_address: "fa:16:3e:00:00:04".into(), ip_addresses: vec![] }],
                },
            ],
            ports: Default::default(),
        };
        let local = Ipv4Addr::new(198, 51, 100, 1);
        let want = desired_tunnels([&net].into_iter(), local);
        assert_eq!(want, [(TunnelType::Vxlan, Ipv4Addr::new(198, 51, 100, 2))].into());
        let tunnels: TunnelPorts = [((TunnelType::Vxlan, Ipv4Addr::new(198, 51, 100, 2)), 7)].into();
        let f: Vec<String> = network_flows(&net, &tunnels, true).iter().map(Flow::render).collect();
        let c = "cookie=0x4e544c3201000002";
        assert!(f.contains(&format!("table=4,priority=1,{c},tun_id=0x3e9,actions=mod_vlan_vid:2,resubmit(,10)")));
        assert!(f.contains(&format!("table=22,priority=1,{c},dl_vlan=2,actions=strip_vlan,set_tunnel:0x3e9,output:7")));
        assert!(f.contains(&format!(
            "table=20,priority=2,{c},dl_vlan=2,dl_dst=fa:16:3e:00:00:02,actions=strip_vlan,load:0x3e9->NXM_NX_TUN_ID[],output:7"
        )));
        assert!(f.iter().any(|x| x.starts_with("table=21,priority=1")
            && x.contains("arp_tpa=10.0.0.2")
            && x.contains("load:0xfa163e000002->NXM_NX_ARP_SHA[]")
            && x.contains("load:0xa000002->NXM_OF_ARP_SPA[]")));
        assert_eq!(f.len(), 4, "{f:#?}");
    }
}
