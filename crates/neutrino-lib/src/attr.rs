//! Declarative attribute definitions, in the shape of neutron-lib's
//! `RESOURCE_ATTRIBUTE_MAP`: who may set an attribute, its default, how it is
//! validated and converted, whether it is shown, filterable and sortable.

use serde_json::Value;

use crate::{checks, Fault};

/// How an attribute behaves on create (POST).
#[derive(Debug, Clone, Copy)]
pub enum Post {
    /// Not allowed in a POST body.
    Never,
    /// Must be given.
    Required,
    /// May be given; otherwise the default applies.
    Optional(Dflt),
}

/// Default value of an optional attribute.
#[derive(Debug, Clone, Copy)]
pub enum Dflt {
    /// JSON null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(&'static str),
    /// An integer.
    Int(i64),
    /// `[]`.
    EmptyList,
    /// `{}`.
    EmptyObj,
    /// No default: the attribute stays absent and the plugin decides
    /// (neutron-lib's `ATTR_NOT_SPECIFIED`).
    Unset,
}

impl Dflt {
    /// The JSON value of this default, `None` for [`Dflt::Unset`].
    pub fn value(&self) -> Option<Value> {
        Some(match self {
            Dflt::Null => Value::Null,
            Dflt::Bool(b) => Value::Bool(*b),
            Dflt::Str(s) => Value::String((*s).to_string()),
            Dflt::Int(i) => Value::from(*i),
            Dflt::EmptyList => Value::Array(vec![]),
            Dflt::EmptyObj => Value::Object(Default::default()),
            Dflt::Unset => return None,
        })
    }
}

/// Validation and conversion of one attribute value. Errors are the reason
/// text that goes into "Invalid input for <attr>. Reason: <reason>."
#[derive(Clone, Copy)]
pub enum Check {
    /// Anything.
    Any,
    /// A string of at most N characters.
    Str(usize),
    /// A string of at most N characters, or null.
    StrOrNull(usize),
    /// A boolean (accepts "true"/"false" in any case, 0/1).
    Bool,
    /// An integer within [min, max] (accepts numeric strings).
    Int(i64, i64),
    /// An integer within [min, max], or null.
    IntOrNull(i64, i64),
    /// A UUID.
    Uuid,
    /// A UUID or null.
    UuidOrNull,
    /// One of the given strings.
    Values(&'static [&'static str]),
    /// One of the given strings, or null.
    ValuesOrNull(&'static [&'static str]),
    /// A name from a known set, matched without regard to case and
    /// converted to its canonical spelling (filters on such values match
    /// case-insensitively, as they do on Neutron's MySQL/MariaDB collation).
    Canonical(&'static [&'static str]),
    /// An IP address (converted to canonical form).
    Ip,
    /// An IP address or null.
    IpOrNull,
    /// A MAC address (converted to lower-case colon form).
    Mac,
    /// A list of UUIDs.
    UuidList,
    /// A list of strings of at most N characters each.
    StrList(usize),
    /// A JSON object.
    Dict,
    /// A JSON object or null.
    DictOrNull,
    /// Any other validator/converter.
    Custom(fn(&Value) -> Result<Value, String>),
    /// A converter that refuses with a specific Neutron fault
    /// (e.g. `SecurityGroupRuleInvalidProtocol`).
    Conv(fn(&Value) -> Result<Value, Fault>),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Check")
    }
}

