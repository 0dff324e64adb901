//! Projects: what tokens are scoped to and what network resources belong to.

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;

use crate::db::{self, flag, object, text};
use crate::input::{check_name, opt_bool, opt_str, req_name};
use crate::revocation::RevocationEvent;
use crate::{IdentityError, IdentityService, Result, DEFAULT_DOMAIN_ID};

/// A project.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Id (32 hex digits).
    pub id: String,
    /// Name, unique within the domain.
    pub name: String,
    /// Owning domain.
    pub domain_id: String,
    /// Parent project, or the domain id for a top-level project.
    pub parent_id: String,
    /// Free text.
    pub description: String,
    /// Disabled projects cannot be scoped to; their tokens stop validating.
    pub enabled: bool,
    /// Other attributes (`tags`, ...).
    pub extra: Map<String, Value>,
}

const COLS: &str = "id, name, domain_id, parent_id, description, enabled, extra";
const KNOWN: &[&str] = &["id", "name", "domain_id", "parent_id", "description", "enabled", "is_domain"];

impl Project {
    fn from_row(r: &AnyRow) -> Result<Project> {
        Ok(Project {
            id: text(r, "id")?,
            name: text(r, "name")?,
            domain_id: text(r, "domain_id")?,
            parent_id: text(r, "parent_id")?,
            description: text(r, "description")?,
            enabled: flag(r, "enabled")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON for the project.
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.entry("tags").or_insert_with(|| json!([]));
        m.entry("options").or_insert_with(|| json!({}));
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("domain_id".into(), json!(self.domain_id));
        m.insert("parent_id".into(), json!(self.parent_id));
        m.insert("description".into(), json!(self.description));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("is_domain".into(), json!(false));
        m.insert("links".into(), json!({"self": svc.link(&format!("projects/{}", self.id))}));
        Value::Object(m)
    }
}

impl IdentityService {
    /// Creates a project from the `project` object of a request. Without
    /// `domain_id` the project goes to `default_domain` (the caller's token
    /// domain, as Keystone does), then `default`.
    pub async fn create_project(&self, body: &Map<String, Value>, default_domain: Option<&str>) -> Result<Project> {
        let name = req_name(body, "name", 64)?;
        if opt_bool(body, "is_domain")? == Some(true) {
            return Err(IdentityError::BadRequest("Projects acting as domains are not supported.".into()));
        }
        let parent = match opt_str(body, "parent_id")? {
            Some(pid) => Some(
                self.project(&pid)
                    .await
                    .map_err(|_| IdentityError::BadRequest(format!("Could not find parent project: {pid}.")))?,
            ),
            None => None,
        };
        let domain_id = match opt_str(body, "domain_id")? {
            Some(d) => d,
            None => match &parent {
                Some(p) => p.domain_id.clone(),
                None => default_domain.unwrap_or(DEFAULT_DOMAIN_ID).to_string(),
            },
        };
        if self.get_domain(&domain_id).await?.is_none() {
            return Err(IdentityError::BadRequest(format!("Could not find domain: {domain_id}.")));
        }
        if let Some(p) = &parent {
            if p.domain_id != domain_id {
                return Err(IdentityError::BadRequest(
                    "Cannot create project, the parent is in a different domain.".into(),
                ));
            }
        }
        let p = Project {
            id: db::new_id(),
            name,
            parent_id: parent.map(|p| p.id).unwrap_or_else(|| domain_id.clone()),
            domain_id,
            description: opt_str(body, "description")?.unwrap_or_default(),
            enabled: opt_bool(body, "enabled")?.unwrap_or(true),
            extra: crate::input::extra(body, KNOWN),
        };
        self.insert_project(&p).await?;
        tracing::info!(project_id = %p.id, name = %p.name, domain_id = %p.domain_id, "created project");
        Ok(p)
    }

    pub(crate) async fn insert_project(&self, p: &Project) -> Result<()> {
        let dup = || {
            IdentityError::conflict(
                "project",
                format!(
                    "it is not permitted to have two projects with either the same name or same id in the same domain: name is {}, project id {}",
                    p.name, p.id
                ),
            )
        };
        if self.project_by_name(&p.domain_id, &p.name).await?.is_some() {
            return Err(dup());
        }
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("INSERT INTO identity_projects (id, name, domain_id, parent_id, description, enabled, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&p.id)
            .bind(&p.name)
            .bind(&p.domain_id)
            .bind(&p.parent_id)
            .bind(&p.description)
            .bind(p.enabled as i64)
            .bind(Value::Object(p.extra.clone()).to_string())
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

    /// A project by id.
    pub async fn get_project(&self, id: &str) -> Result<Option<Project>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_projects WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Project::from_row).transpose()
    }

    /// A project by id, or 404.
    pub async fn project(&self, id: &str) -> Result<Project> {
        self.get_project(id).await?.ok_or_else(|| IdentityError::not_found("project", id))
    }

    /// A project by name within a domain.
    pub async fn project_by_name(&self, domain_id: &str, name: &str) -> Result<Option<Project>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_projects WHERE domain_id = $1 AND name = $2"))
            .bind(domain_id)
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Project::from_row).transpose()
    }

