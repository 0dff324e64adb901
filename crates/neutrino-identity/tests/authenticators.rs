//! The network API's authenticators: EmbeddedAuth (in-process) and
//! KeystoneAuth (over HTTP, here against the embedded service).

mod common;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use common::{password_by_id, password_by_name, Cloud, ADMIN_PASSWORD};
use neutrino_api::Authenticator;
use neutrino_identity::{EmbeddedAuth, KeystoneAuth, KeystoneAuthConfig};
use reqwest::Method;
use serde_json::json;

fn with_token(t: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-auth-token", HeaderValue::from_str(t).unwrap());
    h
}

#[tokio::test]
async fn embedded_auth_builds_the_context() {
    let c = Cloud::start().await;
    let auth = EmbeddedAuth::new(c.svc.clone());
    // Project member.
    let pid = c.project("emb-p").await;
    let uid = c.user_with_role("emb-u", "pw", &pid, "member").await;
    let (tok, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    let ctx = auth.authenticate(&with_token(&tok)).await.unwrap();
    assert_eq!(ctx.user_id.as_deref(), Some(uid.as_str()));
    assert_eq!(ctx.project_id.as_deref(), Some(pid.as_str()));
    let mut roles = ctx.roles.clone();
    roles.sort();
    assert_eq!(roles, vec!["member", "reader"]);
    assert!(!ctx.system_scope);
    assert!(!ctx.is_admin());
    // Admin (project-scoped).
    let ctx = auth.authenticate(&with_token(&c.admin_token)).await.unwrap();
    assert!(ctx.is_admin());
    assert!(ctx.has_role("reader"));
    assert_eq!(ctx.project_id.as_deref(), Some(c.boot.admin_project_id.as_str()));
    // System-scoped.
    let (sys, _) = c
        .token(json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"system": {"all": true}}}}))
        .await;
    let ctx = auth.authenticate(&with_token(&sys)).await.unwrap();
    assert!(ctx.system_scope);
    assert_eq!(ctx.project_id, None);
    // Missing, garbage, revoked.
    let f = auth.authenticate(&HeaderMap::new()).await.unwrap_err();
    assert_eq!(f.www_authenticate.as_deref(), Some(c.url.as_str()));
    assert!(auth.authenticate(&with_token("garbage")).await.is_err());
    assert_eq!(c.revoke(&tok).await, 204);
    let f = auth.authenticate(&with_token(&tok)).await.unwrap_err();
    assert_eq!(f.message, "The request you have made requires authentication.");
    c.stop().await;
}

/// A `neutron` service user in project `service` with role `service`, as a
/// deployment gives keystonemiddleware.
async fn service_user(c: &Cloud) -> String {
    let service_project = c.boot.service_project_id.clone();
    c.user_with_role("neutron", "neutron-pw", &service_project, "service").await
}

