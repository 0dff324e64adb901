//! Telling the server: periodic state reports (`report_state`) and the
//! ports DHCP is ready for (`dhcp_ready_on_ports`, batched, retried).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neutrino_lib::southbound::AgentState;
use serde_json::json;
use tokio::sync::{mpsc, watch, Notify};

use super::config::DhcpAgentConfig;
use super::manager::{AgentStatus, Command};
use super::rpc::PluginApi;

/// The agent type reported.
pub const AGENT_TYPE: &str = "DHCP agent";
/// The binary name reported.
pub const BINARY: &str = "neutrino-dhcp-agent";
/// The agent's topic.
pub const TOPIC: &str = "dhcp_agent";
/// Most ports per `dhcp_ready_on_ports` call.
const READY_BATCH: usize = 128;

/// Ports waiting to be reported ready.
#[derive(Debug, Default)]
pub struct ReadyQueue {
    ports: Mutex<BTreeSet<String>>,
    notify: Notify,
}

impl ReadyQueue {
    /// Queues ports.
    pub fn add(&self, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut p) = self.ports.lock() {
            p.extend(ids);
        }
        self.notify.notify_one();
    }

    fn take(&self, n: usize) -> Vec<String> {
        let Ok(mut p) = self.ports.lock() else { return vec![] };
        let out: Vec<String> = p.iter().take(n).cloned().collect();
        for id in &out {
            p.remove(id);
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.ports.lock().map(|p| p.is_empty()).unwrap_or(true)
    }
}

/// Sends queued ready ports until `stop` turns true.
pub async fn ready_loop(plugin: PluginApi, queue: Arc<ReadyQueue>, mut stop: watch::Receiver<bool>) {
    loop {
        if queue.is_empty() {
            tokio::select! {
                _ = queue.notify.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        let batch = queue.take(READY_BATCH);
        if batch.is_empty() {
            continue;
        }
        match plugin.dhcp_ready_on_ports(&batch).await {
            Ok(()) => tracing::debug!(ports = batch.len(), "reported DHCP ready"),
            Err(e) => {
                tracing::warn!(error = %e, ports = batch.len(), "dhcp_ready_on_ports failed; retrying");
                queue.add(batch);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

/// The state report of the agent.
pub fn agent_state(cfg: &DhcpAgentConfig, st: &AgentStatus, start_flag: bool) -> AgentState {
    AgentState {
        agent_type: AGENT_TYPE.into(),
        binary: BINARY.into(),
        host: cfg.host.clone(),
        topic: TOPIC.into(),
        availability_zone: Some(cfg.availability_zone.clone()),
        configurations: json!({
            "dhcp_driver": "dnsmasq",
            "dhcp_lease_duration": cfg.lease_duration,
            "log_agent_heartbeats": false,
            "networks": st.networks,
            "ports": st.ports,
            "subnets": st.subnets,
        }),
        start_flag,
    }
}

/// Reports the state every `report_interval`; a server that saw the agent
/// as dead ("revived") gets a full resync. The first report is made by the
/// agent's start.
pub async fn report_loop(
    plugin: PluginApi,
    cfg: Arc<DhcpAgentConfig>,
    status: watch::Receiver<AgentStatus>,
    cmds: mpsc::UnboundedSender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(cfg.report_interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let st = status.borrow().clone();
        match plugin.report_state(&agent_state(&cfg, &st, false)).await {
            Ok(s) if s == "revived" => {
                tracing::info!("the server had the agent as dead: full resync");
                let _ = cmds.send(Command::FullSync("agent revived"));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "state report failed"),
        }
    }
}
