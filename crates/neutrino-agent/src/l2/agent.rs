//! The agent's state and main loop.
//!
//! One task owns everything. Events — OVSDB interface changes (ports plugged
//! and unplugged), the server's notifications, bus reconnections, a periodic
//! canary check — are absorbed into [`Pending`] work, batched with whatever
//! else is already queued, and processed in one pass: fetch what changed
//! from the server, update the model, write port tags, converge the flows of
//! the objects touched, report devices up/down. A full resync (start, bus
//! reconnect, OVSDB reconnect, flow-table reset, any failure) runs the same
//! code over everything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use neutrino_rpc::{ServerHandle, Transport};
use tokio::sync::{mpsc, watch};

use crate::ovsdb::{Client, Interface, InterfaceEvent, InterfaceMonitor};

use super::config::L2Config;
use super::error::{L2Error, L2Result};
use super::firewall::Firewall;
use super::flowsync::BridgeFlows;
use super::local_vlan::LocalVlans;
use super::model::{Net, Plugged, WiredPort};
use super::notifications::{self, Notification};
use super::plugin::PluginApi;
use super::provider::Provider;
use super::tunnels::TunnelPorts;
use super::{report, tunnels};

/// How often the canary flow is checked (a missing canary means the flow
/// tables were reset, e.g. ovs-vswitchd restarted: full resync).
const CANARY_INTERVAL: Duration = Duration::from_secs(5);

/// Work waiting for the next pass.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pending {
    /// Everything: resync with the server and the switch.
    pub full: bool,
    /// Ports whose interface appeared or changed.
    pub plugged: BTreeSet<String>,
    /// Ports whose interface disappeared: (port id, interface).
    pub unplugged: BTreeSet<(String, String)>,
    /// Ports to re-fetch (notifications).
    pub refresh: BTreeSet<String>,
    /// Ports deleted on the server.
    pub deleted: BTreeSet<String>,
    /// Networks whose remote endpoints changed.
    pub peers: BTreeSet<String>,
    /// Security groups whose rules or members changed.
    pub groups: BTreeSet<String>,
    /// Tunnel endpoints changed: refresh the peers of every tunnel network.
    pub tunnels: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.full
            && self.plugged.is_empty()
            && self.unplugged.is_empty()
            && self.refresh.is_empty()
            && self.deleted.is_empty()
            && self.peers.is_empty()
            && self.groups.is_empty()
            && !self.tunnels
    }
}

/// The tunnel bridge and its patch ports.
#[derive(Debug)]
pub(crate) struct TunBridge {
    /// Its flows.
    pub flows: BridgeFlows,
    /// `patch-int` on br-tun.
    pub patch_int: u32,
    /// `patch-tun` on br-int.
    pub patch_tun: u32,
}

/// Everything the agent knows and owns.
pub(crate) struct Agent {
    pub cfg: L2Config,
    pub db: Client,
    pub plugin: PluginApi,
    pub int: BridgeFlows,
    pub tun: Option<TunBridge>,
    pub providers: BTreeMap<String, Provider>,
    pub vlans: LocalVlans,
    pub nets: BTreeMap<String, Net>,
    pub ports: BTreeMap<String, WiredPort>,
    /// Interfaces with an iface-id, by interface name.
    pub ifaces: BTreeMap<String, Plugged>,
    /// Port id → interface name.
    pub port_iface: BTreeMap<String, String>,
    /// Tunnel interfaces seen in OVSDB, by name.
    pub tunnel_ifaces: BTreeMap<String, Interface>,
    /// Tunnel ports in use.
    pub tunnels: TunnelPorts,
    /// Port tags as last written or read: interface → (tag, network).
    pub tags: BTreeMap<String, (u16, String)>,
    pub fw: Firewall,
}

