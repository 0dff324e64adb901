//! `quotas`: per-project limits. Members are addressed by project id.

use crate::attr::{Attr, Check, Dflt};
use crate::resource::ResourceDef;

/// Neutron's default limits (`[quotas]` in neutron.conf); -1 is unlimited.
pub const DEFAULTS: &[(&str, i64)] = &[
    ("network", 100),
    ("subnet", 100),
    ("port", 500),
    ("router", 10),
    ("floatingip", 50),
    ("security_group", 10),
    ("security_group_rule", 100),
    ("subnetpool", -1),
    ("rbac_policy", 10),
];

const ATTRS: &[Attr] = &[
    Attr::ro("network").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("subnet").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("port").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("router").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("floatingip").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("security_group").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("security_group_rule").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("subnetpool").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("rbac_policy").post(Dflt::Unset).put().check(Check::Int(-1, i32::MAX as i64)),
    Attr::ro("force").post(Dflt::Unset).put().hidden().check(Check::Bool),
    Attr::ro("check_limit").post(Dflt::Unset).put().hidden().check(Check::Bool),
];

/// The quota resource.
pub static QUOTA: ResourceDef = ResourceDef {
    member: "quota",
    collection: "quotas",
    path: "quotas",
    label: "Quota",
    not_found: "NotFound",
    attrs: ATTRS,
    project: true,
    standard: false,
    tags: false,
};
