//! The request context: who is calling, in which project, with which roles.

/// Identity of the caller of one request, built from a validated token (or, in
/// `--noauth` development mode, from `X-Project-Id`/`X-Roles` headers).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The user id, when known.
    pub user_id: Option<String>,
    /// The project the token is scoped to; `None` for unscoped/system tokens.
    pub project_id: Option<String>,
    /// Role names, lower-cased, with implied roles expanded.
    pub roles: Vec<String>,
    /// True when the token is system-scoped.
    pub system_scope: bool,
    /// The request id (`req-<uuid>`), for logs.
    pub request_id: String,
}

impl Context {
    /// An internal, all-powerful context (used by RPC handlers and bootstrapping).
    pub fn admin() -> Self {
        Context {
            user_id: None,
            project_id: None,
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            system_scope: true,
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
        }
    }

    /// A project-scoped context with the given roles (implied roles are expanded).
    pub fn project(project_id: &str, roles: &[&str]) -> Self {
        let mut c = Context {
            user_id: None,
            project_id: Some(project_id.to_string()),
            roles: roles.iter().map(|r| r.to_ascii_lowercase()).collect(),
            system_scope: false,
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
        };
        c.expand_implied_roles();
        c
    }

    /// admin ⇒ member ⇒ reader, as Keystone's default implied roles.
    pub fn expand_implied_roles(&mut self) {
        let has = |r: &str, roles: &Vec<String>| roles.iter().any(|x| x == r);
        if has("admin", &self.roles) && !has("member", &self.roles) {
            self.roles.push("member".into());
        }
        if has("member", &self.roles) && !has("reader", &self.roles) {
            self.roles.push("reader".into());
        }
    }

    /// Does the caller hold this role?
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// Neutron's `context.is_admin`: the admin role.
    pub fn is_admin(&self) -> bool {
        self.has_role("admin")
    }

    /// The `service` role (other OpenStack services such as Nova).
    pub fn is_service(&self) -> bool {
        self.has_role("service")
    }

    /// May the caller read a resource owned by the document's project
    /// (admin, or the owner)? Plugins widen this for shared resources.
    pub fn sees(&self, doc: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.is_admin() || self.owns(doc.get("project_id").and_then(|v| v.as_str()))
    }

    /// Is `project_id` the caller's own project?
    pub fn owns(&self, project_id: Option<&str>) -> bool {
        match (&self.project_id, project_id) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}
