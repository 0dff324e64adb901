//! Range pools: sets of free integers kept as disjoint ranges, for IP
//! addresses (IPAM) and segmentation ids (ML2 type drivers).
//!
//! Each pool has a lock row; every operation locks it first, so concurrent
//! allocations from one pool queue on the database (across all servers on
//! PostgreSQL) and are correct by construction: no retries, no duplicates.
//! Taking the lowest free value reads one range row through the primary-key
//! index, so the cost does not depend on the size of the pool.

use sqlx::Row;

use crate::tx::Tx;
use crate::Result;

/// Encodes a value as a fixed-width key whose text order is numeric order.
pub fn key(v: u128) -> String {
    format!("{v:032x}")
}

fn unkey(s: &str) -> u128 {
    u128::from_str_radix(s, 16).unwrap_or(0)
}

/// Merges overlapping or adjacent ranges; returns them sorted.
pub fn normalize(mut ranges: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    ranges.retain(|(a, b)| a <= b);
    ranges.sort();
    let mut out: Vec<(u128, u128)> = vec![];
    for (a, b) in ranges {
        if let Some(last) = out.last_mut() {
            if a <= last.1.saturating_add(1) {
                last.1 = last.1.max(b);
                continue;
            }
        }
        out.push((a, b));
    }
    out
}

impl Tx {
    /// Creates (or replaces) a pool holding exactly `ranges` as free values.
    pub async fn pool_create(&mut self, pool: &str, ranges: &[(u128, u128)]) -> Result<()> {
        sqlx::query("INSERT INTO range_pools (pool_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(pool)
            .execute(&mut *self.inner)
            .await?;
        self.pool_lock(pool).await?;
        sqlx::query("DELETE FROM pool_ranges WHERE pool_id = $1").bind(pool).execute(&mut *self.inner).await?;
        for (a, b) in normalize(ranges.to_vec()) {
            self.insert_range(pool, a, b).await?;
        }
        Ok(())
    }

    /// Locks a pool until commit; `false` if it does not exist.
    pub async fn pool_lock(&mut self, pool: &str) -> Result<bool> {
        let sql = format!("SELECT pool_id FROM range_pools WHERE pool_id = $1{}", self.for_update());
        Ok(sqlx::query(&sql).bind(pool).fetch_optional(&mut *self.inner).await?.is_some())
    }

    /// Does the pool exist?
    pub async fn pool_exists(&mut self, pool: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT pool_id FROM range_pools WHERE pool_id = $1")
            .bind(pool)
            .fetch_optional(&mut *self.inner)
            .await?
            .is_some())
    }

    /// Removes a pool and its ranges.
    pub async fn pool_drop(&mut self, pool: &str) -> Result<()> {
        sqlx::query("DELETE FROM pool_ranges WHERE pool_id = $1").bind(pool).execute(&mut *self.inner).await?;
        sqlx::query("DELETE FROM range_pools WHERE pool_id = $1").bind(pool).execute(&mut *self.inner).await?;
        Ok(())
    }

    /// Takes the lowest free value, or `None` when the pool is exhausted.
    pub async fn pool_take_first(&mut self, pool: &str) -> Result<Option<u128>> {
        if !self.pool_lock(pool).await? {
            return Ok(None);
        }
        let row = sqlx::query("SELECT first, last FROM pool_ranges WHERE pool_id = $1 ORDER BY first LIMIT 1")
            .bind(pool)
            .fetch_optional(&mut *self.inner)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let first = unkey(&row.try_get::<String, _>("first")?);
        let last = unkey(&row.try_get::<String, _>("last")?);
        self.delete_range(pool, first).await?;
        if first < last {
            self.insert_range(pool, first + 1, last).await?;
        }
        Ok(Some(first))
    }

    /// Takes a specific value; `false` if it is not free.
    pub async fn pool_take(&mut self, pool: &str, v: u128) -> Result<bool> {
        if !self.pool_lock(pool).await? {
            return Ok(false);
        }
        let Some((first, last)) = self.range_at_or_below(pool, v).await? else {
            return Ok(false);
        };
        if last < v {
            return Ok(false);
        }
        self.delete_range(pool, first).await?;
        if first < v {
            self.insert_range(pool, first, v - 1).await?;
        }
        if v < last {
            self.insert_range(pool, v + 1, last).await?;
        }
        Ok(true)
    }

    /// Returns a value to the pool (merging with neighbouring ranges). A value
    /// that is already free is left as it is.
    pub async fn pool_release(&mut self, pool: &str, v: u128) -> Result<()> {
        if !self.pool_lock(pool).await? {
            return Ok(());
        }
        let mut start = v;
        let mut end = v;
        if let Some((first, last)) = self.range_at_or_below(pool, v).await? {
            if last >= v {
                return Ok(());
            }
            if v > 0 && last == v - 1 {
                self.delete_range(pool, first).await?;
                start = first;
            }
        }
        if v < u128::MAX {
            let right = sqlx::query("SELECT last FROM pool_ranges WHERE pool_id = $1 AND first = $2")
                .bind(pool)
                .bind(key(v + 1))
                .fetch_optional(&mut *self.inner)
                .await?;
            if let Some(row) = right {
                end = unkey(&row.try_get::<String, _>("last")?);
                self.delete_range(pool, v + 1).await?;
            }
        }
        self.insert_range(pool, start, end).await
    }

    /// Is `v` free in the pool?
    pub async fn pool_is_free(&mut self, pool: &str, v: u128) -> Result<bool> {
        Ok(matches!(self.range_at_or_below(pool, v).await?, Some((_, last)) if last >= v))
    }

    /// The free ranges of a pool, in order.
    pub async fn pool_ranges(&mut self, pool: &str) -> Result<Vec<(u128, u128)>> {
        let rows = sqlx::query("SELECT first, last FROM pool_ranges WHERE pool_id = $1 ORDER BY first")
            .bind(pool)
            .fetch_all(&mut *self.inner)
            .await?;
        rows.iter()
            .map(|r| Ok((unkey(&r.try_get::<String, _>("first")?), unkey(&r.try_get::<String, _>("last")?))))
            .collect()
    }

    async fn range_at_or_below(&mut self, pool: &str, v: u128) -> Result<Option<(u128, u128)>> {
        let row = sqlx::query(
            "SELECT first, last FROM pool_ranges WHERE pool_id = $1 AND first <= $2 ORDER BY first DESC LIMIT 1",
        )
        .bind(pool)
        .bind(key(v))
        .fetch_optional(&mut *self.inner)
        .await?;
        match row {
            Some(r) => Ok(Some((unkey(&r.try_get::<String, _>("first")?), unkey(&r.try_get::<String, _>("last")?)))),
            None => Ok(None),
        }
    }

    async fn delete_range(&mut self, pool: &str, first: u128) -> Result<()> {
        sqlx::query("DELETE FROM pool_ranges WHERE pool_id = $1 AND first = $2")
            .bind(pool)
            .bind(key(first))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    async fn insert_range(&mut self, pool: &str, first: u128, last: u128) -> Result<()> {
        sqlx::query("INSERT INTO pool_ranges (pool_id, first, last) VALUES ($1, $2, $3)")
            .bind(pool)
            .bind(key(first))
            .bind(key(last))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalize_merges_adjacent_and_overlapping() {
        assert_eq!(normalize(vec![(5, 9), (1, 3), (4, 4), (20, 30), (25, 40)]), vec![(1, 9), (20, 40)]);
        assert_eq!(normalize(vec![(3, 1)]), vec![]);
    }
}
