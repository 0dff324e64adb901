//! Converging routers: fetch what the server wants (`get_router_ids`,
//! `sync_routers`), make each router namespace match, remove what is stale,
//! report floating IP statuses. One worker runs the batches; routers of a
//! batch are configured in parallel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use neutrino_lib::southbound::RouterInfo;
use tokio::sync::watch;

use super::config::L3Config;
use super::error::Result;
use super::floating_ips::{self, Reported};
use super::model::DesiredRouter;
use super::nat;
use super::queue::{Queue, Work};
use super::router::{self, NsLink, Plumbing};
use super::rpc::PluginApi;
use crate::netns::Netns;
use crate::ovsdb::Client;

/// Counters of what the agent hosts and how syncing went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L3Stats {
    /// Routers configured.
    pub routers: usize,
    /// Router interfaces (`qr-`).
    pub interfaces: usize,
    /// Gateways (`qg-`).
    pub ex_gw_ports: usize,
    /// Floating IPs configured.
    pub floating_ips: usize,
    /// Completed full syncs.
    pub full_syncs: u64,
    /// Completed batches (full or partial).
    pub syncs: u64,
    /// Duration of the last full sync.
    pub last_full_sync: Option<Duration>,
    /// Duration of the last partial sync.
    pub last_sync: Option<Duration>,
    /// Router configurations that failed (retried later).
    pub failures: u64,
}

/// What the agent applied to one router.
#[derive(Debug, Clone)]
struct Applied {
    desired: DesiredRouter,
    /// The NAT table in place (when `ok`).
    nat: Option<String>,
    /// Whether the last configuration succeeded.
    ok: bool,
    fips: BTreeMap<String, Reported>,
}

/// The host's OVSDB, connected on first use (the L2 agent may create br-int
/// after the L3 agent started).
pub struct OvsConn {
    endpoint: crate::ovsdb::Endpoint,
    bridge: String,
    conn: tokio::sync::Mutex<Option<(Arc<Client>, bool)>>,
}

impl OvsConn {
    /// A lazy connection to `endpoint`, plugging into `bridge`.
    pub fn new(endpoint: crate::ovsdb::Endpoint, bridge: &str) -> OvsConn {
        OvsConn { endpoint, bridge: bridge.to_string(), conn: tokio::sync::Mutex::new(None) }
    }

    /// The client and whether the bridge uses the userspace datapath.
    pub async fn get(&self) -> Result<(Arc<Client>, bool)> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let client = Arc::new(Client::connect(self.endpoint.clone()).await?);
        let br = client
            .find_bridge(&self.bridge)
            .await?
            .ok_or_else(|| crate::Error::NotFound { kind: "bridge", name: self.bridge.clone() })?;
        let netdev = br.datapath_type == "netdev";
        tracing::info!(bridge = %self.bridge, datapath = %br.datapath_type, "L3 agent connected to OVSDB");
        *g = Some((client.clone(), netdev));
        Ok((client, netdev))
    }
}

/// The sync engine.
pub struct Engine {
    cfg: Arc<L3Config>,
    api: PluginApi,
    ovs: OvsConn,
    applied: Mutex<HashMap<String, Applied>>,
    stats: watch::Sender<L3Stats>,
    /// The queue the worker serves.
    pub queue: Arc<Queue>,
}

/// How long to wait before retrying failed work (grows, capped).
fn backoff(failures: u32) -> Duration {
    Duration::from_millis((500u64 << failures.min(6)).min(30_000))
}

impl Engine {
    /// An engine for `cfg`, calling the server through `api`.
    pub fn new(cfg: Arc<L3Config>, api: PluginApi, queue: Arc<Queue>) -> Engine {
        let ovs = OvsConn::new(cfg.ovsdb.clone(), &cfg.integration_bridge);
        Engine {
            cfg,
            api,
            ovs,
            applied: Mutex::new(HashMap::new()),
            stats: watch::channel(L3Stats::default()).0,
            queue,
        }
    }

    /// The counters.
    pub fn stats(&self) -> watch::Receiver<L3Stats> {
        self.stats.subscribe()
    }

