//! `report_state`: the agent's heartbeat. The first report after a start
//! carries `start_flag`; the server binds ports to this host only while the
//! reports keep coming. A "revived" verdict (the server had given the agent
//! up) asks the main loop for a full resync.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use neutrino_lib::defs::agent::AGENT_TYPE_OVS;
use neutrino_lib::southbound::AgentState;
use tokio::sync::{mpsc, watch};

use super::agent::stopped;
use super::config::L2Config;
use super::plugin::PluginApi;

/// The agent's binary name as reported.
pub const BINARY: &str = "neutrino-openvswitch-agent";

/// Reports every `cfg.report_interval` until `stop`.
pub async fn run(
    cfg: L2Config,
    plugin: PluginApi,
    devices: Arc<AtomicUsize>,
    resync: mpsc::UnboundedSender<&'static str>,
    mut stop: watch::Receiver<bool>,
) {
    let mut start_flag = true;
    loop {
        let state = AgentState {
            agent_type: AGENT_TYPE_OVS.into(),
            binary: BINARY.into(),
            host: cfg.host.clone(),
            topic: "N/A".into(),
            availability_zone: None,
            configurations: cfg.report_configurations(devices.load(Ordering::Relaxed)),
            start_flag,
        };
        match plugin.report_state(&state).await {
            Ok(status) => {
                tracing::trace!(%status, "state reported");
                if status == "revived" && !start_flag {
                    let _ = resync.send("agent revived");
                }
                start_flag = false;
            }
            Err(e) => tracing::warn!(error = %e, "report_state failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.report_interval) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}
