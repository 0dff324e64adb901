//! SLAAC: the EUI-64 address a host forms from a /64 prefix and its MAC.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

/// The modified EUI-64 address for `mac` in `prefix` (RFC 4291, appendix A).
pub fn eui64(prefix: &Ipv6Net, mac: [u8; 6]) -> Ipv6Addr {
    let net = u128::from(prefix.network());
    let iid = u64::from_be_bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]]);
    Ipv6Addr::from((net & !(u64::MAX as u128)) | iid as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64_matches_rfc_example() {
        let p: Ipv6Net = "2001:db8::/64".parse().unwrap();
        let a = eui64(&p, [0xfa, 0x16, 0x3e, 0x12, 0x34, 0x56]);
        assert_eq!(a.to_string(), "2001:db8::f816:3eff:fe12:3456");
    }
}
