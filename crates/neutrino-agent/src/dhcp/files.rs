//! dnsmasq's per-network files, rendered from a [`NetModel`] the way
//! Neutron's dnsmasq driver writes them:
//!
//! * `host` (`--dhcp-hostsfile`): `mac,[tag:dhcpv6,][id:client,]name,address[,set:port-<id>]`
//!   — only these MACs get leases (the ranges are `static`);
//! * `addn_hosts` (`--addn-hosts`): `address<TAB>fqdn hostname`, for DNS;
//! * `opts` (`--dhcp-optsfile`): per subnet `tag:subnet-<id>,option:...`
//!   (router, dns-server, classless-static-route and 249, domain-search) and
//!   per port `tag:port-<id>,...` (`extra_dhcp_opts`);
//! * `leases` (`--dhcp-leasefile`), written before dnsmasq starts only, so a
//!   restarted server does not NAK clients renewing a valid lease.
//!
//! All functions are pure; [`super::dnsmasq`] writes the results.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use super::model::{ipv6_mode, NetModel, Port, Subnet, ROUTER_INTERFACE_OWNERS};

/// The option number of the Windows classless static routes.
const WIN2K3_STATIC_ROUTES: &str = "249";
/// dnsmasq's built-in tag of DHCPv6 requests, used to keep IPv6 host entries
/// from answering DHCPv4.
const HOST_DHCPV6_TAG: &str = "tag:dhcpv6,";
/// The metadata service address route.
const METADATA_CIDR: &str = "169.254.169.254/32";
/// DHCP option 61 (client identifier).
const CLIENT_ID_NAMES: &[&str] = &["client-id", "61"];

/// The tag of a subnet's range and options.
pub fn subnet_tag(subnet_id: &str) -> String {
    format!("subnet-{subnet_id}")
}

/// The tag of a port's own options.
pub fn port_tag(port_id: &str) -> String {
    format!("port-{port_id}")
}

/// One address of one port, as dnsmasq will see it.
#[derive(Debug, Clone)]
struct HostEntry<'a> {
    port: &'a Port,
    subnet_id: String,
    /// The address, or for merged stateful IPv6 addresses `[a],[b]`.
    address: String,
    hostname: String,
    fqdn: String,
    /// No address is leased (SLAAC or stateless IPv6).
    no_dhcp: bool,
    /// No options either (SLAAC).
    no_opts: bool,
    tag: &'static str,
}

fn bracket(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_string()
    }
}

fn one_line(s: &str) -> &str {
    s.split('\n').next().unwrap_or("")
}

fn client_id(port: &Port) -> Option<&str> {
    port.extra_dhcp_opts.iter().find(|o| CLIENT_ID_NAMES.contains(&o.opt_name.as_str())).map(|o| o.opt_value.as_str())
}

fn names_for(address: &str, port: &Port, domain: &str) -> (String, String) {
    let addrs: Vec<&str> =
        address.split(',').map(|a| a.trim_matches(|c| c == '[' || c == ']')).filter(|a| !a.is_empty()).collect();
    for a in &addrs {
        if let Some(d) = port.dns_assignment.iter().find(|d| d.ip_address == *a) {
            return (d.hostname.clone(), d.fqdn.clone());
        }
    }
    let first = addrs.first().copied().unwrap_or("");
    let hostname = format!("host-{}", first.replace(['.', ':'], "-"));
    let fqdn = if domain.is_empty() { hostname.clone() } else { format!("{hostname}.{domain}") };
    (hostname, fqdn)
}

