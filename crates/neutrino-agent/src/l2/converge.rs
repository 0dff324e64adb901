//! One pass of the agent: from pending work to a converged switch.
//!
//! The flows of every bridge are a pure function of the model (see
//! [`super::int_bridge`], [`super::tunnels`], [`super::provider`],
//! [`super::firewall`]); a pass converges only the owners it touched, a full
//! resync all of them.

use std::collections::{BTreeMap, BTreeSet};

use crate::bridges::Layout;
use crate::openflow::Flow;
use crate::ovsdb::Commit;

use super::agent::{Agent, Pending};
use super::cookies::Owner;
use super::error::L2Result;
use super::flowsync::Scope;
use super::int_bridge::{self, Filtering};
use super::model::NetSegment;
use super::wiring::Work;
use super::{provider, tunnels};

impl Agent {
    /// How a port is filtered.
    pub(crate) fn filtering(&self, p: &super::model::WiredPort) -> Filtering {
        if !p.secured() {
            Filtering::None
        } else {
            match self.cfg.firewall_driver {
                super::config::FirewallDriver::Openvswitch => Filtering::Firewall,
                super::config::FirewallDriver::Noop => Filtering::AntiSpoof,
            }
        }
    }

    /// Every owner of the current model (for a full resync).
    fn all_owners(&self) -> BTreeSet<Owner> {
        let mut o: BTreeSet<Owner> = [Owner::Base, Owner::Firewall(0)].into();
        o.extend(self.nets.values().map(|n| Owner::Network(n.lvid)));
        o.extend(self.ports.values().map(|p| Owner::Port(p.ofport)));
        o.extend(self.tunnels.values().map(|p| Owner::Tunnel(*p)));
        o
    }

    fn desired_int(&self, owners: &BTreeSet<Owner>) -> Vec<Flow> {
        let by_ofport: BTreeMap<u32, &super::model::WiredPort> = self.ports.values().map(|p| (p.ofport, p)).collect();
        let by_lvid: BTreeMap<u16, &super::model::Net> = self.nets.values().map(|n| (n.lvid, n)).collect();
        let mut f = Vec::new();
        for o in owners {
            match o {
                Owner::Base => {
                    let phys: BTreeSet<u32> = self.providers.values().map(|p| p.int_ofport).collect();
                    f.extend(int_bridge::base_flows(self.tun.as_ref().map(|t| t.patch_tun), &phys));
                }
                Owner::Network(l) => {
                    if let Some(n) = by_lvid.get(l) {
                        let pp = n.segment.physnet().and_then(|p| self.providers.get(p)).map(|p| p.int_ofport);
                        f.extend(int_bridge::network_flows(n, pp));
                    }
                }
                Owner::Port(of) => {
                    if let Some(p) = by_ofport.get(of) {
                        f.extend(int_bridge::port_flows(p, self.filtering(p), &self.fw));
                    }
                }
                Owner::Firewall(_) => {
                    if self.ports.values().any(|p| self.filtering(p) == Filtering::Firewall) {
                        f.extend(self.fw.shared_flows());
                    }
                }
                Owner::Tunnel(_) => {}
            }
        }
        f
    }

    fn desired_tun(&self, owners: &BTreeSet<Owner>, patch_int: u32) -> Vec<Flow> {
        let by_lvid: BTreeMap<u16, &super::model::Net> = self.nets.values().map(|n| (n.lvid, n)).collect();
        let mut f = Vec::new();
        for o in owners {
            match o {
                Owner::Base => f.extend(tunnels::base_flows(patch_int, self.cfg.arp_responder)),
                Owner::Network(l) => {
                    if let Some(n) = by_lvid.get(l) {
                        f.extend(tunnels::network_flows(n, &self.tunnels, self.cfg.arp_responder));
                    }
                }
                Owner::Tunnel(of) => {
                    if let Some(((kind, _), _)) = self.tunnels.iter().find(|(_, p)| *p == of) {
                        f.extend(tunnels::tunnel_port_flows(*kind, *of));
                    }
                }
                _ => {}
            }
        }
        f
    }

