//! Collections: filters (any filterable attribute, repeated = OR, tags),
//! `fields`, sorting and limit/marker pagination with `<collection>_links`.

use std::cmp::Ordering;

use neutrino_lib::attr::Check;
use neutrino_lib::checks;
use neutrino_lib::listing::{Filter, ListSpec, Sort, TagFilter, ValKind};
use neutrino_lib::resource::ResourceDef;
use neutrino_lib::{Fault, Map};
use serde_json::{json, Value};

fn tags_match(t: &TagFilter, doc: &Map) -> bool {
    let tags: Vec<&str> =
        doc.get("tags").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let has = |x: &String| tags.contains(&x.as_str());
    t.all.iter().all(|set| set.iter().all(has))
        && t.any.iter().all(|set| set.iter().any(has))
        && t.not_all.iter().all(|set| !set.iter().all(has))
        && t.not_any.iter().all(|set| !set.iter().any(has))
}

/// A parsed list request: what the plugin answers ([`ListSpec`]) and what
/// the edge does itself (fields, links).
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    /// Filters, tags, order and page.
    pub spec: ListSpec,
    /// Requested fields (empty: all).
    pub fields: Vec<String>,
    /// The raw query pairs, for links.
    pub raw: Vec<(String, String)>,
}

/// Converts a filter value by the attribute's type (booleans case-insensitive).
fn convert(check: &Check, raw: &str) -> Value {
    match check {
        Check::Bool => {
            checks::to_bool(&Value::String(raw.into())).map(Value::Bool).unwrap_or(Value::String(raw.into()))
        }
        Check::Int(..) | Check::IntOrNull(..) => {
            raw.parse::<i64>().map(Value::from).unwrap_or(Value::String(raw.into()))
        }
        Check::Canonical(known) => Value::String(neutrino_lib::attr::canonical(known, raw).into()),
        _ => Value::String(raw.into()),
    }
}

/// Parses the query string of a list request.
pub fn parse(def: &ResourceDef, query: &str) -> Result<ListQuery, Fault> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let mut q = ListQuery { raw: pairs.clone(), ..Default::default() };
    let mut sort_keys = vec![];
    let mut sort_dirs = vec![];
    let mut limit = None;
    for (k, v) in &pairs {
        let split = || v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>();
        match k.as_str() {
            "fields" => {
                if !v.is_empty() {
                    q.fields.extend(v.split(',').map(String::from));
                }
            }
            "sort_key" => {
                if !v.is_empty() {
                    sort_keys.push(v.clone());
                }
            }
            "sort_dir" => {
                if !v.is_empty() {
                    sort_dirs.push(v.clone());
                }
            }
            "limit" => {
                let n: i64 = v.parse().map_err(|_| {
                    Fault::bad_resource_request("limit", format!("Limit must be an integer 0 or greater and not '{v}'"))
                })?;
                if n < 0 {
                    return Err(Fault::bad_resource_request(
                        "limit",
                        format!("Limit must be an integer 0 or greater and not '{v}'"),
                    ));
                }
                limit = Some(n as usize);
            }
            "marker" => q.spec.marker = Some(v.clone()),
            "page_reverse" => q.spec.page_reverse = v.eq_ignore_ascii_case("true"),
            "tags" if def.tags => q.spec.tags.all.push(split()),
            "tags-any" if def.tags => q.spec.tags.any.push(split()),
            "not-tags" if def.tags => q.spec.tags.not_all.push(split()),
            "not-tags-any" if def.tags => q.spec.tags.not_any.push(split()),
            name => {
                let a = def.attr(name).filter(|a| a.filter || name == "tenant_id" || name == "project_id");
                let Some(a) = a else {
                    return Err(Fault::bad_request(format!("['{name}'] is invalid attribute for filtering")));
                };
                let name = if name == "tenant_id" { "project_id" } else { name };
                let val = convert(&a.check, v);
                match q.spec.filters.iter_mut().find(|f| f.attr == name) {
                    Some(f) => f.values.push(val),
                    None => {
                        q.spec.filters.push(Filter { attr: name.to_string(), kind: kind(def, name), values: vec![val] })
                    }
                }
            }
        }
    }
    if sort_keys.len() != sort_dirs.len() {
        return Err(Fault::bad_request("The number of sort_keys and sort_dirs must be same"));
    }
    let bad_keys: Vec<&String> = sort_keys.iter().filter(|k| !def.attr(k).is_some_and(|a| a.sort)).collect();
    if !bad_keys.is_empty() {
        return Err(Fault::bad_request(format!("{bad_keys:?} is invalid attribute for sort_keys")));
    }
    for d in &sort_dirs {
        if d != "asc" && d != "desc" {
            return Err(Fault::bad_request(format!(
                "['{d}'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'"
            )));
        }
    }
    q.spec.sorts = sort_keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let attr: String = if k == "tenant_id" { "project_id".into() } else { k };
            Sort { kind: kind(def, &attr), attr, asc: sort_dirs.get(i).is_none_or(|d| d == "asc") }
        })
        .collect();
    q.spec.limit = limit.filter(|l| *l > 0);
    Ok(q)
}

