//! A write transaction and the row operations on resource tables.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use tokio::sync::OwnedMutexGuard;

use crate::store::{Backend, Store};
use crate::table::{col_name, col_value, Table};
use crate::{Result, StoreError};

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub(crate) inner: sqlx::Transaction<'static, sqlx::Any>,
    _writer: Option<OwnedMutexGuard<()>>,
    pub(crate) store: Store,
}

impl Tx {
    pub(crate) fn new(
        inner: sqlx::Transaction<'static, sqlx::Any>,
        writer: Option<OwnedMutexGuard<()>>,
        store: Store,
    ) -> Tx {
        Tx { inner, _writer: writer, store }
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        self.inner.commit().await?;
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.store.backend
    }

    /// The underlying connection, for component-specific SQL.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }

    /// `FOR UPDATE` where the backend has row locks.
    pub(crate) fn for_update(&self) -> &'static str {
        match self.store.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// Inserts a resource document; `false` if a unique constraint (id or a
    /// declared unique index) already holds the value.
    pub async fn insert(&mut self, t: &'static Table, doc: &Map<String, Value>) -> Result<bool> {
        let seq = self.store.next_seq();
        let mut cols = vec!["id", "project_id", "name", "seq", "doc"].into_iter().map(String::from).collect::<Vec<_>>();
        cols.extend(t.cols.iter().map(|c| col_name(c)));
        let ph: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let sql =
            format!("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING", t.name, cols.join(", "), ph.join(", "));
        let body = Value::Object(doc.clone()).to_string();
        let mut q = sqlx::query(&sql)
            .bind(col_value(doc, "id"))
            .bind(col_value(doc, "project_id"))
            .bind(col_value(doc, "name"))
            .bind(seq)
            .bind(body);
        for c in t.cols {
            q = q.bind(col_value(doc, c));
        }
        let r = q.execute(&mut *self.inner).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replaces a resource document (and its columns); `false` if no such id,
    /// or if the new column values collide with a unique constraint.
    pub async fn update(&mut self, t: &'static Table, doc: &Map<String, Value>) -> Result<bool> {
        let mut sets = vec!["project_id = $1".to_string(), "name = $2".into(), "doc = $3".into()];
        for (i, c) in t.cols.iter().enumerate() {
            sets.push(format!("{} = ${}", col_name(c), i + 4));
        }
        let idp = t.cols.len() + 4;
        let sql = format!("UPDATE {} SET {} WHERE id = ${idp}", t.name, sets.join(", "));
        let mut q = sqlx::query(&sql)
            .bind(col_value(doc, "project_id"))
            .bind(col_value(doc, "name"))
            .bind(Value::Object(doc.clone()).to_string());
        for c in t.cols {
            q = q.bind(col_value(doc, c));
        }
        q = q.bind(col_value(doc, "id"));
        // PostgreSQL aborts the whole transaction on a failed statement: a
        // savepoint keeps it usable after a unique violation, as SQLite is.
        let pg = self.store.backend == Backend::Postgres && !t.uniques.is_empty();
        if pg {
            sqlx::query("SAVEPOINT neutrino_update").execute(&mut *self.inner).await?;
        }
        match q.execute(&mut *self.inner).await {
            Ok(r) => {
                if pg {
                    sqlx::query("RELEASE SAVEPOINT neutrino_update").execute(&mut *self.inner).await?;
                }
                Ok(r.rows_affected() == 1)
            }
            Err(e) => {
                let e = StoreError::from(e);
                if e.is_unique_violation() {
                    if pg {
                        sqlx::query("ROLLBACK TO SAVEPOINT neutrino_update").execute(&mut *self.inner).await?;
                    }
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Reads a resource, locking its row until commit where the backend can.
    pub async fn get(&mut self, t: &'static Table, id: &str) -> Result<Option<Map<String, Value>>> {
        let backend = self.store.backend;
        get_row(&mut self.inner, backend, t, id, true).await
    }

    /// Reads a resource with a shared lock (PostgreSQL `FOR SHARE`): others
    /// may read and share-lock it, nobody may update or delete it until commit.
    pub async fn get_shared(&mut self, t: &'static Table, id: &str) -> Result<Option<Map<String, Value>>> {
        let lock = if self.store.backend == Backend::Postgres { " FOR SHARE" } else { "" };
        let sql = format!("SELECT doc FROM {} WHERE id = $1{lock}", t.name);
        match sqlx::query(&sql).bind(id).fetch_optional(&mut *self.inner).await? {
            Some(row) => Ok(Some(parse_doc(t, &row)?)),
            None => Ok(None),
        }
    }

    /// Reads a resource without locking it.
    pub async fn peek(&mut self, t: &'static Table, id: &str) -> Result<Option<Map<String, Value>>> {
        let backend = self.store.backend;
        get_row(&mut self.inner, backend, t, id, false).await
    }

    /// Deletes a resource; `false` if it did not exist.
    pub async fn delete(&mut self, t: &'static Table, id: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE id = $1", t.name);
        let r = sqlx::query(&sql).bind(id).execute(&mut *self.inner).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Lists resources inside the transaction.
    pub async fn list(&mut self, t: &'static Table, filter: &[(&str, Vec<String>)]) -> Result<Vec<Map<String, Value>>> {
        list_rows(&mut self.inner, t, filter).await
    }

    /// Counts resources inside the transaction.
    pub async fn count(&mut self, t: &'static Table, filter: &[(&str, Vec<String>)]) -> Result<i64> {
        count_rows(&mut self.inner, t, filter).await
    }
}

pub(crate) fn parse_doc(t: &'static Table, row: &AnyRow) -> Result<Map<String, Value>> {
    let s: String = row.try_get("doc")?;
    serde_json::from_str(&s).map_err(|source| StoreError::Corrupt { table: t.name, source })
}

fn where_clause(filter: &[(&str, Vec<String>)], first: usize) -> (String, Vec<String>) {
    let mut parts = vec![];
    let mut args = vec![];
    let mut n = first;
    for (col, vals) in filter {
        if vals.is_empty() {
            parts.push("1 = 0".to_string());
            continue;
        }
        let mut ph = vec![];
        for v in vals {
            ph.push(format!("${n}"));
            n += 1;
            args.push(v.clone());
        }
        parts.push(format!("{} IN ({})", col_name(col), ph.join(", ")));
    }
    if parts.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", parts.join(" AND ")), args)
    }
}

pub(crate) async fn get_row(
    conn: &mut AnyConnection,
    backend: Backend,
    t: &'static Table,
    id: &str,
    lock: bool,
) -> Result<Option<Map<String, Value>>> {
    let lock = if lock && backend == Backend::Postgres { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT doc FROM {} WHERE id = $1{lock}", t.name);
    match sqlx::query(&sql).bind(id).fetch_optional(conn).await? {
        Some(row) => Ok(Some(parse_doc(t, &row)?)),
        None => Ok(None),
    }
}

pub(crate) async fn list_rows(
    conn: &mut AnyConnection,
    t: &'static Table,
    filter: &[(&str, Vec<String>)],
) -> Result<Vec<Map<String, Value>>> {
    let (w, args) = where_clause(filter, 1);
    let sql = format!("SELECT doc FROM {}{w} ORDER BY seq", t.name);
    let mut q = sqlx::query(&sql);
    for a in args {
        q = q.bind(a);
    }
    // Parse row by row as they arrive: the raw text of a large listing is
    // never held in full beside its parsed form.
    use futures::TryStreamExt;
    let mut rows = q.fetch(conn);
    let mut out = vec![];
    while let Some(row) = rows.try_next().await? {
        out.push(parse_doc(t, &row)?);
    }
    Ok(out)
}

pub(crate) async fn count_rows(
    conn: &mut AnyConnection,
    t: &'static Table,
    filter: &[(&str, Vec<String>)],
) -> Result<i64> {
    let (w, args) = where_clause(filter, 1);
    let sql = format!("SELECT COUNT(*) AS n FROM {}{w}", t.name);
    let mut q = sqlx::query(&sql);
    for a in args {
        q = q.bind(a);
    }
    let row = q.fetch_one(conn).await?;
    Ok(row.try_get::<i64, _>("n")?)
}
