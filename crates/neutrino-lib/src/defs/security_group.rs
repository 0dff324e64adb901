//! `security-groups` and `security-group-rules`.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;
use crate::Fault;

/// IP protocol names accepted in rules, with their numbers.
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

fn invalid_protocol(v: &Value) -> Fault {
    let names: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
    Fault::new(
        400,
        "SecurityGroupRuleInvalidProtocol",
        format!(
            "Security group rule protocol {} not supported. Only protocol values [None, 'any', {}] and integer representations [0 to 255] are supported.",
            checks::show(v),
            names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        ),
    )
}

/// Neutron's `convert_protocol`: null/"any" → null; 0..255 → the number as a
/// string; a known name → lower-case name.
fn protocol(v: &Value) -> Result<Value, Fault> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s.eq_ignore_ascii_case("any") => Ok(Value::Null),
        Value::Number(n) => match n.as_i64() {
            Some(i) if (0..=255).contains(&i) => Ok(Value::String(i.to_string())),
            _ => Err(invalid_protocol(v)),
        },
        Value::String(s) => {
            if let Ok(i) = s.parse::<i64>() {
                return if (0..=255).contains(&i) { Ok(Value::String(s.clone())) } else { Err(invalid_protocol(v)) };
            }
            let l = s.to_ascii_lowercase();
            if PROTOCOLS.iter().any(|(n, _)| *n == l) {
                Ok(Value::String(l))
            } else {
                Err(invalid_protocol(v))
            }
        }
        _ => Err(invalid_protocol(v)),
    }
}

fn port_value(v: &Value) -> Result<Value, Fault> {
    let bad =
        || Fault::new(400, "SecurityGroupInvalidPortValue", format!("Invalid value for port {}", checks::show(v)));
    match v {
        Value::Null => Ok(Value::Null),
        other => match checks::to_int(other) {
            Ok(i) if (0..=65535).contains(&i) => Ok(Value::from(i)),
            _ => Err(bad()),
        },
    }
}

fn ethertype(v: &Value) -> Result<Value, Fault> {
    if let Value::String(s) = v {
        for e in ["IPv4", "IPv6"] {
            if e.eq_ignore_ascii_case(s) {
                return Ok(Value::String(e.into()));
            }
        }
    }
    Err(Fault::new(
        400,
        "SecurityGroupRuleInvalidEtherType",
        format!(
            "Security group rule for ethertype '{}' not supported. Allowed values are ['IPv4', 'IPv6'].",
            checks::show(v)
        ),
    ))
}

fn remote_ip_prefix(v: &Value) -> Result<Value, Fault> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) if s.is_empty() => Ok(Value::Null),
        Value::String(s) => {
            if let Some(ip) = checks::parse_ip(s) {
                let len = if ip.is_ipv4() { 32 } else { 128 };
                return Ok(Value::String(format!("{ip}/{len}")));
            }
            match s.parse::<ipnet::IpNet>() {
                Ok(n) => Ok(Value::String(n.to_string())),
                Err(_) => Err(Fault::new(400, "InvalidCIDR", format!("Invalid CIDR {s} given as IP prefix."))),
            }
        }
        other => {
            Err(Fault::new(400, "InvalidCIDR", format!("Invalid CIDR {} given as IP prefix.", checks::show(other))))
        }
    }
}

fn name_not_default(v: &Value) -> Result<Value, Fault> {
    let s = checks::string(v, 255).map_err(|r| Fault::bad_request(format!("Invalid input for name. Reason: {r}.")))?;
    if s.eq_ignore_ascii_case("default") {
        return Err(Fault::conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists."));
    }
    Ok(Value::String(s))
}

fn uuid_or_null_str(v: &Value) -> Result<Value, String> {
    match v {
        Value::Null => Ok(Value::Null),
        other => checks::string(other, 36).map(Value::String),
    }
}

const SG_ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).put().fs().check(Check::Conv(name_not_default)),
    Attr::ro("stateful").post(Dflt::Bool(true)).put().filter().check(Check::Bool),
    Attr::ro("shared").filter(),
    Attr::ro("security_group_rules"),
];

/// The security group resource.
pub static SECURITY_GROUP: ResourceDef = ResourceDef {
    member: "security_group",
    collection: "security_groups",
    path: "security-groups",
    label: "Security group",
    not_found: "SecurityGroupNotFound",
    attrs: SG_ATTRS,
    project: true,
    standard: true,
    tags: true,
};

const RULE_ATTRS: &[Attr] = &[
    Attr::ro("security_group_id").required().fs().check(Check::Str(36)),
    Attr::ro("remote_group_id").post(Dflt::Null).fs().check(Check::Custom(uuid_or_null_str)),
    Attr::ro("direction").required().fs().check(Check::Values(&["ingress", "egress"])),
    Attr::ro("protocol").post(Dflt::Null).fs().check(Check::Conv(protocol)),
    Attr::ro("port_range_min").post(Dflt::Null).fs().check(Check::Conv(port_value)),
    Attr::ro("port_range_max").post(Dflt::Null).fs().check(Check::Conv(port_value)),
    Attr::ro("ethertype").post(Dflt::Str("IPv4")).fs().check(Check::Conv(ethertype)),
    Attr::ro("remote_ip_prefix").post(Dflt::Null).fs().check(Check::Conv(remote_ip_prefix)),
    Attr::ro("remote_address_group_id").post(Dflt::Null).fs().check(Check::Custom(uuid_or_null_str)),
    Attr::ro("normalized_cidr").fs(),
    Attr::ro("belongs_to_default_sg").filter().check(Check::Bool),
];

/// The security group rule resource.
pub static SECURITY_GROUP_RULE: ResourceDef = ResourceDef {
    member: "security_group_rule",
    collection: "security_group_rules",
    path: "security-group-rules",
    label: "Security group rule",
    not_found: "SecurityGroupRuleNotFound",
    attrs: RULE_ATTRS,
    project: true,
    standard: true,
    tags: false,
};

/// Protocols for which port ranges are meaningful.
pub const PORT_PROTOCOLS: &[&str] = &["tcp", "udp", "dccp", "sctp", "udplite", "6", "17", "33", "132", "136"];
/// ICMP protocols (port_range_min/max are type/code).
pub const ICMP_PROTOCOLS: &[&str] = &["icmp", "icmpv6", "ipv6-icmp", "1", "58"];
