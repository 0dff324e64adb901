//! Flow programming through `ovs-ofctl -O OpenFlow13` against one bridge.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::flow::{parse_dump, parse_flow_mod_line, Flow, FlowKey, FlowStats};
use crate::cmd::Cmd;
use crate::error::{Error, Result};

/// One modification in a bundle.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowMod {
    /// `add`: installs, or replaces a flow with the same table/priority/match.
    Add(Flow),
    /// `modify_strict`: changes the actions of the exactly matching flow, keeping
    /// its counters (under OpenFlow 1.3 the cookie and timeouts are not changed).
    ModifyStrict(Flow),
    /// `delete_strict` of the exactly matching flow, optionally only if its
    /// cookie matches `cookie/mask`.
    DeleteStrict {
        /// The flow (only table, priority and match are used).
        flow: Flow,
        /// `(cookie, mask)` restriction.
        cookie: Option<(u64, u64)>,
    },
    /// `delete` (non-strict) with a raw `ovs-ofctl` match spec, e.g. `table=20,dl_vlan=5`.
    Delete(String),
}

impl FlowMod {
    /// The line for `ovs-ofctl add-flows` (which accepts per-line commands).
    pub fn render(&self) -> String {
        match self {
            FlowMod::Add(f) => format!("add {}", f.render()),
            FlowMod::ModifyStrict(f) => format!("modify_strict {}", f.render()),
            FlowMod::DeleteStrict { flow, cookie } => match cookie {
                Some((c, m)) => format!("delete_strict {},cookie={c:#x}/{m:#x}", flow.match_spec()),
                None => format!("delete_strict {}", flow.match_spec()),
            },
            FlowMod::Delete(spec) => format!("delete {spec}"),
        }
    }
}

/// Which flows a [`Ofctl::sync`] owns (and may delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncScope {
    /// Every flow of the bridge.
    All,
    /// Flows whose cookie equals the value (the agent's cookie).
    Cookie(u64),
    /// Flows with `cookie & mask == value & mask`.
    CookieMask(u64, u64),
}

impl SyncScope {
    fn filter(self) -> Option<String> {
        match self {
            SyncScope::All => None,
            SyncScope::Cookie(c) => Some(format!("cookie={c:#x}/-1")),
            SyncScope::CookieMask(c, m) => Some(format!("cookie={c:#x}/{m:#x}")),
        }
    }

    fn contains(self, cookie: u64) -> bool {
        match self {
            SyncScope::All => true,
            SyncScope::Cookie(c) => cookie == c,
            SyncScope::CookieMask(c, m) => cookie & m == c & m,
        }
    }

