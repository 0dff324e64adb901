//! `/v3/auth/*`: issuing, validating, checking and revoking tokens, and what
//! a token gives access to.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::input::{query_flag, query_pairs};
use crate::policy::Caller;
use crate::tokens::{Scope, TokenInfo};
use crate::IdentityError;

fn with_subject(mut r: Response, token: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(token) {
        r.headers_mut().insert("x-subject-token", v);
    }
    r
}

fn subject(headers: &HeaderMap) -> Result<String, IdentityError> {
    headers
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| IdentityError::missing("X-Subject-Token", "request headers"))
}

/// `POST /v3/auth/tokens` → 201 + `X-Subject-Token`.
pub(crate) async fn issue(svc: Svc, RawQuery(q): RawQuery, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let (token, info) = svc.issue_token(&body).await?;
    let nocatalog = query_flag(&query_pairs(q.as_deref()), "nocatalog");
    let out = svc.token_body(&info, !nocatalog).await?;
    Ok(with_subject(json_response(201, &out), &token))
}

async fn subject_info(
    svc: &Svc,
    caller: &Caller,
    headers: &HeaderMap,
    action: &str,
) -> Result<(String, TokenInfo), IdentityError> {
    let token = subject(headers)?;
    let info = svc.validate_token(&token).await?;
    if !caller.may_validate(&info) {
        return Err(caller.refuse(action));
    }
    Ok((token, info))
}

/// `GET /v3/auth/tokens`: 200 with the subject token's body, or 404.
pub(crate) async fn validate(svc: Svc, caller: Caller, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult {
    let (token, info) = subject_info(&svc, &caller, &headers, "validate_token").await?;
    let nocatalog = query_flag(&query_pairs(q.as_deref()), "nocatalog");
    let out = svc.token_body(&info, !nocatalog).await?;
    Ok(with_subject(json_response(200, &out), &token))
}

/// `HEAD /v3/auth/tokens`: 200 or 404.
pub(crate) async fn check(svc: Svc, caller: Caller, headers: HeaderMap) -> ApiResult {
    subject_info(&svc, &caller, &headers, "check_token").await?;
    Ok(empty(200))
}

/// `DELETE /v3/auth/tokens`: revokes the subject token → 204.
pub(crate) async fn revoke(svc: Svc, caller: Caller, headers: HeaderMap) -> ApiResult {
    let (token, info) = subject_info(&svc, &caller, &headers, "revoke_token").await?;
    if !(caller.is_admin() || caller.is_service() || info.user.id == caller.user_id()) {
        return Err(caller.refuse("revoke_token"));
    }
    svc.revoke_token(&token).await?;
    Ok(empty(204))
}

/// `GET /v3/auth/projects`: the projects the caller may scope to.
pub(crate) async fn projects(svc: Svc, caller: Caller) -> ApiResult {
    let items = svc.user_projects(caller.user_id()).await?.iter().map(|p| p.to_json(&svc)).collect();
    Ok(collection(&svc, "projects", "auth/projects", items))
}

/// `GET /v3/auth/domains`: the domains the caller may scope to.
pub(crate) async fn domains(svc: Svc, caller: Caller) -> ApiResult {
    let items = svc.user_domains(caller.user_id()).await?.iter().map(|d| d.to_json(&svc)).collect();
    Ok(collection(&svc, "domains", "auth/domains", items))
}

/// `GET /v3/auth/system`: whether the caller may scope to the system.
pub(crate) async fn system(svc: Svc, caller: Caller) -> ApiResult {
    let items = if svc.user_has_system_roles(caller.user_id()).await? { vec![json!({"all": true})] } else { vec![] };
    Ok(collection(&svc, "system", "auth/system", items))
}

/// `GET /v3/auth/catalog`: the catalog (scoped tokens only).
pub(crate) async fn catalog(svc: Svc, caller: Caller) -> ApiResult {
    if caller.info.scope == Scope::Unscoped {
        return Err(IdentityError::ForbiddenAction("The service catalog is only available to scoped tokens.".into()));
    }
    let items = svc.catalog().await?;
    Ok(json_response(
        200,
        &json!({"catalog": items, "links": {"self": svc.link("auth/catalog"), "previous": null, "next": null}}),
    ))
}
