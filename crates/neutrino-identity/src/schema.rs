//! The identity tables (component `identity` in `neutrino_migrations`).
//!
//! Only TEXT and BIGINT columns, so the same statements run on SQLite and
//! PostgreSQL through sqlx's `Any` driver; booleans are 0/1. Append-only: a
//! released migration is never edited.

use neutrino_store::schema::Migration;
use neutrino_store::Backend;

fn v1(_: Backend) -> Vec<String> {
    [
        "CREATE TABLE IF NOT EXISTS identity_domains (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL, enabled BIGINT NOT NULL, extra TEXT NOT NULL, created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS identity_projects (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL, parent_id TEXT NOT NULL, description TEXT NOT NULL, enabled BIGINT NOT NULL, extra TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (domain_id, name))",
        "CREATE TABLE IF NOT EXISTS identity_users (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL, enabled BIGINT NOT NULL, password_hash TEXT NOT NULL, default_project_id TEXT NOT NULL, extra TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (domain_id, name))",
        "CREATE TABLE IF NOT EXISTS identity_roles (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL, description TEXT NOT NULL, extra TEXT NOT NULL, UNIQUE (domain_id, name))",
        "CREATE TABLE IF NOT EXISTS identity_implied_roles (prior_role_id TEXT NOT NULL, implied_role_id TEXT NOT NULL, PRIMARY KEY (prior_role_id, implied_role_id))",
        "CREATE TABLE IF NOT EXISTS identity_assignments (kind TEXT NOT NULL, actor_id TEXT NOT NULL, target_id TEXT NOT NULL, role_id TEXT NOT NULL, PRIMARY KEY (kind, actor_id, target_id, role_id))",
        "CREATE INDEX IF NOT EXISTS ix_identity_assignments_target ON identity_assignments (target_id)",
        "CREATE INDEX IF NOT EXISTS ix_identity_assignments_role ON identity_assignments (role_id)",
        "CREATE TABLE IF NOT EXISTS identity_regions (id TEXT PRIMARY KEY, description TEXT NOT NULL, parent_region_id TEXT NOT NULL, extra TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS identity_services (id TEXT PRIMARY KEY, service_type TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, enabled BIGINT NOT NULL, extra TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS identity_endpoints (id TEXT PRIMARY KEY, service_id TEXT NOT NULL, interface TEXT NOT NULL, region_id TEXT NOT NULL, url TEXT NOT NULL, enabled BIGINT NOT NULL, extra TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS identity_revocations (id TEXT PRIMARY KEY, audit_id TEXT NOT NULL, user_id TEXT NOT NULL, project_id TEXT NOT NULL, issued_before BIGINT NOT NULL, revoked_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_identity_revocations_audit ON identity_revocations (audit_id)",
        "CREATE INDEX IF NOT EXISTS ix_identity_revocations_user ON identity_revocations (user_id)",
        "CREATE INDEX IF NOT EXISTS ix_identity_revocations_project ON identity_revocations (project_id)",
        "CREATE TABLE IF NOT EXISTS identity_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]
    .map(String::from)
    .to_vec()
}

fn v2(_: Backend) -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS identity_app_creds (id TEXT PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL, project_id TEXT NOT NULL, secret_hash TEXT NOT NULL, description TEXT NOT NULL, expires_at BIGINT NOT NULL, unrestricted BIGINT NOT NULL, roles TEXT NOT NULL, created_at BIGINT NOT NULL, UNIQUE (user_id, name))".to_string(),
    ]
}

/// The identity schema's migrations, in order (applied by [`crate::IdentityService::new`]).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "identity: domains, projects, users, roles, assignments, catalog, revocations",
        statements: v1,
    },
    Migration { version: 2, description: "identity: application credentials", statements: v2 },
];
