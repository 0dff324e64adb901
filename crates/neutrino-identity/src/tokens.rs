//! Fernet tokens: what is inside, how they are issued, validated and revoked.
//!
//! The payload is a compact MessagePack array (version, user id, methods,
//! scope, issued-at in µs, expires-at in s, audit ids), encrypted and signed
//! with the primary Fernet key. Nothing else is stored: at validation the
//! user, scope and roles are read again, so a deleted or disabled user or
//! project, or a removed role, takes effect at once; revocation events cover
//! the rest (see [`crate::revocation`]).

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::assignments::Target;
use crate::revocation::RevocationEvent;
use crate::{IdentityError, IdentityService, Result};

/// Payload format version.
const PAYLOAD_VERSION: u8 = 1;

/// Authentication methods a token may record.
const METHODS: &[&str] = &["password", "token", "application_credential"];

/// `{"id", "name"}` of a domain, project or role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRef {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

impl NamedRef {
    fn json(&self) -> Value {
        json!({"id": self.id, "name": self.name})
    }
}

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope: the token only proves who the user is.
    Unscoped,
    /// A project, with its domain.
    Project {
        /// The project.
        project: NamedRef,
        /// The project's domain.
        domain: NamedRef,
    },
    /// A domain.
    Domain(NamedRef),
    /// The system (`{"system": {"all": true}}`).
    System,
}

/// A validated token: who, scoped to what, with which roles, until when.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// The user.
    pub user: NamedRef,
    /// The user's domain.
    pub user_domain: NamedRef,
    /// How the user authenticated (`password`, `token`).
    pub methods: Vec<String>,
    /// The scope.
    pub scope: Scope,
    /// Roles on the scope, implied roles included.
    pub roles: Vec<NamedRef>,
    /// Audit ids: this token's, then the one it was rescoped from.
    pub audit_ids: Vec<String>,
    /// Issue time.
    pub issued_at: DateTime<Utc>,
    /// Expiry time.
    pub expires_at: DateTime<Utc>,
    /// The application credential used, if any (`{"id", "name", "restricted"}` in the body).
    pub application_credential: Option<AppCredRef>,
}

/// The application credential a token was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredRef {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// False when the credential may manage other credentials.
    pub restricted: bool,
}

/// Keystone's timestamp format: `2026-11-25T02:52:42.000000Z`.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

impl TokenInfo {
    /// The project id for project-scoped tokens.
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Project { project, .. } => Some(&project.id),
            _ => None,
        }
    }

    /// The domain id for domain-scoped tokens.
    pub fn domain_id(&self) -> Option<&str> {
        match &self.scope {
            Scope::Domain(d) => Some(&d.id),
            _ => None,
        }
    }

    /// Is the token system-scoped?
    pub fn is_system(&self) -> bool {
        self.scope == Scope::System
    }

    /// Does the token carry the role (case-insensitive)?
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.name.eq_ignore_ascii_case(role))
    }

    /// The role names, lower-cased.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.iter().map(|r| r.name.to_ascii_lowercase()).collect()
    }

    /// The request context the network API works with.
    pub fn to_context(&self) -> neutrino_lib::Context {
        let mut ctx = neutrino_lib::Context {
            user_id: Some(self.user.id.clone()),
            project_id: self.project_id().map(String::from),
            roles: self.role_names(),
            system_scope: self.is_system(),
            request_id: String::new(),
        };
        ctx.expand_implied_roles();
        ctx
    }

    /// The `{"token": {...}}` body (catalog added by the caller when wanted).
    pub fn to_json(&self, catalog: Option<Vec<Value>>) -> Value {
        let mut t = json!({
            "methods": self.methods,
            "user": {
                "id": self.user.id,
                "name": self.user.name,
                "domain": self.user_domain.json(),
                "password_expires_at": null,
            },
            "audit_ids": self.audit_ids,
            "expires_at": format_time(&self.expires_at),
            "issued_at": format_time(&self.issued_at),
        });
        match &self.scope {
            Scope::Unscoped => {}
            Scope::Project { project, domain } => {
                t["project"] = json!({"id": project.id, "name": project.name, "domain": domain.json()});
                t["is_domain"] = json!(false);
            }
            Scope::Domain(d) => t["domain"] = d.json(),
            Scope::System => t["system"] = json!({"all": true}),
        }
        if let Some(ac) = &self.application_credential {
            t["application_credential"] = json!({"id": ac.id, "name": ac.name, "restricted": ac.restricted});
        }
        if self.scope != Scope::Unscoped {
            t["roles"] = json!(self.roles.iter().map(NamedRef::json).collect::<Vec<_>>());
            if let Some(c) = catalog {
                t["catalog"] = json!(c);
            }
        }
        json!({"token": t})
    }
}

