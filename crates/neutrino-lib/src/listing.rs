//! A parsed list request in typed form: filters, tag filters, sort keys and
//! the page asked for. The API edge builds it from the query string (and the
//! resource's attribute map); a plugin hands it to the store, which turns it
//! into SQL, or, for the few collections that are not tables, applies it in
//! memory.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};

/// How an attribute's value is stored in a resource document, which decides
/// how it is compared and ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValKind {
    /// A string (or null).
    Str,
    /// An integer (or null).
    Int,
    /// A boolean.
    Bool,
    /// A list of strings; a filter matches if any element does.
    StrList,
    /// A list of objects (`fixed_ips`); filter values are `key=value` or `key_substr=value`.
    ObjList,
}

impl ValKind {
    /// The kind of an attribute, from its validator and default.
    pub fn of(a: &Attr) -> ValKind {
        if a.name == "fixed_ips" {
            return ValKind::ObjList;
        }
        match a.check {
            Check::Bool => ValKind::Bool,
            Check::Int(..) | Check::IntOrNull(..) => ValKind::Int,
            Check::UuidList | Check::StrList(_) => ValKind::StrList,
            _ => match a.post {
                crate::attr::Post::Optional(Dflt::EmptyList) => ValKind::StrList,
                _ => ValKind::Str,
            },
        }
    }
}

/// One attribute filter: the attribute matches any of the values.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Attribute name (`tenant_id` already mapped to `project_id`).
    pub attr: String,
    /// How the attribute is stored.
    pub kind: ValKind,
    /// Accepted values, converted by the attribute's type where it has one.
    pub values: Vec<Value>,
}

/// Tag filters (`tags`, `tags-any`, `not-tags`, `not-tags-any`); each entry is
/// one occurrence of the parameter with its comma-separated tags.
#[derive(Debug, Default, Clone)]
pub struct TagFilter {
    /// Every tag of each set.
    pub all: Vec<Vec<String>>,
    /// At least one tag of each set.
    pub any: Vec<Vec<String>>,
    /// Not every tag of each set.
    pub not_all: Vec<Vec<String>>,
    /// None of the tags of each set.
    pub not_any: Vec<Vec<String>>,
}

impl TagFilter {
    /// No tag filter at all?
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty() && self.not_all.is_empty() && self.not_any.is_empty()
    }
}

/// One sort key.
#[derive(Debug, Clone)]
pub struct Sort {
    /// Attribute name.
    pub attr: String,
    /// How the attribute is stored.
    pub kind: ValKind,
    /// Ascending?
    pub asc: bool,
}

/// A list request.
#[derive(Debug, Default, Clone)]
pub struct ListSpec {
    /// Attribute filters, all of which must match.
    pub filters: Vec<Filter>,
    /// Tag filters.
    pub tags: TagFilter,
    /// Sort keys, in order; `id` ascending breaks ties.
    pub sorts: Vec<Sort>,
    /// Page size (`None`: everything).
    pub limit: Option<usize>,
    /// The id of the last item seen (the first, when paging backwards).
    pub marker: Option<String>,
    /// Page backwards from the marker.
    pub page_reverse: bool,
}

impl ListSpec {
    /// Removes and returns the filter on `attr`, for a plugin that answers it
    /// in its own way (e.g. a subnet's `shared` is its network's).
    pub fn take_filter(&mut self, attr: &str) -> Option<Filter> {
        let i = self.filters.iter().position(|f| f.attr == attr)?;
        Some(self.filters.remove(i))
    }

    /// The accepted values of the filter on `attr`, if any.
    pub fn values(&self, attr: &str) -> Option<&[Value]> {
        self.filters.iter().find(|f| f.attr == attr).map(|f| f.values.as_slice())
    }

    /// Is a page asked for (so the order must be stable and keyed)?
    pub fn paged(&self) -> bool {
        self.limit.is_some() || self.marker.is_some() || !self.sorts.is_empty()
    }
}
