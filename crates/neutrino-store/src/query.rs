//! Listings in the database: a [`ListSpec`] (filters, tag filters, sort keys,
//! limit, marker, direction) plus the plugin's visibility rules become one SQL
//! statement on either backend, with keyset pagination: a page starts after
//! the marker row's sort-key values, so it costs the same wherever it is in
//! the table. Attributes that are columns use their column (and index); the
//! others are read from the JSON document (`json_extract` on SQLite, `jsonb`
//! operators on PostgreSQL).
//!
//! Order: the sort keys, then `id` ascending; NULLs sort first ascending and
//! last descending on both backends. An unpaged, unsorted listing comes in
//! insertion order.

use neutrino_lib::listing::{Filter, ListSpec, TagFilter, ValKind};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::store::{Backend, Store};
use crate::table::{col_name, Table};
use crate::{Result, StoreError};

/// A condition a plugin adds to a listing (visibility, or a filter it
/// answers in its own way).
#[derive(Debug, Clone)]
pub enum Cond {
    /// A declared column (or `id`/`project_id`/`name`) is one of the values.
    ColIn(&'static str, Vec<String>),
    /// A boolean attribute of the document is `true` (or `false`).
    Flag(&'static str, bool),
    /// Any of the conditions.
    Or(Vec<Cond>),
    /// All of the conditions.
    And(Vec<Cond>),
    /// Never true.
    False,
    /// `col` is the `key` column of a row of `table` that satisfies `cond`
    /// (e.g. a subnet's network is visible).
    InTable { col: &'static str, table: &'static Table, key: &'static str, cond: Box<Cond> },
    /// The row's id is a port holding one of these addresses (`ip_allocations`).
    PortHoldsIp(Vec<String>),
    /// A filter of the request, on this table's documents.
    Filter(Filter),
}

/// What a listing yields: one page (bounded by the limit), or every matching
/// row as it is read.
pub enum Selected {
    /// A page, in order.
    Page(Vec<Map<String, Value>>),
    /// Every matching row, in order, read in the background.
    Stream(mpsc::Receiver<Result<Map<String, Value>>>),
}

impl Selected {
    /// Collects every row (for callers that post-process a bounded set).
    pub async fn collect(self) -> Result<Vec<Map<String, Value>>> {
        match self {
            Selected::Page(v) => Ok(v),
            Selected::Stream(mut rx) => {
                let mut out = vec![];
                while let Some(r) = rx.recv().await {
                    out.push(r?);
                }
                Ok(out)
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Arg {
    Text(String),
    Int(i64),
}

struct Sql {
    backend: Backend,
    args: Vec<Arg>,
}

/// A JSON path or key safe to inline: attribute names come from resource
/// definitions, but check anyway.
fn safe(name: &str) -> Result<&str> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')) {
        Ok(name)
    } else {
        Err(StoreError::BadQuery(format!("attribute name {name:?}")))
    }
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::Text(s.to_string()))
    }

    /// The document's value of a scalar attribute, typed for comparison.
    fn expr(&self, t: &Table, attr: &str, kind: ValKind) -> Result<String> {
        let attr = safe(attr)?;
        if kind == ValKind::Str && t.has_col(attr) {
            return Ok(format!("{}.{}", t.name, col_name(attr)));
        }
        Ok(match (self.backend, kind) {
            (Backend::Sqlite, _) => format!("json_extract({}.doc, '$.\"{attr}\"')", t.name),
            (Backend::Postgres, ValKind::Str) => format!("({}.doc::jsonb ->> '{attr}')", t.name),
            (Backend::Postgres, _) => format!("NULLIF({}.doc::jsonb -> '{attr}', 'null'::jsonb)", t.name),
        })
    }

    /// A literal/parameter of a kind, comparable with [`Sql::expr`].
    fn value(&mut self, kind: ValKind, v: &Value) -> Option<String> {
        match (kind, v) {
            (ValKind::Str | ValKind::StrList | ValKind::ObjList, Value::String(s)) => Some(self.text(s)),
            (ValKind::Int, Value::Number(n)) => {
                let i = n.as_i64()?;
                let p = self.arg(Arg::Int(i));
                Some(match self.backend {
                    Backend::Sqlite => p,
                    Backend::Postgres => format!("to_jsonb(({p})::bigint)"),
                })
            }
            (ValKind::Bool, Value::Bool(b)) => Some(match self.backend {
                Backend::Sqlite => (if *b { "1" } else { "0" }).to_string(),
                Backend::Postgres => format!("'{b}'::jsonb"),
            }),
            _ => None,
        }
    }

    /// The elements of a list attribute, as a FROM item with column `v`.
    fn elements(&self, t: &Table, attr: &str, as_text: bool) -> Result<String> {
        let attr = safe(attr)?;
        Ok(match self.backend {
            Backend::Sqlite => format!("(SELECT value AS v FROM json_each({}.doc, '$.\"{attr}\"'))", t.name),
            Backend::Postgres => {
                let f = if as_text { "jsonb_array_elements_text" } else { "jsonb_array_elements" };
                let j = format!("{}.doc::jsonb -> '{attr}'", t.name);
                format!("{f}(CASE jsonb_typeof({j}) WHEN 'array' THEN {j} ELSE '[]'::jsonb END) AS e(v)")
            }
        })
    }

    fn filter(&mut self, t: &Table, f: &Filter) -> Result<String> {
        let empty_matches_null = f.values.iter().any(|v| matches!(v, Value::String(s) if s.is_empty()));
        let mut parts = vec![];
        match f.kind {
            ValKind::Str | ValKind::Int | ValKind::Bool => {
                let e = self.expr(t, &f.attr, f.kind)?;
                let vals: Vec<String> = f.values.iter().filter_map(|v| self.value(f.kind, v)).collect();
                if !vals.is_empty() {
                    parts.push(format!("{e} IN ({})", vals.join(", ")));
                }
                if empty_matches_null {
                    parts.push(format!("{e} IS NULL"));
                }
            }
            ValKind::StrList => {
                let vals: Vec<String> = f.values.iter().filter_map(|v| self.value(f.kind, v)).collect();
                if !vals.is_empty() {
                    let from = self.elements(t, &f.attr, true)?;
                    parts.push(format!("EXISTS (SELECT 1 FROM {from} WHERE v IN ({}))", vals.join(", ")));
                }
                if empty_matches_null {
                    parts.push(format!("{} IS NULL", self.expr(t, &f.attr, ValKind::Int)?));
                }
            }
            ValKind::ObjList => {
                // As Neutron's fixed_ips filter: one element must match every
                // key given, any of the values given for a key.
                let mut by_key: Vec<(String, Vec<String>)> = vec![];
                let from = self.elements(t, &f.attr, false)?;
                for v in &f.values {
                    let Some(s) = v.as_str() else { continue };
                    let Some((key, want)) = s.split_once('=') else { continue };
                    let (k, substr) = match key.strip_suffix("_substr") {
                        Some(base) => (base, true),
                        None => (key, false),
                    };
                    let k = safe(k)?;
                    let field = match self.backend {
                        Backend::Sqlite => format!("json_extract(v, '$.\"{k}\"')"),
                        Backend::Postgres => format!("(v ->> '{k}')"),
                    };
                    let p = self.text(want);
                    let test = match (substr, self.backend) {
                        (false, _) => format!("{field} = {p}"),
                        (true, Backend::Sqlite) => format!("instr({field}, {p}) > 0"),
                        (true, Backend::Postgres) => format!("strpos({field}, {p}) > 0"),
                    };
                    // `ip_address` and `ip_address_substr` are separate keys.
                    match by_key.iter_mut().find(|(kk, _)| kk == key) {
                        Some((_, tests)) => tests.push(test),
                        None => by_key.push((key.to_string(), vec![test])),
                    }
                }
                if !by_key.is_empty() {
                    let each: Vec<String> = by_key.iter().map(|(_, ts)| format!("({})", ts.join(" OR "))).collect();
                    parts.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", each.join(" AND ")));
                }
                if empty_matches_null {
                    parts.push(format!("{} IS NULL", self.expr(t, &f.attr, ValKind::Int)?));
                }
            }
        }
        Ok(if parts.is_empty() { "1 = 0".into() } else { format!("({})", parts.join(" OR ")) })
    }

    fn tags(&mut self, t: &Table, tags: &TagFilter) -> Result<Vec<String>> {
        let mut out = vec![];
        let has = |s: &mut Sql, set: &[String]| -> Result<String> {
            let from = s.elements(t, "tags", true)?;
            let ps: Vec<String> = set.iter().map(|x| s.text(x)).collect();
            Ok(format!("EXISTS (SELECT 1 FROM {from} WHERE v IN ({}))", ps.join(", ")))
        };
        for set in &tags.all {
            let each: Result<Vec<String>> = set.iter().map(|x| has(self, std::slice::from_ref(x))).collect();
            out.push(format!("({})", each?.join(" AND ")));
        }
        for set in &tags.any {
            out.push(has(self, set)?);
        }
        for set in &tags.not_all {
            let each: Result<Vec<String>> = set.iter().map(|x| has(self, std::slice::from_ref(x))).collect();
            out.push(format!("NOT ({})", each?.join(" AND ")));
        }
        for set in &tags.not_any {
            out.push(format!("NOT {}", has(self, set)?));
        }
        Ok(out.into_iter().filter(|s| s != "()" && s != "NOT ()").collect())
    }

    fn cond(&mut self, t: &Table, c: &Cond) -> Result<String> {
        Ok(match c {
            Cond::ColIn(col, vals) => {
                if vals.is_empty() {
                    "1 = 0".into()
                } else {
                    let ps: Vec<String> = vals.iter().map(|v| self.text(v)).collect();
                    format!("{}.{} IN ({})", t.name, col_name(safe(col)?), ps.join(", "))
                }
            }
            Cond::Flag(attr, b) => {
                let e = self.expr(t, attr, ValKind::Bool)?;
                let v = self.value(ValKind::Bool, &Value::Bool(*b)).unwrap_or_default();
                format!("{e} = {v}")
            }
            Cond::Or(cs) => {
                if cs.is_empty() {
                    "1 = 0".into()
                } else {
                    let parts: Result<Vec<String>> = cs.iter().map(|c| self.cond(t, c)).collect();
                    format!("({})", parts?.join(" OR "))
                }
            }
            Cond::And(cs) => {
                if cs.is_empty() {
                    "1 = 1".into()
                } else {
                    let parts: Result<Vec<String>> = cs.iter().map(|c| self.cond(t, c)).collect();
                    format!("({})", parts?.join(" AND "))
                }
            }
            Cond::False => "1 = 0".into(),
            Cond::InTable { col, table, key, cond } => {
                let inner = self.cond(table, cond)?;
                format!(
                    "{}.{} IN (SELECT {}.{} FROM {} WHERE {inner})",
                    t.name,
                    col_name(safe(col)?),
                    table.name,
                    col_name(safe(key)?),
                    table.name
                )
            }
            Cond::PortHoldsIp(ips) => {
                if ips.is_empty() {
                    "1 = 0".into()
                } else {
                    let ps: Vec<String> = ips.iter().map(|v| self.text(v)).collect();
                    format!(
                        "{}.id IN (SELECT port_id FROM ip_allocations WHERE ip_address IN ({}))",
                        t.name,
                        ps.join(", ")
                    )
                }
            }
            Cond::Filter(f) => self.filter(t, f)?,
        })
    }
}

/// The marker row's value of a sort key, as the SQL expression sees it.
fn key_value(doc: &Map<String, Value>, attr: &str, kind: ValKind) -> Value {
    match (kind, doc.get(attr)) {
        (ValKind::Int, Some(Value::Number(n))) if n.as_i64().is_some() => Value::Number(n.clone()),
        (ValKind::Bool, Some(Value::Bool(b))) => Value::Bool(*b),
        (ValKind::Str, Some(Value::String(s))) => Value::String(s.clone()),
        _ => Value::Null,
    }
}

impl Store {
    /// Lists a table: the request's filters and tags, the plugin's
    /// conditions, the order and the page. A marker that names no visible
    /// row is [`StoreError::MarkerNotFound`]. Without a limit, rows stream.
    pub async fn select(&self, t: &'static Table, spec: &ListSpec, conds: &[Cond]) -> Result<Selected> {
        let mut sql = Sql { backend: self.backend, args: vec![] };
        let mut wh: Vec<String> = vec![];
        for c in conds {
            wh.push(sql.cond(t, c)?);
        }
        for f in &spec.filters {
            wh.push(sql.filter(t, f)?);
        }
        wh.extend(sql.tags(t, &spec.tags)?);

        // The order: sort keys, then id ascending; reversed when paging back.
        let mut keys: Vec<(String, ValKind, bool)> =
            spec.sorts.iter().map(|s| (s.attr.clone(), s.kind, s.asc)).collect();
        if !keys.iter().any(|(a, _, _)| a == "id") {
            keys.push(("id".into(), ValKind::Str, true));
        }
        let order = if spec.paged() {
            let reverse = spec.page_reverse;
            let mut parts = vec![];
            for (a, k, asc) in &keys {
                let e = sql.expr(t, a, *k)?;
                let e = if self.backend == Backend::Postgres && *k == ValKind::Str && !t.has_col(a) {
                    format!("{e} COLLATE \"C\"")
                } else {
                    e
                };
                let asc = *asc != reverse;
                parts.push(format!("{e} {}", if asc { "ASC NULLS FIRST" } else { "DESC NULLS LAST" }));
            }
            parts.join(", ")
        } else {
            format!("{}.seq", t.name)
        };

        if let Some(m) = &spec.marker {
            // The marker must be a row the caller may see.
            let mdoc = self.marker_doc(t, conds, m).await?.ok_or_else(|| StoreError::MarkerNotFound(m.clone()))?;
            let mut ors = vec![];
            for i in 0..keys.len() {
                let mut ands = vec![];
                for (a, k, _) in &keys[..i] {
                    let e = sql.expr(t, a, *k)?;
                    match sql.value(*k, &key_value(&mdoc, a, *k)) {
                        Some(p) => ands.push(format!("{e} = {p}")),
                        None => ands.push(format!("{e} IS NULL")),
                    }
                }
                let (a, k, asc) = &keys[i];
                let asc = *asc != spec.page_reverse;
                let e = sql.expr(t, a, *k)?;
                let e_ord = if self.backend == Backend::Postgres && *k == ValKind::Str && !t.has_col(a) {
                    format!("{e} COLLATE \"C\"")
                } else {
                    e.clone()
                };
                let after = match (sql.value(*k, &key_value(&mdoc, a, *k)), asc) {
                    (None, true) => Some(format!("{e} IS NOT NULL")),
                    (None, false) => None,
                    (Some(p), true) => Some(format!("{e_ord} > {p}")),
                    (Some(p), false) => Some(format!("({e_ord} < {p} OR {e} IS NULL)")),
                };
                if let Some(after) = after {
                    ands.push(after);
                    ors.push(format!("({})", ands.join(" AND ")));
                }
            }
            wh.push(if ors.is_empty() { "1 = 0".into() } else { format!("({})", ors.join(" OR ")) });
        }

        let mut q = format!("SELECT {0}.doc AS doc FROM {0}", t.name);
        if !wh.is_empty() {
            q.push_str(" WHERE ");
            q.push_str(&wh.join(" AND "));
        }
        q.push_str(" ORDER BY ");
        q.push_str(&order);
        if let Some(l) = spec.limit {
            q.push_str(&format!(" LIMIT {l}"));
        }
        tracing::trace!(sql = %q, "listing");
        let args = sql.args;
        if spec.limit.is_some() {
            let mut query = sqlx::query(&q);
            for a in args {
                query = match a {
                    Arg::Text(s) => query.bind(s),
                    Arg::Int(i) => query.bind(i),
                };
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(crate::tx::parse_doc(t, &r)?);
            }
            if spec.page_reverse {
                out.reverse();
            }
            return Ok(Selected::Page(out));
        }
        let (tx, rx) = mpsc::channel(256);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            use futures::TryStreamExt;
            let mut query = sqlx::query(&q);
            for a in args {
                query = match a {
                    Arg::Text(s) => query.bind(s),
                    Arg::Int(i) => query.bind(i),
                };
            }
            let mut rows = query.fetch(&pool);
            loop {
                match rows.try_next().await {
                    Ok(Some(r)) => {
                        if tx.send(crate::tx::parse_doc(t, &r)).await.is_err() {
                            return; // the reader went away
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
            }
        });
        Ok(Selected::Stream(rx))
    }

    async fn marker_doc(&self, t: &'static Table, conds: &[Cond], id: &str) -> Result<Option<Map<String, Value>>> {
        let mut sql = Sql { backend: self.backend, args: vec![] };
        let p = sql.text(id);
        let mut wh = vec![format!("{}.id = {p}", t.name)];
        for c in conds {
            wh.push(sql.cond(t, c)?);
        }
        let q = format!("SELECT {0}.doc AS doc FROM {0} WHERE {1}", t.name, wh.join(" AND "));
        let mut query = sqlx::query(&q);
        for a in sql.args {
            query = match a {
                Arg::Text(s) => query.bind(s),
                Arg::Int(i) => query.bind(i),
            };
        }
        match query.fetch_optional(&self.pool).await? {
            Some(r) => Ok(Some(crate::tx::parse_doc(t, &r)?)),
            None => Ok(None),
        }
    }
}
