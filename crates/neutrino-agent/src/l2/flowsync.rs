//! Converging one bridge's flows, owner by owner (see [`super::cookies`]).
//!
//! [`BridgeFlows::sync`] compares the desired flows of some owners (or of all
//! of them) with what the switch has under those owners' cookies and applies
//! the difference in one atomic bundle. Flows that are already right are not
//! touched: after an agent restart nothing is rewritten and traffic keeps
//! flowing. Desired flows are canonicalised by `ovs-ofctl parse-flows` once
//! and cached by their text, so steady-state syncs only dump and compare.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use crate::openflow::ofctl::{converge_one, delete_stale};
use crate::openflow::{Flow, FlowKey, FlowMod, Ofctl, SyncReport};

use super::cookies::{Owner, TAG, TAG_MASK};
use super::error::L2Result;

/// Which owners a sync covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every flow with the agent's tag (a full resync).
    All,
    /// Only these owners' flows.
    Owners(BTreeSet<Owner>),
}

impl Scope {
    /// A scope of the given owners.
    pub fn owners(o: impl IntoIterator<Item = Owner>) -> Scope {
        Scope::Owners(o.into_iter().collect())
    }

    fn contains(&self, cookie: u64) -> bool {
        match self {
            Scope::All => cookie & TAG_MASK == TAG,
            Scope::Owners(s) => Owner::of_cookie(cookie).is_some_and(|o| s.contains(&o)),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Scope::Owners(s) if s.is_empty())
    }
}

/// Up to this many owners are dumped one by one; more dump the whole tag.
const PER_OWNER_DUMPS: usize = 3;
/// Canonical forms kept (cleared past this).
const CACHE_LIMIT: usize = 400_000;

/// The agent's flows on one bridge.
#[derive(Debug)]
pub struct BridgeFlows {
    ofctl: Ofctl,
    bridge: String,
    canon: Mutex<HashMap<String, Flow>>,
    /// Owners with flows on the bridge (as of the last sync; `None` until a
    /// full sync told): owners neither here nor desired need no dump.
    installed: Mutex<Option<BTreeSet<Owner>>>,
}

impl BridgeFlows {
    /// Flows of `bridge` through `ofctl`.
    pub fn new(bridge: &str, ofctl: Ofctl) -> BridgeFlows {
        BridgeFlows {
            ofctl,
            bridge: bridge.to_string(),
            canon: Mutex::new(HashMap::new()),
            installed: Mutex::new(None),
        }
    }

    /// The bridge name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The ofctl handle.
    pub fn ofctl(&self) -> &Ofctl {
        &self.ofctl
    }

    async fn canonical(&self, desired: Vec<Flow>) -> L2Result<Vec<Flow>> {
        let texts: Vec<String> = desired.iter().map(Flow::render).collect();
        let missing: Vec<Flow> = {
            let cache = self.canon.lock().unwrap_or_else(|p| p.into_inner());
            let mut seen = HashSet::new();
            desired
                .iter()
                .zip(&texts)
                .filter(|(_, t)| !cache.contains_key(*t) && seen.insert((*t).clone()))
                .map(|(f, _)| f.clone())
                .collect()
        };
        if !missing.is_empty() {
            let canon = self.ofctl.canonicalize(&missing).await?;
            let mut cache = self.canon.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() + canon.len() > CACHE_LIMIT {
                cache.clear();
            }
            for (f, c) in missing.iter().zip(canon) {
                cache.insert(f.render(), c);
            }
        }
        let cache = self.canon.lock().unwrap_or_else(|p| p.into_inner());
        Ok(texts.iter().zip(desired).map(|(t, f)| cache.get(t).cloned().unwrap_or(f)).collect())
    }

    async fn dump(&self, scope: &Scope) -> L2Result<Vec<Flow>> {
        // Owners known to have no flows here need no dump.
        let installed = self.installed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let present: Option<BTreeSet<Owner>> = match (scope, &installed) {
            (Scope::Owners(s), Some(inst)) => Some(s.intersection(inst).copied().collect()),
            (Scope::Owners(s), None) => Some(s.clone()),
            (Scope::All, _) => None,
        };
        let filters: Vec<String> = match &present {
            Some(s) if s.is_empty() => return Ok(Vec::new()),
            Some(s) if s.len() <= PER_OWNER_DUMPS => s.iter().map(|o| format!("cookie={:#x}/-1", o.cookie())).collect(),
            _ => vec![format!("cookie={TAG:#x}/{TAG_MASK:#x}")],
        };
        let mut out = Vec::new();
        for f in filters {
            out.extend(self.ofctl.dump_flows(Some(&f)).await?.into_iter().map(|s| s.flow));
        }
        out.retain(|f| scope.contains(f.cookie));
        Ok(out)
    }

