//! Version discovery: `GET /` (300, the list) and `GET /v3` (200, the one).

use axum::response::Response;
use serde_json::{json, Value};

use super::{json_response, Svc};
use crate::IdentityService;

/// The v3 version document.
pub(crate) fn v3_document(svc: &IdentityService) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": svc.v3_url()}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

/// `GET /`: 300 Multiple Choices with the one version.
pub(crate) async fn versions(svc: Svc) -> Response {
    json_response(300, &json!({"versions": {"values": [v3_document(&svc)]}}))
}

/// `GET /v3`: the version document.
pub(crate) async fn version(svc: Svc) -> Response {
    json_response(200, &json!({"version": v3_document(&svc)}))
}
