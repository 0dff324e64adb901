//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::input::{member, query_get, query_pairs};
use crate::policy::Caller;

/// `GET /v3/roles[?name=&domain_id=]`.
pub(crate) async fn list(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    caller.require_reader("list_roles")?;
    let q = query_pairs(q.as_deref());
    let items = svc
        .list_roles(query_get(&q, "name"), query_get(&q, "domain_id"))
        .await?
        .iter()
        .map(|r| r.to_json(&svc))
        .collect();
    Ok(collection(&svc, "roles", "roles", items))
}

/// `POST /v3/roles`.
pub(crate) async fn create(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_role")?;
    let body = parse_body(&body)?;
    let r = svc.create_role(member(&body, "role")?).await?;
    Ok(json_response(201, &json!({"role": r.to_json(&svc)})))
}

/// `GET /v3/roles/{id}`.
pub(crate) async fn show(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_reader("get_role")?;
    let r = svc.role(&id).await?;
    Ok(json_response(200, &json!({"role": r.to_json(&svc)})))
}

/// `PATCH /v3/roles/{id}`.
pub(crate) async fn update(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_role")?;
    let body = parse_body(&body)?;
    let r = svc.update_role(&id, member(&body, "role")?).await?;
    Ok(json_response(200, &json!({"role": r.to_json(&svc)})))
}

/// `DELETE /v3/roles/{id}`.
pub(crate) async fn delete(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_role")?;
    svc.delete_role(&id).await?;
    Ok(empty(204))
}

/// `PUT /v3/roles/{prior}/implies/{implied}` → 201.
pub(crate) async fn create_implied(
    svc: Svc,
    caller: Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin("create_implied_role")?;
    let out = svc.create_implied_role(&prior, &implied).await?;
    Ok(json_response(201, &out))
}

/// `GET /v3/roles/{prior}/implies/{implied}`.
pub(crate) async fn show_implied(
    svc: Svc,
    caller: Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult {
    caller.require_reader("get_implied_role")?;
    Ok(json_response(200, &svc.get_implied_role(&prior, &implied).await?))
}

/// `HEAD /v3/roles/{prior}/implies/{implied}` → 204 or 404.
pub(crate) async fn check_implied(
    svc: Svc,
    caller: Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult {
    caller.require_reader("check_implied_role")?;
    svc.get_implied_role(&prior, &implied).await?;
    Ok(empty(204))
}

/// `DELETE /v3/roles/{prior}/implies/{implied}` → 204.
pub(crate) async fn delete_implied(
    svc: Svc,
    caller: Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> ApiResult {
    caller.require_admin("delete_implied_role")?;
    svc.delete_implied_role(&prior, &implied).await?;
    Ok(empty(204))
}

/// `GET /v3/roles/{prior}/implies`.
pub(crate) async fn list_implied(svc: Svc, caller: Caller, Path(prior): Path<String>) -> ApiResult {
    caller.require_reader("list_implied_roles")?;
    Ok(json_response(200, &svc.list_implied_roles(&prior).await?))
}

/// `GET /v3/role_inferences`.
pub(crate) async fn inferences(svc: Svc, caller: Caller) -> ApiResult {
    caller.require_reader("list_role_inference_rules")?;
    Ok(json_response(200, &svc.list_role_inferences().await?))
}
