//! The agent's side of the southbound protocol (docs/southbound.md): calls
//! to the server on `q-dhcp-notifer` / `q-reports-plugin`, and the
//! `dhcp_agent.<host>` casts it receives.

use std::sync::Arc;
use std::time::Duration;

use neutrino_lib::southbound::{methods, AgentState, DhcpNetwork};
use neutrino_rpc::{topics, CallContext, MethodRouter, RemoteError, RpcClient, Target, Transport};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::error::{DhcpError, Result};
use super::model::Port;

/// How long a call to the server may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Calls to the server.
#[derive(Clone)]
pub struct PluginApi {
    dhcp: RpcClient,
    reports: RpcClient,
    host: String,
}

impl std::fmt::Debug for PluginApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginApi").field("host", &self.host).finish()
    }
}

#[derive(Deserialize)]
struct Networks {
    networks: Vec<String>,
}

impl PluginApi {
    /// The API of `host` over `bus`.
    pub fn new(bus: Arc<dyn Transport>, host: &str) -> PluginApi {
        PluginApi {
            dhcp: RpcClient::new(bus.clone(), Target::topic(topics::DHCP_PLUGIN)).with_timeout(CALL_TIMEOUT),
            reports: RpcClient::new(bus, Target::topic(topics::REPORTS)).with_timeout(CALL_TIMEOUT),
            host: host.to_string(),
        }
    }

    fn ctx() -> CallContext {
        CallContext::admin()
    }

    /// The networks scheduled to this agent.
    pub async fn active_networks(&self) -> Result<Vec<String>> {
        let r: Networks =
            self.dhcp.call_as(&Self::ctx(), methods::GET_ACTIVE_NETWORKS, json!({"host": self.host})).await?;
        Ok(r.networks)
    }

    /// One network's subnets and ports (`None`: it no longer exists).
    pub async fn network_info(&self, network_id: &str) -> Result<Option<DhcpNetwork>> {
        let v = self
            .dhcp
            .call(&Self::ctx(), methods::GET_NETWORK_INFO, json!({"network_id": network_id, "host": self.host}))
            .await?;
        if v.is_null() {
            return Ok(None);
        }
        serde_json::from_value(v).map(Some).map_err(|e| DhcpError::Model(format!("network {network_id}: {e}")))
    }

    /// Creates (or gets, updating its addresses and binding) this agent's
    /// DHCP port on a network.
    pub async fn create_dhcp_port(&self, network_id: &str, device_id: &str, subnet_ids: &[String]) -> Result<Port> {
        let v = self
            .dhcp
            .call(
                &Self::ctx(),
                methods::CREATE_DHCP_PORT,
                json!({"network_id": network_id, "host": self.host, "device_id": device_id, "subnet_ids": subnet_ids}),
            )
            .await?;
        Port::deserialize(&v).map_err(|e| DhcpError::Model(format!("DHCP port of {network_id}: {e}")))
    }

    /// Deletes this agent's DHCP port on a network.
    pub async fn release_dhcp_port(&self, network_id: &str, device_id: &str) -> Result<()> {
        self.dhcp
            .call(&Self::ctx(), methods::RELEASE_DHCP_PORT, json!({"network_id": network_id, "device_id": device_id}))
            .await?;
        Ok(())
    }

    /// DHCP serves these ports now (provisioning block lifted).
    pub async fn dhcp_ready_on_ports(&self, port_ids: &[String]) -> Result<()> {
        self.dhcp.call(&Self::ctx(), methods::DHCP_READY_ON_PORTS, json!({"port_ids": port_ids})).await?;
        Ok(())
    }

    /// Reports the agent's state; returns the server's status
    /// (`new`, `revived`, `alive`).
    pub async fn report_state(&self, state: &AgentState) -> Result<String> {
        let v = self.reports.call(&Self::ctx(), methods::REPORT_STATE, json!({"agent_state": state})).await?;
        Ok(v.get("status").and_then(Value::as_str).unwrap_or("alive").to_string())
    }
}

/// A notification from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Something about the network changed: reload it.
    Changed(String),
    /// The network is no longer served by this agent.
    Removed(String),
    /// A network's own attributes changed (MTU, DNS domain: the fanout
    /// `network_update` every agent receives); relevant only if served here.
    Updated(String),
}

#[derive(Deserialize)]
struct NetworkArg {
    network_id: String,
}

/// The handler of the `network_update` fanout (`q-agent-notifier-network-update`).
pub fn network_update_handler(tx: mpsc::UnboundedSender<Notification>) -> MethodRouter {
    MethodRouter::new().typed(methods::NETWORK_UPDATE, move |_ctx: CallContext, a: NetworkArg| {
        let r = tx.send(Notification::Updated(a.network_id));
        async move { r.map(|_| Value::Null).map_err(|_| RemoteError::new("AgentStopped", "the DHCP agent is stopping")) }
    })
}

/// The handler of `dhcp_agent.<host>`: forwards notifications to the agent.
pub fn notification_handler(tx: mpsc::UnboundedSender<Notification>) -> MethodRouter {
    let tx2 = tx.clone();
    MethodRouter::new()
        .typed(methods::NETWORK_CHANGED, move |_ctx: CallContext, a: NetworkArg| {
            let r = tx.send(Notification::Changed(a.network_id));
            async move { r.map(|_| Value::Null).map_err(|_| RemoteError::new("AgentStopped", "the DHCP agent is stopping")) }
        })
        .typed(methods::NETWORK_REMOVED, move |_ctx: CallContext, a: NetworkArg| {
            let r = tx2.send(Notification::Removed(a.network_id));
            async move { r.map(|_| Value::Null).map_err(|_| RemoteError::new("AgentStopped", "the DHCP agent is stopping")) }
        })
}
