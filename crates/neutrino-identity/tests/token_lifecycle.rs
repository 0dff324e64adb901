//! Token lifecycle against a real listener and a real SQLite file.

mod common;

use std::time::Duration;

use common::{password_by_id, password_by_name, role_names, Cloud, Knobs, ADMIN_PASSWORD};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn token_lifecycle_on_sqlite() {
    let c = Cloud::start().await;
    common::lifecycle::core_lifecycle(&c).await;
    c.stop().await;
}

#[tokio::test]
async fn tokens_expire() {
    let c = Cloud::start_with(Knobs { token_expiration: Duration::from_secs(2), ..Knobs::default() }).await.unwrap();
    let (tok, body) = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await;
    let issued = chrono::DateTime::parse_from_rfc3339(body["token"]["issued_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(body["token"]["expires_at"].as_str().unwrap()).unwrap();
    let life = (expires - issued).num_milliseconds();
    assert!((1000..=2000).contains(&life), "lifetime {life} ms");
    assert_eq!(c.validate_as(&tok, &tok).await.0, 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let fresh = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await.0;
    assert_eq!(c.validate_as(&fresh, &tok).await.0, 404, "expired token must not validate");
    // An expired token cannot authenticate a request either.
    assert_eq!(c.call(Method::GET, "/v3/projects", Some(&tok), None).await.0, 401);
    // Nor be rescoped.
    let (s, _, _) = c.auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": tok}}}})).await;
    assert_eq!(s, 401);
    c.stop().await;
}

#[tokio::test]
async fn rescope_with_the_token_method() {
    let c = Cloud::start().await;
    let pid = c.project("rescope-p").await;
    let uid = c.user_with_role("rescope-u", "pw", &pid, "member").await;
    // Unscoped: no project, no roles, no catalog.
    let (unscoped, body) = c
        .token(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw"}}}}}))
        .await;
    assert!(body["token"].get("project").is_none());
    assert!(body["token"].get("catalog").is_none());
    assert!(body["token"].get("roles").is_none());
    // Rescope to the project by name.
    let (scoped, body) = c
        .token(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"name": "rescope-p", "domain": {"id": "default"}}}}}))
        .await;
    assert_eq!(body["token"]["project"]["id"], pid.as_str());
    assert_eq!(body["token"]["methods"], json!(["token", "password"]));
    assert_eq!(role_names(&body), vec!["member", "reader"]);
    let audit = body["token"]["audit_ids"].as_array().unwrap();
    assert_eq!(audit.len(), 2, "audit chain: own id, then the original's");
    assert_ne!(audit[0], audit[1]);
    assert_eq!(c.validate(&scoped).await, 200);
    // No role on the admin project: rescoping there fails.
    let (s, _, b) = c
        .auth(json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"id": c.boot.admin_project_id}}}}))
        .await;
    assert_eq!(s, 401, "{b}");
    // Revoking the original revokes the rescoped token (same audit chain).
    assert_eq!(c.revoke(&unscoped).await, 204);
    assert_eq!(c.validate(&scoped).await, 404);
    c.stop().await;
}

#[tokio::test]
async fn domain_and_system_scopes() {
    let c = Cloud::start().await;
    let (sys, body) = c
        .token(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"system": {"all": true}}}}))
        .await;
    assert_eq!(body["token"]["system"], json!({"all": true}));
    assert!(body["token"].get("project").is_none());
    assert!(role_names(&body).contains(&"admin".to_string()));
    assert_eq!(c.validate(&sys).await, 200);
    // Domain scope needs a domain role.
    let (s, _, _) = c
        .auth(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"domain": {"name": "Default"}}}}))
        .await;
    assert_eq!(s, 401);
    let admin_role = c.role_id("admin").await;
    let (s, _) = c
        .admin(Method::PUT, &format!("/v3/domains/default/users/{}/roles/{admin_role}", c.boot.admin_user_id), None)
        .await;
    assert_eq!(s, 204);
    let (_, body) = c
        .token(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"domain": {"id": "default"}}}}))
        .await;
    assert_eq!(body["token"]["domain"], json!({"id": "default", "name": "Default"}));
    c.stop().await;
}

#[tokio::test]
async fn key_rotation_keeps_recent_tokens_and_drops_old_ones() {
    let c = Cloud::start().await;
    let pid = c.project("rotation-p").await;
    let uid = c.user_with_role("rotation-u", "pw", &pid, "member").await;
    let (t1, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    assert_eq!(c.svc.rotate_keys().unwrap(), 2);
    let (t2, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    let admin = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await.0;
    assert_eq!(c.validate_as(&admin, &t1).await.0, 200, "issued under the previous primary");
    assert_eq!(c.validate_as(&admin, &t2).await.0, 200);
    // max_active_keys = 3: one more rotation drops key 1 (t1's key).
    assert_eq!(c.svc.rotate_keys().unwrap(), 3);
    let admin = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await.0;
    assert_eq!(c.validate_as(&admin, &t1).await.0, 404, "its key was dropped");
    assert_eq!(c.validate_as(&admin, &t2).await.0, 200, "key 2 is still a secondary");
    let mut files: Vec<String> = std::fs::read_dir(c.dir.path().join("fernet-keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec!["0", "2", "3"]);
    c.stop().await;
}

#[tokio::test]
async fn default_project_scopes_tokens_without_scope() {
    let c = Cloud::start().await;
    let pid = c.project("dp-p").await;
    let uid = c.user_with_role("dp-u", "pw", &pid, "reader").await;
    let (s, _) =
        c.admin(Method::PATCH, &format!("/v3/users/{uid}"), Some(json!({"user": {"default_project_id": pid}}))).await;
    assert_eq!(s, 200);
    let (_, body) = c
        .token(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw"}}}}}))
        .await;
    assert_eq!(body["token"]["project"]["id"], pid.as_str());
    assert_eq!(role_names(&body), vec!["reader"]);
    c.stop().await;
}

#[tokio::test]
async fn malformed_auth_requests_are_400_not_500() {
    let c = Cloud::start().await;
    for (body, want) in [
        ("{", 400),
        ("[]", 400),
        ("{\"auth\": 5}", 400),
        ("{\"auth\": {}}", 400),
        ("{\"auth\": {\"identity\": {\"methods\": []}}}", 400),
        ("{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"name\": \"admin\", \"password\": \"x\"}}}}}", 400),
        ("{\"auth\": {\"identity\": {\"methods\": [\"totp\"]}}}", 401),
        ("{\"auth\": {\"identity\": {\"methods\": [\"password\"], \"password\": {\"user\": {\"id\": 7, \"password\": \"x\"}}}}}", 400),
    ] {
        let r = c
            .http
            .post(format!("{}/v3/auth/tokens", c.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{body}");
        let b: serde_json::Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], want, "{body}");
    }
    c.stop().await;
}