/// The scope as recorded in a payload: kind (0 none, 1 project, 2 domain,
/// 3 system) and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ScopeRef(pub u8, pub String);

impl ScopeRef {
    pub(crate) fn unscoped() -> Self {
        ScopeRef(0, String::new())
    }
    pub(crate) fn project(id: &str) -> Self {
        ScopeRef(1, id.into())
    }
    pub(crate) fn domain(id: &str) -> Self {
        ScopeRef(2, id.into())
    }
    pub(crate) fn system() -> Self {
        ScopeRef(3, String::new())
    }
    pub(crate) fn project_id(&self) -> Option<&str> {
        (self.0 == 1).then_some(self.1.as_str())
    }
}

/// What is encrypted in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payload {
    pub version: u8,
    pub user_id: String,
    pub methods: Vec<u8>,
    pub scope: ScopeRef,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audit_ids: Vec<String>,
    /// The application credential the token was issued for ('' if none).
    #[serde(default)]
    pub app_cred: String,
}

impl Payload {
    pub(crate) fn method_names(&self) -> Vec<String> {
        self.methods.iter().filter_map(|m| METHODS.get(*m as usize).map(|s| s.to_string())).collect()
    }

    pub(crate) fn method_codes(names: &[String]) -> Vec<u8> {
        let mut out: Vec<u8> =
            names.iter().filter_map(|n| METHODS.iter().position(|m| m == n).map(|p| p as u8)).collect();
        out.dedup();
        out
    }
}

