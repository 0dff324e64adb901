//! The OVSDB client: transactions against one database of one server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::datum::{row_from_json, Row};
use super::jsonrpc::{Connection, Endpoint};
use super::ops::{Condition, Mutation, Operation};
use super::schema::Schema;
use crate::error::{Error, Result};

/// The Open vSwitch database name.
pub const OPEN_VSWITCH_DB: &str = "Open_vSwitch";

/// A client for one database of one OVSDB server.
///
/// The connection is opened by [`Client::connect`] and re-opened lazily by the
/// next call after it was lost (e.g. ovsdb-server restarted). A request in
/// flight when the connection drops fails with [`Error::Disconnected`]; it is
/// not retried automatically because it may or may not have been committed.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    db: String,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    schema: std::sync::Mutex<Option<Arc<Schema>>>,
    timeout: Duration,
    seq: AtomicU64,
}

impl Client {
    /// Connects to the `Open_vSwitch` database at `endpoint`.
    pub async fn connect(endpoint: Endpoint) -> Result<Client> {
        Self::connect_db(endpoint, OPEN_VSWITCH_DB).await
    }

    /// Connects to database `db` at `endpoint`.
    pub async fn connect_db(endpoint: Endpoint, db: &str) -> Result<Client> {
        let c = Client {
            endpoint,
            db: db.to_string(),
            conn: tokio::sync::Mutex::new(None),
            schema: std::sync::Mutex::new(None),
            timeout: Duration::from_secs(10),
            seq: AtomicU64::new(1),
        };
        c.connection().await?;
        Ok(c)
    }

    /// Sets the timeout applied to each request (default 10 s).
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The server endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The database name.
    pub fn db(&self) -> &str {
        &self.db
    }

