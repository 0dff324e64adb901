//! Wiring ports on br-int: a port bound to this host (and administratively
//! up) gets its network's local VLAN as access tag, Neutron's
//! `other_config` keys (`net_uuid`, `network_type`, `physical_network`,
//! `segmentation_id`, `tag`, from which a restarted agent recovers its local
//! VLANs) and its flows. Anything else — unbound, bound elsewhere, deleted,
//! administratively down — sits on the dead VLAN 4095 without flows, which
//! the default-drop entry table leaves unable to forward.

use std::collections::{BTreeMap, BTreeSet};

use neutrino_lib::southbound::DeviceDetails;

use crate::ovsdb::ops::row;
use crate::ovsdb::{Condition, Datum, Operation};

use super::agent::Agent;
use super::cookies::Owner;
use super::error::L2Result;
use super::local_vlan::DEAD_VLAN;
use super::model::{Net, NetSegment, WiredPort};

/// What a pass changes, collected while the model is updated.
#[derive(Debug, Default)]
pub(crate) struct Work {
    /// Flow owners to converge.
    pub dirty: BTreeSet<Owner>,
    /// Ports to report up.
    pub up: BTreeSet<String>,
    /// Ports to report down.
    pub down: BTreeSet<String>,
    /// Port tags to write: interface → (tag, network) (`DEAD_VLAN` and "" to kill).
    pub tags: BTreeMap<String, (u16, String)>,
    /// Networks new on the host (their peers must be fetched).
    pub new_nets: BTreeSet<String>,
    /// Filtered ports were added or changed groups: refetch security groups.
    pub groups_changed: bool,
}

impl Agent {
    /// Whether this host can carry a segment (tunnel type offered, physical
    /// network mapped).
    pub(crate) fn can_carry(&self, s: &NetSegment) -> bool {
        match s {
            NetSegment::Local => true,
            NetSegment::Flat { physnet } | NetSegment::Vlan { physnet, .. } => self.providers.contains_key(physnet),
            NetSegment::Tunnel { kind, .. } => self.tun.is_some() && self.cfg.tunnel_types.contains(kind),
        }
    }

    /// Applies a port's details: wires it, rewires it, or puts it on the dead VLAN.
    pub(crate) fn apply_details(&mut self, d: DeviceDetails, w: &mut Work) {
        let Some(iface) = self.port_iface.get(&d.port_id).cloned() else { return };
        let Some(ofport) = self.ifaces.get(&iface).map(|p| p.ofport) else { return };
        let segment = d.segment.as_ref().and_then(NetSegment::from_bound);
        if d.segment.is_some() && segment.is_none() {
            tracing::warn!(port = %d.port_id, segment = ?d.segment, "segment type not supported by this agent");
        }
        let segment = segment.filter(|s| {
            let ok = self.can_carry(s);
            if !ok {
                tracing::warn!(port = %d.port_id, segment = ?s, "this host cannot reach the port's segment");
            }
            ok
        });
        match segment {
            Some(seg) if d.admin_state_up => self.wire(d, iface, ofport, seg, w),
            _ => {
                let id = d.port_id.clone();
                if self.ports.contains_key(&id) {
                    self.unwire(&id, w);
                }
                w.tags.insert(iface, (DEAD_VLAN, String::new()));
                if d.host == self.cfg.host {
                    // Bound here but down (admin state): the server shows DOWN.
                    w.down.insert(id);
                }
            }
        }
    }

    fn wire(&mut self, d: DeviceDetails, iface: String, ofport: u32, seg: NetSegment, w: &mut Work) {
        let net_id = d.network_id.clone();
        let id = d.port_id.clone();
        // A port wired before: moved (other ofport/interface/network) or just updated.
        match self.ports.get(&id) {
            Some(old) if old.ofport != ofport || old.iface != iface || old.details.network_id != net_id => {
                let same_net = old.details.network_id == net_id;
                if same_net {
                    // Keep the network (and its VLAN): only the port's flows go.
                    if let Some(old) = self.ports.remove(&id) {
                        w.dirty.insert(Owner::Port(old.ofport));
                    }
                } else {
                    self.unwire(&id, w);
                }
                w.groups_changed = true;
            }
            Some(old) => {
                if same_wiring(&old.details, &d) && self.nets.get(&net_id).is_some_and(|n| n.segment == seg) {
                    // Nothing to rewire (a status change, a name...): only
                    // report it up again, in case the server rebound it, and
                    // remember the revision seen (the resync check compares it).
                    if let Some(p) = self.ports.get_mut(&id) {
                        p.details = d;
                    }
                    w.up.insert(id);
                    return;
                }
                if old.details.security_groups != d.security_groups
                    || old.details.port_security_enabled != d.port_security_enabled
                    || old.details.device_owner != d.device_owner
                {
                    w.groups_changed = true;
                }
            }
            None => w.groups_changed = true,
        }
        let lvid = match self.nets.get_mut(&net_id) {
            Some(n) => {
                if n.segment != seg {
                    tracing::info!(network = %net_id, old = ?n.segment, new = ?seg, "network segment changed");
                    n.segment = seg;
                    w.dirty.insert(Owner::Network(n.lvid));
                    w.new_nets.insert(net_id.clone());
                }
                n.lvid
            }
            None => {
                let Some(lvid) = self.vlans.allocate(&net_id) else {
                    tracing::error!(network = %net_id, "no local VLAN left (4094 networks on this host)");
                    return;
                };
                tracing::info!(network = %net_id, lvid, segment = ?seg, "network added to the host");
                self.nets.insert(
                    net_id.clone(),
                    Net { id: net_id.clone(), lvid, segment: seg, peers: Vec::new(), ports: BTreeSet::new() },
                );
                w.dirty.insert(Owner::Network(lvid));
                w.new_nets.insert(net_id.clone());
                lvid
            }
        };
        if let Some(n) = self.nets.get_mut(&net_id) {
            n.ports.insert(id.clone());
        }
        tracing::debug!(port = %id, %iface, ofport, lvid, "port wired");
        w.tags.insert(iface.clone(), (lvid, net_id));
        self.ports.insert(id.clone(), WiredPort { iface, ofport, lvid, details: d });
        w.dirty.insert(Owner::Port(ofport));
        w.up.insert(id);
    }

