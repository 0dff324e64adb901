//! Quota limits and usage counters.
//!
//! Usage is a counter per (project, resource) changed in the same
//! transaction as the resource itself. Taking one unit is a single
//! conditional UPDATE, so two concurrent creates can never both take the
//! last unit: the quota holds exactly, on every server.

use sqlx::Row;

use crate::tx::Tx;
use crate::{Result, Store, Table};

impl Tx {
    /// Makes sure the usage counter of (project, resource) exists, starting
    /// from the number of the project's rows in `table` (the counter is only
    /// kept while the limit is finite). Does not lock an existing counter.
    pub async fn usage_init(&mut self, project: &str, resource: &str, table: &Table) -> Result<()> {
        let sql = format!(
            "INSERT INTO quota_usages (project_id, resource, in_use) SELECT $1, $2, (SELECT COUNT(*) FROM {} WHERE project_id = $1) WHERE NOT EXISTS (SELECT 1 FROM quota_usages WHERE project_id = $1 AND resource = $2) ON CONFLICT DO NOTHING",
            table.name
        );
        sqlx::query(&sql).bind(project).bind(resource).execute(&mut *self.inner).await?;
        Ok(())
    }

    /// Takes `n` units of `resource` for `project` if that stays within
    /// `limit`. Returns `false` when over quota. One conditional UPDATE: two
    /// concurrent creates can never both take the last unit. Call
    /// [`Tx::usage_init`] first, and this as late as possible in the
    /// transaction (the counter row stays locked until commit).
    pub async fn usage_take(&mut self, project: &str, resource: &str, n: i64, limit: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE quota_usages SET in_use = in_use + $3 WHERE project_id = $1 AND resource = $2 AND in_use + $3 <= $4",
        )
        .bind(project)
        .bind(resource)
        .bind(n)
        .bind(limit)
        .execute(&mut *self.inner)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets a usage counter (when a limit becomes finite: recount).
    pub async fn usage_set(&mut self, project: &str, resource: &str, in_use: i64) -> Result<()> {
        sqlx::query("DELETE FROM quota_usages WHERE project_id = $1 AND resource = $2")
            .bind(project)
            .bind(resource)
            .execute(&mut *self.inner)
            .await?;
        sqlx::query("INSERT INTO quota_usages (project_id, resource, in_use) VALUES ($1, $2, $3)")
            .bind(project)
            .bind(resource)
            .bind(in_use)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Gives back `n` units of a resource whose row this transaction has
    /// already deleted from `table`. A missing counter is created from the
    /// rows left (which no longer include this one) instead: a concurrent
    /// first create then waits for this counter rather than counting a row
    /// that is being deleted, so no unit is lost.
    pub async fn usage_release_counted(&mut self, project: &str, resource: &str, table: &Table, n: i64) -> Result<()> {
        let sql = format!(
            "INSERT INTO quota_usages (project_id, resource, in_use) SELECT $1, $2, (SELECT COUNT(*) FROM {} WHERE project_id = $1) WHERE NOT EXISTS (SELECT 1 FROM quota_usages WHERE project_id = $1 AND resource = $2) ON CONFLICT DO NOTHING",
            table.name
        );
        let r = sqlx::query(&sql).bind(project).bind(resource).execute(&mut *self.inner).await?;
        if r.rows_affected() == 1 {
            return Ok(());
        }
        self.usage_release(project, resource, n).await
    }

    /// Gives back `n` units.
    pub async fn usage_release(&mut self, project: &str, resource: &str, n: i64) -> Result<()> {
        sqlx::query(
            "UPDATE quota_usages SET in_use = CASE WHEN in_use >= $3 THEN in_use - $3 ELSE 0 END WHERE project_id = $1 AND resource = $2",
        )
        .bind(project)
        .bind(resource)
        .bind(n)
        .execute(&mut *self.inner)
        .await?;
        Ok(())
    }

    /// The configured limit of a project for a resource, if one was set.
    pub async fn quota_limit(&mut self, project: &str, resource: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT hard_limit FROM quota_limits WHERE project_id = $1 AND resource = $2")
            .bind(project)
            .bind(resource)
            .fetch_optional(&mut *self.inner)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<i64, _>("hard_limit")?),
            None => None,
        })
    }

    /// Sets a project's limit for a resource.
    pub async fn quota_set(&mut self, project: &str, resource: &str, limit: i64) -> Result<()> {
        sqlx::query("DELETE FROM quota_limits WHERE project_id = $1 AND resource = $2")
            .bind(project)
            .bind(resource)
            .execute(&mut *self.inner)
            .await?;
        sqlx::query("INSERT INTO quota_limits (project_id, resource, hard_limit) VALUES ($1, $2, $3)")
            .bind(project)
            .bind(resource)
            .bind(limit)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Removes a project's limits (back to the defaults).
    pub async fn quota_reset(&mut self, project: &str) -> Result<()> {
        sqlx::query("DELETE FROM quota_limits WHERE project_id = $1").bind(project).execute(&mut *self.inner).await?;
        Ok(())
    }
}

impl Store {
    /// A project's explicitly set limits.
    pub async fn quota_limits(&self, project: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT resource, hard_limit FROM quota_limits WHERE project_id = $1")
            .bind(project)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("resource")?, r.try_get("hard_limit")?))).collect()
    }

    /// Projects that have explicitly set limits.
    pub async fn quota_projects(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT project_id FROM quota_limits ORDER BY project_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("project_id")?)).collect()
    }

    /// A project's usage counters.
    pub async fn quota_usages(&self, project: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT resource, in_use FROM quota_usages WHERE project_id = $1")
            .bind(project)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("resource")?, r.try_get("in_use")?))).collect()
    }
}

impl Tx {
    /// The id of a project's default security group.
    pub async fn default_security_group(&mut self, project: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT security_group_id FROM default_security_groups WHERE project_id = $1")
            .bind(project)
            .fetch_optional(&mut *self.inner)
            .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("security_group_id")?),
            None => None,
        })
    }

    /// Registers `sg` as the project's default group; `false` if it has one.
    pub async fn claim_default_security_group(&mut self, project: &str, sg: &str) -> Result<bool> {
        let r = sqlx::query("INSERT INTO default_security_groups (project_id, security_group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(project)
            .bind(sg)
            .execute(&mut *self.inner)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets the project's default group (it was deleted).
    pub async fn release_default_security_group(&mut self, project: &str) -> Result<()> {
        sqlx::query("DELETE FROM default_security_groups WHERE project_id = $1")
            .bind(project)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}