    /// The live connection, reconnecting if it was lost.
    pub async fn connection(&self) -> Result<Arc<Connection>> {
        let mut g = self.conn.lock().await;
        if let Some(c) = g.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            tracing::info!(endpoint = %self.endpoint, "ovsdb connection lost, reconnecting");
        }
        let c = Arc::new(Connection::connect(&self.endpoint).await?);
        tracing::debug!(endpoint = %self.endpoint, "ovsdb connected");
        *g = Some(c.clone());
        Ok(c)
    }

    async fn request(&self, method: &str, params: Value) -> Result<Value> {
        let conn = self.connection().await?;
        match tokio::time::timeout(self.timeout, conn.request(method, params)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout { what: format!("ovsdb {method} reply"), after: self.timeout }),
        }
    }

    /// `list_dbs`.
    pub async fn list_dbs(&self) -> Result<Vec<String>> {
        let v = self.request("list_dbs", json!([])).await?;
        Ok(v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default())
    }

    /// `echo` (a liveness check).
    pub async fn echo(&self) -> Result<()> {
        self.request("echo", json!(["ping"])).await.map(|_| ())
    }

    /// The database schema (fetched once and cached).
    pub async fn schema(&self) -> Result<Arc<Schema>> {
        if let Some(s) = self.schema.lock().ok().and_then(|s| s.clone()) {
            return Ok(s);
        }
        let v = self.request("get_schema", json!([self.db])).await?;
        let s = Arc::new(Schema::from_json(&v)?);
        if let Ok(mut g) = self.schema.lock() {
            *g = Some(s.clone());
        }
        Ok(s)
    }

    /// Runs a transaction; returns one result per operation.
    /// Any operation error (or a commit error) becomes [`Error::Transaction`].
    pub async fn transact(&self, ops: &[Operation]) -> Result<Vec<Value>> {
        let mut params = vec![json!(self.db)];
        params.extend(ops.iter().map(Operation::to_json));
        let started = std::time::Instant::now();
        let v = self.request("transact", Value::Array(params)).await?;
        let results = v.as_array().cloned().ok_or_else(|| Error::Protocol(format!("transact result {v}")))?;
        for (i, r) in results.iter().enumerate() {
            if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
                let error = e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string());
                let details = r.get("details").and_then(Value::as_str).map(str::to_string);
                return Err(Error::Transaction { index: i, error, details });
            }
        }
        tracing::debug!(ops = ops.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "ovsdb transact");
        Ok(results)
    }

    /// Selects rows of `table` (only `columns`, or all if empty).
    pub async fn select(&self, table: &str, conditions: Vec<Condition>, columns: &[&str]) -> Result<Vec<Row>> {
        let op = if columns.is_empty() {
            Operation::select_all(table, conditions)
        } else {
            Operation::select(table, conditions, columns)
        };
        let r = self.transact(&[op]).await?;
        rows_of(r.first())
    }

    /// Runs a transaction that also bumps `Open_vSwitch.next_cfg`, then waits
    /// until ovs-vswitchd has applied it (`cur_cfg` caught up), like
    /// `ovs-vsctl` without `--no-wait`. After this, new interfaces have an
    /// `ofport` and new bridges their OpenFlow management socket.
    pub async fn transact_and_wait(&self, ops: &[Operation], wait: Duration) -> Result<Vec<Value>> {
        let mut all = ops.to_vec();
        all.push(Operation::mutate("Open_vSwitch", vec![], vec![Mutation::add("next_cfg", 1)]));
        all.push(Operation::select("Open_vSwitch", vec![], &["next_cfg"]));
        let mut res = self.transact(&all).await?;
        let sel = res.pop();
        res.pop();
        let target = rows_of(sel.as_ref())?
            .first()
            .and_then(|r| r.get("next_cfg"))
            .and_then(|d| d.as_i64())
            .ok_or_else(|| Error::Protocol("no Open_vSwitch row (database not initialised?)".into()))?;
        self.wait_cfg(target, wait).await?;
        Ok(res)
    }

    /// Waits until `Open_vSwitch.cur_cfg >= target` (ovs-vswitchd reconfigured).
    pub async fn wait_cfg(&self, target: i64, wait: Duration) -> Result<()> {
        let conn = self.connection().await?;
        let id = format!("cfg-{}", self.seq.fetch_add(1, Ordering::Relaxed));
        let mut rx = conn.subscribe(&id);
        let req = json!([self.db, id, {"Open_vSwitch": [{"columns": ["cur_cfg"]}]}]);
        let initial = conn.request("monitor_cond", req).await;
        let result = async {
            let mut cur = max_cur_cfg(&initial?);
            let deadline = tokio::time::Instant::now() + wait;
            while cur < target {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(n)) => cur = cur.max(max_cur_cfg(&n.updates)),
                    Ok(None) => {
                        return Err(Error::Disconnected {
                            endpoint: self.endpoint.to_string(),
                            reason: "lost while waiting for cur_cfg".into(),
                        })
                    }
                    Err(_) => {
                        return Err(Error::Timeout {
                            what: format!("ovs-vswitchd to apply cfg {target} (cur_cfg {cur})"),
                            after: wait,
                        })
                    }
                }
            }
            Ok(())
        }
        .await;
        conn.unsubscribe(&id);
        if !conn.is_closed() {
            let _ = conn.request("monitor_cancel", json!([id])).await;
        }
        result
    }
}

/// Extracts the rows of a `select` result.
pub fn rows_of(result: Option<&Value>) -> Result<Vec<Row>> {
    let rows = result
        .and_then(|r| r.get("rows"))
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Protocol("select result without rows".into()))?;
    rows.iter().map(row_from_json).collect()
}

/// The UUID returned by an `insert` result.
pub fn inserted_uuid(result: Option<&Value>) -> Option<String> {
    result?.get("uuid")?.as_array()?.get(1)?.as_str().map(str::to_string)
}

fn max_cur_cfg(updates: &Value) -> i64 {
    let mut best = 0;
    if let Some(rows) = updates.get("Open_vSwitch").and_then(Value::as_object) {
        for ru in rows.values() {
            for k in ["initial", "insert", "modify", "new"] {
                if let Some(c) = ru.get(k).and_then(|r| r.get("cur_cfg")).and_then(Value::as_i64) {
                    best = best.max(c);
                }
            }
        }
    }
    best
}