    /// Removes a port's wiring (its flows; its network if it was the last
    /// port). The OVS port itself is left alone.
    pub(crate) fn unwire(&mut self, port_id: &str, w: &mut Work) {
        let Some(p) = self.ports.remove(port_id) else { return };
        tracing::debug!(port = port_id, iface = %p.iface, ofport = p.ofport, "port unwired");
        w.dirty.insert(Owner::Port(p.ofport));
        w.up.remove(port_id);
        if p.secured() {
            w.groups_changed = true;
        }
        let net_id = p.details.network_id.clone();
        let empty = self.nets.get_mut(&net_id).map(|n| {
            n.ports.remove(port_id);
            n.ports.is_empty()
        });
        if empty == Some(true) {
            self.release_net(&net_id, w);
        }
    }

    /// Drops a network without local ports: its flows go, its VLAN is freed.
    pub(crate) fn release_net(&mut self, net_id: &str, w: &mut Work) {
        if let Some(n) = self.nets.remove(net_id) {
            tracing::info!(network = net_id, lvid = n.lvid, "network removed from the host");
            w.dirty.insert(Owner::Network(n.lvid));
            self.vlans.release(net_id);
        }
    }

    /// A port deleted on the server (or unknown to it): dead VLAN, no flows.
    pub(crate) fn kill(&mut self, port_id: &str, w: &mut Work) {
        if self.ports.contains_key(port_id) {
            self.unwire(port_id, w);
        }
        if let Some(iface) = self.port_iface.get(port_id) {
            w.tags.insert(iface.clone(), (DEAD_VLAN, String::new()));
        }
    }

    /// Writes port tags (and Neutron's `other_config`) in one OVSDB
    /// transaction; tags already in place are skipped.
    pub(crate) async fn write_tags(&mut self, tags: &BTreeMap<String, (u16, String)>) -> L2Result<()> {
        let mut ops = Vec::new();
        let mut written = Vec::new();
        for (iface, (tag, net)) in tags {
            if self.tags.get(iface) == Some(&(*tag, net.clone())) {
                continue;
            }
            let mut other: BTreeMap<String, String> = BTreeMap::new();
            if let Some(n) = self.nets.get(net).filter(|_| *tag != DEAD_VLAN) {
                other.insert("net_uuid".into(), net.clone());
                other.insert("network_type".into(), n.segment.network_type().into());
                if let Some(p) = n.segment.physnet() {
                    other.insert("physical_network".into(), p.into());
                }
                let seg = n.segment.segmentation_id();
                if !seg.is_empty() {
                    other.insert("segmentation_id".into(), seg);
                }
                other.insert("tag".into(), tag.to_string());
            }
            ops.push(Operation::update(
                "Port",
                vec![Condition::eq("name", iface.as_str())],
                row([("tag", Datum::scalar(i64::from(*tag))), ("other_config", Datum::from(&other))]),
            ));
            written.push((iface.clone(), (*tag, net.clone())));
        }
        if ops.is_empty() {
            return Ok(());
        }
        let n = ops.len();
        // Not waiting for ovs-vswitchd: it applies the tags while the flows
        // are computed (an untagged port forwards nowhere meanwhile).
        self.db.transact(&ops).await?;
        tracing::debug!(ports = n, "port tags written");
        self.tags.extend(written);
        Ok(())
    }
}

/// Whether two details of a port wire it the same way (everything but the
/// revision number).
fn same_wiring(a: &DeviceDetails, b: &DeviceDetails) -> bool {
    DeviceDetails { revision_number: 0, ..a.clone() } == DeviceDetails { revision_number: 0, ..b.clone() }
}