/// How an attribute is stored, for comparisons and order.
fn kind(def: &ResourceDef, name: &str) -> ValKind {
    match name {
        "revision_number" => ValKind::Int,
        _ => def.attr(name).map(ValKind::of).unwrap_or(ValKind::Str),
    }
}

impl ListQuery {
    /// Does a document pass every filter?
    pub fn matches(&self, doc: &Map) -> bool {
        tags_match(&self.spec.tags, doc)
            && self.spec.filters.iter().all(|f| f.values.iter().any(|want| value_matches(doc.get(&f.attr), want)))
    }

    /// Filters, sorts and pages in memory (for plugins that answer
    /// [`Listing::Unfiltered`](neutrino_lib::plugin::Listing)). A marker
    /// that is not among the documents is the resource's 404, as in Neutron.
    pub fn apply(&self, def: &ResourceDef, mut docs: Vec<Map>) -> Result<Vec<Map>, Fault> {
        let spec = &self.spec;
        docs.retain(|d| self.matches(d));
        if !spec.sorts.is_empty() {
            docs.sort_by(|a, b| {
                for s in &spec.sorts {
                    let o = cmp_values(a.get(&s.attr), b.get(&s.attr));
                    let o = if s.asc { o } else { o.reverse() };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                cmp_values(a.get("id"), b.get("id"))
            });
        } else if spec.paged() {
            // Pagination needs a stable order: Neutron pages by id.
            docs.sort_by(|a, b| cmp_values(a.get("id"), b.get("id")));
        }
        let start = match &spec.marker {
            Some(m) => match docs.iter().position(|d| d.get("id").and_then(Value::as_str) == Some(m.as_str())) {
                Some(i) => Some(i),
                None => return Err(def.not_found_fault(m)),
            },
            None => None,
        };
        let Some(limit) = spec.limit else {
            return Ok(match start {
                Some(i) if spec.page_reverse => docs[..i].to_vec(),
                Some(i) => docs.into_iter().skip(i + 1).collect(),
                None => docs,
            });
        };
        Ok(if spec.page_reverse {
            let end = start.unwrap_or(docs.len());
            docs[end.saturating_sub(limit)..end].to_vec()
        } else {
            let s = start.map(|i| i + 1).unwrap_or(0);
            docs.into_iter().skip(s).take(limit).collect()
        })
    }

    /// Neutron's `<collection>_links` of a page (`None` without a limit).
    pub fn links(&self, page: &[Map], base_url: &str) -> Option<Value> {
        let limit = self.spec.limit?;
        let reverse = self.spec.page_reverse;
        let mut links = vec![];
        let link = |marker: Option<&str>, reverse: bool| -> String {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.raw {
                if k == "marker" || k == "page_reverse" {
                    continue;
                }
                ser.append_pair(k, v);
            }
            if let Some(m) = marker {
                ser.append_pair("marker", m);
            }
            if reverse {
                ser.append_pair("page_reverse", "True");
            }
            format!("{base_url}?{}", ser.finish())
        };
        let first = page.first().and_then(|d| d.get("id")).and_then(Value::as_str);
        let last = page.last().and_then(|d| d.get("id")).and_then(Value::as_str);
        if page.len() >= limit || reverse {
            links.push(json!({"rel": "next", "href": link(last, false)}));
        }
        if !(page.len() < limit && reverse) {
            links.push(json!({"rel": "previous", "href": link(first, true)}));
        }
        Some(Value::Array(links))
    }

    /// Keeps only the requested fields.
    pub fn select(&self, doc: &mut Map) {
        if !self.fields.is_empty() {
            doc.retain(|k, _| self.fields.iter().any(|f| f == k));
        }
    }
}

/// Does a document value match one filter value? Lists match if any
/// element does; `fixed_ips`-style lists of objects take `key=value`.
fn value_matches(have: Option<&Value>, want: &Value) -> bool {
    match have {
        None | Some(Value::Null) => matches!(want, Value::String(s) if s.is_empty()) || want.is_null(),
        Some(Value::Array(items)) => {
            if let Value::String(s) = want {
                if let Some((k, v)) = s.split_once('=') {
                    let (k, substr) = match k.strip_suffix("_substr") {
                        Some(base) => (base, true),
                        None => (k, false),
                    };
                    return items.iter().any(|it| {
                        it.get(k).and_then(Value::as_str).is_some_and(|x| if substr { x.contains(v) } else { x == v })
                    });
                }
            }
            items.iter().any(|it| scalar_eq(it, want))
        }
        Some(h) => scalar_eq(h, want),
    }
}

fn scalar_eq(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(a), Value::String(b)) => checks::to_bool(&Value::String(b.clone())) == Ok(*a),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) => b.parse::<f64>().ok() == a.as_f64(),
        (Value::String(a), Value::Number(b)) => a.parse::<f64>().ok() == b.as_f64(),
        _ => false,
    }
}

