//! Reading request bodies: typed fields out of JSON objects, with Keystone's
//! 400 wording when a field has the wrong type.

use serde_json::{Map, Value};

use crate::{IdentityError, Result};

/// The object under `key` in a request body (`{"project": {...}}`).
pub(crate) fn member<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    match body.get(key) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(IdentityError::invalid_field(key, "is not of type 'object'")),
        None => Err(IdentityError::missing(key, "request body")),
    }
}

/// An optional string field (`null` counts as absent).
pub(crate) fn opt_str(m: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(IdentityError::invalid_field(field, format!("{v} is not of type 'string'"))),
    }
}

/// A required, non-empty string field of at most `max` characters.
pub(crate) fn req_name(m: &Map<String, Value>, field: &str, max: usize) -> Result<String> {
    match opt_str(m, field)? {
        None => Err(IdentityError::invalid_field(field, format!("'{field}' is a required property"))),
        Some(s) => {
            check_name(field, &s, max)?;
            Ok(s)
        }
    }
}

/// Checks a name: non-blank, at most `max` characters.
pub(crate) fn check_name(field: &str, s: &str, max: usize) -> Result<()> {
    if s.trim().is_empty() {
        return Err(IdentityError::invalid_field(field, "should be non-empty and not only whitespace"));
    }
    if s.chars().count() > max {
        return Err(IdentityError::invalid_field(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

/// An optional boolean field.
pub(crate) fn opt_bool(m: &Map<String, Value>, field: &str) -> Result<Option<bool>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(IdentityError::invalid_field(field, format!("{v} is not of type 'boolean'"))),
    }
}

/// The fields of `m` not in `known`, kept as the entity's `extra` attributes.
pub(crate) fn extra(m: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()) && k.as_str() != "links")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Parses a query string into (key, value) pairs.
pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
        .unwrap_or_default()
}

/// The value of a query parameter.
pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A query flag (`?nocatalog`, `?effective`, `?include_names=true`): present
/// and not a false-like value.
pub(crate) fn query_flag(pairs: &[(String, String)], key: &str) -> bool {
    match query_get(pairs, key) {
        None => false,
        Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"),
    }
}

/// A boolean query filter (`?enabled=true`).
pub(crate) fn query_bool(pairs: &[(String, String)], key: &str) -> Option<bool> {
    query_get(pairs, key).map(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"))
}
