//! The in-process bus: servers and clients in one process exchange messages
//! through channels, with the same semantics as the AMQP transport
//! (competing consumers on a topic, direct `topic.server` delivery, fanout,
//! call/reply with timeouts, remote errors).
//!
//! Differences from AMQP, by design:
//! * messages are not serialized (arguments are moved as `serde_json::Value`),
//!   so the size limit is not enforced;
//! * there is no queue without a consumer: a `call` nobody serves (or whose
//!   server stops before replying) fails with [`RpcError::NoListener`] (AMQP: the same when no queue is bound,
//!   a timeout when a queue exists but no server consumes it), and a `cast`
//!   nobody serves is dropped (AMQP: kept in the queue until a server comes);
//! * the bus is always connected; [`Transport::close`] closes the whole bus.

use crate::dispatch::Dispatcher;
use crate::transport::check_call_target;
use crate::{
    ConnectionState, Handler, RemoteError, Request, RpcError, ServerControl, ServerHandle, ServerOptions, Target,
    Transport,
};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// The in-process transport. Clones share the same bus.
#[derive(Clone)]
pub struct InProcTransport {
    bus: Arc<Bus>,
}

struct Bus {
    name: String,
    topics: Mutex<HashMap<String, Topic>>,
    state: watch::Sender<ConnectionState>,
    closed: AtomicBool,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Topic {
    members: Vec<Member>,
    next: usize,
}

struct Member {
    id: u64,
    server: String,
    tx: mpsc::UnboundedSender<Delivery>,
}

struct Delivery {
    request: Request,
    reply: Option<oneshot::Sender<Result<Value, RemoteError>>>,
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Bus>>> {
    static BUSES: OnceLock<Mutex<HashMap<String, Weak<Bus>>>> = OnceLock::new();
    BUSES.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for InProcTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcTransport {
    /// A new private bus, reachable only through clones of this value.
    pub fn new() -> Self {
        InProcTransport { bus: Arc::new(Bus::new(String::new())) }
    }

    /// The process-wide bus called `name` (what `in-process://name` opens):
    /// every call with the same name, while the bus is alive and open,
    /// returns a handle on the same bus.
    pub fn named(name: &str) -> Self {
        let mut buses = lock(registry());
        if let Some(bus) = buses.get(name).and_then(Weak::upgrade) {
            if !bus.closed.load(Ordering::SeqCst) {
                return InProcTransport { bus };
            }
        }
        buses.retain(|_, b| b.strong_count() > 0);
        let bus = Arc::new(Bus::new(name.to_string()));
        buses.insert(name.to_string(), Arc::downgrade(&bus));
        InProcTransport { bus }
    }

    /// The bus name (`""` for the default or a private bus).
    pub fn name(&self) -> &str {
        &self.bus.name
    }
}

impl Bus {
    fn new(name: String) -> Self {
        let (state, _) = watch::channel(ConnectionState { connected: true, epoch: 1 });
        Bus {
            name,
            topics: Mutex::new(HashMap::new()),
            state,
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        }
    }

    fn check_open(&self) -> Result<(), RpcError> {
        if self.closed.load(Ordering::SeqCst) {
            Err(RpcError::Closed)
        } else {
            Ok(())
        }
    }

    /// Picks the receivers of a message to `target`.
    fn route(&self, target: &Target) -> Vec<mpsc::UnboundedSender<Delivery>> {
        let mut topics = lock(&self.topics);
        let Some(topic) = topics.get_mut(&target.topic) else {
            return Vec::new();
        };
        if target.fanout {
            return topic.members.iter().map(|m| m.tx.clone()).collect();
        }
        let candidates: Vec<usize> = topic
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| target.server.as_ref().is_none_or(|s| *s == m.server))
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        let pick = candidates[topic.next % candidates.len()];
        topic.next = topic.next.wrapping_add(1);
        vec![topic.members[pick].tx.clone()]
    }

    fn remove(&self, topic: &str, id: u64) {
        let mut topics = lock(&self.topics);
        if let Some(t) = topics.get_mut(topic) {
            t.members.retain(|m| m.id != id);
            if t.members.is_empty() {
                topics.remove(topic);
            }
        }
    }
}

#[async_trait]
impl Transport for InProcTransport {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    async fn cast(&self, target: &Target, request: Request) -> Result<(), RpcError> {
        self.bus.check_open()?;
        target.validate()?;
        let receivers = self.bus.route(target);
        if receivers.is_empty() {
            tracing::debug!(target = %target, method = %request.method, "cast dropped: nobody listens");
        }
        let mut request = Some(request);
        let last = receivers.len().saturating_sub(1);
        for (i, tx) in receivers.into_iter().enumerate() {
            // Clone for all but the last receiver (fanout), move into the last.
            let request = if i == last { request.take() } else { request.clone() };
            if let Some(request) = request {
                let _ = tx.send(Delivery { request, reply: None });
            }
        }
        Ok(())
    }

