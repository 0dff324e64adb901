//! Security-group rules as OpenFlow match fragments: ethertype and protocol,
//! destination port ranges (as value/mask pairs), ICMP type/code and the
//! remote prefix.

use neutrino_lib::southbound::SgRule;

use crate::openflow::Match;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 (`ip`).
    V4,
    /// IPv6 (`ipv6`).
    V6,
}

impl Family {
    /// From a rule's `ethertype`.
    pub fn parse(ethertype: &str) -> Option<Family> {
        match ethertype {
            "IPv4" | "ipv4" => Some(Family::V4),
            "IPv6" | "ipv6" => Some(Family::V6),
            _ => None,
        }
    }

    /// Of an address or CIDR.
    pub fn of_addr(a: &str) -> Family {
        if a.contains(':') {
            Family::V6
        } else {
            Family::V4
        }
    }

    /// The key of `sg_member_ips` for this family.
    pub fn key(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// The L3 protocol keyword.
    pub fn ip(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ipv6",
        }
    }

    /// The source-address field.
    pub fn src(self) -> &'static str {
        match self {
            Family::V4 => "nw_src",
            Family::V6 => "ipv6_src",
        }
    }

    /// The destination-address field.
    pub fn dst(self) -> &'static str {
        match self {
            Family::V4 => "nw_dst",
            Family::V6 => "ipv6_dst",
        }
    }
}

/// Traffic direction relative to the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Towards the port.
    Ingress,
    /// From the port.
    Egress,
}

impl Direction {
    /// From a rule's `direction`.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }

    /// The field naming the *remote* end's address for this direction.
    pub fn remote_field(self, f: Family) -> &'static str {
        match self {
            Direction::Ingress => f.src(),
            Direction::Egress => f.dst(),
        }
    }
}

/// The L4 part of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Proto {
    Any,
    Tcp,
    Udp,
    Sctp,
    Icmp,
    Other(u8),
}

fn proto_of(p: Option<&str>, fam: Family) -> Option<Proto> {
    let Some(p) = p.map(str::trim).filter(|p| !p.is_empty() && *p != "any") else { return Some(Proto::Any) };
    Some(match p.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Proto::Tcp,
        "udp" | "17" => Proto::Udp,
        "sctp" | "132" => Proto::Sctp,
        "icmp" | "1" if fam == Family::V4 => Proto::Icmp,
        "icmp" | "icmpv6" | "ipv6-icmp" | "58" if fam == Family::V6 => Proto::Icmp,
        "icmpv6" | "ipv6-icmp" | "58" => return None,
        other => match other.parse::<u8>() {
            Ok(n) => Proto::Other(n),
            Err(_) => match other {
                "ah" => Proto::Other(51),
                "dccp" => Proto::Other(33),
                "egp" => Proto::Other(8),
                "esp" => Proto::Other(50),
                "gre" => Proto::Other(47),
                "igmp" => Proto::Other(2),
                "ospf" => Proto::Other(89),
                "pgm" => Proto::Other(113),
                "rsvp" => Proto::Other(46),
                "udplite" => Proto::Other(136),
                "vrrp" => Proto::Other(112),
                "ipip" => Proto::Other(4),
                _ => return None,
            },
        },
    })
}

/// Covers `[min, max]` with value/mask pairs (Neutron's port_rule_masking).
pub fn port_masks(min: u16, max: u16) -> Vec<String> {
    if min > max {
        return Vec::new();
    }
    if min == max {
        return vec![min.to_string()];
    }
    let mut out = Vec::new();
    let mut lo = u32::from(min);
    let hi = u32::from(max);
    while lo <= hi {
        // The largest aligned block starting at lo that fits in [lo, hi].
        let mut size = if lo == 0 { 1 << 16 } else { lo & lo.wrapping_neg() };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        let mask = 0xffff & !(size - 1);
        if size == 1 {
            out.push(lo.to_string());
        } else {
            out.push(format!("{lo:#06x}/{mask:#06x}"));
        }
        lo += size;
    }
    out
}

/// A rule translated: its direction, family, and the L3/L4 matches (one per
/// port-range block), *without* the remote address part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    /// Direction.
    pub direction: Direction,
    /// Family.
    pub family: Family,
    /// Alternative matches (a port range may need several).
    pub matches: Vec<Match>,
    /// `remote_ip_prefix` (None or a catch-all prefix: any).
    pub remote_prefix: Option<String>,
}

/// Translates a rule; `None` (with a log line) for rules the dataplane cannot express.
pub fn translate(rule: &SgRule) -> Option<RuleMatch> {
    let direction = Direction::parse(&rule.direction)?;
    let family = Family::parse(&rule.ethertype)?;
    let Some(proto) = proto_of(rule.protocol.as_deref(), family) else {
        tracing::warn!(rule = %rule.id, protocol = ?rule.protocol, "security group rule protocol not supported, rule skipped");
        return None;
    };
    let base = |kw: &str| Match::any().proto(kw);
    let l4 = |kw4: &str, kw6: &str| if family == Family::V4 { base(kw4) } else { base(kw6) };
    let ranges = |m: Match| -> Vec<Match> {
        let min = rule.port_range_min.and_then(|v| u16::try_from(v).ok());
        let max = rule.port_range_max.and_then(|v| u16::try_from(v).ok()).or(min);
        match (min, max) {
            (Some(lo), Some(hi)) if !(lo <= 1 && hi == 65535) => {
                port_masks(lo, hi).into_iter().map(|v| m.clone().field("tp_dst", v)).collect()
            }
            _ => vec![m],
        }
    };
    let matches = match proto {
        Proto::Any => vec![base(family.ip())],
        Proto::Tcp => ranges(l4("tcp", "tcp6")),
        Proto::Udp => ranges(l4("udp", "udp6")),
        Proto::Sctp => ranges(l4("sctp", "sctp6")),
        Proto::Icmp => {
            let mut m = l4("icmp", "icmp6");
            if let Some(t) = rule.port_range_min.and_then(|v| u8::try_from(v).ok()) {
                m = m.field("icmp_type", t);
                if let Some(c) = rule.port_range_max.and_then(|v| u8::try_from(v).ok()) {
                    m = m.field("icmp_code", c);
                }
            }
            vec![m]
        }
        Proto::Other(n) => vec![base(family.ip()).field("nw_proto", n)],
    };
    let remote_prefix = rule
        .remote_ip_prefix
        .clone()
        .filter(|p| !p.is_empty() && !p.ends_with("/0"))
        .filter(|p| Family::of_addr(p) == family);
    if rule.remote_ip_prefix.as_deref().is_some_and(|p| Family::of_addr(p) != family) {
        tracing::warn!(rule = %rule.id, "remote_ip_prefix of the other address family, rule skipped");
        return None;
    }
    Some(RuleMatch { direction, family, matches, remote_prefix })
}

