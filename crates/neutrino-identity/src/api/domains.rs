//! `/v3/domains`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::input::{member, query_bool, query_get, query_pairs};
use crate::policy::Caller;
use crate::tokens::Scope;

/// `GET /v3/domains[?name=&enabled=]`.
pub(crate) async fn list(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    caller.require_reader("list_domains")?;
    let q = query_pairs(q.as_deref());
    let items = svc
        .list_domains(query_get(&q, "name"), query_bool(&q, "enabled"))
        .await?
        .iter()
        .map(|d| d.to_json(&svc))
        .collect();
    Ok(collection(&svc, "domains", "domains", items))
}

/// `POST /v3/domains`.
pub(crate) async fn create(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_domain")?;
    let body = parse_body(&body)?;
    let d = svc.create_domain(member(&body, "domain")?).await?;
    Ok(json_response(201, &json!({"domain": d.to_json(&svc)})))
}

/// `GET /v3/domains/{id}`: readers, and users whose token or account is in it.
pub(crate) async fn show(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let own = caller.info.user_domain.id == id
        || match &caller.info.scope {
            Scope::Project { domain, .. } => domain.id == id,
            Scope::Domain(d) => d.id == id,
            _ => false,
        };
    if !own {
        caller.require_reader("get_domain")?;
    }
    let d = svc.domain(&id).await?;
    Ok(json_response(200, &json!({"domain": d.to_json(&svc)})))
}

/// `PATCH /v3/domains/{id}`.
pub(crate) async fn update(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_domain")?;
    let body = parse_body(&body)?;
    let d = svc.update_domain(&id, member(&body, "domain")?).await?;
    Ok(json_response(200, &json!({"domain": d.to_json(&svc)})))
}

/// `DELETE /v3/domains/{id}` (the domain must be disabled first).
pub(crate) async fn delete(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_domain")?;
    svc.delete_domain(&id).await?;
    Ok(empty(204))
}