    /// Projects, optionally filtered by domain, name and enabled.
    pub async fn list_projects(
        &self,
        domain_id: Option<&str>,
        name: Option<&str>,
        enabled: Option<bool>,
    ) -> Result<Vec<Project>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM identity_projects ORDER BY created_at, id"))
            .fetch_all(self.store.pool())
            .await?;
        let mut out = vec![];
        for r in &rows {
            let p = Project::from_row(r)?;
            if domain_id.is_some_and(|d| d != p.domain_id)
                || name.is_some_and(|n| n != p.name)
                || enabled.is_some_and(|e| e != p.enabled)
            {
                continue;
            }
            out.push(p);
        }
        Ok(out)
    }

    /// Updates name, description, enabled and extra attributes. Disabling
    /// revokes the project's tokens.
    pub async fn update_project(&self, id: &str, patch: &Map<String, Value>) -> Result<Project> {
        let mut p = self.project(id).await?;
        if let Some(d) = opt_str(patch, "domain_id")? {
            if d != p.domain_id {
                return Err(IdentityError::BadRequest("Cannot change Domain ID".into()));
            }
        }
        if let Some(name) = opt_str(patch, "name")? {
            check_name("name", &name, 64)?;
            if name != p.name && self.project_by_name(&p.domain_id, &name).await?.is_some() {
                return Err(IdentityError::conflict(
                    "project",
                    format!("Duplicate entry found with name {name} at domain ID {}", p.domain_id),
                ));
            }
            p.name = name;
        }
        if let Some(desc) = opt_str(patch, "description")? {
            p.description = desc;
        }
        let was_enabled = p.enabled;
        if let Some(e) = opt_bool(patch, "enabled")? {
            p.enabled = e;
        }
        for (k, v) in crate::input::extra(patch, KNOWN) {
            p.extra.insert(k, v);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_projects SET name = $1, description = $2, enabled = $3, extra = $4 WHERE id = $5")
            .bind(&p.name)
            .bind(&p.description)
            .bind(p.enabled as i64)
            .bind(Value::Object(p.extra.clone()).to_string())
            .bind(&p.id)
            .execute(tx.conn())
            .await?;
        if was_enabled && !p.enabled {
            self.record_revocation(&mut tx, &RevocationEvent::project(&p.id)).await?;
        }
        tx.commit().await?;
        if was_enabled && !p.enabled {
            tracing::info!(project_id = %p.id, "disabled project: its tokens are revoked");
        }
        Ok(p)
    }

    /// Deletes a project (not one with child projects), its role
    /// assignments, and revokes its tokens.
    pub async fn delete_project(&self, id: &str) -> Result<()> {
        self.project(id).await?;
        let children = sqlx::query("SELECT id FROM identity_projects WHERE parent_id = $1")
            .bind(id)
            .fetch_all(self.store.pool())
            .await?;
        if !children.is_empty() {
            return Err(IdentityError::ForbiddenAction(format!("Cannot delete project {id}: it has child projects.")));
        }
        self.delete_project_unchecked(id).await
    }

    pub(crate) async fn delete_project_unchecked(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM identity_assignments WHERE target_id = $1 AND kind = 'UserProject'")
            .bind(id)
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM identity_projects WHERE id = $1").bind(id).execute(tx.conn()).await?;
        sqlx::query("DELETE FROM identity_app_creds WHERE project_id = $1").bind(id).execute(tx.conn()).await?;
        self.record_revocation(&mut tx, &RevocationEvent::project(id)).await?;
        tx.commit().await?;
        tracing::info!(project_id = %id, "deleted project");
        Ok(())
    }
}
