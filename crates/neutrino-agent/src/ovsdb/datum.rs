//! OVSDB values (RFC 7047 section 5.1): atoms, sets and maps, and their JSON
//! encodings (`"x"`, `["uuid", ...]`, `["set", [...]]`, `["map", [[k, v], ...]]`).
//!
//! Every column value is represented as a [`Datum`]: either a set of atoms
//! (a scalar is a set with exactly one element, an optional value a set with
//! zero or one) or a map. Decoding needs no schema; applying `update2` diffs
//! does (see [`super::schema`]).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One OVSDB atom.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Atom {
    /// A 64-bit integer.
    Integer(i64),
    /// A real number.
    Real(f64),
    /// A boolean.
    Boolean(bool),
    /// A string.
    String(String),
    /// A row UUID, `["uuid", "..."]`.
    Uuid(String),
    /// A name for a row inserted earlier in the same transaction, `["named-uuid", "..."]`.
    NamedUuid(String),
}

impl Atom {
    /// Decodes an atom from JSON.
    pub fn from_json(v: &Value) -> Result<Atom> {
        match v {
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else {
                    n.as_f64().map(Atom::Real).ok_or_else(|| Error::parse("ovsdb atom", v.to_string()))
                }
            }
            Value::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some("uuid"), Some(u)) => Ok(Atom::Uuid(u.to_string())),
                (Some("named-uuid"), Some(u)) => Ok(Atom::NamedUuid(u.to_string())),
                _ => Err(Error::parse("ovsdb atom", v.to_string())),
            },
            _ => Err(Error::parse("ovsdb atom", v.to_string())),
        }
    }

    /// Encodes the atom as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u]),
            Atom::NamedUuid(u) => json!(["named-uuid", u]),
        }
    }

    /// The string, if this is a string atom.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer atom.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The UUID, if this is a (real) UUID atom.
    pub fn as_uuid(&self) -> Option<&str> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }

    /// The boolean, if this is a boolean atom.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(u) => write!(f, "@{u}"),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}

/// A column value: a set of atoms or a map between atoms.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// A set (a scalar is a one-element set; an empty optional value is an empty set).
    Set(Vec<Atom>),
    /// A map, in key order as received.
    Map(Vec<(Atom, Atom)>),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(Vec::new())
    }
}

impl Datum {
    /// A scalar (one-element set).
    pub fn scalar(a: impl Into<Atom>) -> Datum {
        Datum::Set(vec![a.into()])
    }

    /// The empty set.
    pub fn empty() -> Datum {
        Datum::Set(Vec::new())
    }

