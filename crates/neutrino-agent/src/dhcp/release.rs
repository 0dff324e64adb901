//! Releasing leases dnsmasq should forget (Neutron's `dhcp_release`): when
//! a port goes away or changes its MAC or address, its lease would
//! otherwise keep the address from being handed to the next port that gets
//! it ("not using configured address ... because it is leased to ...")
//! until the lease expires.
//!
//! A DHCPRELEASE for the lease is sent to dnsmasq from inside the qdhcp
//! namespace on the DHCP device (`SO_BINDTODEVICE`, as `dhcp_release`
//! does), so no extra package is needed.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

use ipnet::IpNet;

use super::error::{DhcpError, Result};
use super::model::NetModel;
use crate::netns::NETNS_RUN_DIR;

/// An IPv4 lease of the lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Client MAC.
    pub mac: String,
    /// Leased address.
    pub ip: Ipv4Addr,
    /// Client identifier (option 61) bytes, if the client sent one.
    pub client_id: Option<Vec<u8>>,
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s.split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    v.try_into().ok()
}

/// The IPv4 leases of a dnsmasq lease file (`expiry mac ip host client-id`).
pub fn read_leases(text: &str) -> Vec<Lease> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 5 {
                return None;
            }
            let ip: Ipv4Addr = f[2].parse().ok()?;
            parse_mac(f[1])?;
            let client_id = (f[4] != "*")
                .then(|| f[4].split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect::<Vec<u8>>())
                .filter(|c| !c.is_empty());
            Some(Lease { mac: f[1].to_ascii_lowercase(), ip, client_id })
        })
        .collect()
}

/// The leases no port of `net` owns any more (MAC and address).
pub fn stale_leases(net: &NetModel, leases: &[Lease]) -> Vec<Lease> {
    let owned: BTreeSet<(String, String)> = net
        .ports
        .iter()
        .flat_map(|p| p.fixed_ips.iter().map(move |f| (p.mac_address.to_ascii_lowercase(), f.ip_address.clone())))
        .collect();
    leases.iter().filter(|l| !owned.contains(&(l.mac.clone(), l.ip.to_string()))).cloned().collect()
}

/// The DHCPRELEASE packet of `lease`, addressed to server `server`.
pub fn packet(lease: &Lease, server: Ipv4Addr, xid: u32) -> Vec<u8> {
    let mut p = vec![0u8; 236];
    p[0] = 1; // BOOTREQUEST
    p[1] = 1; // Ethernet
    p[2] = 6; // hardware address length
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[12..16].copy_from_slice(&lease.ip.octets()); // ciaddr
    if let Some(mac) = parse_mac(&lease.mac) {
        p[28..34].copy_from_slice(&mac); // chaddr
    }
    p.extend_from_slice(&[99, 130, 83, 99]); // magic cookie
    p.extend_from_slice(&[53, 1, 7]); // DHCPRELEASE
    p.extend_from_slice(&[54, 4]);
    p.extend_from_slice(&server.octets()); // server identifier
    if let Some(c) = lease.client_id.as_ref().filter(|c| c.len() < 256) {
        p.push(61);
        p.push(c.len() as u8);
        p.extend_from_slice(c);
    }
    p.push(255);
    p
}

/// The address of the DHCP device (`cidrs`) in the subnet of `ip`.
pub fn server_for(cidrs: &[String], ip: Ipv4Addr) -> Option<Ipv4Addr> {
    cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).find(|n| n.contains(&IpAddr::V4(ip))).and_then(|n| match n {
        IpNet::V4(v) => Some(v.addr()),
        IpNet::V6(_) => None,
    })
}

/// Sends DHCPRELEASE for `leases` to the dnsmasq of namespace `netns`, on
/// device `dev` whose addresses are `cidrs`. Runs in a short-lived thread
/// that enters the namespace (the agent's own threads never change
/// namespace). Returns how many were sent.
pub async fn release(netns: &str, dev: &str, cidrs: &[String], leases: Vec<Lease>) -> Result<usize> {
    let work: Vec<(Vec<u8>, Ipv4Addr)> = leases
        .iter()
        .filter_map(|l| server_for(cidrs, l.ip).map(|s| (packet(l, s, u32::from(l.ip) ^ 0x4e54_0000), s)))
        .collect();
    if work.is_empty() {
        return Ok(0);
    }
    let path = std::path::Path::new(NETNS_RUN_DIR).join(netns);
    let dev = dev.to_string();
    let n = work.len();
    let joined = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::thread::spawn(move || -> std::io::Result<()> {
            let ns = std::fs::File::open(&path)?;
            // SAFETY: setns(2) on an open namespace handle; only this
            // short-lived thread changes namespace, and it ends right after.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            let name =
                std::ffi::CString::new(dev).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
            let bytes = name.as_bytes_with_nul();
            // SAFETY: SO_BINDTODEVICE with a NUL-terminated name and its length.
            let r = unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    bytes.as_ptr().cast(),
                    bytes.len() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for (p, server) in work {
                sock.send_to(&p, (server, 67))?;
            }
            Ok(())
        })
        .join()
        .map_err(|_| std::io::Error::other("release thread panicked"))?
    })
    .await
    .map_err(|e| DhcpError::Dnsmasq(format!("lease release task: {e}")))?;
    joined.map_err(|e| DhcpError::io(format!("DHCPRELEASE in {netns}"), e))?;
    Ok(n)
}

/// Waits (at most `within`) until dnsmasq dropped `leases` from its lease
/// file, i.e. processed the releases. Returns whether it did.
pub async fn wait_released(lease_file: &std::path::Path, leases: &[Lease], within: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let now = read_leases(&std::fs::read_to_string(lease_file).unwrap_or_default());
        if !leases.iter().any(|l| now.iter().any(|n| n.ip == l.ip && n.mac == l.mac)) {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_leases() {
        let l = read_leases(
            "1700000000 fa:16:3e:00:00:05 10.0.0.5 host-10-0-0-5 01:fa:16:3e:00:00:05\n0 fa:16:3e:00:00:06 10.0.0.6 * *\nduid 00:01\n1 1234 fd00::5 h *\n",
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].client_id, Some(vec![1, 0xfa, 0x16, 0x3e, 0, 0, 5]));
        assert_eq!(l[1].client_id, None);
        assert_eq!(l[1].ip, Ipv4Addr::new(10, 0, 0, 6));
    }

    #[test]
    fn builds_a_release() {
        let l = Lease { mac: "fa:16:3e:00:00:05".into(), ip: Ipv4Addr::new(10, 0, 0, 5), client_id: None };
        let p = packet(&l, Ipv4Addr::new(10, 0, 0, 2), 7);
        assert_eq!(p.len(), 236 + 4 + 3 + 6 + 1);
        assert_eq!(&p[12..16], &[10, 0, 0, 5]);
        assert_eq!(&p[28..34], &[0xfa, 0x16, 0x3e, 0, 0, 5]);
        assert_eq!(&p[240..243], &[53, 1, 7]);
        assert_eq!(&p[243..249], &[54, 4, 10, 0, 0, 2]);
        assert_eq!(server_for(&["10.0.0.2/24".into(), "fd00::2/64".into()], l.ip), Some(Ipv4Addr::new(10, 0, 0, 2)));
    }
}
