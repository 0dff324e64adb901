//! JSON-RPC 1.0 over a byte stream, as OVSDB uses it (RFC 7047 section 4):
//! messages are JSON objects written back to back without delimiters.
//!
//! A [`Connection`] owns a reader task that splits the stream into messages,
//! answers the server's `echo` keep-alives, completes pending requests by
//! `id` and forwards `update`/`update2`/`update3` notifications to the
//! subscriber registered for their monitor id.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Where an OVSDB server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:<path>`
    Unix(PathBuf),
    /// `tcp:<host>:<port>`
    Tcp(String),
}

impl Endpoint {
    /// Parses `unix:/path` or `tcp:host:port`; a bare path is taken as a unix socket.
    pub fn parse(s: &str) -> Result<Endpoint> {
        if let Some(p) = s.strip_prefix("unix:") {
            Ok(Endpoint::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            Ok(Endpoint::Tcp(a.to_string()))
        } else if s.starts_with('/') {
            Ok(Endpoint::Unix(PathBuf::from(s)))
        } else {
            Err(Error::Invalid(format!("unsupported ovsdb endpoint {s:?} (want unix:PATH or tcp:HOST:PORT)")))
        }
    }

    /// The unix socket endpoint `unix:<path>`.
    pub fn unix(path: impl Into<PathBuf>) -> Endpoint {
        Endpoint::Unix(path.into())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Splits a byte stream into complete top-level JSON values.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Scan position in `buf`.
    pos: usize,
    depth: usize,
    in_string: bool,
    escape: bool,
    start: Option<usize>,
}

impl Framer {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Returns the next complete message, if any.
    pub fn next_message(&mut self) -> Result<Option<Value>> {
        while self.pos < self.buf.len() {
            let c = self.buf[self.pos];
            self.pos += 1;
            if self.start.is_none() {
                match c {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' | b'[' => {
                        self.start = Some(self.pos - 1);
                        self.depth = 1;
                        continue;
                    }
                    _ => return Err(Error::Protocol(format!("unexpected byte {c:#x} between messages"))),
                }
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if c == b'\\' {
                    self.escape = true;
                } else if c == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match c {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        let start = self.start.take().unwrap_or(0);
                        let v: Value = serde_json::from_slice(&self.buf[start..self.pos])?;
                        self.buf.drain(..self.pos);
                        self.pos = 0;
                        return Ok(Some(v));
                    }
                }
                _ => {}
            }
        }
        if self.start.is_none() {
            self.buf.clear();
            self.pos = 0;
        }
        Ok(None)
    }
}

type Pending = HashMap<u64, (String, oneshot::Sender<Result<Value>>)>;
type Subscribers = HashMap<String, mpsc::UnboundedSender<Notification>>;

/// A notification for a monitor (`update`, `update2` or `update3`).
#[derive(Debug, Clone)]
pub struct Notification {
    /// `update`, `update2` or `update3`.
    pub method: String,
    /// The table updates (`params[1]`, or `params[2]` for `update3`).
    pub updates: Value,
}

struct Shared {
    endpoint: String,
    pending: Mutex<Pending>,
    subscribers: Mutex<Subscribers>,
    closed: AtomicBool,
    close_reason: Mutex<Option<String>>,
}

impl Shared {
    fn fail_all(&self, reason: &str) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut r) = self.close_reason.lock() {
            r.get_or_insert_with(|| reason.to_string());
        }
        let pending: Vec<_> = self.pending.lock().map(|mut p| p.drain().collect()).unwrap_or_default();
        for (_, (_, tx)) in pending {
            let _ = tx.send(Err(Error::Disconnected { endpoint: self.endpoint.clone(), reason: reason.to_string() }));
        }
        // Dropping the senders ends the subscribers' streams.
        if let Ok(mut s) = self.subscribers.lock() {
            s.clear();
        }
    }
}

/// One JSON-RPC connection to an OVSDB server.
pub struct Connection {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    next_id: AtomicU64,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("endpoint", &self.shared.endpoint).finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer_task.abort();
    }
}

