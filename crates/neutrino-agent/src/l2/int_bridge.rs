//! br-int: the integration bridge's flows, by owner.
//!
//! | table | priority | match | actions | owner |
//! |---|---|---|---|---|
//! | 0 LOCAL_SWITCHING | 65535 | `vlan_tci=0x0fff/0x1fff` (dead VLAN) | drop | base |
//! | 0 | 100 | `in_port=<VM port>` | into the firewall (see [`super::firewall`]) or `resubmit(,73)` | port |
//! | 0 | 10 / 9 | (noop firewall) `in_port=P,arp` / `in_port=P` | `resubmit(,24)` / `resubmit(,25)` | port |
//! | 0 | 3 | `in_port=int-br-X,dl_vlan=<vid>` (VLAN) or `vlan_tci=0x0000/0x1fff` (flat) | `mod_vlan_vid:<lvid>,resubmit(,60)` | network |
//! | 0 | 2 | `in_port=int-br-X` | drop | base |
//! | 0 | 1 | `in_port=patch-tun` | `resubmit(,60)` | base |
//! | 0 | 0 | | drop: ports the agent has not wired do not forward | base |
//! | 23 CANARY | 0 | | drop (its absence reveals a flow-table reset) | base |
//! | 24 ARP_SPOOF | 2 | `in_port=P,arp,arp_spa=<ip>` | `resubmit(,25)` | port |
//! | 25 MAC_SPOOF | 2 | `in_port=P,dl_src=<mac>` | `resubmit(,60)` | port |
//! | 60 TRANSIENT | 3 | | `NORMAL` | base |
//!
//! VM ports are access ports tagged with their network's local VLAN, so
//! `NORMAL` keeps networks apart and tags frames towards the patch ports.

use std::collections::BTreeSet;

use crate::openflow::{Action, Flow, Match};

use super::cookies::Owner;
use super::firewall::{self, Firewall, REG_NET, REG_PORT};
use super::local_vlan::DEAD_VLAN;
use super::model::{Net, NetSegment, WiredPort};

/// br-int tables.
pub mod tables {
    /// Entry table.
    pub const LOCAL_SWITCHING: u8 = 0;
    /// Canary (detects flow table resets).
    pub const CANARY: u8 = 23;
    /// ARP anti-spoofing (noop firewall).
    pub const ARP_SPOOF: u8 = 24;
    /// MAC anti-spoofing (noop firewall).
    pub const MAC_SPOOF: u8 = 25;
    /// NORMAL switching.
    pub const TRANSIENT: u8 = 60;
}

/// The fixed flows of br-int. `patch_tun` is the patch port to br-tun (if
/// tunnels are on), `provider_ports` the `int-br-X` patch ports.
pub fn base_flows(patch_tun: Option<u32>, provider_ports: &BTreeSet<u32>) -> Vec<Flow> {
    use tables::*;
    let c = Owner::Base.cookie();
    let mut f = vec![
        Flow::new(LOCAL_SWITCHING, 65535)
            .cookie(c)
            .matching(Match::any().field("vlan_tci", format!("{DEAD_VLAN:#06x}/0x1fff"))),
        Flow::new(LOCAL_SWITCHING, 0).cookie(c),
        Flow::new(CANARY, 0).cookie(c),
        Flow::new(ARP_SPOOF, 0).cookie(c),
        Flow::new(MAC_SPOOF, 0).cookie(c),
        Flow::new(TRANSIENT, 3).cookie(c).action(Action::Normal),
    ];
    if let Some(p) = patch_tun {
        f.push(
            Flow::new(LOCAL_SWITCHING, 1)
                .cookie(c)
                .matching(Match::any().in_port(p))
                .action(Action::Resubmit(TRANSIENT)),
        );
    }
    for p in provider_ports {
        f.push(Flow::new(LOCAL_SWITCHING, 2).cookie(c).matching(Match::any().in_port(*p)));
    }
    f.extend(Firewall::base_flows(c));
    f
}

/// A network's flows on br-int: translation of its provider VLAN (or
/// untagged frames, for flat) coming from its physical bridge to its local
/// VLAN. `provider_port` is the `int-br-X` port of its physical network.
pub fn network_flows(net: &Net, provider_port: Option<u32>) -> Vec<Flow> {
    let c = Owner::Network(net.lvid).cookie();
    let m = match (&net.segment, provider_port) {
        (NetSegment::Vlan { vid, .. }, Some(p)) => Match::any().in_port(p).dl_vlan(*vid),
        (NetSegment::Flat { .. }, Some(p)) => Match::any().in_port(p).untagged(),
        _ => return Vec::new(),
    };
    vec![Flow::new(tables::LOCAL_SWITCHING, 3)
        .cookie(c)
        .matching(m)
        .action(Action::ModVlanVid(net.lvid))
        .action(Action::Resubmit(tables::TRANSIENT))]
}

/// How a port is filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// Trusted or port security off: forwards as is (still through the local
    /// delivery table, so filtered neighbours see its traffic as ingress).
    None,
    /// Only ARP and MAC anti-spoofing (the `noop` firewall driver).
    AntiSpoof,
    /// The conntrack firewall.
    Firewall,
}

/// The flows of a wired port.
pub fn port_flows(p: &WiredPort, filtering: Filtering, fw: &Firewall) -> Vec<Flow> {
    use tables::*;
    let c = Owner::Port(p.ofport).cookie();
    match filtering {
        Filtering::Firewall => fw.port_flows(p),
        Filtering::None => {
            vec![Flow::new(LOCAL_SWITCHING, 100).cookie(c).matching(Match::any().in_port(p.ofport)).actions(vec![
                Action::Load { value: format!("{:#x}", p.ofport), dst: REG_PORT.into() },
                Action::Load { value: format!("{:#x}", p.lvid), dst: REG_NET.into() },
                Action::Resubmit(firewall::tables::ACCEPT_OR_INGRESS),
            ])]
        }
        Filtering::AntiSpoof => {
            let mut f = vec![
                Flow::new(LOCAL_SWITCHING, 10)
                    .cookie(c)
                    .matching(Match::any().in_port(p.ofport).proto("arp"))
                    .action(Action::Resubmit(ARP_SPOOF)),
                Flow::new(LOCAL_SWITCHING, 9)
                    .cookie(c)
                    .matching(Match::any().in_port(p.ofport))
                    .action(Action::Resubmit(MAC_SPOOF)),
            ];
            for mac in p.macs() {
                f.push(
                    Flow::new(MAC_SPOOF, 2)
                        .cookie(c)
                        .matching(Match::any().in_port(p.ofport).dl_src(&mac))
                        .action(Action::Resubmit(TRANSIENT)),
                );
            }
            let mut ips: BTreeSet<String> = p.details.fixed_ips.iter().map(|f| f.ip_address.clone()).collect();
            ips.extend(p.details.allowed_address_pairs.iter().map(|a| a.ip_address.clone()));
            for ip in ips.iter().filter(|ip| !ip.contains(':')) {
                f.push(
                    Flow::new(ARP_SPOOF, 2)
                        .cookie(c)
                        .matching(Match::any().in_port(p.ofport).proto("arp").field("arp_spa", ip))
                        .action(Action::Resubmit(MAC_SPOOF)),
                );
            }
            f
        }
    }
}