    /// A set of strings.
    pub fn string_set<I, S>(items: I) -> Datum
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Datum::Set(items.into_iter().map(|s| Atom::String(s.into())).collect())
    }

    /// A reference to a row inserted in the same transaction.
    pub fn named_uuid(name: impl Into<String>) -> Datum {
        Datum::Set(vec![Atom::NamedUuid(name.into())])
    }

    /// A reference to an existing row.
    pub fn uuid(u: impl Into<String>) -> Datum {
        Datum::Set(vec![Atom::Uuid(u.into())])
    }

    /// A string→string map.
    pub fn string_map<'a, I>(items: I) -> Datum
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        Datum::Map(items.into_iter().map(|(k, v)| (Atom::String(k.clone()), Atom::String(v.clone()))).collect())
    }

    /// Decodes a datum from JSON (no schema needed).
    pub fn from_json(v: &Value) -> Result<Datum> {
        if let Value::Array(a) = v {
            if a.len() == 2 {
                match a[0].as_str() {
                    Some("set") => {
                        let items = a[1].as_array().ok_or_else(|| Error::parse("ovsdb set", v.to_string()))?;
                        return Ok(Datum::Set(items.iter().map(Atom::from_json).collect::<Result<_>>()?));
                    }
                    Some("map") => {
                        let items = a[1].as_array().ok_or_else(|| Error::parse("ovsdb map", v.to_string()))?;
                        let mut pairs = Vec::with_capacity(items.len());
                        for p in items {
                            match p.as_array() {
                                Some(kv) if kv.len() == 2 => {
                                    pairs.push((Atom::from_json(&kv[0])?, Atom::from_json(&kv[1])?))
                                }
                                _ => return Err(Error::parse("ovsdb map pair", p.to_string())),
                            }
                        }
                        return Ok(Datum::Map(pairs));
                    }
                    _ => {}
                }
            }
        }
        Ok(Datum::Set(vec![Atom::from_json(v)?]))
    }

    /// Encodes the datum as JSON (a one-element set as a bare atom).
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(items) if items.len() == 1 => items[0].to_json(),
            Datum::Set(items) => json!(["set", items.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Datum::Map(pairs) => {
                json!(["map", pairs.iter().map(|(k, v)| json!([k.to_json(), v.to_json()])).collect::<Vec<_>>()])
            }
        }
    }

    /// The atoms of a set (empty for a map).
    pub fn atoms(&self) -> &[Atom] {
        match self {
            Datum::Set(a) => a,
            Datum::Map(_) => &[],
        }
    }

    /// The single atom of a scalar/optional value.
    pub fn first(&self) -> Option<&Atom> {
        self.atoms().first()
    }

    /// The value as a string, if it is a one-element string set.
    pub fn as_str(&self) -> Option<&str> {
        self.first().and_then(Atom::as_str)
    }

    /// The value as an integer, if it is a one-element integer set.
    pub fn as_i64(&self) -> Option<i64> {
        self.first().and_then(Atom::as_i64)
    }

    /// The value as a boolean, if it is a one-element boolean set.
    pub fn as_bool(&self) -> Option<bool> {
        self.first().and_then(Atom::as_bool)
    }

    /// The UUIDs in a set of references.
    pub fn uuids(&self) -> Vec<String> {
        self.atoms().iter().filter_map(|a| a.as_uuid().map(str::to_string)).collect()
    }

    /// The strings in a set.
    pub fn strings(&self) -> Vec<String> {
        self.atoms().iter().filter_map(|a| a.as_str().map(str::to_string)).collect()
    }

    /// A map as string→string (non-string keys/values rendered as text).
    pub fn to_string_map(&self) -> BTreeMap<String, String> {
        match self {
            Datum::Map(pairs) => pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            Datum::Set(_) => BTreeMap::new(),
        }
    }

    /// Whether this is an empty set or map.
    pub fn is_empty(&self) -> bool {
        match self {
            Datum::Set(a) => a.is_empty(),
            Datum::Map(m) => m.is_empty(),
        }
    }
}

impl From<Atom> for Datum {
    fn from(a: Atom) -> Self {
        Datum::Set(vec![a])
    }
}
impl From<&str> for Datum {
    fn from(s: &str) -> Self {
        Datum::scalar(s)
    }
}
impl From<String> for Datum {
    fn from(s: String) -> Self {
        Datum::scalar(s)
    }
}
impl From<i64> for Datum {
    fn from(i: i64) -> Self {
        Datum::scalar(i)
    }
}
impl From<bool> for Datum {
    fn from(b: bool) -> Self {
        Datum::scalar(b)
    }
}
impl From<&BTreeMap<String, String>> for Datum {
    fn from(m: &BTreeMap<String, String>) -> Self {
        Datum::string_map(m)
    }
}

/// A row: column name → value (only the columns that were requested or sent).
pub type Row = BTreeMap<String, Datum>;

/// Decodes a JSON row object into a [`Row`].
pub fn row_from_json(v: &Value) -> Result<Row> {
    let obj = v.as_object().ok_or_else(|| Error::parse("ovsdb row", v.to_string()))?;
    obj.iter().map(|(k, v)| Ok((k.clone(), Datum::from_json(v)?))).collect()
}

/// Encodes a [`Row`] as a JSON object.
pub fn row_to_json(row: &Row) -> Value {
    Value::Object(row.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        for v in [
            json!("x"),
            json!(5),
            json!(true),
            json!(["uuid", "0b4e0a80-0000-0000-0000-000000000000"]),
            json!(["set", []]),
            json!(["set", ["a", "b"]]),
            json!(["map", [["k", "v"], ["k2", "v2"]]]),
        ] {
            let d = Datum::from_json(&v).unwrap();
            assert_eq!(d.to_json(), v);
        }
        assert_eq!(Datum::from_json(&json!(["set", [7]])).unwrap().to_json(), json!(7));
    }

    #[test]
    fn accessors() {
        let d = Datum::from_json(&json!(["map", [["iface-id", "p1"]]])).unwrap();
        assert_eq!(d.to_string_map().get("iface-id").map(String::as_str), Some("p1"));
        assert_eq!(Datum::from_json(&json!(3)).unwrap().as_i64(), Some(3));
        assert_eq!(Datum::from_json(&json!(["set", []])).unwrap().as_i64(), None);
    }
}
