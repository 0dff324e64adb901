//! `address-scopes`.

use serde_json::Value;

use crate::attr::{Attr, Check, Dflt};
use crate::checks;
use crate::resource::ResourceDef;

fn ip_version(v: &Value) -> Result<Value, String> {
    match checks::to_int(v)? {
        4 => Ok(Value::from(4)),
        6 => Ok(Value::from(6)),
        other => Err(format!("'{other}' is not in [4, 6]")),
    }
}

const ATTRS: &[Attr] = &[
    Attr::ro("name").post(Dflt::Str("")).put().fs().check(Check::Str(255)),
    Attr::ro("shared").post(Dflt::Bool(false)).put().fs().policy().check(Check::Bool),
    Attr::ro("ip_version").required().fs().check(Check::Custom(ip_version)),
];

/// The address scope resource.
pub static ADDRESS_SCOPE: ResourceDef = ResourceDef {
    member: "address_scope",
    collection: "address_scopes",
    path: "address-scopes",
    label: "Address scope",
    not_found: "AddressScopeNotFound",
    attrs: ATTRS,
    project: true,
    standard: true,
    tags: false,
};
