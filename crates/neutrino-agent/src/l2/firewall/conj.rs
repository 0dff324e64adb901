//! Conjunction ids of remote-group rules: one per (security group, remote
//! group, direction, family), derived deterministically from the ids so an
//! agent restart computes the same ones and rewrites no flow.

use std::collections::{BTreeMap, BTreeSet};

use neutrino_lib::southbound::SecurityGroupInfo;

use super::rules::{self, Direction, Family};

/// What a conjunction stands for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConjKey {
    /// The group holding the rule.
    pub sg: String,
    /// The rule's remote group.
    pub remote_sg: String,
    /// Direction.
    pub direction: Direction,
    /// Family.
    pub family: Family,
}

/// Conjunction ids in use.
#[derive(Debug, Clone, Default)]
pub struct ConjIds {
    ids: BTreeMap<ConjKey, u32>,
}

fn fnv(key: &ConjKey) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let text = format!("{}|{}|{:?}|{:?}", key.sg, key.remote_sg, key.direction, key.family);
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // Non-zero, below 2^31.
    (h & 0x7fff_ffff).max(1)
}

impl ConjIds {
    /// The ids of every remote-group rule in `info`; collisions are resolved
    /// by probing in key order (deterministic for a given set of rules).
    pub fn compute(info: &SecurityGroupInfo) -> ConjIds {
        let mut keys = BTreeSet::new();
        for (sg, g) in &info.security_groups {
            for r in &g.rules {
                let Some(rg) = &r.remote_group_id else { continue };
                let Some(rm) = rules::translate(r) else { continue };
                keys.insert(ConjKey {
                    sg: sg.clone(),
                    remote_sg: rg.clone(),
                    direction: rm.direction,
                    family: rm.family,
                });
            }
        }
        let mut used = BTreeSet::new();
        let mut ids = BTreeMap::new();
        for k in keys {
            let mut id = fnv(&k);
            while !used.insert(id) {
                id = if id >= 0x7fff_ffff { 1 } else { id + 1 };
            }
            ids.insert(k, id);
        }
        ConjIds { ids }
    }

    /// The id of a key.
    pub fn get(&self, k: &ConjKey) -> Option<u32> {
        self.ids.get(k).copied()
    }

    /// All keys and ids.
    pub fn iter(&self) -> impl Iterator<Item = (&ConjKey, &u32)> {
        self.ids.iter()
    }
}
