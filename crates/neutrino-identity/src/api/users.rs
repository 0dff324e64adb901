//! `/v3/users`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::input::{member, opt_str, query_bool, query_get, query_pairs};
use crate::policy::Caller;
use crate::IdentityError;

/// `GET /v3/users[?name=&domain_id=&enabled=]`.
pub(crate) async fn list(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    caller.require_reader("list_users")?;
    let q = query_pairs(q.as_deref());
    let items = svc
        .list_users(query_get(&q, "domain_id"), query_get(&q, "name"), query_bool(&q, "enabled"))
        .await?
        .iter()
        .map(|u| u.to_json(&svc))
        .collect();
    Ok(collection(&svc, "users", "users", items))
}

/// `POST /v3/users`.
pub(crate) async fn create(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_user")?;
    let body = parse_body(&body)?;
    let default_domain = caller.info.domain_id().map(String::from);
    let u = svc.create_user(member(&body, "user")?, default_domain.as_deref()).await?;
    Ok(json_response(201, &json!({"user": u.to_json(&svc)})))
}

/// `GET /v3/users/{id}`: readers and the user itself.
pub(crate) async fn show(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_reader_or_self("get_user", &id)?;
    let u = svc.user(&id).await?;
    Ok(json_response(200, &json!({"user": u.to_json(&svc)})))
}

/// `PATCH /v3/users/{id}` (admin): name, enabled, password, ...
pub(crate) async fn update(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_user")?;
    let body = parse_body(&body)?;
    let u = svc.update_user(&id, member(&body, "user")?).await?;
    Ok(json_response(200, &json!({"user": u.to_json(&svc)})))
}

/// `DELETE /v3/users/{id}`.
pub(crate) async fn delete(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_user")?;
    svc.delete_user(&id).await?;
    Ok(empty(204))
}

/// `POST /v3/users/{id}/password` `{"user": {"password", "original_password"}}`:
/// self-service change, authorized by the original password (as in Keystone,
/// no token is needed) → 204.
pub(crate) async fn change_password(svc: Svc, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let u = member(&body, "user")?;
    let original = opt_str(u, "original_password")?.ok_or_else(|| {
        IdentityError::invalid_field("original_password", "'original_password' is a required property")
    })?;
    let new = opt_str(u, "password")?
        .ok_or_else(|| IdentityError::invalid_field("password", "'password' is a required property"))?;
    svc.change_password(&id, &original, &new).await?;
    Ok(empty(204))
}

/// `GET /v3/users/{id}/projects`: readers and the user itself.
pub(crate) async fn projects(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_reader_or_self("list_user_projects", &id)?;
    svc.user(&id).await?;
    let items = svc.user_projects(&id).await?.iter().map(|p| p.to_json(&svc)).collect();
    Ok(collection(&svc, "projects", &format!("users/{id}/projects"), items))
}
