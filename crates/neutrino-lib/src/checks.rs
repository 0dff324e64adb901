//! Validators and converters for attribute values (neutron-lib's
//! `validators` and `converters`, re-expressed). Each returns the converted
//! value or the reason it was refused.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

/// Renders a value for an error message: strings bare, the rest as JSON.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A string of at most `max` characters.
pub fn string(v: &Value, max: usize) -> Result<String, String> {
    match v {
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        Value::String(s) => Err(format!("'{s}' exceeds maximum length of {max}")),
        other => Err(format!("'{}' is not a valid string", show(other))),
    }
}

/// Neutron's `convert_to_boolean`.
pub fn to_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        other => Err(format!("'{}' cannot be converted to boolean", show(other))),
    }
}

/// Neutron's `convert_to_int`.
pub fn to_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| format!("'{n}' is not an integer")),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| format!("'{s}' is not an integer")),
        other => Err(format!("'{}' is not an integer", show(other))),
    }
}

/// An integer within [min, max].
pub fn to_int_in(v: &Value, min: i64, max: i64) -> Result<i64, String> {
    let i = to_int(v)?;
    if i < min {
        return Err(format!("'{i}' is too small - must be at least '{min}'"));
    }
    if i > max {
        return Err(format!("'{i}' is too large - must be no larger than '{max}'"));
    }
    Ok(i)
}

/// Is this a UUID (any common textual form)?
pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && (s.len() == 36 || s.len() == 32)
}

/// A UUID, returned as given (ids are compared as strings, as in Neutron).
pub fn uuid(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if is_uuid(s) => Ok(s.clone()),
        other => Err(format!("'{}' is not a valid UUID", show(other))),
    }
}

/// One of the allowed strings.
pub fn one_of(v: &Value, vals: &[&str]) -> Result<String, String> {
    match v {
        Value::String(s) if vals.contains(&s.as_str()) => Ok(s.clone()),
        other => Err(format!("'{}' is not in {:?}", show(other), vals)),
    }
}

/// Parses an IP address strictly.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok()
}

/// An IP address, in canonical form.
pub fn ip(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => {
            parse_ip(s).map(|ip| ip.to_string()).ok_or_else(|| format!("'{s}' is not a valid IP address"))
        }
        other => Err(format!("'{}' is not a valid IP address", show(other))),
    }
}

/// A CIDR whose host bits are zero (Neutron's `type:subnet`).
pub fn subnet_cidr(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s,
        other => return Err(format!("'{}' is not a valid IP subnet", show(other))),
    };
    if !s.contains('/') {
        return Err(format!("'{s}' is not a valid IP subnet"));
    }
    let net: IpNet = s.parse().map_err(|_| format!("'{s}' is not a valid IP subnet"))?;
    let canonical = net.trunc();
    if canonical != net {
        return Err(format!("'{s}' isn't a recognized IP subnet cidr, '{canonical}' is recommended"));
    }
    Ok(canonical.to_string())
}

/// An IP address or a CIDR (allowed address pairs, remote prefixes).
pub fn ip_or_cidr(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s,
        other => return Err(format!("'{}' is neither a valid IP address nor a valid IP subnet", show(other))),
    };
    if let Some(ip) = parse_ip(s) {
        return Ok(ip.to_string());
    }
    s.parse::<IpNet>()
        .map(|n| n.to_string())
        .map_err(|_| format!("'{s}' is neither a valid IP address nor a valid IP subnet"))
}

/// A MAC address, converted to lower-case colon-separated form.
pub fn mac(v: &Value) -> Result<String, String> {
    let s = match v {
        Value::String(s) => s,
        other => return Err(format!("'{}' is not a valid MAC address", show(other))),
    };
    parse_mac(s).map(format_mac).ok_or_else(|| format!("'{s}' is not a valid MAC address"))
}

/// Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` into 6 bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// Formats 6 bytes as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(b: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("'{}' is not a list{what}", show(v)))
}

fn dict(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("'{}' is not a dictionary", show(v)))
}

fn only_keys(d: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    let unknown: Vec<&String> = d.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))
    }
}

