//! Harness of the DHCP agent's dataplane tests: a real server (`neutrino up`
//! on a RabbitMQ vhost of its own), a simulated hypervisor (namespace with
//! a private OVS, netdev datapath) with its Open vSwitch L2 agent, the DHCP
//! agent as its own process (`neutrino agent dhcp`) plugging into that
//! host's br-int, VMs running busybox udhcpc or ISC dhclient.
//!
//! Everything is cleaned up when the [`Env`] is dropped, also on panic: the
//! agent is killed, the qdhcp namespaces carry the simulation's prefix so
//! the simulation's sweep kills their dnsmasq and deletes them, the vhost
//! and the state directory are removed. The root namespace is never touched
//! (no link, route, firewall rule or resolv.conf of it): DHCP clients run in
//! VM namespaces whose `/etc/netns/<ns>/resolv.conf` shadows the real one.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use neutrino_agent::l2::{L2AgentHandle, L2Config};
use neutrino_agent::ovsdb::TunnelType;
use neutrino_agent::simhost::{SimConfig, SimHost, SimNet, SimVm, VmSpec};
use neutrino_rpc::{CallContext, RpcClient, Target, Transport};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::common::{tempdir, RabbitVhost, Server};

/// The simulated host's name (also the agents' host).
pub const HOST: &str = "hostA";

/// Why these tests cannot run here, if so.
pub fn skip_reason() -> Option<String> {
    if let Some(r) = neutrino_agent::simhost::unavailable_reason() {
        return Some(r);
    }
    for t in ["dnsmasq", "udhcpc", "rabbitmqctl"] {
        if !neutrino_agent::cmd::which(t) {
            return Some(format!("{t} not installed"));
        }
    }
    if !Command::new("rabbitmqctl")
        .args(["-q", "status"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Some("RabbitMQ is not running".into());
    }
    None
}

/// `neutrino agent dhcp` as a child process.
pub struct AgentProc {
    child: Option<Child>,
    /// Its log (JSON lines).
    pub log: PathBuf,
}

impl AgentProc {
    /// Starts the agent with `ini`.
    pub fn spawn(url: &str, ini: &Path, log: &Path) -> AgentProc {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("agent log file");
        let child = Command::new(env!("CARGO_BIN_EXE_neutrino"))
            .args(["agent", "dhcp", "--host", HOST, "--transport-url", url, "--config"])
            .arg(ini)
            .env(
                "RUST_LOG",
                std::env::var("NEUTRINO_TEST_DHCP_LOG").unwrap_or_else(|_| "warn,neutrino_agent=info".into()),
            )
            .env("NEUTRINO_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("neutrino agent dhcp starts");
        AgentProc { child: Some(child), log: log.to_path_buf() }
    }

    /// Kills it with SIGKILL (as a crash would): its dnsmasq processes stay.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it with SIGTERM.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            crate::common::unsafe_kill(&mut c);
        }
    }

    /// The `elapsed_ms` of the last "full resync done" line of the log.
    pub fn last_resync_ms(&self) -> Option<f64> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["fields"]["message"] == "full resync done")
            .and_then(|v| v["fields"]["elapsed_ms"].as_f64())
    }

    /// How many "full resync done" lines the log has.
    pub fn resyncs(&self) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter(|l| l.contains("full resync done")).count()
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        self.kill9();
        // Debugging aid: NEUTRINO_TEST_DHCP_KEEP_LOGS=<dir> keeps the agent logs.
        if let Ok(d) = std::env::var("NEUTRINO_TEST_DHCP_KEEP_LOGS") {
            let name = format!("dhcp-agent-{}.log", std::process::id());
            let _ = std::fs::copy(&self.log, Path::new(&d).join(name));
        }
    }
}

/// Who plays the host's L2 agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2Kind {
    /// neutrino's Open vSwitch L2 agent, as a task of the test.
    Real,
    /// Only an "Open vSwitch agent" registration (ports bind to the host),
    /// nothing wired: for measuring the DHCP agent alone.
    RegisterOnly,
}

/// The host's L2 agent.
pub enum L2 {
    /// The real agent.
    Real(L2AgentHandle),
    /// The registration-only stand-in.
    RegisterOnly(StandInL2),
}

