//! Scale benchmark (`cargo bench --bench scale`): a real neutrino server
//! process on a big store, with simulated L2 agents on RabbitMQ. Not a timed
//! test: it prints a table and one JSON line per store.
//!
//! Shapes measured:
//! * postgres: `neutrino server --noauth --db postgresql://…/<scratch db>
//!   --transport-url rabbit://…/<fresh vhost>`;
//! * sqlite: `neutrino up --noauth --transport-url rabbit://…/<fresh vhost>`
//!   (the all-in-one process on its embedded SQLite store; `up` takes a
//!   transport URL, so the agents below reach it over RabbitMQ too).
//!
//! The agents are RPC clients in this process (neutrino-rpc, one AMQP
//! connection each, as separate agent processes would have): each registers
//! with `report_state` as an Open vSwitch agent on host `simN` (tunnel type
//! vxlan), keeps reporting, and — while a phase needs it — serves the
//! notification topics an L2 agent serves (port updates, security groups,
//! l2population), recording when each notification arrives. Nothing of OVS.
//!
//! Only the public HTTP API and the RPC protocol are used.
//!
//! Environment (defaults in brackets):
//! * NEUTRINO_SCALE_PORTS [100000], NEUTRINO_SCALE_NETWORKS [1000],
//!   NEUTRINO_SCALE_AGENTS [100], NEUTRINO_SCALE_STORE = sqlite | postgres | both [both];
//! * NEUTRINO_SCALE_CHECKPOINTS: port counts at which creates and listings are
//!   measured [0,10000,<ports>];
//! * NEUTRINO_SCALE_SAMPLES: single-port POSTs per concurrency and checkpoint [200];
//! * NEUTRINO_SCALE_LIST_REPS: requests per paged-listing measurement [30];
//! * NEUTRINO_SCALE_RESYNC_PORTS: ports on the resync host `sim0` [1000];
//! * NEUTRINO_SCALE_FANOUT_ROUNDS [5]; NEUTRINO_SCALE_STORM = 0 to skip the
//!   100-agent security-group re-fetch [1];
//! * NEUTRINO_TEST_PG: admin URL of PostgreSQL [postgresql://postgres@127.0.0.1:5432/postgres];
//! * NEUTRINO_SCALE_RABBIT: broker [rabbit://guest:guest@127.0.0.1:5672]; a
//!   vhost of its own is created (and deleted) with `rabbitmqctl`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neutrino_lib::southbound::{methods, topics, AgentState};
use neutrino_rpc::{CallContext, MethodRouter, RpcClient, ServerHandle, ServerOptions, Target, Transport};
use serde_json::{json, Value};

const PROJECT: &str = "bench";
const DEVICE_BATCH: usize = 256; // the L2 agent's default `device_batch`

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

#[derive(Clone, Debug)]
struct Cfg {
    ports: usize,
    networks: usize,
    agents: usize,
    checkpoints: Vec<usize>,
    samples: usize,
    list_reps: usize,
    resync_ports: usize,
    fanout_rounds: usize,
    storm: bool,
    bulk: usize,
    fill_conc: usize,
}

impl Cfg {
    fn from_env() -> Cfg {
        let ports = env_usize("NEUTRINO_SCALE_PORTS", 100_000);
        let mut checkpoints: Vec<usize> = match std::env::var("NEUTRINO_SCALE_CHECKPOINTS") {
            Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
            Err(_) => vec![0, 10_000, ports],
        };
        checkpoints.retain(|c| *c <= ports);
        checkpoints.push(ports);
        checkpoints.sort_unstable();
        checkpoints.dedup();
        let networks = env_usize("NEUTRINO_SCALE_NETWORKS", 1000).clamp(1, 4096);
        Cfg {
            ports,
            networks,
            agents: env_usize("NEUTRINO_SCALE_AGENTS", 100).max(1),
            checkpoints,
            samples: env_usize("NEUTRINO_SCALE_SAMPLES", 200),
            list_reps: env_usize("NEUTRINO_SCALE_LIST_REPS", 30).max(1),
            resync_ports: env_usize("NEUTRINO_SCALE_RESYNC_PORTS", 1000).max(1),
            fanout_rounds: env_usize("NEUTRINO_SCALE_FANOUT_ROUNDS", 5).max(1),
            storm: env_usize("NEUTRINO_SCALE_STORM", 1) != 0,
            bulk: 200,
            fill_conc: 4,
        }
    }

    /// The host of the `seq`-th port: `sim0` (the resync host) gets about
    /// `resync_ports` ports spread over the whole run, the others share the rest.
    fn host_of(&self, seq: usize) -> String {
        let stride = (self.ports / self.resync_ports).max(1);
        if self.agents == 1 || seq.checked_rem(stride) == Some(0) {
            "sim0".into()
        } else {
            format!("sim{}", 1 + seq % (self.agents - 1))
        }
    }
}

// ---------------------------------------------------------------- processes

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Resets the peak RSS (VmHWM) of a process we own (`clear_refs` 5).
fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Samples VmRSS every 5 ms until dropped; `peak()` is the highest sample.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicUsize::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(status_kib(pid, "VmRSS:") as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        RssSampler { stop, peak, thread: Some(thread) }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed) as u64
    }
}

/// A RabbitMQ vhost of this run, deleted on drop.
struct Vhost {
    name: String,
    base: String,
}

