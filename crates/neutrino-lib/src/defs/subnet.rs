//! `subnets`: L3 subnets with allocation pools, DNS, host routes, IPv6 modes,
//! subnet pools, segments and service types.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

/// IPv6 RA/address modes.
pub const IPV6_MODES: &[&str] = &["dhcpv6-stateful", "dhcpv6-stateless", "slaac"];

fn ip_version(v: &Value) -> Result<Value, String> {
    match checks::to_int(v)? {
        4 => Ok(Value::from(4)),
        6 => Ok(Value::from(6)),
        other => Err(format!("'{other}' is not in [4, 6]")),
    }
}

fn cidr_or_null(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    checks::subnet_cidr(v).map(Value::String)
}

fn subnetpool_id(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s == "prefix_delegation" => Ok(v.clone()),
        other => checks::uuid(other).map(Value::String),
    }
}

/// Neutron's `type:list_of_subnet_service_types`: a list of strings, each
/// starting with `network:` or `neutron:`, or with one of the characters of
/// `compute:` (neutron-lib extends its prefix list with that string, which
/// adds its characters); refused with `InvalidSubnetServiceType`.
fn service_types(v: &Value) -> Result<Value, crate::Fault> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let list = v.as_array().ok_or_else(|| crate::Fault::bad_request("Subnet service types must be a list."))?;
    let prefixes: Vec<String> =
        ["network:", "neutron:"].iter().map(|p| p.to_string()).chain("compute:".chars().map(String::from)).collect();
    let mut out = vec![];
    for item in list {
        let Some(s) = item.as_str() else {
            return Err(crate::Fault::new(
                400,
                "InvalidInputSubnetServiceType",
                format!("Subnet service type {} is not a string.", checks::show(item)),
            ));
        };
        if !prefixes.iter().any(|p| s.starts_with(p.as_str())) {
            return Err(crate::Fault::new(
                400,
                "InvalidSubnetServiceType",
                format!("Subnet service type {s} does not correspond to a valid device owner."),
            ));
        }
        out.push(Value::String(s.to_string()));
    }
    Ok(Value::Array(out))
}

const ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).put().fs().check(Check::Str(255)),
    Attr::ro("ip_version").required().fs().check(Check::Custom(ip_version)),
    // Not shown: a subnet is shared when its network is (a filter only).
    Attr::ro("shared").hidden().filter().check(Check::Bool),
    Attr::ro("network_id").required().fs().check(Check::Uuid),
    Attr::ro("subnetpool_id").post(Dflt::Unset).fs().check(Check::Custom(subnetpool_id)),
    Attr::ro("prefixlen").post(Dflt::Unset).hidden().check(Check::Int(0, 128)),
    Attr::ro("cidr").post(Dflt::Unset).fs().check(Check::Custom(cidr_or_null)),
    Attr::ro("gateway_ip").post(Dflt::Unset).put().fs().check(Check::IpOrNull),
    Attr::ro("allocation_pools").post(Dflt::Unset).put().check(Check::Custom(checks::allocation_pools)),
    Attr::ro("dns_nameservers").post(Dflt::Unset).put().check(Check::Custom(checks::nameservers)),
    Attr::ro("host_routes").post(Dflt::Unset).put().check(Check::Custom(checks::host_routes)),
    Attr::ro("enable_dhcp").post(Dflt::Bool(true)).put().fs().check(Check::Bool),
    Attr::ro("ipv6_ra_mode").post(Dflt::Unset).fs().check(Check::ValuesOrNull(IPV6_MODES)),
    Attr::ro("ipv6_address_mode").post(Dflt::Unset).fs().check(Check::ValuesOrNull(IPV6_MODES)),
    Attr::ro("segment_id").post(Dflt::Null).put().fs().check(Check::UuidOrNull),
    Attr::ro("service_types").post(Dflt::Unset).put().check(Check::Conv(service_types)),
    Attr::ro("dns_publish_fixed_ip").post(Dflt::Bool(false)).put().check(Check::Bool),
    Attr::ro("use_default_subnetpool").post(Dflt::Bool(false)).hidden().check(Check::Bool),
    Attr::ro("router:external").filter(),
];

/// The subnet resource.
pub static SUBNET: ResourceDef = ResourceDef {
    member: "subnet",
    collection: "subnets",
    path: "subnets",
    label: "Subnet",
    not_found: "SubnetNotFound",
    attrs: ATTRS,
    project: true,
    standard: true,
    tags: true,
};
