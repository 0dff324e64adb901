//! `networks`: the L2 network, with external-net, provider, multi-provider,
//! net-mtu(-writable), port-security, availability zones, address scopes,
//! dns-integration and auto-allocated-topology's `is_default`.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

/// Validates the multi-provider `segments` list.
fn segments(v: &Value) -> Result<Value, String> {
    let list = v.as_array().ok_or_else(|| format!("'{}' is not a list", checks::show(v)))?;
    let mut out = vec![];
    for s in list {
        let d = s.as_object().ok_or_else(|| format!("'{}' is not a dictionary", checks::show(s)))?;
        let mut o = serde_json::Map::new();
        for (k, val) in d {
            let conv = match k.as_str() {
                "provider:network_type" => {
                    if val.is_null() {
                        Value::Null
                    } else {
                        Value::String(checks::string(val, 32)?)
                    }
                }
                "provider:physical_network" => {
                    if val.is_null() {
                        Value::Null
                    } else {
                        Value::String(checks::string(val, 64)?)
                    }
                }
                "provider:segmentation_id" => {
                    if val.is_null() {
                        Value::Null
                    } else {
                        Value::from(checks::to_int(val)?)
                    }
                }
                other => return Err(format!("Unrecognized attribute(s) '{other}'")),
            };
            o.insert(k.clone(), conv);
        }
        out.push(Value::Object(o));
    }
    Ok(Value::Array(out))
}

const ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).put().fs().check(Check::Str(255)),
    Attr::ro("subnets"),
    Attr::ro("admin_state_up").post(Dflt::Bool(true)).put().fs().check(Check::Bool),
    Attr::ro("status").fs(),
    Attr::ro("shared").post(Dflt::Bool(false)).put().filter().policy().check(Check::Bool),
    Attr::ro("router:external").post(Dflt::Bool(false)).put().filter().policy().check(Check::Bool),
    Attr::ro("mtu").post(Dflt::Int(0)).put().fs().policy().check(Check::Int(0, i64::MAX)),
    Attr::ro("port_security_enabled").post(Dflt::Bool(true)).put().policy().check(Check::Bool),
    Attr::ro("availability_zone_hints").post(Dflt::EmptyList).sort().check(Check::Custom(checks::az_hints)),
    Attr::ro("availability_zones"),
    Attr::ro("ipv4_address_scope"),
    Attr::ro("ipv6_address_scope"),
    Attr::ro("dns_domain").post(Dflt::Str("")).put().check(Check::Custom(checks::dns_domain)),
    Attr::ro("provider:network_type").post(Dflt::Unset).put().filter().policy().check(Check::StrOrNull(32)),
    Attr::ro("provider:physical_network").post(Dflt::Unset).put().filter().policy().check(Check::StrOrNull(64)),
    Attr::ro("provider:segmentation_id").post(Dflt::Unset).put().filter().policy().check(Check::IntOrNull(0, i64::MAX)),
    Attr::ro("segments").post(Dflt::Unset).put().policy().check(Check::Custom(segments)),
    Attr::ro("is_default").post(Dflt::Bool(false)).put().filter().policy().check(Check::Bool),
    Attr::ro("l2_adjacency"),
];

/// The network resource.
pub static NETWORK: ResourceDef = ResourceDef {
    member: "network",
    collection: "networks",
    path: "networks",
    label: "Network",
    not_found: "NetworkNotFound",
    attrs: ATTRS,
    project: true,
    standard: true,
    tags: true,
};

/// Network types known to ML2.
pub mod types {
    /// `local`.
    pub const LOCAL: &str = "local";
    /// `flat`.
    pub const FLAT: &str = "flat";
    /// `vlan`.
    pub const VLAN: &str = "vlan";
    /// `gre`.
    pub const GRE: &str = "gre";
    /// `vxlan`.
    pub const VXLAN: &str = "vxlan";
    /// `geneve`.
    pub const GENEVE: &str = "geneve";
}
