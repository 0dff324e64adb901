//! Application credentials: a secret a user creates for automation, bound to
//! one project and a subset of the user's roles there. Authenticating with
//! it (method `application_credential`) yields a token scoped to that
//! project with those roles only. Deleting the credential (or its user or
//! project) ends its tokens; so does the user losing one of its roles.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;

use crate::db::{self, flag, int, text};
use crate::input::{opt_bool, opt_str, req_name};
use crate::policy::Caller;
use crate::users::User;
use crate::{password, IdentityError, IdentityService, Result};

/// An application credential (the secret is kept only as a bcrypt hash).
#[derive(Clone, PartialEq)]
pub struct AppCred {
    /// Id (32 hex digits).
    pub id: String,
    /// Name, unique per user.
    pub name: String,
    /// Owner.
    pub user_id: String,
    /// The project its tokens are scoped to.
    pub project_id: String,
    /// Free text.
    pub description: String,
    /// Expiry (seconds since the epoch), if any.
    pub expires_at: Option<i64>,
    /// May its tokens manage application credentials and trusts?
    pub unrestricted: bool,
    /// The roles its tokens may carry (ids).
    pub role_ids: Vec<String>,
    secret_hash: String,
}

impl std::fmt::Debug for AppCred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCred")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

const COLS: &str = "id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles";

impl AppCred {
    fn from_row(r: &AnyRow) -> Result<AppCred> {
        let expires = int(r, "expires_at")?;
        Ok(AppCred {
            id: text(r, "id")?,
            name: text(r, "name")?,
            user_id: text(r, "user_id")?,
            project_id: text(r, "project_id")?,
            secret_hash: text(r, "secret_hash")?,
            description: text(r, "description")?,
            expires_at: (expires != 0).then_some(expires),
            unrestricted: flag(r, "unrestricted")?,
            role_ids: serde_json::from_str(&text(r, "roles")?).unwrap_or_default(),
        })
    }

    /// Past its expiry?
    pub fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|e| e <= Utc::now().timestamp())
    }

    /// Keystone's JSON (never the secret).
    pub async fn to_json(&self, svc: &IdentityService) -> Result<Value> {
        let mut roles = vec![];
        for id in &self.role_ids {
            if let Some(r) = svc.get_role(id).await? {
                roles.push(json!({"id": r.id, "name": r.name, "domain_id": null}));
            }
        }
        let expires =
            self.expires_at.and_then(|e| DateTime::<Utc>::from_timestamp(e, 0)).map(|t| crate::tokens::format_time(&t));
        Ok(json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": roles,
            "expires_at": expires,
            "unrestricted": self.unrestricted,
            "access_rules": [],
            "links": {"self": svc.link(&format!("users/{}/application_credentials/{}", self.user_id, self.id))},
        }))
    }
}

