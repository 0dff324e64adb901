//! What a router should look like on this host, computed from the server's
//! [`RouterInfo`] (pure functions, no system access).
//!
//! Names follow Neutron: namespace `qrouter-<router id>`, interfaces
//! `qr-<port id[:11]>`, gateway `qg-<port id[:11]>`; the bridge-side end of
//! each veth pair is `tap<port id[:11]>` (Neutron's `ovs_use_veth` naming).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use neutrino_lib::southbound::{RouterInfo, RouterPort};
use serde_json::Value;

use super::addr::{route_key, Cidr};
use super::config::L3Config;

/// Prefix of router interface devices.
pub const INTERNAL_DEV_PREFIX: &str = "qr-";
/// Prefix of router gateway devices.
pub const EXTERNAL_DEV_PREFIX: &str = "qg-";
/// Prefix of the bridge-side ends.
pub const TAP_PREFIX: &str = "tap";

/// The first 11 characters of a port id (Neutron's device name rule).
pub fn short_id(port_id: &str) -> String {
    port_id.chars().take(11).collect()
}

/// The bridge-side device of a namespace device (`qr-x`/`qg-x` → `tapx`).
pub fn tap_of(dev: &str) -> Option<String> {
    dev.strip_prefix(INTERNAL_DEV_PREFIX)
        .or_else(|| dev.strip_prefix(EXTERNAL_DEV_PREFIX))
        .filter(|s| !s.is_empty())
        .map(|s| format!("{TAP_PREFIX}{s}"))
}

/// One router device (an interface or the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Neutron port id (the OVS `iface-id`).
    pub port_id: String,
    /// Name inside the router namespace (`qr-…` / `qg-…`).
    pub name: String,
    /// Name of the bridge-side end (`tap…`).
    pub tap: String,
    /// MAC address.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Addresses with the prefix length of their subnets, e.g. `10.0.0.1/24`.
    pub cidrs: Vec<String>,
}

impl Device {
    fn from_port(prefix: &str, p: &RouterPort) -> Device {
        let sid = short_id(&p.id);
        let lens: BTreeMap<String, u8> = p
            .subnets
            .iter()
            .filter_map(|s| {
                let id = s.get("id")?.as_str()?;
                let c = Cidr::parse(s.get("cidr")?.as_str()?)?;
                Some((id.to_string(), c.len))
            })
            .collect();
        let cidrs = p
            .fixed_ips
            .iter()
            .filter_map(|f| {
                let ip: IpAddr = f.ip_address.parse().ok()?;
                let len = lens.get(&f.subnet_id).copied().unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
                Some(format!("{ip}/{len}"))
            })
            .collect();
        Device {
            port_id: p.id.clone(),
            name: format!("{prefix}{sid}"),
            tap: format!("{TAP_PREFIX}{sid}"),
            mac: p.mac_address.to_ascii_lowercase(),
            mtu: u32::try_from(p.mtu).ok().filter(|m| *m >= 68).unwrap_or(1500),
            cidrs,
        }
    }
}

/// The gateway: its device, where the default route points, and the SNAT address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The `qg-` device.
    pub device: Device,
    /// Default gateways (one per IP version at most), from the subnets' `gateway_ip`.
    pub gateway_ips: Vec<IpAddr>,
    /// Gateways outside their subnet: reached through an on-link route.
    pub onlink: Vec<IpAddr>,
    /// The first IPv4 address of the gateway port (SNAT source).
    pub snat_ip: Option<Ipv4Addr>,
}

/// A floating IP mapped 1:1 to an internal address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FloatingIp {
    /// Floating IP id.
    pub id: String,
    /// External address.
    pub floating: Ipv4Addr,
    /// Internal address.
    pub fixed: Ipv4Addr,
}

/// An extra route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// Destination as `ip route` prints it (`default`, `10.0.0.0/8`, `10.0.0.1`).
    pub destination: String,
    /// Next hop.
    pub nexthop: IpAddr,
}

/// The complete desired state of one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRouter {
    /// Router id.
    pub id: String,
    /// Its namespace.
    pub namespace: String,
    /// Interfaces (`qr-`).
    pub interfaces: Vec<Device>,
    /// Gateway (`qg-`), if any.
    pub gateway: Option<Gateway>,
    /// SNAT outbound traffic to the gateway address.
    pub enable_snat: bool,
    /// Extra routes.
    pub routes: Vec<Route>,
    /// Floating IPs (IPv4, with a usable internal address).
    pub floating_ips: Vec<FloatingIp>,
    /// Floating IPs the agent cannot configure (reported as ERROR).
    pub bad_floating_ips: Vec<String>,
    /// Administratively up. A router that is down keeps its ports plugged
    /// (they are bound to this host and go ACTIVE, as with Neutron's OVN
    /// driver) but its links stay down: no routing, NAT or floating IPs.
    pub admin_up: bool,
    /// IPv6 prefixes advertised on the interfaces (router advertisements).
    pub ra: Vec<super::ra::RaPrefix>,
}

