//! Typed views of what the server sends for one network
//! ([`neutrino_lib::southbound::DhcpNetwork`]): the subnets and ports the
//! DHCP server is configured from.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use neutrino_lib::southbound::DhcpNetwork;
use serde::Deserialize;
use serde_json::Value;

use super::error::{DhcpError, Result};

/// `ipv6_address_mode` / `ipv6_ra_mode` values.
pub mod ipv6_mode {
    /// Addresses and options by DHCPv6.
    pub const STATEFUL: &str = "dhcpv6-stateful";
    /// Addresses by SLAAC, options by DHCPv6.
    pub const STATELESS: &str = "dhcpv6-stateless";
    /// Addresses by SLAAC, no DHCPv6.
    pub const SLAAC: &str = "slaac";
}

/// Device owners of router interfaces (a subnet whose gateway is such a
/// port is not isolated).
pub const ROUTER_INTERFACE_OWNERS: &[&str] =
    &["network:router_interface", "network:ha_router_replicated_interface", "network:router_interface_distributed"];

/// Ports that never ask for DHCP: no host entry is written for them.
pub const DHCP_NOT_REQUIRED_OWNERS: &[&str] = &[
    "network:router_ha_interface",
    "network:distributed",
    "network:floatingip",
    "network:floatingip_agent_gateway",
    "network:router_centralized_snat",
];

/// A static route of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HostRoute {
    /// Destination CIDR.
    pub destination: String,
    /// Next hop.
    pub nexthop: String,
}

/// A subnet as the DHCP server sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subnet {
    /// Id.
    pub id: String,
    /// The CIDR.
    pub cidr: IpNet,
    /// 4 or 6.
    pub ip_version: u8,
    /// Whether DHCP serves it.
    pub enable_dhcp: bool,
    /// Gateway address.
    pub gateway_ip: Option<IpAddr>,
    /// DNS servers announced (empty: the DHCP port's own address).
    pub dns_nameservers: Vec<String>,
    /// Static routes (options 121/249).
    pub host_routes: Vec<HostRoute>,
    /// Who sends router advertisements, and how.
    pub ipv6_ra_mode: Option<String>,
    /// How IPv6 addresses are assigned.
    pub ipv6_address_mode: Option<String>,
    /// Routed-network segment.
    pub segment_id: Option<String>,
}

/// An address of a port.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FixedIp {
    /// Subnet id.
    pub subnet_id: String,
    /// Address.
    pub ip_address: String,
}

/// A per-port DHCP option (`extra_dhcp_opts`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExtraDhcpOpt {
    /// Option name or number, optionally prefixed by `tag:<tag>,`.
    pub opt_name: String,
    /// Value.
    #[serde(default, deserialize_with = "string_or_number")]
    pub opt_value: String,
    /// 4 or 6.
    #[serde(default = "four")]
    pub ip_version: u8,
}

fn four() -> u8 {
    4
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// A DNS name of one address of a port (`dns_assignment`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DnsAssignment {
    /// Short name.
    pub hostname: String,
    /// Address.
    pub ip_address: String,
    /// Fully qualified name.
    pub fqdn: String,
}

/// A port of the network.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Port {
    /// Id.
    pub id: String,
    /// MAC address.
    pub mac_address: String,
    /// Owner device.
    #[serde(default)]
    pub device_id: String,
    /// Owner kind (`compute:nova`, `network:dhcp`, ...).
    #[serde(default)]
    pub device_owner: String,
    /// Host the port is bound to.
    #[serde(default, rename = "binding:host_id")]
    pub host: String,
    /// Status.
    #[serde(default)]
    pub status: String,
    /// Revision number.
    #[serde(default)]
    pub revision_number: i64,
    /// Addresses.
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    /// Per-port DHCP options.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub extra_dhcp_opts: Vec<ExtraDhcpOpt>,
    /// DNS names of the addresses.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub dns_assignment: Vec<DnsAssignment>,
}

fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl Port {
    /// Whether dnsmasq needs host entries for this port.
    pub fn requires_dhcp(&self) -> bool {
        !DHCP_NOT_REQUIRED_OWNERS.contains(&self.device_owner.as_str())
    }

    /// The IP versions of its addresses.
    pub fn ip_versions(&self) -> BTreeSet<u8> {
        self.fixed_ips
            .iter()
            .filter_map(|f| f.ip_address.parse::<IpAddr>().ok())
            .map(|a| if a.is_ipv4() { 4 } else { 6 })
            .collect()
    }
}