/// A registration-only stand-in for the host's L2 agent: reports an "Open
/// vSwitch agent" for the host every 2 s (so ports bind there) and wires
/// nothing.
pub struct StandInL2 {
    task: JoinHandle<()>,
}

impl StandInL2 {
    /// Registers the agent (first report awaited) and keeps reporting.
    pub async fn start(bus: Arc<dyn Transport>) -> StandInL2 {
        let reports = RpcClient::new(bus, Target::topic("q-reports-plugin"));
        let report = move |start: bool| {
            let r = reports.clone();
            async move {
                r.call(
                    &CallContext::admin(),
                    "report_state",
                    json!({"agent_state": {"agent_type": "Open vSwitch agent", "binary": "test-register-only-l2", "host": HOST,
                        "topic": "N/A", "start_flag": start,
                        "configurations": {"tunnel_types": ["vxlan", "geneve", "gre"], "bridge_mappings": {},
                            "integration_bridge": "br-int", "datapath_type": "netdev"}}}),
                )
                .await
            }
        };
        report(true).await.expect("stand-in L2 agent registered");
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let _ = report(false).await;
            }
        });
        StandInL2 { task }
    }
}

impl Drop for StandInL2 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `/etc/netns/<ns>/resolv.conf` files shadowing the machine's resolv.conf
/// for commands run with `ip netns exec` in the VMs, removed on drop.
#[derive(Default)]
pub struct EtcNetns {
    dirs: Vec<PathBuf>,
    created_root: bool,
}

impl EtcNetns {
    /// Shadows resolv.conf in namespace `ns`.
    pub fn shadow(&mut self, ns: &str) {
        let root = Path::new("/etc/netns");
        if !root.exists() {
            self.created_root = true;
        }
        let d = root.join(ns);
        std::fs::create_dir_all(&d).expect("mkdir /etc/netns/<ns>");
        std::fs::write(d.join("resolv.conf"), format!("# {ns}: DHCP test, not the machine's resolv.conf\n"))
            .expect("write shadow resolv.conf");
        self.dirs.push(d);
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        if self.created_root {
            let _ = std::fs::remove_dir("/etc/netns");
        }
    }
}

/// What a DHCP client got.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The variables udhcpc passed to its script.
    pub vars: BTreeMap<String, String>,
    /// Client start to lease.
    pub took: Duration,
}

impl Lease {
    /// A variable ("" when absent).
    pub fn get(&self, k: &str) -> &str {
        self.vars.get(k).map(String::as_str).unwrap_or("")
    }
}

const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# Configures eth0 like a guest would, records what it got, never writes resolv.conf.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr replace "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    {
      echo "ip=$ip"; echo "mask=$mask"; echo "router=$router"; echo "dns=$dns"; echo "domain=$domain"
      echo "mtu=$mtu"; echo "staticroutes=$staticroutes"; echo "ntpsrv=$ntpsrv"; echo "lease=$lease"
      echo "serverid=$serverid"
    } > "$OUTFILE" ;;
esac
exit 0
"#;

fn l2_is_real(env: &Env) -> bool {
    matches!(env.l2, Some(L2::Real(_)))
}

/// One test's world.
pub struct Env {
    /// The DHCP agent (dropped first).
    pub agent: Option<AgentProc>,
    /// The host's L2 agent.
    pub l2: Option<L2>,
    /// The simulated host.
    pub host: SimHost,
    /// The simulation (its drop sweeps every namespace of the test).
    pub sim: SimNet,
    /// The server.
    pub srv: Server,
    /// The bus, as an agent sees it.
    pub bus: Arc<dyn Transport>,
    /// The vhost (deleted on drop).
    pub vhost: RabbitVhost,
    /// Resolv.conf shadows.
    pub etc: EtcNetns,
    /// Scratch directory: agent state, config, logs, client outputs.
    pub dir: tempdir::Dir,
}

