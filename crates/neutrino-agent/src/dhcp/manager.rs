//! The agent's event loop. Notifications, full resyncs, dnsmasq exits and
//! retries all become a *want* per network (serve it, or remove it); the
//! loop runs at most `num_sync_threads` network jobs at a time and never two
//! for the same network, coalescing what arrives meanwhile into one more
//! run. A full resync lists the networks scheduled here and everything the
//! agent left on the host (qdhcp namespaces, conf dirs, OVS ports): what
//! is scheduled is converged, the rest is torn down.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::error::Result;
use super::network::{self, Ctx, NetState, Outcome};
use super::report::ReadyQueue;
use super::rpc::Notification;
use crate::netns::Netns;

/// What the agent serves, for state reports and callers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentStatus {
    /// Networks served.
    pub networks: usize,
    /// Ports with host entries on them.
    pub ports: usize,
    /// DHCP-enabled subnets on them.
    pub subnets: usize,
    /// Completed full resyncs.
    pub syncs: u64,
    /// Duration of the last full resync.
    pub last_sync: Option<Duration>,
    /// Networks that failed in the last full resync (retried later).
    pub last_sync_failures: usize,
}

/// Requests to the loop.
#[derive(Debug)]
pub enum Command {
    /// A notification from the server.
    Notify(Notification),
    /// A full resync (reason for the log).
    FullSync(&'static str),
    /// Retry a network after a failure.
    Retry(String, Want),
    /// The listing of a full resync is in.
    Round(RoundStart),
    /// Stops the loop; with `teardown`, served networks are removed from
    /// the host first (not from the server).
    Stop {
        /// Remove namespaces, devices and dnsmasq processes.
        teardown: bool,
        /// Completed when stopped.
        done: oneshot::Sender<()>,
    },
}

/// What should happen to a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Serve it; `verify` re-checks devices and processes.
    Serve {
        /// Re-check everything.
        verify: bool,
    },
    /// Stop serving it and release the DHCP port.
    Remove,
}

impl Want {
    fn merge(old: Option<Want>, new: Want) -> Want {
        match (old, new) {
            (Some(Want::Serve { verify: a }), Want::Serve { verify: b }) => Want::Serve { verify: a || b },
            (Some(Want::Remove), Want::Serve { .. }) => Want::Serve { verify: true },
            (_, n) => n,
        }
    }
}

struct Round {
    started: Instant,
    waiting: HashSet<String>,
    failures: usize,
    reason: &'static str,
}

type JobResult = (String, Want, Option<NetState>, Result<Vec<String>>);

/// The loop's state (owned by its task).
pub struct Manager {
    ctx: Arc<Ctx>,
    cmd_tx: mpsc::UnboundedSender<Command>,
    ready: Arc<ReadyQueue>,
    status: watch::Sender<AgentStatus>,
    states: HashMap<String, NetState>,
    pending: HashMap<String, Want>,
    queue: VecDeque<String>,
    inflight: HashSet<String>,
    jobs: JoinSet<JobResult>,
    round: Option<Round>,
    listing: Option<tokio::task::JoinHandle<()>>,
}

/// Everything the agent finds on the host for its networks: qdhcp
/// namespaces, conf dirs and OVS ports.
async fn local_networks(ctx: &Ctx) -> BTreeSet<String> {
    let uuid_like = |s: &str| s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let mut out: BTreeSet<String> = Netns::list_prefixed(&ctx.cfg.netns_prefix)
        .into_iter()
        .filter_map(|n| n.strip_prefix(ctx.cfg.netns_prefix.as_str()).map(str::to_string))
        .filter(|id| uuid_like(id))
        .collect();
    if let Ok(rd) = std::fs::read_dir(&ctx.cfg.state_dir) {
        out.extend(
            rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| uuid_like(n)),
        );
    }
    match ctx.plugger.plugged().await {
        Ok(p) => out.extend(p.into_iter().map(|(_, n)| n)),
        Err(e) => tracing::warn!(error = %e, "cannot list the DHCP devices on the bridge"),
    }
    out
}

impl Manager {
    /// A loop over `ctx`; `cmd_tx` is the sender of its own command channel.
    pub fn new(
        ctx: Arc<Ctx>,
        cmd_tx: mpsc::UnboundedSender<Command>,
        ready: Arc<ReadyQueue>,
        status: watch::Sender<AgentStatus>,
    ) -> Manager {
        Manager {
            ctx,
            cmd_tx,
            ready,
            status,
            states: HashMap::new(),
            pending: HashMap::new(),
            queue: VecDeque::new(),
            inflight: HashSet::new(),
            jobs: JoinSet::new(),
            round: None,
            listing: None,
        }
    }