/// A new audit id: 16 random bytes, url-safe base64 without padding (22 chars).
pub(crate) fn new_audit_id() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn micros_to_time(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

impl IdentityService {
    /// Encrypts a payload into a token.
    pub(crate) fn seal(&self, p: &Payload) -> Result<String> {
        let bytes = rmp_serde::to_vec(p).map_err(|e| IdentityError::Internal(format!("payload: {e}")))?;
        Ok(self.keyring().encrypt(&bytes))
    }

    /// Decrypts a token; `None` when it is not one of ours (wrong key,
    /// tampered, garbage).
    pub(crate) fn open(&self, token: &str) -> Option<Payload> {
        let bytes = self.keyring().decrypt(token)?;
        let p: Payload = rmp_serde::from_slice(&bytes).ok()?;
        (p.version == PAYLOAD_VERSION).then_some(p)
    }

    /// Builds the token's current view from a payload, re-reading the user,
    /// the scope and the roles. `Ok(Err(reason))` when the token must not be
    /// honoured (the reason is for logs and for 401s at issue time).
    pub(crate) async fn resolve(&self, p: &Payload) -> Result<std::result::Result<TokenInfo, String>> {
        let now = Utc::now();
        if p.expires_at <= now.timestamp() {
            return Ok(Err("token expired".into()));
        }
        let Some(user) = self.get_user(&p.user_id).await? else {
            return Ok(Err("user not found".into()));
        };
        if !user.enabled {
            return Ok(Err("user disabled".into()));
        }
        let Some(user_domain) = self.get_domain(&user.domain_id).await? else {
            return Ok(Err("user domain not found".into()));
        };
        if !user_domain.enabled {
            return Ok(Err("user domain disabled".into()));
        }
        let (scope, target) = match p.scope.0 {
            0 => (Scope::Unscoped, None),
            1 => {
                let Some(project) = self.get_project(&p.scope.1).await? else {
                    return Ok(Err(format!("could not find project: {}", p.scope.1)));
                };
                if !project.enabled {
                    return Ok(Err(format!("project is disabled: {}", project.id)));
                }
                let Some(domain) = self.get_domain(&project.domain_id).await? else {
                    return Ok(Err("project domain not found".into()));
                };
                if !domain.enabled {
                    return Ok(Err(format!("domain is disabled: {}", domain.id)));
                }
                (
                    Scope::Project {
                        project: NamedRef { id: project.id.clone(), name: project.name },
                        domain: NamedRef { id: domain.id, name: domain.name },
                    },
                    Some(Target::Project(project.id)),
                )
            }
            2 => {
                let Some(domain) = self.get_domain(&p.scope.1).await? else {
                    return Ok(Err(format!("could not find domain: {}", p.scope.1)));
                };
                if !domain.enabled {
                    return Ok(Err(format!("domain is disabled: {}", domain.id)));
                }
                let id = domain.id.clone();
                (Scope::Domain(NamedRef { id: domain.id, name: domain.name }), Some(Target::Domain(id)))
            }
            3 => (Scope::System, Some(Target::System)),
            _ => return Ok(Err("unknown scope".into())),
        };
        let app_cred = if p.app_cred.is_empty() {
            None
        } else {
            match self.get_app_cred(&p.app_cred).await? {
                Some(ac) if ac.user_id == user.id && Some(ac.project_id.as_str()) == p.scope.project_id() => {
                    if ac.is_expired() {
                        return Ok(Err("application credential expired".into()));
                    }
                    Some(ac)
                }
                _ => return Ok(Err("application credential not found".into())),
            }
        };
        let roles = match &target {
            None => vec![],
            Some(t) => {
                let mut roles = self.effective_roles(&user.id, t).await?;
                if let Some(ac) = &app_cred {
                    let allowed = self.expand_implied(&ac.role_ids.iter().cloned().collect()).await?;
                    if !ac.role_ids.iter().all(|r| roles.iter().any(|x| &x.id == r)) {
                        return Ok(Err("the user lost a role of the application credential".into()));
                    }
                    roles.retain(|r| allowed.contains(&r.id));
                }
                if roles.is_empty() {
                    return Ok(Err(format!("user {} has no role on the requested scope", user.id)));
                }
                roles.into_iter().map(|r| NamedRef { id: r.id, name: r.name }).collect()
            }
        };
        let project_id = match &target {
            Some(Target::Project(p)) => Some(p.as_str()),
            _ => None,
        };
        if self.is_revoked(&p.audit_ids, &user.id, project_id, p.issued_at).await? {
            return Ok(Err("token revoked".into()));
        }
        Ok(Ok(TokenInfo {
            user: NamedRef { id: user.id, name: user.name },
            user_domain: NamedRef { id: user_domain.id, name: user_domain.name },
            methods: p.method_names(),
            scope,
            roles,
            audit_ids: p.audit_ids.clone(),
            issued_at: micros_to_time(p.issued_at),
            expires_at: micros_to_time(p.expires_at.saturating_mul(1_000_000)),
            application_credential: app_cred.map(|ac| AppCredRef {
                id: ac.id,
                name: ac.name,
                restricted: !ac.unrestricted,
            }),
        }))
    }

    /// Validates a token: 404 (`TokenNotFound`) if it is not ours, expired,
    /// revoked, or its user/scope/roles are gone.
    pub async fn validate_token(&self, token: &str) -> Result<TokenInfo> {
        let Some(p) = self.open(token) else {
            tracing::debug!("token does not decrypt");
            return Err(IdentityError::TokenNotFound);
        };
        match self.resolve(&p).await? {
            Ok(info) => Ok(info),
            Err(reason) => {
                tracing::debug!(user_id = %p.user_id, %reason, "token refused");
                Err(IdentityError::TokenNotFound)
            }
        }
    }

    /// Revokes a token (and those rescoped from it); 404 if it is not valid.
    pub async fn revoke_token(&self, token: &str) -> Result<()> {
        let info = self.validate_token(token).await?;
        let audit = info.audit_ids.first().cloned().unwrap_or_default();
        self.revoke(&RevocationEvent::audit(&audit)).await?;
        tracing::info!(user_id = %info.user.id, audit_id = %audit, "revoked token");
        Ok(())
    }

    /// The `{"token": ...}` body for a validated token.
    pub async fn token_body(&self, info: &TokenInfo, with_catalog: bool) -> Result<Value> {
        let catalog = if with_catalog && info.scope != Scope::Unscoped { Some(self.catalog().await?) } else { None };
        Ok(info.to_json(catalog))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_compactly() {
        let p = Payload {
            version: 1,
            user_id: "0123456789abcdef0123456789abcdef".into(),
            methods: Payload::method_codes(&["password".into(), "token".into()]),
            scope: ScopeRef::project("fedcba9876543210fedcba9876543210"),
            issued_at: 1_800_000_000_123_456,
            expires_at: 1_800_003_600,
            audit_ids: vec![new_audit_id()],
            app_cred: String::new(),
        };
        let bytes = rmp_serde::to_vec(&p).unwrap();
        assert!(bytes.len() < 120, "{} bytes", bytes.len());
        let back: Payload = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.method_names(), vec!["password", "token"]);
        assert_eq!(p.audit_ids[0].len(), 22);
    }

    #[test]
    fn formats_keystone_timestamps() {
        let t = Utc.timestamp_opt(1_795_000_000, 0).unwrap();
        assert_eq!(format_time(&t), "2026-11-18T11:06:40.000000Z");
    }
}