impl Connection {
    /// Connects to `endpoint`.
    pub async fn connect(endpoint: &Endpoint) -> Result<Connection> {
        let name = endpoint.to_string();
        match endpoint {
            Endpoint::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| Error::Disconnected { endpoint: name.clone(), reason: format!("connect: {e}") })?;
                let (r, w) = s.into_split();
                Ok(Self::start(name, r, w))
            }
            Endpoint::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|e| Error::Disconnected { endpoint: name.clone(), reason: format!("connect: {e}") })?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                Ok(Self::start(name, r, w))
            }
        }
    }

    fn start<R, W>(endpoint: String, mut r: R, mut w: W) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            endpoint,
            pending: Mutex::new(HashMap::new()),
            subscribers: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            close_reason: Mutex::new(None),
        });
        let (wtx, mut wrx) = mpsc::unbounded_channel::<Vec<u8>>();
        let wshared = shared.clone();
        let writer_task = tokio::spawn(async move {
            while let Some(buf) = wrx.recv().await {
                if let Err(e) = w.write_all(&buf).await {
                    wshared.fail_all(&format!("write: {e}"));
                    return;
                }
            }
        });
        let rshared = shared.clone();
        let echo_tx = wtx.clone();
        let reader = tokio::spawn(async move {
            let mut framer = Framer::default();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match r.read(&mut buf).await {
                    Ok(0) => {
                        rshared.fail_all("connection closed by server");
                        return;
                    }
                    Ok(n) => n,
                    Err(e) => {
                        rshared.fail_all(&format!("read: {e}"));
                        return;
                    }
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_message() {
                        Ok(Some(msg)) => dispatch(&rshared, &echo_tx, msg),
                        Ok(None) => break,
                        Err(e) => {
                            rshared.fail_all(&format!("bad message: {e}"));
                            return;
                        }
                    }
                }
            }
        });
        Connection { shared, writer: wtx, next_id: AtomicU64::new(1), reader, writer_task }
    }

    /// The endpoint this connection goes to.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// Whether the connection has been lost.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    fn disconnected(&self) -> Error {
        let reason = self
            .shared
            .close_reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "connection closed".to_string());
        Error::Disconnected { endpoint: self.shared.endpoint.clone(), reason }
    }

    /// Registers a receiver of notifications for monitor id `id` (a JSON string).
    /// Register before sending the monitor request so nothing is missed.
    pub fn subscribe(&self, id: &str) -> mpsc::UnboundedReceiver<Notification> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut s) = self.shared.subscribers.lock() {
            s.insert(id.to_string(), tx);
        }
        rx
    }

    /// Removes the subscriber for monitor id `id`.
    pub fn unsubscribe(&self, id: &str) {
        if let Ok(mut s) = self.shared.subscribers.lock() {
            s.remove(id);
        }
    }

    /// Sends a request and waits for its result (`Error::Rpc` on a JSON-RPC error).
    pub async fn request(&self, method: &str, params: Value) -> Result<Value> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .map_err(|_| Error::Protocol("poisoned lock".into()))?
            .insert(id, (method.to_string(), tx));
        let msg = json!({"method": method, "params": params, "id": id});
        tracing::trace!(endpoint = %self.shared.endpoint, %msg, "ovsdb send");
        let bytes = serde_json::to_vec(&msg)?;
        if self.writer.send(bytes).is_err() {
            if let Ok(mut p) = self.shared.pending.lock() {
                p.remove(&id);
            }
            return Err(self.disconnected());
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.disconnected()),
        }
    }

    /// Sends a notification-style message (no reply expected).
    pub fn notify(&self, method: &str, params: Value) -> Result<()> {
        let bytes = serde_json::to_vec(&json!({"method": method, "params": params, "id": Value::Null}))?;
        self.writer.send(bytes).map_err(|_| self.disconnected())
    }
}

fn dispatch(shared: &Shared, writer: &mpsc::UnboundedSender<Vec<u8>>, msg: Value) {
    tracing::trace!(endpoint = %shared.endpoint, %msg, "ovsdb recv");
    if let Some(method) = msg.get("method").and_then(Value::as_str) {
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "echo" => {
                let reply = json!({"result": params, "error": Value::Null, "id": msg.get("id").cloned().unwrap_or(Value::Null)});
                if let Ok(b) = serde_json::to_vec(&reply) {
                    let _ = writer.send(b);
                }
            }
            "update" | "update2" | "update3" => {
                let arr = params.as_array().cloned().unwrap_or_default();
                let id = match arr.first() {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return,
                };
                let updates = if method == "update3" { arr.get(2) } else { arr.get(1) }.cloned().unwrap_or(Value::Null);
                let tx = shared.subscribers.lock().ok().and_then(|s| s.get(&id).cloned());
                match tx {
                    Some(tx) => {
                        let _ = tx.send(Notification { method: method.to_string(), updates });
                    }
                    None => tracing::debug!(monitor = %id, "update for unknown monitor dropped"),
                }
            }
            other => tracing::debug!(method = other, "ignoring unsupported server request"),
        }
        return;
    }
    let Some(id) = msg.get("id").and_then(Value::as_u64) else {
        tracing::debug!(%msg, "reply with unknown id ignored");
        return;
    };
    let entry = shared.pending.lock().ok().and_then(|mut p| p.remove(&id));
    let Some((method, tx)) = entry else {
        tracing::debug!(id, "reply for unknown request ignored");
        return;
    };
    let err = msg.get("error").cloned().unwrap_or(Value::Null);
    let res = if err.is_null() {
        Ok(msg.get("result").cloned().unwrap_or(Value::Null))
    } else {
        Err(Error::Rpc { method, error: err.to_string() })
    };
    let _ = tx.send(res);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_splits_and_handles_strings() {
        let mut f = Framer::default();
        f.push(br#"{"a":"}{\"x"} {"b":[1,{"c":2}]}{"#);
        assert_eq!(f.next_message().unwrap(), Some(json!({"a": "}{\"x"})));
        assert_eq!(f.next_message().unwrap(), Some(json!({"b": [1, {"c": 2}]})));
        assert_eq!(f.next_message().unwrap(), None);
        f.push(br#""d":1}"#);
        assert_eq!(f.next_message().unwrap(), Some(json!({"d": 1})));
        assert_eq!(f.next_message().unwrap(), None);
    }

    #[test]
    fn endpoint_parse() {
        assert_eq!(Endpoint::parse("unix:/x/db.sock").unwrap(), Endpoint::Unix("/x/db.sock".into()));
        assert!(Endpoint::parse("ssl:1.2.3.4:6640").is_err());
    }
}