    /// Converges the flows of `owners` (`None`: everything) on every bridge.
    pub(crate) async fn converge(&self, owners: Option<&BTreeSet<Owner>>) -> L2Result<()> {
        let all;
        let (owners, full) = match owners {
            Some(o) => (o, false),
            None => {
                all = self.all_owners();
                (&all, true)
            }
        };
        let scope_of = |keep: &dyn Fn(&Owner) -> bool| -> (BTreeSet<Owner>, Scope) {
            let set: BTreeSet<Owner> = owners.iter().copied().filter(|o| keep(o)).collect();
            let scope = if full { Scope::All } else { Scope::Owners(set.clone()) };
            (set, scope)
        };
        let (set, scope) = scope_of(&|o| !matches!(o, Owner::Tunnel(_)));
        let int = self.int.sync(self.desired_int(&set), &scope);
        let tun = async {
            match &self.tun {
                Some(t) => {
                    let (set, scope) = scope_of(&|o| matches!(o, Owner::Base | Owner::Network(_) | Owner::Tunnel(_)));
                    t.flows.sync(self.desired_tun(&set, t.patch_int), &scope).await.map(|_| ())
                }
                None => Ok(()),
            }
        };
        let phys = async {
            let (set, scope) = scope_of(&|o| matches!(o, Owner::Base | Owner::Network(_)));
            for p in self.providers.values() {
                let mut f = Vec::new();
                for o in &set {
                    match o {
                        Owner::Base => f.extend(provider::base_flows(p.phy_ofport)),
                        Owner::Network(l) => {
                            if let Some(n) = self.nets.values().find(|n| n.lvid == *l) {
                                f.extend(provider::network_flows(n, &p.physnet, p.phy_ofport));
                            }
                        }
                        _ => {}
                    }
                }
                p.flows.sync(f, &scope).await?;
            }
            Ok::<_, super::error::L2Error>(())
        };
        let (a, b, c) = tokio::join!(int, tun, phys);
        a?;
        b?;
        c?;
        Ok(())
    }

    /// Fetches the peers of `nets` (tunnel networks only matter) and marks
    /// the networks whose peers changed.
    pub(crate) async fn refresh_peers(&mut self, nets: &BTreeSet<String>, w: &mut Work) -> L2Result<()> {
        let ids: Vec<String> = nets
            .iter()
            .filter(|n| self.nets.get(*n).is_some_and(|n| matches!(n.segment, NetSegment::Tunnel { .. })))
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let peers = self.plugin.network_peers(&ids).await?;
        for (id, np) in peers {
            if let Some(n) = self.nets.get_mut(&id) {
                let mut new = np.peers;
                new.sort_by(|a, b| a.host.cmp(&b.host));
                if n.peers != new {
                    n.peers = new;
                    w.dirty.insert(Owner::Network(n.lvid));
                }
            }
        }
        Ok(())
    }

    /// Creates the tunnel ports the networks need; returns the ones no
    /// longer needed (already out of the model, their flows marked dirty):
    /// they are deleted after the flows converged.
    pub(crate) async fn ensure_tunnels(
        &mut self,
        w: &mut Work,
    ) -> L2Result<Vec<(crate::ovsdb::TunnelType, std::net::Ipv4Addr)>> {
        let (Some(local), Some(_)) = (self.cfg.local_ip, self.tun.as_ref()) else { return Ok(Vec::new()) };
        let want = tunnels::desired_tunnels(self.nets.values(), local);
        let layout = self.layout();
        for key in &want {
            if self.tunnels.contains_key(key) {
                continue;
            }
            let t = layout.ensure_tunnel_port(&self.db, key.0, local, key.1).await?;
            self.tunnels.insert(*key, t.ofport);
            w.dirty.insert(Owner::Tunnel(t.ofport));
            for n in self.nets.values() {
                if matches!(n.segment, NetSegment::Tunnel { kind, .. } if kind == key.0) {
                    w.dirty.insert(Owner::Network(n.lvid));
                }
            }
        }
        let stale: Vec<_> = self.tunnels.keys().filter(|k| !want.contains(k)).copied().collect();
        for k in &stale {
            if let Some(of) = self.tunnels.remove(k) {
                w.dirty.insert(Owner::Tunnel(of));
            }
        }
        Ok(stale)
    }

