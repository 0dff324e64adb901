//! Application credentials: create, authenticate, restrict roles, delete.

mod common;

use common::{password_by_id, role_names, Cloud};
use neutrino_api::Authenticator;
use reqwest::Method;
use serde_json::{json, Value};

fn ac_auth(id: &str, secret: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}}})
}

#[tokio::test]
async fn application_credentials_lifecycle() {
    let c = Cloud::start().await;
    let pid = c.project("ac-p").await;
    let uid = c.user_with_role("ac-u", "pw", &pid, "member").await;
    let (tok, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    let path = format!("/v3/users/{uid}/application_credentials");

    // Default roles: what the token carries. The secret is shown once.
    let (s, b) = c.call(Method::POST, &path, Some(&tok), Some(json!({"application_credential": {"name": "ci"}}))).await;
    assert_eq!(s, 201, "{b}");
    let full_id = b["application_credential"]["id"].as_str().unwrap().to_string();
    let full_secret = b["application_credential"]["secret"].as_str().unwrap().to_string();
    assert!(full_secret.len() >= 40);
    assert_eq!(b["application_credential"]["project_id"], pid.as_str());
    assert_eq!(b["application_credential"]["unrestricted"], false);
    // Only reader.
    let (s, b) = c
        .call(
            Method::POST,
            &path,
            Some(&tok),
            Some(
                json!({"application_credential": {"name": "ro", "secret": "ro-secret", "roles": [{"name": "reader"}]}}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let ro_id = b["application_credential"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["application_credential"]["secret"], "ro-secret");
    // Refusals: duplicate name, a role not held, past expiry, someone else's user.
    let post = |body: Value| c.call(Method::POST, &path, Some(&tok), Some(body));
    assert_eq!(post(json!({"application_credential": {"name": "ci"}})).await.0, 409);
    assert_eq!(post(json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}})).await.0, 403);
    assert_eq!(
        post(json!({"application_credential": {"name": "x", "expires_at": "2001-01-01T00:00:00"}})).await.0,
        400
    );
    assert_eq!(
        c.call(Method::POST, &path, Some(&c.admin_token), Some(json!({"application_credential": {"name": "y"}})))
            .await
            .0,
        403,
        "only the owner creates"
    );

    // List/show never carry the secret.
    let (s, b) = c.call(Method::GET, &path, Some(&tok), None).await;
    assert_eq!(s, 200);
    assert_eq!(b["application_credentials"].as_array().unwrap().len(), 2);
    assert!(b["application_credentials"][0].get("secret").is_none());
    let (s, b) = c.call(Method::GET, &format!("{path}/{ro_id}"), Some(&tok), None).await;
    assert_eq!((s, b["application_credential"]["name"].as_str()), (200, Some("ro")));

    // Authenticate by id, and by name + user.
    let (full_tok, body) = c.token(ac_auth(&full_id, &full_secret)).await;
    assert_eq!(body["token"]["methods"], json!(["application_credential"]));
    assert_eq!(body["token"]["project"]["id"], pid.as_str());
    assert_eq!(body["token"]["application_credential"]["id"], full_id.as_str());
    assert_eq!(body["token"]["application_credential"]["restricted"], true);
    assert_eq!(role_names(&body), vec!["member", "reader"]);
    let (ro_tok, body) = c
        .token(json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {
            "name": "ro", "secret": "ro-secret", "user": {"name": "ac-u", "domain": {"name": "Default"}}}}}}))
        .await;
    assert_eq!(role_names(&body), vec!["reader"]);
    let ctx = neutrino_identity::EmbeddedAuth::new(c.svc.clone())
        .authenticate(&{
            let mut h = axum::http::HeaderMap::new();
            h.insert("x-auth-token", ro_tok.parse().unwrap());
            h
        })
        .await
        .unwrap();
    assert_eq!(ctx.roles, vec!["reader"]);
    assert_eq!(ctx.project_id.as_deref(), Some(pid.as_str()));

    // Wrong secret and unknown id: the generic 401; a scope: 401; rescope: 403;
    // a restricted credential's token cannot make another credential.
    let (s1, _, b1) = c.auth(ac_auth(&full_id, "wrong")).await;
    let (s2, _, b2) = c.auth(ac_auth("0123456789abcdef0123456789abcdef", "wrong")).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2);
    let mut scoped = ac_auth(&full_id, &full_secret);
    scoped["auth"]["scope"] = json!({"project": {"id": pid}});
    assert_eq!(c.auth(scoped).await.0, 401);
    let (s, _, _) = c
        .auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": full_tok}}, "scope": {"project": {"id": pid}}}}))
        .await;
    assert_eq!(s, 403);
    let (s, _) =
        c.call(Method::POST, &path, Some(&full_tok), Some(json!({"application_credential": {"name": "z"}}))).await;
    assert_eq!(s, 403);

    // The user loses `member`: the full credential's tokens stop; the reader one goes on.
    let member = c.role_id("member").await;
    let reader = c.role_id("reader").await;
    let (s, _) = c.admin(Method::PUT, &format!("/v3/projects/{pid}/users/{uid}/roles/{reader}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = c.admin(Method::DELETE, &format!("/v3/projects/{pid}/users/{uid}/roles/{member}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(c.validate(&full_tok).await, 404);
    assert_eq!(c.validate(&ro_tok).await, 200);

    // Delete: its tokens stop, it no longer authenticates.
    let (s, _) = c.call(Method::DELETE, &format!("{path}/{ro_id}"), Some(&tok), None).await;
    assert_eq!(s, 204);
    assert_eq!(c.validate(&ro_tok).await, 404);
    assert_eq!(c.auth(ac_auth(&ro_id, "ro-secret")).await.0, 401);
    assert_eq!(c.call(Method::DELETE, &format!("{path}/{ro_id}"), Some(&tok), None).await.0, 404);
    c.stop().await;
}