fn secret() -> String {
    use base64::Engine;
    use rand::Rng;
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl IdentityService {
    /// Creates an application credential for the caller (who must be the
    /// user, with a project-scoped token, and not itself using a restricted
    /// application credential). Returns it and its secret (shown once).
    pub async fn create_app_cred(
        &self,
        caller: &Caller,
        user_id: &str,
        body: &Map<String, Value>,
    ) -> Result<(AppCred, String)> {
        if caller.user_id() != user_id {
            return Err(caller.refuse("create_application_credential"));
        }
        if caller.info.application_credential.as_ref().is_some_and(|a| a.restricted) {
            return Err(IdentityError::ForbiddenAction(
                "Using a restricted application credential to create another one is not allowed.".into(),
            ));
        }
        let project_id = caller.info.project_id().map(String::from).ok_or_else(|| {
            IdentityError::ForbiddenAction("An application credential needs a project-scoped token.".into())
        })?;
        let name = req_name(body, "name", 255)?;
        let secret = match opt_str(body, "secret")? {
            Some(s) => {
                password::check_new(&s)
                    .map_err(|_| IdentityError::invalid_field("secret", "must be a non-empty string"))?;
                s
            }
            None => secret(),
        };
        let expires_at = match opt_str(body, "expires_at")? {
            None => None,
            Some(s) => {
                let t = DateTime::parse_from_rfc3339(&s)
                    .or_else(|_| DateTime::parse_from_rfc3339(&format!("{s}Z")))
                    .map_err(|_| {
                        IdentityError::invalid_field("expires_at", format!("'{s}' is not an ISO 8601 time"))
                    })?;
                if t.timestamp() <= Utc::now().timestamp() {
                    return Err(IdentityError::invalid_field("expires_at", "is in the past"));
                }
                Some(t.timestamp())
            }
        };
        // Roles: by default, every role the token carries; asked roles must be among them.
        let held = &caller.info.roles;
        let role_ids: Vec<String> = match body.get("roles") {
            None | Some(Value::Null) => held.iter().map(|r| r.id.clone()).collect(),
            Some(Value::Array(asked)) => {
                let mut out = vec![];
                for a in asked {
                    let found = held.iter().find(|h| {
                        a.get("id").and_then(Value::as_str) == Some(h.id.as_str())
                            || a.get("name").and_then(Value::as_str) == Some(h.name.as_str())
                    });
                    match found {
                        Some(h) if !out.contains(&h.id) => out.push(h.id.clone()),
                        Some(_) => {}
                        None => {
                            return Err(IdentityError::ForbiddenAction(format!(
                                "The user does not hold the requested role {a} on project {project_id}."
                            )))
                        }
                    }
                }
                out
            }
            Some(_) => return Err(IdentityError::invalid_field("roles", "is not of type 'array'")),
        };
        if role_ids.is_empty() {
            return Err(IdentityError::invalid_field("roles", "at least one role is needed"));
        }
        let ac = AppCred {
            id: db::new_id(),
            name,
            user_id: user_id.to_string(),
            project_id,
            description: opt_str(body, "description")?.unwrap_or_default(),
            expires_at,
            unrestricted: opt_bool(body, "unrestricted")?.unwrap_or(false),
            role_ids,
            secret_hash: password::hash(&secret, self.options.password_hash_cost).await?,
        };
        if self.list_app_creds(user_id).await?.iter().any(|x| x.name == ac.name) {
            return Err(IdentityError::conflict(
                "application_credential",
                format!("Duplicate entry found with name {}", ac.name),
            ));
        }
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(&format!(
            "INSERT INTO identity_app_creds ({COLS}, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&ac.id)
        .bind(&ac.name)
        .bind(&ac.user_id)
        .bind(&ac.project_id)
        .bind(&ac.secret_hash)
        .bind(&ac.description)
        .bind(ac.expires_at.unwrap_or(0))
        .bind(ac.unrestricted as i64)
        .bind(json!(ac.role_ids).to_string())
        .bind(db::now_micros())
        .execute(tx.conn())
        .await;
        match r {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(IdentityError::conflict(
                    "application_credential",
                    format!("Duplicate entry found with name {}", ac.name),
                ))
            }
            r => {
                r?;
            }
        }
        tx.commit().await?;
        tracing::info!(app_cred_id = %ac.id, user_id = %ac.user_id, project_id = %ac.project_id, "created application credential");
        Ok((ac, secret))
    }

    /// An application credential by id.
    pub async fn get_app_cred(&self, id: &str) -> Result<Option<AppCred>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_app_creds WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(AppCred::from_row).transpose()
    }

    /// A user's application credentials.
    pub async fn list_app_creds(&self, user_id: &str) -> Result<Vec<AppCred>> {
        let rows =
            sqlx::query(&format!("SELECT {COLS} FROM identity_app_creds WHERE user_id = $1 ORDER BY created_at, id"))
                .bind(user_id)
                .fetch_all(self.store.pool())
                .await?;
        rows.iter().map(AppCred::from_row).collect()
    }

    /// Deletes an application credential; its tokens stop validating.
    pub async fn delete_app_cred(&self, user_id: &str, id: &str) -> Result<()> {
        match self.get_app_cred(id).await? {
            Some(ac) if ac.user_id == user_id => {}
            _ => return Err(IdentityError::not_found("application credential", id)),
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM identity_app_creds WHERE id = $1").bind(id).execute(tx.conn()).await?;
        tx.commit().await?;
        tracing::info!(app_cred_id = %id, user_id, "deleted application credential");
        Ok(())
    }

    /// The `application_credential` method: by id, or by name with the
    /// user (by id, or name + domain); checks the secret and the expiry.
    pub(crate) async fn app_cred_method(&self, identity: &Map<String, Value>) -> Result<AppCred> {
        let m = match identity.get("application_credential") {
            Some(Value::Object(m)) => m,
            _ => return Err(IdentityError::missing("application_credential", "identity")),
        };
        let secret = opt_str(m, "secret")?.unwrap_or_default();
        let found = if let Some(id) = opt_str(m, "id")? {
            self.get_app_cred(&id).await?
        } else if let Some(name) = opt_str(m, "name")? {
            let user: Option<User> = match m.get("user") {
                Some(Value::Object(u)) => {
                    if let Some(uid) = opt_str(u, "id")? {
                        self.get_user(&uid).await?
                    } else {
                        let uname = opt_str(u, "name")?.ok_or_else(|| IdentityError::missing("id or name", "user"))?;
                        let domain = match u.get("domain") {
                            Some(Value::Object(d)) => match (opt_str(d, "id")?, opt_str(d, "name")?) {
                                (Some(id), _) => self.get_domain(&id).await?,
                                (None, Some(n)) => self.domain_by_name(&n).await?,
                                _ => None,
                            },
                            _ => return Err(IdentityError::missing("domain", "user")),
                        };
                        match domain {
                            Some(d) => self.user_by_name(&d.id, &uname).await?,
                            None => None,
                        }
                    }
                }
                _ => return Err(IdentityError::missing("user", "application_credential")),
            };
            match user {
                Some(u) => self.list_app_creds(&u.id).await?.into_iter().find(|a| a.name == name),
                None => None,
            }
        } else {
            return Err(IdentityError::missing("id or name", "application_credential"));
        };
        let Some(ac) = found else {
            self.burn_password_check(&secret).await;
            tracing::info!(reason = "unknown application credential", "authentication failed");
            return Err(IdentityError::unauthenticated());
        };
        if !password::verify(&secret, &ac.secret_hash).await {
            tracing::info!(app_cred_id = %ac.id, reason = "wrong secret", "authentication failed");
            return Err(IdentityError::unauthenticated());
        }
        if ac.is_expired() {
            tracing::info!(app_cred_id = %ac.id, reason = "expired", "authentication failed");
            return Err(IdentityError::unauthenticated());
        }
        Ok(ac)
    }
}
