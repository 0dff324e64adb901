//! Allocation pools: the default pool of a subnet, and validation of given ones.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::addr::{from_u128, host_range, to_u128, version};
use crate::IpamError;

/// A pool as text, the way Neutron prints it: `10.0.0.2-10.0.0.254`.
pub fn show(r: (u128, u128), v: u8) -> String {
    format!("{}-{}", from_u128(r.0, v), from_u128(r.1, v))
}

/// The default pools: the subnet's host range minus the gateway.
pub fn default_pools(net: &IpNet, gateway: Option<IpAddr>) -> Vec<(u128, u128)> {
    let Some((first, last)) = host_range(net) else {
        return vec![];
    };
    let mut out = vec![(first, last)];
    if let Some(gw) = gateway {
        out = subtract(out, to_u128(gw));
    }
    out
}

/// Removes one value from sorted disjoint ranges.
pub fn subtract(ranges: Vec<(u128, u128)>, v: u128) -> Vec<(u128, u128)> {
    let mut out = vec![];
    for (a, b) in ranges {
        if v < a || v > b {
            out.push((a, b));
            continue;
        }
        if a < v {
            out.push((a, v - 1));
        }
        if v < b {
            out.push((v + 1, b));
        }
    }
    out
}

/// Validates requested pools against the subnet and gateway; returns them
/// as integer ranges sorted by start.
pub fn validate(
    net: &IpNet,
    pools: &[(IpAddr, IpAddr)],
    gateway: Option<IpAddr>,
) -> Result<Vec<(u128, u128)>, IpamError> {
    let v = version(net);
    let cidr = net.to_string();
    let (first, last) = host_range(net).unwrap_or((1, 0));
    let mut ranges = vec![];
    for (s, e) in pools {
        let shown = format!("{s}-{e}");
        if (s.is_ipv4() != (v == 4)) || (e.is_ipv4() != (v == 4)) {
            return Err(IpamError::InvalidPool { pool: shown });
        }
        let (a, b) = (to_u128(*s), to_u128(*e));
        if a > b {
            return Err(IpamError::InvalidPool { pool: shown });
        }
        if a < first || b > last {
            return Err(IpamError::PoolOutOfSubnet { pool: shown, cidr });
        }
        ranges.push((a, b));
    }
    ranges.sort();
    for w in ranges.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(IpamError::OverlappingPools { a: show(w[0], v), b: show(w[1], v), cidr });
        }
    }
    if let Some(gw) = gateway {
        check_gateway(&ranges, gw, v)?;
    }
    Ok(ranges)
}

/// The gateway must not be inside a pool.
pub fn check_gateway(ranges: &[(u128, u128)], gw: IpAddr, v: u8) -> Result<(), IpamError> {
    let g = to_u128(gw);
    if let Some(r) = ranges.iter().find(|(a, b)| *a <= g && g <= *b) {
        return Err(IpamError::GatewayInPool { gateway: gw.to_string(), pool: show(*r, v) });
    }
    Ok(())
}

/// The pools as `[{start, end}]` JSON.
pub fn to_json(ranges: &[(u128, u128)], v: u8) -> serde_json::Value {
    serde_json::Value::Array(
        ranges
            .iter()
            .map(|(a, b)| serde_json::json!({"start": from_u128(*a, v).to_string(), "end": from_u128(*b, v).to_string()}))
            .collect(),
    )
}

/// Total number of addresses in the ranges.
pub fn total(ranges: &[(u128, u128)]) -> u128 {
    ranges.iter().map(|(a, b)| (b - a).saturating_add(1)).fold(0u128, |s, n| s.saturating_add(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_pool_skips_gateway() {
        let n: IpNet = "10.0.0.0/24".parse().unwrap();
        let p = default_pools(&n, Some(ip("10.0.0.1")));
        assert_eq!(show(p[0], 4), "10.0.0.2-10.0.0.254");
        let p = default_pools(&n, Some(ip("10.0.0.100")));
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn validation() {
        let n: IpNet = "10.0.0.0/24".parse().unwrap();
        assert!(validate(&n, &[(ip("10.0.0.10"), ip("10.0.0.20"))], Some(ip("10.0.0.1"))).is_ok());
        assert!(matches!(
            validate(&n, &[(ip("10.0.0.10"), ip("10.0.1.20"))], None),
            Err(IpamError::PoolOutOfSubnet { .. })
        ));
        assert!(matches!(
            validate(&n, &[(ip("10.0.0.10"), ip("10.0.0.20")), (ip("10.0.0.15"), ip("10.0.0.30"))], None),
            Err(IpamError::OverlappingPools { .. })
        ));
        assert!(matches!(
            validate(&n, &[(ip("10.0.0.1"), ip("10.0.0.20"))], Some(ip("10.0.0.1"))),
            Err(IpamError::GatewayInPool { .. })
        ));
        assert!(matches!(
            validate(&n, &[(ip("10.0.0.30"), ip("10.0.0.20"))], None),
            Err(IpamError::InvalidPool { .. })
        ));
    }
}