    /// Runs until [`Command::Stop`] (or until every sender is gone).
    pub async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Command>,
        mut exits: mpsc::UnboundedReceiver<(String, i32)>,
    ) {
        let mut tick = tokio::time::interval(self.ctx.cfg.check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(Command::Stop { teardown, done }) => {
                        self.stop(teardown).await;
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.command(c),
                    None => {
                        self.stop(false).await;
                        return;
                    }
                },
                Some(j) = self.jobs.join_next(), if !self.jobs.is_empty() => match j {
                    Ok(r) => self.job_done(r),
                    Err(e) => tracing::error!(error = %e, "a DHCP network job died"),
                },
                Some((id, pid)) = exits.recv() => {
                    // Exits during a job are the job's own doing (restart,
                    // teardown); a crash then is caught by the periodic check.
                    let crashed = self.states.get(&id).is_some_and(|s| s.pid == pid) && !self.inflight.contains(&id);
                    if crashed {
                        tracing::warn!(network = %id, pid, "dnsmasq exited: restarting it");
                        self.want(&id, Want::Serve { verify: true });
                    }
                }
                _ = tick.tick() => {
                    let dead: Vec<String> = self
                        .states
                        .iter()
                        .filter(|(_, s)| !super::dnsmasq::alive(s.pid))
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in dead {
                        tracing::warn!(network = %id, "dnsmasq is gone: restarting it");
                        self.want(&id, Want::Serve { verify: true });
                    }
                }
            }
            self.start_jobs();
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Notify(Notification::Changed(id)) => self.want(&id, Want::Serve { verify: false }),
            Command::Notify(Notification::Removed(id)) => self.want(&id, Want::Remove),
            Command::Notify(Notification::Updated(id)) => {
                let served = self.states.contains_key(&id)
                    || self.inflight.contains(&id)
                    || matches!(self.pending.get(&id), Some(Want::Serve { .. }));
                if served {
                    self.want(&id, Want::Serve { verify: false });
                }
            }
            Command::Retry(id, w) => self.want(&id, w),
            Command::FullSync(reason) => self.list(reason),
            Command::Round(r) => self.start_round(r.started, r.reason, r.active, r.local),
            Command::Stop { .. } => {}
        }
    }

    fn want(&mut self, id: &str, w: Want) {
        let merged = Want::merge(self.pending.get(id).copied(), w);
        self.pending.insert(id.to_string(), merged);
        if !self.queue.iter().any(|q| q == id) {
            self.queue.push_back(id.to_string());
        }
    }

    /// Starts a full resync: a task lists the scheduled networks and the
    /// local leftovers and hands them back as [`Command::Round`].
    fn list(&mut self, reason: &'static str) {
        if self.listing.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let ctx = self.ctx.clone();
        let tx = self.cmd_tx.clone();
        let started = Instant::now();
        self.listing = Some(tokio::spawn(async move {
            match ctx.plugin.active_networks().await {
                Ok(active) => {
                    let local = local_networks(&ctx).await;
                    // Missing namespaces in one batch (one process, instead of
                    // one per network competing for the kernel's locks).
                    let missing: Vec<String> =
                        active.iter().map(|id| ctx.netns(id)).filter(|n| !Netns::new(n.as_str()).exists()).collect();
                    if missing.len() > 1 {
                        if let Err(e) = Netns::create_many(&missing).await {
                            tracing::warn!(error = %e, "creating the namespaces in one batch failed");
                        }
                    }
                    let active = active.into_iter().collect();
                    let _ = tx.send(Command::Round(RoundStart { started, reason, active, local }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, reason, "full resync: cannot list the networks; retrying");
                    tokio::time::sleep(ctx.cfg.resync_interval).await;
                    let _ = tx.send(Command::FullSync(reason));
                }
            }
        }));
    }

    fn start_round(
        &mut self,
        started: Instant,
        reason: &'static str,
        active: BTreeSet<String>,
        local: BTreeSet<String>,
    ) {
        let mut waiting = HashSet::new();
        for id in &active {
            self.want(id, Want::Serve { verify: true });
            waiting.insert(id.clone());
        }
        let stale: Vec<String> =
            self.states.keys().chain(local.iter()).filter(|id| !active.contains(*id)).cloned().collect();
        for id in stale {
            tracing::info!(network = %id, "not scheduled here any more: removing it");
            self.want(&id, Want::Remove);
            waiting.insert(id);
        }
        tracing::info!(reason, networks = active.len(), "full resync started");
        let round = Round { started, waiting, failures: 0, reason };
        if round.waiting.is_empty() {
            self.finish_round(round);
        } else {
            self.round = Some(round);
        }
    }

    fn finish_round(&mut self, r: Round) {
        let took = r.started.elapsed();
        tracing::info!(
            reason = r.reason,
            networks = self.states.len(),
            failures = r.failures,
            elapsed_ms = took.as_secs_f64() * 1e3,
            "full resync done"
        );
        self.status.send_modify(|s| {
            s.syncs += 1;
            s.last_sync = Some(took);
            s.last_sync_failures = r.failures;
        });
    }

    fn start_jobs(&mut self) {
        let max = self.ctx.cfg.num_sync_threads.max(1);
        let mut deferred = Vec::new();
        while self.inflight.len() < max {
            let Some(id) = self.queue.pop_front() else { break };
            if self.inflight.contains(&id) {
                deferred.push(id);
                continue;
            }
            let Some(want) = self.pending.remove(&id) else { continue };
            let prev = self.states.remove(&id);
            self.inflight.insert(id.clone());
            let ctx = self.ctx.clone();
            self.jobs.spawn(async move {
                match want {
                    Want::Serve { verify } => {
                        let keep = prev.clone();
                        match network::converge(&ctx, &id, prev, verify).await {
                            Ok(Outcome::Serving(st, ready)) => (id, want, Some(*st), Ok(ready)),
                            Ok(Outcome::NotServed) => (id, want, None, Ok(vec![])),
                            Err(e) => (id, want, keep, Err(e)),
                        }
                    }
                    Want::Remove => match network::teardown(&ctx, &id, prev.as_ref(), true).await {
                        Ok(()) => (id, want, None, Ok(vec![])),
                        Err(e) => (id, want, prev, Err(e)),
                    },
                }
            });
        }
        // Networks busy now go back in line; they run again when their job ends.
        for id in deferred.into_iter().rev() {
            self.queue.push_front(id);
        }
    }

    fn job_done(&mut self, (id, want, state, result): JobResult) {
        self.inflight.remove(&id);
        let failed = match result {
            Ok(ready) => {
                if !ready.is_empty() {
                    self.ready.add(ready);
                }
                false
            }
            Err(e) => {
                tracing::warn!(network = %id, error = %e, ?want, "DHCP network job failed; retrying later");
                let retry = match want {
                    Want::Serve { .. } => Want::Serve { verify: true },
                    Want::Remove => Want::Remove,
                };
                let tx = self.cmd_tx.clone();
                let wait = self.ctx.cfg.resync_interval;
                let rid = id.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(Command::Retry(rid, retry));
                });
                true
            }
        };
        match state {
            Some(s) => {
                self.states.insert(id.clone(), s);
            }
            None => {
                self.states.remove(&id);
            }
        }
        self.publish();
        if let Some(r) = self.round.as_mut() {
            if r.waiting.remove(&id) {
                if failed {
                    r.failures += 1;
                }
                if r.waiting.is_empty() {
                    if let Some(r) = self.round.take() {
                        self.finish_round(r);
                    }
                }
            }
        }
    }

    fn publish(&self) {
        let (mut ports, mut subnets) = (0, 0);
        for s in self.states.values() {
            ports += s.ports;
            subnets += s.subnets;
        }
        let networks = self.states.len();
        self.status.send_if_modified(|s| {
            let changed = s.networks != networks || s.ports != ports || s.subnets != subnets;
            s.networks = networks;
            s.ports = ports;
            s.subnets = subnets;
            changed
        });
    }

    async fn stop(&mut self, teardown: bool) {
        if let Some(h) = self.listing.take() {
            h.abort();
        }
        while let Some(j) = self.jobs.join_next().await {
            if let Ok(r) = j {
                let (id, _, state, _) = r;
                self.inflight.remove(&id);
                match state {
                    Some(s) => self.states.insert(id, s),
                    None => self.states.remove(&id),
                };
            }
        }
        if teardown {
            let states: Vec<(String, NetState)> = self.states.drain().collect();
            let n = states.len();
            for (id, s) in states {
                if let Err(e) = network::teardown(&self.ctx, &id, Some(&s), false).await {
                    tracing::warn!(network = %id, error = %e, "teardown at stop failed");
                }
            }
            tracing::info!(networks = n, "DHCP agent stopped and removed its networks from the host");
        } else {
            tracing::info!(networks = self.states.len(), "DHCP agent stopped (dnsmasq processes keep serving)");
        }
        self.publish();
    }
}

/// The result of a full-resync listing, delivered to the loop.
#[derive(Debug)]
pub struct RoundStart {
    started: Instant,
    reason: &'static str,
    active: BTreeSet<String>,
    local: BTreeSet<String>,
}