/// The IPv6 link-local address (EUI-64) of a MAC.
pub fn link_local_of(mac: &str) -> Option<String> {
    let b: Vec<u8> = mac.split(':').map(|x| u8::from_str_radix(x, 16)).collect::<Result<_, _>>().ok()?;
    if b.len() != 6 {
        return None;
    }
    let words = [
        0xfe80u16,
        0,
        0,
        0,
        u16::from(b[0] ^ 0x02) << 8 | u16::from(b[1]),
        u16::from(b[2]) << 8 | 0xff,
        0xfe00 | u16::from(b[3]),
        u16::from(b[4]) << 8 | u16::from(b[5]),
    ];
    Some(std::net::Ipv6Addr::from(words).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        dir: &str,
        eth: &str,
        proto: Option<&str>,
        min: Option<i64>,
        max: Option<i64>,
        prefix: Option<&str>,
    ) -> SgRule {
        SgRule {
            id: "r".into(),
            direction: dir.into(),
            ethertype: eth.into(),
            protocol: proto.map(String::from),
            port_range_min: min,
            port_range_max: max,
            remote_ip_prefix: prefix.map(String::from),
            remote_group_id: None,
        }
    }

    #[test]
    fn masks() {
        assert_eq!(port_masks(22, 22), vec!["22"]);
        assert_eq!(port_masks(0, 65535), vec!["0x0000/0x0000"]);
        assert_eq!(port_masks(1024, 2047), vec!["0x0400/0xfc00"]);
        assert_eq!(port_masks(5, 8), vec!["5", "0x0006/0xfffe", "8"]);
        // Coverage: every port of the range exactly once.
        for (lo, hi) in [(1u16, 65535u16), (80, 443), (1000, 1999), (32768, 60999)] {
            let blocks = port_masks(lo, hi);
            let mut covered = 0u32;
            for b in &blocks {
                let (v, m) = match b.split_once('/') {
                    Some((v, m)) => (
                        u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap(),
                        u32::from_str_radix(m.trim_start_matches("0x"), 16).unwrap(),
                    ),
                    None => (b.parse().unwrap(), 0xffff),
                };
                covered += (!m & 0xffff) + 1;
                assert!(v >= u32::from(lo) && (v | (!m & 0xffff)) <= u32::from(hi), "{b} outside {lo}-{hi}");
            }
            assert_eq!(covered, u32::from(hi) - u32::from(lo) + 1, "{lo}-{hi}: {blocks:?}");
        }
    }

    #[test]
    fn translations() {
        let r = translate(&rule("ingress", "IPv4", Some("tcp"), Some(22), Some(22), Some("10.0.0.0/24"))).unwrap();
        assert_eq!(r.direction, Direction::Ingress);
        assert_eq!(r.matches.len(), 1);
        assert_eq!(r.matches[0].to_string(), "tcp,tp_dst=22");
        assert_eq!(r.remote_prefix.as_deref(), Some("10.0.0.0/24"));
        let r = translate(&rule("egress", "IPv4", None, None, None, Some("0.0.0.0/0"))).unwrap();
        assert_eq!(r.matches[0].to_string(), "ip");
        assert_eq!(r.remote_prefix, None);
        let r = translate(&rule("ingress", "IPv4", Some("icmp"), Some(8), Some(0), None)).unwrap();
        assert_eq!(r.matches[0].to_string(), "icmp,icmp_type=8,icmp_code=0");
        let r = translate(&rule("ingress", "IPv6", Some("icmp"), None, None, None)).unwrap();
        assert_eq!(r.matches[0].to_string(), "icmp6");
        let r = translate(&rule("ingress", "IPv4", Some("112"), None, None, None)).unwrap();
        assert_eq!(r.matches[0].to_string(), "ip,nw_proto=112");
        assert!(translate(&rule("ingress", "IPv4", Some("ipv6-icmp"), None, None, None)).is_none());
        assert!(translate(&rule("sideways", "IPv4", None, None, None, None)).is_none());
        assert!(translate(&rule("ingress", "IPv4", None, None, None, Some("fd00::/64"))).is_none());
        let r = translate(&rule("ingress", "IPv4", Some("udp"), Some(1), Some(65535), None)).unwrap();
        assert_eq!(r.matches[0].to_string(), "udp");
    }

    #[test]
    fn eui64() {
        assert_eq!(link_local_of("fa:16:3e:00:00:01").as_deref(), Some("fe80::f816:3eff:fe00:1"));
        assert_eq!(link_local_of("nonsense"), None);
    }
}
