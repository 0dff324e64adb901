//! The DHCP agent: Neutron's DHCP agent with its dnsmasq driver.
//!
//! For every network the server schedules to it (`get_active_networks`),
//! the agent keeps a `qdhcp-<network id>` namespace with the network's DHCP
//! port (created on the server with `create_dhcp_port`, bound to this host)
//! plugged into the host's integration bridge, and a dnsmasq serving each
//! port its fixed addresses by MAC (static ranges: unknown MACs get
//! nothing), the gateway, DNS, host routes (options 121 and 249), the MTU
//! (option 26), the domain and the ports' `extra_dhcp_opts`; DHCPv6 for
//! stateful and stateless IPv6 subnets (router advertisements come from the
//! router, as in Neutron).
//!
//! * Port changes (`network_changed`) rewrite dnsmasq's hosts/options files
//!   and send it SIGHUP — dnsmasq is restarted only when its command line
//!   changes (subnets, MTU), or when SIGHUP would crash it (dnsmasq 2.90
//!   with tagged host entries, see [`dnsmasq::reload_crashes`]) — after
//!   releasing the leases of ports that are
//!   gone, so their addresses can be handed out again at once. Ports are
//!   then reported with `dhcp_ready_on_ports`, which lets them go ACTIVE.
//! * `network_removed` tears the namespace down and releases the port;
//!   `network_update` (fanout) reloads a served network whose MTU or DNS
//!   domain changed.
//! * A full resync runs at start, after every bus reconnection and when
//!   the server had the agent as dead: scheduled networks are converged
//!   (running dnsmasq processes are adopted, not restarted), everything else
//!   the agent finds (namespaces with its prefix, conf dirs, bridge ports
//!   marked as its own) is removed.
//!
//! Modules: [`config`] (options), [`model`] (the server's data), [`files`]
//! (dnsmasq's files), [`dnsmasq`] (the process), [`release`] (lease
//! release), [`device`] (namespace,
//! veth, OVS), [`network`] (converging one network), [`manager`] (the event
//! loop), [`rpc`] (server calls and notifications), [`report`] (state and
//! readiness reports).
//!
//! ```no_run
//! # async fn demo(bus: std::sync::Arc<dyn neutrino_rpc::Transport>) -> Result<(), neutrino_agent::dhcp::DhcpError> {
//! use neutrino_agent::dhcp::{DhcpAgent, DhcpAgentConfig};
//! let cfg = DhcpAgentConfig::new("compute-1", "/var/lib/neutrino/dhcp");
//! let agent = DhcpAgent::start(cfg, bus).await?;
//! let status = agent.wait_synced(std::time::Duration::from_secs(60)).await?;
//! println!("serving {} networks", status.networks);
//! agent.stop().await; // dnsmasq keeps serving; a restarted agent adopts it
//! # Ok(()) }
//! ```

pub mod config;
pub mod device;
pub mod dnsmasq;
pub mod error;
pub mod files;
pub mod manager;
pub mod model;
pub mod network;
pub mod release;
pub mod report;
pub mod rpc;

use std::sync::Arc;
use std::time::Duration;

use neutrino_rpc::{ServerHandle, ServerOptions, Transport};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use config::DhcpAgentConfig;
pub use error::{DhcpError, Result};
pub use manager::AgentStatus;

use manager::{Command, Manager};
use network::Ctx;
use report::ReadyQueue;
use rpc::{Notification, PluginApi};

/// The DHCP agent.
#[derive(Debug)]
pub struct DhcpAgent;

/// A running DHCP agent. Dropping it stops the agent's tasks (the dnsmasq
/// processes keep serving); prefer [`DhcpAgentHandle::stop`].
#[derive(Debug)]
pub struct DhcpAgentHandle {
    cfg: Arc<DhcpAgentConfig>,
    cmds: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<AgentStatus>,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    manager: Option<JoinHandle<()>>,
    servers: Vec<ServerHandle>,
}

fn check_tools(cfg: &DhcpAgentConfig) -> Result<()> {
    for t in ["ip", cfg.dnsmasq_binary.as_str()] {
        if !crate::cmd::which(t) {
            return Err(DhcpError::Config(format!("{t} not found (install iproute2 and dnsmasq-base)")));
        }
    }
    Ok(())
}