impl Env {
    /// Server, host, its L2 agent (registered before this returns).
    pub async fn new(l2: L2Kind) -> Env {
        let dir = tempdir::Dir::new();
        let vhost = RabbitVhost::create();
        let srv = Server::start_up(&["--transport-url", &vhost.url()]).await;
        let bus = neutrino_rpc::connect(&vhost.url()).expect("bus");
        bus.wait_connected(Duration::from_secs(10)).await.expect("broker reachable");
        let sim = SimNet::new(SimConfig::new()).await.expect("simulation");
        let host = sim.add_host(HOST).await.expect("simulated host");
        let l2 = match l2 {
            L2Kind::Real => {
                let mut cfg = L2Config::new(HOST).with_ovsdb(host.endpoint());
                cfg.datapath_type = host.datapath_type();
                cfg.local_ip = Some(host.underlay_ip());
                cfg.tunnel_types = vec![TunnelType::Vxlan];
                cfg.report_interval = Duration::from_secs(2);
                L2::Real(L2AgentHandle::spawn(cfg, bus.clone()))
            }
            L2Kind::RegisterOnly => L2::RegisterOnly(StandInL2::start(bus.clone()).await),
        };
        std::fs::write(dir.0.join("udhcpc.sh"), UDHCPC_SCRIPT).expect("udhcpc script");
        let _ = Command::new("chmod").arg("+x").arg(dir.0.join("udhcpc.sh")).status();
        let env = Env { agent: None, l2: Some(l2), host, sim, srv, bus, vhost, etc: EtcNetns::default(), dir };
        if l2_is_real(&env) {
            env.wait_l2_registered().await;
        } else {
            env.host.layout().ensure_int_bridge(env.host.ovsdb()).await.expect("br-int");
        }
        env
    }

    /// Waits until the L2 agent is registered and has its bridges.
    async fn wait_l2_registered(&self) {
        let admin = self.srv.admin();
        let t0 = Instant::now();
        loop {
            let r = admin.get("agents?agent_type=Open%20vSwitch%20agent").await.expect(200);
            let up = r["agents"].as_array().is_some_and(|a| a.iter().any(|x| x["host"] == HOST && x["alive"] == true));
            if up && self.host.ovsdb().find_bridge("br-int").await.ok().flatten().is_some() {
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "the L2 agent did not register");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The qdhcp namespace prefix of the test's agent (under the
    /// simulation's prefix, so its sweep removes them).
    pub fn netns_prefix(&self) -> String {
        format!("{}qdhcp-", self.sim.prefix())
    }

    /// The qdhcp namespace of a network.
    pub fn qdhcp(&self, net_id: &str) -> String {
        format!("{}{net_id}", self.netns_prefix())
    }

    /// The agent's state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.0.join("dhcp")
    }

    /// The agent's config file.
    pub fn write_ini(&self) -> PathBuf {
        let p = self.dir.0.join("dhcp_agent.ini");
        let text = format!(
            "[DEFAULT]\ndhcp_confs = {}\ndhcp_namespace_prefix = {}\novs_bridge_namespace = {}\ninterface_driver = openvswitch\n\
             resync_interval = 1\n[ovs]\novsdb_connection = {}\n[AGENT]\nreport_interval = 2\ncheck_child_processes_interval = 2\n",
            self.state_dir().display(),
            self.netns_prefix(),
            self.host.netns().name(),
            self.host.endpoint(),
        );
        std::fs::write(&p, text).expect("write ini");
        p
    }

    /// Starts (or restarts) the DHCP agent process.
    pub fn start_agent(&mut self) {
        let ini = self.write_ini();
        let log = self.dir.0.join("dhcp-agent.log");
        self.agent = Some(AgentProc::spawn(&self.vhost.url(), &ini, &log));
    }

    /// The agent's log so far (for failure messages).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("dhcp-agent.log")).unwrap_or_default()
    }