fn rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(_)) => 1,
        Some(Value::Number(_)) => 2,
        Some(Value::String(_)) => 3,
        _ => 4,
    }
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_lib::defs::network::NETWORK;
    use neutrino_lib::defs::port::PORT;

    fn doc(v: Value) -> Map {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn filters_or_within_a_key_and_across_keys() {
        let q = parse(&NETWORK, "name=a&name=b&admin_state_up=TRUE").unwrap();
        assert!(q.matches(&doc(json!({"name": "a", "admin_state_up": true}))));
        assert!(q.matches(&doc(json!({"name": "b", "admin_state_up": true}))));
        assert!(!q.matches(&doc(json!({"name": "b", "admin_state_up": false}))));
        assert!(!q.matches(&doc(json!({"name": "c", "admin_state_up": true}))));
    }

    #[test]
    fn unknown_filters_and_sort_keys_are_refused() {
        assert_eq!(parse(&NETWORK, "foo=1").unwrap_err().status, 400);
        assert_eq!(parse(&NETWORK, "sort_key=subnets&sort_dir=asc").unwrap_err().status, 400);
        assert_eq!(parse(&NETWORK, "sort_key=name&sort_key=id&sort_dir=asc").unwrap_err().status, 400);
        assert_eq!(parse(&NETWORK, "limit=-1").unwrap_err().status, 400);
    }

    #[test]
    fn fixed_ips_filters() {
        let q = parse(&PORT, "fixed_ips=ip_address%3D10.0.0.5").unwrap();
        let p = doc(json!({"fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.5"}]}));
        assert!(q.matches(&p));
        let q = parse(&PORT, "fixed_ips=ip_address_substr%3D0.0.5").unwrap();
        assert!(q.matches(&p));
        let q = parse(&PORT, "fixed_ips=ip_address%3D10.0.0.6").unwrap();
        assert!(!q.matches(&p));
    }

    #[test]
    fn tags_filters() {
        let q = parse(&NETWORK, "tags=a,b&not-tags-any=z").unwrap();
        assert!(q.matches(&doc(json!({"tags": ["a", "b", "c"]}))));
        assert!(!q.matches(&doc(json!({"tags": ["a"]}))));
        assert!(!q.matches(&doc(json!({"tags": ["a", "b", "z"]}))));
    }

    #[test]
    fn pagination_links_and_markers() {
        let docs: Vec<Map> = (0..5).map(|i| doc(json!({"id": format!("id{i}"), "name": format!("n{i}")}))).collect();
        let q = parse(&NETWORK, "limit=2").unwrap();
        let page = q.apply(&NETWORK, docs.clone()).unwrap();
        assert_eq!(page.len(), 2);
        let links = q.links(&page, "http://x/v2.0/networks").unwrap();
        assert!(links[0]["href"].as_str().unwrap().contains("marker=id1"));
        let q = parse(&NETWORK, "limit=2&marker=id3").unwrap();
        let page = q.apply(&NETWORK, docs.clone()).unwrap();
        assert_eq!(page.len(), 1);
        let q = parse(&NETWORK, "limit=2&marker=id4").unwrap();
        assert!(q.apply(&NETWORK, docs.clone()).unwrap().is_empty());
        let q = parse(&NETWORK, "limit=2&marker=nosuch").unwrap();
        assert_eq!(q.apply(&NETWORK, docs.clone()).unwrap_err().status, 404);
        let q = parse(&NETWORK, "limit=2&marker=id3&page_reverse=True").unwrap();
        let page = q.apply(&NETWORK, docs).unwrap();
        assert_eq!(page.iter().map(|d| d["id"].as_str().unwrap()).collect::<Vec<_>>(), vec!["id1", "id2"]);
    }
}
