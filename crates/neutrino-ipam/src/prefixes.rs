//! Carving subnets out of subnet-pool prefixes.

use ipnet::IpNet;

use crate::addr::{bounds, from_u128, version};

/// Free space: the pool's prefixes minus the prefixes already used.
fn free_ranges(pool: &[IpNet], used: &[IpNet]) -> Vec<(u128, u128)> {
    let mut free: Vec<(u128, u128)> = pool.iter().map(bounds).collect();
    free.sort();
    for u in used {
        let (ua, ub) = bounds(u);
        let mut next = vec![];
        for (a, b) in free {
            if ub < a || ua > b {
                next.push((a, b));
                continue;
            }
            if a < ua {
                next.push((a, ua - 1));
            }
            if ub < b {
                next.push((ub + 1, b));
            }
        }
        free = next;
    }
    free
}

/// The first free prefix of length `prefixlen` within the pool.
pub fn allocate(pool: &[IpNet], used: &[IpNet], prefixlen: u8) -> Option<IpNet> {
    let v = version(pool.first()?);
    let bits: u32 = if v == 4 { 32 } else { 128 };
    if prefixlen as u32 > bits {
        return None;
    }
    let size: u128 = if bits - prefixlen as u32 >= 128 { u128::MAX } else { 1u128 << (bits - prefixlen as u32) };
    for (a, b) in free_ranges(pool, used) {
        let start = if size == u128::MAX { 0 } else { a.div_ceil(size) * size };
        if start >= a && start.checked_add(size - 1).is_some_and(|end| end <= b) {
            return IpNet::new(from_u128(start, v), prefixlen).ok();
        }
    }
    None
}

/// Is `want` entirely inside the pool's free space?
pub fn is_free(pool: &[IpNet], used: &[IpNet], want: &IpNet) -> bool {
    let (wa, wb) = bounds(want);
    free_ranges(pool, used).iter().any(|(a, b)| *a <= wa && wb <= *b)
}

/// Is `want` inside one of the pool's prefixes?
pub fn within(pool: &[IpNet], want: &IpNet) -> bool {
    let (wa, wb) = bounds(want);
    pool.iter().map(bounds).any(|(a, b)| a <= wa && wb <= b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_aligned_prefixes_around_used_ones() {
        let pool = vec![n("10.10.0.0/16")];
        assert_eq!(allocate(&pool, &[], 24), Some(n("10.10.0.0/24")));
        assert_eq!(allocate(&pool, &[n("10.10.0.0/24")], 24), Some(n("10.10.1.0/24")));
        assert_eq!(allocate(&pool, &[n("10.10.0.0/25")], 24), Some(n("10.10.1.0/24")));
        assert_eq!(allocate(&pool, &[n("10.10.0.0/25")], 25), Some(n("10.10.0.128/25")));
        assert_eq!(allocate(&pool, &[n("10.10.0.0/16")], 24), None);
        assert!(is_free(&pool, &[n("10.10.0.0/24")], &n("10.10.3.0/24")));
        assert!(!is_free(&pool, &[n("10.10.0.0/22")], &n("10.10.3.0/24")));
    }
}
