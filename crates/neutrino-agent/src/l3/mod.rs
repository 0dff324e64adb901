//! The L3 agent: Neutron's legacy routers on one host, with nftables.
//!
//! For every router scheduled to its host the agent keeps a namespace
//! `qrouter-<router id>` with
//!
//! * one `qr-<port id[:11]>` device per router interface and a
//!   `qg-<port id[:11]>` device for the gateway, each the end of a veth pair
//!   whose other end (`tap<port id[:11]>`) is a port of the integration
//!   bridge with `external_ids:iface-id=<port id>`, so the host's L2 agent
//!   wires it like any port (the external network is a provider network
//!   reached through br-int, Neutron's `external_network_bridge = ""` layout);
//! * the ports' MACs, addresses and MTUs, a default route via the external
//!   subnet's gateway, the extra routes;
//! * one nftables table (`ip neutrino-l3`, replaced atomically) with SNAT of
//!   outbound traffic to the gateway address (when `enable_snat`) and 1:1
//!   DNAT/SNAT for floating IPs, including hairpin and router-originated
//!   traffic ([`nat`]);
//! * the floating IPs as /32 addresses of the gateway device, announced with
//!   gratuitous ARP, their statuses reported with `update_floatingip_statuses`.
//!
//! Syncing is idempotent ([`sync`]): at start, after each bus reconnect,
//! when the server says the agent was revived, and every `periodic_interval`,
//! a full sync (`get_router_ids` + `sync_routers`) builds what is missing,
//! updates what changed and removes stale `qrouter-` namespaces and router
//! ports; `routers_updated` / `router_removed` casts resync just those
//! routers. Stopping the agent leaves routers in place, so a restart does not
//! disturb established connections (conntrack keeps their NAT bindings).
//!
//! ```no_run
//! # async fn demo(bus: std::sync::Arc<dyn neutrino_rpc::Transport>) -> Result<(), neutrino_agent::l3::L3Error> {
//! use neutrino_agent::l3::{L3Agent, L3Config};
//! let agent = L3Agent::start(L3Config::new("network-node-1"), bus).await?;
//! // ...
//! agent.stop().await;
//! # Ok(()) }
//! ```

pub mod addr;
pub mod config;
pub mod error;
pub mod floating_ips;
pub mod model;
pub mod nat;
pub mod notifications;
pub mod outside;
pub mod queue;
pub mod ra;
pub mod report;
pub mod router;
pub mod rpc;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use neutrino_rpc::{ServerHandle, ServerOptions, Transport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::L3Config;
pub use error::{L3Error, Result};
pub use outside::OutsideWorld;
pub use sync::L3Stats;

use queue::Queue;
use rpc::PluginApi;
use sync::Engine;

/// Entry point of the L3 agent.
pub struct L3Agent;

/// A running L3 agent (tasks in the current Tokio runtime).
pub struct L3AgentHandle {
    cfg: Arc<L3Config>,
    engine: Arc<Engine>,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    server: Option<ServerHandle>,
}

impl L3Agent {
    /// Starts the agent on `bus`: serves `l3_agent.<host>`, reports its state,
    /// and syncs its routers (first a full sync). Fails only on a bad setup
    /// (missing `nft`, the bus refusing the server); an unreachable server or
    /// OVSDB is retried in the background.
    pub async fn start(cfg: L3Config, bus: Arc<dyn Transport>) -> Result<L3AgentHandle> {
        if !crate::cmd::which("nft") {
            return Err(L3Error::Config(
                "nft not found: the L3 agent needs nftables (apt-get install nftables)".into(),
            ));
        }
        if !crate::cmd::which("arping") {
            tracing::warn!("arping not found (apt-get install iputils-arping): floating IPs are not announced");
        }
        let cfg = Arc::new(cfg);
        let queue = Arc::new(Queue::default());
        let api = PluginApi::new(bus.clone(), &cfg.host, cfg.rpc_timeout);
        let engine = Arc::new(Engine::new(cfg.clone(), api.clone(), queue.clone()));
        let server = bus
            .serve(
                neutrino_rpc::topics::L3_AGENT,
                &cfg.host,
                Arc::new(notifications::handler(queue.clone())),
                ServerOptions::default(),
            )
            .await?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        queue.full();
        tasks.push(tokio::spawn(engine.clone().run(stop_rx.clone())));
        tasks.push(tokio::spawn(report_loop(cfg.clone(), api, engine.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(reconnect_loop(bus, queue.clone(), stop_rx.clone())));
        if let Some(every) = cfg.full_sync_interval {
            tasks.push(tokio::spawn(periodic_loop(every, queue, stop_rx)));
        }
        tracing::info!(host = %cfg.host, bridge = %cfg.integration_bridge, "L3 agent started");
        Ok(L3AgentHandle { cfg, engine, stop_tx, tasks, server: Some(server) })
    }
}

impl L3AgentHandle {
    /// The agent's configuration.
    pub fn config(&self) -> &L3Config {
        &self.cfg
    }

    /// The current counters.
    pub fn stats(&self) -> L3Stats {
        self.engine.stats().borrow().clone()
    }

    /// A watch of the counters (changes after each sync).
    pub fn watch_stats(&self) -> watch::Receiver<L3Stats> {
        self.engine.stats()
    }

    /// Queues a full resync.
    pub fn resync(&self) {
        self.engine.queue.full();
    }

    /// Waits until at least `n` full syncs completed, at most `timeout`.
    pub async fn wait_full_syncs(&self, n: u64, timeout: Duration) -> bool {
        let mut rx = self.engine.stats();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|s| s.full_syncs >= n)).await;
        waited.is_ok_and(|r| r.is_ok())
    }

    /// Stops the agent: no more notifications, the running sync finishes (at
    /// most 10 s), tasks end. Routers stay configured.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        let _ = self.stop_tx.send(true);
        for t in self.tasks.drain(..) {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), t).await.is_err() {
                abort.abort();
            }
        }
        tracing::info!(host = %self.cfg.host, "L3 agent stopped");
    }
}

impl Drop for L3AgentHandle {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Heartbeats; a revived agent resyncs fully (it may have missed casts).
async fn report_loop(cfg: Arc<L3Config>, api: PluginApi, engine: Arc<Engine>, mut stop: watch::Receiver<bool>) {
    let mut start_flag = true;
    loop {
        let stats = engine.stats().borrow().clone();
        let state = report::agent_state(&cfg, &stats, start_flag);
        match api.report_state(&state).await {
            Ok(status) => {
                if start_flag {
                    tracing::info!(%status, "L3 agent registered");
                } else if status == "revived" {
                    tracing::info!("agent revived: full resync");
                    engine.queue.full();
                }
                start_flag = false;
            }
            Err(e) => tracing::warn!(error = %e, "report_state failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.report_interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// A reconnection to the bus may have lost casts: full resync.
async fn reconnect_loop(bus: Arc<dyn Transport>, queue: Arc<Queue>, mut stop: watch::Receiver<bool>) {
    let mut reconnects = bus.reconnects();
    loop {
        tokio::select! {
            r = reconnects.next() => match r {
                Some(epoch) => {
                    tracing::info!(epoch, "reconnected to the bus: full router resync");
                    queue.full();
                }
                None => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn periodic_loop(every: Duration, queue: Arc<Queue>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => queue.full(),
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