    fn cookie_restriction(self) -> Option<(u64, u64)> {
        match self {
            SyncScope::All => None,
            SyncScope::Cookie(c) => Some((c, u64::MAX)),
            SyncScope::CookieMask(c, m) => Some((c, m)),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Flows added (missing before).
    pub added: usize,
    /// Flows whose actions/cookie/timeouts were changed.
    pub modified: usize,
    /// Stale flows deleted.
    pub deleted: usize,
    /// Flows that were already right and were not touched.
    pub unchanged: usize,
}

impl SyncReport {
    /// Whether the bridge was already converged.
    pub fn is_noop(&self) -> bool {
        self.added == 0 && self.modified == 0 && self.deleted == 0
    }
}

/// `ovs-ofctl` bound to one bridge (its management socket or name).
#[derive(Debug, Clone)]
pub struct Ofctl {
    program: String,
    target: String,
    protocol: String,
}

impl Ofctl {
    /// Targets `target`: a bridge name (default OVS instance) or `unix:<path>.mgmt`.
    pub fn new(target: impl Into<String>) -> Ofctl {
        Ofctl { program: "ovs-ofctl".into(), target: target.into(), protocol: "OpenFlow13".into() }
    }

    /// Targets bridge `bridge` of the OVS instance whose run directory is `rundir`
    /// (`unix:<rundir>/<bridge>.mgmt`).
    pub fn for_bridge(rundir: &Path, bridge: &str) -> Ofctl {
        Ofctl::new(format!("unix:{}/{}.mgmt", rundir.display(), bridge))
    }

    /// Uses another OpenFlow version (default `OpenFlow13`).
    pub fn with_protocol(mut self, p: &str) -> Ofctl {
        self.protocol = p.into();
        self
    }

    /// The target string.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `ovs-ofctl -O <proto> --no-names`: flows use port numbers, and without
    /// names ovs-ofctl skips a port-description round trip before each command.
    fn cmd(&self) -> Cmd {
        Cmd::new(&self.program).arg("-O").arg(&self.protocol).arg("--no-names")
    }

    /// Installs flows atomically (`--bundle add-flows`); existing flows with the
    /// same table/priority/match are replaced.
    pub async fn add_flows(&self, flows: &[Flow]) -> Result<()> {
        self.apply(&flows.iter().cloned().map(FlowMod::Add).collect::<Vec<_>>()).await
    }

    /// Applies modifications atomically in one bundle.
    pub async fn apply(&self, mods: &[FlowMod]) -> Result<()> {
        if mods.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for m in mods {
            text.push_str(&m.render());
            text.push('\n');
        }
        self.cmd().arg("--bundle").arg("add-flows").arg(&self.target).arg("-").stdin(text).run().await?;
        tracing::debug!(bridge = %self.target, mods = mods.len(), "flow bundle applied");
        Ok(())
    }

    /// Replaces the whole flow table atomically with `ovs-ofctl --bundle
    /// replace-flows` (unchanged flows are left alone by ovs-ofctl too).
    pub async fn replace_flows(&self, flows: &[Flow]) -> Result<()> {
        let text: String = flows.iter().map(|f| f.render() + "\n").collect();
        self.cmd().arg("--bundle").arg("replace-flows").arg(&self.target).arg("-").stdin(text).run().await?;
        Ok(())
    }

    /// Deletes flows matching `spec` (`""` = all flows).
    pub async fn del_flows(&self, spec: &str) -> Result<()> {
        let mut c = self.cmd().arg("del-flows").arg(&self.target);
        if !spec.is_empty() {
            c = c.arg(spec);
        }
        c.run().await.map(|_| ())
    }

    /// Dumps flows (optionally only those matching `filter`, e.g. `cookie=0x1/-1`
    /// or `table=20`) with their statistics, port numbers not names.
    pub async fn dump_flows(&self, filter: Option<&str>) -> Result<Vec<FlowStats>> {
        let mut c = self.cmd().arg("dump-flows").arg(&self.target);
        if let Some(f) = filter {
            c = c.arg(f);
        }
        let out = c.run().await?;
        parse_dump(&out.stdout)
    }

    /// The bridge's OpenFlow ports: name → number (`dump-ports-desc`).
    pub async fn port_numbers(&self) -> Result<BTreeMap<String, u32>> {
        let out = Cmd::new(&self.program)
            .arg("-O")
            .arg(&self.protocol)
            .arg("--names")
            .arg("dump-ports-desc")
            .arg(&self.target)
            .run()
            .await?;
        let mut m = BTreeMap::new();
        for l in out.stdout.lines() {
            let l = l.trim();
            // " 1(patch-int): addr:..."   " LOCAL(br-int): addr:..."
            if let Some((num, rest)) = l.split_once('(') {
                if let (Ok(n), Some((name, _))) = (num.trim().parse::<u32>(), rest.split_once("):")) {
                    m.insert(name.to_string(), n);
                }
            }
        }
        Ok(m)
    }

    /// Puts flows into the canonical text form OVS itself prints, using
    /// `ovs-ofctl parse-flows` (no switch involved). Flows must use port
    /// numbers, not names.
    pub async fn canonicalize(&self, flows: &[Flow]) -> Result<Vec<Flow>> {
        if flows.is_empty() {
            return Ok(Vec::new());
        }
        let text: String = flows.iter().map(|f| f.render() + "\n").collect();
        let out = self.cmd().arg("parse-flows").arg("-").stdin(text).run().await?;
        let mut canon = Vec::with_capacity(flows.len());
        for l in out.stdout.lines() {
            if let Some(f) = parse_flow_mod_line(l)? {
                canon.push(f);
            }
        }
        if canon.len() != flows.len() {
            return Err(Error::parse("parse-flows output (flow count mismatch)", out.stdout));
        }
        Ok(canon)
    }

    /// Computes the bundle that would converge the bridge (within `scope`) to
    /// `desired`, without applying it.
    pub async fn plan_sync(&self, desired: &[Flow], scope: SyncScope) -> Result<(Vec<FlowMod>, SyncReport)> {
        if let Some(f) = desired.iter().find(|f| !scope.contains(f.cookie)) {
            return Err(Error::Invalid(format!("flow {f} has a cookie outside the sync scope {scope:?}")));
        }
        let want = self.canonicalize(desired).await?;
        let have = self.dump_flows(scope.filter().as_deref()).await?;
        let mut have_by_key: HashMap<FlowKey, Flow> = HashMap::with_capacity(have.len());
        for s in have {
            if scope.contains(s.flow.cookie) {
                have_by_key.insert(s.flow.key(), s.flow);
            }
        }
        let mut mods = Vec::new();
        let mut report = SyncReport::default();
        let mut seen = std::collections::HashSet::with_capacity(want.len());
        for f in want {
            let key = f.key();
            if !seen.insert(key.clone()) {
                return Err(Error::Invalid(format!("duplicate desired flow {}", f.match_spec())));
            }
            converge_one(&mut have_by_key, key, f, &mut mods, &mut report);
        }
        delete_stale(have_by_key, |_| scope.cookie_restriction(), &mut mods, &mut report);
        Ok((mods, report))
    }

    /// Converges the bridge (or the flows within `scope`) to `desired` in one
    /// atomic bundle: adds what is missing, modifies what differs, deletes what
    /// is stale, and leaves flows that are already right untouched (their
    /// counters and durations keep running, so traffic is not disturbed when
    /// an agent restarts).
    pub async fn sync(&self, desired: &[Flow], scope: SyncScope) -> Result<SyncReport> {
        let (mods, report) = self.plan_sync(desired, scope).await?;
        self.apply(&mods).await?;
        tracing::info!(
            bridge = %self.target,
            added = report.added,
            modified = report.modified,
            deleted = report.deleted,
            unchanged = report.unchanged,
            "flows synced"
        );
        Ok(report)
    }
}

/// Plans one desired flow (canonical, key `key`) against the installed ones
/// of the same key, which it takes out of `have_by_key`.
pub(crate) fn converge_one(
    have_by_key: &mut HashMap<FlowKey, Flow>,
    key: FlowKey,
    f: Flow,
    mods: &mut Vec<FlowMod>,
    report: &mut SyncReport,
) {
    match have_by_key.remove(&key) {
        None => {
            report.added += 1;
            mods.push(FlowMod::Add(f));
        }
        Some(h) if h.same_content(&f) => report.unchanged += 1,
        Some(h) => {
            report.modified += 1;
            // modify_strict keeps the counters but, under OpenFlow 1.3, changes
            // neither the cookie nor the timeouts: those need an `add` (replace).
            if h.cookie == f.cookie && h.idle_timeout == f.idle_timeout && h.hard_timeout == f.hard_timeout {
                mods.push(FlowMod::ModifyStrict(f));
            } else {
                mods.push(FlowMod::Add(f));
            }
        }
    }
}

/// Deletes (strictly, in key order) the installed flows nobody wants;
/// `cookie` gives each deletion's cookie restriction.
pub(crate) fn delete_stale(
    have_by_key: HashMap<FlowKey, Flow>,
    cookie: impl Fn(&Flow) -> Option<(u64, u64)>,
    mods: &mut Vec<FlowMod>,
    report: &mut SyncReport,
) {
    let mut stale: Vec<Flow> = have_by_key.into_values().collect();
    stale.sort_by_key(Flow::key);
    for f in stale {
        report.deleted += 1;
        let cookie = cookie(&f);
        mods.push(FlowMod::DeleteStrict { flow: f, cookie });
    }
}