    async fn call(&self, target: &Target, mut request: Request, timeout: Duration) -> Result<Value, RpcError> {
        self.bus.check_open()?;
        check_call_target(target)?;
        let no_listener = || RpcError::NoListener { target: target.address() };
        let tx = self.bus.route(target).pop().ok_or_else(no_listener)?;
        request.context.msg_id = Some(uuid::Uuid::new_v4().simple().to_string());
        request.context.api_version = request.version.clone();
        let method = request.method.clone();
        let (reply_tx, reply_rx) = oneshot::channel();
        tx.send(Delivery { request, reply: Some(reply_tx) }).map_err(|_| no_listener())?;
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(outcome)) => outcome.map_err(RpcError::from),
            Ok(Err(_)) => Err(no_listener()),
            Err(_) => Err(RpcError::Timeout { topic: target.topic.clone(), method, timeout }),
        }
    }

    async fn serve(
        &self,
        topic: &str,
        server: &str,
        handler: Arc<dyn Handler>,
        options: ServerOptions,
    ) -> Result<ServerHandle, RpcError> {
        self.bus.check_open()?;
        Target::topic(topic).server(server).validate()?;
        let id = self.bus.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let dispatcher = Dispatcher::new(handler, &options, topic, server);
        let d = dispatcher.clone();
        let task = tokio::spawn(async move {
            while let Some(delivery) = rx.recv().await {
                let Some(slot) = d.slot().await else { break };
                let reply = delivery.reply;
                let mut request = delivery.request;
                if reply.is_none() {
                    request.context.msg_id = None;
                }
                d.spawn(slot, request, move |outcome| async move {
                    if let Some(reply) = reply {
                        let _ = reply.send(outcome);
                    }
                });
            }
        });
        lock(&self.bus.topics).entry(topic.to_string()).or_default().members.push(Member {
            id,
            server: server.to_string(),
            tx,
        });
        tracing::debug!(bus = %self.bus.name, %topic, %server, "in-process rpc server started");
        let control = InProcServer {
            bus: Arc::downgrade(&self.bus),
            topic: topic.to_string(),
            id,
            dispatcher,
            task: Mutex::new(Some(task)),
        };
        Ok(ServerHandle::new(topic, server, Box::new(control)))
    }

    fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.bus.state.subscribe()
    }

    async fn close(&self) {
        if self.bus.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        lock(&self.bus.topics).clear();
        let epoch = self.bus.state.borrow().epoch;
        self.bus.state.send_replace(ConnectionState { connected: false, epoch });
    }
}

struct InProcServer {
    bus: Weak<Bus>,
    topic: String,
    id: u64,
    dispatcher: Dispatcher,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl ServerControl for InProcServer {
    async fn stop(&self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.remove(&self.topic, self.id);
        }
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.dispatcher.drain().await;
    }

    fn stop_in_background(&self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.remove(&self.topic, self.id);
        }
    }
}
