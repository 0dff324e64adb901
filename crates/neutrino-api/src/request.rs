//! Request bodies: unwrap, validate and convert against a resource definition.

use neutrino_lib::attr::Post;
use neutrino_lib::resource::ResourceDef;
use neutrino_lib::{Context, Fault, Map};
use serde_json::Value;

/// Parses a JSON body, refusing malformed ones with 400.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Fault> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Fault::bad_request("Request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|_| Fault::bad_request("Malformed request body"))
}

fn unrecognized(keys: &[&String]) -> Fault {
    let names: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
    Fault::bad_request(format!("Unrecognized attribute(s) '{}'", names.join(", ")))
}

/// Validates tags given in a body.
pub fn tags_of(v: &Value) -> Result<Vec<String>, Fault> {
    let list =
        v.as_array().ok_or_else(|| Fault::bad_request("Invalid input for tags. Reason: tags must be a list."))?;
    let mut out = vec![];
    for t in list {
        let s =
            t.as_str().ok_or_else(|| Fault::bad_request("Invalid input for tags. Reason: a tag must be a string."))?;
        neutrino_lib::checks::tag(s)
            .map_err(|r| Fault::bad_request(format!("Invalid input for tags. Reason: {r}.")))?;
        if !out.iter().any(|x: &String| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// The items of a create body: `{"<member>": {...}}` or `{"<collection>": [...]}`.
/// Returns the items and whether the request was a bulk one.
pub fn create_items(def: &ResourceDef, body: &Value) -> Result<(Vec<Value>, bool), Fault> {
    let obj = body.as_object().ok_or_else(|| Fault::bad_request("Request body must be a JSON object"))?;
    if let Some(list) = obj.get(def.collection) {
        let items =
            list.as_array().ok_or_else(|| Fault::bad_request(format!("'{}' must be a list", def.collection)))?;
        if items.is_empty() {
            return Err(Fault::bad_request("Resources required"));
        }
        return Ok((items.clone(), true));
    }
    match obj.get(def.member) {
        Some(item) => Ok((vec![item.clone()], false)),
        None => Err(Fault::bad_request(format!("Unable to find '{}' in request body", def.member))),
    }
}

/// Validates one create item: unknown and read-only attributes, required
/// ones, defaults, conversions; fills `project_id`/`tenant_id`.
pub fn prepare_create(def: &ResourceDef, ctx: &Context, item: &Value) -> Result<Map, Fault> {
    let body = item
        .as_object()
        .ok_or_else(|| Fault::bad_request(format!("Invalid data for {}: a JSON object is required", def.member)))?;
    let unknown: Vec<&String> =
        body.keys().filter(|k| def.attr(k).is_none() && !(def.tags && k.as_str() == "tags")).collect();
    if !unknown.is_empty() {
        return Err(unrecognized(&unknown));
    }
    let mut out = Map::new();
    for a in def.all_attrs() {
        match (body.get(a.name), a.post) {
            (Some(_), Post::Never) if a.name == "tags" => {}
            (Some(_), Post::Never) => {
                return Err(Fault::bad_request(format!("Attribute '{}' not allowed in POST", a.name)));
            }
            (Some(v), _) => {
                out.insert(a.name.to_string(), a.check.apply_for(a.name, v)?);
            }
            (None, Post::Required) => {
                return Err(Fault::bad_request(format!(
                    "Failed to parse request. Required attribute '{}' not specified",
                    a.name
                )));
            }
            (None, Post::Optional(d)) => {
                if let Some(v) = d.value() {
                    out.insert(a.name.to_string(), v);
                }
            }
            (None, Post::Never) => {}
        }
    }
    if def.tags {
        if let Some(t) = body.get("tags") {
            out.insert("tags".into(), Value::from(tags_of(t)?));
        }
    }
    if def.project {
        let p = out.remove("project_id").and_then(|v| v.as_str().map(String::from));
        let t = out.remove("tenant_id").and_then(|v| v.as_str().map(String::from));
        let project = match (p, t) {
            (Some(p), Some(t)) if p != t => {
                return Err(Fault::bad_request("'project_id' and 'tenant_id' do not match"));
            }
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => ctx.project_id.clone().unwrap_or_default(),
        };
        if project.is_empty() {
            return Err(Fault::bad_request("Running without keystone AuthN requires that project_id is specified"));
        }
        out.insert("project_id".into(), Value::String(project.clone()));
        out.insert("tenant_id".into(), Value::String(project));
    }
    Ok(out)
}

/// Validates an update body `{"<member>": {...}}`.
pub fn prepare_update(def: &ResourceDef, body: &Value) -> Result<Map, Fault> {
    let obj = body.as_object().ok_or_else(|| Fault::bad_request("Request body must be a JSON object"))?;
    let item = obj
        .get(def.member)
        .ok_or_else(|| Fault::bad_request(format!("Unable to find '{}' in request body", def.member)))?;
    let item = item
        .as_object()
        .ok_or_else(|| Fault::bad_request(format!("Invalid data for {}: a JSON object is required", def.member)))?;
    let unknown: Vec<&String> = item.keys().filter(|k| def.attr(k).is_none()).collect();
    if !unknown.is_empty() {
        return Err(unrecognized(&unknown));
    }
    let mut out = Map::new();
    for (k, v) in item {
        let a = def.attr(k).ok_or_else(|| unrecognized(&[k]))?;
        if !a.put {
            return Err(Fault::bad_request(format!("Cannot update read-only attribute {k}")));
        }
        out.insert(k.clone(), a.check.apply_for(k, v)?);
    }
    Ok(out)
}
