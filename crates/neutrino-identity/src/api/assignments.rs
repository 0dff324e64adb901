//! Role assignments: `/v3/{projects,domains}/{id}/users/{u}/roles[/{r}]`,
//! `/v3/system/users/{u}/roles[/{r}]` and `/v3/role_assignments`.
//!
//! `GET` on one assignment answers 204 (or 404), as Keystone's `HEAD` does;
//! axum serves `HEAD` from the same handler.

use axum::extract::{Path, RawQuery};

use super::{collection, empty, ApiResult, Svc};
use crate::assignments::{AssignmentFilter, Target};
use crate::input::{query_flag, query_get, query_pairs};
use crate::policy::Caller;

async fn list_on(svc: &Svc, caller: &Caller, user: &str, target: Target, path: String) -> ApiResult {
    caller.require_reader_or_self("list_grants", user)?;
    svc.user(user).await?;
    let items = svc.direct_roles(user, &target).await?.iter().map(|r| r.to_json(svc)).collect();
    Ok(collection(svc, "roles", &path, items))
}

async fn grant(svc: &Svc, caller: &Caller, user: &str, target: Target, role: &str) -> ApiResult {
    caller.require_admin("create_grant")?;
    svc.grant_role(user, &target, role).await?;
    Ok(empty(204))
}

async fn check(svc: &Svc, caller: &Caller, user: &str, target: Target, role: &str) -> ApiResult {
    caller.require_reader_or_self("check_grant", user)?;
    svc.check_assignment(user, &target, role).await?;
    Ok(empty(204))
}

async fn revoke(svc: &Svc, caller: &Caller, user: &str, target: Target, role: &str) -> ApiResult {
    caller.require_admin("revoke_grant")?;
    svc.revoke_role(user, &target, role).await?;
    Ok(empty(204))
}

/// `GET /v3/projects/{p}/users/{u}/roles`.
pub(crate) async fn list_project(svc: Svc, caller: Caller, Path((p, u)): Path<(String, String)>) -> ApiResult {
    let path = format!("projects/{p}/users/{u}/roles");
    list_on(&svc, &caller, &u, Target::Project(p), path).await
}

/// `PUT /v3/projects/{p}/users/{u}/roles/{r}` → 204.
pub(crate) async fn grant_project(
    svc: Svc,
    caller: Caller,
    Path((p, u, r)): Path<(String, String, String)>,
) -> ApiResult {
    grant(&svc, &caller, &u, Target::Project(p), &r).await
}

/// `GET`/`HEAD /v3/projects/{p}/users/{u}/roles/{r}` → 204 or 404.
pub(crate) async fn check_project(
    svc: Svc,
    caller: Caller,
    Path((p, u, r)): Path<(String, String, String)>,
) -> ApiResult {
    check(&svc, &caller, &u, Target::Project(p), &r).await
}

/// `DELETE /v3/projects/{p}/users/{u}/roles/{r}` → 204.
pub(crate) async fn revoke_project(
    svc: Svc,
    caller: Caller,
    Path((p, u, r)): Path<(String, String, String)>,
) -> ApiResult {
    revoke(&svc, &caller, &u, Target::Project(p), &r).await
}

/// `GET /v3/domains/{d}/users/{u}/roles`.
pub(crate) async fn list_domain(svc: Svc, caller: Caller, Path((d, u)): Path<(String, String)>) -> ApiResult {
    let path = format!("domains/{d}/users/{u}/roles");
    list_on(&svc, &caller, &u, Target::Domain(d), path).await
}

/// `PUT /v3/domains/{d}/users/{u}/roles/{r}` → 204.
pub(crate) async fn grant_domain(
    svc: Svc,
    caller: Caller,
    Path((d, u, r)): Path<(String, String, String)>,
) -> ApiResult {
    grant(&svc, &caller, &u, Target::Domain(d), &r).await
}

/// `GET`/`HEAD /v3/domains/{d}/users/{u}/roles/{r}` → 204 or 404.
pub(crate) async fn check_domain(
    svc: Svc,
    caller: Caller,
    Path((d, u, r)): Path<(String, String, String)>,
) -> ApiResult {
    check(&svc, &caller, &u, Target::Domain(d), &r).await
}

/// `DELETE /v3/domains/{d}/users/{u}/roles/{r}` → 204.
pub(crate) async fn revoke_domain(
    svc: Svc,
    caller: Caller,
    Path((d, u, r)): Path<(String, String, String)>,
) -> ApiResult {
    revoke(&svc, &caller, &u, Target::Domain(d), &r).await
}

/// `GET /v3/system/users/{u}/roles`.
pub(crate) async fn list_system(svc: Svc, caller: Caller, Path(u): Path<String>) -> ApiResult {
    let path = format!("system/users/{u}/roles");
    list_on(&svc, &caller, &u, Target::System, path).await
}

/// `PUT /v3/system/users/{u}/roles/{r}` → 204.
pub(crate) async fn grant_system(svc: Svc, caller: Caller, Path((u, r)): Path<(String, String)>) -> ApiResult {
    grant(&svc, &caller, &u, Target::System, &r).await
}

/// `GET`/`HEAD /v3/system/users/{u}/roles/{r}` → 204 or 404.
pub(crate) async fn check_system(svc: Svc, caller: Caller, Path((u, r)): Path<(String, String)>) -> ApiResult {
    check(&svc, &caller, &u, Target::System, &r).await
}

/// `DELETE /v3/system/users/{u}/roles/{r}` → 204.
pub(crate) async fn revoke_system(svc: Svc, caller: Caller, Path((u, r)): Path<(String, String)>) -> ApiResult {
    revoke(&svc, &caller, &u, Target::System, &r).await
}

/// `GET /v3/role_assignments` with `user.id`, `scope.project.id`,
/// `scope.domain.id`, `scope.system`, `role.id`, `effective`,
/// `include_names`. Non-readers may only list their own (`user.id` = self).
pub(crate) async fn list_all(svc: Svc, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let q = query_pairs(q.as_deref());
    let f = AssignmentFilter {
        user_id: query_get(&q, "user.id").map(String::from),
        project_id: query_get(&q, "scope.project.id").map(String::from),
        domain_id: query_get(&q, "scope.domain.id").map(String::from),
        system: query_get(&q, "scope.system").is_some(),
        role_id: query_get(&q, "role.id").map(String::from),
        effective: query_flag(&q, "effective"),
        include_names: query_flag(&q, "include_names"),
    };
    if !caller.is_reader() && f.user_id.as_deref() != Some(caller.user_id()) {
        return Err(caller.refuse("list_role_assignments"));
    }
    if query_get(&q, "group.id").is_some() {
        return Ok(collection(&svc, "role_assignments", "role_assignments", vec![]));
    }
    let items = svc.list_role_assignments(&f).await?;
    Ok(collection(&svc, "role_assignments", "role_assignments", items))
}