/// The host entries of a network. With `merge_v6`, the stateful IPv6
/// addresses of a port in one subnet become one entry (dnsmasq serves them
/// from one `dhcp-host` line).
fn host_entries(net: &NetModel, merge_v6: bool) -> Vec<HostEntry<'_>> {
    let v6: BTreeMap<&str, &Subnet> =
        net.subnets.iter().filter(|s| s.ip_version == 6).map(|s| (s.id.as_str(), s)).collect();
    let mode = |sid: &str| v6.get(sid).and_then(|s| s.ipv6_address_mode.as_deref());
    let mut out = Vec::new();
    for port in net.ports.iter().filter(|p| p.requires_dhcp()) {
        // Stateless IPv6 entries first: dnsmasq reads the file from the end
        // and an address-less entry would otherwise shadow the IPv4 one.
        let mut ips: Vec<(String, String)> =
            port.fixed_ips.iter().map(|f| (f.subnet_id.clone(), f.ip_address.clone())).collect();
        ips.sort_by_key(|(sid, _)| mode(sid) != Some(ipv6_mode::STATELESS));
        if merge_v6 {
            let mut merged: Vec<(String, String)> = Vec::new();
            let mut by_subnet: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (sid, ip) in ips {
                if mode(&sid) == Some(ipv6_mode::STATEFUL) {
                    by_subnet.entry(sid).or_default().push(bracket(&ip));
                } else {
                    merged.push((sid, ip));
                }
            }
            merged.extend(by_subnet.into_iter().map(|(sid, l)| (sid, l.join(","))));
            ips = merged;
        }
        for (sid, address) in ips {
            let (no_dhcp, no_opts, tag) = match v6.get(sid.as_str()) {
                Some(s) => {
                    let m = s.ipv6_address_mode.as_deref();
                    (
                        matches!(m, Some(ipv6_mode::SLAAC) | Some(ipv6_mode::STATELESS)),
                        m == Some(ipv6_mode::SLAAC),
                        HOST_DHCPV6_TAG,
                    )
                }
                None => (false, false, ""),
            };
            let (hostname, fqdn) = names_for(&address, port, &net.dns_domain);
            out.push(HostEntry { port, subnet_id: sid, address, hostname, fqdn, no_dhcp, no_opts, tag });
        }
    }
    out
}

/// The `--dhcp-hostsfile` contents.
pub fn hosts_file(net: &NetModel) -> String {
    let enabled: BTreeSet<&str> = net.dhcp_subnets().map(|s| s.id.as_str()).collect();
    let mut buf = String::new();
    for h in host_entries(net, true) {
        let mac = &h.port.mac_address;
        let has_opts = !h.port.extra_dhcp_opts.is_empty();
        let ptag = port_tag(&h.port.id);
        if h.no_dhcp {
            if !h.no_opts && has_opts {
                let _ = writeln!(buf, "{mac},{}set:{ptag}", h.tag);
            }
            continue;
        }
        if !enabled.contains(h.subnet_id.as_str()) {
            continue;
        }
        let ip = bracket(&h.address);
        let (tag, name) = (h.tag, &h.fqdn);
        let _ = match (has_opts, client_id(h.port)) {
            (true, Some(cid)) if h.port.extra_dhcp_opts.len() > 1 => {
                writeln!(buf, "{mac},{tag}id:{cid},{name},{ip},set:{ptag}")
            }
            (true, Some(cid)) => writeln!(buf, "{mac},{tag}id:{cid},{name},{ip}"),
            (true, None) => writeln!(buf, "{mac},{tag}{name},{ip},set:{ptag}"),
            (false, _) => writeln!(buf, "{mac},{tag}{name},{ip}"),
        };
    }
    buf
}

/// The `--addn-hosts` contents (DNS names of every address).
pub fn addn_hosts_file(net: &NetModel) -> String {
    let mut buf = String::new();
    for h in host_entries(net, false) {
        let fqdn = h.fqdn.trim_end_matches('.');
        let _ = writeln!(buf, "{}\t{} {}", h.address, fqdn, h.hostname);
    }
    buf
}

