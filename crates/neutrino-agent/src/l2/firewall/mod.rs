//! Security groups and port security on br-int, in the design of Neutron's
//! `openvswitch` firewall driver: OpenFlow plus OVS conntrack (which also
//! works on the userspace datapath), one conntrack zone per port.
//!
//! # Registers
//! `reg4` = the network's local VLAN, `reg5` = the port's OpenFlow number,
//! `reg6` = the port's conntrack zone (its OpenFlow number).
//!
//! # Tables (br-int)
//! | table | priority | match | actions |
//! |---|---|---|---|
//! | 0 | 100 | `in_port=P` (filtered port) | load reg4/5/6, `resubmit(,71)` |
//! | 0 | 100 | `in_port=P` (trusted or unsecured port) | load reg4/5, `resubmit(,73)` |
//! | 60 | 90 | `dl_vlan=L,dl_dst=<mac of P>` (from a patch port) | `strip_vlan`, load reg5/6, `resubmit(,81)` |
//! | 71 BASE_EGRESS | 95 | `reg5=P,arp,dl_src,arp_spa,arp_sha` of P | `resubmit(,60)` |
//! | 71 | 90 | `reg5=P,icmp6,icmp_type=133/135/136,dl_src` | `resubmit(,60)` |
//! | 71 | 80 | DHCP client (`udp 68→67`, `udp6 546→547`) from P's MACs | `resubmit(,73)` |
//! | 71 | 70 | DHCP server replies, router advertisements from P | drop |
//! | 71 | 65 | `reg5=P,ip,dl_src=<mac>,nw_src=<ip>` per address / allowed pair | `ct(table=72,zone=reg6)` (stateless: `resubmit(,72)`) |
//! | 72 RULES_EGRESS | 100 | `ct_state=+trk+inv` | drop |
//! | 72 | 90 | `ct_state=+trk+est+rpl-inv`, `+trk+rel-inv` | `resubmit(,73)` |
//! | 72 | 71 | remote-group rules: `reg5=P,<l4>` and `nw_dst=<member>` | `conjunction(id,k/2)` |
//! | 72 | 70 | `reg5=P,ct_state=+trk-rpl-inv,<rule>`; `conj_id=id` | `ct(commit,zone=reg6),resubmit(,73)` |
//! | 73 ACCEPT_OR_INGRESS | 100 | `reg4=L,dl_dst=<mac of local filtered port Q>` | `ct_clear`, load reg5/6 of Q, `resubmit(,81)` |
//! | 73 | 0 | | `resubmit(,60)` (NORMAL) |
//! | 81 BASE_INGRESS | 100 | `reg5=Q,arp` | `output:Q` |
//! | 81 | 95 | DHCP replies (`udp 67→68`, `udp6 547→546`), ICMPv6 ND/MLD/RA | `output:Q` |
//! | 81 | 90 | `reg5=Q,ip` / `ipv6` | `ct(table=82,zone=reg6)` (stateless: `resubmit(,82)`) |
//! | 82 RULES_INGRESS | 100/90 | as in 72 | drop / `output:reg5` |
//! | 82 | 71/70 | as in 72 with `nw_src` | `ct(commit,zone=reg6),output:reg5` |
//!
//! Established traffic is *re-validated* against the rules (only replies
//! and related packets are accepted by conntrack state alone), so removing a
//! rule stops a running flow at once, without flushing conntrack.
//! Remote groups are conjunctions: one flow per member address (shared by
//! all ports) and one per port and rule, never per-IP expansion per port.

pub mod conj;
pub mod rules;

use std::collections::{BTreeMap, BTreeSet};

use neutrino_lib::southbound::SecurityGroupInfo;

use crate::openflow::{Action, Flow, Match};

use super::cookies::Owner;
use super::model::WiredPort;
use conj::{ConjIds, ConjKey};
use rules::{Direction, Family};

/// Firewall tables of br-int.
pub mod tables {
    /// Egress: anti-spoofing, into conntrack.
    pub const BASE_EGRESS: u8 = 71;
    /// Egress rules.
    pub const RULES_EGRESS: u8 = 72;
    /// Accepted egress: to a local filtered port's ingress, or NORMAL.
    pub const ACCEPT_OR_INGRESS: u8 = 73;
    /// Ingress: always-allowed traffic, into conntrack.
    pub const BASE_INGRESS: u8 = 81;
    /// Ingress rules.
    pub const RULES_INGRESS: u8 = 82;
}

