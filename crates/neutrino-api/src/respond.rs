//! Responses: JSON bodies, Neutron faults, the request id header.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use neutrino_lib::Fault;
use serde_json::Value;

/// A JSON response with the given status.
pub fn json(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An empty response (204, or 201 for tag creation).
pub fn empty(status: u16) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT);
    r
}

/// A Neutron fault as a response. Server errors keep their generic message.
pub fn fault(f: &Fault) -> Response {
    json(f.status, &f.body())
}

/// keystonemiddleware's 401.
pub fn unauthorized(message: &str, www_authenticate: Option<&str>) -> Response {
    let mut r = json(401, &serde_json::json!({"error": {"code": 401, "title": "Unauthorized", "message": message}}));
    if let Some(uri) = www_authenticate {
        if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{uri}\"")) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}