/// `tag:<tag>,option:<name>,<values>` as dnsmasq wants it: `option6:` for
/// IPv6, numbers as they are for IPv4, and an optional `tag:x,` prefix of
/// the option name kept as a second tag.
pub fn format_option(ip_version: u8, tag: &str, option: &str, values: &[&str]) -> String {
    let option = one_line(option);
    let (extra_tag, name) = match option.strip_prefix("tag:").and_then(|_| option.rfind(',')) {
        Some(i) => (Some(&option[..i]), &option[i + 1..]),
        None => (None, option),
    };
    let name = if ip_version == 6 {
        format!("option6:{name}")
    } else if name.chars().all(|c| c.is_ascii_digit()) && !name.is_empty() {
        name.to_string()
    } else {
        format!("option:{name}")
    };
    let mut parts = vec![format!("tag:{tag}")];
    if let Some(t) = extra_tag {
        parts.push(t.to_string());
    }
    parts.push(name);
    parts.extend(values.iter().map(|v| one_line(v).to_string()));
    parts.join(",")
}

fn literal_addrs(ip_version: u8, ips: &[String]) -> Vec<String> {
    ips.iter().map(|ip| if ip_version == 6 { format!("[{ip}]") } else { ip.clone() }).collect()
}

fn is_any(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok_and(|a| a.is_unspecified())
}

/// Subnets with a router interface on their gateway address.
fn routed_subnets(net: &NetModel) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for p in net.ports.iter().filter(|p| ROUTER_INTERFACE_OWNERS.contains(&p.device_owner.as_str())) {
        for f in &p.fixed_ips {
            if let Some(s) = net.subnet(&f.subnet_id) {
                if s.gateway_ip.is_some_and(|g| f.ip_address.parse::<IpAddr>().ok() == Some(g)) {
                    out.insert(s.id.as_str());
                }
            }
        }
    }
    out
}

