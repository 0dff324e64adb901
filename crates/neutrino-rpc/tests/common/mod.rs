//! Shared test fixtures: the same scenario bodies run against the in-process
//! bus and against RabbitMQ.
//!
//! AMQP tests use `NEUTRINO_TEST_TRANSPORT_URL` (default
//! `rabbit://guest:guest@127.0.0.1:5672/`), a control exchange and topics
//! unique to each fixture, queues with `x-expires` (so even a crashed run
//! leaves nothing behind for long), and delete what they declared when the
//! fixture is dropped.

#![allow(dead_code)]

use async_trait::async_trait;
use neutrino_rpc::url::RabbitUrl;
use neutrino_rpc::{
    AmqpOptions, AmqpTransport, Backoff, CallContext, Handler, InProcTransport, RemoteError, ServerHandle,
    ServerOptions, Transport, TransportUrl,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InProc,
    Amqp,
}

pub fn broker_url() -> String {
    std::env::var("NEUTRINO_TEST_TRANSPORT_URL").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".into())
}

pub fn rabbit_url() -> RabbitUrl {
    match TransportUrl::parse(&broker_url()).expect("NEUTRINO_TEST_TRANSPORT_URL") {
        TransportUrl::Rabbit(r) => r,
        other => panic!("not a rabbit URL: {other}"),
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// One test's world: unique names, its transports, cleanup on drop.
pub struct Fixture {
    pub kind: Kind,
    pub run: String,
    declared: Arc<Mutex<Declared>>,
    transports: Mutex<Vec<Arc<dyn Transport>>>,
}

#[derive(Default)]
struct Declared {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Fixture {
    pub fn new(kind: Kind) -> Self {
        init_tracing();
        let run = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let fx = Fixture { kind, run, declared: Default::default(), transports: Mutex::new(Vec::new()) };
        if kind == Kind::Amqp {
            fx.declared.lock().unwrap().exchanges.push(fx.control_exchange());
        }
        fx
    }

    pub fn control_exchange(&self) -> String {
        format!("neutrino-test-{}", self.run)
    }

    /// A topic name unique to this fixture.
    pub fn topic(&self, base: &str) -> String {
        format!("{base}-{}", self.run)
    }

    pub fn amqp_options(&self, label: &str) -> AmqpOptions {
        AmqpOptions {
            control_exchange: self.control_exchange(),
            connection_name: self.connection_name(label),
            queue_expiry: Some(Duration::from_secs(300)),
            backoff: Backoff::default(),
            ..Default::default()
        }
    }

    pub fn connection_name(&self, label: &str) -> String {
        format!("neutrino-rpc-test-{}-{label}", self.run)
    }

    /// A new AMQP transport (its own connection), connected.
    pub async fn amqp(&self, label: &str) -> AmqpTransport {
        self.amqp_with(self.amqp_options(label)).await
    }

    /// A new AMQP transport with these options, connected.
    pub async fn amqp_with(&self, options: AmqpOptions) -> AmqpTransport {
        let t = AmqpTransport::start(rabbit_url(), options).unwrap();
        t.wait_connected(Duration::from_secs(10))
            .await
            .expect("RabbitMQ must be reachable (see NEUTRINO_TEST_TRANSPORT_URL)");
        t
    }

    /// A transport for one participant ("process") of the test.
    pub async fn transport(&self, label: &str) -> Arc<dyn Transport> {
        let t: Arc<dyn Transport> = match self.kind {
            Kind::InProc => Arc::new(InProcTransport::named(&format!("test-{}", self.run))),
            Kind::Amqp => Arc::new(self.amqp(label).await),
        };
        self.transports.lock().unwrap().push(t.clone());
        t
    }

    /// Remembers what serving `topic` as `server` declares, for cleanup.
    pub fn note_server(&self, topic: &str, server: &str) {
        let mut d = self.declared.lock().unwrap();
        for q in [topic.to_string(), format!("{topic}.{server}")] {
            if !d.queues.contains(&q) {
                d.queues.push(q);
            }
        }
        let ex = format!("{topic}_fanout");
        if !d.exchanges.contains(&ex) {
            d.exchanges.push(ex);
        }
    }

    /// Starts a [`TestHandler`] server and returns its handle and the stream
    /// of messages it records.
    pub async fn serve(
        &self,
        transport: &Arc<dyn Transport>,
        topic: &str,
        server: &str,
        options: ServerOptions,
    ) -> (ServerHandle, mpsc::UnboundedReceiver<Seen>) {
        self.note_server(topic, server);
        let (handler, rx) = TestHandler::new(server);
        let h = transport.serve(topic, server, Arc::new(handler), options).await.expect("serve");
        (h, rx)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.kind != Kind::Amqp {
            return;
        }
        let declared = std::mem::take(&mut *self.declared.lock().unwrap());
        let opts = self.amqp_options("cleanup");
        // Our own runtime in our own thread: this may run inside (or after) the
        // test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let t = AmqpTransport::start(rabbit_url(), opts).unwrap();
                if t.wait_connected(Duration::from_secs(5)).await.is_err() {
                    return;
                }
                for q in &declared.queues {
                    let _ = t.delete_queue(q).await;
                }
                for e in &declared.exchanges {
                    let _ = t.delete_exchange(e).await;
                }
                t.close().await;
            });
        })
        .join();
    }
}