impl Check {
    /// Validates `v` and returns its converted (canonical) form.
    pub fn apply(&self, v: &Value) -> Result<Value, String> {
        match self {
            Check::Any => Ok(v.clone()),
            Check::Str(max) => checks::string(v, *max).map(Value::String),
            Check::StrOrNull(max) => {
                if v.is_null() {
                    Ok(Value::Null)
                } else {
                    checks::string(v, *max).map(Value::String)
                }
            }
            Check::Bool => checks::to_bool(v).map(Value::Bool),
            Check::Int(min, max) => checks::to_int_in(v, *min, *max).map(Value::from),
            Check::IntOrNull(min, max) => {
                if v.is_null() {
                    Ok(Value::Null)
                } else {
                    checks::to_int_in(v, *min, *max).map(Value::from)
                }
            }
            Check::Uuid => checks::uuid(v).map(Value::String),
            Check::UuidOrNull => {
                if v.is_null() {
                    Ok(Value::Null)
                } else {
                    checks::uuid(v).map(Value::String)
                }
            }
            Check::Values(vals) => checks::one_of(v, vals).map(Value::String),
            Check::ValuesOrNull(vals) => {
                if v.is_null() {
                    Ok(Value::Null)
                } else {
                    checks::one_of(v, vals).map(Value::String)
                }
            }
            Check::Canonical(vals) => match v.as_str() {
                Some(raw) => Ok(Value::String(canonical(vals, raw).to_string())),
                None => checks::string(v, 255).map(Value::String),
            },
            Check::Ip => checks::ip(v).map(Value::String),
            Check::IpOrNull => {
                if v.is_null() {
                    Ok(Value::Null)
                } else {
                    checks::ip(v).map(Value::String)
                }
            }
            Check::Mac => checks::mac(v).map(Value::String),
            Check::UuidList => checks::uuid_list(v),
            Check::StrList(max) => checks::str_list(v, *max),
            Check::Dict => match v {
                Value::Object(_) => Ok(v.clone()),
                _ => Err(format!("'{}' is not a dictionary", checks::show(v))),
            },
            Check::DictOrNull => match v {
                Value::Object(_) | Value::Null => Ok(v.clone()),
                _ => Err(format!("'{}' is not a dictionary", checks::show(v))),
            },
            Check::Custom(f) => f(v),
            Check::Conv(f) => f(v).map_err(|e| e.message),
        }
    }

    /// Validates `v` for attribute `attr`, refusing with Neutron's fault:
    /// `HTTPBadRequest` "Invalid input for <attr>. Reason: <reason>." or the
    /// converter's own fault.
    pub fn apply_for(&self, attr: &str, v: &Value) -> Result<Value, Fault> {
        match self {
            Check::Conv(f) => f(v),
            other => other
                .apply(v)
                .map_err(|reason| Fault::bad_request(format!("Invalid input for {attr}. Reason: {reason}."))),
        }
    }
}

/// One attribute of a resource.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// The attribute name as it appears in JSON (e.g. `provider:network_type`).
    pub name: &'static str,
    /// Behaviour on create.
    pub post: Post,
    /// May it be updated with PUT?
    pub put: bool,
    /// Is it shown in responses?
    pub visible: bool,
    /// May it be used as a list filter?
    pub filter: bool,
    /// May it be used as a sort key?
    pub sort: bool,
    /// Is writing it subject to an attribute-level policy rule?
    pub enforce_policy: bool,
    /// Validation/conversion.
    pub check: Check,
}

impl Attr {
    /// A read-only, visible attribute.
    pub const fn ro(name: &'static str) -> Attr {
        Attr {
            name,
            post: Post::Never,
            put: false,
            visible: true,
            filter: false,
            sort: false,
            enforce_policy: false,
            check: Check::Any,
        }
    }
    /// Allowed on create with the given default.
    pub const fn post(mut self, d: Dflt) -> Attr {
        self.post = Post::Optional(d);
        self
    }
    /// Required on create.
    pub const fn required(mut self) -> Attr {
        self.post = Post::Required;
        self
    }
    /// Updatable.
    pub const fn put(mut self) -> Attr {
        self.put = true;
        self
    }
    /// Filterable.
    pub const fn filter(mut self) -> Attr {
        self.filter = true;
        self
    }
    /// Sortable.
    pub const fn sort(mut self) -> Attr {
        self.sort = true;
        self
    }
    /// Filterable and sortable.
    pub const fn fs(self) -> Attr {
        self.filter().sort()
    }
    /// Hidden from responses.
    pub const fn hidden(mut self) -> Attr {
        self.visible = false;
        self
    }
    /// Writing it is subject to an attribute-level policy.
    pub const fn policy(mut self) -> Attr {
        self.enforce_policy = true;
        self
    }
    /// With this validator.
    pub const fn check(mut self, c: Check) -> Attr {
        self.check = c;
        self
    }
}

/// The spelling of `raw` in `known` (compared without regard to case), else `raw`.
pub fn canonical<'a>(known: &'a [&'a str], raw: &'a str) -> &'a str {
    known.iter().copied().find(|k| k.eq_ignore_ascii_case(raw)).unwrap_or(raw)
}