impl Agent {
    /// The wired ports whose revision differs from the server's (to
    /// re-fetch) and those the server no longer binds here (to drop): one
    /// `get_ports_on_host` call, nothing else when everything agrees.
    async fn drifted(&self) -> L2Result<(BTreeSet<String>, BTreeSet<String>)> {
        let server: BTreeMap<String, i64> =
            self.plugin.ports_on_host().await?.into_iter().map(|p| (p.id, p.revision_number)).collect();
        let mut stale = BTreeSet::new();
        let mut gone = BTreeSet::new();
        for (id, w) in &self.ports {
            match server.get(id) {
                None => {
                    gone.insert(id.clone());
                }
                Some(r) if *r != w.details.revision_number => {
                    stale.insert(id.clone());
                }
                Some(_) => {}
            }
        }
        Ok((stale, gone))
    }

    /// Records an OVSDB interface event into `p`.
    fn on_iface(&mut self, ev: InterfaceEvent, p: &mut Pending) {
        match ev {
            InterfaceEvent::Added(i) | InterfaceEvent::Modified { new: i, .. } => self.iface_seen(i, p),
            InterfaceEvent::Deleted(i) => self.iface_gone(&i.name, p),
            InterfaceEvent::Synced { reconnect: true } => {
                tracing::info!("ovsdb reconnected: full resync");
                p.full = true;
            }
            InterfaceEvent::Synced { reconnect: false } => {}
            InterfaceEvent::Disconnected { reason } => tracing::warn!(%reason, "ovsdb monitor disconnected"),
        }
    }

    fn iface_seen(&mut self, i: Interface, p: &mut Pending) {
        if tunnels::parse_tunnel_iface(&i).is_some() {
            self.tunnel_ifaces.insert(i.name.clone(), i.clone());
        }
        let now = match (i.iface_id(), i.valid_ofport()) {
            (Some(id), Some(ofport)) if !id.is_empty() => {
                Some(Plugged { port_id: id.to_string(), ofport, mac: i.external_ids.get("attached-mac").cloned() })
            }
            _ => None,
        };
        let before = self.ifaces.get(&i.name).cloned();
        if before == now {
            return;
        }
        if let Some(b) = before {
            p.unplugged.insert((b.port_id.clone(), i.name.clone()));
            if self.port_iface.get(&b.port_id) == Some(&i.name) {
                self.port_iface.remove(&b.port_id);
            }
            self.ifaces.remove(&i.name);
        }
        if let Some(n) = now {
            tracing::debug!(iface = %i.name, port = %n.port_id, ofport = n.ofport, "interface plugged");
            p.plugged.insert(n.port_id.clone());
            self.port_iface.insert(n.port_id.clone(), i.name.clone());
            self.ifaces.insert(i.name.clone(), n);
        }
    }

    fn iface_gone(&mut self, name: &str, p: &mut Pending) {
        self.tunnel_ifaces.remove(name);
        if let Some(b) = self.ifaces.remove(name) {
            tracing::debug!(iface = name, port = %b.port_id, "interface unplugged");
            if self.port_iface.get(&b.port_id).is_some_and(|n| n == name) {
                self.port_iface.remove(&b.port_id);
            }
            p.unplugged.insert((b.port_id, name.to_string()));
        }
    }

    /// Records a notification into `p`.
    fn on_notification(&mut self, n: Notification, p: &mut Pending) {
        match n {
            Notification::PortUpdate(port) => {
                if self.port_iface.contains_key(&port.id) {
                    p.refresh.insert(port.id);
                }
            }
            Notification::PortDelete { port_id } => {
                if self.port_iface.contains_key(&port_id) {
                    p.deleted.insert(port_id);
                }
            }
            Notification::NetworkUpdate { network_id } | Notification::NetworkDelete { network_id } => {
                if let Some(n) = self.nets.get(&network_id) {
                    p.refresh.extend(n.ports.iter().cloned());
                    p.peers.insert(network_id);
                }
            }
            Notification::SecurityGroupRules(g) | Notification::SecurityGroupMembers(g) => p.groups.extend(g),
            Notification::PeersChanged { network_id } => {
                if self.nets.contains_key(&network_id) {
                    p.peers.insert(network_id);
                }
            }
            Notification::TunnelUpdate { tunnel_ip, host } => {
                if host != self.cfg.host {
                    tracing::debug!(%tunnel_ip, %host, "tunnel endpoint announced");
                    p.tunnels = true;
                }
            }
        }
    }
}

