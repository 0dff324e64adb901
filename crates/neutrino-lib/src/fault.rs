//! The Neutron fault: what every error finally becomes at the API edge,
//! `{"NeutronError": {"type", "message", "detail"}}` with an HTTP status.
//!
//! Each crate keeps its own typed error enum and converts into a [`Fault`]
//! (`impl From<XError> for Fault`), choosing Neutron's exception name and code.

use std::borrow::Cow;

/// A Neutron-shaped error: HTTP status, Neutron exception type name, message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} ({status}): {message}")]
pub struct Fault {
    /// HTTP status code.
    pub status: u16,
    /// Neutron's exception class name, e.g. `NetworkNotFound`.
    pub kind: Cow<'static, str>,
    /// The user-facing message.
    pub message: String,
    /// Extra detail (Neutron usually leaves it empty).
    pub detail: String,
}

impl Fault {
    /// A fault with the given status, type and message.
    pub fn new(status: u16, kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Fault { status, kind: kind.into(), message: message.into(), detail: String::new() }
    }

    /// 400 `HTTPBadRequest` (attribute validation, malformed bodies).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "HTTPBadRequest", message)
    }

    /// 400 `InvalidInput`: "Invalid input for operation: ...".
    pub fn invalid_input(reason: impl std::fmt::Display) -> Self {
        Self::new(400, "InvalidInput", format!("Invalid input for operation: {reason}."))
    }

    /// 400 `BadRequest` for a resource: "Bad <resource> request: ...".
    pub fn bad_resource_request(resource: &str, msg: impl std::fmt::Display) -> Self {
        Self::new(400, "BadRequest", format!("Bad {resource} request: {msg}."))
    }

    /// 404 with a specific type, e.g. `NetworkNotFound`.
    pub fn not_found(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(404, kind, message)
    }

    /// 404 for a resource id: `<Resource>NotFound`, "<Resource> <id> could not be found.".
    pub fn resource_not_found(kind: &'static str, label: &str, id: &str) -> Self {
        Self::new(404, kind, format!("{label} {id} could not be found."))
    }

    /// 404 `HTTPNotFound` for an unknown URL.
    pub fn no_such_path() -> Self {
        Self::new(404, "HTTPNotFound", "The resource could not be found.")
    }

    /// 409 with a specific type.
    pub fn conflict(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(409, kind, message)
    }

    /// 403 `PolicyNotAuthorized` naming the rule that refused.
    pub fn policy(rule: &str) -> Self {
        Self::new(403, "PolicyNotAuthorized", format!("({rule}) is disallowed by policy"))
    }

    /// 412: `If-Match` revision mismatch.
    pub fn revision_mismatch(expected: i64, actual: i64) -> Self {
        Self::new(
            412,
            "RevisionNumberConstraintFailed",
            format!("Constrained to {expected}, but current revision is {actual}"),
        )
    }

    /// 409 `OverQuota`.
    pub fn over_quota(resource: &str) -> Self {
        Self::new(409, "OverQuota", format!("Quota exceeded for resources: ['{resource}']."))
    }

    /// 500: something went wrong inside; the message is generic, the cause is logged.
    pub fn internal() -> Self {
        Self::new(500, "InternalServerError", "Request Failed: internal server error while processing your request.")
    }

    /// 503 with a type.
    pub fn unavailable(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(503, kind, message)
    }

    /// The JSON body Neutron sends for this fault.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"NeutronError": {
            "type": self.kind,
            "message": self.message,
            "detail": self.detail,
        }})
    }
}
