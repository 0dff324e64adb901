//! A real identity service for tests: a SQLite file (or a scratch PostgreSQL
//! database) in a temp dir, bootstrapped, served on a real TCP port.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use neutrino_identity::{bootstrap, BootstrapOptions, BootstrapOutcome, IdentityOptions, IdentityService};
use neutrino_store::Store;
use reqwest::Method;
use serde_json::{json, Value};

/// The admin password every test cloud is bootstrapped with.
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// A running test cloud.
pub struct Cloud {
    pub dir: tempfile::TempDir,
    pub svc: Arc<IdentityService>,
    pub url: String,
    pub boot: BootstrapOutcome,
    pub http: reqwest::Client,
    pub admin_token: String,
    server: tokio::task::JoinHandle<()>,
    pg_db: Option<PgGuard>,
}

/// What the tests tune.
pub struct Knobs {
    pub token_expiration: Duration,
    pub max_active_keys: usize,
    pub postgres: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { token_expiration: Duration::from_secs(3600), max_active_keys: 3, postgres: false }
    }
}

const PG_ADMIN_URL: &str = "postgresql://postgres@127.0.0.1:5432/postgres";

/// Creates a scratch PostgreSQL database; `None` (test skipped) when no
/// server answers outside CI.
pub async fn scratch_pg() -> Option<String> {
    let admin = match Store::connect(PG_ADMIN_URL).await {
        Ok(s) => s,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at 127.0.0.1:5432 is required in CI: {e}");
            }
            eprintln!("SKIPPED: no PostgreSQL at 127.0.0.1:5432 ({e})");
            return None;
        }
    };
    let name = format!("neutrino_identity_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(admin.pool()).await.expect("create scratch database");
    admin.close().await;
    Some(name)
}

pub async fn drop_pg(name: &str) {
    if let Ok(admin) = Store::connect(PG_ADMIN_URL).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(admin.pool()).await;
        admin.close().await;
    }
}

/// Drops a scratch database when dropped (also when a test panics).
pub struct PgGuard(pub String);

impl Drop for PgGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        // A fresh runtime on its own thread: this may run inside (or after) the test's runtime.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(drop_pg(&name));
            }
        })
        .join();
    }
}

impl Cloud {
    /// Starts a SQLite-backed cloud with default knobs.
    pub async fn start() -> Cloud {
        Self::start_with(Knobs::default()).await.unwrap()
    }

