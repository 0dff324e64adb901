//! Test harness: real `neutrino` processes on real stores, real HTTP.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Which store a server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `neutrino up` on its embedded SQLite file.
    Sqlite,
    /// `neutrino server` on a fresh PostgreSQL database.
    Postgres,
}

/// PostgreSQL admin URL (the scratch databases are created through it).
pub fn pg_admin_url() -> String {
    std::env::var("NEUTRINO_TEST_PG").unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

/// A scratch PostgreSQL database, dropped with its guard.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub fn create() -> PgDb {
        let name = format!("nt_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        let admin = pg_admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin);
        PgDb { url: format!("{base}/{name}"), name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql").arg(pg_admin_url()).arg("-qc").arg(sql).output().expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running neutrino process.
pub struct Server {
    pub kind: StoreKind,
    pub url: String,
    pub child: Child,
    pub state_dir: Option<tempdir::Dir>,
    pub pg: Option<std::sync::Arc<PgDb>>,
}

pub mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("neutrino-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_neutrino")
}

impl Server {
    /// Starts a server on the given store.
    pub async fn start(kind: StoreKind) -> Server {
        match kind {
            StoreKind::Sqlite => Self::start_up(&[]).await,
            StoreKind::Postgres => {
                let db = std::sync::Arc::new(PgDb::create());
                Self::start_server(db, &[]).await
            }
        }
    }

    /// `neutrino up --noauth` in a fresh state directory, with extra args.
    pub async fn start_up(extra: &[&str]) -> Server {
        let dir = tempdir::Dir::new();
        let port = free_port();
        let child = Command::new(bin())
            .args(["up", "--noauth", "--state-dir"])
            .arg(&dir.0)
            .args([
                "--api-bind",
                &format!("127.0.0.1:{port}"),
                "--identity-bind",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .args(extra)
            .env("RUST_LOG", std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .spawn()
            .expect("neutrino starts");
        let s = Server {
            kind: StoreKind::Sqlite,
            url: format!("http://127.0.0.1:{port}"),
            child,
            state_dir: Some(dir),
            pg: None,
        };
        s.wait_ready().await;
        s
    }

    /// `neutrino server --noauth` on a PostgreSQL database.
    pub async fn start_server(db: std::sync::Arc<PgDb>, extra: &[&str]) -> Server {
        let port = free_port();
        let child = Command::new(bin())
            .args(["server", "--noauth", "--db", &db.url, "--api-bind", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .spawn()
            .expect("neutrino starts");
        let s = Server {
            kind: StoreKind::Postgres,
            url: format!("http://127.0.0.1:{port}"),
            child,
            state_dir: None,
            pg: Some(db),
        };
        s.wait_ready().await;
        s
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = reqwest::Client::new();
        loop {
            if let Ok(r) = c.get(format!("{}/", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server at {} did not come up", self.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client acting as an admin.
    pub fn admin(&self) -> Client {
        Client::new(&self.url, "admin-project", "admin")
    }

    /// A client acting as a member of `project`.
    pub fn member(&self, project: &str) -> Client {
        Client::new(&self.url, project, "member")
    }

    /// A client acting as a reader of `project`.
    pub fn reader(&self, project: &str) -> Client {
        Client::new(&self.url, project, "reader")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe_kill(&mut self.child);
    }
}

/// Stops a child politely (SIGTERM), then for sure.
pub fn unsafe_kill(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A response: status and JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// Asserts the status and returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self.body
    }

    /// Asserts a Neutron fault of the given status and type.
    #[track_caller]
    pub fn fault(self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        let e = &self.body["NeutronError"];
        assert_eq!(e["type"], kind, "unexpected fault type: {}", self.body);
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "fault without message: {}", self.body);
        assert!(e.get("detail").is_some(), "fault without detail: {}", self.body);
        self.body
    }
}

/// An HTTP client with a project and roles (noauth headers).
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub project: String,
    pub roles: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, project: &str, roles: &str) -> Client {
        Client { base: base.into(), project: project.into(), roles: roles.into(), http: reqwest::Client::new() }
    }

    pub async fn req(&self, method: &str, path: &str, body: Option<Value>, headers: &[(&str, String)]) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/v2.0/{}", self.base, path.trim_start_matches('/'))
        };
        let mut rb = self
            .http
            .request(method.parse().unwrap(), url)
            .header("X-Project-Id", &self.project)
            .header("X-Roles", &self.roles);
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, body, headers }
    }

    pub async fn raw(&self, method: &str, path: &str, body: &str) -> Resp {
        let url = format!("{}/v2.0/{}", self.base, path);
        let r = self
            .http
            .request(method.parse().unwrap(), url)
            .header("X-Project-Id", &self.project)
            .header("X-Roles", &self.roles)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Resp { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), headers }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.req("GET", path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path, Some(body), &[]).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.req("PUT", path, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, None, &[]).await
    }

    /// Creates a network and returns it.
    pub async fn network(&self, name: &str) -> Value {
        self.post("networks", json!({"network": {"name": name}})).await.expect(201)["network"].clone()
    }

    /// Creates an IPv4 subnet and returns it.
    pub async fn subnet(&self, net: &Value, cidr: &str) -> Value {
        let v = if cidr.contains(':') { 6 } else { 4 };
        self.post("subnets", json!({"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": v}}))
            .await
            .expect(201)["subnet"]
            .clone()
    }

    /// Creates a port and returns it.
    pub async fn port(&self, net: &Value) -> Value {
        self.post("ports", json!({"port": {"network_id": net["id"]}})).await.expect(201)["port"].clone()
    }
}

/// Runs the body once on SQLite (`neutrino up`) and once on PostgreSQL
/// (`neutrino server`), as two test functions.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let srv = common::Server::start(common::StoreKind::Sqlite).await;
                ($body)(srv).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let srv = common::Server::start(common::StoreKind::Postgres).await;
                ($body)(srv).await;
            }
        }
    };
}

