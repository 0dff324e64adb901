//! The Keystone v3 HTTP API (axum).
//!
//! Handlers are thin: they parse, check the [`Caller`]'s rights and call the
//! [`IdentityService`]. Every failure is an [`IdentityError`] rendered as
//! Keystone's `{"error": {"code", "title", "message"}}`; a 401 carries
//! `WWW-Authenticate: Keystone uri="<public url>"`.

mod app_creds;
mod assignments;
mod auth;
mod catalog;
mod discovery;
mod domains;
mod projects;
mod roles;
mod users;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value};

use crate::policy::Caller;
use crate::{IdentityError, IdentityService};

/// What handlers return.
pub(crate) type ApiResult = std::result::Result<Response, IdentityError>;

/// Shared state of the handlers.
pub(crate) type Svc = State<Arc<IdentityService>>;

/// The router serving the Keystone v3 API for `service`.
pub fn router(service: Arc<IdentityService>) -> Router {
    Router::new()
        .route("/", get(discovery::versions))
        .route("/v3", get(discovery::version))
        .route("/v3/", get(discovery::version))
        .route("/v3/auth/tokens", post(auth::issue).get(auth::validate).head(auth::check).delete(auth::revoke))
        .route("/v3/auth/projects", get(auth::projects))
        .route("/v3/auth/domains", get(auth::domains))
        .route("/v3/auth/system", get(auth::system))
        .route("/v3/auth/catalog", get(auth::catalog))
        .route("/v3/domains", get(domains::list).post(domains::create))
        .route("/v3/domains/{id}", get(domains::show).patch(domains::update).delete(domains::delete))
        .route("/v3/projects", get(projects::list).post(projects::create))
        .route("/v3/projects/{id}", get(projects::show).patch(projects::update).delete(projects::delete))
        .route("/v3/users", get(users::list).post(users::create))
        .route("/v3/users/{id}", get(users::show).patch(users::update).delete(users::delete))
        .route("/v3/users/{id}/password", post(users::change_password))
        .route("/v3/users/{id}/projects", get(users::projects))
        .route("/v3/users/{id}/application_credentials", get(app_creds::list).post(app_creds::create))
        .route("/v3/users/{user}/application_credentials/{id}", get(app_creds::show).delete(app_creds::delete))
        .route("/v3/roles", get(roles::list).post(roles::create))
        .route("/v3/roles/{id}", get(roles::show).patch(roles::update).delete(roles::delete))
        .route("/v3/roles/{prior}/implies", get(roles::list_implied))
        .route(
            "/v3/roles/{prior}/implies/{implied}",
            put(roles::create_implied)
                .get(roles::show_implied)
                .head(roles::check_implied)
                .delete(roles::delete_implied),
        )
        .route("/v3/role_inferences", get(roles::inferences))
        .route("/v3/role_assignments", get(assignments::list_all))
        .route("/v3/projects/{target}/users/{user}/roles", get(assignments::list_project))
        .route(
            "/v3/projects/{target}/users/{user}/roles/{role}",
            put(assignments::grant_project).get(assignments::check_project).delete(assignments::revoke_project),
        )
        .route("/v3/domains/{target}/users/{user}/roles", get(assignments::list_domain))
        .route(
            "/v3/domains/{target}/users/{user}/roles/{role}",
            put(assignments::grant_domain).get(assignments::check_domain).delete(assignments::revoke_domain),
        )
        .route("/v3/system/users/{user}/roles", get(assignments::list_system))
        .route(
            "/v3/system/users/{user}/roles/{role}",
            put(assignments::grant_system).get(assignments::check_system).delete(assignments::revoke_system),
        )
        .route("/v3/regions", get(catalog::list_regions).post(catalog::create_region))
        .route(
            "/v3/regions/{id}",
            get(catalog::show_region)
                .put(catalog::put_region)
                .patch(catalog::update_region)
                .delete(catalog::delete_region),
        )
        .route("/v3/services", get(catalog::list_services).post(catalog::create_service))
        .route(
            "/v3/services/{id}",
            get(catalog::show_service).patch(catalog::update_service).delete(catalog::delete_service),
        )
        .route("/v3/endpoints", get(catalog::list_endpoints).post(catalog::create_endpoint))
        .route(
            "/v3/endpoints/{id}",
            get(catalog::show_endpoint).patch(catalog::update_endpoint).delete(catalog::delete_endpoint),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(service.clone(), decorate))
        .with_state(service)
}

async fn not_found() -> Response {
    json_response(
        404,
        &json!({"error": {"code": 404, "title": "Not Found", "message": "The resource could not be found."}}),
    )
}

async fn method_not_allowed() -> Response {
    json_response(
        405,
        &json!({"error": {"code": 405, "title": "Method Not Allowed", "message": "The method is not allowed for the requested URL."}}),
    )
}

/// Adds the request id, `Vary: X-Auth-Token`, and `WWW-Authenticate` on 401;
/// logs each request (method, path, status; never headers or bodies).
async fn decorate(State(svc): State<Arc<IdentityService>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    tracing::info!(%method, %path, status, %request_id, "identity request");
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-openstack-request-id", v);
    }
    h.insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    if status == 401 && !h.contains_key(header::WWW_AUTHENTICATE) {
        if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{}\"", svc.public_url())) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// A JSON response.
pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An empty response (204 for deletes and checks).
pub(crate) fn empty(status: u16) -> Response {
    StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT).into_response()
}

/// Parses a JSON request body; malformed or empty → 400.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, IdentityError> {
    if body.is_empty() {
        return Err(IdentityError::BadRequest("The request body is empty; a JSON object was expected.".into()));
    }
    serde_json::from_slice::<Value>(body)
        .map_err(|e| IdentityError::BadRequest(format!("Malformed request body: {e}.")))
}

/// A collection response: `{"<key>": [...], "links": {...}}`.
pub(crate) fn collection(svc: &IdentityService, key: &str, path: &str, items: Vec<Value>) -> Response {
    json_response(200, &json!({key: items, "links": {"self": svc.link(path), "previous": null, "next": null}}))
}

impl FromRequestParts<Arc<IdentityService>> for Caller {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<IdentityService>) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(IdentityError::unauthenticated)?
            .to_string();
        match svc.validate_token(&token).await {
            Ok(info) => Ok(Caller { token, info }),
            Err(IdentityError::TokenNotFound) => Err(IdentityError::unauthenticated()),
            Err(e) => Err(e),
        }
    }
}