/// One network as the DHCP agent serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetModel {
    /// Network id.
    pub id: String,
    /// MTU (0: unknown, not announced).
    pub mtu: i64,
    /// DNS domain (without the trailing dot).
    pub dns_domain: String,
    /// Subnets.
    pub subnets: Vec<Subnet>,
    /// Ports.
    pub ports: Vec<Port>,
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
}

impl Subnet {
    /// Parses a subnet document.
    pub fn from_doc(v: &Value) -> Result<Subnet> {
        let id = opt_str(v, "id").ok_or_else(|| DhcpError::Model("subnet without id".into()))?;
        let cidr_s = opt_str(v, "cidr").ok_or_else(|| DhcpError::Model(format!("subnet {id} without cidr")))?;
        let cidr: IpNet = cidr_s.parse().map_err(|_| DhcpError::Model(format!("subnet {id}: bad cidr {cidr_s:?}")))?;
        let strings = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let host_routes = v
            .get("host_routes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|r| HostRoute::deserialize(r).ok()).collect())
            .unwrap_or_default();
        Ok(Subnet {
            ip_version: if cidr.addr().is_ipv4() { 4 } else { 6 },
            enable_dhcp: v.get("enable_dhcp").and_then(Value::as_bool).unwrap_or(true),
            gateway_ip: opt_str(v, "gateway_ip").and_then(|g| g.parse().ok()),
            dns_nameservers: strings("dns_nameservers"),
            host_routes,
            ipv6_ra_mode: opt_str(v, "ipv6_ra_mode"),
            ipv6_address_mode: opt_str(v, "ipv6_address_mode"),
            segment_id: opt_str(v, "segment_id"),
            id,
            cidr,
        })
    }

    /// Whether dnsmasq hands out addresses/options on this subnet at all
    /// (DHCP enabled, and not an IPv6 SLAAC subnet).
    pub fn serves_dhcp(&self) -> bool {
        self.enable_dhcp && !(self.ip_version == 6 && self.ipv6_address_mode.as_deref() == Some(ipv6_mode::SLAAC))
    }
}

impl NetModel {
    /// Builds the typed view of the server's document. Ports that cannot be
    /// parsed are skipped with a warning (one bad port must not stop DHCP
    /// for the whole network).
    pub fn from_wire(n: &DhcpNetwork) -> Result<NetModel> {
        let subnets = n.subnets.iter().map(Subnet::from_doc).collect::<Result<Vec<_>>>()?;
        let mut ports = Vec::with_capacity(n.ports.len());
        for p in &n.ports {
            match Port::deserialize(p) {
                Ok(p) => ports.push(p),
                Err(e) => tracing::warn!(network = %n.id, error = %e, "skipping a port the agent cannot read"),
            }
        }
        Ok(NetModel {
            id: n.id.clone(),
            mtu: n.mtu,
            dns_domain: n.dns_domain.trim_end_matches('.').to_string(),
            subnets,
            ports,
        })
    }

    /// The subnets with DHCP enabled.
    pub fn dhcp_subnets(&self) -> impl Iterator<Item = &Subnet> {
        self.subnets.iter().filter(|s| s.enable_dhcp)
    }

    /// A subnet by id.
    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.id == id)
    }

    /// Replaces (or adds) a port.
    pub fn upsert_port(&mut self, port: Port) {
        match self.ports.iter_mut().find(|p| p.id == port.id) {
            Some(p) => *p = port,
            None => self.ports.push(port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_documents() {
        let n = DhcpNetwork {
            id: "n1".into(),
            mtu: 1450,
            dns_domain: "openstacklocal.".into(),
            subnets: vec![json!({"id": "s1", "cidr": "10.0.0.0/24", "enable_dhcp": true, "gateway_ip": "10.0.0.1",
                "dns_nameservers": [], "host_routes": [{"destination": "10.1.0.0/16", "nexthop": "10.0.0.9"}],
                "ipv6_ra_mode": null, "ipv6_address_mode": null})],
            ports: vec![
                json!({"id": "p1", "mac_address": "fa:16:3e:00:00:01", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.5"}],
                "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": 1400, "ip_version": 4}], "dns_assignment": null}),
                json!({"id": "broken"}),
            ],
        };
        let m = NetModel::from_wire(&n).unwrap();
        assert_eq!(m.dns_domain, "openstacklocal");
        assert_eq!(m.subnets[0].host_routes.len(), 1);
        assert_eq!(m.ports.len(), 1);
        assert_eq!(m.ports[0].extra_dhcp_opts[0].opt_value, "1400");
        assert_eq!(m.ports[0].ip_versions(), BTreeSet::from([4]));
    }
}