/// Connects to OVSDB, retrying until it answers or the agent is stopped.
async fn connect_ovsdb(cfg: &L2Config, stop: &mut watch::Receiver<bool>) -> L2Result<(Client, InterfaceMonitor)> {
    let mut delay = Duration::from_millis(200);
    loop {
        let attempt = async {
            let db = Client::connect(cfg.ovsdb.clone()).await?;
            let mon = InterfaceMonitor::start(cfg.ovsdb.clone()).await?;
            Ok::<_, crate::Error>((db, mon))
        };
        match attempt.await {
            Ok(x) => return Ok(x),
            Err(e) => tracing::warn!(endpoint = %cfg.ovsdb, error = %e, "cannot reach ovsdb-server, retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(stop) => return Err(L2Error::Stopped),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Runs the agent until `stop` turns true. The dataplane is left as it is
/// when the agent stops: VMs keep forwarding, and the next start resyncs
/// without disturbing them.
pub async fn run(cfg: L2Config, bus: Arc<dyn Transport>, mut stop: watch::Receiver<bool>) -> L2Result<()> {
    if cfg.host.is_empty() {
        return Err(L2Error::Config("empty host name".into()));
    }
    tracing::info!(
        host = %cfg.host,
        ovsdb = %cfg.ovsdb,
        datapath = %cfg.datapath_type,
        tunnel_types = ?cfg.tunnel_types,
        local_ip = ?cfg.local_ip,
        bridge_mappings = ?cfg.bridge_mappings,
        "starting the Open vSwitch L2 agent"
    );
    let (note_tx, mut notes) = mpsc::unbounded_channel();
    let _servers: Vec<ServerHandle> = notifications::serve(&bus, &cfg.host, note_tx).await?;
    let (db, mut mon) = connect_ovsdb(&cfg, &mut stop).await?;
    let plugin = PluginApi::new(bus.clone(), &cfg.host, cfg.rpc_timeout);
    let int = BridgeFlows::new(
        &cfg.integration_bridge,
        crate::openflow::Ofctl::for_bridge(&cfg.ovs_rundir, &cfg.integration_bridge),
    );
    let devices = Arc::new(AtomicUsize::new(0));
    let mut agent = Agent {
        cfg: cfg.clone(),
        db,
        plugin: plugin.clone(),
        int,
        tun: None,
        providers: BTreeMap::new(),
        vlans: LocalVlans::new(),
        nets: BTreeMap::new(),
        ports: BTreeMap::new(),
        ifaces: BTreeMap::new(),
        port_iface: BTreeMap::new(),
        tunnel_ifaces: BTreeMap::new(),
        tunnels: TunnelPorts::new(),
        tags: BTreeMap::new(),
        fw: Firewall::new(),
    };
    let mut pending = Pending { full: true, ..Pending::default() };
    // The initial snapshot of the Interface table.
    loop {
        match mon.next_timeout(Duration::from_secs(10)).await {
            Some(InterfaceEvent::Synced { .. }) | None => break,
            Some(ev) => agent.on_iface(ev, &mut pending),
        }
    }
    let (resync_tx, mut resyncs) = mpsc::unbounded_channel::<&'static str>();
    let reporter = tokio::spawn(report::run(cfg.clone(), plugin, devices.clone(), resync_tx.clone(), stop.clone()));
    let reconnect_watch = {
        let mut r = bus.reconnects();
        let tx = resync_tx;
        tokio::spawn(async move {
            while let Some(epoch) = r.next().await {
                tracing::info!(epoch, "message bus reconnected: full resync");
                if tx.send("bus reconnected").is_err() {
                    return;
                }
            }
        })
    };
    let safety_every = if cfg.resync_check_interval.is_zero() {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        cfg.resync_check_interval
    };
    let mut safety = tokio::time::interval_at(tokio::time::Instant::now() + safety_every, safety_every);
    safety.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checks: u64 = 0;
    let mut canary = tokio::time::interval(CANARY_INTERVAL);
    canary.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures: u32 = 0;
    let result = loop {
        if pending.is_empty() {
            tokio::select! {
                _ = stopped(&mut stop) => break Ok(()),
                ev = mon.next() => match ev {
                    Some(ev) => agent.on_iface(ev, &mut pending),
                    None => break Err(L2Error::Ovs(crate::Error::Protocol("interface monitor ended".into()))),
                },
                Some(n) = notes.recv() => agent.on_notification(n, &mut pending),
                Some(why) = resyncs.recv() => {
                    tracing::info!(reason = why, "full resync requested");
                    pending.full = true;
                }
                _ = safety.tick(), if !cfg.resync_check_interval.is_zero() => {
                    checks += 1;
                    if checks % 10 == 0 {
                        tracing::info!("periodic full resync (safety net)");
                        pending.full = true;
                    } else {
                        match agent.drifted().await {
                            Ok((stale, gone)) => {
                                if !stale.is_empty() || !gone.is_empty() {
                                    tracing::debug!(stale = stale.len(), gone = gone.len(), "ports differ from the server's: refreshing them");
                                }
                                pending.refresh.extend(stale);
                                pending.deleted.extend(gone);
                            }
                            Err(e) => tracing::debug!(error = %e, "resync check failed"),
                        }
                    }
                }
                _ = canary.tick() => {
                    match agent.int.has_flow(super::int_bridge::tables::CANARY, super::cookies::Owner::Base).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("canary flow missing on br-int (flows reset?): full resync");
                            pending.full = true;
                        }
                        Err(e) => tracing::warn!(error = %e, "canary check failed"),
                    }
                }
            }
        }
        // Batch everything already queued.
        while let Ok(n) = notes.try_recv() {
            agent.on_notification(n, &mut pending);
        }
        while let Some(ev) = mon.next_timeout(Duration::ZERO).await {
            agent.on_iface(ev, &mut pending);
        }
        while let Ok(why) = resyncs.try_recv() {
            tracing::info!(reason = why, "full resync requested");
            pending.full = true;
        }
        if pending.is_empty() {
            continue;
        }
        let work = std::mem::take(&mut pending);
        let started = std::time::Instant::now();
        match agent.process(work).await {
            Ok(()) => {
                failures = 0;
                devices.store(agent.ports.len(), Ordering::Relaxed);
                tracing::debug!(elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "pass done");
            }
            Err(e) => {
                failures += 1;
                let delay = Duration::from_millis(250u64 << failures.min(5)).min(Duration::from_secs(8));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "pass failed: full resync");
                pending.full = true;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stopped(&mut stop) => break Ok(()),
                }
            }
        }
    };
    reporter.abort();
    reconnect_watch.abort();
    tracing::info!(host = %cfg.host, "L2 agent stopped");
    result
}

/// A running agent task (what `neutrino up` holds for each agent).
#[derive(Debug)]
pub struct L2AgentHandle {
    host: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<L2Result<()>>,
}

impl L2AgentHandle {
    /// Starts the agent as a task on the current runtime.
    pub fn spawn(cfg: L2Config, bus: Arc<dyn Transport>) -> L2AgentHandle {
        let (stop, rx) = watch::channel(false);
        let host = cfg.host.clone();
        let h = host.clone();
        let task = tokio::spawn(async move {
            let r = run(cfg, bus, rx).await;
            if let Err(e) = &r {
                tracing::error!(host = %h, error = %e, "L2 agent ended");
            }
            r
        });
        L2AgentHandle { host, stop, task }
    }

    /// The agent's host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the task has ended (an error, or stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the agent and waits for it (at most 5 s).
    pub async fn stop(self) -> L2Result<()> {
        let _ = self.stop.send(true);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(L2Error::Config(format!("agent task failed: {e}"))),
            Err(_) => Err(L2Error::Stopped),
        }
    }
}

/// Completes once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
