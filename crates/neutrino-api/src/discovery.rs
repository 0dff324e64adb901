//! Version discovery, the resource index, extensions and health.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use crate::respond;
use crate::Api;

/// Extensions implemented by the API edge itself.
pub const EDGE_EXTENSIONS: &[&str] = &[
    "pagination",
    "sorting",
    "filter-validation",
    "empty-string-filtering",
    "project-id",
    "revision-if-match",
    "standard-attr-description",
    "standard-attr-revisions",
    "standard-attr-tag",
    "standard-attr-timestamp",
    "tag-creation",
];

/// The URL the caller used to reach us (scheme://host[:port]).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost:9696");
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("http");
    format!("{proto}://{host}")
}

/// `GET /`: the API versions.
pub async fn versions(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    respond::json(
        200,
        &json!({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"href": format!("{base}/v2.0/"), "rel": "self"}]}]}),
    )
}

/// `GET /v2.0/`: the resources.
pub fn resources(api: &Api, headers: &HeaderMap) -> Response {
    let base = base_url(headers);
    let mut list: Vec<Value> = api
        .plugins
        .values()
        .map(|p| {
            let d = p.def();
            json!({"name": d.member, "collection": d.collection, "links": [{"rel": "self", "href": format!("{base}/v2.0/{}", d.path)}]})
        })
        .collect();
    list.sort_by(|a, b| a["collection"].as_str().cmp(&b["collection"].as_str()));
    respond::json(200, &json!({"resources": list}))
}

/// `GET /v2.0/extensions` and `GET /v2.0/extensions/<alias-or-name>`.
pub fn extensions(api: &Api, which: Option<&str>) -> Response {
    match which {
        None => {
            respond::json(200, &json!({"extensions": api.extensions.iter().map(|e| e.to_json()).collect::<Vec<_>>()}))
        }
        Some(a) => match api.extensions.iter().find(|e| e.alias == a || e.name == a) {
            Some(e) => respond::json(200, &json!({"extension": e.to_json()})),
            None => respond::fault(&neutrino_lib::Fault::not_found(
                "HTTPNotFound",
                format!("Extension with alias {a} does not exist"),
            )),
        },
    }
}

/// `GET /healthcheck`: 200 when every dependency answers.
pub async fn health(State(api): State<Arc<Api>>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    for (name, probe) in &api.health {
        match probe().await {
            Ok(()) => {
                checks.insert(name.to_string(), json!("OK"));
            }
            Err(e) => {
                ok = false;
                checks.insert(name.to_string(), json!(e));
            }
        }
    }
    respond::json(if ok { 200 } else { 503 }, &json!({"status": if ok { "OK" } else { "DEGRADED" }, "checks": checks}))
}