/// Register holding the local VLAN.
pub const REG_NET: &str = "NXM_NX_REG4[]";
/// Register holding the port.
pub const REG_PORT: &str = "NXM_NX_REG5[]";
/// Register holding the conntrack zone.
pub const REG_ZONE: &str = "NXM_NX_REG6[]";

const TRANSIENT: u8 = 60;
const CT_EGRESS: &str = "ct(table=72,zone=NXM_NX_REG6[0..15])";
const CT_INGRESS: &str = "ct(table=82,zone=NXM_NX_REG6[0..15])";
const CT_COMMIT: &str = "ct(commit,zone=NXM_NX_REG6[0..15])";
const OUTPUT_REG_PORT: &str = "output:NXM_NX_REG5[0..15]";

fn load(v: impl Into<u64>, reg: &str) -> Action {
    Action::Load { value: format!("{:#x}", v.into()), dst: reg.into() }
}

fn raw(s: &str) -> Action {
    Action::Raw(s.to_string())
}

/// The security groups the agent knows (rules and membership of the groups
/// its ports use), and the conjunction ids derived from them.
#[derive(Debug, Default, Clone)]
pub struct Firewall {
    info: SecurityGroupInfo,
    conj: ConjIds,
}

impl Firewall {
    /// An empty firewall.
    pub fn new() -> Firewall {
        Firewall::default()
    }

    /// Replaces the security-group data (as fetched for every filtered port).
    pub fn set_info(&mut self, info: SecurityGroupInfo) {
        self.conj = ConjIds::compute(&info);
        self.info = info;
    }

    /// The current data.
    pub fn info(&self) -> &SecurityGroupInfo {
        &self.info
    }

    /// Whether these groups concern a port using `groups`: one of its own, or
    /// one its rules name as remote group.
    pub fn concerns(&self, groups: &[String], changed: &BTreeSet<String>) -> bool {
        groups.iter().any(|g| {
            changed.contains(g)
                || self.info.security_groups.get(g).is_some_and(|sg| {
                    sg.rules.iter().any(|r| r.remote_group_id.as_ref().is_some_and(|rg| changed.contains(rg)))
                })
        })
    }

    fn stateful(&self, groups: &[String]) -> bool {
        groups.is_empty() || groups.iter().any(|g| self.info.security_groups.get(g).is_none_or(|sg| sg.stateful))
    }

    /// Base flows of the firewall tables (owned by the bridge base).
    pub fn base_flows(cookie: u64) -> Vec<Flow> {
        use tables::*;
        let mut f = vec![
            Flow::new(BASE_EGRESS, 0).cookie(cookie),
            Flow::new(RULES_EGRESS, 0).cookie(cookie),
            Flow::new(ACCEPT_OR_INGRESS, 0).cookie(cookie).action(Action::Resubmit(TRANSIENT)),
            Flow::new(BASE_INGRESS, 0).cookie(cookie),
            Flow::new(RULES_INGRESS, 0).cookie(cookie),
        ];
        for (table, accept) in
            [(RULES_EGRESS, Action::Resubmit(ACCEPT_OR_INGRESS)), (RULES_INGRESS, raw(OUTPUT_REG_PORT))]
        {
            f.push(Flow::new(table, 100).cookie(cookie).matching(Match::any().field("ct_state", "+trk+inv")));
            for st in ["+est+rpl-inv+trk", "+rel-inv+trk"] {
                f.push(
                    Flow::new(table, 90)
                        .cookie(cookie)
                        .matching(Match::any().field("ct_state", st))
                        .action(accept.clone()),
                );
            }
        }
        f
    }

