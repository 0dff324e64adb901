//! Transaction operations (RFC 7047 section 5.2): `insert`, `select`,
//! `update`, `mutate`, `delete`, `wait`, `comment`, with conditions and
//! mutations built from [`Datum`]s.

use serde_json::{json, Map, Value};

use super::datum::{row_to_json, Datum, Row};

/// A `where` clause element: `[column, function, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Column name.
    pub column: String,
    /// `==`, `!=`, `includes`, `excludes`, `<`, ...
    pub function: String,
    /// The value compared with.
    pub value: Datum,
}

impl Condition {
    /// `column == value`
    pub fn eq(column: impl Into<String>, value: impl Into<Datum>) -> Condition {
        Condition { column: column.into(), function: "==".into(), value: value.into() }
    }

    /// `column includes value` (set/map containment).
    pub fn includes(column: impl Into<String>, value: impl Into<Datum>) -> Condition {
        Condition { column: column.into(), function: "includes".into(), value: value.into() }
    }

    /// `_uuid == uuid`
    pub fn uuid(uuid: &str) -> Condition {
        Condition::eq("_uuid", Datum::uuid(uuid))
    }

    /// JSON encoding.
    pub fn to_json(&self) -> Value {
        json!([self.column, self.function, self.value.to_json()])
    }
}

/// A `mutate` mutation: `[column, mutator, value]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Column name.
    pub column: String,
    /// `insert`, `delete`, `+=`, ...
    pub mutator: String,
    /// The argument.
    pub value: Datum,
}

impl Mutation {
    /// Inserts elements (set) or key/value pairs (map; existing keys are kept!).
    pub fn insert(column: impl Into<String>, value: impl Into<Datum>) -> Mutation {
        Mutation { column: column.into(), mutator: "insert".into(), value: value.into() }
    }

    /// Deletes elements (set), pairs or keys (map, when given a set of keys).
    pub fn delete(column: impl Into<String>, value: impl Into<Datum>) -> Mutation {
        Mutation { column: column.into(), mutator: "delete".into(), value: value.into() }
    }

    /// Adds to an integer column.
    pub fn add(column: impl Into<String>, n: i64) -> Mutation {
        Mutation { column: column.into(), mutator: "+=".into(), value: Datum::scalar(n) }
    }

    /// JSON encoding.
    pub fn to_json(&self) -> Value {
        json!([self.column, self.mutator, self.value.to_json()])
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Inserts a row; `uuid_name` lets later operations refer to it.
    Insert {
        /// Table.
        table: String,
        /// Column values.
        row: Row,
        /// Optional `uuid-name`.
        uuid_name: Option<String>,
    },
    /// Selects rows.
    Select {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Columns to return (`None` = all).
        columns: Option<Vec<String>>,
    },
    /// Updates columns of matching rows.
    Update {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// New column values.
        row: Row,
    },
    /// Mutates columns of matching rows.
    Mutate {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Mutations.
        mutations: Vec<Mutation>,
    },
    /// Deletes matching rows.
    Delete {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
    },
    /// Aborts unless the matching rows' `columns` equal (or differ from) `rows`.
    Wait {
        /// Table.
        table: String,
        /// Conditions.
        conditions: Vec<Condition>,
        /// Compared columns.
        columns: Vec<String>,
        /// `==` or `!=`.
        until: String,
        /// Expected rows.
        rows: Vec<Row>,
        /// Timeout in ms (0 = fail immediately).
        timeout_ms: Option<u64>,
    },
    /// Adds a comment to the database log.
    Comment(String),
}

impl Operation {
    /// `insert` without a name.
    pub fn insert(table: impl Into<String>, row: Row) -> Operation {
        Operation::Insert { table: table.into(), row, uuid_name: None }
    }

    /// `insert` with a `uuid-name`.
    pub fn insert_named(table: impl Into<String>, row: Row, name: impl Into<String>) -> Operation {
        Operation::Insert { table: table.into(), row, uuid_name: Some(name.into()) }
    }

    /// `select` of some columns.
    pub fn select(table: impl Into<String>, conditions: Vec<Condition>, columns: &[&str]) -> Operation {
        Operation::Select {
            table: table.into(),
            conditions,
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
        }
    }

    /// `select` of all columns.
    pub fn select_all(table: impl Into<String>, conditions: Vec<Condition>) -> Operation {
        Operation::Select { table: table.into(), conditions, columns: None }
    }

    /// `update`.
    pub fn update(table: impl Into<String>, conditions: Vec<Condition>, row: Row) -> Operation {
        Operation::Update { table: table.into(), conditions, row }
    }

    /// `mutate`.
    pub fn mutate(table: impl Into<String>, conditions: Vec<Condition>, mutations: Vec<Mutation>) -> Operation {
        Operation::Mutate { table: table.into(), conditions, mutations }
    }

    /// `delete`.
    pub fn delete(table: impl Into<String>, conditions: Vec<Condition>) -> Operation {
        Operation::Delete { table: table.into(), conditions }
    }

    /// `wait` until no row matches `conditions` (fails the transaction at once otherwise).
    pub fn wait_absent(table: impl Into<String>, conditions: Vec<Condition>) -> Operation {
        Operation::Wait {
            table: table.into(),
            conditions,
            columns: vec!["_uuid".into()],
            until: "==".into(),
            rows: Vec::new(),
            timeout_ms: Some(0),
        }
    }

    /// JSON encoding.
    pub fn to_json(&self) -> Value {
        let conds = |c: &[Condition]| Value::Array(c.iter().map(Condition::to_json).collect());
        match self {
            Operation::Insert { table, row, uuid_name } => {
                let mut m = Map::new();
                m.insert("op".into(), json!("insert"));
                m.insert("table".into(), json!(table));
                m.insert("row".into(), row_to_json(row));
                if let Some(n) = uuid_name {
                    m.insert("uuid-name".into(), json!(n));
                }
                Value::Object(m)
            }
            Operation::Select { table, conditions, columns } => {
                let mut m = Map::new();
                m.insert("op".into(), json!("select"));
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds(conditions));
                if let Some(c) = columns {
                    m.insert("columns".into(), json!(c));
                }
                Value::Object(m)
            }
            Operation::Update { table, conditions, row } => {
                json!({"op": "update", "table": table, "where": conds(conditions), "row": row_to_json(row)})
            }
            Operation::Mutate { table, conditions, mutations } => json!({
                "op": "mutate", "table": table, "where": conds(conditions),
                "mutations": mutations.iter().map(Mutation::to_json).collect::<Vec<_>>(),
            }),
            Operation::Delete { table, conditions } => {
                json!({"op": "delete", "table": table, "where": conds(conditions)})
            }
            Operation::Wait { table, conditions, columns, until, rows, timeout_ms } => {
                let mut m = Map::new();
                m.insert("op".into(), json!("wait"));
                m.insert("table".into(), json!(table));
                m.insert("where".into(), conds(conditions));
                m.insert("columns".into(), json!(columns));
                m.insert("until".into(), json!(until));
                m.insert("rows".into(), Value::Array(rows.iter().map(row_to_json).collect()));
                if let Some(t) = timeout_ms {
                    m.insert("timeout".into(), json!(t));
                }
                Value::Object(m)
            }
            Operation::Comment(c) => json!({"op": "comment", "comment": c}),
        }
    }
}

/// Builds a [`Row`] from `(column, value)` pairs.
pub fn row<I, K>(pairs: I) -> Row
where
    I: IntoIterator<Item = (K, Datum)>,
    K: Into<String>,
{
    pairs.into_iter().map(|(k, v)| (k.into(), v)).collect()
}
