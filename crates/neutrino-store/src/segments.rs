//! Segment allocations: which network holds which (type, physnet, id).
//! The primary key makes a double allocation impossible, also for ids given
//! explicitly outside the configured tenant ranges.

use sqlx::Row;

use crate::tx::Tx;
use crate::{Result, Store};

impl Tx {
    /// Records that `network` holds the segment; `false` if it is taken.
    pub async fn segment_claim(&mut self, network_type: &str, physnet: &str, id: i64, network: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO segment_allocations (network_type, physical_network, segmentation_id, network_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(network_type)
        .bind(physnet)
        .bind(id)
        .bind(network)
        .execute(&mut *self.inner)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Frees a segment.
    pub async fn segment_unclaim(&mut self, network_type: &str, physnet: &str, id: i64) -> Result<()> {
        sqlx::query("DELETE FROM segment_allocations WHERE network_type = $1 AND physical_network = $2 AND segmentation_id = $3")
            .bind(network_type)
            .bind(physnet)
            .bind(id)
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// The ids held of a (type, physnet).
    pub async fn segment_claimed(&mut self, network_type: &str, physnet: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT segmentation_id FROM segment_allocations WHERE network_type = $1 AND physical_network = $2",
        )
        .bind(network_type)
        .bind(physnet)
        .fetch_all(&mut *self.inner)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("segmentation_id")?)).collect()
    }
}

impl Store {
    /// Every segment allocation: (type, physnet, id, network).
    pub async fn segment_allocations(&self) -> Result<Vec<(String, String, i64, String)>> {
        let rows =
            sqlx::query("SELECT network_type, physical_network, segmentation_id, network_id FROM segment_allocations")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("network_type")?,
                    r.try_get("physical_network")?,
                    r.try_get("segmentation_id")?,
                    r.try_get("network_id")?,
                ))
            })
            .collect()
    }
}