    /// Deletes tunnel ports (after their flows are gone).
    pub(crate) async fn remove_tunnels(
        &self,
        stale: &[(crate::ovsdb::TunnelType, std::net::Ipv4Addr)],
    ) -> L2Result<()> {
        let names: Vec<String> = stale.iter().map(|(k, ip)| crate::bridges::tunnel_port_name(*k, *ip)).collect();
        if names.is_empty() {
            return Ok(());
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.db.del_ports(&refs, Commit::NoWait).await?;
        tracing::info!(ports = ?names, "unused tunnel ports removed");
        Ok(())
    }

    /// The bridge layout helper for this agent's names and datapath.
    pub(crate) fn layout(&self) -> Layout {
        let mut l = Layout::new(self.cfg.datapath_type);
        l.int_bridge = self.cfg.integration_bridge.clone();
        l.tun_bridge = self.cfg.tunnel_bridge.clone();
        l
    }

    /// Refetches security groups for every filtered port when needed and
    /// marks what changed: the shared flows, and the ports whose groups'
    /// rules changed.
    pub(crate) async fn refresh_groups(&mut self, changed: &BTreeSet<String>, w: &mut Work) -> L2Result<()> {
        let filtered: Vec<String> = self
            .ports
            .iter()
            .filter(|(_, p)| self.filtering(p) == Filtering::Firewall)
            .map(|(id, _)| id.clone())
            .collect();
        let concerned = !changed.is_empty()
            && self.ports.values().any(|p| {
                self.filtering(p) == Filtering::Firewall && self.fw.concerns(&p.details.security_groups, changed)
            });
        if !w.groups_changed && !concerned {
            return Ok(());
        }
        let info = self.plugin.security_group_info(&filtered).await?;
        let old = self.fw.info().security_groups.clone();
        let rules_changed: BTreeSet<&String> = info
            .security_groups
            .iter()
            .filter(|(g, sg)| old.get(*g) != Some(sg))
            .map(|(g, _)| g)
            .chain(old.keys().filter(|g| !info.security_groups.contains_key(*g)))
            .collect();
        for p in self.ports.values() {
            if self.filtering(p) == Filtering::Firewall
                && p.details.security_groups.iter().any(|g| rules_changed.contains(g))
            {
                w.dirty.insert(Owner::Port(p.ofport));
            }
        }
        if !rules_changed.is_empty() {
            tracing::debug!(groups = ?rules_changed, "security group rules changed");
        }
        let shared_changed = !rules_changed.is_empty() || info.sg_member_ips != self.fw.info().sg_member_ips;
        self.fw.set_info(info);
        if shared_changed || w.groups_changed {
            w.dirty.insert(Owner::Firewall(0));
        }
        Ok(())
    }

    /// Reports devices up and down.
    pub(crate) async fn report_devices(&self, w: &Work) -> L2Result<()> {
        let up: Vec<String> = w.up.iter().filter(|id| self.ports.contains_key(*id)).cloned().collect();
        let down: Vec<String> = w.down.iter().filter(|id| !self.ports.contains_key(*id)).cloned().collect();
        if up.is_empty() && down.is_empty() {
            return Ok(());
        }
        let r = self.plugin.update_device_list(&up, &down).await?;
        if !r.failed_devices_up.is_empty() || !r.failed_devices_down.is_empty() {
            tracing::debug!(failed_up = ?r.failed_devices_up, failed_down = ?r.failed_devices_down, "devices the server did not update");
        }
        tracing::info!(up = up.len(), down = down.len(), "devices reported");
        Ok(())
    }

    /// One incremental pass (or a full resync).
    pub(crate) async fn process(&mut self, p: Pending) -> L2Result<()> {
        if p.full {
            return self.resync().await;
        }
        let mut w = Work::default();
        let mut clock = StageClock::new();
        for (id, iface) in &p.unplugged {
            if self.ports.get(id).is_some_and(|x| &x.iface == iface) {
                self.unwire(id, &mut w);
                w.down.insert(id.clone());
            }
            self.tags.remove(iface);
        }
        for id in &p.deleted {
            self.kill(id, &mut w);
        }
        let mut refresh: BTreeSet<String> = p.plugged.union(&p.refresh).cloned().collect();
        refresh.retain(|id| self.port_iface.contains_key(id) && !p.deleted.contains(id));
        if !refresh.is_empty() {
            let on_int = self.int_port_names().await?;
            refresh.retain(|id| self.port_iface.get(id).is_some_and(|i| on_int.contains(i)));
            let ids: Vec<String> = refresh.into_iter().collect();
            let (details, failed) = self.plugin.devices_details(&ids, self.cfg.device_batch).await?;
            for id in failed {
                tracing::info!(port = %id, "port unknown to the server: dead VLAN");
                self.kill(&id, &mut w);
            }
            for d in details {
                self.apply_details(d, &mut w);
            }
            clock.lap("details");
        }
        let mut nets: BTreeSet<String> = p.peers.union(&w.new_nets).cloned().collect();
        if p.tunnels {
            nets.extend(self.nets.keys().cloned());
        }
        self.refresh_peers(&nets, &mut w).await?;
        clock.lap("peers");
        self.refresh_groups(&p.groups, &mut w).await?;
        clock.lap("groups");
        let stale = self.ensure_tunnels(&mut w).await?;
        let tags = std::mem::take(&mut w.tags);
        self.write_tags(&tags).await?;
        clock.lap("tags");
        self.converge(Some(&w.dirty)).await?;
        clock.lap("flows");
        self.remove_tunnels(&stale).await?;
        self.report_devices(&w).await?;
        clock.lap("report");
        tracing::debug!(stages = %clock, owners = w.dirty.len(), "pass stages");
        Ok(())
    }

    /// Names of the ports on br-int.
    pub(crate) async fn int_port_names(&self) -> L2Result<BTreeSet<String>> {
        Ok(self.db.list_ports(&self.cfg.integration_bridge).await?.into_iter().map(|p| p.name).collect())
    }
}

/// Time spent per stage of a pass (for the debug log).
struct StageClock {
    last: std::time::Instant,
    laps: Vec<(&'static str, f64)>,
}

impl StageClock {
    fn new() -> StageClock {
        StageClock { last: std::time::Instant::now(), laps: Vec::new() }
    }

    fn lap(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        if ms >= 0.5 {
            self.laps.push((stage, ms));
        }
        self.last = now;
    }
}

impl std::fmt::Display for StageClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (s, ms)) in self.laps.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{s}={ms:.1}ms")?;
        }
        Ok(())
    }
}