impl DhcpAgent {
    /// Starts the agent on `bus` as a set of tokio tasks: serves
    /// `dhcp_agent.<host>`, reports its state (registering the agent, which
    /// lets the server schedule networks to it), then runs a full resync.
    /// Returns once the agent is registered (or the first report failed;
    /// the agent then keeps retrying).
    pub async fn start(cfg: DhcpAgentConfig, bus: Arc<dyn Transport>) -> Result<DhcpAgentHandle> {
        cfg.validate()?;
        check_tools(&cfg)?;
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| DhcpError::io(format!("mkdir {}", cfg.state_dir.display()), e))?;
        let cfg = Arc::new(cfg);
        let plugin = PluginApi::new(bus.clone(), &cfg.host);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        let (status_tx, status_rx) = watch::channel(AgentStatus::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let ready = Arc::new(ReadyQueue::default());
        let ctx = Arc::new(Ctx {
            cfg: cfg.clone(),
            plugin: plugin.clone(),
            plugger: device::Plugger::new(cfg.clone()),
            exits: exit_tx,
            device_id_prefix: network::device_id_prefix(&cfg.host),
        });
        let manager = tokio::spawn(Manager::new(ctx, cmd_tx.clone(), ready.clone(), status_tx).run(cmd_rx, exit_rx));

        // Notifications from the server, in order.
        let (ntx, mut nrx) = mpsc::unbounded_channel::<Notification>();
        let router = rpc::notification_handler(ntx.clone());
        let server = bus
            .serve(neutrino_rpc::topics::DHCP_AGENT, &cfg.host, Arc::new(router), ServerOptions { max_concurrency: 1 })
            .await?;
        let updates = bus
            .serve(
                neutrino_lib::southbound::topics::NETWORK_UPDATE,
                &cfg.host,
                Arc::new(rpc::network_update_handler(ntx)),
                ServerOptions { max_concurrency: 1 },
            )
            .await?;
        let mut tasks = Vec::new();
        let c = cmd_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(n) = nrx.recv().await {
                tracing::debug!(notification = ?n, "from the server");
                if c.send(Command::Notify(n)).is_err() {
                    return;
                }
            }
        }));
        // Resync after every reconnection of the bus.
        let c = cmd_tx.clone();
        let mut reconnects = bus.reconnects();
        tasks.push(tokio::spawn(async move {
            while let Some(epoch) = reconnects.next().await {
                tracing::info!(epoch, "reconnected to the bus: full resync");
                if c.send(Command::FullSync("bus reconnected")).is_err() {
                    return;
                }
            }
        }));
        tasks.push(tokio::spawn(report::ready_loop(plugin.clone(), ready, stop_rx.clone())));

        // Register, then resync.
        let first = report::agent_state(&cfg, &AgentStatus::default(), true);
        match plugin.report_state(&first).await {
            Ok(s) => tracing::info!(host = %cfg.host, status = %s, "DHCP agent registered"),
            Err(e) => tracing::warn!(host = %cfg.host, error = %e, "first state report failed; retrying"),
        }
        tasks.push(tokio::spawn(report::report_loop(plugin, cfg.clone(), status_rx.clone(), cmd_tx.clone(), stop_rx)));
        let _ = cmd_tx.send(Command::FullSync("agent start"));
        Ok(DhcpAgentHandle {
            cfg,
            cmds: cmd_tx,
            status: status_rx,
            stop_tx,
            tasks,
            manager: Some(manager),
            servers: vec![server, updates],
        })
    }
}

impl DhcpAgentHandle {
    /// The agent's configuration.
    pub fn config(&self) -> &DhcpAgentConfig {
        &self.cfg
    }

    /// What the agent serves now.
    pub fn status(&self) -> AgentStatus {
        self.status.borrow().clone()
    }

    /// A watch of the agent's status.
    pub fn watch_status(&self) -> watch::Receiver<AgentStatus> {
        self.status.clone()
    }

    /// Waits (at most `timeout`) until the first full resync completed.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<AgentStatus> {
        self.wait_syncs(1, timeout).await
    }

    /// Waits until `n` full resyncs completed in total.
    pub async fn wait_syncs(&self, n: u64, timeout: Duration) -> Result<AgentStatus> {
        let mut rx = self.status.clone();
        let waited =
            tokio::time::timeout(timeout, async { rx.wait_for(|s| s.syncs >= n).await.map(|s| s.clone()) }).await;
        match waited {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(_)) => Err(DhcpError::Stopped),
            Err(_) => Err(DhcpError::Agent(crate::Error::Timeout { what: "DHCP full resync".into(), after: timeout })),
        }
    }

    /// Asks for a full resync.
    pub fn resync(&self) {
        let _ = self.cmds.send(Command::FullSync("requested"));
    }

    /// Stops the agent; dnsmasq processes keep serving (a restarted agent
    /// adopts them), as Neutron's agent leaves them on stop.
    pub async fn stop(mut self) {
        self.shutdown(false).await;
    }

    /// Stops the agent and removes its namespaces, devices and dnsmasq
    /// processes from the host (the DHCP ports stay on the server).
    pub async fn stop_and_teardown(mut self) {
        self.shutdown(true).await;
    }

    async fn shutdown(&mut self, teardown: bool) {
        for s in self.servers.drain(..) {
            s.stop().await;
        }
        let _ = self.stop_tx.send(true);
        let (done_tx, done_rx) = oneshot::channel();
        if self.cmds.send(Command::Stop { teardown, done: done_tx }).is_ok() {
            let _ = done_rx.await;
        }
        if let Some(m) = self.manager.take() {
            let _ = m.await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for DhcpAgentHandle {
    fn drop(&mut self) {
        let _ = self.stop_tx.send(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(m) = &self.manager {
            m.abort();
        }
    }
}
