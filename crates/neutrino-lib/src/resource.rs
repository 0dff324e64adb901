//! Resource definitions: a collection's URL, its JSON keys and its attributes.

use crate::attr::{Attr, Check, Dflt};

/// The definition of one REST resource (a collection and its members).
#[derive(Debug)]
pub struct ResourceDef {
    /// JSON key of one member, e.g. `security_group`.
    pub member: &'static str,
    /// JSON key of the collection, e.g. `security_groups`.
    pub collection: &'static str,
    /// URL path under `/v2.0/`, e.g. `security-groups` or `metering/metering-labels`.
    pub path: &'static str,
    /// Human label used in messages, e.g. `Security group`.
    pub label: &'static str,
    /// Neutron's not-found exception name, e.g. `SecurityGroupNotFound`.
    pub not_found: &'static str,
    /// Resource-specific attributes (besides `id` and the standard ones).
    pub attrs: &'static [Attr],
    /// Has `project_id`/`tenant_id`.
    pub project: bool,
    /// Has the standard attributes: description, created_at, updated_at, revision_number.
    pub standard: bool,
    /// Supports the tags sub-resource.
    pub tags: bool,
}

/// `id`, present on every resource.
pub const ID: Attr = Attr::ro("id").fs().check(Check::Uuid);

/// `project_id` and its legacy twin `tenant_id`.
pub const PROJECT: [Attr; 2] = [
    Attr::ro("project_id").post(Dflt::Unset).fs().check(Check::Str(255)),
    Attr::ro("tenant_id").post(Dflt::Unset).fs().check(Check::Str(255)),
];

/// The standard attributes of Neutron's `standard_attrs` table.
pub const STANDARD: [Attr; 4] = [
    Attr::ro("description").post(Dflt::Str("")).put().fs().check(Check::Str(255)),
    Attr::ro("created_at").fs(),
    Attr::ro("updated_at").fs(),
    Attr::ro("revision_number").fs(),
];

/// `tags`, shown on tagged resources (set through the tags sub-resource).
pub const TAGS: Attr = Attr::ro("tags");

impl ResourceDef {
    /// Every attribute of the resource, standard ones included.
    pub fn all_attrs(&self) -> impl Iterator<Item = &Attr> {
        let project: &[Attr] = if self.project { &PROJECT } else { &[] };
        let standard: &[Attr] = if self.standard { &STANDARD } else { &[] };
        let tags: &[Attr] = if self.tags { std::slice::from_ref(&TAGS) } else { &[] };
        std::iter::once(&ID).chain(project).chain(standard).chain(tags).chain(self.attrs.iter())
    }

    /// Looks up one attribute by name.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.all_attrs().find(|a| a.name == name)
    }

    /// Fills the defaults of attributes missing from an internally built
    /// create request (what the API edge does for user requests).
    pub fn with_defaults(&self, item: &mut crate::Map) {
        for a in self.all_attrs() {
            if let crate::attr::Post::Optional(d) = a.post {
                if !item.contains_key(a.name) {
                    if let Some(v) = d.value() {
                        item.insert(a.name.to_string(), v);
                    }
                }
            }
        }
    }

    /// The fault for an unknown id of this resource.
    pub fn not_found_fault(&self, id: &str) -> crate::Fault {
        crate::Fault::resource_not_found(self.not_found, self.label, id)
    }
}

/// Standard-attribute bookkeeping on documents.
pub mod stamp {
    use serde_json::Value;

    use crate::{Fault, Map};

    /// Fills the attributes every new resource carries: `id` (if missing),
    /// `project_id`/`tenant_id`, timestamps, `revision_number` 1 and
    /// empty `tags`/`description` where absent.
    pub fn created(doc: &mut Map, project_id: &str, standard: bool, tags: bool) {
        if !doc.contains_key("id") {
            doc.insert("id".into(), Value::String(crate::new_id()));
        }
        doc.insert("project_id".into(), Value::String(project_id.to_string()));
        doc.insert("tenant_id".into(), Value::String(project_id.to_string()));
        if standard {
            let now = crate::time::now();
            doc.entry("description").or_insert_with(|| Value::String(String::new()));
            doc.insert("created_at".into(), Value::String(now.clone()));
            doc.insert("updated_at".into(), Value::String(now));
            doc.insert("revision_number".into(), Value::from(1));
        }
        if tags {
            doc.entry("tags").or_insert_with(|| Value::Array(vec![]));
        }
    }

    /// Marks a change: `updated_at` now and `revision_number` + 1.
    pub fn changed(doc: &mut Map) {
        let rev = revision(doc);
        doc.insert("revision_number".into(), Value::from(rev + 1));
        doc.insert("updated_at".into(), Value::String(crate::time::now()));
    }

    /// The document's revision number.
    pub fn revision(doc: &Map) -> i64 {
        doc.get("revision_number").and_then(Value::as_i64).unwrap_or(0)
    }

    /// Enforces `If-Match: revision_number=N`.
    pub fn check_if_match(doc: &Map, if_match: Option<i64>) -> Result<(), Fault> {
        match if_match {
            Some(want) if want != revision(doc) => Err(Fault::revision_mismatch(want, revision(doc))),
            _ => Ok(()),
        }
    }

    /// A string attribute of a document ("" when absent).
    pub fn str_of<'a>(doc: &'a Map, key: &str) -> &'a str {
        doc.get(key).and_then(Value::as_str).unwrap_or("")
    }

    /// A boolean attribute of a document.
    pub fn bool_of(doc: &Map, key: &str) -> bool {
        doc.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
}
