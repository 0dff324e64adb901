//! Benchmark of the network API over HTTP against a real neutrino process
//! (`cargo bench --bench api`). Prints a table and one JSON line per store.
//!
//! Environment: NEUTRINO_BENCH_STORE = sqlite | postgres | both (default both),
//! NEUTRINO_BENCH_PORTS (default 1000 per phase), NEUTRINO_BENCH_FILL (5000).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn rss_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k]
}

#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> (u16, Value, f64) {
        let t = Instant::now();
        let r = self
            .http
            .post(format!("{}/v2.0/{path}", self.base))
            .header("X-Project-Id", "bench")
            .header("X-Roles", "admin")
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        (s, v, t.elapsed().as_secs_f64())
    }
    async fn get(&self, path: &str) -> (u16, usize, f64) {
        let t = Instant::now();
        let r = self
            .http
            .get(format!("{}/v2.0/{path}", self.base))
            .header("X-Project-Id", "bench")
            .header("X-Roles", "admin")
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let b = r.bytes().await.unwrap();
        (s, b.len(), t.elapsed().as_secs_f64())
    }
}

struct Phase {
    name: String,
    ok: usize,
    errors: usize,
    wall: f64,
    lat: Vec<f64>,
}

impl Phase {
    fn json(&self) -> Value {
        let mut l = self.lat.clone();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        json!({
            "ok": self.ok, "errors": self.errors, "per_s": (self.ok as f64 / self.wall * 10.0).round() / 10.0,
            "p50_ms": (pct(&l, 50.0) * 1e5).round() / 100.0, "p99_ms": (pct(&l, 99.0) * 1e5).round() / 100.0,
        })
    }
}

async fn ports(api: &Api, net: &str, n: usize, conc: usize, name: &str) -> Phase {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = vec![];
    for _ in 0..conc {
        let api = api.clone();
        let net = net.to_string();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut err, mut lat) = (0, 0, vec![]);
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let (s, _, dt) = api.post("ports", json!({"port": {"network_id": net}})).await;
                if s == 201 {
                    ok += 1;
                    lat.push(dt);
                } else {
                    err += 1;
                }
            }
            (ok, err, lat)
        }));
    }
    let mut p = Phase { name: name.into(), ok: 0, errors: 0, wall: 0.0, lat: vec![] };
    for tk in tasks {
        let (o, e, l) = tk.await.unwrap();
        p.ok += o;
        p.errors += e;
        p.lat.extend(l);
    }
    p.wall = t.elapsed().as_secs_f64();
    p
}

async fn run(store: &str) -> Value {
    let port = free_port();
    let bin = env!("CARGO_BIN_EXE_neutrino");
    let dir = std::env::temp_dir().join(format!("neutrino-bench-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut pg_db = None;
    let child = if store == "sqlite" {
        Command::new(bin)
            .args(["up", "--noauth", "--state-dir"])
            .arg(&dir)
            .args([
                "--api-bind",
                &format!("127.0.0.1:{port}"),
                "--identity-bind",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    } else {
        let name = format!("nt_bench_{port}");
        let admin = std::env::var("NEUTRINO_TEST_PG")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into());
        Command::new("psql").arg(&admin).arg("-qc").arg(format!("CREATE DATABASE {name}")).status().unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        pg_db = Some((admin, name));
        Command::new(bin)
            .args(["server", "--noauth", "--db", &url, "--api-bind", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let pid = child.id();
    let proc = Proc(child);
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap(),
    };
    for _ in 0..300 {
        if api.http.get(format!("{}/", api.base)).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n_ports: usize = std::env::var("NEUTRINO_BENCH_PORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let fill: usize = std::env::var("NEUTRINO_BENCH_FILL").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let _ = api
        .http
        .put(format!("{}/v2.0/quotas/bench", api.base))
        .header("X-Roles", "admin")
        .json(&json!({"quota": {"network": -1, "subnet": -1, "port": -1}}))
        .send()
        .await;
    // Networks at c=1.
    let t = Instant::now();
    let mut nets = Phase { name: "network create c=1".into(), ok: 0, errors: 0, wall: 0.0, lat: vec![] };
    for i in 0..200 {
        let (s, _, dt) = api.post("networks", json!({"network": {"name": format!("bn{i}")}})).await;
        if s == 201 {
            nets.ok += 1;
            nets.lat.push(dt);
        } else {
            nets.errors += 1;
        }
    }
    nets.wall = t.elapsed().as_secs_f64();
    let (_, n16, _) = api.post("networks", json!({"network": {"name": "slash16"}})).await;
    let net16 = n16["network"]["id"].as_str().unwrap().to_string();
    api.post("subnets", json!({"subnet": {"network_id": net16, "cidr": "10.128.0.0/16", "ip_version": 4}})).await;
    let c1 = ports(&api, &net16, n_ports, 1, "port create /16 c=1").await;
    let c8 = ports(&api, &net16, n_ports, 8, "port create /16 c=8").await;
    let (_, n8, _) = api.post("networks", json!({"network": {"name": "slash8"}})).await;
    let net8 = n8["network"]["id"].as_str().unwrap().to_string();
    api.post("subnets", json!({"subnet": {"network_id": net8, "cidr": "10.0.0.0/8", "ip_version": 4}})).await;
    let s8 = ports(&api, &net8, 200.min(n_ports), 1, "port create /8 c=1").await;
    let have = c1.ok + c8.ok + s8.ok;
    if fill > have {
        ports(&api, &net16, fill - have, 8, "fill").await;
    }
    let mut list_lat = vec![];
    let mut bytes = 0;
    for _ in 0..5 {
        let (s, b, dt) = api.get("ports").await;
        assert_eq!(s, 200);
        bytes = b;
        list_lat.push(dt);
    }
    list_lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rss = rss_kib(pid, "VmRSS:");
    let hwm = rss_kib(pid, "VmHWM:");
    drop(proc);
    if let Some((admin, name)) = pg_db {
        Command::new("psql")
            .arg(&admin)
            .arg("-qc")
            .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .status()
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let phases: Vec<&Phase> = vec![&nets, &c1, &c8, &s8];
    println!("\n== neutrino on {store} ==");
    for p in &phases {
        let j = p.json();
        println!(
            "{:<24} {:>8} /s   p50 {:>7} ms   p99 {:>7} ms   ok {} errors {}",
            p.name, j["per_s"], j["p50_ms"], j["p99_ms"], p.ok, p.errors
        );
    }
    println!(
        "{:<24} {:>8.1} ms (median of 5, {} ports, {} KB)",
        "GET /v2.0/ports",
        list_lat[2] * 1000.0,
        fill.max(have),
        bytes / 1024
    );
    println!("{:<24} {:>8} MiB (VmHWM {} MiB)", "server RSS", rss / 1024, hwm / 1024);
    let out = json!({
        "store": store,
        "networks_c1": nets.json(), "ports_c1": c1.json(), "ports_c8": c8.json(), "ports_slash8_c1": s8.json(),
        "list_ports_ms": (list_lat[2] * 1e5).round() / 100.0, "list_ports_count": fill.max(have), "list_bytes": bytes,
        "rss_mib": rss / 1024, "hwm_mib": hwm / 1024,
    });
    println!("{out}");
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench harness probing
    }
    let which = std::env::var("NEUTRINO_BENCH_STORE").unwrap_or_else(|_| "both".into());
    if which == "sqlite" || which == "both" {
        run("sqlite").await;
    }
    if which == "postgres" || which == "both" {
        run("postgres").await;
    }
}
