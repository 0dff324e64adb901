//! [`RpcClient`]: the caller's view of one target (oslo's `RPCClient`).

use crate::{CallContext, Request, RpcError, Target, Transport, DEFAULT_CALL_TIMEOUT};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls and casts methods on a [`Target`] through a transport.
///
/// ```no_run
/// # async fn f(transport: std::sync::Arc<dyn neutrino_rpc::Transport>) -> Result<(), neutrino_rpc::RpcError> {
/// use neutrino_rpc::{topics, CallContext, RpcClient, Target};
/// use serde_json::json;
/// let ctx = CallContext::admin();
/// // agent → server
/// let plugin = RpcClient::new(transport.clone(), Target::topic(topics::PLUGIN).version("1.0"));
/// let details = plugin.call(&ctx, "get_device_details", json!({"device": "tap1", "host": "h1"})).await?;
/// // server → every agent
/// let port_update = RpcClient::new(
///     transport.clone(),
///     Target::topic(topics::topic_name(topics::AGENT_NOTIFIER, "port", topics::UPDATE)).fanout(),
/// );
/// port_update.cast(&ctx, "port_update", json!({"port": {"id": "p1"}})).await?;
/// // server → one agent
/// let dhcp = RpcClient::new(transport, Target::topic(topics::DHCP_AGENT)).to_server("host-1");
/// dhcp.cast(&ctx, "network_create_end", json!({"payload": {}})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RpcClient {
    transport: Arc<dyn Transport>,
    target: Target,
    timeout: Duration,
}

impl RpcClient {
    /// A client of `target`, with the default call timeout (60 s).
    pub fn new(transport: Arc<dyn Transport>, target: Target) -> Self {
        RpcClient { transport, target, timeout: DEFAULT_CALL_TIMEOUT }
    }

    /// The same client with another call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same client aimed at one server of the topic (oslo's `prepare(server=...)`).
    pub fn to_server(&self, server: &str) -> Self {
        let mut c = self.clone();
        c.target.server = Some(server.to_string());
        c.target.fanout = false;
        c
    }

    /// The same client aimed at every server of the topic (`prepare(fanout=True)`).
    pub fn to_all(&self) -> Self {
        let mut c = self.clone();
        c.target.fanout = true;
        c
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    fn request(&self, ctx: &CallContext, method: &str, args: Value) -> Request {
        let mut r = Request::new(ctx, method, args);
        r.version = self.target.version.clone();
        r
    }

    /// Calls `method` and waits for its result.
    pub async fn call(&self, ctx: &CallContext, method: &str, args: Value) -> Result<Value, RpcError> {
        let started = Instant::now();
        let r = self.transport.call(&self.target, self.request(ctx, method, args), self.timeout).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        match &r {
            Ok(_) => {
                tracing::debug!(target = %self.target, %method, request_id = %ctx.request_id, elapsed_ms, "rpc call")
            }
            Err(e) => {
                tracing::warn!(target = %self.target, %method, request_id = %ctx.request_id, elapsed_ms, error = %e, "rpc call failed")
            }
        }
        r
    }

    /// Calls `method` and decodes its result into `R`.
    pub async fn call_as<R: DeserializeOwned>(
        &self,
        ctx: &CallContext,
        method: &str,
        args: Value,
    ) -> Result<R, RpcError> {
        let v = self.call(ctx, method, args).await?;
        serde_json::from_value(v).map_err(|e| RpcError::Malformed(format!("result of {method}: {e}")))
    }

    /// Casts `method` (no reply).
    pub async fn cast(&self, ctx: &CallContext, method: &str, args: Value) -> Result<(), RpcError> {
        let r = self.transport.cast(&self.target, self.request(ctx, method, args)).await;
        if let Err(e) = &r {
            tracing::warn!(target = %self.target, %method, request_id = %ctx.request_id, error = %e, "rpc cast failed");
        }
        r
    }
}
