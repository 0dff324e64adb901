//! Token revocation events.
//!
//! Fernet tokens are not stored, so revoking one means recording an event
//! that matches it: by audit id (`DELETE /v3/auth/tokens`), by user
//! (password change, user disabled or deleted) or by project (project
//! disabled or deleted). An event matches tokens issued at or before its
//! `issued_before` time (microseconds). Events older than the token lifetime
//! can match no live token and are pruned when new events are written.

use crate::service::WriteTx;
use sqlx::Row;

use crate::db;
use crate::{IdentityService, Result};

/// One revocation event; an empty field matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEvent {
    /// Revokes tokens carrying this audit id (in their audit chain).
    pub audit_id: String,
    /// Revokes tokens of this user.
    pub user_id: String,
    /// Revokes tokens scoped to this project.
    pub project_id: String,
    /// Tokens issued at or before this time (µs since the epoch) match.
    pub issued_before: i64,
}

impl RevocationEvent {
    fn blank() -> Self {
        RevocationEvent {
            audit_id: String::new(),
            user_id: String::new(),
            project_id: String::new(),
            issued_before: db::now_micros(),
        }
    }

    /// Revokes one token (and the tokens rescoped from it).
    pub fn audit(audit_id: &str) -> Self {
        RevocationEvent { audit_id: audit_id.into(), ..Self::blank() }
    }

    /// Revokes every token a user holds now.
    pub fn user(user_id: &str) -> Self {
        RevocationEvent { user_id: user_id.into(), ..Self::blank() }
    }

    /// Revokes every token scoped to a project now.
    pub fn project(project_id: &str) -> Self {
        RevocationEvent { project_id: project_id.into(), ..Self::blank() }
    }

    fn matches(&self, audit_ids: &[String], user_id: &str, project_id: Option<&str>) -> bool {
        (self.audit_id.is_empty() || audit_ids.contains(&self.audit_id))
            && (self.user_id.is_empty() || self.user_id == user_id)
            && (self.project_id.is_empty() || Some(self.project_id.as_str()) == project_id)
            && !(self.audit_id.is_empty() && self.user_id.is_empty() && self.project_id.is_empty())
    }
}

impl IdentityService {
    /// Records an event inside a write transaction, pruning expired ones.
    pub(crate) async fn record_revocation(&self, tx: &mut WriteTx, ev: &RevocationEvent) -> Result<()> {
        sqlx::query("INSERT INTO identity_revocations (id, audit_id, user_id, project_id, issued_before, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(db::new_id())
            .bind(&ev.audit_id)
            .bind(&ev.user_id)
            .bind(&ev.project_id)
            .bind(ev.issued_before)
            .bind(db::now_micros())
            .execute(tx.conn())
            .await?;
        sqlx::query("DELETE FROM identity_revocations WHERE issued_before < $1")
            .bind(self.prune_horizon())
            .execute(tx.conn())
            .await?;
        Ok(())
    }

    /// Records one event in its own transaction.
    pub async fn revoke(&self, ev: &RevocationEvent) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.record_revocation(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events issued before this time (µs) can match no unexpired token.
    fn prune_horizon(&self) -> i64 {
        let lifetime = self.options.token_expiration.as_micros() as i64;
        db::now_micros() - lifetime - 60_000_000
    }

    /// Deletes events that can no longer match any token; returns how many.
    pub async fn prune_revocations(&self) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM identity_revocations WHERE issued_before < $1")
            .bind(self.prune_horizon())
            .execute(tx.conn())
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Does an event revoke a token with these properties?
    pub(crate) async fn is_revoked(
        &self,
        audit_ids: &[String],
        user_id: &str,
        project_id: Option<&str>,
        issued_at: i64,
    ) -> Result<bool> {
        let first = audit_ids.first().map(String::as_str).unwrap_or("-");
        let second = audit_ids.get(1).map(String::as_str).unwrap_or(first);
        let rows = sqlx::query("SELECT audit_id, user_id, project_id, issued_before FROM identity_revocations WHERE issued_before >= $1 AND (audit_id = $2 OR audit_id = $3 OR user_id = $4 OR project_id = $5)")
            .bind(issued_at)
            .bind(first)
            .bind(second)
            .bind(user_id)
            .bind(project_id.unwrap_or("-"))
            .fetch_all(self.store.pool())
            .await?;
        for r in &rows {
            let ev = RevocationEvent {
                audit_id: r.try_get("audit_id")?,
                user_id: r.try_get("user_id")?,
                project_id: r.try_get("project_id")?,
                issued_before: r.try_get("issued_before")?,
            };
            if ev.matches(audit_ids, user_id, project_id) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_match_what_they_name() {
        let ids = vec!["a1".to_string(), "root".to_string()];
        assert!(RevocationEvent::audit("a1").matches(&ids, "u", Some("p")));
        assert!(RevocationEvent::audit("root").matches(&ids, "u", None));
        assert!(!RevocationEvent::audit("zz").matches(&ids, "u", Some("p")));
        assert!(RevocationEvent::user("u").matches(&ids, "u", Some("p")));
        assert!(!RevocationEvent::user("v").matches(&ids, "u", Some("p")));
        assert!(RevocationEvent::project("p").matches(&ids, "u", Some("p")));
        assert!(!RevocationEvent::project("p").matches(&ids, "u", None));
        assert!(!RevocationEvent::blank().matches(&ids, "u", Some("p")));
    }
}
