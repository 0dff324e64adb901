//! Harness of the dataplane tests: a real `neutrino up --noauth --sim-hosts N`
//! (optionally on a private RabbitMQ vhost, the L2 agents then being
//! processes), VMs booted with `neutrino vm`, traffic only inside the
//! simulation's namespaces.
//!
//! [`Cloud`] removes everything when dropped, also when a test panics: the
//! server is stopped (it removes its simulation), then whatever is left
//! under the simulation's namespace prefix is swept, orphaned agent
//! processes are killed and the vhost is deleted.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, Client, Server};

/// Why the dataplane tests cannot run here, if so.
pub fn skip_reason() -> Option<String> {
    neutrino_agent::simhost::unavailable_reason()
}

/// Returns from the test with a message when the dataplane cannot run here.
#[macro_export]
macro_rules! require_dataplane {
    () => {
        if let Some(why) = dataplane::skip_reason() {
            common::cannot_run(&format!("{}: {}", module_path!(), why));
            return;
        }
    };
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_neutrino")
}

/// A private RabbitMQ vhost, deleted on drop.
pub struct Vhost {
    /// Its name.
    pub name: String,
}

fn rabbitmqctl(args: &[&str]) -> bool {
    std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Vhost {
    /// Creates a vhost with full permissions for `guest`; `None` (with a
    /// message) when there is no broker or no `rabbitmqctl`.
    pub fn create() -> Option<Vhost> {
        if std::net::TcpStream::connect_timeout(&"127.0.0.1:5672".parse().unwrap(), Duration::from_secs(1)).is_err() {
            crate::common::cannot_run("no RabbitMQ on 127.0.0.1:5672");
            return None;
        }
        let name = format!("nt-l2-{}", uuid::Uuid::new_v4().simple());
        if !rabbitmqctl(&["add_vhost", &name]) {
            crate::common::cannot_run("rabbitmqctl add_vhost failed");
            return None;
        }
        let v = Vhost { name };
        if !rabbitmqctl(&["set_permissions", "-p", &v.name, "guest", ".*", ".*", ".*"]) {
            crate::common::cannot_run("rabbitmqctl set_permissions failed");
            return None;
        }
        Some(v)
    }

    /// The transport URL of the vhost.
    pub fn url(&self) -> String {
        format!("rabbit://guest:guest@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

/// A simulated host as recorded in `sim.json`.
#[derive(Debug, Clone)]
pub struct Host {
    /// Name.
    pub name: String,
    /// Namespace.
    pub netns: String,
    /// OVS run directory.
    pub rundir: PathBuf,
    /// Its L2 agent's PID (agents as processes).
    pub agent_pid: Option<u32>,
}

/// A VM booted by `neutrino vm`.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Name.
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port_id: String,
    /// MAC.
    pub mac: String,
    /// First IPv4 address (no prefix length).
    pub ip: String,
    /// Namespace.
    pub netns: String,
    /// What `vm boot` printed.
    pub boot: Value,
}

/// A running cloud: server, simulated hosts, agents. Fields drop in order:
/// the server stops first (removing its simulation), then leftovers are
/// swept, then the vhost goes.
pub struct Cloud {
    /// The server (`neutrino up`).
    pub server: Server,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// The simulation's namespace prefix.
    pub prefix: String,
    /// An admin client.
    pub admin: Client,
    /// Sweeps what a failed stop left.
    _cleanup: Cleanup,
    /// The vhost, when on RabbitMQ.
    pub vhost: Option<Vhost>,
}

impl Cloud {
    /// `neutrino up --sim-hosts n` on the in-process bus.
    pub async fn start(n: u32) -> Cloud {
        Self::start_with(n, None).await
    }

    /// `neutrino up --sim-hosts n` on a private RabbitMQ vhost (agents as
    /// processes); `None` without a broker.
    pub async fn start_on_rabbit(n: u32) -> Option<Cloud> {
        let v = Vhost::create()?;
        Some(Self::start_with(n, Some(v)).await)
    }

    /// As [`Cloud::start_on_rabbit`], with more arguments for `up`.
    pub async fn start_on_rabbit_with(n: u32, more: &[&str]) -> Option<Cloud> {
        let v = Vhost::create()?;
        Some(Self::start_full(n, Some(v), more).await)
    }

    async fn start_with(n: u32, vhost: Option<Vhost>) -> Cloud {
        Self::start_full(n, vhost, &[]).await
    }

    async fn start_full(n: u32, vhost: Option<Vhost>, more: &[&str]) -> Cloud {
        let started = Instant::now();
        let hosts = n.to_string();
        let url = vhost.as_ref().map(Vhost::url);
        let outside = outside_netns();
        let mut extra = vec!["--sim-hosts", hosts.as_str(), "--outside-netns", outside.as_str()];
        if let Some(u) = &url {
            extra.extend(["--transport-url", u.as_str()]);
        }
        extra.extend_from_slice(more);
        let server = Server::start_up(&extra).await;
        let state_dir = server.state_dir.as_ref().expect("up has a state dir").0.clone();
        let record: Value =
            serde_json::from_str(&std::fs::read_to_string(state_dir.join("sim.json")).expect("sim.json")).unwrap();
        let prefix = record["prefix"].as_str().unwrap().to_string();
        let admin = Client::new(&server.url, "admin", "admin");
        let _cleanup = Cleanup { prefix: prefix.clone(), state_dir: state_dir.clone(), outside };
        let cloud = Cloud { server, state_dir, prefix, admin, _cleanup, vhost };
        cloud.wait_agents(n as usize).await;
        eprintln!("cloud with {n} simulated hosts ready in {:?}", started.elapsed());
        cloud
    }

    /// `neutrino up --sim-hosts n` with the identity service on (no
    /// `--noauth`): clients need a token; the admin client of the cloud is
    /// then unusable, use [`Cloud::token`].
    pub async fn start_with_identity(n: u32) -> Cloud {
        let dir = common::tempdir::Dir::new();
        let outside = outside_netns();
        let (child, port, _) =
            common::spawn_up_with_identity(&dir.0, &["--sim-hosts", &n.to_string(), "--outside-netns", &outside]);
        let url = format!("http://127.0.0.1:{port}");
        let state_dir = dir.0.clone();
        let server =
            Server { kind: common::StoreKind::Sqlite, url: url.clone(), child, state_dir: Some(dir), pg: None };
        let ready = common_eventually(Duration::from_secs(60), || async {
            state_dir.join("sim.json").exists()
                && reqwest::get(format!("{url}/")).await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "up with identity did not come up");
        let record: Value =
            serde_json::from_str(&std::fs::read_to_string(state_dir.join("sim.json")).expect("sim.json")).unwrap();
        let prefix = record["prefix"].as_str().unwrap().to_string();
        let admin = Client::new(&server.url, "admin", "admin");
        let _cleanup = Cleanup { prefix: prefix.clone(), state_dir: state_dir.clone(), outside };
        Cloud { server, state_dir, prefix, admin, _cleanup, vhost: None }
    }

    /// A token of the state directory's admin (identity mode).
    pub async fn token(&self) -> String {
        let rc = std::fs::read_to_string(self.state_dir.join("openrc")).expect("openrc");
        let get = |k: &str| {
            rc.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(|v| v.trim_matches('\'').to_string())
                .unwrap_or_default()
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": get("OS_USERNAME"), "domain": {"name": "Default"}, "password": get("OS_PASSWORD")}}},
            "scope": {"project": {"name": get("OS_PROJECT_NAME"), "domain": {"name": "Default"}}}}});
        let r = reqwest::Client::new()
            .post(format!("{}/auth/tokens", get("OS_AUTH_URL")))
            .json(&body)
            .send()
            .await
            .expect("keystone answers");
        assert_eq!(r.status().as_u16(), 201, "token issued");
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }

    /// Waits until `n` Open vSwitch agents are alive.
    pub async fn wait_agents(&self, n: usize) {
        let ok = common_eventually(Duration::from_secs(60), || async {
            let a = self.admin.req("GET", "agents?agent_type=Open vSwitch agent", None, &[]).await;
            a.body["agents"].as_array().is_some_and(|l| l.iter().filter(|x| x["alive"] == true).count() >= n)
        })
        .await;
        assert!(ok, "{n} L2 agents did not report in time");
    }

    /// The hosts as recorded in `sim.json`.
    pub fn hosts(&self) -> Vec<Host> {
        let text = std::fs::read_to_string(self.state_dir.join("sim.json")).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        v["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| Host {
                name: h["name"].as_str().unwrap_or_default().into(),
                netns: h["netns"].as_str().unwrap_or_default().into(),
                rundir: h["ovs_rundir"].as_str().unwrap_or_default().into(),
                agent_pid: h["agent_pid"].as_u64().map(|p| p as u32),
            })
            .collect()
    }

    /// One host.
    pub fn host(&self, name: &str) -> Host {
        self.hosts().into_iter().find(|h| h.name == name).unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Runs `neutrino <args>` against this cloud's state directory.
    pub async fn neutrino(&self, args: &[&str]) -> std::process::Output {
        tokio::process::Command::new(bin())
            .args(args)
            .env("NEUTRINO_STATE_DIR", &self.state_dir)
            .env("RUST_LOG", std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .output()
            .await
            .expect("neutrino runs")
    }

    /// `neutrino vm boot NAME <args>`; panics on failure.
    pub async fn boot(&self, name: &str, args: &[&str]) -> Vm {
        let mut a = vec!["vm", "boot", name];
        a.extend_from_slice(args);
        let out = self.neutrino(&a).await;
        assert!(
            out.status.success(),
            "vm boot {name} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.boot_output(name, &out.stdout)
    }

    /// The VM described by `vm boot`'s output.
    pub fn boot_output(&self, name: &str, stdout: &[u8]) -> Vm {
        let v: Value = serde_json::from_slice(stdout).expect("vm boot prints JSON");
        let ip = v["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|a| !a.contains(':'))
            .and_then(|a| a.split('/').next())
            .unwrap_or_default()
            .to_string();
        Vm {
            name: name.into(),
            host: v["host"].as_str().unwrap_or_default().into(),
            port_id: v["port_id"].as_str().unwrap_or_default().into(),
            mac: v["mac_address"].as_str().unwrap_or_default().into(),
            ip,
            netns: v["netns"].as_str().unwrap_or_default().into(),
            boot: v,
        }
    }

    /// `neutrino vm delete NAME`.
    pub async fn delete_vm(&self, name: &str) {
        let out = self.neutrino(&["vm", "delete", name]).await;
        assert!(out.status.success(), "vm delete {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs a command in a VM (through `neutrino vm exec`).
    pub async fn exec(&self, vm: &Vm, cmd: &[&str]) -> std::process::Output {
        let mut a = vec!["vm", "exec", vm.name.as_str(), "--"];
        a.extend_from_slice(cmd);
        self.neutrino(&a).await
    }

    /// Pings `ip` from `vm` (`count` echoes 0.2 s apart, 1 s timeout); true if any came back.
    pub async fn ping(&self, vm: &Vm, ip: &str, count: u32) -> bool {
        let c = count.to_string();
        ns_ok(&vm.netns, &["ping", "-n", "-q", "-c", &c, "-i", "0.2", "-W", "1", ip]).await
    }

    /// Pings until one answer comes back or `t` passes; how long it took.
    pub async fn ping_within(&self, vm: &Vm, ip: &str, t: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < t {
            if ns_ok(&vm.netns, &["ping", "-n", "-q", "-c", "1", "-W", "1", ip]).await {
                return Some(started.elapsed());
            }
        }
        None
    }

    /// Creates a network (with `attrs`, as admin in `project`) and a subnet `cidr`.
    pub async fn network(&self, project: &str, name: &str, attrs: Value, cidr: &str) -> (String, String) {
        let c = Client::new(&self.server.url, project, "admin,member");
        let mut n = json!({"name": name});
        if let (Some(o), Some(a)) = (n.as_object_mut(), attrs.as_object()) {
            o.extend(a.clone());
        }
        let net = c.req("POST", "networks", Some(json!({"network": n})), &[]).await.expect(201);
        let id = net["network"]["id"].as_str().unwrap().to_string();
        let sub = c
            .req(
                "POST",
                "subnets",
                Some(
                    json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4, "name": format!("{name}-sub")}}),
                ),
                &[],
            )
            .await
            .expect(201);
        (id, sub["subnet"]["id"].as_str().unwrap().to_string())
    }

    /// A client acting in `project` with admin and member roles.
    pub fn client(&self, project: &str) -> Client {
        Client::new(&self.server.url, project, "admin,member")
    }

    /// A port's document.
    pub async fn port(&self, id: &str) -> Value {
        self.admin.req("GET", &format!("ports/{id}"), None, &[]).await.expect(200)["port"].clone()
    }

    /// Waits until a port has `status`; how long it took.
    pub async fn wait_status(&self, id: &str, status: &str, t: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let p = self.port(id).await;
            if p["status"] == status {
                return started.elapsed();
            }
            assert!(started.elapsed() < t, "port {id} is {} (not {status}) after {t:?}: {p}", p["status"]);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `ovs-vsctl` on a host.
    pub async fn vsctl(&self, host: &str, args: &[&str]) -> String {
        let h = self.host(host);
        let out = tokio::process::Command::new("ovs-vsctl")
            .arg(format!("--db=unix:{}", h.rundir.join("db.sock").display()))
            .args(args)
            .output()
            .await
            .expect("ovs-vsctl");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `ovs-ofctl dump-flows` of a host's bridge.
    pub async fn flows(&self, host: &str, bridge: &str) -> String {
        let h = self.host(host);
        let out = tokio::process::Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "dump-flows"])
            .arg(format!("unix:{}", h.rundir.join(format!("{bridge}.mgmt")).display()))
            .output()
            .await
            .expect("ovs-ofctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a continuous ping (every 50 ms) from `vm` to `ip` for `secs`.
    pub fn continuous_ping(&self, vm: &Vm, ip: &str, secs: u32) -> ContinuousPing {
        let child = tokio::process::Command::new("ip")
            // A count, not a deadline (-w): with a deadline the last echo
            // sent just before it is counted lost if its reply is late.
            .args(["netns", "exec", &vm.netns, "ping", "-n", "-q", "-i", "0.05", "-W", "1", "-c"])
            .arg((secs * 20).to_string())
            .arg(ip)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("ping");
        ContinuousPing { child }
    }
}

/// A ping running in the background.
pub struct ContinuousPing {
    child: tokio::process::Child,
}

impl ContinuousPing {
    /// Waits for it to end: (transmitted, received).
    pub async fn finish(self) -> (u64, u64) {
        let out = self.child.wait_with_output().await.expect("ping ends");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("transmitted")).unwrap_or_default().to_string();
        let num = |word: &str| -> u64 {
            let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
            words
                .iter()
                .position(|w| *w == word)
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| words[i].parse().ok())
                .unwrap_or(0)
        };
        (num("packets"), num("received"))
    }
}

/// Runs a command in a namespace; whether it succeeded.
pub async fn ns_ok(netns: &str, argv: &[&str]) -> bool {
    tokio::process::Command::new("ip")
        .args(["netns", "exec", netns])
        .args(argv)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Runs a command in a namespace; its output.
pub async fn ns_output(netns: &str, argv: &[&str]) -> std::process::Output {
    tokio::process::Command::new("ip").args(["netns", "exec", netns]).args(argv).output().await.expect("ip netns exec")
}

/// Polls `f` every 20 ms until true or `t` passes.
pub async fn common_eventually<F, Fut>(t: Duration, f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::common::eventually(t, Duration::from_millis(20), f).await
}

fn is_neutrino(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("neutrino"))
}

/// Removes what a cloud left once its server is gone: agent processes
/// (orphaned if `up` had to be killed), namespaces, resolv.conf shadows.
struct Cleanup {
    prefix: String,
    state_dir: PathBuf,
    /// The outside world's namespace (its own name per cloud: tests run in parallel).
    outside: String,
}

/// A namespace name for a cloud's outside world, unique to the test.
pub fn outside_netns() -> String {
    format!("nt-out-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Kills what runs in namespace `name` and deletes it (if it exists).
pub fn remove_netns(name: &str) {
    if !Path::new("/run/netns").join(name).exists() {
        return;
    }
    let pids = std::process::Command::new("ip").args(["netns", "pids", name]).output();
    for pid in pids.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default().split_whitespace() {
        let _ = std::process::Command::new("kill").args(["-KILL", pid]).status();
    }
    let _ = std::process::Command::new("ip").args(["netns", "delete", name]).status();
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // `up` removes sim.json when it stops cleanly: a record left means it was killed.
        let text = std::fs::read_to_string(self.state_dir.join("sim.json")).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        for pid in v["hosts"].as_array().into_iter().flatten().filter_map(|h| h["agent_pid"].as_u64()) {
            if is_neutrino(pid as u32) {
                let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        neutrino_agent::simhost::sweep(&self.prefix);
        remove_netns(&self.outside);
        for e in std::fs::read_dir("/etc/netns").into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let left = neutrino_agent::netns::Netns::list_prefixed(&self.prefix);
        if !left.is_empty() {
            eprintln!("WARNING: namespaces left behind: {left:?}");
        }
    }
}

/// Asserts that nothing of a cloud is left (namespaces, VM resolv.conf shadows).
pub fn assert_clean(prefix: &str, state_dir: &Path) {
    let left = neutrino_agent::netns::Netns::list_prefixed(prefix);
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let shadows: Vec<String> = std::fs::read_dir("/etc/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(shadows.is_empty(), "resolv.conf shadows left: {shadows:?}");
    assert!(
        !state_dir.join("sim").exists()
            || std::fs::read_dir(state_dir.join("sim")).map(|d| d.count()).unwrap_or(0) == 0
    );
}
