//! Role assignments: a user holds a role on a project, on a domain, or on the
//! system. Tokens get the assigned roles plus everything they imply.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::db::text;
use crate::domains::Domain;
use crate::projects::Project;
use crate::roles::Role;
use crate::{IdentityError, IdentityService, Result};

/// What a role is held on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A project, by id.
    Project(String),
    /// A domain, by id.
    Domain(String),
    /// The whole deployment (`{"system": {"all": true}}`).
    System,
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Project(_) => "UserProject",
            Target::Domain(_) => "UserDomain",
            Target::System => "UserSystem",
        }
    }

    fn id(&self) -> &str {
        match self {
            Target::Project(id) | Target::Domain(id) => id,
            Target::System => "system",
        }
    }

    fn from_row(kind: &str, id: String) -> Option<Target> {
        match kind {
            "UserProject" => Some(Target::Project(id)),
            "UserDomain" => Some(Target::Domain(id)),
            "UserSystem" => Some(Target::System),
            _ => None,
        }
    }

    /// The URL path of an assignment on this target.
    fn assignment_path(&self, user: &str, role: &str) -> String {
        match self {
            Target::Project(p) => format!("projects/{p}/users/{user}/roles/{role}"),
            Target::Domain(d) => format!("domains/{d}/users/{user}/roles/{role}"),
            Target::System => format!("system/users/{user}/roles/{role}"),
        }
    }
}

/// Filters of `GET /v3/role_assignments`.
#[derive(Debug, Clone, Default)]
pub struct AssignmentFilter {
    /// `user.id`.
    pub user_id: Option<String>,
    /// `scope.project.id`.
    pub project_id: Option<String>,
    /// `scope.domain.id`.
    pub domain_id: Option<String>,
    /// `scope.system`.
    pub system: bool,
    /// `role.id`.
    pub role_id: Option<String>,
    /// `effective`: expand implied roles.
    pub effective: bool,
    /// `include_names`: add names to user, role and scope.
    pub include_names: bool,
}

/// One assignment row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    user_id: String,
    target: Target,
    role_id: String,
    /// For an effective assignment of an implied role: the prior role held.
    prior: Option<String>,
}

impl IdentityService {
    async fn check_target(&self, target: &Target) -> Result<()> {
        match target {
            Target::Project(p) => self.project(p).await.map(|_| ()),
            Target::Domain(d) => self.domain(d).await.map(|_| ()),
            Target::System => Ok(()),
        }
    }

