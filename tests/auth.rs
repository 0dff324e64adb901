//! The network API behind the embedded Keystone: 401s as keystonemiddleware
//! gives them, and policy from real tokens (admin, member, reader, another
//! project).

mod common;

use std::time::Duration;

use serde_json::{json, Value};

struct Cloud {
    child: std::process::Child,
    _dir: common::tempdir::Dir,
    net: String,
    ident: String,
    admin_password: String,
    http: reqwest::Client,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        common::unsafe_kill(&mut self.child);
    }
}

impl Cloud {
    async fn start() -> Cloud {
        let dir = common::tempdir::Dir::new();
        let (child, api, ident) = common::spawn_up_with_identity(&dir.0, &["--admin-password", "s3cret-admin"]);
        common::wait_for_openrc(&dir.0, Duration::from_secs(60));
        Cloud {
            child,
            _dir: dir,
            net: format!("http://127.0.0.1:{api}"),
            ident: format!("http://127.0.0.1:{ident}"),
            admin_password: "s3cret-admin".into(),
            http: reqwest::Client::new(),
        }
    }

    async fn token(&self, auth: Value) -> String {
        let r = self
            .http
            .post(format!("{}/v3/auth/tokens", self.ident))
            .json(&json!({ "auth": auth }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    async fn admin_token(&self) -> String {
        self.token(json!({"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": self.admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}))
            .await
    }

    async fn keystone(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self.http.request(method, format!("{}/v3/{path}", self.ident)).header("X-Auth-Token", token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    /// A new project with a user holding `role`; returns (project id, token).
    async fn user_with_role(&self, admin: &str, role: &str) -> (String, String) {
        let name = format!("p-{}", uuid::Uuid::new_v4().simple());
        let p = self
            .keystone(
                admin,
                reqwest::Method::POST,
                "projects",
                Some(json!({"project": {"name": name, "domain_id": "default"}})),
            )
            .await;
        let pid = p["project"]["id"].as_str().unwrap().to_string();
        let u = self
            .keystone(
                admin,
                reqwest::Method::POST,
                "users",
                Some(json!({"user": {"name": name, "password": "pw-123456", "domain_id": "default"}})),
            )
            .await;
        let uid = u["user"]["id"].as_str().unwrap().to_string();
        let roles = self.keystone(admin, reqwest::Method::GET, "roles", None).await;
        let rid = roles["roles"].as_array().unwrap().iter().find(|r| r["name"] == role).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.keystone(admin, reqwest::Method::PUT, &format!("projects/{pid}/users/{uid}/roles/{rid}"), None).await;
        let tok = self
            .token(json!({"identity": {"methods": ["password"], "password": {"user": {"id": uid, "password": "pw-123456"}}}, "scope": {"project": {"id": pid}}}))
            .await;
        (pid, tok)
    }

    async fn net(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut rb = self.http.request(method, format!("{}/v2.0/{path}", self.net));
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let s = r.status().as_u16();
        let h = r.headers().clone();
        (s, r.json().await.unwrap_or(Value::Null), h)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_policy() {
    let c = Cloud::start().await;
    // No token, garbage token: keystonemiddleware's 401.
    let (s, body, h) = c.net(None, reqwest::Method::GET, "networks", None).await;
    assert_eq!(s, 401);
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(h["www-authenticate"].to_str().unwrap(), format!("Keystone uri=\"{}\"", c.ident));
    assert_eq!(c.net(Some("gAAAAAgarbage"), reqwest::Method::GET, "networks", None).await.0, 401);
    let admin = c.admin_token().await;
    let (pa, member) = c.user_with_role(&admin, "member").await;
    let (_pb, other) = c.user_with_role(&admin, "member").await;
    let (_pr, reader_other_project) = c.user_with_role(&admin, "reader").await;
    // The member creates in its own project.
    let (s, n, _) =
        c.net(Some(&member), reqwest::Method::POST, "networks", Some(json!({"network": {"name": "mine"}}))).await;
    assert_eq!(s, 201);
    assert_eq!(n["network"]["project_id"], pa.as_str());
    let id = n["network"]["id"].as_str().unwrap().to_string();
    // Another project does not see it; a reader cannot write.
    assert_eq!(c.net(Some(&other), reqwest::Method::GET, &format!("networks/{id}"), None).await.0, 404);
    assert_eq!(
        c.net(Some(&reader_other_project), reqwest::Method::POST, "networks", Some(json!({"network": {"name": "x"}})))
            .await
            .0,
        403
    );
    // Admin-only attributes: refused for the member, fine for the admin.
    assert_eq!(
        c.net(Some(&member), reqwest::Method::POST, "networks", Some(json!({"network": {"shared": true}}))).await.0,
        403
    );
    let (s, n, _) = c.net(Some(&admin), reqwest::Method::GET, &format!("networks/{id}"), None).await;
    assert_eq!(s, 200);
    assert!(n["network"]["provider:network_type"].is_string());
    // A revoked token stops working.
    let r = c
        .http
        .delete(format!("{}/v3/auth/tokens", c.ident))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &member)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.net(Some(&member), reqwest::Method::GET, "networks", None).await.0, 401);
}
