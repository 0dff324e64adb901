//! Small address helpers: CIDR parsing and containment (IPv4 and IPv6), so
//! the router model needs no extra dependency.

use std::net::IpAddr;

/// A network prefix such as `10.0.0.0/24` or `2001:db8::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    /// The address as given (not necessarily the network address).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl Cidr {
    /// Parses `addr/len` (a bare address is a host prefix).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max)?,
            None => max,
        };
        Some(Cidr { addr, len })
    }

    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` lies inside this prefix.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
                u32::from(n) & mask == u32::from(*a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
                u128::from(n) & mask == u128::from(*a) & mask
            }
            _ => false,
        }
    }

    /// The prefix in canonical form (network address), e.g. `10.0.0.0/24`.
    pub fn network(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
                format!("{}/{}", std::net::Ipv4Addr::from(u32::from(a) & mask), self.len)
            }
            IpAddr::V6(a) => {
                let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
                format!("{}/{}", std::net::Ipv6Addr::from(u128::from(a) & mask), self.len)
            }
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Normalises a route destination (`default`, `0.0.0.0/0`, `10.0.0.0/8`, a
/// host address) to the canonical network form `ip route` prints.
pub fn route_key(dest: &str) -> Option<String> {
    if dest == "default" {
        return Some("default".into());
    }
    let c = Cidr::parse(dest)?;
    if c.len == 0 {
        return Some("default".into());
    }
    let full = if c.is_ipv4() { 32 } else { 128 };
    if c.len == full {
        return Some(c.addr.to_string());
    }
    Some(c.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contain() {
        let c = Cidr::parse("10.1.0.0/24").unwrap();
        assert!(c.contains(&"10.1.0.77".parse().unwrap()));
        assert!(!c.contains(&"10.1.1.1".parse().unwrap()));
        assert!(!c.contains(&"::1".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/64").unwrap();
        assert!(v6.contains(&"2001:db8::5".parse().unwrap()));
        assert_eq!(Cidr::parse("10.1.0.9/24").unwrap().network(), "10.1.0.0/24");
        assert_eq!(Cidr::parse("1.2.3.4").unwrap().len, 32);
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("x/3").is_none());
    }

    #[test]
    fn route_keys() {
        assert_eq!(route_key("0.0.0.0/0").as_deref(), Some("default"));
        assert_eq!(route_key("10.9.0.1/16").as_deref(), Some("10.9.0.0/16"));
        assert_eq!(route_key("10.9.0.1/32").as_deref(), Some("10.9.0.1"));
        assert_eq!(route_key("::/0").as_deref(), Some("default"));
    }
}