    /// Starts a cloud; `None` when PostgreSQL was asked for and is absent.
    pub async fn start_with(k: Knobs) -> Option<Cloud> {
        let dir = tempfile::tempdir().unwrap();
        let (db_url, pg_db) = if k.postgres {
            let name = scratch_pg().await?;
            (format!("postgresql://postgres@127.0.0.1:5432/{name}"), Some(PgGuard(name)))
        } else {
            (format!("sqlite://{}", dir.path().join("identity.sqlite").display()), None)
        };
        let store = Store::connect(&db_url).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut opts = IdentityOptions::new(&url, dir.path().join("fernet-keys"));
        opts.token_expiration = k.token_expiration;
        opts.max_active_keys = k.max_active_keys;
        opts.password_hash_cost = 4;
        let svc = Arc::new(IdentityService::new(store, opts).await.unwrap());
        let mut bo = BootstrapOptions::new("http://127.0.0.1:9696");
        bo.admin_password = Some(ADMIN_PASSWORD.into());
        let boot = bootstrap::bootstrap(&svc, &bo).await.unwrap();
        let router = neutrino_identity::router(svc.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let http = reqwest::Client::new();
        let mut cloud = Cloud { dir, svc, url, boot, http, admin_token: String::new(), server, pg_db };
        let (status, token, _) = cloud.auth(password_by_name("admin", ADMIN_PASSWORD, Some("admin"))).await;
        assert_eq!(status, 201);
        cloud.admin_token = token.unwrap();
        Some(cloud)
    }

    /// Stops the server and drops the scratch database, if any.
    pub async fn stop(self) {
        self.server.abort();
        self.svc.store().close().await;
        if let Some(db) = &self.pg_db {
            drop_pg(&db.0).await;
        }
    }

    /// `POST /v3/auth/tokens`: (status, X-Subject-Token, body).
    pub async fn auth(&self, body: Value) -> (u16, Option<String>, Value) {
        let r = self.http.post(format!("{}/v3/auth/tokens", self.url)).json(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let token = r.headers().get("x-subject-token").map(|v| v.to_str().unwrap().to_string());
        let body = r.json().await.unwrap_or(Value::Null);
        (status, token, body)
    }

    /// Issues a token or panics.
    pub async fn token(&self, body: Value) -> (String, Value) {
        let (status, token, body) = self.auth(body).await;
        assert_eq!(status, 201, "{body}");
        (token.unwrap(), body)
    }

    /// A request with a token: (status, body or Null).
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let (s, _, b) = self.call_full(method, path, token, body).await;
        (s, b)
    }

    /// A request with a token: (status, headers, body or Null).
    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Admin request.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, Some(&self.admin_token), body).await
    }

    /// `GET /v3/auth/tokens` for `subject`, as admin: the status.
    pub async fn validate(&self, subject: &str) -> u16 {
        self.validate_as(&self.admin_token, subject).await.0
    }

    /// `GET /v3/auth/tokens` for `subject` with `token`.
    pub async fn validate_as(&self, token: &str, subject: &str) -> (u16, Option<String>, Value) {
        let r = self
            .http
            .get(format!("{}/v3/auth/tokens", self.url))
            .header("X-Auth-Token", token)
            .header("X-Subject-Token", subject)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let st = r.headers().get("x-subject-token").map(|v| v.to_str().unwrap().to_string());
        (status, st, r.json().await.unwrap_or(Value::Null))
    }

    /// `DELETE /v3/auth/tokens` as admin: the status.
    pub async fn revoke(&self, subject: &str) -> u16 {
        self.http
            .delete(format!("{}/v3/auth/tokens", self.url))
            .header("X-Auth-Token", &self.admin_token)
            .header("X-Subject-Token", subject)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Creates a project (admin API); returns its id.
    pub async fn project(&self, name: &str) -> String {
        let (s, b) = self
            .admin(Method::POST, "/v3/projects", Some(json!({"project": {"name": name, "domain_id": "default"}})))
            .await;
        assert_eq!(s, 201, "{b}");
        b["project"]["id"].as_str().unwrap().to_string()
    }

    /// Creates a user with a role on a project; returns the user id.
    pub async fn user_with_role(&self, name: &str, password: &str, project: &str, role: &str) -> String {
        let (s, b) = self
            .admin(
                Method::POST,
                "/v3/users",
                Some(json!({"user": {"name": name, "password": password, "domain_id": "default"}})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let uid = b["user"]["id"].as_str().unwrap().to_string();
        let rid = self.role_id(role).await;
        let (s, _) = self.admin(Method::PUT, &format!("/v3/projects/{project}/users/{uid}/roles/{rid}"), None).await;
        assert_eq!(s, 204);
        uid
    }

    /// A role's id by name.
    pub async fn role_id(&self, name: &str) -> String {
        let (s, b) = self.admin(Method::GET, &format!("/v3/roles?name={name}"), None).await;
        assert_eq!(s, 200);
        b["roles"][0]["id"].as_str().unwrap().to_string()
    }
}

/// Password auth by user name in Default, optionally project-scoped by name.
pub fn password_by_name(user: &str, password: &str, project: Option<&str>) -> Value {
    let mut b = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}}}});
    if let Some(p) = project {
        b["auth"]["scope"] = json!({"project": {"name": p, "domain": {"name": "Default"}}});
    }
    b
}

/// Password auth by user id, project-scoped by id (Tempest's dynamic credentials).
pub fn password_by_id(user_id: &str, password: &str, project_id: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": user_id, "password": password}}},
        "scope": {"project": {"id": project_id, "domain": {"id": "default"}}}}})
}

/// Role names of a token body, sorted.
pub fn role_names(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["token"]["roles"]
        .as_array()
        .map(|a| a.iter().map(|r| r["name"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}
pub mod lifecycle;
