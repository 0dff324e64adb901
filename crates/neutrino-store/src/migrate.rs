//! Applying migrations, once, also when several servers start together.

use sqlx::Row;

use crate::schema::{Migration, MIGRATIONS};
use crate::store::{Backend, Store};
use crate::{Result, StoreError};

const ADVISORY_LOCK_KEY: i64 = 0x6e65_7574_7269_6e6f; // "neutrino"

impl Store {
    /// Applies the network schema's pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        self.apply_migrations("network", MIGRATIONS).await
    }

    /// Applies a component's pending migrations (components with tables of
    /// their own, such as identity, call this with their list).
    pub async fn apply_migrations(&self, component: &str, migrations: &[Migration]) -> Result<()> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            // Serialize concurrent starts of several servers.
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(ADVISORY_LOCK_KEY).execute(tx.conn()).await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS neutrino_migrations (component TEXT NOT NULL, version BIGINT NOT NULL, description TEXT NOT NULL, PRIMARY KEY (component, version))",
        )
        .execute(tx.conn())
        .await?;
        let rows = sqlx::query("SELECT version FROM neutrino_migrations WHERE component = $1")
            .bind(component)
            .fetch_all(tx.conn())
            .await?;
        let done: Vec<i64> =
            rows.iter().map(|r| r.try_get::<i64, _>("version")).collect::<std::result::Result<_, _>>()?;
        for m in migrations.iter().filter(|m| !done.contains(&m.version)) {
            tracing::info!(component, version = m.version, description = m.description, "applying migration");
            for stmt in (m.statements)(self.backend) {
                sqlx::query(&stmt).execute(tx.conn()).await.map_err(|source| StoreError::Migration {
                    component: component.to_string(),
                    version: m.version,
                    source,
                })?;
            }
            sqlx::query("INSERT INTO neutrino_migrations (component, version, description) VALUES ($1, $2, $3)")
                .bind(component)
                .bind(m.version)
                .bind(m.description)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await
    }

    /// The applied versions of a component.
    pub async fn applied_migrations(&self, component: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT version FROM neutrino_migrations WHERE component = $1 ORDER BY version")
            .bind(component)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>("version")?)).collect()
    }
}
