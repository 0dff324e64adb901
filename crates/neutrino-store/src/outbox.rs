//! The southbound outbox: the notifications of a change are rows written in
//! the change's own transaction, so they exist exactly when the change does.
//! After commit the writer delivers them and deletes the rows. Each row
//! carries a lease: a row whose lease ran out (its server died between
//! commit and delivery, or could not reach the bus) is claimed and
//! delivered by whichever server sweeps first. Delivery is at least once;
//! agents treat notifications as "something changed, look again".

use sqlx::Row;

use crate::store::{Backend, Store};
use crate::tx::Tx;
use crate::Result;

/// How long the writer of a row has to deliver it before others may.
pub const LEASE_MICROS: i64 = 5_000_000;

/// One pending notification.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id.
    pub id: String,
    /// The notification, as the plugin serialized it.
    pub body: String,
}

impl Tx {
    /// Records notifications to deliver once this transaction commits.
    pub async fn outbox_put(&mut self, rows: &[OutboxRow]) -> Result<()> {
        let lease = neutrino_lib::time::now_micros() + LEASE_MICROS;
        for r in rows {
            let seq = self.store.next_seq();
            sqlx::query("INSERT INTO southbound_outbox (id, seq, lease_until, body) VALUES ($1, $2, $3, $4)")
                .bind(&r.id)
                .bind(seq)
                .bind(lease)
                .bind(&r.body)
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
    }
}

impl Store {
    /// Delivered: the rows go.
    pub async fn outbox_done(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for chunk in ids.chunks(200) {
            let ph: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("DELETE FROM southbound_outbox WHERE id IN ({})", ph.join(", "));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await
    }

    /// Claims up to `limit` rows whose lease ran out, oldest first, taking a
    /// new lease on them (other servers sweeping at the same time skip them).
    pub async fn outbox_claim(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let now = neutrino_lib::time::now_micros();
        // The common case, nothing to claim, costs one indexed read and no write lock.
        let due = sqlx::query("SELECT id FROM southbound_outbox WHERE lease_until < $1 LIMIT 1")
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        if due.is_none() {
            return Ok(vec![]);
        }
        let mut tx = self.begin().await?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let rows = sqlx::query(&format!(
            "SELECT id, body FROM southbound_outbox WHERE lease_until < $1 ORDER BY seq LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
        let mut out = vec![];
        for r in rows {
            let id: String = r.try_get("id")?;
            sqlx::query("UPDATE southbound_outbox SET lease_until = $1 WHERE id = $2")
                .bind(now + LEASE_MICROS)
                .bind(&id)
                .execute(tx.conn())
                .await?;
            out.push(OutboxRow { id, body: r.try_get("body")? });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// How many notifications are waiting (for health and tests).
    pub async fn outbox_pending(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM southbound_outbox").fetch_one(&self.pool).await?;
        Ok(r.try_get::<i64, _>("n")?)
    }
}
