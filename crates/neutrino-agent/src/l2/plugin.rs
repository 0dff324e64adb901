//! The agent's side of the southbound calls (docs/southbound.md, "Agents →
//! server"), typed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use neutrino_lib::southbound::{methods, AgentState, DeviceDetails, NetworkPeers, PortRef, SecurityGroupInfo};
use neutrino_rpc::{topics, CallContext, RpcClient, Target, Transport};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{L2Error, L2Result};

/// Calls from the L2 agent to the server (`q-plugin`, `q-reports-plugin`).
#[derive(Clone)]
pub struct PluginApi {
    plugin: RpcClient,
    reports: RpcClient,
    host: String,
    ctx: CallContext,
}

/// The reply of `update_device_list`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeviceListReply {
    /// Devices set up.
    #[serde(default)]
    pub devices_up: Vec<String>,
    /// Devices set down.
    #[serde(default)]
    pub devices_down: Vec<String>,
    /// Devices the server could not set up (not bound here, gone).
    #[serde(default)]
    pub failed_devices_up: Vec<String>,
    /// Devices the server could not set down.
    #[serde(default)]
    pub failed_devices_down: Vec<String>,
}

#[derive(Deserialize)]
struct DetailsReply {
    #[serde(default)]
    devices: Vec<DeviceDetails>,
    #[serde(default)]
    failed_devices: Vec<String>,
}

#[derive(Deserialize)]
struct PortsReply {
    #[serde(default)]
    ports: Vec<PortRef>,
}

#[derive(Deserialize)]
struct PeersReply {
    #[serde(default)]
    networks: BTreeMap<String, NetworkPeers>,
}

/// A tunnel endpoint of another host.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TunnelEndpoint {
    /// The host.
    pub host: String,
    /// Its tunnel IP.
    pub ip_address: String,
}

#[derive(Deserialize)]
struct TunnelsReply {
    #[serde(default)]
    tunnels: Vec<TunnelEndpoint>,
}

impl PluginApi {
    /// Calls over `bus` as `host`, each call waiting at most `timeout`.
    pub fn new(bus: Arc<dyn Transport>, host: &str, timeout: Duration) -> PluginApi {
        PluginApi {
            plugin: RpcClient::new(bus.clone(), Target::topic(topics::PLUGIN)).with_timeout(timeout),
            reports: RpcClient::new(bus, Target::topic(topics::REPORTS)).with_timeout(timeout),
            host: host.to_string(),
            ctx: CallContext::admin(),
        }
    }

    async fn call<R: DeserializeOwned>(&self, client: &RpcClient, method: &'static str, args: Value) -> L2Result<R> {
        let started = std::time::Instant::now();
        let v = client.call(&self.ctx, method, args).await.map_err(|source| L2Error::Rpc { method, source })?;
        tracing::trace!(method, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "rpc call");
        serde_json::from_value(v).map_err(|e| L2Error::Reply { method, reason: e.to_string() })
    }

    /// `report_state`: returns the server's verdict (`new`, `revived`, `alive`).
    pub async fn report_state(&self, state: &AgentState) -> L2Result<String> {
        let v: Value = self.call(&self.reports, methods::REPORT_STATE, json!({ "agent_state": state })).await?;
        Ok(v.get("status").and_then(Value::as_str).unwrap_or("alive").to_string())
    }

    /// `get_ports_on_host`.
    pub async fn ports_on_host(&self) -> L2Result<Vec<PortRef>> {
        let r: PortsReply = self.call(&self.plugin, methods::GET_PORTS_ON_HOST, json!({ "host": self.host })).await?;
        Ok(r.ports)
    }

    /// `get_devices_details_list` in batches of `batch`: the details found and
    /// the ids the server does not know.
    pub async fn devices_details(
        &self,
        devices: &[String],
        batch: usize,
    ) -> L2Result<(Vec<DeviceDetails>, Vec<String>)> {
        let mut found = Vec::with_capacity(devices.len());
        let mut failed = Vec::new();
        for chunk in devices.chunks(batch.max(1)) {
            let r: DetailsReply = self
                .call(&self.plugin, methods::GET_DEVICES_DETAILS_LIST, json!({ "devices": chunk, "host": self.host }))
                .await?;
            found.extend(r.devices);
            failed.extend(r.failed_devices);
        }
        Ok((found, failed))
    }

    /// `update_device_list`.
    pub async fn update_device_list(&self, up: &[String], down: &[String]) -> L2Result<DeviceListReply> {
        if up.is_empty() && down.is_empty() {
            return Ok(DeviceListReply::default());
        }
        self.call(
            &self.plugin,
            methods::UPDATE_DEVICE_LIST,
            json!({ "devices_up": up, "devices_down": down, "host": self.host }),
        )
        .await
    }

    /// `tunnel_sync`: registers this host's endpoint, returns the others'.
    pub async fn tunnel_sync(&self, ip: &str, types: &[&str]) -> L2Result<Vec<TunnelEndpoint>> {
        let r: TunnelsReply = self
            .call(
                &self.plugin,
                methods::TUNNEL_SYNC,
                json!({ "tunnel_ip": ip, "tunnel_types": types, "host": self.host }),
            )
            .await?;
        Ok(r.tunnels)
    }

    /// `get_network_peers`.
    pub async fn network_peers(&self, networks: &[String]) -> L2Result<BTreeMap<String, NetworkPeers>> {
        if networks.is_empty() {
            return Ok(BTreeMap::new());
        }
        let r: PeersReply = self
            .call(&self.plugin, methods::GET_NETWORK_PEERS, json!({ "networks": networks, "host": self.host }))
            .await?;
        Ok(r.networks)
    }

    /// `security_group_info_for_devices`.
    pub async fn security_group_info(&self, devices: &[String]) -> L2Result<SecurityGroupInfo> {
        if devices.is_empty() {
            return Ok(SecurityGroupInfo::default());
        }
        self.call(&self.plugin, methods::SECURITY_GROUP_INFO_FOR_DEVICES, json!({ "devices": devices })).await
    }
}