/// The `--dhcp-optsfile` contents.
pub fn opts_file(net: &NetModel) -> String {
    let mut options: Vec<String> = Vec::new();
    let mut without_nameservers: BTreeSet<&str> = BTreeSet::new();
    let routed = routed_subnets(net);
    for subnet in net.subnets.iter().filter(|s| s.serves_dhcp()) {
        let tag = subnet_tag(&subnet.id);
        let v = subnet.ip_version;
        if subnet.dns_nameservers.is_empty() {
            // dnsmasq announces its own address when no dns-server is set.
            without_nameservers.insert(subnet.id.as_str());
        } else if subnet.dns_nameservers.iter().all(|d| is_any(d)) {
            options.push(format_option(v, &tag, "dns-server", &[]));
        } else {
            let list = literal_addrs(v, &subnet.dns_nameservers).join(",");
            options.push(format_option(v, &tag, "dns-server", &[&list]));
        }
        if v == 6 && !net.dns_domain.is_empty() {
            options.push(format_option(v, &tag, "domain-search", &[&net.dns_domain]));
        }
        if v != 4 {
            continue;
        }
        let mut gateway = subnet.gateway_ip.map(|g| g.to_string());
        let mut routes: Vec<String> = Vec::new();
        for hr in &subnet.host_routes {
            if hr.destination == "0.0.0.0/0" {
                if gateway.is_none() {
                    gateway = Some(hr.nexthop.clone());
                }
            } else {
                routes.push(format!("{},{}", hr.destination, hr.nexthop));
            }
        }
        // With a router on the subnet, metadata is reached through it.
        if routed.contains(subnet.id.as_str()) {
            if let Some(g) = &gateway {
                routes.push(format!("{METADATA_CIDR},{g}"));
            }
        }
        // Other IPv4 subnets of the same segment are on-link.
        for other in net.subnets.iter().filter(|o| o.ip_version == 4 && o.cidr != subnet.cidr) {
            if other.segment_id == subnet.segment_id {
                routes.insert(0, format!("{},0.0.0.0", other.cidr));
            }
        }
        if !routes.is_empty() {
            if let Some(g) = &gateway {
                routes.push(format!("0.0.0.0/0,{g}"));
            }
            let list = routes.join(",");
            options.push(format_option(v, &tag, "classless-static-route", &[&list]));
            options.push(format_option(v, &tag, WIN2K3_STATIC_ROUTES, &[&list]));
        }
        match &gateway {
            Some(g) => options.push(format_option(v, &tag, "router", &[g])),
            None => options.push(format_option(v, &tag, "router", &[])),
        }
    }
    // Per port: extra_dhcp_opts (the client id goes into the host entry).
    let mut dhcp_ips: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for port in &net.ports {
        let versions = port.ip_versions();
        for opt in &port.extra_dhcp_opts {
            if CLIENT_ID_NAMES.contains(&opt.opt_name.as_str()) {
                continue;
            }
            if versions.contains(&opt.ip_version) {
                options.push(format_option(opt.ip_version, &port_tag(&port.id), &opt.opt_name, &[&opt.opt_value]));
            } else {
                tracing::debug!(port = %port.id, option = %opt.opt_name, "DHCP option of an IP version the port has no address of");
            }
        }
        if port.device_owner == neutrino_lib::defs::DEVICE_OWNER_DHCP {
            for f in &port.fixed_ips {
                if let Some(sid) = without_nameservers.get(f.subnet_id.as_str()) {
                    dhcp_ips.entry(sid).or_default().push(f.ip_address.clone());
                }
            }
        }
    }
    // Several DHCP servers on a subnet: announce all of them as DNS servers.
    for (sid, ips) in dhcp_ips {
        for v in [4u8, 6] {
            let of_v: Vec<String> = ips.iter().filter(|ip| ip.contains(':') == (v == 6)).cloned().collect::<Vec<_>>();
            if of_v.len() > 1 {
                let list = literal_addrs(v, &of_v).join(",");
                options.push(format_option(v, &subnet_tag(sid), "dns-server", &[&list]));
            }
        }
    }
    let mut text = options.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// The dnsmasq mode of a subnet's range, or `None` when dnsmasq serves
/// nothing on it. IPv4 and DHCPv6 (stateful and stateless) subnets are
/// `static`: only known MACs get addresses. Router advertisements are never
/// sent by dnsmasq: as in Neutron, the router (L3 agent) or an external
/// router sends them, following `ipv6_ra_mode`.
pub fn range_mode(subnet: &Subnet) -> Option<&'static str> {
    if !subnet.enable_dhcp {
        return None;
    }
    if subnet.ip_version == 4 {
        return Some("static");
    }
    let addr = subnet.ipv6_address_mode.as_deref();
    let ra = subnet.ipv6_ra_mode.as_deref();
    let dhcpv6 = matches!(addr, Some(ipv6_mode::STATEFUL) | Some(ipv6_mode::STATELESS));
    if dhcpv6 || (addr.is_none() && ra.is_none()) {
        Some("static")
    } else {
        None
    }
}

/// The `--dhcp-range` arguments and the number of addresses they cover.
pub fn dhcp_ranges(net: &NetModel, lease_duration: i64) -> (Vec<String>, u128) {
    let lease = if lease_duration < 0 { "infinite".to_string() } else { format!("{lease_duration}s") };
    let mut args = Vec::new();
    let mut possible: u128 = 0;
    for s in &net.subnets {
        let Some(mode) = range_mode(s) else { continue };
        let tag = subnet_tag(&s.id);
        let size: u128 =
            1u128.checked_shl(u32::from(s.cidr.max_prefix_len() - s.cidr.prefix_len())).unwrap_or(u128::MAX);
        if s.ip_version == 4 {
            args.push(format!("--dhcp-range=set:{tag},{},{mode},{},{lease}", s.cidr.network(), s.cidr.netmask()));
        } else {
            if s.cidr.prefix_len() > 64 {
                // dnsmasq cannot serve DHCPv6 on prefixes longer than /64.
                tracing::debug!(subnet = %s.id, cidr = %s.cidr, "DHCPv6 range skipped: prefix longer than /64");
                continue;
            }
            args.push(format!("--dhcp-range=set:{tag},{},{mode},{},{lease}", s.cidr.network(), s.cidr.prefix_len()));
        }
        possible = possible.saturating_add(size);
    }
    (args, possible)
}

