//! Domains: the containers of projects and users. `default` always exists
//! (made by bootstrap).

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;

use crate::db::{self, flag, object, text};
use crate::input::{check_name, opt_bool, opt_str, req_name};
use crate::{IdentityError, IdentityService, Result, DEFAULT_DOMAIN_ID};

/// A domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// Id (`default`, or 32 hex digits).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Disabled domains refuse authentication for their users and projects.
    pub enabled: bool,
    /// Other attributes (`tags`, ...).
    pub extra: Map<String, Value>,
}

const COLS: &str = "id, name, description, enabled, extra";
const KNOWN: &[&str] = &["id", "name", "description", "enabled", "explicit_domain_id"];

impl Domain {
    fn from_row(r: &AnyRow) -> Result<Domain> {
        Ok(Domain {
            id: text(r, "id")?,
            name: text(r, "name")?,
            description: text(r, "description")?,
            enabled: flag(r, "enabled")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON for the domain.
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.entry("tags").or_insert_with(|| json!([]));
        m.entry("options").or_insert_with(|| json!({}));
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("description".into(), json!(self.description));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("links".into(), json!({"self": svc.link(&format!("domains/{}", self.id))}));
        Value::Object(m)
    }
}

impl IdentityService {
    /// Creates a domain from the `domain` object of a request (an explicit
    /// `id` is honoured, as Keystone does).
    pub async fn create_domain(&self, body: &Map<String, Value>) -> Result<Domain> {
        let name = req_name(body, "name", 64)?;
        let d = Domain {
            id: opt_str(body, "id")?.or(opt_str(body, "explicit_domain_id")?).unwrap_or_else(db::new_id),
            name,
            description: opt_str(body, "description")?.unwrap_or_default(),
            enabled: opt_bool(body, "enabled")?.unwrap_or(true),
            extra: crate::input::extra(body, KNOWN),
        };
        self.insert_domain(&d).await?;
        tracing::info!(domain_id = %d.id, name = %d.name, "created domain");
        Ok(d)
    }

    pub(crate) async fn insert_domain(&self, d: &Domain) -> Result<()> {
        if self.domain_by_name(&d.name).await?.is_some() {
            return Err(IdentityError::conflict("domain", format!("Duplicate entry found with name {}", d.name)));
        }
        if self.get_domain(&d.id).await?.is_some() {
            return Err(IdentityError::conflict("domain", format!("Duplicate ID, {}", d.id)));
        }
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("INSERT INTO identity_domains (id, name, description, enabled, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&d.id)
            .bind(&d.name)
            .bind(&d.description)
            .bind(d.enabled as i64)
            .bind(Value::Object(d.extra.clone()).to_string())
            .bind(db::now_micros())
            .execute(tx.conn())
            .await;
        match r {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(IdentityError::conflict("domain", format!("Duplicate entry found with name {}", d.name)))
            }
            r => {
                r?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A domain by id.
    pub async fn get_domain(&self, id: &str) -> Result<Option<Domain>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_domains WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Domain::from_row).transpose()
    }

    /// A domain by id, or 404.
    pub async fn domain(&self, id: &str) -> Result<Domain> {
        self.get_domain(id).await?.ok_or_else(|| IdentityError::not_found("domain", id))
    }

    /// A domain by name.
    pub async fn domain_by_name(&self, name: &str) -> Result<Option<Domain>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_domains WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Domain::from_row).transpose()
    }

    /// Domains, optionally filtered by name and enabled.
    pub async fn list_domains(&self, name: Option<&str>, enabled: Option<bool>) -> Result<Vec<Domain>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM identity_domains ORDER BY created_at, id"))
            .fetch_all(self.store.pool())
            .await?;
        let mut out = vec![];
        for r in &rows {
            let d = Domain::from_row(r)?;
            if name.is_some_and(|n| n != d.name) || enabled.is_some_and(|e| e != d.enabled) {
                continue;
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Updates name, description, enabled and extra attributes.
    pub async fn update_domain(&self, id: &str, patch: &Map<String, Value>) -> Result<Domain> {
        let mut d = self.domain(id).await?;
        if let Some(new_id) = opt_str(patch, "id")? {
            if new_id != d.id {
                return Err(IdentityError::BadRequest("Cannot change Domain ID".into()));
            }
        }
        if let Some(name) = opt_str(patch, "name")? {
            check_name("name", &name, 64)?;
            if name != d.name && self.domain_by_name(&name).await?.is_some() {
                return Err(IdentityError::conflict("domain", format!("Duplicate entry found with name {name}")));
            }
            d.name = name;
        }
        if let Some(desc) = opt_str(patch, "description")? {
            d.description = desc;
        }
        let was_enabled = d.enabled;
        if let Some(e) = opt_bool(patch, "enabled")? {
            if !e && d.id == DEFAULT_DOMAIN_ID {
                return Err(IdentityError::ForbiddenAction(
                    "You are not authorized to perform the requested action: the default domain cannot be disabled."
                        .into(),
                ));
            }
            d.enabled = e;
        }
        for (k, v) in crate::input::extra(patch, KNOWN) {
            d.extra.insert(k, v);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_domains SET name = $1, description = $2, enabled = $3, extra = $4 WHERE id = $5")
            .bind(&d.name)
            .bind(&d.description)
            .bind(d.enabled as i64)
            .bind(Value::Object(d.extra.clone()).to_string())
            .bind(&d.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        if was_enabled && !d.enabled {
            tracing::info!(domain_id = %d.id, "disabled domain: its tokens stop validating");
        }
        Ok(d)
    }

    /// Deletes a disabled domain with everything in it (projects, users,
    /// domain-specific roles, assignments).
    pub async fn delete_domain(&self, id: &str) -> Result<()> {
        let d = self.domain(id).await?;
        if d.enabled {
            return Err(IdentityError::ForbiddenAction(
                "Cannot delete a domain that is enabled, please disable it first.".into(),
            ));
        }
        let projects = self.list_projects(Some(id), None, None).await?;
        for p in projects.iter().rev() {
            self.delete_project_unchecked(&p.id).await?;
        }
        for u in self.list_users(Some(id), None, None).await? {
            self.delete_user(&u.id).await?;
        }
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM identity_assignments WHERE target_id = $1 AND kind = 'UserDomain'",
            "DELETE FROM identity_roles WHERE domain_id = $1",
            "DELETE FROM identity_domains WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(tx.conn()).await?;
        }
        tx.commit().await?;
        tracing::info!(domain_id = %id, "deleted domain");
        Ok(())
    }
}
