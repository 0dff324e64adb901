//! Table monitors (`monitor` / `monitor_cond`, RFC 7047 section 4.1.5 and
//! ovsdb-server(7)) as a stream of row events, surviving server restarts.
//!
//! A [`TableMonitor`] runs a background task with its own connection. It keeps
//! a cache of the monitored rows; the initial snapshot is delivered as
//! [`RowChange::Insert`] events followed by [`MonitorEvent::Synced`]. When the
//! connection drops it emits [`MonitorEvent::Disconnected`], reconnects with
//! backoff, re-issues the monitor and emits the *difference* between the cache
//! and the new snapshot (so a row deleted while the server was away is
//! reported as deleted), then `Synced { reconnect: true }`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::datum::{row_from_json, Datum, Row};
use super::jsonrpc::{Connection, Endpoint};
use super::ops::Condition;
use super::schema::Schema;
use crate::error::{Error, Result};

/// Which monitor request to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MonitorMethod {
    /// RFC 7047 `monitor` (`update` notifications with full old/new rows).
    Monitor,
    /// `monitor_cond` (`update2` notifications with row diffs, server-side conditions).
    #[default]
    MonitorCond,
}

/// What to monitor.
#[derive(Debug, Clone)]
pub struct MonitorSpec {
    /// Database (usually `Open_vSwitch`).
    pub db: String,
    /// Table.
    pub table: String,
    /// Columns (empty = all columns of the table).
    pub columns: Vec<String>,
    /// Server-side condition (`monitor_cond` only; `None` = all rows).
    pub conditions: Option<Vec<Condition>>,
    /// Request method.
    pub method: MonitorMethod,
}

impl MonitorSpec {
    /// Monitors `columns` of `table` in the `Open_vSwitch` database with `monitor_cond`.
    pub fn new(table: &str, columns: &[&str]) -> MonitorSpec {
        MonitorSpec {
            db: super::client::OPEN_VSWITCH_DB.to_string(),
            table: table.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            conditions: None,
            method: MonitorMethod::MonitorCond,
        }
    }

    /// Uses the given request method.
    pub fn method(mut self, m: MonitorMethod) -> Self {
        self.method = m;
        self
    }

    /// Restricts to rows matching `conditions` (forces `monitor_cond`).
    pub fn conditions(mut self, c: Vec<Condition>) -> Self {
        self.conditions = Some(c);
        self.method = MonitorMethod::MonitorCond;
        self
    }
}

/// Kind of row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowChange {
    /// Row appeared.
    Insert,
    /// Row changed.
    Modify,
    /// Row disappeared.
    Delete,
}

/// A change of one row.
#[derive(Debug, Clone)]
pub struct RowEvent {
    /// Row UUID.
    pub uuid: String,
    /// What happened.
    pub change: RowChange,
    /// Previous contents (modify, delete).
    pub old: Option<Row>,
    /// New contents (insert, modify).
    pub new: Option<Row>,
}

/// An event of a [`TableMonitor`].
#[derive(Debug, Clone)]
pub enum MonitorEvent {
    /// A row changed.
    Row(RowEvent),
    /// The cache reflects the server (after the initial snapshot or a resync).
    Synced {
        /// True after a reconnection.
        reconnect: bool,
    },
    /// The connection was lost; reconnection is under way.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// A running monitor of one table. Dropping it stops the background task.
#[derive(Debug)]
pub struct TableMonitor {
    rx: mpsc::UnboundedReceiver<MonitorEvent>,
    task: JoinHandle<()>,
    cache: Arc<Mutex<BTreeMap<String, Row>>>,
}

impl Drop for TableMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TableMonitor {
    /// Starts monitoring. Returns once the first snapshot has been received
    /// (its rows are waiting in the stream as `Insert` events); fails if the
    /// first connection fails. Later disconnections are handled internally.
    pub async fn start(endpoint: Endpoint, spec: MonitorSpec) -> Result<TableMonitor> {
        let (tx, rx) = mpsc::unbounded_channel();
        let cache = Arc::new(Mutex::new(BTreeMap::new()));
        let (started_tx, started_rx) = oneshot::channel();
        let task = tokio::spawn(run(endpoint.clone(), spec, tx, cache.clone(), started_tx));
        match started_rx.await {
            Ok(Ok(())) => Ok(TableMonitor { rx, task, cache }),
            Ok(Err(e)) => {
                task.abort();
                Err(e)
            }
            Err(_) => Err(Error::Disconnected { endpoint: endpoint.to_string(), reason: "monitor task ended".into() }),
        }
    }