/// What a [`TestHandler`] saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub server: String,
    pub method: String,
    pub args: Value,
    pub ctx: CallContext,
}

/// A handler with a few methods for the scenarios:
/// * `record`: records the message, returns `{"server": name}`;
/// * `echo`: returns the server name, args, request id and API version;
/// * `sleep`: sleeps `args.ms` then returns `{"server": name}`;
/// * `square`: sleeps a little, returns `{"n": n, "sq": n*n}`;
/// * `blob`: returns a string of `args.bytes` bytes;
/// * `fail`: returns `RemoteError(args.kind, args.message)`;
/// * `panic`: panics.
pub struct TestHandler {
    name: String,
    tx: mpsc::UnboundedSender<Seen>,
}

impl TestHandler {
    pub fn new(name: &str) -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (TestHandler { name: name.to_string(), tx }, rx)
    }
}

#[async_trait]
impl Handler for TestHandler {
    async fn handle(&self, ctx: CallContext, method: &str, args: Value) -> Result<Value, RemoteError> {
        let _ = self.tx.send(Seen {
            server: self.name.clone(),
            method: method.to_string(),
            args: args.clone(),
            ctx: ctx.clone(),
        });
        match method {
            "record" => Ok(json!({"server": self.name})),
            "echo" => Ok(json!({
                "server": self.name,
                "args": args,
                "request_id": ctx.request_id,
                "version": ctx.api_version,
                "is_call": ctx.is_call(),
            })),
            "sleep" => {
                let ms = args["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(json!({"server": self.name}))
            }
            "square" => {
                let n = args["n"].as_i64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis((n % 7) as u64)).await;
                Ok(json!({"n": n, "sq": n * n}))
            }
            "blob" => Ok(json!("z".repeat(args["bytes"].as_u64().unwrap_or(0) as usize))),
            "fail" => Err(RemoteError::new(
                args["kind"].as_str().unwrap_or("Unknown"),
                args["message"].as_str().unwrap_or(""),
            )),
            "panic" => panic!("handler asked to panic"),
            other => Err(RemoteError::no_such_method(other)),
        }
    }
}

/// Receives exactly `n` messages (or fails after `within`).
pub async fn collect(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize, within: Duration) -> Vec<Seen> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(s)) => out.push(s),
            Ok(None) => break,
            Err(_) => break,
        }
    }
    out
}

/// Everything received within `within` (for "nothing else arrives" checks).
pub async fn drain_for(rx: &mut mpsc::UnboundedReceiver<Seen>, within: Duration) -> Vec<Seen> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(s)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(s);
    }
    out
}

/// Closes (from the broker side) every connection whose client-provided name
/// is exactly `name`; returns how many were closed.
pub fn close_connections_named(name: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "-q", "--no-table-headers", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl list_connections failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("{{\"connection_name\",\"{name}\"}}");
    let mut closed = 0;
    for line in text.lines().filter(|l| l.contains(&needle)) {
        let pid = line.split_whitespace().next().unwrap_or_default();
        let st = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "neutrino-rpc test: simulated connection loss"])
            .output()
            .expect("rabbitmqctl close_connection");
        if st.status.success() {
            closed += 1;
        }
    }
    closed
}