    /// Flows shared by all filtered ports (owner [`Owner::Firewall`]`(0)`):
    /// the conjunctions' accept flows and one flow per remote-group member
    /// address.
    pub fn shared_flows(&self) -> Vec<Flow> {
        use tables::*;
        let cookie = Owner::Firewall(0).cookie();
        let mut f = Vec::new();
        // member address (direction, family, address) → conjunction ids
        let mut members: BTreeMap<(Direction, Family, String), BTreeSet<u32>> = BTreeMap::new();
        for (key, id) in self.conj.iter() {
            let stateful = self.info.security_groups.get(&key.sg).is_none_or(|sg| sg.stateful);
            let (table, accept) = match key.direction {
                Direction::Egress => (RULES_EGRESS, Action::Resubmit(ACCEPT_OR_INGRESS)),
                Direction::Ingress => (RULES_INGRESS, raw(OUTPUT_REG_PORT)),
            };
            let mut acts = Vec::new();
            if stateful {
                acts.push(raw(CT_COMMIT));
            }
            acts.push(accept);
            f.push(
                Flow::new(table, 70)
                    .cookie(cookie)
                    .matching(Match::any().field("conj_id", id).proto(key.family.ip()))
                    .actions(acts),
            );
            let addrs = self
                .info
                .sg_member_ips
                .get(&key.remote_sg)
                .and_then(|m| m.get(key.family.key()))
                .cloned()
                .unwrap_or_default();
            for a in addrs {
                if Family::of_addr(&a) == key.family {
                    members.entry((key.direction, key.family, a)).or_default().insert(*id);
                }
            }
        }
        for ((dir, fam, addr), ids) in members {
            let table = if dir == Direction::Egress { RULES_EGRESS } else { RULES_INGRESS };
            let m = Match::any().proto(fam.ip()).field(dir.remote_field(fam), addr);
            let acts = ids.iter().map(|id| Action::Raw(format!("conjunction({id},1/2)"))).collect();
            f.push(Flow::new(table, 71).cookie(cookie).matching(m).actions(acts));
        }
        f
    }

    /// The flows of one filtered port (owner [`Owner::Port`]): entry,
    /// ingress interception, anti-spoofing, and its rules.
    pub fn port_flows(&self, p: &WiredPort) -> Vec<Flow> {
        use tables::*;
        let cookie = Owner::Port(p.ofport).cookie();
        let of = p.ofport;
        let zone = u64::from(of & 0xffff);
        let lvid = u64::from(p.lvid);
        let stateful = self.stateful(&p.details.security_groups);
        let at = |t: u8, prio: u16| Flow::new(t, prio).cookie(cookie);
        let me = || Match::any().field("reg5", of);
        let mut f = vec![at(0, 100).matching(Match::any().in_port(of)).actions(vec![
            load(of, REG_PORT),
            load(zone, REG_ZONE),
            load(lvid, REG_NET),
            Action::Resubmit(BASE_EGRESS),
        ])];
        let macs = p.macs();
        for mac in &macs {
            f.push(at(TRANSIENT, 90).matching(Match::any().dl_vlan(p.lvid).dl_dst(mac)).actions(vec![
                Action::StripVlan,
                load(of, REG_PORT),
                load(zone, REG_ZONE),
                Action::Resubmit(BASE_INGRESS),
            ]));
            f.push(at(ACCEPT_OR_INGRESS, 100).matching(Match::any().field("reg4", lvid).dl_dst(mac)).actions(vec![
                raw("ct_clear"),
                load(of, REG_PORT),
                load(zone, REG_ZONE),
                Action::Resubmit(BASE_INGRESS),
            ]));
            // DHCP clients and IPv6 neighbour discovery, whatever the source address.
            f.push(
                at(BASE_EGRESS, 80)
                    .matching(me().proto("udp").dl_src(mac).field("tp_src", 68).field("tp_dst", 67))
                    .action(Action::Resubmit(ACCEPT_OR_INGRESS)),
            );
            f.push(
                at(BASE_EGRESS, 80)
                    .matching(me().proto("udp6").dl_src(mac).field("tp_src", 546).field("tp_dst", 547))
                    .action(Action::Resubmit(ACCEPT_OR_INGRESS)),
            );
            for t in [133, 135, 136] {
                f.push(
                    at(BASE_EGRESS, 90)
                        .matching(me().proto("icmp6").dl_src(mac).field("icmp_type", t))
                        .action(Action::Resubmit(TRANSIENT)),
                );
            }
        }
        // Spoofed DHCP servers and router advertisements.
        f.push(at(BASE_EGRESS, 70).matching(me().proto("udp").field("tp_src", 67).field("tp_dst", 68)));
        f.push(at(BASE_EGRESS, 70).matching(me().proto("udp6").field("tp_src", 547).field("tp_dst", 546)));
        f.push(at(BASE_EGRESS, 70).matching(me().proto("icmp6").field("icmp_type", 134)));
        // Allowed sources: fixed IPs with the port's MAC, allowed address pairs
        // with theirs, the IPv6 link-local address of each MAC.
        let own_mac = p.details.mac_address.to_ascii_lowercase();
        let mut sources: BTreeSet<(String, String)> = BTreeSet::new();
        for ip in &p.details.fixed_ips {
            sources.insert((own_mac.clone(), ip.ip_address.clone()));
        }
        for pair in &p.details.allowed_address_pairs {
            sources.insert((pair.mac_address.to_ascii_lowercase(), pair.ip_address.clone()));
        }
        for mac in &macs {
            if let Some(ll) = rules::link_local_of(mac) {
                sources.insert((mac.clone(), ll));
            }
        }
        let into_rules = if stateful { raw(CT_EGRESS) } else { Action::Resubmit(RULES_EGRESS) };
        for (mac, addr) in &sources {
            let fam = Family::of_addr(addr);
            if fam == Family::V4 {
                f.push(
                    at(BASE_EGRESS, 95)
                        .matching(me().proto("arp").dl_src(mac).field("arp_spa", addr).field("arp_sha", mac))
                        .action(Action::Resubmit(TRANSIENT)),
                );
            }
            f.push(
                at(BASE_EGRESS, 65)
                    .matching(me().proto(fam.ip()).dl_src(mac).field(fam.src(), addr))
                    .action(into_rules.clone()),
            );
        }
        // Ingress: always-allowed traffic, then into conntrack.
        let out = Action::Output(of);
        f.push(at(BASE_INGRESS, 100).matching(me().proto("arp")).action(out.clone()));
        f.push(
            at(BASE_INGRESS, 95)
                .matching(me().proto("udp").field("tp_src", 67).field("tp_dst", 68))
                .action(out.clone()),
        );
        f.push(
            at(BASE_INGRESS, 95)
                .matching(me().proto("udp6").field("tp_src", 547).field("tp_dst", 546))
                .action(out.clone()),
        );
        for t in 130..=136 {
            f.push(at(BASE_INGRESS, 95).matching(me().proto("icmp6").field("icmp_type", t)).action(out.clone()));
        }
        for fam in [Family::V4, Family::V6] {
            let into = if stateful { raw(CT_INGRESS) } else { Action::Resubmit(RULES_INGRESS) };
            f.push(at(BASE_INGRESS, 90).matching(me().proto(fam.ip())).action(into));
        }
        f.extend(self.rule_flows(p, stateful, cookie));
        f
    }

