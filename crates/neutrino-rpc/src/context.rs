//! The request context that travels with every message (oslo's `ctxt`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who asked, and for which request: serialized into every message so the
/// receiving side can log the same `request_id` and act with the same rights.
///
/// Fields marked *local* are filled by the receiving transport and never sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallContext {
    /// The request id (`req-<uuid>`), for correlating logs across processes.
    pub request_id: String,
    /// The user id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The project, when the request is project scoped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Role names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Neutron's `is_admin`.
    #[serde(default)]
    pub is_admin: bool,
    /// Any other keys the caller wants to pass along.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// *Local*: the API version the caller declared on its [`crate::Target`].
    #[serde(skip)]
    pub api_version: Option<String>,
    /// *Local*: the message id, for calls (the reply's correlation id).
    #[serde(skip)]
    pub msg_id: Option<String>,
}

impl CallContext {
    /// An admin context with a fresh request id (for agents and internal tasks).
    pub fn admin() -> Self {
        CallContext { request_id: new_request_id(), roles: vec!["admin".into()], is_admin: true, ..Default::default() }
    }

    /// A context with a fresh request id and nothing else.
    pub fn new() -> Self {
        CallContext { request_id: new_request_id(), ..Default::default() }
    }

    /// True when this message is a `call` that expects a reply.
    pub fn is_call(&self) -> bool {
        self.msg_id.is_some()
    }
}

impl From<&neutrino_lib::Context> for CallContext {
    fn from(c: &neutrino_lib::Context) -> Self {
        CallContext {
            request_id: c.request_id.clone(),
            user_id: c.user_id.clone(),
            project_id: c.project_id.clone(),
            roles: c.roles.clone(),
            is_admin: c.is_admin(),
            ..Default::default()
        }
    }
}

impl From<&CallContext> for neutrino_lib::Context {
    fn from(c: &CallContext) -> Self {
        let mut ctx = neutrino_lib::Context {
            user_id: c.user_id.clone(),
            project_id: c.project_id.clone(),
            roles: c.roles.clone(),
            system_scope: c.is_admin && c.project_id.is_none(),
            request_id: c.request_id.clone(),
        };
        if c.is_admin && !ctx.has_role("admin") {
            ctx.roles.push("admin".into());
        }
        ctx.expand_implied_roles();
        ctx
    }
}

/// A new request id, `req-<uuid>` as Neutron spells them.
pub fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::new_v4())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_fields_are_not_serialized() {
        let mut c = CallContext::admin();
        c.msg_id = Some("m".into());
        c.api_version = Some("1.1".into());
        let v = serde_json::to_value(&c).unwrap();
        assert!(v.get("msg_id").is_none());
        assert!(v.get("api_version").is_none());
        let back: CallContext = serde_json::from_value(v).unwrap();
        assert_eq!(back.request_id, c.request_id);
        assert!(back.is_admin);
        assert!(back.msg_id.is_none());
    }

    #[test]
    fn converts_to_and_from_the_api_context() {
        let api = neutrino_lib::Context::project("p1", &["member"]);
        let c = CallContext::from(&api);
        assert_eq!(c.project_id.as_deref(), Some("p1"));
        assert!(!c.is_admin);
        let back = neutrino_lib::Context::from(&c);
        assert_eq!(back.request_id, api.request_id);
        assert!(back.has_role("reader"));
    }
}
