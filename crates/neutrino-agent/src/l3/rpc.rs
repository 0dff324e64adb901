//! The agent's side of the southbound calls (docs/southbound.md):
//! `get_router_ids`, `sync_routers`, `update_floatingip_statuses` on
//! `q-l3-plugin`, `report_state` on `q-reports-plugin`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use neutrino_lib::southbound::{methods, AgentState, RouterInfo};
use neutrino_rpc::{topics, CallContext, RpcClient, Target, Transport};
use serde::Deserialize;
use serde_json::json;

use super::error::Result;

/// How many routers one `sync_routers` call asks for (Neutron's `sync_routers_chunk_size`).
pub const SYNC_CHUNK: usize = 64;

/// Calls to the server on behalf of one host.
#[derive(Clone)]
pub struct PluginApi {
    l3: RpcClient,
    reports: RpcClient,
    host: String,
}

#[derive(Deserialize)]
struct RouterIds {
    routers: Vec<String>,
}

#[derive(Deserialize)]
struct Routers {
    routers: Vec<RouterInfo>,
}

#[derive(Deserialize)]
struct ReportReply {
    #[serde(default)]
    status: String,
}

impl PluginApi {
    /// A client for `host` with the given call timeout.
    pub fn new(bus: Arc<dyn Transport>, host: &str, timeout: Duration) -> PluginApi {
        PluginApi {
            l3: RpcClient::new(bus.clone(), Target::topic(topics::L3_PLUGIN)).with_timeout(timeout),
            // A heartbeat older than a few intervals is useless: do not wait long.
            reports: RpcClient::new(bus, Target::topic(topics::REPORTS))
                .with_timeout(timeout.min(Duration::from_secs(20))),
            host: host.to_string(),
        }
    }

    /// The routers scheduled to this host.
    pub async fn get_router_ids(&self) -> Result<Vec<String>> {
        let r: RouterIds =
            self.l3.call_as(&CallContext::admin(), methods::GET_ROUTER_IDS, json!({"host": self.host})).await?;
        Ok(r.routers)
    }

    /// Full data of the given routers (those that still exist), in chunks.
    pub async fn sync_routers(&self, ids: &[String]) -> Result<Vec<RouterInfo>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SYNC_CHUNK) {
            let r: Routers = self
                .l3
                .call_as(&CallContext::admin(), methods::SYNC_ROUTERS, json!({"host": self.host, "router_ids": chunk}))
                .await?;
            out.extend(r.routers);
        }
        Ok(out)
    }

    /// Sends floating IP statuses of one router.
    pub async fn update_floatingip_statuses(&self, router_id: &str, statuses: &BTreeMap<String, String>) -> Result<()> {
        self.l3
            .call(
                &CallContext::admin(),
                methods::UPDATE_FLOATINGIP_STATUSES,
                json!({"router_id": router_id, "fip_statuses": statuses}),
            )
            .await?;
        Ok(())
    }

    /// Reports the agent's state; returns the server's verdict (`new`, `revived`, `alive`).
    pub async fn report_state(&self, state: &AgentState) -> Result<String> {
        let r: ReportReply =
            self.reports.call_as(&CallContext::admin(), methods::REPORT_STATE, json!({"agent_state": state})).await?;
        Ok(r.status)
    }
}
