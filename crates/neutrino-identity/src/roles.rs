//! Roles and implied roles (a prior role implies others: admin ⇒ member ⇒
//! reader). Tokens carry the implied closure of the assigned roles.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;

use crate::db::{self, object, text};
use crate::input::{check_name, opt_str, req_name};
use crate::{IdentityError, IdentityService, Result};

/// A role.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Id (32 hex digits).
    pub id: String,
    /// Name (unique among global roles).
    pub name: String,
    /// '' for a global role, else the domain of a domain-specific role.
    pub domain_id: String,
    /// Free text.
    pub description: String,
    /// Other attributes.
    pub extra: Map<String, Value>,
}

const COLS: &str = "id, name, domain_id, description, extra";
const KNOWN: &[&str] = &["id", "name", "domain_id", "description", "options"];

/// Roles no other role may imply (Keystone's `prohibited_implied_role`).
const PROHIBITED_IMPLIED: &[&str] = &["admin"];

impl Role {
    fn from_row(r: &AnyRow) -> Result<Role> {
        Ok(Role {
            id: text(r, "id")?,
            name: text(r, "name")?,
            domain_id: text(r, "domain_id")?,
            description: text(r, "description")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON for the role.
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("domain_id".into(), if self.domain_id.is_empty() { Value::Null } else { json!(self.domain_id) });
        m.insert("description".into(), json!(self.description));
        m.insert("options".into(), json!({}));
        m.insert("links".into(), json!({"self": self.link(svc)}));
        Value::Object(m)
    }

    fn link(&self, svc: &IdentityService) -> String {
        svc.link(&format!("roles/{}", self.id))
    }

    /// `{"id", "name", "links"}` as used in role inferences.
    fn brief(&self, svc: &IdentityService) -> Value {
        json!({"id": self.id, "name": self.name, "links": {"self": self.link(svc)}})
    }
}

impl IdentityService {
    /// Creates a role from the `role` object of a request.
    pub async fn create_role(&self, body: &Map<String, Value>) -> Result<Role> {
        let name = req_name(body, "name", 255)?;
        let domain_id = opt_str(body, "domain_id")?.unwrap_or_default();
        if !domain_id.is_empty() && self.get_domain(&domain_id).await?.is_none() {
            return Err(IdentityError::BadRequest(format!("Could not find domain: {domain_id}.")));
        }
        let r = Role {
            id: opt_str(body, "id")?.unwrap_or_else(db::new_id),
            name,
            domain_id,
            description: opt_str(body, "description")?.unwrap_or_default(),
            extra: crate::input::extra(body, KNOWN),
        };
        self.insert_role(&r).await?;
        tracing::info!(role_id = %r.id, name = %r.name, "created role");
        Ok(r)
    }

    pub(crate) async fn insert_role(&self, r: &Role) -> Result<()> {
        let dup = || IdentityError::conflict("role", format!("Duplicate entry found with name {}", r.name));
        if self.role_by_name(&r.name, &r.domain_id).await?.is_some() {
            return Err(dup());
        }
        let mut tx = self.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO identity_roles (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.domain_id)
        .bind(&r.description)
        .bind(Value::Object(r.extra.clone()).to_string())
        .execute(tx.conn())
        .await;
        match res {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Err(dup()),
            res => {
                res?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A role by id.
    pub async fn get_role(&self, id: &str) -> Result<Option<Role>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_roles WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Role::from_row).transpose()
    }

    /// A role by id, or 404.
    pub async fn role(&self, id: &str) -> Result<Role> {
        self.get_role(id).await?.ok_or_else(|| IdentityError::not_found("role", id))
    }

    /// A role by name ('' domain for global roles).
    pub async fn role_by_name(&self, name: &str, domain_id: &str) -> Result<Option<Role>> {
        let row = sqlx::query(&format!("SELECT {COLS} FROM identity_roles WHERE name = $1 AND domain_id = $2"))
            .bind(name)
            .bind(domain_id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Role::from_row).transpose()
    }

    /// Roles, optionally filtered by name and domain ('' = global roles only,
    /// the default as in Keystone).
    pub async fn list_roles(&self, name: Option<&str>, domain_id: Option<&str>) -> Result<Vec<Role>> {
        let rows = sqlx::query(&format!("SELECT {COLS} FROM identity_roles ORDER BY name, id"))
            .fetch_all(self.store.pool())
            .await?;
        let domain = domain_id.unwrap_or("");
        let mut out = vec![];
        for r in &rows {
            let role = Role::from_row(r)?;
            if role.domain_id != domain || name.is_some_and(|n| n != role.name) {
                continue;
            }
            out.push(role);
        }
        Ok(out)
    }

    /// Updates name, description and extra attributes.
    pub async fn update_role(&self, id: &str, patch: &Map<String, Value>) -> Result<Role> {
        let mut r = self.role(id).await?;
        if let Some(name) = opt_str(patch, "name")? {
            check_name("name", &name, 255)?;
            if name != r.name && self.role_by_name(&name, &r.domain_id).await?.is_some() {
                return Err(IdentityError::conflict("role", format!("Duplicate entry found with name {name}")));
            }
            r.name = name;
        }
        if let Some(desc) = opt_str(patch, "description")? {
            r.description = desc;
        }
        for (k, v) in crate::input::extra(patch, KNOWN) {
            r.extra.insert(k, v);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_roles SET name = $1, description = $2, extra = $3 WHERE id = $4")
            .bind(&r.name)
            .bind(&r.description)
            .bind(Value::Object(r.extra.clone()).to_string())
            .bind(&r.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Deletes a role, its assignments and inference rules.
    pub async fn delete_role(&self, id: &str) -> Result<()> {
        self.role(id).await?;
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM identity_assignments WHERE role_id = $1",
            "DELETE FROM identity_implied_roles WHERE prior_role_id = $1 OR implied_role_id = $1",
            "DELETE FROM identity_roles WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(tx.conn()).await?;
        }
        tx.commit().await?;
        tracing::info!(role_id = %id, "deleted role");
        Ok(())
    }

    /// All inference rules: prior role id → implied role ids.
    pub async fn implication_rules(&self) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let rows = sqlx::query("SELECT prior_role_id, implied_role_id FROM identity_implied_roles")
            .fetch_all(self.store.pool())
            .await?;
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in &rows {
            out.entry(text(r, "prior_role_id")?).or_default().insert(text(r, "implied_role_id")?);
        }
        Ok(out)
    }

    /// The closure of role ids under the inference rules.
    pub async fn expand_implied(&self, role_ids: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        let rules = self.implication_rules().await?;
        let mut out = role_ids.clone();
        let mut todo: Vec<String> = role_ids.iter().cloned().collect();
        while let Some(r) = todo.pop() {
            for implied in rules.get(&r).into_iter().flatten() {
                if out.insert(implied.clone()) {
                    todo.push(implied.clone());
                }
            }
        }
        Ok(out)
    }

    /// Creates `prior ⇒ implied` (idempotent). Refuses self-implication,
    /// cycles, and implying `admin`.
    pub async fn create_implied_role(&self, prior: &str, implied: &str) -> Result<Value> {
        let p = self.role(prior).await?;
        let i = self.role(implied).await?;
        if PROHIBITED_IMPLIED.contains(&i.name.as_str()) {
            return Err(IdentityError::ForbiddenAction(format!("{} is not an allowed implied role.", i.name)));
        }
        if p.id == i.id || self.expand_implied(&BTreeSet::from([i.id.clone()])).await?.contains(&p.id) {
            return Err(IdentityError::BadRequest(format!(
                "The role {} implying {} would create a cycle of implied roles.",
                p.name, i.name
            )));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO identity_implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&p.id)
            .bind(&i.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        tracing::info!(prior = %p.name, implied = %i.name, "created implied role");
        Ok(self.inference_json(&p, &i))
    }

    fn inference_json(&self, p: &Role, i: &Role) -> Value {
        json!({
            "role_inference": {"prior_role": p.brief(self), "implies": i.brief(self)},
            "links": {"self": self.link(&format!("roles/{}/implies/{}", p.id, i.id))},
        })
    }

    /// One inference rule, or 404.
    pub async fn get_implied_role(&self, prior: &str, implied: &str) -> Result<Value> {
        let p = self.role(prior).await?;
        let i = self.role(implied).await?;
        let rules = self.implication_rules().await?;
        if !rules.get(&p.id).is_some_and(|s| s.contains(&i.id)) {
            return Err(IdentityError::not_found("implied role", format!("{prior} implies {implied}")));
        }
        Ok(self.inference_json(&p, &i))
    }

    /// Deletes one inference rule, or 404.
    pub async fn delete_implied_role(&self, prior: &str, implied: &str) -> Result<()> {
        self.get_implied_role(prior, implied).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM identity_implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2")
            .bind(prior)
            .bind(implied)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The roles a prior role directly implies (`GET /v3/roles/{id}/implies`).
    pub async fn list_implied_roles(&self, prior: &str) -> Result<Value> {
        let p = self.role(prior).await?;
        let rules = self.implication_rules().await?;
        let mut implies = vec![];
        for id in rules.get(&p.id).into_iter().flatten() {
            if let Some(i) = self.get_role(id).await? {
                implies.push(i.brief(self));
            }
        }
        Ok(json!({
            "role_inference": {"prior_role": p.brief(self), "implies": implies},
            "links": {"self": self.link(&format!("roles/{}/implies", p.id))},
        }))
    }

    /// Every inference rule grouped by prior role (`GET /v3/role_inferences`).
    pub async fn list_role_inferences(&self) -> Result<Value> {
        let rules = self.implication_rules().await?;
        let mut out = vec![];
        for (prior, implied) in &rules {
            let Some(p) = self.get_role(prior).await? else {
                continue;
            };
            let mut implies = vec![];
            for id in implied {
                if let Some(i) = self.get_role(id).await? {
                    implies.push(i.brief(self));
                }
            }
            out.push(json!({"prior_role": p.brief(self), "implies": implies}));
        }
        Ok(json!({
            "role_inferences": out,
            "links": {"self": self.link("role_inferences")},
        }))
    }
}