/// The initial `--dhcp-leasefile`: every IPv4 address of the network with
/// an infinite (0) lease so renewals after a restart are not refused; IPv6
/// leases and the DUID of the `existing` file are kept (their IAIDs cannot
/// be made up).
pub fn init_leases(net: &NetModel, existing: &str) -> String {
    let v4: BTreeSet<&str> = net.dhcp_subnets().filter(|s| s.ip_version == 4).map(|s| s.id.as_str()).collect();
    let v6: BTreeSet<&str> = net.dhcp_subnets().filter(|s| s.ip_version == 6).map(|s| s.id.as_str()).collect();
    let mut buf = String::new();
    let mut v6_leases: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for line in existing.lines() {
        if line.starts_with("duid ") {
            let _ = writeln!(buf, "{line}");
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() == 5 {
            if let Ok(ip @ IpAddr::V6(_)) = f[2].parse::<IpAddr>() {
                v6_leases.insert(ip, line);
            }
        }
    }
    for h in host_entries(net, false) {
        if h.no_dhcp {
            continue;
        }
        if v4.contains(h.subnet_id.as_str()) {
            let _ = writeln!(buf, "0 {} {} * *", h.port.mac_address, h.address);
        } else if v6.contains(h.subnet_id.as_str()) {
            if let Some(line) = h.address.parse::<IpAddr>().ok().and_then(|ip| v6_leases.get(&ip)) {
                let _ = writeln!(buf, "{line}");
            }
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::model::{DnsAssignment, ExtraDhcpOpt, FixedIp, HostRoute};

    fn subnet(id: &str, cidr: &str, gw: Option<&str>) -> Subnet {
        Subnet {
            id: id.into(),
            cidr: cidr.parse().unwrap(),
            ip_version: if cidr.contains(':') { 6 } else { 4 },
            enable_dhcp: true,
            gateway_ip: gw.map(|g| g.parse().unwrap()),
            dns_nameservers: vec![],
            host_routes: vec![],
            ipv6_ra_mode: None,
            ipv6_address_mode: None,
            segment_id: None,
        }
    }

    fn port(id: &str, mac: &str, ips: &[(&str, &str)]) -> Port {
        Port {
            id: id.into(),
            mac_address: mac.into(),
            device_id: String::new(),
            device_owner: "compute:nova".into(),
            host: String::new(),
            status: "DOWN".into(),
            revision_number: 1,
            fixed_ips: ips
                .iter()
                .map(|(s, a)| FixedIp { subnet_id: s.to_string(), ip_address: a.to_string() })
                .collect(),
            extra_dhcp_opts: vec![],
            dns_assignment: vec![],
        }
    }

    fn net() -> NetModel {
        let mut s1 = subnet("s1", "10.0.0.0/24", Some("10.0.0.1"));
        s1.host_routes = vec![HostRoute { destination: "10.9.0.0/16".into(), nexthop: "10.0.0.254".into() }];
        let mut s6 = subnet("s6", "fd00::/64", Some("fd00::1"));
        s6.ipv6_address_mode = Some("dhcpv6-stateful".into());
        s6.ipv6_ra_mode = Some("dhcpv6-stateful".into());
        let mut p1 = port("p1", "fa:16:3e:00:00:05", &[("s1", "10.0.0.5"), ("s6", "fd00::5")]);
        p1.dns_assignment = vec![DnsAssignment {
            hostname: "vm1".into(),
            ip_address: "10.0.0.5".into(),
            fqdn: "vm1.example.org.".into(),
        }];
        let mut p2 = port("p2", "fa:16:3e:00:00:06", &[("s1", "10.0.0.6")]);
        p2.extra_dhcp_opts = vec![
            ExtraDhcpOpt { opt_name: "tftp-server".into(), opt_value: "10.0.0.9".into(), ip_version: 4 },
            ExtraDhcpOpt { opt_name: "tag:ipxe,67".into(), opt_value: "boot.ipxe".into(), ip_version: 4 },
        ];
        let mut dhcp = port("pd", "fa:16:3e:00:00:02", &[("s1", "10.0.0.2")]);
        dhcp.device_owner = "network:dhcp".into();
        NetModel {
            id: "n1".into(),
            mtu: 1450,
            dns_domain: "openstacklocal".into(),
            subnets: vec![s1, s6],
            ports: vec![p1, p2, dhcp],
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            hosts_file(&net()),
            "fa:16:3e:00:00:05,vm1.example.org.,10.0.0.5\n\
             fa:16:3e:00:00:05,tag:dhcpv6,host-fd00--5.openstacklocal,[fd00::5]\n\
             fa:16:3e:00:00:06,host-10-0-0-6.openstacklocal,10.0.0.6,set:port-p2\n\
             fa:16:3e:00:00:02,host-10-0-0-2.openstacklocal,10.0.0.2\n"
        );
    }

    #[test]
    fn addn_hosts() {
        let t = addn_hosts_file(&net());
        assert!(
            t.starts_with("10.0.0.5\tvm1.example.org vm1\nfd00::5\thost-fd00--5.openstacklocal host-fd00--5\n"),
            "{t}"
        );
    }

    #[test]
    fn opts() {
        assert_eq!(
            opts_file(&net()),
            "tag:subnet-s1,option:classless-static-route,10.9.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n\
             tag:subnet-s1,249,10.9.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1\n\
             tag:subnet-s1,option:router,10.0.0.1\n\
             tag:subnet-s6,option6:domain-search,openstacklocal\n\
             tag:port-p2,option:tftp-server,10.0.0.9\n\
             tag:port-p2,tag:ipxe,67,boot.ipxe\n"
        );
    }

    #[test]
    fn nameservers_and_no_gateway() {
        let mut n = net();
        n.subnets[0].dns_nameservers = vec!["8.8.8.8".into(), "1.1.1.1".into()];
        n.subnets[0].gateway_ip = None;
        n.subnets[0].host_routes.clear();
        let t = opts_file(&n);
        assert!(t.contains("tag:subnet-s1,option:dns-server,8.8.8.8,1.1.1.1\n"), "{t}");
        assert!(t.contains("tag:subnet-s1,option:router\n"), "{t}");
    }

    #[test]
    fn ranges_and_modes() {
        let mut n = net();
        let mut slaac = subnet("s7", "fd01::/64", None);
        slaac.ipv6_address_mode = Some("slaac".into());
        slaac.ipv6_ra_mode = Some("slaac".into());
        n.subnets.push(slaac);
        let (args, possible) = dhcp_ranges(&n, 86400);
        assert_eq!(
            args,
            vec![
                "--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,86400s".to_string(),
                "--dhcp-range=set:subnet-s6,fd00::,static,64,86400s".to_string(),
            ]
        );
        assert_eq!(possible, 256 + (1u128 << 64));
        assert_eq!(dhcp_ranges(&n, -1).0[0], "--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,infinite");
    }

    #[test]
    fn leases() {
        let existing = "duid 00:01\n1700000000 1234 fd00::5 host *\n";
        let t = init_leases(&net(), existing);
        assert_eq!(
            t,
            "duid 00:01\n0 fa:16:3e:00:00:05 10.0.0.5 * *\n1700000000 1234 fd00::5 host *\n\
             0 fa:16:3e:00:00:06 10.0.0.6 * *\n0 fa:16:3e:00:00:02 10.0.0.2 * *\n"
        );
    }

    #[test]
    fn option_formatting() {
        assert_eq!(format_option(4, "port-x", "26", &["1400"]), "tag:port-x,26,1400");
        assert_eq!(format_option(6, "port-x", "dns-server", &["[::1]"]), "tag:port-x,option6:dns-server,[::1]");
        assert_eq!(format_option(4, "port-x", "mtu\nevil", &["1\n2"]), "tag:port-x,option:mtu,1");
    }
}
