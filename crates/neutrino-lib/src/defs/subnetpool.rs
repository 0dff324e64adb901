//! `subnetpools`: pools of prefixes subnets are carved from.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

fn prefixes(v: &Value) -> Result<Value, String> {
    let list = v.as_array().ok_or_else(|| format!("'{}' is not a list", checks::show(v)))?;
    if list.is_empty() {
        return Err("Empty prefix list".into());
    }
    let mut out = vec![];
    for p in list {
        let s = p.as_str().ok_or_else(|| format!("'{}' is not a valid IP subnet", checks::show(p)))?;
        let n: ipnet::IpNet = s.parse().map_err(|_| format!("'{s}' is not a valid IP subnet"))?;
        out.push(Value::String(n.trunc().to_string()));
    }
    Ok(Value::Array(out))
}

fn not_empty_name(v: &Value) -> Result<Value, String> {
    let s = checks::string(v, 255)?;
    if s.is_empty() {
        return Err("'' Blank strings are not permitted".into());
    }
    Ok(Value::String(s))
}

const ATTRS: &[Attr] = &[
    Attr::ro("name").required().put().fs().check(Check::Custom(not_empty_name)),
    Attr::ro("prefixes").required().put().check(Check::Custom(prefixes)),
    Attr::ro("default_quota").post(Dflt::Unset).put().fs().check(Check::IntOrNull(0, i64::MAX)),
    Attr::ro("ip_version").fs(),
    Attr::ro("default_prefixlen").post(Dflt::Unset).put().fs().check(Check::Int(0, 128)),
    Attr::ro("min_prefixlen").post(Dflt::Unset).put().fs().check(Check::Int(0, 128)),
    Attr::ro("max_prefixlen").post(Dflt::Unset).put().fs().check(Check::Int(0, 128)),
    Attr::ro("is_default").post(Dflt::Bool(false)).put().fs().policy().check(Check::Bool),
    Attr::ro("shared").post(Dflt::Bool(false)).fs().policy().check(Check::Bool),
    Attr::ro("address_scope_id").post(Dflt::Unset).put().fs().check(Check::UuidOrNull),
];

/// The subnet pool resource.
pub static SUBNETPOOL: ResourceDef = ResourceDef {
    member: "subnetpool",
    collection: "subnetpools",
    path: "subnetpools",
    label: "Subnet pool",
    not_found: "SubnetPoolNotFound",
    attrs: ATTRS,
    project: true,
    standard: true,
    tags: true,
};