    /// The port's rules in tables 72/82: plain rule flows and the port's
    /// dimension of remote-group conjunctions.
    fn rule_flows(&self, p: &WiredPort, stateful: bool, cookie: u64) -> Vec<Flow> {
        use tables::*;
        let of = p.ofport;
        // (table, priority, match text) → (match, actions); identical matches merge.
        let mut flows: BTreeMap<(u8, u16, String), (Match, Vec<Action>)> = BTreeMap::new();
        for g in &p.details.security_groups {
            let Some(sg) = self.info.security_groups.get(g) else { continue };
            for rule in &sg.rules {
                let Some(rm) = rules::translate(rule) else { continue };
                let table = if rm.direction == Direction::Egress { RULES_EGRESS } else { RULES_INGRESS };
                for m in &rm.matches {
                    let mut mm = Match::any().field("reg5", of);
                    if stateful {
                        mm = mm.field("ct_state", "+trk-rpl-inv");
                    }
                    mm.0.extend(m.0.iter().cloned());
                    match &rule.remote_group_id {
                        Some(rg) => {
                            let key = ConjKey {
                                sg: g.clone(),
                                remote_sg: rg.clone(),
                                direction: rm.direction,
                                family: rm.family,
                            };
                            let Some(id) = self.conj.get(&key) else { continue };
                            let e = flows.entry((table, 71, mm.to_string())).or_insert_with(|| (mm.clone(), vec![]));
                            let a = Action::Raw(format!("conjunction({id},2/2)"));
                            if !e.1.contains(&a) {
                                e.1.push(a);
                            }
                        }
                        None => {
                            if let Some(prefix) = &rm.remote_prefix {
                                mm = mm.field(rm.direction.remote_field(rm.family), prefix);
                            }
                            let mut acts = Vec::new();
                            if stateful {
                                acts.push(raw(CT_COMMIT));
                            }
                            acts.push(match rm.direction {
                                Direction::Egress => Action::Resubmit(ACCEPT_OR_INGRESS),
                                Direction::Ingress => Action::Output(of),
                            });
                            flows.entry((table, 70, mm.to_string())).or_insert((mm, acts));
                        }
                    }
                }
            }
        }
        flows
            .into_iter()
            .map(|((table, prio, _), (m, acts))| Flow::new(table, prio).cookie(cookie).matching(m).actions(acts))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_lib::southbound::{AddressPair, DeviceDetails, FixedIp, SgInfo, SgRule};

    fn port(ofport: u32, groups: &[&str]) -> WiredPort {
        WiredPort {
            iface: format!("tap{ofport}"),
            ofport,
            lvid: 3,
            details: DeviceDetails {
                port_id: format!("p{ofport}"),
                network_id: "n".into(),
                segment: None,
                host: "h".into(),
                mtu: 1450,
                mac_address: "fa:16:3e:00:00:01".into(),
                fixed_ips: vec![FixedIp { subnet_id: "s".into(), ip_address: "10.0.0.5".into() }],
                admin_state_up: true,
                device_owner: "compute:nova".into(),
                port_security_enabled: true,
                security_groups: groups.iter().map(|g| g.to_string()).collect(),
                allowed_address_pairs: vec![AddressPair {
                    ip_address: "10.0.0.100".into(),
                    mac_address: "fa:16:3e:00:00:99".into(),
                }],
                revision_number: 1,
            },
        }
    }

    fn rule(id: &str, dir: &str, proto: Option<&str>, port: Option<i64>, rg: Option<&str>) -> SgRule {
        SgRule {
            id: id.into(),
            direction: dir.into(),
            ethertype: "IPv4".into(),
            protocol: proto.map(String::from),
            port_range_min: port,
            port_range_max: port,
            remote_ip_prefix: None,
            remote_group_id: rg.map(String::from),
        }
    }

    #[test]
    fn port_and_shared_flows() {
        let mut info = SecurityGroupInfo::default();
        info.security_groups.insert(
            "web".into(),
            SgInfo {
                stateful: true,
                rules: vec![
                    rule("r1", "ingress", Some("tcp"), Some(22), None),
                    rule("r2", "ingress", Some("icmp"), None, Some("clients")),
                    rule("r3", "egress", None, None, None),
                ],
            },
        );
        info.sg_member_ips.insert(
            "clients".into(),
            [("IPv4".to_string(), vec!["10.0.0.7".to_string(), "10.0.0.8".to_string()])].into(),
        );
        let mut fw = Firewall::new();
        fw.set_info(info);
        let p = port(7, &["web"]);
        let flows: Vec<String> = fw.port_flows(&p).iter().map(Flow::render).collect();
        let has = |s: &str| flows.iter().any(|f| f.contains(s));
        assert!(has("table=0,priority=100,cookie=0x4e544c3202000007,in_port=7,actions=load:0x7->NXM_NX_REG5[]"));
        assert!(has("table=60,priority=90,") && has("dl_dst=fa:16:3e:00:00:99"), "pair MAC intercepted");
        assert!(has("table=71,priority=65,") && has("nw_src=10.0.0.100"), "pair IP allowed");
        assert!(has("table=71,priority=95,") && has("arp_spa=10.0.0.5"));
        assert!(has("table=82,priority=70,cookie=0x4e544c3202000007,reg5=7,ct_state=+trk-rpl-inv,tcp,tp_dst=22,actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:7"));
        assert!(has("table=72,priority=70,") && has("ct_state=+trk-rpl-inv,ip,actions=ct(commit"));
        let conj_dim: Vec<&String> = flows.iter().filter(|f| f.contains("conjunction(")).collect();
        assert_eq!(conj_dim.len(), 1, "{conj_dim:?}");
        assert!(conj_dim[0].contains("icmp") && conj_dim[0].contains(",2/2)"));
        let shared: Vec<String> = fw.shared_flows().iter().map(Flow::render).collect();
        assert_eq!(shared.iter().filter(|f| f.contains(",1/2)")).count(), 2, "{shared:?}");
        assert!(shared.iter().any(|f| f.contains("conj_id=") && f.contains("output:NXM_NX_REG5[0..15]")));
        // Membership changes touch only the shared flows.
        assert!(fw.concerns(&p.details.security_groups, &["clients".to_string()].into()));
        assert!(!fw.concerns(&p.details.security_groups, &["other".to_string()].into()));
    }

    #[test]
    fn stateless_groups_skip_conntrack() {
        let mut info = SecurityGroupInfo::default();
        info.security_groups.insert(
            "sl".into(),
            SgInfo { stateful: false, rules: vec![rule("r", "ingress", Some("udp"), Some(53), None)] },
        );
        let mut fw = Firewall::new();
        fw.set_info(info);
        let flows: Vec<String> = fw.port_flows(&port(3, &["sl"])).iter().map(Flow::render).collect();
        assert!(flows.iter().all(|f| !f.contains("ct(")), "{flows:?}");
        assert!(flows.iter().any(|f| f.contains("reg5=3,udp,tp_dst=53,actions=output:3")));
    }
}
