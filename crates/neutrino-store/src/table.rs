//! Resource tables: a JSON document per row plus indexed columns.

use serde_json::Value;

/// A resource table: `id`, `project_id`, `name`, `seq` (insertion order),
/// the declared extra columns (copied from the document's attributes of the
/// same name on every write) and `doc` (the resource as JSON).
#[derive(Debug)]
pub struct Table {
    /// SQL table name.
    pub name: &'static str,
    /// Extra indexed columns; each holds the document attribute of the same
    /// name (with `:` replaced by `_` in the column name).
    pub cols: &'static [&'static str],
    /// Unique constraints over columns (e.g. network_id + mac_address).
    pub uniques: &'static [&'static [&'static str]],
}

/// The SQL column name of an attribute.
pub fn col_name(attr: &str) -> String {
    attr.replace(':', "_")
}

/// The column value of an attribute: strings as is, booleans and numbers as
/// text, null/absent as NULL.
pub fn col_value(doc: &serde_json::Map<String, Value>, attr: &str) -> Option<String> {
    match doc.get(attr) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => Some(other.to_string()),
    }
}

impl Table {
    /// DDL creating the table and its indexes.
    pub fn ddl(&self) -> Vec<String> {
        let mut cols =
            String::from("id TEXT PRIMARY KEY, project_id TEXT, name TEXT, seq BIGINT NOT NULL, doc TEXT NOT NULL");
        for c in self.cols {
            cols.push_str(&format!(", {} TEXT", col_name(c)));
        }
        let mut out = vec![format!("CREATE TABLE IF NOT EXISTS {} ({cols})", self.name)];
        out.push(format!("CREATE INDEX IF NOT EXISTS ix_{0}_project ON {0} (project_id)", self.name));
        out.push(format!("CREATE INDEX IF NOT EXISTS ix_{0}_name ON {0} (name)", self.name));
        out.push(format!("CREATE INDEX IF NOT EXISTS ix_{0}_seq ON {0} (seq)", self.name));
        for c in self.cols {
            let c = col_name(c);
            out.push(format!("CREATE INDEX IF NOT EXISTS ix_{0}_{c} ON {0} ({c})", self.name));
        }
        for (i, u) in self.uniques.iter().enumerate() {
            let cs: Vec<String> = u.iter().map(|c| col_name(c)).collect();
            out.push(format!("CREATE UNIQUE INDEX IF NOT EXISTS ux_{0}_{i} ON {0} ({1})", self.name, cs.join(", ")));
        }
        out
    }

    /// Is `attr` one of the indexed columns (or id/project_id/name)?
    pub fn has_col(&self, attr: &str) -> bool {
        matches!(attr, "id" | "project_id" | "name") || self.cols.contains(&attr)
    }
}