    /// Converges the flows of `scope` to `desired` (whose cookies must all be
    /// in the scope; others are ignored with a warning).
    pub async fn sync(&self, desired: Vec<Flow>, scope: &Scope) -> L2Result<SyncReport> {
        if scope.is_empty() {
            return Ok(SyncReport::default());
        }
        let (desired, outside): (Vec<Flow>, Vec<Flow>) = desired.into_iter().partition(|f| scope.contains(f.cookie));
        if let Some(f) = outside.first() {
            tracing::warn!(bridge = %self.bridge, flow = %f, n = outside.len(), "desired flows outside the sync scope ignored");
        }
        let wanted: BTreeSet<Owner> = desired.iter().filter_map(|f| Owner::of_cookie(f.cookie)).collect();
        // Owners that have no flows here and want none: nothing to look at.
        let scope = match scope {
            Scope::Owners(set) => {
                let installed = self.installed.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match installed {
                    Some(inst) => {
                        Scope::Owners(set.iter().copied().filter(|o| wanted.contains(o) || inst.contains(o)).collect())
                    }
                    None => Scope::Owners(set.clone()),
                }
            }
            Scope::All => Scope::All,
        };
        if scope.is_empty() {
            return Ok(SyncReport::default());
        }
        let t0 = std::time::Instant::now();
        let want = self.canonical(desired).await?;
        let t1 = std::time::Instant::now();
        let have = self.dump(&scope).await?;
        let t2 = std::time::Instant::now();
        let (mods, report) = plan(want, have);
        if !mods.is_empty() {
            self.ofctl.apply(&mods).await?;
        }
        let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
        tracing::trace!(
            bridge = %self.bridge,
            canonical_ms = ms(t0, t1),
            dump_ms = ms(t1, t2),
            apply_ms = ms(t2, std::time::Instant::now()),
            "flow sync timing"
        );
        {
            let mut inst = self.installed.lock().unwrap_or_else(|p| p.into_inner());
            match &scope {
                Scope::All => *inst = Some(wanted),
                Scope::Owners(set) => {
                    if let Some(i) = inst.as_mut() {
                        for o in set {
                            if wanted.contains(o) {
                                i.insert(*o);
                            } else {
                                i.remove(o);
                            }
                        }
                    }
                }
            }
        }
        if !report.is_noop() {
            tracing::debug!(
                bridge = %self.bridge,
                added = report.added,
                modified = report.modified,
                deleted = report.deleted,
                unchanged = report.unchanged,
                "flows converged"
            );
        }
        Ok(report)
    }

    /// Whether a flow with this cookie exists in `table` (the canary check).
    pub async fn has_flow(&self, table: u8, owner: Owner) -> L2Result<bool> {
        let f = format!("table={table},cookie={:#x}/-1", owner.cookie());
        Ok(!self.ofctl.dump_flows(Some(&f)).await?.is_empty())
    }
}

/// The bundle turning `have` into `want` (both canonical).
fn plan(want: Vec<Flow>, have: Vec<Flow>) -> (Vec<FlowMod>, SyncReport) {
    let mut have_by_key: HashMap<FlowKey, Flow> = have.into_iter().map(|f| (f.key(), f)).collect();
    let mut report = SyncReport::default();
    let mut mods = Vec::new();
    let mut seen: BTreeMap<FlowKey, u64> = BTreeMap::new();
    for f in want {
        let key = f.key();
        if let Some(c) = seen.insert(key.clone(), f.cookie) {
            tracing::warn!(flow = %f, other_cookie = c, "duplicate desired flow (same table/priority/match) skipped");
            continue;
        }
        converge_one(&mut have_by_key, key, f, &mut mods, &mut report);
    }
    delete_stale(have_by_key, |f| Some((f.cookie, u64::MAX)), &mut mods, &mut report);
    (mods, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::{Action, Match};

    #[test]
    fn plan_keeps_what_is_right() {
        let c = Owner::Port(5).cookie();
        let a = Flow::new(0, 9).cookie(c).matching(Match::any().in_port(5)).action(Action::Resubmit(60));
        let b = Flow::new(0, 10).cookie(c).matching(Match::any().in_port(5).proto("arp")).action(Action::Resubmit(24));
        let old = Flow::new(25, 2).cookie(c).matching(Match::any().in_port(5)).action(Action::Resubmit(60));
        let b2 = b.clone().actions(vec![Action::Resubmit(25)]);
        let (mods, r) = plan(vec![a.clone(), b2.clone()], vec![a, b, old]);
        assert_eq!((r.added, r.modified, r.deleted, r.unchanged), (0, 1, 1, 1));
        assert!(matches!(&mods[0], FlowMod::ModifyStrict(f) if *f == b2));
        assert!(matches!(&mods[1], FlowMod::DeleteStrict { cookie: Some((cc, _)), .. } if *cc == c));
    }

    #[test]
    fn scopes() {
        let s = Scope::owners([Owner::Port(1), Owner::Network(2)]);
        assert!(s.contains(Owner::Port(1).cookie()));
        assert!(!s.contains(Owner::Port(2).cookie()));
        assert!(Scope::All.contains(Owner::Base.cookie()));
        assert!(!Scope::All.contains(0x1));
        assert!(Scope::owners([]).is_empty());
    }
}
