//! The core token lifecycle, run on SQLite and on PostgreSQL.

use reqwest::Method;
use serde_json::json;

use super::{password_by_id, password_by_name, role_names, Cloud, ADMIN_PASSWORD};

fn is_keystone_time(s: &str) -> bool {
    // 2026-11-25T02:52:42.000000Z
    s.len() == 27
        && s.ends_with('Z')
        && s.as_bytes()[10] == b'T'
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Issue (by name, by id), validate, wrong password, revoke, password
/// change, disabled user, disabled and deleted project.
pub async fn core_lifecycle(c: &Cloud) {
    // --- issue by name: the admin token body ---
    let (admin_tok, body) = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await;
    let t = &body["token"];
    assert_eq!(t["methods"], json!(["password"]));
    assert_eq!(t["user"]["name"], "admin");
    assert_eq!(t["user"]["domain"], json!({"id": "default", "name": "Default"}));
    assert_eq!(t["user"]["password_expires_at"], json!(null));
    assert_eq!(t["project"]["name"], "admin");
    assert_eq!(t["project"]["id"], c.boot.admin_project_id.as_str());
    assert_eq!(t["project"]["domain"]["id"], "default");
    assert_eq!(t["is_domain"], false);
    assert_eq!(role_names(&body), vec!["admin", "manager", "member", "reader"]);
    assert!(is_keystone_time(t["expires_at"].as_str().unwrap()), "{}", t["expires_at"]);
    assert!(is_keystone_time(t["issued_at"].as_str().unwrap()), "{}", t["issued_at"]);
    assert_eq!(t["audit_ids"].as_array().unwrap().len(), 1);
    assert_eq!(t["audit_ids"][0].as_str().unwrap().len(), 22);
    let catalog = t["catalog"].as_array().unwrap();
    let network = catalog.iter().find(|s| s["type"] == "network").expect("network in catalog");
    let public = network["endpoints"].as_array().unwrap().iter().find(|e| e["interface"] == "public").unwrap();
    assert_eq!(public["region"], "RegionOne");
    assert_eq!(public["region_id"], "RegionOne");
    assert_eq!(public["url"], "http://127.0.0.1:9696");
    assert_eq!(network["endpoints"].as_array().unwrap().len(), 3);
    let identity = catalog.iter().find(|s| s["type"] == "identity").unwrap();
    assert_eq!(identity["endpoints"][0]["url"], format!("{}/v3/", c.url));

    // --- issue by id (Tempest's dynamic credentials) ---
    let pid = c.project("lifecycle-p").await;
    let uid = c.user_with_role("lifecycle-u", "pw-one", &pid, "member").await;
    let (tok, body) = c.token(password_by_id(&uid, "pw-one", &pid)).await;
    assert_eq!(body["token"]["user"]["id"], uid.as_str());
    assert_eq!(body["token"]["project"]["id"], pid.as_str());
    assert_eq!(role_names(&body), vec!["member", "reader"]);

    // --- validate: GET (body + header), HEAD, nocatalog ---
    let (s, subject, vbody) = c.validate_as(&admin_tok, &tok).await;
    assert_eq!(s, 200);
    assert_eq!(subject.as_deref(), Some(tok.as_str()));
    assert_eq!(vbody["token"]["user"]["id"], uid.as_str());
    assert_eq!(vbody["token"]["audit_ids"], body["token"]["audit_ids"]);
    assert_eq!(vbody["token"]["expires_at"], body["token"]["expires_at"]);
    assert!(vbody["token"]["catalog"].is_array());
    let r = c
        .http
        .get(format!("{}/v3/auth/tokens?nocatalog", c.url))
        .header("X-Auth-Token", &admin_tok)
        .header("X-Subject-Token", &tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let nb: serde_json::Value = r.json().await.unwrap();
    assert!(nb["token"].get("catalog").is_none());
    let head = |subject: String| {
        c.http
            .head(format!("{}/v3/auth/tokens", c.url))
            .header("X-Auth-Token", admin_tok.clone())
            .header("X-Subject-Token", subject)
            .send()
    };
    assert_eq!(head(tok.clone()).await.unwrap().status(), 200);
    // A user may validate its own token, not someone else's.
    assert_eq!(c.validate_as(&tok, &tok).await.0, 200);
    assert_eq!(c.validate_as(&tok, &admin_tok).await.0, 403);

    // --- wrong password and unknown user: the same 401 ---
    let (s1, t1, b1) = c.auth(password_by_id(&uid, "wrong", &pid)).await;
    let (s2, t2, b2) = c.auth(password_by_id("0123456789abcdef0123456789abcdef", "wrong", &pid)).await;
    let (s3, _, b3) = c.auth(password_by_name("nobody", "wrong", Some("admin"))).await;
    assert_eq!((s1, s2, s3), (401, 401, 401));
    assert!(t1.is_none() && t2.is_none());
    assert_eq!(b1, b2);
    assert_eq!(b1, b3);
    assert_eq!(b1["error"]["code"], 401);
    assert_eq!(b1["error"]["title"], "Unauthorized");

    // --- revoke: DELETE, then 404 ---
    let (tok2, _) = c.token(password_by_id(&uid, "pw-one", &pid)).await;
    assert_eq!(c.revoke(&tok2).await, 204);
    assert_eq!(c.validate(&tok2).await, 404);
    assert_eq!(head(tok2.clone()).await.unwrap().status(), 404);
    assert_eq!(c.revoke(&tok2).await, 404);
    assert_eq!(c.validate(&tok).await, 200, "revoking one token leaves the others");

    // --- password change revokes the old tokens ---
    let r = c
        .http
        .post(format!("{}/v3/users/{uid}/password", c.url))
        .json(&json!({"user": {"original_password": "wrong", "password": "pw-two"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(c.validate(&tok).await, 200);
    let r = c
        .http
        .post(format!("{}/v3/users/{uid}/password", c.url))
        .json(&json!({"user": {"original_password": "pw-one", "password": "pw-two"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.validate(&tok).await, 404, "old token revoked by the password change");
    assert_eq!(c.auth(password_by_id(&uid, "pw-one", &pid)).await.0, 401);
    let (tok3, _) = c.token(password_by_id(&uid, "pw-two", &pid)).await;
    assert_eq!(c.validate(&tok3).await, 200, "a token issued after the change is valid");

    // --- admin password reset through PATCH also revokes ---
    let (s, _) =
        c.admin(Method::PATCH, &format!("/v3/users/{uid}"), Some(json!({"user": {"password": "pw-three"}}))).await;
    assert_eq!(s, 200);
    assert_eq!(c.validate(&tok3).await, 404);
    let (tok4, _) = c.token(password_by_id(&uid, "pw-three", &pid)).await;

    // --- disabled user: no login, tokens stop validating; re-enabled works ---
    let (s, b) = c.admin(Method::PATCH, &format!("/v3/users/{uid}"), Some(json!({"user": {"enabled": false}}))).await;
    assert_eq!(s, 200);
    assert_eq!(b["user"]["enabled"], false);
    assert_eq!(c.validate(&tok4).await, 404);
    let (s, _, b) = c.auth(password_by_id(&uid, "pw-three", &pid)).await;
    assert_eq!(s, 401);
    assert_eq!(b, b1, "a disabled user gets the same 401 as a wrong password");
    let (s, _) = c.admin(Method::PATCH, &format!("/v3/users/{uid}"), Some(json!({"user": {"enabled": true}}))).await;
    assert_eq!(s, 200);
    assert_eq!(c.validate(&tok4).await, 404, "re-enabling does not resurrect old tokens");
    let (tok5, _) = c.token(password_by_id(&uid, "pw-three", &pid)).await;

    // --- disabled project ---
    let (s, _) =
        c.admin(Method::PATCH, &format!("/v3/projects/{pid}"), Some(json!({"project": {"enabled": false}}))).await;
    assert_eq!(s, 200);
    assert_eq!(c.validate(&tok5).await, 404);
    let (s, _, b) = c.auth(password_by_id(&uid, "pw-three", &pid)).await;
    assert_eq!(s, 401, "{b}");
    let (s, _) =
        c.admin(Method::PATCH, &format!("/v3/projects/{pid}"), Some(json!({"project": {"enabled": true}}))).await;
    assert_eq!(s, 200);
    let (tok6, _) = c.token(password_by_id(&uid, "pw-three", &pid)).await;
    assert_eq!(c.validate(&tok6).await, 200);

    // --- deleted project: its tokens stop validating ---
    let (s, _) = c.admin(Method::DELETE, &format!("/v3/projects/{pid}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(c.validate(&tok6).await, 404);
    assert_eq!(c.admin(Method::GET, &format!("/v3/projects/{pid}"), None).await.0, 404);

    // --- garbage tokens ---
    assert_eq!(c.validate("not-a-token").await, 404);
    assert_eq!(c.validate(&format!("{}x", &admin_tok[..admin_tok.len() - 1])).await, 404);
}
