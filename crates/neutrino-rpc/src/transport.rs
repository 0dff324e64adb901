//! The one interface both transports implement.

use crate::{Handler, Request, RpcError, Target};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a `call` waits for its reply unless told otherwise
/// (oslo.messaging's `rpc_response_timeout`).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The connection as seen by users of a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionState {
    /// Is the transport connected to its broker right now?
    pub connected: bool,
    /// How many times a connection was established: 1 after the first
    /// connect, 2 after the first reconnect, ... An agent that sees the epoch
    /// grow past 1 should resynchronize (messages may have been lost).
    pub epoch: u64,
}

/// Options of one RPC server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How many handlers may run at the same time (oslo's
    /// `executor_thread_pool_size`, default 64). With 1, messages are handled
    /// strictly one after the other in delivery order.
    pub max_concurrency: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { max_concurrency: 64 }
    }
}

/// A message bus: in-process ([`crate::InProcTransport`]) or AMQP
/// ([`crate::AmqpTransport`]). Share it as `Arc<dyn Transport>`.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// A short name of the transport kind (`in-process`, `rabbit`).
    fn kind(&self) -> &'static str;

    /// Fire-and-forget: delivers `request` to one server of the topic, to the
    /// named server, or (fanout) to every server. Returns once the message is
    /// accepted (AMQP: confirmed by the broker); a cast to a target nobody
    /// listens on is dropped without error, as in oslo.messaging.
    async fn cast(&self, target: &Target, request: Request) -> Result<(), RpcError>;

    /// Request/reply: delivers `request` to one server (or the named one) and
    /// waits up to `timeout` for the handler's result. Fanout targets are
    /// rejected with [`RpcError::InvalidTarget`].
    async fn call(&self, target: &Target, request: Request, timeout: Duration) -> Result<Value, RpcError>;

    /// Starts an RPC server for (`topic`, `server`): it receives messages sent
    /// to the topic (shared with the other servers of the topic), to
    /// `topic.server`, and fanouts of the topic. AMQP: if the broker is
    /// unreachable the server is registered and starts on (re)connection.
    async fn serve(
        &self,
        topic: &str,
        server: &str,
        handler: Arc<dyn Handler>,
        options: ServerOptions,
    ) -> Result<ServerHandle, RpcError>;

    /// Watches the connection state (see [`ConnectionState`]).
    fn watch_state(&self) -> watch::Receiver<ConnectionState>;

    /// Is the transport connected right now (for health endpoints)?
    fn is_connected(&self) -> bool {
        self.watch_state().borrow().connected
    }

    /// A stream of reconnections, for resynchronizing after a reconnect.
    fn reconnects(&self) -> Reconnects {
        Reconnects::new(self.watch_state())
    }

    /// Waits until the transport is connected, at most `timeout`.
    async fn wait_connected(&self, timeout: Duration) -> Result<(), RpcError> {
        let mut rx = self.watch_state();
        let waited = tokio::time::timeout(timeout, async { rx.wait_for(|s| s.connected).await.map(|_| ()) }).await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(RpcError::Closed),
            Err(_) => Err(RpcError::NotConnected { waited: timeout }),
        }
    }

    /// Stops the transport: servers stop consuming, pending calls fail with
    /// [`RpcError::Closed`], the connection is closed.
    async fn close(&self);
}

/// Reports each *re*connection (never the first connection).
///
/// ```no_run
/// # async fn agent(transport: std::sync::Arc<dyn neutrino_rpc::Transport>) {
/// let mut reconnects = transport.reconnects();
/// while let Some(epoch) = reconnects.next().await {
///     tracing::info!(epoch, "reconnected to the bus, resyncing");
///     // full resync with the server ...
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Reconnects {
    rx: watch::Receiver<ConnectionState>,
    seen: u64,
}

impl Reconnects {
    /// Reports reconnections that happen after this call.
    pub fn new(rx: watch::Receiver<ConnectionState>) -> Self {
        let seen = rx.borrow().epoch.max(1);
        Reconnects { rx, seen }
    }

    /// Waits for the next reconnection and returns its epoch; `None` once
    /// the transport is gone.
    pub async fn next(&mut self) -> Option<u64> {
        let seen = self.seen;
        let state = *self.rx.wait_for(|s| s.connected && s.epoch > seen).await.ok()?;
        self.seen = state.epoch;
        Some(state.epoch)
    }
}

/// What a transport does to stop one of its servers.
#[async_trait]
pub trait ServerControl: Send + Sync + 'static {
    /// Stops consuming, then waits for running handlers (and their replies).
    async fn stop(&self);
    /// Stops without waiting (used when the handle is dropped).
    fn stop_in_background(&self);
}

/// A running RPC server. Dropping the handle stops the server; keep it for
/// as long as the server should run, or call [`ServerHandle::stop`].
#[must_use = "dropping the handle stops the server"]
pub struct ServerHandle {
    topic: String,
    server: String,
    control: Option<Box<dyn ServerControl>>,
}

impl ServerHandle {
    /// Wraps a transport's server control.
    pub fn new(topic: &str, server: &str, control: Box<dyn ServerControl>) -> Self {
        ServerHandle { topic: topic.to_string(), server: server.to_string(), control: Some(control) }
    }

    /// The topic served.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The server name.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Stops consuming and waits for running handlers to finish.
    pub async fn stop(mut self) {
        if let Some(c) = self.control.take() {
            c.stop().await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(c) = self.control.take() {
            c.stop_in_background();
        }
    }
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle").field("topic", &self.topic).field("server", &self.server).finish()
    }
}

/// Rejects targets a `call` cannot use.
pub(crate) fn check_call_target(target: &Target) -> Result<(), RpcError> {
    target.validate()?;
    if target.fanout {
        return Err(RpcError::InvalidTarget(format!("a call cannot be fanned out ({target})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reconnects_skip_the_first_connection() {
        let (tx, rx) = watch::channel(ConnectionState::default());
        let mut r = Reconnects::new(rx);
        tx.send(ConnectionState { connected: true, epoch: 1 }).unwrap();
        let next = tokio::time::timeout(Duration::from_millis(50), r.next()).await;
        assert!(next.is_err(), "the first connection is not a reconnect");
        tx.send(ConnectionState { connected: false, epoch: 1 }).unwrap();
        tx.send(ConnectionState { connected: true, epoch: 2 }).unwrap();
        assert_eq!(r.next().await, Some(2));
        drop(tx);
        assert_eq!(r.next().await, None);
    }
}