impl Vhost {
    fn create() -> Vhost {
        let name = format!("nt-scale-{}", uuid::Uuid::new_v4().simple());
        let ok =
            Command::new("rabbitmqctl").args(["-q", "add_vhost", &name]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "rabbitmqctl add_vhost {name} failed (is RabbitMQ running, may we run rabbitmqctl?)");
        let ok = Command::new("rabbitmqctl")
            .args(["-q", "set_permissions", "-p", &name, "guest", ".*", ".*", ".*"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "rabbitmqctl set_permissions failed");
        let base =
            std::env::var("NEUTRINO_SCALE_RABBIT").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672".into());
        Vhost { name, base }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.base.trim_end_matches('/'), self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(["-q", "delete_vhost", &self.name]).status();
    }
}

/// The server under test.
struct Server {
    proc: Option<Proc>,
    pid: u32,
    /// The server's stderr (its tracing output at RUST_LOG=warn).
    log: PathBuf,
    shape: String,
    pg: Option<(String, String)>,
    dir: PathBuf,
}

impl Server {
    fn start(store: &str, port: u16, transport: &str) -> Server {
        let bin = env!("CARGO_BIN_EXE_neutrino");
        let dir = std::env::temp_dir().join(format!("neutrino-scale-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        let api_bind = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("neutrino-scale-{port}.log"));
        let stderr = || std::fs::File::create(&log).expect("server log file");
        let (child, shape, pg) = if store == "sqlite" {
            let child = Command::new(bin)
                .args(["up", "--noauth", "--state-dir"])
                .arg(&dir)
                .args(["--api-bind", &api_bind, "--identity-bind", &format!("127.0.0.1:{}", free_port())])
                .args(["--transport-url", transport])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(stderr())
                .spawn()
                .unwrap();
            (child, "neutrino up --noauth --transport-url rabbit://… (SQLite in the state dir)".to_string(), None)
        } else {
            let name = format!("nt_scale_{port}");
            let admin = std::env::var("NEUTRINO_TEST_PG")
                .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into());
            let ok = Command::new("psql")
                .arg(&admin)
                .arg("-qc")
                .arg(format!("CREATE DATABASE {name}"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot create database {name} on {admin}");
            let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
            let child = Command::new(bin)
                .args(["server", "--noauth", "--db", &url, "--api-bind", &api_bind, "--transport-url", transport])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(stderr())
                .spawn()
                .unwrap();
            (
                child,
                "neutrino server --noauth --db postgresql://…(scratch) --transport-url rabbit://…".into(),
                Some((admin, name)),
            )
        };
        let pid = child.id();
        Server { proc: Some(Proc(child)), pid, log, shape, pg, dir }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.proc.take());
        if let Some((admin, name)) = &self.pg {
            let _ = Command::new("psql")
                .arg(admin)
                .arg("-qc")
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server log's warnings and errors, by message, most frequent first.
fn log_summary(path: &std::path::Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in text.lines() {
        // Without ANSI colours: "<time> <LEVEL> [span:] message key=value ..."
        let mut plain = String::with_capacity(line.len());
        let mut esc = false;
        for c in line.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => plain.push(c),
            }
        }
        let mut words = plain.split_whitespace().skip(1);
        let Some(level) = words.next() else { continue };
        if level != "WARN" && level != "ERROR" {
            continue;
        }
        let msg: Vec<&str> = words.take_while(|w| !w.contains('=')).collect();
        *counts.entry(format!("{level} {}", msg.join(" "))).or_default() += 1;
    }
    let mut v: Vec<(usize, String)> = counts.into_iter().map(|(m, n)| (n, m)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v
}

// ---------------------------------------------------------------- HTTP

#[derive(Clone)]
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/v2.0/{path}", self.base))
            .header("X-Project-Id", PROJECT)
            .header("X-Roles", "admin")
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value, f64) {
        let t = Instant::now();
        let mut rq = self.request(method, path);
        if let Some(b) = body {
            rq = rq.json(b);
        }
        match rq.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let b = r.bytes().await.unwrap_or_default();
                let dt = t.elapsed().as_secs_f64();
                (s, serde_json::from_slice(&b).unwrap_or(Value::Null), dt)
            }
            Err(e) => (0, json!({"error": e.to_string()}), t.elapsed().as_secs_f64()),
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value, f64) {
        self.send_json(reqwest::Method::POST, path, Some(&body)).await
    }

    async fn get_json(&self, path: &str) -> (u16, Value, f64) {
        self.send_json(reqwest::Method::GET, path, None).await
    }

    /// GET, reading (and dropping) the body as it streams: status, bytes, seconds.
    async fn get_len(&self, path: &str) -> (u16, usize, f64) {
        let t = Instant::now();
        let Ok(mut r) = self.request(reqwest::Method::GET, path).send().await else {
            return (0, 0, t.elapsed().as_secs_f64());
        };
        let s = r.status().as_u16();
        let mut n = 0;
        while let Ok(Some(c)) = r.chunk().await {
            n += c.len();
        }
        (s, n, t.elapsed().as_secs_f64())
    }
}

// ---------------------------------------------------------------- figures

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k]
}

fn ms(s: f64) -> f64 {
    (s * 1e5).round() / 100.0
}

/// Latencies of one measurement.
#[derive(Default)]
struct Lat {
    lat: Vec<f64>,
    errors: usize,
    wall: f64,
    bytes: usize,
}

