//! `/v3/users/{user_id}/application_credentials`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::json;

use super::{collection, empty, json_response, parse_body, ApiResult, Svc};
use crate::input::{member, query_get, query_pairs};
use crate::policy::Caller;
use crate::IdentityError;

/// `POST`: create (owner only); the secret is in this response only.
pub(crate) async fn create(svc: Svc, caller: Caller, Path(user): Path<String>, body: Bytes) -> ApiResult {
    let body = parse_body(&body)?;
    let (ac, secret) = svc.create_app_cred(&caller, &user, member(&body, "application_credential")?).await?;
    let mut out = ac.to_json(&svc).await?;
    out["secret"] = json!(secret);
    Ok(json_response(201, &json!({"application_credential": out})))
}

/// `GET` the list (`?name=`): owner or reader.
pub(crate) async fn list(svc: Svc, caller: Caller, Path(user): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    caller.require_reader_or_self("list_application_credentials", &user)?;
    let q = query_pairs(q.as_deref());
    let name = query_get(&q, "name");
    let mut items = vec![];
    for ac in svc.list_app_creds(&user).await? {
        if name.is_none_or(|n| n == ac.name) {
            items.push(ac.to_json(&svc).await?);
        }
    }
    Ok(collection(&svc, "application_credentials", &format!("users/{user}/application_credentials"), items))
}

/// `GET` one: owner or reader.
pub(crate) async fn show(svc: Svc, caller: Caller, Path((user, id)): Path<(String, String)>) -> ApiResult {
    caller.require_reader_or_self("get_application_credential", &user)?;
    match svc.get_app_cred(&id).await? {
        Some(ac) if ac.user_id == user => {
            Ok(json_response(200, &json!({"application_credential": ac.to_json(&svc).await?})))
        }
        _ => Err(IdentityError::not_found("application credential", id)),
    }
}

/// `DELETE`: owner or admin → 204.
pub(crate) async fn delete(svc: Svc, caller: Caller, Path((user, id)): Path<(String, String)>) -> ApiResult {
    if !(caller.is_admin() || caller.user_id() == user) {
        return Err(caller.refuse("delete_application_credential"));
    }
    svc.delete_app_cred(&user, &id).await?;
    Ok(empty(204))
}