    /// The pid of a network's dnsmasq (from its pid file, if alive).
    pub fn dnsmasq_pid(&self, net_id: &str) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.state_dir().join(net_id).join("pid")).ok()?.trim().parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
        (state != 'Z').then_some(pid)
    }

    /// A file of a network's dnsmasq.
    pub fn conf_file(&self, net_id: &str, kind: &str) -> String {
        std::fs::read_to_string(self.state_dir().join(net_id).join(kind)).unwrap_or_default()
    }

    /// Waits until `pred` holds, polling every 10 ms; returns how long it took.
    pub async fn wait_for<F: FnMut() -> bool>(&self, what: &str, timeout: Duration, mut pred: F) -> Duration {
        let t0 = Instant::now();
        while !pred() {
            assert!(
                t0.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}\nagent log:\n{}",
                self.agent_log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        t0.elapsed()
    }

    /// Waits until the API shows `port` with `status`.
    pub async fn wait_port_status(&self, port_id: &str, status: &str, timeout: Duration) -> Duration {
        let admin = self.srv.admin();
        let t0 = Instant::now();
        loop {
            let p = admin.get(&format!("ports/{port_id}")).await.expect(200);
            if p["port"]["status"] == status {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < timeout,
                "port {port_id} not {status} after {timeout:?}: {}\nagent log:\n{}",
                p["port"],
                self.agent_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A VM for `port` (the port's MAC and id), no address: it asks DHCP.
    pub async fn vm(&mut self, name: &str, port: &Value) -> SimVm {
        let spec = VmSpec::new(name, port["mac_address"].as_str().unwrap()).port_id(port["id"].as_str().unwrap());
        let vm = self.host.add_vm(&spec).await.expect("VM plugged");
        self.etc.shadow(vm.netns.name());
        vm
    }

    /// A VM plugged for `port` (its id) but using `mac` (a MAC the server
    /// does not know; needs port security off on `port`).
    pub async fn vm_with_mac(&mut self, name: &str, port: &Value, mac: &str) -> SimVm {
        let spec = VmSpec::new(name, mac).port_id(port["id"].as_str().unwrap());
        let vm = self.host.add_vm(&spec).await.expect("VM plugged");
        self.etc.shadow(vm.netns.name());
        vm
    }

    /// Runs udhcpc in the VM (`tries` DISCOVERs 1 s apart); the lease, if any.
    pub async fn udhcpc(&self, vm: &SimVm, tries: u32) -> Option<Lease> {
        let out = self.dir.0.join(format!("{}.lease", vm.name));
        let _ = std::fs::remove_file(&out);
        let script = self.dir.0.join("udhcpc.sh");
        let t = tries.to_string();
        let t0 = Instant::now();
        let r = vm
            .netns
            .cmd(&[
                "udhcpc",
                "-i",
                &vm.ifname,
                "-f",
                "-q",
                "-n",
                "-t",
                &t,
                "-T",
                "1",
                "-O",
                "mtu",
                "-O",
                "staticroutes",
                "-O",
                "ntpsrv",
                "-s",
                script.to_str().unwrap(),
            ])
            .env("OUTFILE", &out)
            .output()
            .await
            .expect("udhcpc runs");
        let took = t0.elapsed();
        let text = std::fs::read_to_string(&out).ok().filter(|_| r.success)?;
        let vars =
            text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Some(Lease { vars, took })
    }

    /// Creates a network with an IPv4 subnet (as admin, in `project`).
    pub async fn network(&self, project: &str, name: &str, subnet: Value) -> (Value, Value) {
        let admin = self.srv.admin();
        let net = admin.post("networks", json!({"network": {"name": name, "project_id": project}})).await.expect(201)
            ["network"]
            .clone();
        let mut s = subnet;
        s["network_id"] = net["id"].clone();
        s["project_id"] = json!(project);
        s["ip_version"] = json!(4);
        let sub = admin.post("subnets", json!({ "subnet": s })).await.expect(201)["subnet"].clone();
        (net, sub)
    }

    /// Adds a subnet to a network (`ip_version` from the CIDR).
    pub async fn subnet(&self, project: &str, net: &Value, subnet: Value) -> Value {
        let mut s = subnet;
        s["network_id"] = net["id"].clone();
        s["project_id"] = json!(project);
        let v = if s["cidr"].as_str().unwrap_or("").contains(':') { 6 } else { 4 };
        s["ip_version"] = json!(v);
        self.srv.admin().post("subnets", json!({ "subnet": s })).await.expect(201)["subnet"].clone()
    }

    /// Runs ISC dhclient for DHCPv6 in the VM (`-S`: options only, for
    /// stateless subnets); the variables its script saw, if it got an answer.
    pub async fn dhclient6(&self, vm: &SimVm, stateless: bool) -> Option<BTreeMap<String, String>> {
        // The link-local address must be usable first (no DAD wait).
        let _ = vm.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_dad=0"]).await;
        let t0 = Instant::now();
        loop {
            let a = vm.exec(&["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"]).await.ok()?.stdout;
            if a.contains("inet6") && !a.contains("tentative") {
                break;
            }
            if t0.elapsed() > Duration::from_secs(5) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let out = self.dir.0.join(format!("{}.lease6", vm.name));
        let _ = std::fs::remove_file(&out);
        // dhclient scrubs the environment: the output path is in the script.
        let script = self.dir.0.join(format!("{}-dhclient6.sh", vm.name));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$reason\" in BOUND6|RENEW6|REBIND6|INFORM6) env | grep -E '^(new_|reason)' > {};; esac\nexit 0\n",
                out.display()
            ),
        )
        .ok()?;
        let _ = Command::new("chmod").arg("+x").arg(&script).status();
        let lf = self.dir.0.join(format!("{}.leases6", vm.name));
        let pf = self.dir.0.join(format!("{}.dhclient6.pid", vm.name));
        let mut argv = vec!["timeout", "10", "dhclient", "-6", "-1"];
        if stateless {
            argv.push("-S");
        }
        let (s, l, p) = (script.display().to_string(), lf.display().to_string(), pf.display().to_string());
        argv.extend(["-sf", s.as_str(), "-lf", l.as_str(), "-pf", p.as_str(), "eth0"]);
        let _ = vm.netns.cmd(&argv).output().await;
        // dhclient stays in the background after a lease: stop it.
        if let Ok(pid) = std::fs::read_to_string(&pf) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let text = std::fs::read_to_string(&out).ok()?;
        Some(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    /// [`Env::dhclient6`] that must succeed.
    pub async fn dhcp_v6_or_panic(&self, vm: &SimVm, stateless: bool) -> BTreeMap<String, String> {
        match self.dhclient6(vm, stateless).await {
            Some(l) => l,
            None => panic!("no DHCPv6 answer\n{}\ndnsmasq log:\n{}", self.agent_log(), self.dnsmasq_logs()),
        }
    }

    /// Every dnsmasq log of the agent's networks.
    pub fn dnsmasq_logs(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(self.state_dir()).into_iter().flatten().flatten() {
            out.push_str(&std::fs::read_to_string(e.path().join("dnsmasq.log")).unwrap_or_default());
        }
        out
    }

    /// A VM port bound to the host.
    pub async fn port(&self, project: &str, net: &Value, extra: Value) -> Value {
        let mut p = json!({"network_id": net["id"], "binding:host_id": HOST, "device_owner": "compute:nova",
            "device_id": uuid::Uuid::new_v4().to_string(), "project_id": project});
        if let (Some(o), Some(e)) = (p.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        self.srv.admin().post("ports", json!({ "port": p })).await.expect(201)["port"].clone()
    }

    /// The DHCP port of a network.
    pub async fn dhcp_port(&self, net_id: &str) -> Option<Value> {
        let r = self.srv.admin().get(&format!("ports?network_id={net_id}&device_owner=network:dhcp")).await.expect(200);
        r["ports"].as_array().and_then(|a| a.first()).cloned()
    }

    /// The local VLAN of an OVS port of the host.
    pub async fn tag_of(&self, port_name: &str) -> u16 {
        let t0 = Instant::now();
        loop {
            if let Some(t) = self.host.ovsdb().find_port(port_name).await.expect("ovsdb").and_then(|p| p.tag) {
                return t;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "{port_name} got no local VLAN");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The DHCP agent as the API shows it.
    pub async fn dhcp_agent_row(&self) -> Option<Value> {
        let r = self.srv.admin().get("agents?agent_type=DHCP%20agent").await.expect(200);
        r["agents"].as_array().and_then(|a| a.first()).cloned()
    }
}
