//! Neutron's default policy (secure RBAC: admin, member, reader; project
//! scope), applied the same way whatever authenticated the caller.
//!
//! Reading is scoped by the plugins (a resource the caller may not see is
//! "not found"); this module decides what a caller may *do* to what it sees,
//! which attributes it may set, and which attributes it is shown.

use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use serde_json::Value;

/// What is being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// POST.
    Create,
    /// PUT.
    Update,
    /// DELETE.
    Delete,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }
}

/// Attributes only an admin may set, per resource member.
fn admin_only(member: &str) -> &'static [&'static str] {
    match member {
        "network" => &[
            "shared",
            "router:external",
            "provider:network_type",
            "provider:physical_network",
            "provider:segmentation_id",
            "segments",
            "is_default",
        ],
        "port" => &["binding:host_id", "binding:profile", "data_plane_status", "trusted"],
        "subnet" => &["service_types", "segment_id"],
        "subnetpool" => &["is_default", "shared"],
        "address_scope" => &["shared"],
        "router" => &["distributed", "ha", "flavor_id"],
        "floatingip" => &["floating_ip_address"],
        _ => &[],
    }
}

/// Attributes only an admin or the owner of the port's network may set.
fn network_owner_only(member: &str) -> &'static [&'static str] {
    match member {
        "port" => &["mac_address", "port_security_enabled", "allowed_address_pairs"],
        _ => &[],
    }
}

/// Resources only an admin may write at all.
fn admin_resource(member: &str) -> bool {
    matches!(
        member,
        "quota"
            | "network_ip_availability"
            | "agent"
            | "segment"
            | "network_segment_range"
            | "metering_label"
            | "metering_label_rule"
    )
}

/// Attributes hidden from non-admins.
pub fn hidden_from_non_admin(member: &str) -> &'static [&'static str] {
    match member {
        "network" => &["provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"],
        "port" => {
            &["binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details", "resource_request"]
        }
        _ => &[],
    }
}

fn rule(member: &str, op: Op, attr: Option<&str>) -> String {
    match attr {
        Some(a) => format!("rule:{}_{member}:{a}", op.verb()),
        None => format!("rule:{}_{member}", op.verb()),
    }
}

/// The facts a decision may need beyond the target itself.
#[derive(Debug, Default)]
pub struct Related<'a> {
    /// The network a subnet or port belongs to.
    pub network: Option<&'a Map>,
}

impl Related<'_> {
    fn network_owned_by(&self, ctx: &Context) -> bool {
        self.network.is_some_and(|n| ctx.owns(n.get("project_id").and_then(Value::as_str)))
    }
}

/// May the caller perform `op` on `target` with these attributes?
/// `attrs` are the attributes the request sets (the whole item on create).
pub fn authorize(
    ctx: &Context,
    def: &ResourceDef,
    op: Op,
    target: &Map,
    attrs: &Map,
    rel: &Related,
) -> Result<(), Fault> {
    if ctx.is_admin() {
        return Ok(());
    }
    let member = def.member;
    let deny = |attr: Option<&str>| Err(Fault::policy(&rule(member, op, attr)));
    if admin_resource(member) || !ctx.has_role("member") {
        return deny(None);
    }
    let owner = !def.project || ctx.owns(target.get("project_id").and_then(Value::as_str));
    let net_owner = rel.network_owned_by(ctx);
    match (member, op) {
        // A subnet is created by the owner of its network.
        ("subnet", Op::Create) if !net_owner => return deny(None),
        ("subnet", _) | ("port", Op::Update) | ("port", Op::Delete) if !(owner || net_owner) => return deny(None),
        ("subnet", _) | ("port", _) => {}
        _ if !owner => return deny(None),
        _ => {}
    }
    for a in admin_only(member) {
        if let Some(v) = attrs.get(*a) {
            // Restating a default on create is harmless (e.g. shared=false).
            let harmless = op == Op::Create && matches!(v, Value::Bool(false) | Value::Null);
            // Neutron enforces an attribute named in an update whatever its
            // value; restating a subnet's service_types or segment_id is
            // refused as Neutron does.
            let unchanged = op == Op::Update && member != "subnet" && target.get(*a) == Some(v);
            if !harmless && !unchanged {
                return deny(Some(a));
            }
        }
    }
    if member == "router" {
        if let Some(Value::Object(gw)) = attrs.get("external_gateway_info") {
            for a in ["enable_snat", "external_fixed_ips"] {
                let cur = target.get("external_gateway_info").and_then(|g| g.get(a));
                if gw.get(a).is_some_and(|v| Some(v) != cur) {
                    return deny(Some(&format!("external_gateway_info:{a}")));
                }
            }
        }
    }
    if member == "port" && !net_owner {
        for a in network_owner_only(member) {
            if let Some(v) = attrs.get(*a) {
                // Neutron enforces an attribute named in an update whatever its
                // value; restating a subnet's service_types or segment_id is
                // refused as Neutron does.
                let unchanged = op == Op::Update && member != "subnet" && target.get(*a) == Some(v);
                let harmless = *a == "port_security_enabled" && op == Op::Create && v == &Value::Bool(true);
                let empty = *a == "allowed_address_pairs" && v.as_array().is_some_and(|l| l.is_empty());
                if !unchanged && !harmless && !empty {
                    return deny(Some(a));
                }
            }
        }
        if let Some(Value::Array(ips)) = attrs.get("fixed_ips") {
            if ips.iter().any(|f| f.get("ip_address").is_some()) {
                let same = op == Op::Update && target.get("fixed_ips") == attrs.get("fixed_ips");
                if !same {
                    return deny(Some("fixed_ips:ip_address"));
                }
            }
        }
        if let Some(owner_attr) = attrs.get("device_owner").and_then(Value::as_str) {
            if owner_attr.starts_with("network:")
                && target.get("device_owner").and_then(Value::as_str) != Some(owner_attr)
            {
                return deny(Some("device_owner"));
            }
        }
    }
    Ok(())
}

/// Removes what the caller may not see, and internal keys.
pub fn redact(ctx: &Context, def: &ResourceDef, doc: &mut Map) {
    doc.retain(|k, _| !k.starts_with('_'));
    if !ctx.is_admin() {
        for a in hidden_from_non_admin(def.member) {
            doc.remove(*a);
        }
    }
    if def.project && !doc.contains_key("tenant_id") {
        if let Some(p) = doc.get("project_id").cloned() {
            doc.insert("tenant_id".into(), p);
        }
    }
    let _ = stamp::revision;
}

/// Does a reader-only caller try to write?
pub fn may_write(ctx: &Context) -> bool {
    ctx.is_admin() || ctx.has_role("member")
}
