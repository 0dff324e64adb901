//! AMQP 0-9-1 on RabbitMQ, laid out as oslo.messaging's rabbit driver:
//!
//! * a *control exchange* (topic type, default `neutron`) routes casts and
//!   calls: the shared queue `topic` (bound with key `topic`, consumed by every
//!   server of the topic: competing consumers) and the direct queue
//!   `topic.server` (bound with key `topic.server`);
//! * a fanout exchange `topic_fanout` per topic; each server binds its own
//!   exclusive, auto-delete queue `topic_fanout_<uuid>` to it;
//! * each transport (one connection) has an exclusive reply queue
//!   `reply_<uuid>`; replies go through the default exchange with the
//!   caller's `msg_id` as correlation id.
//!
//! One supervisor task per transport owns the connection: it connects (with
//! [`crate::Backoff`], cycling through the URL's brokers), declares the
//! topology, starts consumers, watches the connection (client library
//! events, a 250 ms status poll, the reply consumer ending), and on loss fails
//! pending calls with [`crate::RpcError::ConnectionLost`], then reconnects and
//! re-declares everything. Each successful connection bumps
//! [`crate::ConnectionState::epoch`].
//!
//! Publishing uses publisher confirms: `cast` and `call` return only once the
//! broker has taken the message. Calls are published `mandatory`, so a call
//! to a target with no bound queue fails at once with
//! [`crate::RpcError::NoListener`]; they also carry an AMQP expiration equal
//! to their timeout, so a server that comes late never runs a call nobody
//! waits for. Messages are acknowledged when their handler is dispatched (at
//! most once, as oslo.messaging does for RPC).

mod client;
mod connection;
mod server;

use crate::backoff::Backoff;
use crate::transport::check_call_target;
use crate::url::RabbitUrl;
use crate::{ConnectionState, Handler, Request, RpcError, ServerHandle, ServerOptions, Target, Transport};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) use connection::Link;

/// Settings of an [`AmqpTransport`] that are not part of the URL.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// The topic exchange carrying casts and calls (Neutron's
    /// `control_exchange`, default `neutron`).
    pub control_exchange: String,
    /// The client-provided connection name shown by `rabbitmqctl
    /// list_connections client_properties` (default `neutrino-rpc:<pid>`).
    pub connection_name: String,
    /// Delays between connection attempts.
    pub backoff: Backoff,
    /// Largest encoded message accepted for sending (default 16 MiB; RabbitMQ
    /// itself accepts 128 MiB): a guard against blobs, not a working limit.
    pub max_message_bytes: usize,
    /// If set, the shared and per-server queues get this `x-expires`: the
    /// broker deletes them after being unused that long. Every declarer of a
    /// queue must agree on it (RabbitMQ rejects a redeclaration with other
    /// arguments), so leave it `None` next to other Neutron services.
    pub queue_expiry: Option<Duration>,
    /// How long a `cast` (or a reply) waits for a connection when there is
    /// none (default 10 s). A `call` waits at most its own timeout.
    pub send_timeout: Duration,
    /// Heartbeat interval requested when the URL does not say (default 30 s).
    pub heartbeat: u16,
    /// TCP and AMQP handshake timeout when the URL does not say (default 5 s).
    pub connection_timeout: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            control_exchange: "neutron".into(),
            connection_name: format!("neutrino-rpc:{}", std::process::id()),
            backoff: Backoff::default(),
            max_message_bytes: 16 << 20,
            queue_expiry: None,
            send_timeout: Duration::from_secs(10),
            heartbeat: 30,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// The RabbitMQ transport. Clones share one connection; when the last clone
/// is dropped the connection is closed.
#[derive(Clone)]
pub struct AmqpTransport {
    shared: Arc<Shared>,
    _guard: Arc<ShutdownGuard>,
}

/// What the supervisor is asked to do.
pub(crate) enum Cmd {
    /// Declare and start consuming for a newly registered server.
    Setup { id: u64, done: oneshot::Sender<Result<(), RpcError>> },
    /// A server's consumer ended while its connection looked alive.
    ServerLost { id: u64, epoch: u64 },
    /// Something noticed that connection `epoch` is gone.
    Lost { epoch: u64, reason: String },
    /// Close everything.
    Shutdown { done: Option<oneshot::Sender<()>> },
}

/// A call waiting for its reply.
pub(crate) struct Pending {
    tx: oneshot::Sender<Result<Value, RpcError>>,
    method: String,
}

/// State shared by the transport handles, the supervisor and the consumers.
pub(crate) struct Shared {
    url: RabbitUrl,
    opts: AmqpOptions,
    /// Distinguishes this transport's queue names and consumer tags.
    instance: String,
    state: watch::Sender<ConnectionState>,
    link: RwLock<Option<Arc<Link>>>,
    pending: Mutex<HashMap<String, Pending>>,
    servers: Mutex<HashMap<u64, Arc<server::ServerEntry>>>,
    cmd: mpsc::UnboundedSender<Cmd>,
    closed: AtomicBool,
    next_id: AtomicU64,
}

