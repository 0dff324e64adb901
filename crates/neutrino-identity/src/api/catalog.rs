//! `/v3/regions`, `/v3/services`, `/v3/endpoints`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::input::{member, query_get, query_pairs};
use crate::policy::Caller;

/// `GET /v3/regions` (any authenticated caller).
pub(crate) async fn list_regions(svc: Svc, _caller: Caller) -> ApiResult {
    let items = svc.list_regions().await?.iter().map(|r| r.to_json(&svc)).collect();
    Ok(collection(&svc, "regions", "regions", items))
}

/// `POST /v3/regions`.
pub(crate) async fn create_region(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_region")?;
    let body = parse_body(&body)?;
    let r = svc.create_region(member(&body, "region")?, None).await?;
    Ok(json_response(201, &json!({"region": r.to_json(&svc)})))
}

/// `PUT /v3/regions/{id}`: create with the given id.
pub(crate) async fn put_region(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("create_region")?;
    let body = parse_body(&body)?;
    let r = svc.create_region(member(&body, "region")?, Some(&id)).await?;
    Ok(json_response(201, &json!({"region": r.to_json(&svc)})))
}

/// `GET /v3/regions/{id}`.
pub(crate) async fn show_region(svc: Svc, _caller: Caller, Path(id): Path<String>) -> ApiResult {
    let r = svc.region(&id).await?;
    Ok(json_response(200, &json!({"region": r.to_json(&svc)})))
}

/// `PATCH /v3/regions/{id}`.
pub(crate) async fn update_region(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_region")?;
    let body = parse_body(&body)?;
    let r = svc.update_region(&id, member(&body, "region")?).await?;
    Ok(json_response(200, &json!({"region": r.to_json(&svc)})))
}

/// `DELETE /v3/regions/{id}`.
pub(crate) async fn delete_region(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_region")?;
    svc.delete_region(&id).await?;
    Ok(empty(204))
}

/// `GET /v3/services[?type=&name=]`.
pub(crate) async fn list_services(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    caller.require_reader("list_services")?;
    let q = query_pairs(q.as_deref());
    let items = svc
        .list_services(query_get(&q, "type"), query_get(&q, "name"))
        .await?
        .iter()
        .map(|s| s.to_json(&svc))
        .collect();
    Ok(collection(&svc, "services", "services", items))
}

/// `POST /v3/services`.
pub(crate) async fn create_service(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_service")?;
    let body = parse_body(&body)?;
    let s = svc.create_service(member(&body, "service")?).await?;
    Ok(json_response(201, &json!({"service": s.to_json(&svc)})))
}

/// `GET /v3/services/{id}`.
pub(crate) async fn show_service(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_reader("get_service")?;
    let s = svc.service(&id).await?;
    Ok(json_response(200, &json!({"service": s.to_json(&svc)})))
}

/// `PATCH /v3/services/{id}`.
pub(crate) async fn update_service(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_service")?;
    let body = parse_body(&body)?;
    let s = svc.update_service(&id, member(&body, "service")?).await?;
    Ok(json_response(200, &json!({"service": s.to_json(&svc)})))
}

/// `DELETE /v3/services/{id}` (and its endpoints).
pub(crate) async fn delete_service(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_service")?;
    svc.delete_service(&id).await?;
    Ok(empty(204))
}

/// `GET /v3/endpoints[?service_id=&interface=&region_id=]`.
pub(crate) async fn list_endpoints(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    caller.require_reader("list_endpoints")?;
    let q = query_pairs(q.as_deref());
    let items = svc
        .list_endpoints(query_get(&q, "service_id"), query_get(&q, "interface"), query_get(&q, "region_id"))
        .await?
        .iter()
        .map(|e| e.to_json(&svc))
        .collect();
    Ok(collection(&svc, "endpoints", "endpoints", items))
}

/// `POST /v3/endpoints`.
pub(crate) async fn create_endpoint(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_endpoint")?;
    let body = parse_body(&body)?;
    let e = svc.create_endpoint(member(&body, "endpoint")?).await?;
    Ok(json_response(201, &json!({"endpoint": e.to_json(&svc)})))
}

/// `GET /v3/endpoints/{id}`.
pub(crate) async fn show_endpoint(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_reader("get_endpoint")?;
    let e = svc.endpoint(&id).await?;
    Ok(json_response(200, &json!({"endpoint": e.to_json(&svc)})))
}

/// `PATCH /v3/endpoints/{id}`.
pub(crate) async fn update_endpoint(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_endpoint")?;
    let body = parse_body(&body)?;
    let e = svc.update_endpoint(&id, member(&body, "endpoint")?).await?;
    Ok(json_response(200, &json!({"endpoint": e.to_json(&svc)})))
}

/// `DELETE /v3/endpoints/{id}`.
pub(crate) async fn delete_endpoint(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_endpoint")?;
    svc.delete_endpoint(&id).await?;
    Ok(empty(204))
}
