//! KeystoneAuth against a REAL Keystone. Ignored by default: run it through
//! `crates/neutrino-identity/scripts/real-keystone.sh`, which starts Keystone
//! 30.x from PyPI and sets `NEUTRINO_REAL_KEYSTONE_URL` and
//! `NEUTRINO_REAL_KEYSTONE_ADMIN_PASSWORD`.
//!
//! Also compares the shape of a real Keystone token with the embedded
//! service's.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use neutrino_api::Authenticator;
use neutrino_identity::{KeystoneAuth, KeystoneAuthConfig};
use neutrino_lib::ini::Ini;
use serde_json::{json, Value};

struct Real {
    url: String,
    http: reqwest::Client,
    admin: String,
}

impl Real {
    async fn token(&self, body: Value) -> (String, Value) {
        let r = self.http.post(format!("{}/v3/auth/tokens", self.url)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201, "real keystone refused {body}");
        let t = r.headers()["x-subject-token"].to_str().unwrap().to_string();
        (t, r.json().await.unwrap())
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.url)).header("X-Auth-Token", &self.admin);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, path: &str, key: &str, body: Value) -> String {
        let (s, b) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(s, 201, "{path}: {b}");
        b[key]["id"].as_str().unwrap().to_string()
    }

    async fn role(&self, name: &str) -> String {
        let (s, b) = self.call(reqwest::Method::GET, &format!("/v3/roles?name={name}"), None).await;
        assert_eq!(s, 200);
        b["roles"][0]["id"].as_str().expect("role exists").to_string()
    }

    async fn grant(&self, project: &str, user: &str, role: &str) {
        let (s, b) =
            self.call(reqwest::Method::PUT, &format!("/v3/projects/{project}/users/{user}/roles/{role}"), None).await;
        assert_eq!(s, 204, "{b}");
    }
}

