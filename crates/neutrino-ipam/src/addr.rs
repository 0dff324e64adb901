//! Addresses as integers, so ranges are plain arithmetic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// An address as an integer (IPv4 in the low 32 bits).
pub fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of an integer in the given IP version.
pub fn from_u128(v: u128, version: u8) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

/// IP version of a network.
pub fn version(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

/// First and last address of a network, as integers.
pub fn bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

/// The usable host range of a subnet as Neutron sees it: IPv4 without the
/// network and broadcast addresses (except /31 and /32), IPv6 without the
/// subnet-router anycast address (except /127 and /128).
pub fn host_range(net: &IpNet) -> Option<(u128, u128)> {
    let (first, last) = bounds(net);
    match net {
        IpNet::V4(n) if n.prefix_len() >= 31 => Some((first, last)),
        IpNet::V4(_) => (first + 1 < last).then_some((first + 1, last - 1)),
        IpNet::V6(n) if n.prefix_len() >= 127 => Some((first, last)),
        IpNet::V6(_) => Some((first + 1, last)),
    }
}

/// Number of addresses in a network (saturating for huge IPv6 prefixes).
pub fn size(net: &IpNet) -> u128 {
    let (a, b) = bounds(net);
    (b - a).saturating_add(1)
}

/// Does `net` contain `ip` (same version)?
pub fn contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&ip)
}

/// Do two networks overlap?
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    if version(a) != version(b) {
        return false;
    }
    let (a1, a2) = bounds(a);
    let (b1, b2) = bounds(b);
    a1 <= b2 && b1 <= a2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ranges() {
        let n: IpNet = "10.0.0.0/24".parse().unwrap();
        let (a, b) = host_range(&n).unwrap();
        assert_eq!(from_u128(a, 4).to_string(), "10.0.0.1");
        assert_eq!(from_u128(b, 4).to_string(), "10.0.0.254");
        let n6: IpNet = "2001:db8::/64".parse().unwrap();
        let (a, b) = host_range(&n6).unwrap();
        assert_eq!(from_u128(a, 6).to_string(), "2001:db8::1");
        assert_eq!(from_u128(b, 6).to_string(), "2001:db8::ffff:ffff:ffff:ffff");
        let n30: IpNet = "10.0.0.0/30".parse().unwrap();
        assert_eq!(host_range(&n30).map(|(a, b)| b - a + 1), Some(2));
    }

    #[test]
    fn overlap() {
        let a: IpNet = "10.0.0.0/16".parse().unwrap();
        let b: IpNet = "10.0.5.0/24".parse().unwrap();
        let c: IpNet = "10.1.0.0/24".parse().unwrap();
        assert!(overlaps(&a, &b));
        assert!(!overlaps(&a, &c));
    }
}
