//! `ports`: with binding, port-security, security groups, allowed address
//! pairs, extra DHCP options, dns-integration, ip_allocation and friends.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

/// VNIC types of the binding extension.
pub const VNIC_TYPES: &[&str] = &[
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "accelerator-direct",
    "accelerator-direct-physical",
    "remote-managed",
];

fn mac_or_null(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    checks::mac(v).map(Value::String)
}

fn host_id(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::String(String::new()));
    }
    checks::string(v, 255).map(Value::String)
}

fn profile(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Object(Default::default())),
        Value::Object(_) => Ok(v.clone()),
        other => Err(format!("'{}' is not a dictionary", checks::show(other))),
    }
}

const NUMA: &[&str] = &["required", "preferred", "legacy", "socket"];

const ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).put().fs().check(Check::Str(255)),
    Attr::ro("network_id").required().fs().check(Check::Uuid),
    Attr::ro("admin_state_up").post(Dflt::Bool(true)).put().fs().check(Check::Bool),
    Attr::ro("mac_address").post(Dflt::Unset).put().fs().policy().check(Check::Custom(mac_or_null)),
    Attr::ro("fixed_ips").post(Dflt::Unset).put().filter().policy().check(Check::Custom(checks::fixed_ips)),
    Attr::ro("device_id").post(Dflt::Str("")).put().fs().policy().check(Check::Str(255)),
    Attr::ro("device_owner").post(Dflt::Str("")).put().fs().policy().check(Check::Str(255)),
    Attr::ro("status").fs(),
    Attr::ro("security_groups").post(Dflt::Unset).put().filter().check(Check::UuidList),
    Attr::ro("allowed_address_pairs").post(Dflt::Unset).put().policy().check(Check::Custom(checks::address_pairs)),
    Attr::ro("extra_dhcp_opts").post(Dflt::EmptyList).put().check(Check::Custom(checks::extra_dhcp_opts)),
    Attr::ro("port_security_enabled").post(Dflt::Unset).put().policy().check(Check::Bool),
    Attr::ro("dns_name").post(Dflt::Str("")).put().check(Check::Custom(checks::dns_name)),
    Attr::ro("dns_assignment"),
    Attr::ro("dns_domain").post(Dflt::Str("")).put().check(Check::Custom(checks::dns_domain)),
    Attr::ro("binding:host_id").post(Dflt::Str("")).put().filter().policy().check(Check::Custom(host_id)),
    Attr::ro("binding:vnic_type").post(Dflt::Str("normal")).put().filter().policy().check(Check::Values(VNIC_TYPES)),
    Attr::ro("binding:profile").post(Dflt::EmptyObj).put().policy().check(Check::Custom(profile)),
    Attr::ro("binding:vif_type").policy(),
    Attr::ro("binding:vif_details").policy(),
    Attr::ro("ip_allocation").fs(),
    Attr::ro("propagate_uplink_status").post(Dflt::Bool(true)).check(Check::Bool),
    Attr::ro("resource_request"),
    Attr::ro("data_plane_status").put().policy().check(Check::ValuesOrNull(&["ACTIVE", "DOWN"])),
    Attr::ro("numa_affinity_policy").post(Dflt::Null).put().check(Check::ValuesOrNull(NUMA)),
    Attr::ro("device_profile").post(Dflt::Null).check(Check::StrOrNull(255)),
    Attr::ro("trusted").post(Dflt::Unset).put().policy().check(Check::Bool),
];

/// The port resource.
pub static PORT: ResourceDef = ResourceDef {
    member: "port",
    collection: "ports",
    path: "ports",
    label: "Port",
    not_found: "PortNotFound",
    attrs: ATTRS,
    project: true,
    standard: true,
    tags: true,
};
