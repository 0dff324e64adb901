//! The part of an OVSDB schema (RFC 7047 section 3.2) the client needs:
//! column types, to apply `update2` row diffs and to fill in default values.

use std::collections::BTreeMap;

use serde_json::Value;

use super::datum::{Atom, Datum, Row};
use crate::error::{Error, Result};

/// An atomic type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicType {
    /// `integer`
    Integer,
    /// `real`
    Real,
    /// `boolean`
    Boolean,
    /// `string`
    String,
    /// `uuid`
    Uuid,
}

impl AtomicType {
    fn parse(v: &Value) -> Result<AtomicType> {
        let name = match v {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("type").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        Ok(match name {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return Err(Error::parse("ovsdb base type", v.to_string())),
        })
    }

    /// The default atom of the type (RFC 7047: 0, 0.0, false, "", all-zero UUID).
    pub fn default_atom(self) -> Atom {
        match self {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(String::new()),
            AtomicType::Uuid => Atom::Uuid("00000000-0000-0000-0000-000000000000".into()),
        }
    }
}

/// A column type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// Key (or element) type.
    pub key: AtomicType,
    /// Value type, for maps.
    pub value: Option<AtomicType>,
    /// Minimum number of elements.
    pub min: u64,
    /// Maximum number of elements (`None` = unlimited).
    pub max: Option<u64>,
}

impl ColumnType {
    fn parse(v: &Value) -> Result<ColumnType> {
        match v {
            Value::String(_) => Ok(ColumnType { key: AtomicType::parse(v)?, value: None, min: 1, max: Some(1) }),
            Value::Object(o) => {
                let key = AtomicType::parse(o.get("key").ok_or_else(|| Error::parse("ovsdb type", v.to_string()))?)?;
                let value = o.get("value").map(AtomicType::parse).transpose()?;
                let min = o.get("min").and_then(Value::as_u64).unwrap_or(1);
                let max = match o.get("max") {
                    None => Some(1),
                    Some(Value::String(s)) if s == "unlimited" => None,
                    Some(m) => Some(m.as_u64().ok_or_else(|| Error::parse("ovsdb type max", m.to_string()))?),
                };
                Ok(ColumnType { key, value, min, max })
            }
            _ => Err(Error::parse("ovsdb type", v.to_string())),
        }
    }

    /// A map column.
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Exactly one element, not a map.
    pub fn is_scalar(&self) -> bool {
        !self.is_map() && self.min == 1 && self.max == Some(1)
    }

    /// Neither scalar nor map: `update2` diffs of such columns are symmetric differences.
    pub fn is_set(&self) -> bool {
        !self.is_map() && !self.is_scalar()
    }

    /// The default value of a column of this type.
    pub fn default_datum(&self) -> Datum {
        if self.is_map() {
            Datum::Map(Vec::new())
        } else if self.min == 0 {
            Datum::empty()
        } else {
            Datum::Set(vec![self.key.default_atom()])
        }
    }

    /// Applies an `update2` `<row-diff>` value for this column to `old`
    /// (ovsdb-server(7), "update2 notification").
    pub fn apply_diff(&self, old: &Datum, diff: &Datum) -> Datum {
        if self.is_map() {
            let mut pairs = match old {
                Datum::Map(p) => p.clone(),
                Datum::Set(_) => Vec::new(),
            };
            if let Datum::Map(d) = diff {
                for (k, v) in d {
                    match pairs.iter().position(|(pk, _)| pk == k) {
                        None => pairs.push((k.clone(), v.clone())),
                        Some(i) if &pairs[i].1 == v => {
                            pairs.remove(i);
                        }
                        Some(i) => pairs[i].1 = v.clone(),
                    }
                }
            }
            Datum::Map(pairs)
        } else if self.is_scalar() {
            diff.clone()
        } else {
            let mut items = old.atoms().to_vec();
            for a in diff.atoms() {
                match items.iter().position(|x| x == a) {
                    Some(i) => {
                        items.remove(i);
                    }
                    None => items.push(a.clone()),
                }
            }
            Datum::Set(items)
        }
    }
}

/// Tables → columns → types.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Database name.
    pub name: String,
    /// Schema version.
    pub version: String,
    /// Column types per table.
    pub tables: BTreeMap<String, BTreeMap<String, ColumnType>>,
}

impl Schema {
    /// Parses a `get_schema` reply.
    pub fn from_json(v: &Value) -> Result<Schema> {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let version = v.get("version").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut tables = BTreeMap::new();
        let tjs =
            v.get("tables").and_then(Value::as_object).ok_or_else(|| Error::parse("ovsdb schema", "no tables"))?;
        for (t, tv) in tjs {
            let mut cols = BTreeMap::new();
            if let Some(cjs) = tv.get("columns").and_then(Value::as_object) {
                for (c, cv) in cjs {
                    let ty = cv.get("type").ok_or_else(|| Error::parse("ovsdb column", c.clone()))?;
                    cols.insert(c.clone(), ColumnType::parse(ty)?);
                }
            }
            tables.insert(t.clone(), cols);
        }
        Ok(Schema { name, version, tables })
    }

    /// The type of `table.column` (`_uuid`/`_version` are UUIDs).
    pub fn column(&self, table: &str, column: &str) -> Option<ColumnType> {
        if column == "_uuid" || column == "_version" {
            return Some(ColumnType { key: AtomicType::Uuid, value: None, min: 1, max: Some(1) });
        }
        self.tables.get(table)?.get(column).cloned()
    }

    /// Fills columns of `row` that are missing (default-valued in `update2`) among `columns`.
    pub fn fill_defaults(&self, table: &str, columns: &[String], row: &mut Row) {
        for c in columns {
            if !row.contains_key(c) {
                if let Some(t) = self.column(table, c) {
                    row.insert(c.clone(), t.default_datum());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(v: Value) -> ColumnType {
        ColumnType::parse(&v).unwrap()
    }

    #[test]
    fn diffs() {
        let opt_int = t(json!({"key": "integer", "min": 0, "max": 1}));
        assert!(opt_int.is_set());
        let five = Datum::from_json(&json!(5)).unwrap();
        let diff = Datum::from_json(&json!(["set", [5, 6]])).unwrap();
        assert_eq!(opt_int.apply_diff(&five, &diff).as_i64(), Some(6));
        assert_eq!(opt_int.apply_diff(&Datum::empty(), &five).as_i64(), Some(5));

        let map = t(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}));
        let old = Datum::from_json(&json!(["map", [["a", "1"], ["b", "2"]]])).unwrap();
        let d = Datum::from_json(&json!(["map", [["a", "1"], ["b", "3"], ["c", "4"]]])).unwrap();
        let new = map.apply_diff(&old, &d).to_string_map();
        assert_eq!(new.len(), 2);
        assert_eq!(new["b"], "3");
        assert_eq!(new["c"], "4");

        let scalar = t(json!("string"));
        assert!(scalar.is_scalar());
        assert_eq!(scalar.apply_diff(&Datum::scalar("x"), &Datum::scalar("y")).as_str(), Some("y"));
    }
}
