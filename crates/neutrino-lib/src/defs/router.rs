//! `routers` and `floatingips` (the L3 service plugin).

use serde_json::{Map, Value};

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

/// `external_gateway_info`: null, `{}`, or `{network_id, enable_snat?, external_fixed_ips?}`.
fn gateway_info(v: &Value) -> Result<Value, String> {
    let d = match v {
        Value::Null => return Ok(Value::Null),
        Value::Object(d) if d.is_empty() => return Ok(Value::Null),
        Value::Object(d) => d,
        other => return Err(format!("'{}' is not a dictionary", checks::show(other))),
    };
    let unknown: Vec<&String> = d
        .keys()
        .filter(|k| !["network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"].contains(&k.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut out = Map::new();
    match d.get("network_id") {
        Some(n) => {
            out.insert("network_id".into(), Value::String(checks::uuid(n)?));
        }
        None => return Err("Validation of dictionary's keys failed. Expected keys: {'network_id'}".into()),
    }
    if let Some(s) = d.get("enable_snat") {
        out.insert("enable_snat".into(), Value::Bool(checks::to_bool(s)?));
    }
    if let Some(f) = d.get("external_fixed_ips") {
        out.insert("external_fixed_ips".into(), checks::fixed_ips(f)?);
    }
    Ok(Value::Object(out))
}

const ROUTER_ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).put().fs().check(Check::Str(255)),
    Attr::ro("admin_state_up").post(Dflt::Bool(true)).put().fs().check(Check::Bool),
    Attr::ro("status").sort(),
    Attr::ro("external_gateway_info").post(Dflt::Null).put().policy().check(Check::Custom(gateway_info)),
    Attr::ro("routes").put().check(Check::Custom(checks::host_routes)),
    Attr::ro("availability_zone_hints").post(Dflt::EmptyList).check(Check::Custom(checks::az_hints)),
    Attr::ro("availability_zones"),
];

/// The router resource.
pub static ROUTER: ResourceDef = ResourceDef {
    member: "router",
    collection: "routers",
    path: "routers",
    label: "Router",
    not_found: "RouterNotFound",
    attrs: ROUTER_ATTRS,
    project: true,
    standard: true,
    tags: true,
};

const FIP_ATTRS: &[Attr] = &[
    Attr::ro("floating_ip_address").post(Dflt::Null).fs().policy().check(Check::IpOrNull),
    Attr::ro("subnet_id").post(Dflt::Null).hidden().check(Check::UuidOrNull),
    Attr::ro("floating_network_id").required().fs().check(Check::Uuid),
    Attr::ro("router_id").fs(),
    Attr::ro("port_id").post(Dflt::Null).put().filter().check(Check::UuidOrNull),
    Attr::ro("fixed_ip_address").post(Dflt::Null).put().fs().check(Check::IpOrNull),
    Attr::ro("status").fs(),
    Attr::ro("port_details"),
    Attr::ro("port_forwardings"),
    Attr::ro("dns_name").post(Dflt::Str("")).check(Check::Custom(checks::dns_name)),
    Attr::ro("dns_domain").post(Dflt::Str("")).check(Check::Custom(checks::dns_domain)),
];

/// The floating IP resource.
pub static FLOATINGIP: ResourceDef = ResourceDef {
    member: "floatingip",
    collection: "floatingips",
    path: "floatingips",
    label: "Floating IP",
    not_found: "FloatingIPNotFound",
    attrs: FIP_ATTRS,
    project: true,
    standard: true,
    tags: true,
};
