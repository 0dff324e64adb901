//! `/v3/projects`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::assignments::Target;
use crate::input::{member, query_bool, query_get, query_pairs};
use crate::policy::Caller;

/// `GET /v3/projects[?name=&domain_id=&enabled=]`: readers see all; others
/// see the projects they hold a role on.
pub(crate) async fn list(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let q = query_pairs(q.as_deref());
    let name = query_get(&q, "name");
    let domain_id = query_get(&q, "domain_id");
    let enabled = query_bool(&q, "enabled");
    let projects = if caller.is_reader() {
        svc.list_projects(domain_id, name, enabled).await?
    } else {
        svc.user_projects(caller.user_id())
            .await?
            .into_iter()
            .filter(|p| {
                name.is_none_or(|n| n == p.name)
                    && domain_id.is_none_or(|d| d == p.domain_id)
                    && enabled.is_none_or(|e| e == p.enabled)
            })
            .collect()
    };
    let items = projects.iter().map(|p| p.to_json(&svc)).collect();
    Ok(collection(&svc, "projects", "projects", items))
}

/// `POST /v3/projects`.
pub(crate) async fn create(svc: Svc, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin("create_project")?;
    let body = parse_body(&body)?;
    let default_domain = caller.info.domain_id().map(String::from);
    let p = svc.create_project(member(&body, "project")?, default_domain.as_deref()).await?;
    Ok(json_response(201, &json!({"project": p.to_json(&svc)})))
}

/// `GET /v3/projects/{id}`: readers, the token's project, or a project the
/// caller holds a role on.
pub(crate) async fn show(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    if !caller.is_reader()
        && caller.info.project_id() != Some(id.as_str())
        && svc.direct_roles(caller.user_id(), &Target::Project(id.clone())).await?.is_empty()
    {
        return Err(caller.refuse("get_project"));
    }
    let p = svc.project(&id).await?;
    Ok(json_response(200, &json!({"project": p.to_json(&svc)})))
}

/// `PATCH /v3/projects/{id}`.
pub(crate) async fn update(svc: Svc, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_admin("update_project")?;
    let body = parse_body(&body)?;
    let p = svc.update_project(&id, member(&body, "project")?).await?;
    Ok(json_response(200, &json!({"project": p.to_json(&svc)})))
}

/// `DELETE /v3/projects/{id}`.
pub(crate) async fn delete(svc: Svc, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin("delete_project")?;
    svc.delete_project(&id).await?;
    Ok(empty(204))
}