/// A list of UUIDs (null becomes an empty list).
pub fn uuid_list(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let items = list(v, "")?;
    // Neutron's _validate_list_of_items: duplicates are refused, before
    // the items themselves are validated.
    let mut seen = HashSet::new();
    let mut dups: Vec<String> = vec![];
    for item in items {
        let s = show(item);
        if !seen.insert(s.clone()) && !dups.contains(&s) {
            dups.push(s);
        }
    }
    if !dups.is_empty() {
        return Err(format!("Duplicate items in the list: '{}'", dups.join(", ")));
    }
    let out = items.iter().map(|i| uuid(i).map(Value::String)).collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(out))
}

/// A list of strings (null becomes an empty list).
pub fn str_list(v: &Value, max: usize) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let out = list(v, "")?.iter().map(|i| string(i, max).map(Value::String)).collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(out))
}

/// A subnet's `allocation_pools`: `[{start, end}]`, canonical IPs.
pub fn allocation_pools(v: &Value) -> Result<Value, String> {
    let mut out = vec![];
    for p in list(v, "")? {
        let d = dict(p)?;
        only_keys(d, &["start", "end"])?;
        let (Some(start), Some(end)) = (d.get("start"), d.get("end")) else {
            return Err(format!("Invalid data format for IP pool: '{}'", show(p)));
        };
        let start = ip(start)?;
        let end = ip(end)?;
        out.push(serde_json::json!({"start": start, "end": end}));
    }
    Ok(Value::Array(out))
}

/// A subnet's `dns_nameservers`: unique IP addresses (null becomes `[]`).
pub fn nameservers(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let mut seen = HashSet::new();
    let mut out = vec![];
    for ns in list(v, "")? {
        let a = ip(ns).map_err(|_| format!("'{}' is not a valid nameserver", show(ns)))?;
        if !seen.insert(a.clone()) {
            return Err(format!("Duplicate nameserver '{a}'"));
        }
        out.push(Value::String(a));
    }
    Ok(Value::Array(out))
}

/// `host_routes` and router `routes`: `[{destination, nexthop}]` (null becomes `[]`).
pub fn host_routes(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let mut seen = HashSet::new();
    let mut out = vec![];
    for r in list(v, "")? {
        let d = dict(r)?;
        only_keys(d, &["destination", "nexthop"])?;
        let (Some(dst), Some(nh)) = (d.get("destination"), d.get("nexthop")) else {
            return Err(format!("Invalid data format for hostroute: '{}'", show(r)));
        };
        let dst = subnet_cidr(dst)?;
        let nh = ip(nh)?;
        if !seen.insert((dst.clone(), nh.clone())) {
            return Err(format!("Duplicate hostroute '{}'", show(r)));
        }
        out.push(serde_json::json!({"destination": dst, "nexthop": nh}));
    }
    Ok(Value::Array(out))
}

/// A port's `fixed_ips`: `[{subnet_id?, ip_address?}]`.
pub fn fixed_ips(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let mut seen = HashSet::new();
    let mut out = vec![];
    for f in list(v, "")? {
        let d = dict(f)?;
        only_keys(d, &["subnet_id", "ip_address"])?;
        let mut o = Map::new();
        if let Some(s) = d.get("subnet_id") {
            o.insert("subnet_id".into(), Value::String(uuid(s)?));
        }
        if let Some(a) = d.get("ip_address") {
            let a = ip(a)?;
            if !seen.insert(a.clone()) {
                return Err(format!("Duplicate IP address '{a}'"));
            }
            o.insert("ip_address".into(), Value::String(a));
        }
        out.push(Value::Object(o));
    }
    Ok(Value::Array(out))
}

/// A port's `allowed_address_pairs`: `[{ip_address, mac_address?}]`.
pub fn address_pairs(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let mut seen = HashSet::new();
    let mut out = vec![];
    for p in list(v, "")? {
        let d = dict(p)?;
        only_keys(d, &["ip_address", "mac_address"])?;
        let Some(a) = d.get("ip_address") else {
            return Err("AllowedAddressPair must contain ip_address".into());
        };
        let a = ip_or_cidr(a)?;
        let mut o = Map::new();
        o.insert("ip_address".into(), Value::String(a.clone()));
        let m = match d.get("mac_address") {
            Some(m) if !m.is_null() => {
                let m = mac(m)?;
                o.insert("mac_address".into(), Value::String(m.clone()));
                Some(m)
            }
            _ => None,
        };
        if !seen.insert((a, m)) {
            return Err("Duplicate address detected".into());
        }
        out.push(Value::Object(o));
    }
    Ok(Value::Array(out))
}

