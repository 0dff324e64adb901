//! Local VLANs: each network present on the host gets a VLAN id on br-int
//! (host-local, 1..=4094). VM ports are access ports tagged with it, and the
//! tunnel/provider bridges translate it to the network's segment.
//!
//! The mapping is *recovered* from OVSDB when the agent restarts (each wired
//! port keeps `other_config:net_uuid` and its `tag`), never reassigned, so
//! ports keep their tags and existing flows stay valid.

use std::collections::{BTreeMap, BTreeSet};

/// The VLAN Neutron puts ports on that must not forward.
pub const DEAD_VLAN: u16 = 4095;
/// The highest usable local VLAN.
pub const MAX_VLAN: u16 = 4094;

/// Local VLAN ids by network.
#[derive(Debug, Default, Clone)]
pub struct LocalVlans {
    by_net: BTreeMap<String, u16>,
    used: BTreeSet<u16>,
}

impl LocalVlans {
    /// An empty map.
    pub fn new() -> LocalVlans {
        LocalVlans::default()
    }

    /// The VLAN of a network, if it has one.
    pub fn get(&self, net: &str) -> Option<u16> {
        self.by_net.get(net).copied()
    }

    /// The network holding a VLAN.
    pub fn network_of(&self, vlan: u16) -> Option<&str> {
        self.by_net.iter().find(|(_, v)| **v == vlan).map(|(n, _)| n.as_str())
    }

    /// Records a VLAN found on existing ports. Returns false (and changes
    /// nothing) if the network already has another VLAN or the VLAN belongs
    /// to another network.
    pub fn recover(&mut self, net: &str, vlan: u16) -> bool {
        if vlan == 0 || vlan > MAX_VLAN {
            return false;
        }
        match self.by_net.get(net) {
            Some(v) => *v == vlan,
            None if self.used.contains(&vlan) => false,
            None => {
                self.by_net.insert(net.to_string(), vlan);
                self.used.insert(vlan);
                true
            }
        }
    }

    /// The network's VLAN, allocating the lowest free one if needed. `None`
    /// when all 4094 are in use.
    pub fn allocate(&mut self, net: &str) -> Option<u16> {
        if let Some(v) = self.by_net.get(net) {
            return Some(*v);
        }
        let v = (1..=MAX_VLAN).find(|v| !self.used.contains(v))?;
        self.by_net.insert(net.to_string(), v);
        self.used.insert(v);
        Some(v)
    }

    /// Releases a network's VLAN; returns it.
    pub fn release(&mut self, net: &str) -> Option<u16> {
        let v = self.by_net.remove(net)?;
        self.used.remove(&v);
        Some(v)
    }

    /// Networks and their VLANs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u16)> {
        self.by_net.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// How many networks have a VLAN.
    pub fn len(&self) -> usize {
        self.by_net.len()
    }

    /// Whether no network has a VLAN.
    pub fn is_empty(&self) -> bool {
        self.by_net.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_recover_release() {
        let mut v = LocalVlans::new();
        assert!(v.recover("n2", 2));
        assert!(!v.recover("n3", 2), "vlan 2 belongs to n2");
        assert!(!v.recover("n2", 5), "n2 already has vlan 2");
        assert!(!v.recover("n4", DEAD_VLAN));
        assert_eq!(v.allocate("n1"), Some(1));
        assert_eq!(v.allocate("n3"), Some(3));
        assert_eq!(v.allocate("n1"), Some(1));
        assert_eq!(v.network_of(3), Some("n3"));
        assert_eq!(v.release("n1"), Some(1));
        assert_eq!(v.allocate("n5"), Some(1));
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn exhaustion() {
        let mut v = LocalVlans::new();
        for i in 0..MAX_VLAN {
            assert!(v.allocate(&format!("n{i}")).is_some());
        }
        assert_eq!(v.allocate("one-more"), None);
    }
}
