//! Range pools: sets of free integers kept as disjoint ranges, for IP
//! addresses (IPAM) and segmentation ids (ML2 type drivers).
//!
//! Correct under concurrency by construction, without retries of failed
//! transactions:
//!
//! * every range row is taken under a row lock, so no value is handed out
//!   twice (on PostgreSQL across all servers; SQLite has one writer);
//! * a new pool's free space is split into several rows, and takers skip
//!   rows locked by others (`FOR UPDATE SKIP LOCKED`), so concurrent
//!   allocations from one pool proceed in parallel instead of queueing on
//!   one lock until each commits; when every row is busy a taker waits for
//!   one;
//! * taking the lowest free value reads one row through the primary-key
//!   index, so the cost does not depend on the size of the pool;
//! * replacing a pool's ranges takes the pool row exclusively, while takers
//!   hold it shared.

use sqlx::Row;

use crate::store::Backend;
use crate::tx::Tx;
use crate::Result;

/// How many rows a new pool's free space is split into, at most (beyond
/// the number of given ranges).
const CHUNKS: u128 = 16;

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

/// Splits ranges into at most about [`CHUNKS`] pieces of similar size.
pub fn chunk(ranges: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let total: u128 = ranges.iter().map(|(a, b)| (b - a).saturating_add(1)).fold(0, |s, n| s.saturating_add(n));
    let size = total.div_ceil(CHUNKS).max(1);
    let mut out = vec![];
    for &(a, b) in ranges {
        let mut start = a;
        loop {
            let end = start.saturating_add(size - 1).min(b);
            out.push((start, end));
            if end >= b {
                break;
            }
            start = end + 1;
        }
    }
    out
}