impl DesiredRouter {
    /// Builds the desired state; `None` when the router must not exist here
    /// (internal-only while such routers are not handled).
    pub fn from_info(cfg: &L3Config, r: &RouterInfo) -> Option<DesiredRouter> {
        if r.gw_port.is_none() && !cfg.handle_internal_only_routers {
            return None;
        }
        let interfaces: Vec<Device> = r.interfaces.iter().map(|p| Device::from_port(INTERNAL_DEV_PREFIX, p)).collect();
        let gateway = r.gw_port.as_ref().map(gateway_of);
        let admin_up = r.admin_state_up;
        let routes = if admin_up { extra_routes(&r.routes) } else { Vec::new() };
        let mut floating_ips = Vec::new();
        let mut bad = Vec::new();
        if !admin_up {
            // Nothing configured: they stay (or go) DOWN.
        } else if gateway.is_some() {
            for f in &r.floating_ips {
                match (f.floating_ip_address.parse::<Ipv4Addr>(), f.fixed_ip_address.parse::<Ipv4Addr>()) {
                    (Ok(floating), Ok(fixed)) => floating_ips.push(FloatingIp { id: f.id.clone(), floating, fixed }),
                    _ => bad.push(f.id.clone()),
                }
            }
        } else {
            bad.extend(r.floating_ips.iter().map(|f| f.id.clone()));
        }
        floating_ips.sort();
        let mut seen = std::collections::BTreeSet::new();
        floating_ips.retain(|f| seen.insert(f.floating));
        Some(DesiredRouter {
            id: r.id.clone(),
            namespace: cfg.router_namespace(&r.id),
            interfaces,
            gateway,
            enable_snat: r.enable_snat && admin_up,
            routes,
            floating_ips,
            bad_floating_ips: bad,
            admin_up,
            ra: if admin_up { r.interfaces.iter().flat_map(super::ra::prefixes_of).collect() } else { Vec::new() },
        })
    }

    /// Every device (interfaces, then the gateway).
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.interfaces.iter().chain(self.gateway.as_ref().map(|g| &g.device))
    }

    /// The addresses each device should carry (the gateway also holds the floating IPs as /32).
    pub fn addresses(&self) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.devices() {
            m.insert(d.name.clone(), d.cidrs.clone());
        }
        if let Some(g) = &self.gateway {
            let e = m.entry(g.device.name.clone()).or_default();
            for f in &self.floating_ips {
                let c = format!("{}/32", f.floating);
                if !e.contains(&c) {
                    e.push(c);
                }
            }
        }
        m
    }

    /// Whether any address or route of the router is IPv6.
    pub fn has_ipv6(&self) -> bool {
        self.devices().flat_map(|d| d.cidrs.iter()).any(|c| c.contains(':'))
            || self.routes.iter().any(|r| r.nexthop.is_ipv6())
    }
}

fn gateway_of(p: &RouterPort) -> Gateway {
    let device = Device::from_port(EXTERNAL_DEV_PREFIX, p);
    let mut gateway_ips: Vec<IpAddr> = Vec::new();
    let mut onlink = Vec::new();
    for s in &p.subnets {
        let Some(gw) = s.get("gateway_ip").and_then(Value::as_str).and_then(|g| g.parse::<IpAddr>().ok()) else {
            continue;
        };
        if gateway_ips.iter().any(|g| g.is_ipv4() == gw.is_ipv4()) {
            continue;
        }
        let inside =
            s.get("cidr").and_then(Value::as_str).and_then(Cidr::parse).map(|c| c.contains(&gw)).unwrap_or(true);
        if !inside {
            onlink.push(gw);
        }
        gateway_ips.push(gw);
    }
    let snat_ip = p.fixed_ips.iter().find_map(|f| f.ip_address.parse::<Ipv4Addr>().ok());
    Gateway { device, gateway_ips, onlink, snat_ip }
}