    /// Grants a role (idempotent); 404 when the user, target or role is unknown.
    pub async fn grant_role(&self, user_id: &str, target: &Target, role_id: &str) -> Result<()> {
        self.user(user_id).await?;
        self.check_target(target).await?;
        self.role(role_id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO identity_assignments (kind, actor_id, target_id, role_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
            .bind(target.kind())
            .bind(user_id)
            .bind(target.id())
            .bind(role_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        tracing::info!(user_id, target = ?target, role_id, "granted role");
        Ok(())
    }

    /// Is the role directly assigned?
    pub async fn has_assignment(&self, user_id: &str, target: &Target, role_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT role_id FROM identity_assignments WHERE kind = $1 AND actor_id = $2 AND target_id = $3 AND role_id = $4")
            .bind(target.kind())
            .bind(user_id)
            .bind(target.id())
            .bind(role_id)
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Checks an assignment: 404 unless the user, target, role and the
    /// assignment all exist.
    pub async fn check_assignment(&self, user_id: &str, target: &Target, role_id: &str) -> Result<()> {
        self.user(user_id).await?;
        self.check_target(target).await?;
        self.role(role_id).await?;
        if !self.has_assignment(user_id, target, role_id).await? {
            return Err(IdentityError::not_found("role assignment", format!("role {role_id} for user {user_id}")));
        }
        Ok(())
    }

    /// Removes an assignment (404 when absent). Tokens on that target lose
    /// the role at their next validation (roles are computed then).
    pub async fn revoke_role(&self, user_id: &str, target: &Target, role_id: &str) -> Result<()> {
        self.check_assignment(user_id, target, role_id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM identity_assignments WHERE kind = $1 AND actor_id = $2 AND target_id = $3 AND role_id = $4",
        )
        .bind(target.kind())
        .bind(user_id)
        .bind(target.id())
        .bind(role_id)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        tracing::info!(user_id, target = ?target, role_id, "revoked role");
        Ok(())
    }

    async fn direct_role_ids(&self, user_id: &str, target: &Target) -> Result<BTreeSet<String>> {
        let rows = sqlx::query(
            "SELECT role_id FROM identity_assignments WHERE kind = $1 AND actor_id = $2 AND target_id = $3",
        )
        .bind(target.kind())
        .bind(user_id)
        .bind(target.id())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(|r| text(r, "role_id")).collect()
    }

    async fn roles_by_ids(&self, ids: &BTreeSet<String>) -> Result<Vec<Role>> {
        let mut out = vec![];
        for id in ids {
            if let Some(r) = self.get_role(id).await? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The roles directly assigned to a user on a target.
    pub async fn direct_roles(&self, user_id: &str, target: &Target) -> Result<Vec<Role>> {
        let ids = self.direct_role_ids(user_id, target).await?;
        self.roles_by_ids(&ids).await
    }

    /// The roles a user holds on a target: the assigned ones and all they
    /// imply (domain-specific roles are not carried into tokens).
    pub async fn effective_roles(&self, user_id: &str, target: &Target) -> Result<Vec<Role>> {
        let direct = self.direct_role_ids(user_id, target).await?;
        if direct.is_empty() {
            return Ok(vec![]);
        }
        let ids = self.expand_implied(&direct).await?;
        Ok(self.roles_by_ids(&ids).await?.into_iter().filter(|r| r.domain_id.is_empty()).collect())
    }

    async fn targets_of(&self, user_id: &str, kind: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT target_id FROM identity_assignments WHERE kind = $1 AND actor_id = $2")
            .bind(kind)
            .bind(user_id)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(|r| text(r, "target_id")).collect()
    }

    /// Enabled projects on which the user holds a role.
    pub async fn user_projects(&self, user_id: &str) -> Result<Vec<Project>> {
        let mut out = vec![];
        for id in self.targets_of(user_id, "UserProject").await? {
            if let Some(p) = self.get_project(&id).await? {
                if p.enabled {
                    out.push(p);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Enabled domains on which the user holds a role.
    pub async fn user_domains(&self, user_id: &str) -> Result<Vec<Domain>> {
        let mut out = vec![];
        for id in self.targets_of(user_id, "UserDomain").await? {
            if let Some(d) = self.get_domain(&id).await? {
                if d.enabled {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Does the user hold any role on the system?
    pub async fn user_has_system_roles(&self, user_id: &str) -> Result<bool> {
        Ok(!self.targets_of(user_id, "UserSystem").await?.is_empty())
    }

    /// `GET /v3/role_assignments`: the assignments matching the filter, as
    /// Keystone renders them.
    pub async fn list_role_assignments(&self, f: &AssignmentFilter) -> Result<Vec<Value>> {
        let rows = sqlx::query("SELECT kind, actor_id, target_id, role_id FROM identity_assignments")
            .fetch_all(self.store.pool())
            .await?;
        let mut direct = vec![];
        for r in &rows {
            let Some(target) = Target::from_row(&text(r, "kind")?, text(r, "target_id")?) else {
                continue;
            };
            let user_id = text(r, "actor_id")?;
            let scope_ok = match &target {
                Target::Project(p) => {
                    f.project_id.as_ref().is_none_or(|x| x == p) && f.domain_id.is_none() && !f.system
                }
                Target::Domain(d) => f.domain_id.as_ref().is_none_or(|x| x == d) && f.project_id.is_none() && !f.system,
                Target::System => f.project_id.is_none() && f.domain_id.is_none(),
            };
            if !scope_ok || f.user_id.as_ref().is_some_and(|u| *u != user_id) {
                continue;
            }
            direct.push(Row { user_id, target, role_id: text(r, "role_id")?, prior: None });
        }
        let mut all = BTreeSet::new();
        let rules = if f.effective { self.implication_rules().await? } else { BTreeMap::new() };
        for row in direct {
            if f.effective {
                let mut seen = BTreeSet::from([row.role_id.clone()]);
                let mut todo = vec![row.role_id.clone()];
                while let Some(r) = todo.pop() {
                    for implied in rules.get(&r).into_iter().flatten() {
                        if seen.insert(implied.clone()) {
                            todo.push(implied.clone());
                            all.insert(Row {
                                role_id: implied.clone(),
                                prior: Some(row.role_id.clone()),
                                ..row.clone()
                            });
                        }
                    }
                }
            }
            all.insert(row);
        }
        let mut out = vec![];
        for row in all {
            if f.role_id.as_ref().is_some_and(|r| *r != row.role_id) {
                continue;
            }
            out.push(self.render_assignment(&row, f.include_names).await?);
        }
        Ok(out)
    }

    async fn render_assignment(&self, row: &Row, names: bool) -> Result<Value> {
        let assigned_role = row.prior.as_deref().unwrap_or(&row.role_id);
        let mut links = json!({"assignment": self.link(&row.target.assignment_path(&row.user_id, assigned_role))});
        if let Some(prior) = &row.prior {
            links["prior_role"] = json!(self.link(&format!("roles/{prior}")));
        }
        let mut role = json!({"id": row.role_id});
        let mut user = json!({"id": row.user_id});
        let mut scope = match &row.target {
            Target::Project(p) => json!({"project": {"id": p}}),
            Target::Domain(d) => json!({"domain": {"id": d}}),
            Target::System => json!({"system": {"all": true}}),
        };
        if names {
            if let Some(r) = self.get_role(&row.role_id).await? {
                role["name"] = json!(r.name);
            }
            if let Some(u) = self.get_user(&row.user_id).await? {
                user["name"] = json!(u.name);
                user["domain"] = self.domain_ref(&u.domain_id).await?;
            }
            match &row.target {
                Target::Project(p) => {
                    if let Some(p) = self.get_project(p).await? {
                        scope["project"]["name"] = json!(p.name);
                        scope["project"]["domain"] = self.domain_ref(&p.domain_id).await?;
                    }
                }
                Target::Domain(d) => {
                    if let Some(d) = self.get_domain(d).await? {
                        scope["domain"]["name"] = json!(d.name);
                    }
                }
                Target::System => {}
            }
        }
        Ok(json!({"role": role, "user": user, "scope": scope, "links": links}))
    }

    /// `{"id", "name"}` of a domain (name empty if it vanished).
    pub(crate) async fn domain_ref(&self, id: &str) -> Result<Value> {
        let name = self.get_domain(id).await?.map(|d| d.name).unwrap_or_default();
        Ok(json!({"id": id, "name": name}))
    }
}
