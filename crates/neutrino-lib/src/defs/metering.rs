//! `metering/metering-labels` and `metering/metering-label-rules`, and
//! `service-providers`.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

fn cidr_or_null(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        other => checks::subnet_cidr(other).map(Value::String),
    }
}

const LABEL_ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).fs().check(Check::Str(255)),
    Attr::ro("description").post(Dflt::Str("")).fs().check(Check::Str(1024)),
    Attr::ro("shared").post(Dflt::Bool(false)).fs().check(Check::Bool),
];

/// A metering label.
pub static METERING_LABEL: ResourceDef = ResourceDef {
    member: "metering_label",
    collection: "metering_labels",
    path: "metering/metering-labels",
    label: "Metering label",
    not_found: "MeteringLabelNotFound",
    attrs: LABEL_ATTRS,
    project: true,
    standard: false,
    tags: false,
};

const RULE_ATTRS: &[Attr] = &[
    Attr::ro("metering_label_id").required().fs().check(Check::Uuid),
    Attr::ro("direction").required().fs().check(Check::Values(&["ingress", "egress"])),
    Attr::ro("excluded").post(Dflt::Bool(false)).fs().check(Check::Bool),
    Attr::ro("remote_ip_prefix").post(Dflt::Null).fs().check(Check::Custom(cidr_or_null)),
    Attr::ro("source_ip_prefix").post(Dflt::Null).fs().check(Check::Custom(cidr_or_null)),
    Attr::ro("destination_ip_prefix").post(Dflt::Null).fs().check(Check::Custom(cidr_or_null)),
];

/// A metering label rule.
pub static METERING_LABEL_RULE: ResourceDef = ResourceDef {
    member: "metering_label_rule",
    collection: "metering_label_rules",
    path: "metering/metering-label-rules",
    label: "Metering label rule",
    not_found: "MeteringLabelRuleNotFound",
    attrs: RULE_ATTRS,
    project: true,
    standard: false,
    tags: false,
};

const PROVIDER_ATTRS: &[Attr] =
    &[Attr::ro("service_type").filter(), Attr::ro("name").filter(), Attr::ro("default").filter()];

/// The service providers (read-only).
pub static SERVICE_PROVIDER: ResourceDef = ResourceDef {
    member: "service_provider",
    collection: "service_providers",
    path: "service-providers",
    label: "Service provider",
    not_found: "ServiceProviderNotFound",
    attrs: PROVIDER_ATTRS,
    project: false,
    standard: false,
    tags: false,
};