fn with_token(t: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-auth-token", HeaderValue::from_str(t).unwrap());
    h
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn password(user: &str, pw: &str, project: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": pw}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}})
}

#[tokio::test]
#[ignore = "needs a real Keystone: run crates/neutrino-identity/scripts/real-keystone.sh"]
async fn keystone_auth_against_real_keystone() {
    let url =
        std::env::var("NEUTRINO_REAL_KEYSTONE_URL").expect("NEUTRINO_REAL_KEYSTONE_URL (run scripts/real-keystone.sh)");
    let admin_pw =
        std::env::var("NEUTRINO_REAL_KEYSTONE_ADMIN_PASSWORD").expect("NEUTRINO_REAL_KEYSTONE_ADMIN_PASSWORD");
    let http = reqwest::Client::new();
    let mut real = Real { url: url.clone(), http, admin: String::new() };
    let (admin, admin_body) = real.token(password("admin", &admin_pw, "admin")).await;
    real.admin = admin.clone();
    eprintln!("real keystone admin roles: {}", admin_body["token"]["roles"]);

    // What a deployment gives keystonemiddleware: user neutron, project
    // service, role service.
    let service_project =
        real.create("/v3/projects", "project", json!({"project": {"name": "service", "domain_id": "default"}})).await;
    let neutron = real
        .create(
            "/v3/users",
            "user",
            json!({"user": {"name": "neutron", "password": "neutron-pw", "domain_id": "default"}}),
        )
        .await;
    real.grant(&service_project, &neutron, &real.role("service").await).await;
    // A tenant.
    let demo_project =
        real.create("/v3/projects", "project", json!({"project": {"name": "demo", "domain_id": "default"}})).await;
    let demo = real
        .create("/v3/users", "user", json!({"user": {"name": "demo", "password": "demo-pw", "domain_id": "default"}}))
        .await;
    real.grant(&demo_project, &demo, &real.role("member").await).await;

    // KeystoneAuth configured exactly as neutron.conf would be.
    let ini = Ini::parse(&format!(
        "[keystone_authtoken]\nwww_authenticate_uri = {url}\nauth_url = {url}\nauth_type = password\nusername = neutron\npassword = neutron-pw\nproject_name = service\nuser_domain_name = Default\nproject_domain_name = Default\nregion_name = RegionOne\ntoken_cache_time = 2\n"
    ));
    let auth = KeystoneAuth::new(KeystoneAuthConfig::from_ini(&ini).unwrap()).unwrap();

    // A token issued by real Keystone is accepted with the right context.
    let (demo_tok, demo_body) = real.token(password("demo", "demo-pw", "demo")).await;
    let ctx = auth.authenticate(&with_token(&demo_tok)).await.expect("real token accepted");
    assert_eq!(ctx.user_id.as_deref(), Some(demo.as_str()));
    assert_eq!(ctx.project_id.as_deref(), Some(demo_project.as_str()));
    assert!(ctx.has_role("member"), "{:?}", ctx.roles);
    assert!(ctx.has_role("reader"), "implied by member: {:?}", ctx.roles);
    assert!(!ctx.is_admin());
    assert!(!ctx.system_scope);
    assert_eq!(auth.service_logins(), 1);
    assert_eq!(auth.remote_validations(), 1);
    let ctx = auth.authenticate(&with_token(&admin)).await.expect("admin token accepted");
    assert!(ctx.is_admin());
    // Cached.
    auth.authenticate(&with_token(&demo_tok)).await.unwrap();
    assert_eq!(auth.remote_validations(), 2);

    // Revoked by real Keystone: refused once the cache time has passed.
    let r = real
        .http
        .delete(format!("{url}/v3/auth/tokens"))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &demo_tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let f = auth.authenticate(&with_token(&demo_tok)).await.expect_err("revoked token refused");
    assert_eq!(f.www_authenticate.as_deref(), Some(url.as_str()));
    assert!(auth.authenticate(&with_token("gAAAAABnot-a-real-token")).await.is_err());
    eprintln!("KeystoneAuth vs real Keystone: accepted, cached, revocation honoured");

    // Shape comparison: real Keystone's token body vs the embedded service's.
    let ours = common::Cloud::start().await;
    let pid = ours.project("demo").await;
    ours.user_with_role("demo", "demo-pw", &pid, "member").await;
    let (_, our_body) = ours.token(password("demo", "demo-pw", "demo")).await;
    let (rt, ot) = (&demo_body["token"], &our_body["token"]);
    for (what, r, o) in [
        ("token", rt, ot),
        ("token.user", &rt["user"], &ot["user"]),
        ("token.project", &rt["project"], &ot["project"]),
        ("token.roles[0]", &rt["roles"][0], &ot["roles"][0]),
        ("token.catalog[0]", &rt["catalog"][0], &ot["catalog"][0]),
        ("token.catalog[0].endpoints[0]", &rt["catalog"][0]["endpoints"][0], &ot["catalog"][0]["endpoints"][0]),
    ] {
        let missing: Vec<_> = keys(r).difference(&keys(o)).cloned().collect();
        let extra: Vec<_> = keys(o).difference(&keys(r)).cloned().collect();
        eprintln!("{what}: missing {missing:?}, extra {extra:?}");
        assert!(missing.is_empty(), "{what} lacks {missing:?} that real Keystone sends");
    }
    let mut real_roles: Vec<&str> =
        rt["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    let mut our_roles: Vec<&str> =
        ot["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    real_roles.sort();
    our_roles.sort();
    assert_eq!(our_roles, real_roles, "same implied-role expansion for member");
    let (_, rinf) = real.call(reqwest::Method::GET, "/v3/role_inferences", None).await;
    eprintln!("real keystone role inferences: {rinf}");
    for t in ["expires_at", "issued_at"] {
        assert_eq!(rt[t].as_str().unwrap().len(), ot[t].as_str().unwrap().len(), "{t} format");
    }
    ours.stop().await;
}