impl Lat {
    fn sorted(&self) -> Vec<f64> {
        let mut l = self.lat.clone();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap());
        l
    }
    fn json(&self) -> Value {
        let l = self.sorted();
        json!({
            "n": l.len(), "errors": self.errors,
            "per_s": if self.wall > 0.0 { (l.len() as f64 / self.wall * 10.0).round() / 10.0 } else { 0.0 },
            "p50_ms": ms(pct(&l, 50.0)), "p99_ms": ms(pct(&l, 99.0)), "max_ms": ms(pct(&l, 100.0)),
        })
    }
    fn line(&self) -> String {
        let l = self.sorted();
        let mut s = format!(
            "p50 {:>9.2} ms  p99 {:>9.2} ms  max {:>9.2} ms  n {}",
            ms(pct(&l, 50.0)),
            ms(pct(&l, 99.0)),
            ms(pct(&l, 100.0)),
            l.len()
        );
        if self.wall > 0.0 {
            s += &format!("  {:.1}/s", l.len() as f64 / self.wall);
        }
        if self.errors > 0 {
            s += &format!("  ERRORS {}", self.errors);
        }
        if self.bytes > 0 {
            s += &format!("  {} KiB/resp", self.bytes / 1024);
        }
        s
    }
}

/// The printed table and the JSON line of one store.
struct Report {
    store: String,
    rows: Vec<(String, String)>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    /// A printed row; its figures also go to the JSON line under `key`
    /// (checkpoint rows pass "" and are put in the checkpoint's object).
    fn row(&mut self, key: &str, name: String, text: String, j: Value) {
        println!("  [{}] {name:<44} {text}", self.store);
        self.rows.push((name, text));
        if !key.is_empty() {
            self.json.insert(key.to_string(), j);
        }
    }
}

// ---------------------------------------------------------------- agents

struct Arrival {
    at: Instant,
    method: String,
    args: Value,
}

/// One simulated L2 agent: registration and RPC only.
struct SimAgent {
    host: String,
    index: usize,
    bus: Arc<dyn Transport>,
    plugin: RpcClient,
    reports: RpcClient,
    ctx: CallContext,
    inbox: Arc<Mutex<Vec<Arrival>>>,
    received: Arc<AtomicUsize>,
    last: Arc<Mutex<Instant>>,
    servers: tokio::sync::Mutex<Vec<ServerHandle>>,
}

impl SimAgent {
    async fn connect(url: &str, host: String, index: usize) -> SimAgent {
        let bus = neutrino_rpc::connect(url).expect("transport");
        bus.wait_connected(Duration::from_secs(60)).await.expect("connecting to RabbitMQ");
        let timeout = Duration::from_secs(600);
        SimAgent {
            host,
            index,
            plugin: RpcClient::new(bus.clone(), Target::topic(neutrino_rpc::topics::PLUGIN)).with_timeout(timeout),
            reports: RpcClient::new(bus.clone(), Target::topic(neutrino_rpc::topics::REPORTS)).with_timeout(timeout),
            bus,
            ctx: CallContext::admin(),
            inbox: Arc::new(Mutex::new(vec![])),
            received: Arc::new(AtomicUsize::new(0)),
            last: Arc::new(Mutex::new(Instant::now())),
            servers: tokio::sync::Mutex::new(vec![]),
        }
    }

    fn tunnel_ip(&self) -> String {
        format!("172.31.{}.{}", self.index / 250, 1 + self.index % 250)
    }

    async fn report(&self, start_flag: bool) -> Result<String, String> {
        let state = AgentState {
            agent_type: neutrino_lib::defs::agent::AGENT_TYPE_OVS.into(),
            binary: "neutrino-openvswitch-agent".into(),
            host: self.host.clone(),
            topic: "N/A".into(),
            availability_zone: None,
            configurations: json!({
                "bridge_mappings": {}, "tunnel_types": ["vxlan"], "tunneling_ip": self.tunnel_ip(),
                "datapath_type": "system", "integration_bridge": "br-int", "tunnel_bridge": "br-tun",
                "l2_population": true, "arp_responder_enabled": true, "firewall_driver": "openvswitch",
                "ovs_hybrid_plug": false, "devices": 0,
            }),
            start_flag,
        };
        let v = self
            .reports
            .call(&self.ctx, methods::REPORT_STATE, json!({ "agent_state": state }))
            .await
            .map_err(|e| e.to_string())?;
        Ok(v.get("status").and_then(Value::as_str).unwrap_or("?").to_string())
    }

    async fn call(&self, method: &str, args: Value) -> (Result<Value, String>, f64) {
        let t = Instant::now();
        let r = self.plugin.call(&self.ctx, method, args).await.map_err(|e| e.to_string());
        (r, t.elapsed().as_secs_f64())
    }

    /// Serves `topics` as this host (one message at a time per topic, as the
    /// L2 agent does), recording each notification's arrival; with `keep`
    /// false only counts them.
    async fn listen(&self, which: &[&'static str], keep: bool) {
        let mut servers = self.servers.lock().await;
        if !servers.is_empty() {
            return;
        }
        for topic in which {
            let names: &[&'static str] = match *topic {
                topics::PORT_UPDATE => &[methods::PORT_UPDATE],
                topics::SECURITY_GROUP => &[methods::SG_MEMBER_UPDATED, methods::SG_RULE_UPDATED],
                topics::L2POP => &[methods::PEERS_CHANGED],
                _ => &[],
            };
            let mut router = MethodRouter::new();
            for name in names {
                let (inbox, received, last) = (self.inbox.clone(), self.received.clone(), self.last.clone());
                router = router.method(name, move |_ctx, args| {
                    let at = Instant::now();
                    received.fetch_add(1, Ordering::Relaxed);
                    *last.lock().unwrap() = at;
                    if keep {
                        inbox.lock().unwrap().push(Arrival { at, method: name.to_string(), args });
                    }
                    async { Ok(Value::Null) }
                });
            }
            let h = self
                .bus
                .serve(topic, &self.host, Arc::new(router), ServerOptions { max_concurrency: 1 })
                .await
                .expect("serving a notification topic");
            servers.push(h);
        }
    }

    /// Stops serving the notification topics (the fanout queues go away).
    async fn deaf(&self) {
        let hs: Vec<ServerHandle> = std::mem::take(&mut *self.servers.lock().await);
        for h in hs {
            h.stop().await;
        }
    }

    fn arrival_after(&self, t0: Instant, method: &str, group: &str) -> Option<f64> {
        self.inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.at >= t0 && a.method == method)
            .find(|a| {
                group.is_empty()
                    || a.args["security_groups"].as_array().is_some_and(|g| g.iter().any(|x| x.as_str() == Some(group)))
                    || a.args["port"]["id"].as_str() == Some(group)
            })
            .map(|a| (a.at - t0).as_secs_f64())
    }
}