#[tokio::test]
async fn keystone_auth_validates_over_http_with_cache_and_revocation() {
    let c = Cloud::start().await;
    let neutron = service_user(&c).await;
    let mut cfg = KeystoneAuthConfig::new(format!("{}/v3", c.url), "neutron", "neutron-pw", "service");
    cfg.token_cache_time = Duration::from_secs(2);
    cfg.negative_cache_time = Duration::from_secs(2);
    let auth = KeystoneAuth::new(cfg).unwrap();

    let pid = c.project("ks-p").await;
    let uid = c.user_with_role("ks-u", "pw", &pid, "member").await;
    let (tok, _) = c.token(password_by_id(&uid, "pw", &pid)).await;

    let ctx = auth.authenticate(&with_token(&tok)).await.unwrap();
    assert_eq!(ctx.user_id.as_deref(), Some(uid.as_str()));
    assert_eq!(ctx.project_id.as_deref(), Some(pid.as_str()));
    let mut roles = ctx.roles.clone();
    roles.sort();
    assert_eq!(roles, vec!["member", "reader"]);
    assert_eq!(auth.remote_validations(), 1);
    assert_eq!(auth.service_logins(), 1);

    // Cache hit: no new request.
    auth.authenticate(&with_token(&tok)).await.unwrap();
    assert_eq!(auth.remote_validations(), 1);

    // Revoked: still served from the cache until it expires, then refused.
    assert_eq!(c.revoke(&tok).await, 204);
    assert!(auth.authenticate(&with_token(&tok)).await.is_ok());
    assert_eq!(auth.remote_validations(), 1);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let f = auth.authenticate(&with_token(&tok)).await.unwrap_err();
    assert_eq!(auth.remote_validations(), 2);
    assert_eq!(f.www_authenticate.as_deref(), Some(format!("{}/v3", c.url).as_str()));
    // Negative result cached.
    assert!(auth.authenticate(&with_token(&tok)).await.is_err());
    assert_eq!(auth.remote_validations(), 2);
    // Garbage and missing tokens.
    assert!(auth.authenticate(&with_token("garbage")).await.is_err());
    assert!(auth.authenticate(&HeaderMap::new()).await.is_err());

    // The service token is revoked (password change): re-authenticate on 401.
    let (s, _) = c
        .admin(Method::PATCH, &format!("/v3/users/{neutron}"), Some(json!({"user": {"password": "neutron-pw"}})))
        .await;
    assert_eq!(s, 200);
    let (tok2, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    let ctx = auth.authenticate(&with_token(&tok2)).await.unwrap();
    assert_eq!(ctx.project_id.as_deref(), Some(pid.as_str()));
    assert_eq!(auth.service_logins(), 2, "service token renewed after a 401");
    c.stop().await;
}

#[tokio::test]
async fn keystone_auth_refuses_when_keystone_is_unreachable_or_credentials_wrong() {
    let c = Cloud::start().await;
    service_user(&c).await;
    let (tok, _) = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await;
    let wrong = KeystoneAuth::new(KeystoneAuthConfig::new(c.url.clone(), "neutron", "bad", "service")).unwrap();
    let f = wrong.authenticate(&with_token(&tok)).await.unwrap_err();
    assert_eq!(f.message, "The identity service is unavailable.");
    assert_eq!(wrong.remote_validations(), 0);
    // auth_url without /v3 works (v3 appended).
    let right = KeystoneAuth::new(KeystoneAuthConfig::new(c.url.clone(), "neutron", "neutron-pw", "service")).unwrap();
    assert!(right.authenticate(&with_token(&tok)).await.unwrap().is_admin());
    let url = c.url.clone();
    c.stop().await;
    let gone = KeystoneAuth::new(KeystoneAuthConfig::new(url, "neutron", "neutron-pw", "service")).unwrap();
    assert!(gone.authenticate(&with_token(&tok)).await.is_err());
}

#[tokio::test]
async fn a_user_without_service_role_cannot_validate_others() {
    let c = Cloud::start().await;
    let pid = c.project("plain-p").await;
    c.user_with_role("plain", "pw", &pid, "member").await;
    let (admin_tok, _) = c.token(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await;
    let auth = KeystoneAuth::new(KeystoneAuthConfig::new(c.url.clone(), "plain", "pw", "plain-p")).unwrap();
    let f = auth.authenticate(&with_token(&admin_tok)).await.unwrap_err();
    assert_eq!(f.message, "The identity service could not validate the token.");
    c.stop().await;
}

#[tokio::test]
async fn embedded_auth_cache_follows_writes_and_bounds_staleness() {
    let c = Cloud::start().await;
    let auth = EmbeddedAuth::new(c.svc.clone()).with_cache_time(Duration::from_secs(1));
    let pid = c.project("cache-p").await;
    let uid = c.user_with_role("cache-u", "pw", &pid, "member").await;
    let member = c.role_id("member").await;

    // A write in this process invalidates the cache at once.
    let (tok, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    assert!(auth.authenticate(&with_token(&tok)).await.is_ok());
    let g = c.svc.generation();
    c.svc.revoke_role(&uid, &neutrino_identity::assignments::Target::Project(pid.clone()), &member).await.unwrap();
    assert!(c.svc.generation() > g);
    assert!(auth.authenticate(&with_token(&tok)).await.is_err(), "no role left: refused immediately");

    // A second server on the same database: its writes are seen within cache_time.
    c.svc.grant_role(&uid, &neutrino_identity::assignments::Target::Project(pid.clone()), &member).await.unwrap();
    let (tok2, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    assert!(auth.authenticate(&with_token(&tok2)).await.is_ok());
    let store2 =
        neutrino_store::Store::connect(&format!("sqlite://{}", c.dir.path().join("identity.sqlite").display()))
            .await
            .unwrap();
    let mut opts = neutrino_identity::IdentityOptions::new(c.url.clone(), c.dir.path().join("fernet-keys"));
    opts.password_hash_cost = 4;
    let other = neutrino_identity::IdentityService::new(store2, opts).await.unwrap();
    other.revoke_token(&tok2).await.unwrap();
    assert!(auth.authenticate(&with_token(&tok2)).await.is_ok(), "cached: the other server's write is not seen yet");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(auth.authenticate(&with_token(&tok2)).await.is_err(), "seen after cache_time");
    other.store().close().await;
    c.stop().await;
}