    /// The next event (`None` only if the task died, which it does not by itself).
    pub async fn next(&mut self) -> Option<MonitorEvent> {
        self.rx.recv().await
    }

    /// The next event, waiting at most `t`.
    pub async fn next_timeout(&mut self, t: Duration) -> Option<MonitorEvent> {
        tokio::time::timeout(t, self.rx.recv()).await.ok().flatten()
    }

    /// A copy of the current rows (UUID → row).
    pub fn rows(&self) -> BTreeMap<String, Row> {
        self.cache.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

async fn run(
    endpoint: Endpoint,
    spec: MonitorSpec,
    tx: mpsc::UnboundedSender<MonitorEvent>,
    cache: Arc<Mutex<BTreeMap<String, Row>>>,
    started: oneshot::Sender<Result<()>>,
) {
    let mut started = Some(started);
    let mut backoff = Duration::from_millis(20);
    let mut synced_once = false;
    loop {
        let end = session(&endpoint, &spec, &tx, &cache, synced_once, &mut started).await;
        if tx.is_closed() {
            return;
        }
        match end {
            Ok(SessionEnd::Lost(reason)) => {
                synced_once = true;
                backoff = Duration::from_millis(20);
                tracing::info!(endpoint = %endpoint, table = %spec.table, %reason, "ovsdb monitor disconnected");
                let _ = tx.send(MonitorEvent::Disconnected { reason });
            }
            Err(e) => {
                if let Some(s) = started.take() {
                    let _ = s.send(Err(e));
                    return;
                }
                tracing::debug!(endpoint = %endpoint, error = %e, "ovsdb monitor (re)connection attempt failed");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}

enum SessionEnd {
    /// The connection was lost after the monitor was established.
    Lost(String),
}

/// One connection's worth of monitoring: connect, snapshot, resync, follow updates.
async fn session(
    endpoint: &Endpoint,
    spec: &MonitorSpec,
    tx: &mpsc::UnboundedSender<MonitorEvent>,
    cache: &Arc<Mutex<BTreeMap<String, Row>>>,
    reconnect: bool,
    started: &mut Option<oneshot::Sender<Result<()>>>,
) -> Result<SessionEnd> {
    let conn = Connection::connect(endpoint).await?;
    let schema = Schema::from_json(&conn.request("get_schema", json!([spec.db])).await?)?;
    let columns: Vec<String> = if spec.columns.is_empty() {
        schema.tables.get(&spec.table).map(|t| t.keys().cloned().collect()).unwrap_or_default()
    } else {
        spec.columns.clone()
    };
    let id = "neutrino-monitor";
    let mut rx = conn.subscribe(id);
    let initial = match spec.method {
        MonitorMethod::Monitor => {
            let req = json!([spec.db, id, {spec.table.as_str(): {"columns": columns}}]);
            conn.request("monitor", req).await?
        }
        MonitorMethod::MonitorCond => {
            let mut r = serde_json::Map::new();
            r.insert("columns".into(), json!(columns));
            if let Some(c) = &spec.conditions {
                r.insert("where".into(), Value::Array(c.iter().map(Condition::to_json).collect()));
            }
            let req = json!([spec.db, id, {spec.table.as_str(): [Value::Object(r)]}]);
            conn.request("monitor_cond", req).await?
        }
    };
    let mut fresh = BTreeMap::new();
    apply(&schema, spec, &columns, &initial, &mut fresh, &mut Vec::new())?;
    {
        let mut c = cache.lock().map_err(|_| Error::Protocol("poisoned cache".into()))?;
        let mut events = Vec::new();
        for (u, old) in c.iter() {
            match fresh.get(u) {
                None => events.push(RowEvent {
                    uuid: u.clone(),
                    change: RowChange::Delete,
                    old: Some(old.clone()),
                    new: None,
                }),
                Some(new) if new != old => events.push(RowEvent {
                    uuid: u.clone(),
                    change: RowChange::Modify,
                    old: Some(old.clone()),
                    new: Some(new.clone()),
                }),
                Some(_) => {}
            }
        }
        for (u, new) in &fresh {
            if !c.contains_key(u) {
                events.push(RowEvent { uuid: u.clone(), change: RowChange::Insert, old: None, new: Some(new.clone()) });
            }
        }
        *c = fresh;
        for e in events {
            let _ = tx.send(MonitorEvent::Row(e));
        }
    }
    let _ = tx.send(MonitorEvent::Synced { reconnect });
    if reconnect {
        tracing::info!(endpoint = %endpoint, table = %spec.table, "ovsdb monitor resynchronised");
    }
    if let Some(s) = started.take() {
        let _ = s.send(Ok(()));
    }
    while let Some(n) = rx.recv().await {
        let mut events = Vec::new();
        {
            let mut c = cache.lock().map_err(|_| Error::Protocol("poisoned cache".into()))?;
            apply(&schema, spec, &columns, &n.updates, &mut c, &mut events)?;
        }
        for e in events {
            if tx.send(MonitorEvent::Row(e)).is_err() {
                return Ok(SessionEnd::Lost("monitor dropped".into()));
            }
        }
    }
    Ok(SessionEnd::Lost("connection closed by server".into()))
}

/// Applies `update`/`update2` table-updates (or an initial reply) to `rows`, recording events.
fn apply(
    schema: &Schema,
    spec: &MonitorSpec,
    columns: &[String],
    updates: &Value,
    rows: &mut BTreeMap<String, Row>,
    events: &mut Vec<RowEvent>,
) -> Result<()> {
    let Some(table) = updates.get(&spec.table).and_then(Value::as_object) else {
        return Ok(());
    };
    for (uuid, ru) in table {
        let ru = ru.as_object().ok_or_else(|| Error::parse("ovsdb row update", ru.to_string()))?;
        let old = rows.get(uuid).cloned();
        let new: Option<Row> = if let Some(r) = ru.get("initial").or_else(|| ru.get("insert")) {
            let mut r = row_from_json(r)?;
            schema.fill_defaults(&spec.table, columns, &mut r);
            Some(r)
        } else if let Some(diff) = ru.get("modify") {
            let diff = row_from_json(diff)?;
            let mut r = old.clone().unwrap_or_default();
            schema.fill_defaults(&spec.table, columns, &mut r);
            for (col, d) in diff {
                let cur = r.get(&col).cloned().unwrap_or_default();
                let next = match schema.column(&spec.table, &col) {
                    Some(t) => t.apply_diff(&cur, &d),
                    None => d,
                };
                r.insert(col, next);
            }
            Some(r)
        } else if ru.contains_key("delete") {
            None
        } else if let Some(n) = ru.get("new") {
            // RFC 7047 `update`: "new" carries every monitored column.
            let mut r = row_from_json(n)?;
            schema.fill_defaults(&spec.table, columns, &mut r);
            Some(r)
        } else {
            // `update` with only "old": a deletion.
            None
        };
        match (old, new) {
            (None, Some(n)) => {
                rows.insert(uuid.clone(), n.clone());
                events.push(RowEvent { uuid: uuid.clone(), change: RowChange::Insert, old: None, new: Some(n) });
            }
            (Some(o), Some(n)) => {
                rows.insert(uuid.clone(), n.clone());
                if o != n {
                    events.push(RowEvent { uuid: uuid.clone(), change: RowChange::Modify, old: Some(o), new: Some(n) });
                }
            }
            (Some(o), None) => {
                rows.remove(uuid);
                events.push(RowEvent { uuid: uuid.clone(), change: RowChange::Delete, old: Some(o), new: None });
            }
            (None, None) => {}
        }
    }
    Ok(())
}

/// Reads a string column of a row.
pub fn col_str(row: &Row, col: &str) -> String {
    row.get(col).and_then(Datum::as_str).unwrap_or_default().to_string()
}