const L2_TOPICS: &[&str] = &[topics::PORT_UPDATE, topics::SECURITY_GROUP, topics::L2POP];

async fn all_listen(agents: &[SimAgent]) {
    futures::future::join_all(agents.iter().map(|a| a.listen(L2_TOPICS, true))).await;
}

async fn all_deaf(agents: &[SimAgent]) {
    futures::future::join_all(agents.iter().map(|a| a.deaf())).await;
    for a in agents {
        a.inbox.lock().unwrap().clear();
    }
}

/// Waits until the probe (listening to port updates) has seen at least
/// `expected` of them and then nothing for 500 ms: the server's notifier has
/// caught up. Returns when the last one arrived (seconds after the call; 0 if
/// nothing was pending), or None on timeout.
async fn drained(probe: &SimAgent, expected: usize, timeout: Duration) -> Option<f64> {
    let t = Instant::now();
    loop {
        let quiet = probe.last.lock().unwrap().elapsed() > Duration::from_millis(500);
        if probe.received.load(Ordering::Relaxed) >= expected && quiet {
            let last = *probe.last.lock().unwrap();
            return Some(last.saturating_duration_since(t).as_secs_f64());
        }
        if t.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------- the run

/// splitmix64: spreads ports over networks independently of their host
/// (a plain `seq % networks` would put all of `sim0`'s ports on a few networks).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct World {
    cfg: Cfg,
    api: Api,
    nets: Vec<String>,
    seq: AtomicUsize,
    created: AtomicUsize,
}

impl World {
    fn port_body(&self, seq: usize) -> Value {
        json!({
            "network_id": self.nets[(mix(seq as u64) % self.nets.len() as u64) as usize],
            "binding:host_id": self.cfg.host_of(seq),
            "name": format!("p{seq}"),
            "device_owner": "compute:nova",
            "device_id": format!("vm-{seq}"),
        })
    }

    /// Bulk creates until `target` ports exist.
    async fn fill(self: &Arc<Self>, target: usize) -> Lat {
        let t = Instant::now();
        let mut tasks = vec![];
        for _ in 0..self.cfg.fill_conc {
            let w = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut l = Lat::default();
                loop {
                    let have = w.created.load(Ordering::SeqCst);
                    if have >= target {
                        break;
                    }
                    let n = w.cfg.bulk.min(target - have);
                    // Claim the ports before creating them so workers do not overshoot.
                    if w.created.compare_exchange(have, have + n, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                        continue;
                    }
                    let start = w.seq.fetch_add(n, Ordering::SeqCst);
                    let ports: Vec<Value> = (start..start + n).map(|s| w.port_body(s)).collect();
                    let (s, v, dt) = w.api.post("ports", json!({ "ports": ports })).await;
                    if s == 201 {
                        l.lat.push(dt);
                    } else {
                        w.created.fetch_sub(n, Ordering::SeqCst);
                        l.errors += 1;
                        eprintln!("bulk create: HTTP {s}: {}", v.to_string().chars().take(300).collect::<String>());
                        if l.errors > 20 {
                            break;
                        }
                    }
                }
                l
            }));
        }
        let mut all = Lat::default();
        for tk in tasks {
            let l = tk.await.unwrap();
            all.lat.extend(l.lat);
            all.errors += l.errors;
        }
        all.wall = t.elapsed().as_secs_f64();
        all
    }

    /// `n` single-port POSTs from `conc` clients.
    async fn singles(self: &Arc<Self>, n: usize, conc: usize) -> Lat {
        let t = Instant::now();
        let left = Arc::new(AtomicUsize::new(n));
        let mut tasks = vec![];
        for _ in 0..conc {
            let (w, left) = (self.clone(), left.clone());
            tasks.push(tokio::spawn(async move {
                let mut l = Lat::default();
                while left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |x| x.checked_sub(1)).is_ok() {
                    let seq = w.seq.fetch_add(1, Ordering::SeqCst);
                    let (s, _, dt) = w.api.post("ports", json!({ "port": w.port_body(seq) })).await;
                    if s == 201 {
                        w.created.fetch_add(1, Ordering::SeqCst);
                        l.lat.push(dt);
                    } else {
                        l.errors += 1;
                    }
                }
                l
            }));
        }
        let mut all = Lat::default();
        for tk in tasks {
            let l = tk.await.unwrap();
            all.lat.extend(l.lat);
            all.errors += l.errors;
        }
        all.wall = t.elapsed().as_secs_f64();
        all
    }

    /// GETs `paths` in turn; stops after 30 s once 3 were done.
    async fn gets(&self, paths: &[String]) -> Lat {
        let mut l = Lat::default();
        let t = Instant::now();
        for p in paths {
            if l.lat.len() >= 3 && t.elapsed() > Duration::from_secs(30) {
                break;
            }
            let (s, b, dt) = self.api.get_len(p).await;
            if s == 200 {
                l.lat.push(dt);
                l.bytes = b;
            } else {
                l.errors += 1;
            }
        }
        l.wall = t.elapsed().as_secs_f64();
        l
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn run(store: &str, cfg: &Cfg) -> Value {
    let vhost = Vhost::create();
    let port = free_port();
    let server = Server::start(store, port, &vhost.url());
    let pid = server.pid;
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder().pool_max_idle_per_host(64).timeout(Duration::from_secs(1800)).build().unwrap(),
    };
    let mut up = false;
    for _ in 0..600 {
        if api.http.get(format!("{}/", api.base)).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not come up");
    let mut rep = Report { store: store.into(), rows: vec![], json: serde_json::Map::new() };
    println!("\n== neutrino on {store}: {} ==", server.shape);
    println!(
        "   {} ports over {} networks, {} agents, checkpoints {:?}, {} samples per create measurement",
        cfg.ports, cfg.networks, cfg.agents, cfg.checkpoints, cfg.samples
    );
    rep.json.insert("store".into(), json!(store));
    rep.json.insert("shape".into(), json!(server.shape));
    rep.json.insert(
        "sizes".into(),
        json!({"ports": cfg.ports, "networks": cfg.networks, "agents": cfg.agents, "checkpoints": cfg.checkpoints}),
    );
    let _ = api
        .request(reqwest::Method::PUT, &format!("quotas/{PROJECT}"))
        .json(&json!({"quota": {"network": -1, "subnet": -1, "port": -1, "security_group": -1, "security_group_rule": -1}}))
        .send()
        .await;

    // Agents: connect, register, keep reporting.
    let url = vhost.url();
    let t = Instant::now();
    let agents: Arc<Vec<SimAgent>> = Arc::new(
        futures::future::join_all((0..cfg.agents).map(|i| SimAgent::connect(&url, format!("sim{i}"), i))).await,
    );
    let connect_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reg = futures::future::join_all(agents.iter().map(|a| async move {
        let t = Instant::now();
        (a.report(true).await, t.elapsed().as_secs_f64())
    }))
    .await;
    let mut reg_lat = Lat { wall: t.elapsed().as_secs_f64(), ..Default::default() };
    for (r, dt) in reg {
        match r {
            Ok(_) => reg_lat.lat.push(dt),
            Err(e) => {
                reg_lat.errors += 1;
                eprintln!("report_state: {e}");
            }
        }
    }
    let (_, av, _) =
        api.get_json(&format!("agents?agent_type={}", enc(neutrino_lib::defs::agent::AGENT_TYPE_OVS))).await;
    let alive = av["agents"].as_array().map(|a| a.iter().filter(|x| x["alive"] == json!(true)).count()).unwrap_or(0);
    rep.row(
        "agents_register",
        format!("register {} agents (report_state, concurrent)", cfg.agents),
        format!(
            "{}  wall {:.2} s  (connect {:.2} s; {} alive in GET /agents)",
            reg_lat.line(),
            reg_lat.wall,
            connect_s,
            alive
        ),
        json!({"report_state": reg_lat.json(), "wall_s": reg_lat.wall, "connect_s": connect_s, "alive": alive}),
    );
    let hb_stop = Arc::new(AtomicBool::new(false));
    let hb_fail = Arc::new(AtomicUsize::new(0));
    let heartbeat = {
        let (agents, stop, fail) = (agents.clone(), hb_stop.clone(), hb_fail.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..40 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                for r in futures::future::join_all(agents.iter().map(|a| a.report(false))).await {
                    if r.is_err() {
                        fail.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // The probe: a listener of port updates only, to know when the server's
    // notifier has caught up with the creates.
    let probe = SimAgent::connect(&url, "bench-probe".into(), 9999).await;
    probe.listen(&[topics::PORT_UPDATE], false).await;

    // Networks with one IPv4 /20 subnet each.
    let t = Instant::now();
    let mut nets = vec![];
    for chunk in (0..cfg.networks).collect::<Vec<_>>().chunks(100) {
        let body: Vec<Value> = chunk.iter().map(|i| json!({"name": format!("sn{i}")})).collect();
        let (s, v, _) = api.post("networks", json!({ "networks": body })).await;
        assert_eq!(s, 201, "bulk network create: {v}");
        let ids: Vec<String> =
            v["networks"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect();
        let subnets: Vec<Value> = chunk
            .iter()
            .zip(&ids)
            .map(|(i, id)| {
                json!({"network_id": id, "ip_version": 4, "cidr": format!("10.{}.{}.0/20", i >> 4, (i & 15) << 4)})
            })
            .collect();
        let (s, v, _) = api.post("subnets", json!({ "subnets": subnets })).await;
        assert_eq!(s, 201, "bulk subnet create: {v}");
        nets.extend(ids);
    }
    let setup_s = t.elapsed().as_secs_f64();
    rep.row(
        "setup_networks_s",
        format!("setup: {} networks + /20 subnets (bulk)", cfg.networks),
        format!("{setup_s:.2} s"),
        json!(setup_s),
    );
    let (_, sg, _) = api.get_json("security-groups?name=default").await;
    let default_sg = sg["security_groups"][0]["id"].as_str().unwrap_or_default().to_string();

    let world = Arc::new(World {
        cfg: cfg.clone(),
        api: api.clone(),
        nets: nets.clone(),
        seq: AtomicUsize::new(0),
        created: AtomicUsize::new(0),
    });
    let mut checkpoints = vec![];
    let last_cp = *cfg.checkpoints.last().unwrap();
    for &cp in &cfg.checkpoints {
        let mut cpj = serde_json::Map::new();
        let have = world.created.load(Ordering::SeqCst);
        if cp > have {
            let f = world.fill(cp).await;
            let n = world.created.load(Ordering::SeqCst) - have;
            let rate = n as f64 / f.wall;
            rep.row(
                "",
                format!("fill {have} -> {cp} (bulk {} x c={})", cfg.bulk, cfg.fill_conc),
                format!("{:.1} s  {rate:.0} ports/s  bulk POST {}", f.wall, f.line()),
                json!(null),
            );
            cpj.insert("fill".into(), json!({"from": have, "s": f.wall, "ports_per_s": rate, "bulk_post": f.json()}));
        }
        let drain = drained(&probe, world.created.load(Ordering::SeqCst), Duration::from_secs(1800)).await;
        rep.row(
            "",
            format!("@{cp}: notifications caught up after"),
            match drain {
                Some(s) => {
                    format!("{s:.2} s  ({} port_update seen by the probe)", probe.received.load(Ordering::Relaxed))
                }
                None => "TIMEOUT".into(),
            },
            json!(null),
        );
        cpj.insert("notifier_lag_s".into(), json!(drain));
        // Single-port creates, with the agents listening.
        all_listen(&agents).await;
        let in_store = world.created.load(Ordering::SeqCst);
        for conc in [1, 8] {
            if cfg.samples == 0 {
                break;
            }
            let l = world.singles(cfg.samples, conc).await;
            rep.row("", format!("@{in_store}: POST /ports (1 port) c={conc}"), l.line(), l.json());
            cpj.insert(format!("create_c{conc}"), l.json());
        }
        let drain = drained(&probe, world.created.load(Ordering::SeqCst), Duration::from_secs(600)).await;
        all_deaf(&agents).await;
        let in_store = world.created.load(Ordering::SeqCst);
        cpj.insert("ports".into(), json!(in_store));
        cpj.insert("lag_after_creates_s".into(), json!(drain));
        // At rest: the notifier caught up, nothing listed yet.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rest = status_kib(pid, "VmRSS:");
        rep.row(
            if cp == last_cp { "rss_rest" } else { "" },
            format!("@{in_store}: server RSS at rest"),
            format!("{} MiB (VmHWM so far {} MiB)", rest / 1024, status_kib(pid, "VmHWM:") / 1024),
            json!({"rss_mib": rest / 1024, "hwm_mib": status_kib(pid, "VmHWM:") / 1024}),
        );
        cpj.insert("rss_rest_mib".into(), json!(rest / 1024));
        // Listings.
        // (Not timed: the ids for a marker from the middle, and whether the
        // ports got bound to their simulated hosts.)
        let (s, v, _) = api.get_json("ports?fields=id&fields=binding:vif_type").await;
        let listed = v["ports"].as_array().cloned().unwrap_or_default();
        let ids: Vec<String> = listed.iter().filter_map(|p| p["id"].as_str().map(String::from)).collect();
        let bound = listed.iter().filter(|p| p["binding:vif_type"] == json!("ovs")).count();
        if s != 200 || ids.len() != in_store || bound != ids.len() {
            eprintln!(
                "GET /ports?fields=id: HTTP {s}, {} ids ({bound} bound to ovs), {in_store} ports created",
                ids.len()
            );
        }
        cpj.insert("bound_ovs".into(), json!(bound));
        let reps = cfg.list_reps;
        let l = world.gets(&vec!["ports?limit=100".to_string(); reps]).await;
        rep.row("", format!("@{in_store}: GET /ports?limit=100"), l.line(), l.json());
        cpj.insert("list_limit100".into(), l.json());
        if let Some(mid) = ids.get(ids.len() / 2) {
            let l = world.gets(&vec![format!("ports?limit=100&marker={mid}"); reps]).await;
            rep.row("", format!("@{in_store}: GET /ports?limit=100&marker=<middle>"), l.line(), l.json());
            cpj.insert("list_limit100_marker_middle".into(), l.json());
        }
        let paths: Vec<String> =
            (0..reps).map(|i| format!("ports?limit=100&network_id={}", nets[i % nets.len()])).collect();
        let l = world.gets(&paths).await;
        rep.row("", format!("@{in_store}: GET /ports?limit=100&network_id=X"), l.line(), l.json());
        cpj.insert("list_limit100_network".into(), l.json());
        // The full listing with its peak RSS.
        let full_reps = if in_store >= 50_000 { 1 } else { 3 };
        let before = status_kib(pid, "VmRSS:");
        let hwm_reset = reset_hwm(pid);
        let sampler = RssSampler::start(pid);
        let l = world.gets(&vec!["ports".to_string(); full_reps]).await;
        let peak = sampler.finish();
        let hwm = status_kib(pid, "VmHWM:");
        let after = status_kib(pid, "VmRSS:");
        rep.row(
            "",
            format!("@{in_store}: GET /ports (all)"),
            format!(
                "{}\n{:>50} RSS before {} MiB, peak {} MiB (sampled), VmHWM {} MiB{}, after {} MiB",
                l.line(),
                "",
                before / 1024,
                peak / 1024,
                hwm / 1024,
                if hwm_reset { " (reset before)" } else { " (lifetime)" },
                after / 1024
            ),
            json!(null),
        );
        cpj.insert(
            "list_all".into(),
            json!({"time": l.json(), "bytes": l.bytes, "rss_before_mib": before / 1024, "rss_peak_sampled_mib": peak / 1024,
                   "hwm_mib": hwm / 1024, "hwm_reset": hwm_reset, "rss_after_mib": after / 1024}),
        );
        checkpoints.push(Value::Object(cpj));
    }
    rep.json.insert("checkpoints".into(), json!(checkpoints));

    // Fan-out: a new port in the default group (used by ports on every host)
    // must reach every agent as security_groups_member_updated.
    all_listen(&agents).await;
    let mut fan = vec![];
    for round in 0..cfg.fanout_rounds {
        let host = format!("sim{}", 1 + round % cfg.agents.saturating_sub(1).max(1));
        let seq = world.seq.fetch_add(1, Ordering::SeqCst);
        let mut body = world.port_body(seq);
        body["binding:host_id"] = json!(host);
        let t0 = Instant::now();
        let (s, v, post) = api.post("ports", json!({ "port": body })).await;
        if s != 201 {
            eprintln!("fan-out port create: HTTP {s} {v}");
            continue;
        }
        world.created.fetch_add(1, Ordering::SeqCst);
        let pid_ = v["port"]["id"].as_str().unwrap_or_default().to_string();
        let group = v["port"]["security_groups"][0].as_str().unwrap_or(&default_sg).to_string();
        let deadline = Instant::now() + Duration::from_secs(120);
        let (mut sg_t, mut pu_t);
        loop {
            sg_t = agents
                .iter()
                .filter_map(|a| a.arrival_after(t0, methods::SG_MEMBER_UPDATED, &group))
                .collect::<Vec<_>>();
            pu_t = agents.iter().filter_map(|a| a.arrival_after(t0, methods::PORT_UPDATE, &pid_)).collect::<Vec<_>>();
            if (sg_t.len() == agents.len() && pu_t.len() == agents.len()) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sg_t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        pu_t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        fan.push((post, sg_t, pu_t));
        for a in agents.iter() {
            a.inbox.lock().unwrap().clear();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut fan_json = vec![];
    for (i, (post, sg_t, pu_t)) in fan.iter().enumerate() {
        let f = |v: &Vec<f64>| {
            format!(
                "{}/{} agents, first {:.1} p50 {:.1} last {:.1} ms",
                v.len(),
                cfg.agents,
                ms(pct(v, 0.0)),
                ms(pct(v, 50.0)),
                ms(pct(v, 100.0))
            )
        };
        let j = json!({"post_ms": ms(*post), "sg_member_updated": {"agents": sg_t.len(), "first_ms": ms(pct(sg_t, 0.0)),
                   "p50_ms": ms(pct(sg_t, 50.0)), "last_ms": ms(pct(sg_t, 100.0))},
                   "port_update": {"agents": pu_t.len(), "p50_ms": ms(pct(pu_t, 50.0)), "last_ms": ms(pct(pu_t, 100.0))}});
        rep.row(
            "",
            format!("fan-out #{i}: SG member update (POST {:.1} ms)", ms(*post)),
            format!("{}\n{:>50} port_update: {}", f(sg_t), "", f(pu_t)),
            json!(null),
        );
        fan_json.push(j);
    }
    rep.json.insert("fanout".into(), json!(fan_json));
    all_deaf(&agents).await;
    let _ = drained(&probe, world.created.load(Ordering::SeqCst), Duration::from_secs(600)).await;

    // What every agent does after such a notification: re-fetch the group
    // info of its own devices. All 100 at once.
    if cfg.storm {
        let devices: Vec<Vec<String>> = futures::future::join_all(agents.iter().map(|a| async move {
            let (r, _) = a.call(methods::GET_PORTS_ON_HOST, json!({"host": a.host})).await;
            r.ok()
                .and_then(|v| v["ports"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p["id"].as_str().map(String::from))
                .collect()
        }))
        .await;
        let t = Instant::now();
        let res = futures::future::join_all(agents.iter().zip(&devices).map(|(a, d)| async move {
            a.call(methods::SECURITY_GROUP_INFO_FOR_DEVICES, json!({ "devices": d })).await
        }))
        .await;
        let mut l = Lat { wall: t.elapsed().as_secs_f64(), ..Default::default() };
        for (r, dt) in res {
            match r {
                Ok(_) => l.lat.push(dt),
                Err(e) => {
                    l.errors += 1;
                    eprintln!("security_group_info_for_devices: {e}");
                }
            }
        }
        rep.row(
            "sg_refetch_storm",
            format!("{} agents re-fetch SG info at once", cfg.agents),
            format!("all done in {:.2} s; per call {}", l.wall, l.line()),
            json!({"wall_s": l.wall, "calls": l.json()}),
        );
    }

    // One agent's full resync (sim0), the calls the L2 agent makes at start.
    let a = &agents[0];
    let t = Instant::now();
    let mut calls: Vec<(String, f64, String)> = vec![];
    let (r, dt) = a.call(methods::GET_PORTS_ON_HOST, json!({"host": a.host})).await;
    let on_host: Vec<String> = r
        .as_ref()
        .ok()
        .and_then(|v| v["ports"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["id"].as_str().map(String::from))
        .collect();
    calls.push(("get_ports_on_host".into(), dt, format!("{} ports", on_host.len())));
    let mut details = vec![];
    let mut dt_details = 0.0;
    let mut batches = 0;
    for chunk in on_host.chunks(DEVICE_BATCH) {
        let (r, dt) = a.call(methods::GET_DEVICES_DETAILS_LIST, json!({"devices": chunk, "host": a.host})).await;
        dt_details += dt;
        batches += 1;
        if let Ok(v) = r {
            details.extend(v["devices"].as_array().cloned().unwrap_or_default());
        }
    }
    calls.push((
        "get_devices_details_list".into(),
        dt_details,
        format!("{batches} calls of <= {DEVICE_BATCH}, {} devices", details.len()),
    ));
    let (r, dt) = a
        .call(methods::TUNNEL_SYNC, json!({"tunnel_ip": a.tunnel_ip(), "tunnel_types": ["vxlan"], "host": a.host}))
        .await;
    calls.push((
        "tunnel_sync".into(),
        dt,
        format!("{} endpoints", r.ok().and_then(|v| v["tunnels"].as_array().map(|t| t.len())).unwrap_or(0)),
    ));
    let nets_of: BTreeSet<String> = details.iter().filter_map(|d| d["network_id"].as_str().map(String::from)).collect();
    let (r, dt) = a
        .call(methods::GET_NETWORK_PEERS, json!({"networks": nets_of.iter().collect::<Vec<_>>(), "host": a.host}))
        .await;
    let peers: usize = r
        .ok()
        .and_then(|v| {
            v["networks"].as_object().map(|m| m.values().map(|n| n["peers"].as_array().map_or(0, |p| p.len())).sum())
        })
        .unwrap_or(0);
    calls.push(("get_network_peers".into(), dt, format!("{} networks, {peers} (network, host) peers", nets_of.len())));
    let (r, dt) = a.call(methods::SECURITY_GROUP_INFO_FOR_DEVICES, json!({"devices": on_host})).await;
    let members: usize = r
        .as_ref()
        .ok()
        .and_then(|v| {
            v["sg_member_ips"].as_object().map(|m| {
                m.values()
                    .map(|f| {
                        f.as_object()
                            .map_or(0, |f| f.values().map(|l| l.as_array().map_or(0, |l| l.len())).sum::<usize>())
                    })
                    .sum()
            })
        })
        .unwrap_or(0);
    calls.push((
        "security_group_info_for_devices".into(),
        dt,
        match &r {
            Ok(_) => format!("{members} member addresses"),
            Err(e) => format!("ERROR {e}"),
        },
    ));
    let before_up = probe.received.load(Ordering::Relaxed);
    let (r, dt) =
        a.call(methods::UPDATE_DEVICE_LIST, json!({"devices_up": on_host, "devices_down": [], "host": a.host})).await;
    calls.push((
        "update_device_list (all up)".into(),
        dt,
        match r {
            Ok(v) => format!(
                "{} up, {} failed",
                v["devices_up"].as_array().map_or(0, |x| x.len()),
                v["failed_devices_up"].as_array().map_or(0, |x| x.len())
            ),
            Err(e) => format!("ERROR {e}"),
        },
    ));
    let total = t.elapsed().as_secs_f64();
    let mut rj = serde_json::Map::new();
    for (name, dt, what) in &calls {
        rep.row("", format!("resync sim0: {name}"), format!("{:>9.2} ms  {what}", ms(*dt)), json!(ms(*dt)));
        rj.insert(name.split(' ').next().unwrap().to_string(), json!({"ms": ms(*dt), "what": what}));
    }
    rep.row(
        "",
        format!("resync sim0: total ({} ports)", on_host.len()),
        format!("{:>9.2} ms", ms(total)),
        json!(ms(total)),
    );
    rj.insert("total_ms".into(), json!(ms(total)));
    // The ports sim0 set up went ACTIVE: one port update each for the agents.
    let lag = drained(&probe, before_up + on_host.len(), Duration::from_secs(600)).await;
    rep.row(
        "",
        "resync sim0: status notifications caught up".into(),
        match lag {
            Some(s) => format!("{s:.2} s after update_device_list returned"),
            None => "TIMEOUT".into(),
        },
        json!(null),
    );
    rj.insert("status_notifications_lag_s".into(), json!(lag));
    rj.insert("ports".into(), json!(on_host.len()));
    rep.json.insert("resync".into(), Value::Object(rj));
    let rss = status_kib(pid, "VmRSS:");
    rep.json.insert("rss_end_mib".into(), json!(rss / 1024));
    rep.json.insert("heartbeat_failures".into(), json!(hb_fail.load(Ordering::Relaxed)));
    hb_stop.store(true, Ordering::Relaxed);
    let _ = heartbeat.await;
    probe.deaf().await;
    probe.bus.close().await;
    for a in agents.iter() {
        a.bus.close().await;
    }
    let log = server.log.clone();
    drop(server);
    drop(vhost);
    let warnings = log_summary(&log);
    let total: usize = warnings.iter().map(|w| w.0).sum();
    rep.row(
        "",
        "server log (stderr, RUST_LOG=warn)".into(),
        format!("{total} warnings/errors, {}", log.display()),
        json!(null),
    );
    for (n, m) in warnings.iter().take(8) {
        rep.row("", format!("  {n:>7} x"), m.chars().take(110).collect(), json!(null));
    }
    rep.json.insert(
        "server_log".into(),
        json!(warnings.iter().take(8).map(|(n, m)| json!({"n": n, "message": m})).collect::<Vec<_>>()),
    );

    println!("\n== neutrino on {store} ({} ports, {} networks, {} agents) ==", cfg.ports, cfg.networks, cfg.agents);
    println!("   {}", rep.json["shape"].as_str().unwrap_or_default());
    for (name, text) in &rep.rows {
        println!("{name:<50} {text}");
    }
    let out = Value::Object(rep.json);
    println!("{out}");
    out
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench harness probing
    }
    let cfg = Cfg::from_env();
    let which = std::env::var("NEUTRINO_SCALE_STORE").unwrap_or_else(|_| "both".into());
    if which == "sqlite" || which == "both" {
        run("sqlite", &cfg).await;
    }
    if which == "postgres" || which == "both" {
        run("postgres", &cfg).await;
    }
}
