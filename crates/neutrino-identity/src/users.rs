//! Users: who authenticates. Passwords are stored as bcrypt hashes only.

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;

use crate::db::{self, flag, object, text};
use crate::input::{check_name, opt_bool, opt_str, req_name};
use crate::revocation::RevocationEvent;
use crate::{password, IdentityError, IdentityService, Result, DEFAULT_DOMAIN_ID};

/// A user.
#[derive(Clone, PartialEq)]
pub struct User {
    /// Id (32 hex digits).
    pub id: String,
    /// Name, unique within the domain.
    pub name: String,
    /// Owning domain.
    pub domain_id: String,
    /// Disabled users cannot authenticate; their tokens stop validating.
    pub enabled: bool,
    /// The project a token is scoped to when the request names none ('' for none).
    pub default_project_id: String,
    /// Other attributes (`email`, `description`, ...).
    pub extra: Map<String, Value>,
    password_hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

const COLS: &str = "id, name, domain_id, enabled, password_hash, default_project_id, extra";
const KNOWN: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "enabled",
    "password",
    "default_project_id",
    "password_expires_at",
    "options",
    "federated",
];

impl User {
    fn from_row(r: &AnyRow) -> Result<User> {
        Ok(User {
            id: text(r, "id")?,
            name: text(r, "name")?,
            domain_id: text(r, "domain_id")?,
            enabled: flag(r, "enabled")?,
            password_hash: text(r, "password_hash")?,
            default_project_id: text(r, "default_project_id")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON for the user (never the password).
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("domain_id".into(), json!(self.domain_id));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("password_expires_at".into(), Value::Null);
        m.insert("options".into(), json!({}));
        if !self.default_project_id.is_empty() {
            m.insert("default_project_id".into(), json!(self.default_project_id));
        }
        m.insert("links".into(), json!({"self": svc.link(&format!("users/{}", self.id))}));
        Value::Object(m)
    }
}

impl IdentityService {
    /// Creates a user from the `user` object of a request.
    pub async fn create_user(&self, body: &Map<String, Value>, default_domain: Option<&str>) -> Result<User> {
        let name = req_name(body, "name", 255)?;
        let domain_id =
            opt_str(body, "domain_id")?.unwrap_or_else(|| default_domain.unwrap_or(DEFAULT_DOMAIN_ID).to_string());
        if self.get_domain(&domain_id).await?.is_none() {
            return Err(IdentityError::BadRequest(format!("Could not find domain: {domain_id}.")));
        }
        let password_hash = match opt_str(body, "password")? {
            Some(pw) => {
                password::check_new(&pw)?;
                password::hash(&pw, self.options.password_hash_cost).await?
            }
            None => String::new(),
        };
        let default_project_id = opt_str(body, "default_project_id")?.unwrap_or_default();
        let u = User {
            id: db::new_id(),
            name,
            domain_id,
            enabled: opt_bool(body, "enabled")?.unwrap_or(true),
            default_project_id,
            extra: crate::input::extra(body, KNOWN),
            password_hash,
        };
        self.insert_user(&u).await?;
        tracing::info!(user_id = %u.id, name = %u.name, domain_id = %u.domain_id, "created user");
        Ok(u)
    }

    pub(crate) async fn insert_user(&self, u: &User) -> Result<()> {
        let dup = || {
            IdentityError::conflict(
                "user",
                format!("Duplicate entry found with name {} at domain ID {}", u.name, u.domain_id),
            )
        };
        if self.user_by_name(&u.domain_id, &u.name).await?.is_some() {
            return Err(dup());
        }
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("INSERT INTO identity_users (id, name, domain_id, enabled, password_hash, default_project_id, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&u.id)
            .bind(&u.name)
            .bind(&u.domain_id)
            .bind(u.enabled as i64)
            .bind(&u.password_hash)
            .bind(&u.default_project_id)
            .bind(Value::Object(u.extra.clone()).to_string())
            .bind(db::now_micros())
            .execute(tx.conn())
            .await;
        match r {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(dup()),
            r => {
                r?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A user by id.
    pub async fn get_user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// A user by id, or 404.
    pub async fn user(&self, id: &str) -> Result<User> {
        self.get_user(id).await?.ok_or_else(|| IdentityError::not_found("user", id))
    }

    /// A user by name within a domain.
    pub async fn user_by_name(&self, domain_id: &str, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_users WHERE domain_id = $1 AND name = $2"))
            .bind(domain_id)
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// Users, optionally filtered by domain, name and enabled.
    pub async fn list_users(
        &self,
        domain_id: Option<&str>,
        name: Option<&str>,
        enabled: Option<bool>,
    ) -> Result<Vec<User>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM identity_users ORDER BY created_at, id"))
            .fetch_all(self.store.pool())
            .await?;
        let mut out = vec![];
        for r in &rows {
            let u = User::from_row(r)?;
            if domain_id.is_some_and(|d| d != u.domain_id)
                || name.is_some_and(|n| n != u.name)
                || enabled.is_some_and(|e| e != u.enabled)
            {
                continue;
            }
            out.push(u);
        }
        Ok(out)
    }

    /// Checks a user's password (false for users without one, after the
    /// same bcrypt work, so timing does not tell them apart).
    pub async fn check_password(&self, user: &User, password: &str) -> bool {
        if user.password_hash.is_empty() {
            self.burn_password_check(password).await;
            return false;
        }
        password::verify(password, &user.password_hash).await
    }

    /// Verifies against a throw-away hash: the same cost as a real check, for
    /// unknown users.
    pub(crate) async fn burn_password_check(&self, password: &str) {
        let _ = password::verify(password, &self.dummy_hash).await;
    }

    /// Updates a user (admin `PATCH`): name, enabled, password,
    /// default_project_id, extra attributes. A new password or disabling the
    /// user revokes its tokens.
    pub async fn update_user(&self, id: &str, patch: &Map<String, Value>) -> Result<User> {
        let mut u = self.user(id).await?;
        if let Some(d) = opt_str(patch, "domain_id")? {
            if d != u.domain_id {
                return Err(IdentityError::BadRequest("Cannot change Domain ID".into()));
            }
        }
        if let Some(name) = opt_str(patch, "name")? {
            check_name("name", &name, 255)?;
            if name != u.name && self.user_by_name(&u.domain_id, &name).await?.is_some() {
                return Err(IdentityError::conflict(
                    "user",
                    format!("Duplicate entry found with name {name} at domain ID {}", u.domain_id),
                ));
            }
            u.name = name;
        }
        let mut revoke = false;
        if let Some(e) = opt_bool(patch, "enabled")? {
            revoke |= u.enabled && !e;
            u.enabled = e;
        }
        if patch.contains_key("password") {
            match opt_str(patch, "password")? {
                Some(pw) => {
                    password::check_new(&pw)?;
                    u.password_hash = password::hash(&pw, self.options.password_hash_cost).await?;
                }
                None => u.password_hash.clear(),
            }
            revoke = true;
        }
        if patch.contains_key("default_project_id") {
            u.default_project_id = opt_str(patch, "default_project_id")?.unwrap_or_default();
        }
        for (k, v) in crate::input::extra(patch, KNOWN) {
            u.extra.insert(k, v);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_users SET name = $1, enabled = $2, password_hash = $3, default_project_id = $4, extra = $5 WHERE id = $6")
            .bind(&u.name)
            .bind(u.enabled as i64)
            .bind(&u.password_hash)
            .bind(&u.default_project_id)
            .bind(Value::Object(u.extra.clone()).to_string())
            .bind(&u.id)
            .execute(tx.conn())
            .await?;
        if revoke {
            self.record_revocation(&mut tx, &RevocationEvent::user(&u.id)).await?;
        }
        tx.commit().await?;
        if revoke {
            tracing::info!(user_id = %u.id, "user's tokens revoked (password change or disabled)");
        }
        Ok(u)
    }

    /// Self-service password change (`POST /v3/users/{id}/password`): checks
    /// the original password, sets the new one, revokes the user's tokens.
    pub async fn change_password(&self, id: &str, original: &str, new: &str) -> Result<()> {
        let u = match self.get_user(id).await? {
            Some(u) => u,
            None => {
                self.burn_password_check(original).await;
                return Err(IdentityError::unauthenticated());
            }
        };
        if !u.enabled || !self.check_password(&u, original).await {
            tracing::info!(user_id = %id, "password change refused: bad original password");
            return Err(IdentityError::unauthenticated());
        }
        let mut patch = Map::new();
        patch.insert("password".into(), json!(new));
        self.update_user(id, &patch).await?;
        Ok(())
    }

    /// Deletes a user with its role assignments, and revokes its tokens.
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.user(id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM identity_assignments WHERE actor_id = $1").bind(id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_app_creds WHERE user_id = $1").bind(id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_users WHERE id = $1").bind(id).execute(tx.conn()).await?;
        self.record_revocation(&mut tx, &RevocationEvent::user(id)).await?;
        tx.commit().await?;
        tracing::info!(user_id = %id, "deleted user");
        Ok(())
    }

    /// Sets a user's password hash directly (bootstrap).
    pub(crate) async fn set_password(&self, id: &str, new: &str) -> Result<()> {
        let mut patch = Map::new();
        patch.insert("password".into(), json!(new));
        self.update_user(id, &patch).await.map(|_| ())
    }
}
