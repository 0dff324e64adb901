//! Small helpers over sqlx's `Any` rows.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::Result;

/// A TEXT column.
pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

/// A BIGINT column.
pub(crate) fn int(row: &AnyRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

/// A 0/1 BIGINT column as a boolean.
pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(int(row, col)? != 0)
}

/// A JSON-object TEXT column (`extra`); anything else reads as empty.
pub(crate) fn object(row: &AnyRow, col: &str) -> Result<Map<String, Value>> {
    let raw = text(row, col)?;
    Ok(match serde_json::from_str::<Value>(&raw) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

/// A new Keystone-style id: a UUID4 as 32 hex digits.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Microseconds since the epoch.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