fn extra_routes(routes: &[Value]) -> Vec<Route> {
    let mut out: Vec<Route> = routes
        .iter()
        .filter_map(|r| {
            let destination = route_key(r.get("destination")?.as_str()?)?;
            let nexthop = r.get("nexthop")?.as_str()?.parse().ok()?;
            Some(Route { destination, nexthop })
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.destination == b.destination && a.nexthop.is_ipv4() == b.nexthop.is_ipv4());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use neutrino_lib::southbound::{FixedIp, FloatingIpInfo};
    use serde_json::json;

    pub(crate) fn port(id: &str, net: &str, mac: &str, ip: &str, cidr: &str, gw: &str) -> RouterPort {
        RouterPort {
            id: id.into(),
            network_id: net.into(),
            mac_address: mac.into(),
            fixed_ips: vec![FixedIp { subnet_id: format!("s-{id}"), ip_address: ip.into() }],
            subnets: vec![json!({"id": format!("s-{id}"), "cidr": cidr, "gateway_ip": gw, "ip_version": 4})],
            mtu: 1450,
        }
    }

    pub(crate) fn router() -> RouterInfo {
        RouterInfo {
            id: "r1".into(),
            admin_state_up: true,
            enable_snat: true,
            gw_port: Some(port(
                "gggggggggggg-1",
                "ext",
                "FA:16:3E:00:00:01",
                "203.0.113.10",
                "203.0.113.0/24",
                "203.0.113.1",
            )),
            interfaces: vec![
                port("aaaaaaaaaaaa-1", "n1", "fa:16:3e:00:01:01", "10.1.0.1", "10.1.0.0/24", "10.1.0.1"),
                port("bbbbbbbbbbbb-2", "n2", "fa:16:3e:00:02:01", "10.2.0.1", "10.2.0.0/24", "10.2.0.1"),
            ],
            routes: vec![json!({"destination": "10.9.0.0/16", "nexthop": "10.1.0.254"})],
            floating_ips: vec![
                FloatingIpInfo {
                    id: "f1".into(),
                    floating_ip_address: "203.0.113.50".into(),
                    fixed_ip_address: "10.1.0.11".into(),
                    port_id: "p1".into(),
                },
                FloatingIpInfo {
                    id: "f2".into(),
                    floating_ip_address: "nonsense".into(),
                    fixed_ip_address: "10.1.0.12".into(),
                    port_id: "p2".into(),
                },
            ],
        }
    }

    #[test]
    fn builds_names_addresses_and_routes() {
        let cfg = L3Config::new("h");
        let d = DesiredRouter::from_info(&cfg, &router()).unwrap();
        assert_eq!(d.namespace, "qrouter-r1");
        assert_eq!(d.interfaces[0].name, "qr-aaaaaaaaaaa");
        assert_eq!(d.interfaces[0].tap, "tapaaaaaaaaaaa");
        assert_eq!(d.interfaces[0].cidrs, vec!["10.1.0.1/24"]);
        let g = d.gateway.as_ref().unwrap();
        assert_eq!(g.device.name, "qg-ggggggggggg");
        assert_eq!(g.device.mac, "fa:16:3e:00:00:01");
        assert_eq!(g.gateway_ips, vec!["203.0.113.1".parse::<IpAddr>().unwrap()]);
        assert!(g.onlink.is_empty());
        assert_eq!(g.snat_ip, Some(Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!(d.routes, vec![Route { destination: "10.9.0.0/16".into(), nexthop: "10.1.0.254".parse().unwrap() }]);
        assert_eq!(d.floating_ips.len(), 1);
        assert_eq!(d.bad_floating_ips, vec!["f2".to_string()]);
        assert_eq!(d.addresses()["qg-ggggggggggg"], vec!["203.0.113.10/24", "203.0.113.50/32"]);
        assert_eq!(tap_of("qg-ggggggggggg").as_deref(), Some("tapggggggggggg"));
        assert!(!d.has_ipv6());
    }

    #[test]
    fn down_or_gatewayless_routers() {
        let cfg = L3Config::new("h");
        let mut r = router();
        r.admin_state_up = false;
        let d = DesiredRouter::from_info(&cfg, &r).unwrap();
        assert!(!d.admin_up);
        assert_eq!(d.devices().count(), 3, "its ports stay plugged");
        assert!(d.floating_ips.is_empty() && d.bad_floating_ips.is_empty() && d.routes.is_empty());
        assert!(!d.enable_snat);
        let mut r = router();
        r.gw_port = None;
        let d = DesiredRouter::from_info(&cfg, &r).unwrap();
        assert!(d.floating_ips.is_empty());
        assert_eq!(d.bad_floating_ips.len(), 2);
        let mut cfg = cfg;
        cfg.handle_internal_only_routers = false;
        assert!(DesiredRouter::from_info(&cfg, &r).is_none());
    }

    #[test]
    fn gateway_outside_subnet_is_onlink() {
        let p = port("gggggggggggg-1", "ext", "fa:16:3e:00:00:01", "198.51.100.10", "198.51.100.0/28", "198.51.100.99");
        let g = gateway_of(&p);
        assert_eq!(g.onlink, vec!["198.51.100.99".parse::<IpAddr>().unwrap()]);
    }
}