/// The advisory lock key of a pool (a stable 64-bit hash of its id;
/// a collision only makes two pools share a guard).
fn guard_key(pool: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in pool.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

fn row_range(r: &sqlx::any::AnyRow) -> Result<(u128, u128)> {
    Ok((unkey(&r.try_get::<String, _>("first")?), unkey(&r.try_get::<String, _>("last")?)))
}

impl Tx {
    fn pg(&self) -> bool {
        self.store.backend == Backend::Postgres
    }

    /// Creates (or replaces) a pool holding exactly `ranges` as free values.
    pub async fn pool_create(&mut self, pool: &str, ranges: &[(u128, u128)]) -> Result<()> {
        sqlx::query("INSERT INTO range_pools (pool_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(pool)
            .execute(&mut *self.inner)
            .await?;
        self.pool_lock(pool).await?;
        if self.pg() {
            sqlx::query("SELECT first FROM pool_ranges WHERE pool_id = $1 FOR UPDATE")
                .bind(pool)
                .fetch_all(&mut *self.inner)
                .await?;
        }
        sqlx::query("DELETE FROM pool_ranges WHERE pool_id = $1").bind(pool).execute(&mut *self.inner).await?;
        for (a, b) in chunk(&normalize(ranges.to_vec())) {
            self.insert_range(pool, a, b).await?;
        }
        Ok(())
    }

    /// Locks a pool exclusively until commit (replacing its ranges); `false`
    /// if it does not exist. On PostgreSQL the guard is a transaction-level
    /// advisory lock: shared by takers and releasers, exclusive here; it
    /// lives in shared memory, so holding it writes nothing.
    pub async fn pool_lock(&mut self, pool: &str) -> Result<bool> {
        if self.pg() {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(guard_key(pool)).execute(&mut *self.inner).await?;
        }
        self.pool_exists(pool).await
    }

    /// Holds a pool's guard shared (takers and releasers).
    async fn pool_share(&mut self, pool: &str) -> Result<()> {
        if self.pg() {
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(guard_key(pool))
                .execute(&mut *self.inner)
                .await?;
        }
        Ok(())
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
        self.pool_lock(pool).await?;
        sqlx::query("DELETE FROM pool_ranges WHERE pool_id = $1").bind(pool).execute(&mut *self.inner).await?;
        sqlx::query("DELETE FROM range_pools WHERE pool_id = $1").bind(pool).execute(&mut *self.inner).await?;
        Ok(())
    }

    /// Takes the lowest free value not being taken by someone else right now,
    /// or `None` when the pool is exhausted.
    pub async fn pool_take_first(&mut self, pool: &str) -> Result<Option<u128>> {
        let mut guarded = false;
        loop {
            // First pass: take the guard (shared) and a free row in one round trip.
            let mut row = if self.pg() && !guarded {
                guarded = true;
                sqlx::query(
                    "WITH g AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared($2)) SELECT r.first, r.last FROM g, pool_ranges r WHERE r.pool_id = $1 ORDER BY r.first LIMIT 1 FOR UPDATE OF r SKIP LOCKED",
                )
                .bind(pool)
                .bind(guard_key(pool))
                .fetch_optional(&mut *self.inner)
                .await?
            } else {
                let skip = if self.pg() { " FOR UPDATE SKIP LOCKED" } else { "" };
                let sql =
                    format!("SELECT first, last FROM pool_ranges WHERE pool_id = $1 ORDER BY first LIMIT 1{skip}");
                sqlx::query(&sql).bind(pool).fetch_optional(&mut *self.inner).await?
            };
            if row.is_none() && self.pg() {
                // Every row is busy (or none is left): wait for the lowest one.
                row = sqlx::query(
                    "SELECT first, last FROM pool_ranges WHERE pool_id = $1 ORDER BY first LIMIT 1 FOR UPDATE",
                )
                .bind(pool)
                .fetch_optional(&mut *self.inner)
                .await?;
                if row.is_none() {
                    // The row we waited for was used up; is anything left?
                    let any = sqlx::query("SELECT first FROM pool_ranges WHERE pool_id = $1 LIMIT 1")
                        .bind(pool)
                        .fetch_optional(&mut *self.inner)
                        .await?;
                    if any.is_some() {
                        continue;
                    }
                }
            }
            let Some(row) = row else { return Ok(None) };
            let (first, last) = row_range(&row)?;
            if first == last {
                self.delete_range(pool, first).await?;
            } else {
                sqlx::query("UPDATE pool_ranges SET first = $3 WHERE pool_id = $1 AND first = $2")
                    .bind(pool)
                    .bind(key(first))
                    .bind(key(first + 1))
                    .execute(&mut *self.inner)
                    .await?;
            }
            return Ok(Some(first));
        }
    }

    /// Takes a specific value; `false` if it is not free.
    pub async fn pool_take(&mut self, pool: &str, v: u128) -> Result<bool> {
        self.pool_share(pool).await?;
        loop {
            let lock = self.for_update();
            let sql = format!(
                "SELECT first, last FROM pool_ranges WHERE pool_id = $1 AND first <= $2 ORDER BY first DESC LIMIT 1{lock}"
            );
            let row = sqlx::query(&sql).bind(pool).bind(key(v)).fetch_optional(&mut *self.inner).await?;
            let Some(row) = row else {
                if self.pg() && self.pool_is_free(pool, v).await? {
                    continue; // the row we waited for changed under us
                }
                return Ok(false);
            };
            let (first, last) = row_range(&row)?;
            if last < v {
                if self.pg() && self.pool_is_free(pool, v).await? {
                    continue;
                }
                return Ok(false);
            }
            self.delete_range(pool, first).await?;
            if first < v {
                self.insert_range(pool, first, v - 1).await?;
            }
            if v < last {
                self.insert_range(pool, v + 1, last).await?;
            }
            return Ok(true);
        }
    }

    /// Returns an allocated value to the pool. It becomes a range of its own
    /// (taken first again, lowest first), so releasing locks nothing.
    pub async fn pool_release(&mut self, pool: &str, v: u128) -> Result<()> {
        self.pool_share(pool).await?;
        if !self.pool_exists(pool).await? {
            return Ok(());
        }
        sqlx::query("INSERT INTO pool_ranges (pool_id, first, last) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(pool)
            .bind(key(v))
            .bind(key(v))
            .execute(&mut *self.inner)
            .await?;
        Ok(())
    }

    /// Is `v` free in the pool?
    pub async fn pool_is_free(&mut self, pool: &str, v: u128) -> Result<bool> {
        let row = sqlx::query(
            "SELECT first, last FROM pool_ranges WHERE pool_id = $1 AND first <= $2 ORDER BY first DESC LIMIT 1",
        )
        .bind(pool)
        .bind(key(v))
        .fetch_optional(&mut *self.inner)
        .await?;
        Ok(match row {
            Some(r) => row_range(&r)?.1 >= v,
            None => false,
        })
    }

    /// The free ranges of a pool, in order and merged.
    pub async fn pool_ranges(&mut self, pool: &str) -> Result<Vec<(u128, u128)>> {
        let rows = sqlx::query("SELECT first, last FROM pool_ranges WHERE pool_id = $1 ORDER BY first")
            .bind(pool)
            .fetch_all(&mut *self.inner)
            .await?;
        Ok(normalize(rows.iter().map(row_range).collect::<Result<Vec<_>>>()?))
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
    use super::{chunk, normalize};

    #[test]
    fn normalize_merges_adjacent_and_overlapping() {
        assert_eq!(normalize(vec![(5, 9), (1, 3), (4, 4), (20, 30), (25, 40)]), vec![(1, 9), (20, 40)]);
        assert_eq!(normalize(vec![(3, 1)]), vec![]);
    }

    #[test]
    fn chunks_cover_exactly_the_ranges() {
        let c = chunk(&[(2, 254)]);
        assert_eq!(c.len(), 16);
        assert_eq!(c.first().unwrap().0, 2);
        assert_eq!(c.last().unwrap().1, 254);
        assert_eq!(normalize(c), vec![(2, 254)]);
        assert_eq!(chunk(&[(7, 7)]), vec![(7, 7)]);
        let big = chunk(&[(1, 1 << 24)]);
        assert!(big.len() <= 16);
    }
}