    /// Serves the queue until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let work = tokio::select! {
                w = self.queue.next() => w,
                _ = stop.wait_for(|s| *s) => return,
            };
            let started = Instant::now();
            let failed = if work.full { self.full_sync().await } else { self.partial_sync(&work.routers).await };
            let elapsed = started.elapsed();
            self.stats.send_modify(|s| {
                s.syncs += 1;
                if work.full && failed.is_empty() {
                    s.full_syncs += 1;
                    s.last_full_sync = Some(elapsed);
                } else if !work.full {
                    s.last_sync = Some(elapsed);
                }
            });
            if failed.is_empty() {
                failures = 0;
                tracing::debug!(full = work.full, routers = work.routers.len(), elapsed_ms = ms(elapsed), "sync done");
            } else {
                failures += 1;
                let delay = backoff(failures);
                tracing::warn!(
                    full = failed.full,
                    routers = failed.routers.len(),
                    retry_in_ms = ms(delay),
                    "sync incomplete, will retry"
                );
                self.queue.retry_later(failed, delay);
            }
        }
    }

    /// Full resync. Returns what failed.
    pub async fn full_sync(&self) -> Work {
        let started = Instant::now();
        let result: Result<Work> = async {
            let ids = self.api.get_router_ids().await?;
            let infos = self.api.sync_routers(&ids).await?;
            let mut failed = self.converge_all(&ids, infos, true).await;
            let alive: BTreeSet<String> = self.applied.lock().map(|a| a.keys().cloned().collect()).unwrap_or_default();
            // Namespaces of routers that are not (or no longer) ours.
            for ns in Netns::list_prefixed(&format!("{}{}", self.cfg.namespace_prefix, super::config::NS_PREFIX)) {
                if let Some(r) = self.cfg.router_of_namespace(&ns) {
                    if !alive.contains(r) && !failed.routers.contains(r) {
                        tracing::info!(router = r, netns = %ns, "removing stale router namespace");
                        if self.remove(r).await.is_err() {
                            failed.routers.insert(r.to_string());
                        }
                    }
                }
            }
            if let Err(e) = self.remove_stale_ports().await {
                tracing::warn!(error = %e, "stale OVS port cleanup failed");
                failed.full = true;
            }
            tracing::info!(
                routers = ids.len(),
                elapsed_ms = ms(started.elapsed()),
                failed = failed.routers.len(),
                "full router sync"
            );
            Ok(failed)
        }
        .await;
        self.update_counts();
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "full router sync failed");
            Work { full: true, routers: BTreeSet::new() }
        })
    }

    /// Resync of some routers. Returns what failed.
    pub async fn partial_sync(&self, ids: &BTreeSet<String>) -> Work {
        let result: Result<Work> = async {
            let hosted: BTreeSet<String> = self.api.get_router_ids().await?.into_iter().collect();
            let mine: Vec<String> = ids.iter().filter(|i| hosted.contains(*i)).cloned().collect();
            let infos = if mine.is_empty() { Vec::new() } else { self.api.sync_routers(&mine).await? };
            let all: Vec<String> = ids.iter().cloned().collect();
            Ok(self.converge_all(&all, infos, false).await)
        }
        .await;
        self.update_counts();
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "router sync failed");
            Work { full: false, routers: ids.clone() }
        })
    }

    /// Configures the routers in `infos`, removes those of `ids` not in it.
    /// `full`: also rewrite what the agent believes unchanged (the NAT
    /// table), repairing drift.
    async fn converge_all(&self, ids: &[String], infos: Vec<RouterInfo>, full: bool) -> Work {
        let returned: BTreeSet<String> = infos.iter().map(|r| r.id.clone()).collect();
        let mut jobs: Vec<(String, Option<RouterInfo>)> = infos.into_iter().map(|r| (r.id.clone(), Some(r))).collect();
        jobs.extend(ids.iter().filter(|i| !returned.contains(*i)).map(|i| (i.clone(), None)));
        let results: Vec<(String, Result<()>)> = stream::iter(jobs)
            .map(|(id, info)| async move {
                let r = match info.as_ref().and_then(|i| DesiredRouter::from_info(&self.cfg, i)) {
                    Some(d) => self.apply(d, full).await,
                    None => self.remove(&id).await,
                };
                (id, r)
            })
            .buffer_unordered(self.cfg.sync_workers.max(1))
            .collect()
            .await;
        let mut failed = Work::default();
        for (id, r) in results {
            if let Err(e) = r {
                tracing::warn!(router = %id, error = %e, "router configuration failed");
                self.stats.send_modify(|s| s.failures += 1);
                failed.routers.insert(id);
            }
        }
        failed
    }

    fn plumbing<'a>(&'a self, ovs: &'a Client, netdev: bool) -> Plumbing<'a> {
        Plumbing {
            host_netns: self.cfg.ovs_netns.as_deref(),
            bridge: &self.cfg.integration_bridge,
            ovs,
            tx_offload_off: netdev,
        }
    }

    /// Makes one router's namespace match `d`.
    async fn apply(&self, d: DesiredRouter, full: bool) -> Result<()> {
        let started = Instant::now();
        let prev = self.applied.lock().ok().and_then(|a| a.get(&d.id).cloned());
        let mut fips = prev.as_ref().map(|p| p.fips.clone()).unwrap_or_default();
        match self.configure(&d, prev.as_ref().filter(|p| p.ok), full).await {
            Ok(nat) => {
                let changes = floating_ips::status_changes(&mut fips, Some(&d), true);
                self.send_statuses(&d.id, &changes).await;
                tracing::debug!(router = %d.id, elapsed_ms = ms(started.elapsed()), "router configured");
                if let Ok(mut a) = self.applied.lock() {
                    a.insert(d.id.clone(), Applied { desired: d, nat, ok: true, fips });
                }
                Ok(())
            }
            Err(e) => {
                let changes = floating_ips::status_changes(&mut fips, Some(&d), false);
                self.send_statuses(&d.id, &changes).await;
                if let Ok(mut a) = self.applied.lock() {
                    // The next attempt starts from scratch.
                    a.insert(d.id.clone(), Applied { desired: d, nat: None, ok: false, fips });
                }
                Err(e)
            }
        }
    }

    /// The system part of [`Engine::apply`]; returns the NAT table applied.
    async fn configure(&self, d: &DesiredRouter, prev: Option<&Applied>, full: bool) -> Result<Option<String>> {
        let (ovs, netdev) = self.ovs.get().await?;
        let p = self.plumbing(&ovs, netdev);
        let ns = Netns::new(d.namespace.as_str());
        router::ensure_namespace(&ns, prev.is_none()).await?;
        let mut links = router::read_links(&ns).await?;
        let wanted: BTreeSet<&str> = d.devices().map(|x| x.name.as_str()).collect();
        let stale: Vec<String> =
            router::router_devices(&links).into_iter().filter(|n| !wanted.contains(n.as_str())).collect();
        if !stale.is_empty() {
            tracing::info!(router = %d.id, devices = ?stale, "unplugging router devices");
            p.unplug(&ns, &stale).await?;
            for s in &stale {
                links.remove(s);
            }
        }
        let new: Vec<_> = d.devices().filter(|x| !links.contains_key(&x.name)).collect();
        if !new.is_empty() {
            p.plug(&d.id, &ns, &new).await?;
            for x in &new {
                links.insert(x.name.clone(), NsLink { mac: x.mac.clone(), mtu: x.mtu, up: false, addrs: vec![] });
            }
        }
        let existing: Vec<_> = d.devices().filter(|x| !new.iter().any(|n| n.name == x.name)).collect();
        if prev.is_none() {
            // First sight in this process: the OVS side may have been lost meanwhile.
            p.ensure_ovs_ports(&d.id, &existing).await?;
        }
        // NAT first, then the addresses (the gateway also holds the floating
        // IPs): a floating IP answers only once its DNAT is in place.
        let table = nat::render(d);
        let applied_nat = prev.and_then(|p| p.nat.as_ref());
        if full || prev.is_none() || applied_nat != table.as_ref() {
            nat::apply(&ns, table.as_deref()).await?;
        }
        let (batch, removed) = router::link_changes(d, &links);
        batch.run().await?;
        // Routes.
        let current = router::read_routes(&ns, d.has_ipv6()).await?;
        router::apply_routes(&ns, &router::route_changes(d, &current)).await?;
        // IPv6 router advertisements.
        super::ra::apply(&ns, &self.cfg.ra_dir(), &d.id, super::ra::render(&d.ra).as_deref()).await?;
        // Connections of addresses that left, or of floating IPs that moved.
        let mut flush: BTreeSet<String> =
            removed.iter().filter_map(|c| c.split('/').next()).map(str::to_string).collect();
        if let Some(p) = prev {
            for old in &p.desired.floating_ips {
                if d.floating_ips.iter().any(|f| f.floating == old.floating && f.fixed != old.fixed) {
                    flush.insert(old.floating.to_string());
                }
            }
        }
        for ip in &flush {
            nat::flush_conntrack(&ns, ip).await;
        }
        // Tell the outside about new external addresses.
        if let Some(g) = d.gateway.as_ref().filter(|_| d.admin_up) {
            let had: BTreeSet<&String> =
                links.get(&g.device.name).map(|l| l.addrs.iter().collect()).unwrap_or_default();
            let fresh: Vec<std::net::Ipv4Addr> = d
                .addresses()
                .get(&g.device.name)
                .into_iter()
                .flatten()
                .filter(|a| !had.contains(a))
                .filter_map(|a| a.split('/').next().and_then(|ip| ip.parse().ok()))
                .collect();
            floating_ips::send_garp(&ns, &g.device.name, fresh, self.cfg.send_arp_for_ha);
        }
        Ok(table)
    }

    /// Removes a router from this host (namespace, OVS ports), reporting its
    /// floating IPs DOWN.
    async fn remove(&self, id: &str) -> Result<()> {
        let ns = Netns::new(self.cfg.router_namespace(id));
        let prev = self.applied.lock().ok().and_then(|a| a.get(id).cloned());
        super::ra::apply(&ns, &self.cfg.ra_dir(), id, None).await?;
        if ns.exists() {
            let (ovs, netdev) = self.ovs.get().await?;
            router::remove_namespace(&self.plumbing(&ovs, netdev), &ns).await?;
            tracing::info!(router = id, "router removed");
        }
        if let Some(mut p) = prev {
            let changes = floating_ips::status_changes(&mut p.fips, None, true);
            self.send_statuses(id, &changes).await;
        }
        if let Ok(mut a) = self.applied.lock() {
            a.remove(id);
        }
        Ok(())
    }

    async fn remove_stale_ports(&self) -> Result<()> {
        let (ovs, netdev) = self.ovs.get().await?;
        let keep: HashMap<String, BTreeSet<String>> = self
            .applied
            .lock()
            .map(|a| {
                a.iter().map(|(id, ap)| (id.clone(), ap.desired.devices().map(|d| d.tap.clone()).collect())).collect()
            })
            .unwrap_or_default();
        let removed = self
            .plumbing(&ovs, netdev)
            .remove_stale_ovs_ports(|router, tap| keep.get(router).is_some_and(|t| t.contains(tap)))
            .await?;
        if !removed.is_empty() {
            tracing::info!(ports = ?removed, "removed stale router ports from the integration bridge");
        }
        Ok(())
    }

    async fn send_statuses(&self, router_id: &str, changes: &BTreeMap<String, String>) {
        if changes.is_empty() {
            return;
        }
        match self.api.update_floatingip_statuses(router_id, changes).await {
            Ok(()) => tracing::debug!(router = router_id, statuses = ?changes, "floating IP statuses sent"),
            Err(e) => {
                tracing::warn!(router = router_id, error = %e, "sending floating IP statuses failed");
                // Forget what we reported so the next sync sends it again.
                if let Ok(mut a) = self.applied.lock() {
                    if let Some(ap) = a.get_mut(router_id) {
                        for id in changes.keys() {
                            ap.fips.remove(id);
                        }
                    }
                }
                let retry = Work { full: false, routers: [router_id.to_string()].into_iter().collect() };
                self.queue.retry_later(retry, Duration::from_secs(2));
            }
        }
    }

    fn update_counts(&self) {
        let (routers, interfaces, gws, fips) = self
            .applied
            .lock()
            .map(|a| {
                let ok = a.values().filter(|x| x.ok);
                ok.fold((0, 0, 0, 0), |(r, i, g, f), x| {
                    (
                        r + 1,
                        i + x.desired.interfaces.len(),
                        g + usize::from(x.desired.gateway.is_some()),
                        f + x.desired.floating_ips.len(),
                    )
                })
            })
            .unwrap_or_default();
        self.stats.send_modify(|s| {
            s.routers = routers;
            s.interfaces = interfaces;
            s.ex_gw_ports = gws;
            s.floating_ips = fips;
        });
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