struct ShutdownGuard {
    cmd: mpsc::UnboundedSender<Cmd>,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Shutdown { done: None });
    }
}

/// `start + d`, saturating (a caller may pass `Duration::MAX` for "forever").
pub(crate) fn deadline_after(start: std::time::Instant, d: Duration) -> std::time::Instant {
    start.checked_add(d).unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 24 * 3600))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AmqpTransport {
    /// Starts the transport: returns at once, the connection is made in the
    /// background (use [`Transport::wait_connected`] to wait for it). Must be
    /// called inside a Tokio runtime.
    pub fn start(url: RabbitUrl, opts: AmqpOptions) -> Result<Self, RpcError> {
        if url.hosts.is_empty() {
            return Err(RpcError::InvalidUrl { url: url.to_string(), reason: "no broker host".into() });
        }
        crate::target::validate_name("control exchange", &opts.control_exchange)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RpcError::Amqp("the AMQP transport must be started inside a Tokio runtime".into()));
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (state, _) = watch::channel(ConnectionState::default());
        let shared = Arc::new(Shared {
            url,
            opts,
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            state,
            link: RwLock::new(None),
            pending: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            cmd: cmd_tx.clone(),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(connection::supervise(shared.clone(), cmd_rx));
        Ok(AmqpTransport { shared, _guard: Arc::new(ShutdownGuard { cmd: cmd_tx }) })
    }

    /// The client-provided connection name.
    pub fn connection_name(&self) -> &str {
        &self.shared.opts.connection_name
    }

    /// The options in force.
    pub fn options(&self) -> &AmqpOptions {
        &self.shared.opts
    }

    /// How many calls are waiting for a reply.
    pub fn pending_calls(&self) -> usize {
        lock(&self.shared.pending).len()
    }

    /// Deletes a queue (administration and tests; servers do not delete the
    /// shared queues they declare, as in oslo.messaging).
    pub async fn delete_queue(&self, name: &str) -> Result<(), RpcError> {
        let link = self.shared.wait_link(self.shared.opts.send_timeout).await?;
        let ch = link.conn.create_channel().await?;
        ch.queue_delete(name, Default::default()).await?;
        let _ = ch.close(200, "done").await;
        Ok(())
    }

    /// Deletes an exchange (administration and tests).
    pub async fn delete_exchange(&self, name: &str) -> Result<(), RpcError> {
        let link = self.shared.wait_link(self.shared.opts.send_timeout).await?;
        let ch = link.conn.create_channel().await?;
        ch.exchange_delete(name, Default::default()).await?;
        let _ = ch.close(200, "done").await;
        Ok(())
    }
}

impl Shared {
    fn current_link(&self) -> Option<Arc<Link>> {
        self.link.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_link(&self, link: Option<Arc<Link>>) {
        *self.link.write().unwrap_or_else(|p| p.into_inner()) = link;
    }

    /// The current connection, waiting up to `wait` for one.
    pub(crate) async fn wait_link(&self, wait: Duration) -> Result<Arc<Link>, RpcError> {
        let deadline = tokio::time::Instant::from_std(deadline_after(std::time::Instant::now(), wait));
        let mut rx = self.state.subscribe();
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(RpcError::Closed);
            }
            if let Some(link) = self.current_link() {
                if link.conn.status().connected() {
                    return Ok(link);
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(RpcError::Closed),
                Err(_) => return Err(RpcError::NotConnected { waited: wait }),
            }
        }
    }

    /// Fails every pending call (connection lost or transport closed).
    fn fail_pending(&self, err: impl Fn(&str) -> RpcError) -> usize {
        let drained: Vec<Pending> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        let n = drained.len();
        for p in drained {
            let _ = p.tx.send(Err(err(&p.method)));
        }
        n
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    fn kind(&self) -> &'static str {
        "rabbit"
    }

    async fn cast(&self, target: &Target, request: Request) -> Result<(), RpcError> {
        target.validate()?;
        self.shared.cast(target, &request).await
    }

    async fn call(&self, target: &Target, request: Request, timeout: Duration) -> Result<Value, RpcError> {
        check_call_target(target)?;
        self.shared.call(target, &request, timeout).await
    }

    async fn serve(
        &self,
        topic: &str,
        server: &str,
        handler: Arc<dyn Handler>,
        options: ServerOptions,
    ) -> Result<ServerHandle, RpcError> {
        server::serve(&self.shared, topic, server, handler, options).await
    }

    fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.shared.cmd.send(Cmd::Shutdown { done: Some(tx) }).is_ok() {
            let _ = rx.await;
        }
    }
}
