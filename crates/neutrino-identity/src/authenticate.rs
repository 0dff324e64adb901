//! `POST /v3/auth/tokens`: proving who you are (the `password` and `token`
//! methods) and choosing a scope (project, domain, system, or none).
//!
//! Every failure before the password is verified answers the same 401 with
//! the same message, and an unknown user costs one bcrypt verification like
//! a known one, so the response tells nothing about which users exist.

use chrono::Utc;
use serde_json::{Map, Value};

use crate::input::{member, opt_str};
use crate::tokens::{new_audit_id, Payload, ScopeRef, TokenInfo};
use crate::users::User;
use crate::{IdentityError, IdentityService, Result};

/// The scope asked for in an authentication request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ScopeRequest {
    /// Nothing asked: the user's default project if usable, else unscoped
    /// (for `token`, the original token's scope).
    Default,
    /// `"scope": "unscoped"`.
    Unscoped,
    /// A project by id.
    ProjectId(String),
    /// A project by name in a domain (by id or name).
    ProjectName { name: String, domain: DomainRef },
    /// A domain by id.
    DomainId(String),
    /// A domain by name.
    DomainName(String),
    /// The system.
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DomainRef {
    Id(String),
    Name(String),
}

fn domain_ref(m: &Map<String, Value>, what: &str) -> Result<DomainRef> {
    let d = match m.get("domain") {
        Some(Value::Object(d)) => d,
        _ => return Err(IdentityError::missing("domain", what)),
    };
    if let Some(id) = opt_str(d, "id")? {
        Ok(DomainRef::Id(id))
    } else if let Some(name) = opt_str(d, "name")? {
        Ok(DomainRef::Name(name))
    } else {
        Err(IdentityError::missing("id or name", "domain"))
    }
}

fn parse_scope(auth: &Map<String, Value>) -> Result<ScopeRequest> {
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => return Ok(ScopeRequest::Default),
        Some(Value::String(s)) if s == "unscoped" => return Ok(ScopeRequest::Unscoped),
        Some(Value::Object(s)) => s,
        Some(_) => return Err(IdentityError::invalid_field("scope", "is not of type 'object'")),
    };
    if let Some(p) = scope.get("project") {
        let p = p.as_object().ok_or_else(|| IdentityError::invalid_field("project", "is not of type 'object'"))?;
        if let Some(id) = opt_str(p, "id")? {
            return Ok(ScopeRequest::ProjectId(id));
        }
        let name = opt_str(p, "name")?.ok_or_else(|| IdentityError::missing("id or name", "project"))?;
        return Ok(ScopeRequest::ProjectName { name, domain: domain_ref(p, "project")? });
    }
    if let Some(d) = scope.get("domain") {
        let d = d.as_object().ok_or_else(|| IdentityError::invalid_field("domain", "is not of type 'object'"))?;
        if let Some(id) = opt_str(d, "id")? {
            return Ok(ScopeRequest::DomainId(id));
        }
        let name = opt_str(d, "name")?.ok_or_else(|| IdentityError::missing("id or name", "domain"))?;
        return Ok(ScopeRequest::DomainName(name));
    }
    if let Some(s) = scope.get("system") {
        if s.get("all") == Some(&Value::Bool(true)) {
            return Ok(ScopeRequest::System);
        }
        return Err(IdentityError::invalid_field("system", "only {\"all\": true} is supported"));
    }
    if scope.contains_key("OS-TRUST:trust") {
        return Err(IdentityError::ForbiddenAction("Trusts are not supported.".into()));
    }
    Err(IdentityError::BadRequest("Invalid scope: expecting project, domain or system.".into()))
}