/// A port's `extra_dhcp_opts`: `[{opt_name, opt_value, ip_version?}]`.
pub fn extra_dhcp_opts(v: &Value) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Array(vec![]));
    }
    let mut out = vec![];
    for o in list(v, "")? {
        let d = dict(o)?;
        only_keys(d, &["opt_name", "opt_value", "ip_version"])?;
        let name = match d.get("opt_name") {
            Some(n) => string(n, 255)?,
            None => return Err(format!("Invalid data format for extra-dhcp-opt: {}", show(o))),
        };
        if name.is_empty() {
            return Err("'' Blank strings are not permitted".into());
        }
        let value = match d.get("opt_value") {
            None | Some(Value::Null) => Value::Null,
            Some(v) => Value::String(string(v, 255)?),
        };
        let ipv = match d.get("ip_version") {
            None | Some(Value::Null) => 4,
            Some(v) => {
                let i = to_int(v)?;
                if i != 4 && i != 6 {
                    return Err(format!("'{i}' is not in [4, 6]"));
                }
                i
            }
        };
        out.push(serde_json::json!({"opt_name": name, "opt_value": value, "ip_version": ipv}));
    }
    Ok(Value::Array(out))
}

/// `availability_zone_hints`: a list of zone names.
pub fn az_hints(v: &Value) -> Result<Value, String> {
    let out = str_list(v, 255)?;
    let n = out.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or("").len() + 1).sum::<usize>()).unwrap_or(0);
    if n > 255 {
        return Err("Too many availability_zone_hints specified".into());
    }
    Ok(out)
}

/// A DNS name (lower-cased), as `dns_name` on ports.
pub fn dns_name(v: &Value) -> Result<Value, String> {
    let s = string(v, 255)?;
    if s.is_empty() {
        return Ok(Value::String(s));
    }
    let trimmed = s.trim_end_matches('.');
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("'{s}' not a valid PQDN or FQDN"));
        }
        if label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!("'{s}' not a valid PQDN or FQDN. Reason: label '{label}' is invalid"));
        }
    }
    Ok(Value::String(s.to_ascii_lowercase()))
}

/// A DNS domain (lower-cased), as `dns_domain` on networks.
pub fn dns_domain(v: &Value) -> Result<Value, String> {
    let s = string(v, 255)?;
    if s.is_empty() {
        return Ok(Value::String(s));
    }
    dns_name(&Value::String(s))
}

/// A tag: a string of 1..=255 characters without commas.
pub fn tag(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().count() > 255 {
        return Err(format!("'{s}' is not a valid tag (1 to 255 characters)"));
    }
    if s.contains(',') {
        return Err(format!("'{s}' contains ',' which is not allowed in a tag"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn booleans_convert_case_insensitively() {
        assert_eq!(to_bool(&json!("True")), Ok(true));
        assert_eq!(to_bool(&json!("FALSE")), Ok(false));
        assert!(to_bool(&json!("yes")).is_err());
    }

    #[test]
    fn cidr_with_host_bits_is_refused_with_a_recommendation() {
        let e = subnet_cidr(&json!("10.0.0.1/24")).unwrap_err();
        assert!(e.contains("10.0.0.0/24"), "{e}");
        assert_eq!(subnet_cidr(&json!("2001:db8::/64")).unwrap(), "2001:db8::/64");
        assert!(subnet_cidr(&json!("10.0.0.0")).is_err());
    }

    #[test]
    fn mac_is_sanitized() {
        assert_eq!(mac(&json!("FA-16-3E-00-00-01")).unwrap(), "fa:16:3e:00:00:01");
        assert!(mac(&json!("fa:16:3e:00:00")).is_err());
    }

    #[test]
    fn fixed_ips_reject_duplicates_and_unknown_keys() {
        assert!(fixed_ips(&json!([{"ip_address": "10.0.0.2"}, {"ip_address": "10.0.0.2"}])).is_err());
        assert!(fixed_ips(&json!([{"foo": 1}])).is_err());
        assert_eq!(
            fixed_ips(&json!([{"ip_address": "2001:db8:0::1"}])).unwrap(),
            json!([{"ip_address": "2001:db8::1"}])
        );
    }

    #[test]
    fn ipv6_is_canonicalised() {
        assert_eq!(ip(&json!("2001:0db8:0000::0001")).unwrap(), "2001:db8::1");
        assert!(ip(&json!("10.0.0.256")).is_err());
    }
}