/// A fresh project id.
pub fn project() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A RabbitMQ virtual host of its own, so tests sharing the broker never see
/// each other's messages. Deleted with its guard.
pub struct RabbitVhost {
    pub name: String,
}

impl RabbitVhost {
    pub fn create() -> RabbitVhost {
        let name = format!("nt-{}", uuid::Uuid::new_v4().simple());
        let ok =
            Command::new("rabbitmqctl").args(["-q", "add_vhost", &name]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "rabbitmqctl add_vhost {name} failed (is RabbitMQ running?)");
        let ok = Command::new("rabbitmqctl")
            .args(["-q", "set_permissions", "-p", &name, "guest", ".*", ".*", ".*"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "rabbitmqctl set_permissions failed");
        RabbitVhost { name }
    }

    /// The transport URL of this vhost.
    pub fn url(&self) -> String {
        format!("rabbit://guest:guest@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for RabbitVhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(["-q", "delete_vhost", &self.name]).status();
    }
}

/// Polls `f` every `every` until it returns true or `t` has passed; whether it did.
pub async fn eventually<F, Fut>(t: Duration, every: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + t;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// `neutrino up` with its identity service on (no `--noauth`), on free
/// ports, in `dir`, with `extra` arguments; logs at warn (or
/// `NEUTRINO_TEST_LOG`). Returns the process and the API and identity ports.
pub fn spawn_up_with_identity(dir: &std::path::Path, extra: &[&str]) -> (Child, u16, u16) {
    let api = free_port();
    let ident = free_port();
    let child = Command::new(bin())
        .arg("up")
        .args(extra)
        .arg("--state-dir")
        .arg(dir)
        .args(["--api-bind", &format!("127.0.0.1:{api}"), "--identity-bind", &format!("127.0.0.1:{ident}")])
        .env("RUST_LOG", std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .spawn()
        .expect("neutrino starts");
    (child, api, ident)
}

/// Waits (blocking) until `up` wrote `dir/openrc`, at most `t`.
pub fn wait_for_openrc(dir: &std::path::Path, t: Duration) {
    let deadline = Instant::now() + t;
    while !dir.join("openrc").exists() {
        assert!(Instant::now() < deadline, "neutrino up did not write its openrc within {t:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A test that cannot run on this machine says why; under CI (`CI=true`)
/// that is a failure, never a pass.
pub fn cannot_run(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("this test cannot run here, and CI requires it: {why}");
    }
    eprintln!("SKIP: {why}");
}