impl IdentityService {
    /// Authenticates a `POST /v3/auth/tokens` body and issues a token.
    /// Returns the token and what it stands for.
    pub async fn issue_token(&self, body: &Value) -> Result<(String, TokenInfo)> {
        let auth = member(body, "auth")?;
        let identity = match auth.get("identity") {
            Some(Value::Object(m)) => m,
            _ => return Err(IdentityError::missing("identity", "auth")),
        };
        let methods: Vec<String> = match identity.get("methods") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|m| {
                    m.as_str()
                        .map(String::from)
                        .ok_or_else(|| IdentityError::invalid_field("methods", "items must be strings"))
                })
                .collect::<Result<_>>()?,
            _ => return Err(IdentityError::missing("methods", "identity")),
        };
        let scope = parse_scope(auth)?;
        let now = Utc::now();
        let payload = if methods.iter().any(|m| m == "password") {
            let user = self.password_method(identity).await?;
            let scope = self.scope_ref(&scope, &user, None).await?;
            Payload {
                version: 1,
                user_id: user.id,
                methods: Payload::method_codes(&["password".into()]),
                scope,
                issued_at: now.timestamp_micros(),
                expires_at: now.timestamp() + self.options.token_expiration.as_secs() as i64,
                audit_ids: vec![new_audit_id()],
                app_cred: String::new(),
            }
        } else if methods.iter().any(|m| m == "application_credential") {
            if !matches!(scope, ScopeRequest::Default) {
                return Err(IdentityError::Unauthorized(
                    "An application credential token is scoped to the credential's project; do not ask for a scope."
                        .into(),
                ));
            }
            let ac = self.app_cred_method(identity).await?;
            let lifetime = now.timestamp() + self.options.token_expiration.as_secs() as i64;
            Payload {
                version: 1,
                user_id: ac.user_id.clone(),
                methods: Payload::method_codes(&["application_credential".into()]),
                scope: ScopeRef::project(&ac.project_id),
                issued_at: now.timestamp_micros(),
                expires_at: ac.expires_at.map_or(lifetime, |e| e.min(lifetime)),
                audit_ids: vec![new_audit_id()],
                app_cred: ac.id,
            }
        } else if methods.iter().any(|m| m == "token") {
            let parent = self.token_method(identity).await?;
            if !parent.app_cred.is_empty() {
                return Err(IdentityError::ForbiddenAction(
                    "A token issued for an application credential cannot be rescoped.".into(),
                ));
            }
            let user = self.user(&parent.user_id).await.map_err(|_| IdentityError::unauthenticated())?;
            let scope = self.scope_ref(&scope, &user, Some(&parent.scope)).await?;
            let mut names = vec!["token".to_string()];
            for m in parent.method_names() {
                if !names.contains(&m) {
                    names.push(m);
                }
            }
            let root = parent.audit_ids.last().cloned().unwrap_or_default();
            Payload {
                version: 1,
                user_id: parent.user_id.clone(),
                methods: Payload::method_codes(&names),
                scope,
                issued_at: now.timestamp_micros(),
                expires_at: parent.expires_at,
                audit_ids: vec![new_audit_id(), root],
                app_cred: String::new(),
            }
        } else {
            return Err(IdentityError::Unauthorized("Attempted to authenticate with an unsupported method.".into()));
        };
        match self.resolve(&payload).await? {
            Ok(info) => {
                let token = self.seal(&payload)?;
                tracing::info!(user_id = %info.user.id, project_id = info.project_id().unwrap_or(""), methods = ?info.methods, "issued token");
                Ok((token, info))
            }
            Err(reason) => {
                tracing::info!(user_id = %payload.user_id, %reason, "token request refused at scoping");
                Err(IdentityError::Unauthorized(scope_message(&reason)))
            }
        }
    }

    /// The `password` method: finds the user and checks the password.
    async fn password_method(&self, identity: &Map<String, Value>) -> Result<User> {
        let pw = member(&Value::Object(identity.clone()), "password")?.clone();
        let user = match pw.get("user") {
            Some(Value::Object(u)) => u.clone(),
            _ => return Err(IdentityError::missing("user", "password")),
        };
        let password = opt_str(&user, "password")?.unwrap_or_default();
        let found = if let Some(id) = opt_str(&user, "id")? {
            self.get_user(&id).await?
        } else if let Some(name) = opt_str(&user, "name")? {
            let domain = match domain_ref(&user, "user")? {
                DomainRef::Id(id) => self.get_domain(&id).await?,
                DomainRef::Name(n) => self.domain_by_name(&n).await?,
            };
            match domain {
                Some(d) if d.enabled => self.user_by_name(&d.id, &name).await?,
                _ => None,
            }
        } else {
            return Err(IdentityError::missing("id or name", "user"));
        };
        let Some(u) = found else {
            self.burn_password_check(&password).await;
            tracing::info!(reason = "unknown user", "authentication failed");
            return Err(IdentityError::unauthenticated());
        };
        if !self.check_password(&u, &password).await {
            tracing::info!(user_id = %u.id, reason = "wrong password", "authentication failed");
            return Err(IdentityError::unauthenticated());
        }
        if !u.enabled {
            tracing::info!(user_id = %u.id, reason = "user disabled", "authentication failed");
            return Err(IdentityError::unauthenticated());
        }
        Ok(u)
    }

    /// The `token` method: the presented token must be valid.
    async fn token_method(&self, identity: &Map<String, Value>) -> Result<Payload> {
        let t = match identity.get("token") {
            Some(Value::Object(t)) => t,
            _ => return Err(IdentityError::missing("token", "identity")),
        };
        let id = opt_str(t, "id")?.ok_or_else(|| IdentityError::missing("id", "token"))?;
        let Some(p) = self.open(&id) else {
            return Err(IdentityError::unauthenticated());
        };
        match self.resolve(&p).await? {
            Ok(_) => Ok(p),
            Err(reason) => {
                tracing::info!(user_id = %p.user_id, %reason, "rescope refused: token not valid");
                Err(IdentityError::unauthenticated())
            }
        }
    }

    /// Resolves the requested scope to what the payload records.
    async fn scope_ref(&self, req: &ScopeRequest, user: &User, inherited: Option<&ScopeRef>) -> Result<ScopeRef> {
        let not_found = |what: &str| IdentityError::Unauthorized(format!("Could not find {what}."));
        Ok(match req {
            ScopeRequest::Unscoped => ScopeRef::unscoped(),
            ScopeRequest::Default => match inherited {
                Some(s) => s.clone(),
                None => self.default_scope(user).await?,
            },
            ScopeRequest::ProjectId(id) => ScopeRef::project(id),
            ScopeRequest::ProjectName { name, domain } => {
                let d = match domain {
                    DomainRef::Id(id) => self.get_domain(id).await?,
                    DomainRef::Name(n) => self.domain_by_name(n).await?,
                };
                let d = d.ok_or_else(|| not_found("domain"))?;
                let p =
                    self.project_by_name(&d.id, name).await?.ok_or_else(|| not_found(&format!("project: {name}")))?;
                ScopeRef::project(&p.id)
            }
            ScopeRequest::DomainId(id) => ScopeRef::domain(id),
            ScopeRequest::DomainName(n) => {
                let d = self.domain_by_name(n).await?.ok_or_else(|| not_found("domain"))?;
                ScopeRef::domain(&d.id)
            }
            ScopeRequest::System => ScopeRef::system(),
        })
    }

    /// The user's default project when it is usable, else unscoped.
    async fn default_scope(&self, user: &User) -> Result<ScopeRef> {
        if user.default_project_id.is_empty() {
            return Ok(ScopeRef::unscoped());
        }
        match self.get_project(&user.default_project_id).await? {
            Some(p)
                if p.enabled
                    && !self
                        .effective_roles(&user.id, &crate::assignments::Target::Project(p.id.clone()))
                        .await?
                        .is_empty() =>
            {
                Ok(ScopeRef::project(&p.id))
            }
            _ => Ok(ScopeRef::unscoped()),
        }
    }
}

/// The 401 message for a scoping failure (the caller has proven who they
/// are, so the reason can be told).
fn scope_message(reason: &str) -> String {
    let mut s = reason.to_string();
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    format!("{s}.")
}
