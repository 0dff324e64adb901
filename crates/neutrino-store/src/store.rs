//! Opening the database and handing out transactions.

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};
use tokio::sync::Mutex;

use crate::table::Table;
use crate::tx::{self, Tx};
use crate::Result;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file: one process, writes serialized in-process.
    Sqlite,
    /// PostgreSQL: several processes; concurrency through row locks.
    Postgres,
}

/// The store: a connection pool and the backend's rules.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// SQLite allows one writer; writes queue here instead of failing with SQLITE_BUSY.
    writer: Option<Arc<Mutex<()>>>,
    seq: Arc<AtomicI64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend)
    }
}

impl Store {
    /// Opens `sqlite://PATH` (created if missing) or `postgresql://…`, and
    /// brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens without migrating (for `neutrino db upgrade` and tests).
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"))
        } else if url.starts_with("sqlite:") {
            (Backend::Sqlite, url.to_string())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(crate::StoreError::BadUrl(url.to_string()));
        };
        let opts = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = match backend {
            Backend::Sqlite => {
                // WAL is a property of the file: switch once, on a connection of
                // its own (switching needs an exclusive lock, which a
                // connection opened later under load would fail to get).
                {
                    use sqlx::{Connection, Executor};
                    let mut first = sqlx::AnyConnection::connect_with(&opts).await?;
                    first.execute("PRAGMA busy_timeout=10000").await?;
                    first.execute("PRAGMA journal_mode=WAL").await?;
                    first.close().await?;
                }
                AnyPoolOptions::new()
                    .max_connections(4)
                    .min_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            conn.execute("PRAGMA synchronous=NORMAL").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .min_connections(2)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?
            }
        };
        let writer = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Store { pool, backend, writer, seq: Arc::new(AtomicI64::new(0)) })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw pool, for components that own tables of their own (identity).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a write transaction. On SQLite this waits for the single writer slot.
    pub async fn begin(&self) -> Result<Tx> {
        let guard = match &self.writer {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        };
        // SQLite: take the write lock up front (BEGIN IMMEDIATE), so a
        // transaction never has to upgrade from reader to writer — the
        // upgrade fails at once with "database is locked" when the previous
        // writer's connection has not finished rolling back.
        let inner = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(Tx::new(inner, guard, self.clone()))
    }

    /// A strictly increasing sequence number (time-based, so roughly ordered
    /// across servers too) used for insertion order.
    pub(crate) fn next_seq(&self) -> i64 {
        let now = neutrino_lib::time::now_micros();
        let mut cur = self.seq.load(Ordering::Relaxed);
        loop {
            let next = if now > cur { now } else { cur + 1 };
            match self.seq.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Reads one resource outside any transaction.
    pub async fn get(&self, t: &'static Table, id: &str) -> Result<Option<Map<String, Value>>> {
        let mut conn = self.pool.acquire().await?;
        tx::get_row(&mut conn, self.backend, t, id, false).await
    }

    /// Lists resources outside any transaction; `filter` is column → accepted values.
    pub async fn list(&self, t: &'static Table, filter: &[(&str, Vec<String>)]) -> Result<Vec<Map<String, Value>>> {
        let mut conn = self.pool.acquire().await?;
        tx::list_rows(&mut conn, t, filter).await
    }

    /// Counts rows outside any transaction.
    pub async fn count(&self, t: &'static Table, filter: &[(&str, Vec<String>)]) -> Result<i64> {
        let mut conn = self.pool.acquire().await?;
        tx::count_rows(&mut conn, t, filter).await
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
