//! Helpers of the L3 dataplane tests: a lab made of a real server (`neutrino
//! up` on a per-test RabbitMQ vhost), simulated hypervisors (namespace +
//! private OVS, userspace datapath) each with its real L2 agent (a task of
//! the test on the same bus), the network node `compute1` with the external
//! flat network on physnet `public`, the outside world (a namespace on that
//! physnet holding 203.0.113.1), the L3 agent (`neutrino agent l3` as its
//! own process, or in-process) and VMs.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use neutrino_agent::l2::{L2AgentHandle, L2Config};
use neutrino_agent::l3::outside::{OutsideWorld, PUBLIC_CIDR, PUBLIC_GATEWAY};
use neutrino_agent::netns::Netns;
use neutrino_agent::ovsdb::{DatapathType, TunnelType};
use neutrino_agent::simhost::{SimConfig, SimHost, SimNet, SimVm, VmSpec};
use neutrino_rpc::Transport;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{self, Client, RabbitVhost, Server};

/// The network node's host name.
pub const HOST: &str = "compute1";
/// The external physical network.
pub const PHYSNET: &str = "public";
/// The provider bridge of `public`.
pub const PHYS_BRIDGE: &str = "br-public";

/// Why these tests cannot run here, if so (they then skip).
pub fn unavailable() -> Option<String> {
    if let Some(r) = neutrino_agent::simhost::unavailable_reason() {
        return Some(r);
    }
    for t in ["nft", "socat", "rabbitmqctl"] {
        if !neutrino_agent::cmd::which(t) {
            return Some(format!("{t} missing (apt-get install nftables socat rabbitmq-server)"));
        }
    }
    None
}

/// Skips the test when the lab cannot run here.
#[macro_export]
macro_rules! require_lab {
    () => {
        if let Some(r) = l3::unavailable() {
            crate::common::cannot_run(&format!("{}: {}", module_path!(), r));
            return;
        }
    };
}

/// `neutrino agent l3` as its own process, with its log in a file.
pub struct AgentProcess {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl AgentProcess {
    /// Starts the agent for `host` with `ini` (the l3_agent.ini text).
    pub fn start(dir: &std::path::Path, url: &str, ini: &str) -> AgentProcess {
        let conf = dir.join("l3_agent.ini");
        std::fs::write(&conf, ini).expect("write l3_agent.ini");
        let log = dir.join(format!("l3-agent-{}.log", uuid::Uuid::new_v4().simple()));
        let f = std::fs::File::create(&log).expect("agent log");
        let child = Command::new(env!("CARGO_BIN_EXE_neutrino"))
            .args(["agent", "l3", "--host", HOST, "--transport-url", url, "--config"])
            .arg(&conf)
            .env(
                "RUST_LOG",
                std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn,neutrino_agent::l3=info".into()),
            )
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("neutrino agent l3 starts");
        AgentProcess { child: Some(child), log }
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with SIGTERM (as an operator would).
    pub fn stop(mut self) {
        if let Some(mut c) = self.child.take() {
            common::unsafe_kill(&mut c);
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            common::unsafe_kill(&mut c);
        }
        if std::thread::panicking() {
            eprintln!("---- L3 agent log ----\n{}", self.log());
        }
    }
}

/// Everything one L3 test runs against.
/// Fields drop in order: the L2 agents, the server before its vhost, the
/// simulation last.
pub struct Lab {
    pub l2: Vec<L2AgentHandle>,
    pub bus: Arc<dyn Transport>,
    pub server: Server,
    pub vhost: RabbitVhost,
    pub outside: OutsideWorld,
    /// `compute1` (the network node) first.
    pub hosts: Vec<SimHost>,
    pub sim: SimNet,
    pub admin: Client,
    pub demo: Client,
    pub public: Value,
    pub dir: common::tempdir::Dir,
}

/// The L2 agent configuration of a simulated host (as `neutrino up --sim-hosts`).
fn l2_config(h: &SimHost) -> L2Config {
    let mut cfg = L2Config::new(h.name()).with_ovsdb(h.endpoint());
    cfg.datapath_type = DatapathType::Netdev;
    cfg.local_ip = Some(h.underlay_ip());
    cfg.tunnel_types = vec![TunnelType::Vxlan];
    cfg.bridge_mappings.insert(PHYSNET.into(), PHYS_BRIDGE.into());
    cfg.report_interval = Duration::from_secs(2);
    cfg
}

impl Lab {
    /// Builds the lab with hosts `compute1` (network node) .. `compute<n>`,
    /// their L2 agents, the server and the outside world (no L3 agent yet).
    pub async fn start(n: usize) -> Lab {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("NEUTRINO_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,lapin=off,neutrino_rpc=error")),
            )
            .with_test_writer()
            .try_init();
        let sim = SimNet::new(SimConfig::new()).await.expect("simulation");
        let mut hosts = Vec::new();
        for i in 1..=n.max(1) {
            let h = sim.add_host(&format!("compute{i}")).await.expect("host");
            let nic = sim.connect_physnet(&h, PHYSNET).await.expect("physnet");
            h.layout().ensure_provider_bridge(h.ovsdb(), PHYSNET, PHYS_BRIDGE, Some(&nic)).await.expect("br-public");
            hosts.push(h);
        }
        let outside =
            OutsideWorld::attach(&sim, PHYSNET, &format!("{}outside", sim.prefix()), &format!("{PUBLIC_GATEWAY}/24"))
                .await
                .expect("outside world");
        let vhost = RabbitVhost::create();
        let server = Server::start_up(&["--transport-url", &vhost.url()]).await;
        let bus = neutrino_rpc::connect(&vhost.url()).expect("bus");
        bus.wait_connected(Duration::from_secs(10)).await.expect("broker reachable");
        let l2: Vec<L2AgentHandle> = hosts.iter().map(|h| L2AgentHandle::spawn(l2_config(h), bus.clone())).collect();
        let admin = server.admin();
        let demo = server.member("demo");
        // The external network, as `neutrino up --sim-hosts` provides it.
        let public = admin
            .post(
                "networks",
                json!({"network": {"name": "public", "router:external": true,
                    "provider:network_type": "flat", "provider:physical_network": PHYSNET}}),
            )
            .await
            .expect(201)["network"]
            .clone();
        admin
            .post(
                "subnets",
                json!({"subnet": {"network_id": public["id"], "cidr": PUBLIC_CIDR, "ip_version": 4,
                    "gateway_ip": PUBLIC_GATEWAY, "enable_dhcp": false}}),
            )
            .await
            .expect(201);
        let lab =
            Lab { l2, bus, server, vhost, outside, hosts, sim, admin, demo, public, dir: common::tempdir::Dir::new() };
        assert!(
            common_eventually(Duration::from_secs(20), || async {
                let a = lab.admin.get("agents?agent_type=Open%20vSwitch%20agent").await.expect(200);
                a["agents"].as_array().is_some_and(|l| l.len() == n.max(1) && l.iter().all(|x| x["alive"] == true))
            })
            .await,
            "the L2 agents register"
        );
        lab.open_security_group().await;
        lab
    }

    /// The network node.
    pub fn host(&self) -> &SimHost {
        &self.hosts[0]
    }

    /// Lets ICMP and TCP in to demo's VMs (the default group only admits its members).
    async fn open_security_group(&self) {
        let sgs = self.demo.get("security-groups?name=default").await.expect(200)["security_groups"].clone();
        let sg = match sgs.as_array().and_then(|a| a.first()) {
            Some(sg) => sg["id"].clone(),
            None => self.demo.post("security-groups", json!({"security_group": {"name": "default"}})).await.expect(201)
                ["security_group"]["id"]
                .clone(),
        };
        for proto in ["icmp", "tcp"] {
            self.demo
                .post(
                    "security-group-rules",
                    json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
                        "ethertype": "IPv4", "protocol": proto, "remote_ip_prefix": "0.0.0.0/0"}}),
                )
                .await
                .expect(201);
        }
    }

    /// Stops the in-process agents and closes the test's bus connection.
    pub async fn shutdown(mut self) {
        for a in self.l2.drain(..) {
            let _ = a.stop().await;
        }
        self.bus.close().await;
    }

    /// The agent's l3_agent.ini for this lab.
    pub fn agent_ini(&self) -> String {
        format!(
            "[DEFAULT]\ninterface_driver = openvswitch\nexternal_network_bridge =\nsend_arp_for_ha = 1\n\
             state_path = {}\n[ovs]\novsdb_connection = {}\n[agent]\nreport_interval = 2\n\
             [neutrino]\novs_netns = {}\nnamespace_prefix = {}\n",
            self.agent_config().state_path.display(),
            self.host().endpoint(),
            self.host().netns().name(),
            self.sim.prefix()
        )
    }

    /// Starts `neutrino agent l3` for compute1.
    pub fn start_agent(&self) -> AgentProcess {
        AgentProcess::start(&self.dir.0, &self.vhost.url(), &self.agent_ini())
    }

    /// The L3 agent's config for running it in-process.
    pub fn agent_config(&self) -> neutrino_agent::l3::L3Config {
        let mut c = neutrino_agent::l3::L3Config::for_sim_host(self.host(), self.sim.prefix());
        c.send_arp_for_ha = 1;
        c.report_interval = Duration::from_secs(2);
        c
    }

    /// Closes every connection of the lab's vhost (the server's and the
    /// agent's): both reconnect.
    pub fn break_bus(&self) {
        let ok = Command::new("rabbitmqctl")
            .args(["-q", "close_all_connections", "--vhost", &self.vhost.name, "--limit", "100", "l3 test"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "rabbitmqctl close_all_connections");
    }

    /// The router's namespace.
    pub fn router_ns(&self, router_id: &str) -> Netns {
        Netns::new(format!("{}qrouter-{router_id}", self.sim.prefix()))
    }

    /// Waits until the L3 agent is registered and alive.
    pub async fn wait_agent_alive(&self, t: Duration) -> bool {
        common_eventually(t, || async {
            let a = self.admin.get("agents?agent_type=L3%20agent").await.expect(200);
            a["agents"].as_array().is_some_and(|l| l.iter().any(|x| x["host"] == HOST && x["alive"] == true))
        })
        .await
    }

    /// Creates a tenant network with one subnet; returns (network, subnet).
    pub async fn tenant_net(&self, name: &str, cidr: &str) -> (Value, Value) {
        let net = self.demo.network(name).await;
        let sub = self.demo.subnet(&net, cidr).await;
        (net, sub)
    }

    /// Creates a router with a gateway on `public` and interfaces on `subnets`.
    pub async fn router(&self, name: &str, subnets: &[&Value]) -> Value {
        let r = self
            .demo
            .post(
                "routers",
                json!({"router": {"name": name, "external_gateway_info": {"network_id": self.public["id"]}}}),
            )
            .await
            .expect(201)["router"]
            .clone();
        for s in subnets {
            self.demo
                .put(
                    &format!("routers/{}/add_router_interface", r["id"].as_str().unwrap()),
                    json!({"subnet_id": s["id"]}),
                )
                .await
                .expect(200);
        }
        self.demo.get(&format!("routers/{}", r["id"].as_str().unwrap())).await.expect(200)["router"].clone()
    }

    /// The router's gateway address.
    pub fn gateway_ip(router: &Value) -> String {
        router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"].as_str().unwrap().to_string()
    }

    /// Waits until every port of the router is ACTIVE: plugged by the L3
    /// agent, wired by the host's L2 agent.
    pub async fn router_active(&self, router_id: &str) -> bool {
        common_eventually(Duration::from_secs(20), || async {
            let ports = self.admin.get(&format!("ports?device_id={router_id}")).await.expect(200)["ports"].clone();
            ports.as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|p| p["status"] == "ACTIVE"))
        })
        .await
    }

    /// A VM of project demo on `net`, on host `compute<host>`: its port is
    /// bound there, plugged like Nova does, wired by that host's L2 agent
    /// (waits for ACTIVE); default route via the subnet's gateway.
    pub async fn vm(&self, name: &str, host: usize, net: &Value, sub: &Value) -> (SimVm, Value) {
        let h = &self.hosts[host - 1];
        let port = self
            .admin
            .post(
                "ports",
                json!({"port": {"network_id": net["id"], "project_id": "demo", "device_owner": "compute:nova",
                    "binding:host_id": h.name(), "name": name}}),
            )
            .await
            .expect(201)["port"]
            .clone();
        assert_eq!(port["binding:vif_type"], "ovs", "bound to {}", h.name());
        let ip = port["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
        let len = sub["cidr"].as_str().unwrap().split('/').nth(1).unwrap().to_string();
        let spec = VmSpec::new(name, port["mac_address"].as_str().unwrap())
            .port_id(port["id"].as_str().unwrap())
            .cidr(&format!("{ip}/{len}"))
            .gateway(sub["gateway_ip"].as_str().unwrap())
            .mtu(u32::try_from(net["mtu"].as_i64().unwrap_or(1450)).unwrap());
        let vm = h.add_vm(&spec).await.expect("vm");
        let pid = port["id"].as_str().unwrap().to_string();
        assert!(
            common_eventually(Duration::from_secs(20), || async {
                self.admin.get(&format!("ports/{pid}")).await.expect(200)["port"]["status"] == "ACTIVE"
            })
            .await,
            "VM port {name} wired by the L2 agent"
        );
        (vm, port)
    }
}

/// Polls `f` every 50 ms until true, at most `t`.
pub async fn common_eventually<F, Fut>(t: Duration, f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::common::eventually(t, Duration::from_millis(50), f).await
}

/// A TCP "who am I" server in `ns` on `port`: answers each connection with
/// the peer address it sees, then closes.
pub fn whoami_server(ns: &Netns, port: u16) -> tokio::process::Child {
    let listen = format!("TCP-LISTEN:{port},fork,reuseaddr");
    ns.spawn(&["socat", &listen, "SYSTEM:echo $SOCAT_PEERADDR"]).expect("socat server")
}

/// The peer address `ns` is seen as by the who-am-I server at `ip:port` (empty on failure).
pub async fn seen_as(ns: &Netns, ip: &str, port: u16) -> String {
    seen_as_within(ns, ip, port, "2").await
}

/// [`seen_as`] with a connect timeout in seconds (e.g. `0.3`).
pub async fn seen_as_within(ns: &Netns, ip: &str, port: u16, connect_timeout: &str) -> String {
    let target = format!("TCP:{ip}:{port},connect-timeout={connect_timeout}");
    match ns.output(&["socat", "-T2", "-", &target]).await {
        Ok(o) if o.success => o.stdout.trim().to_string(),
        _ => String::new(),
    }
}

/// Waits until `ns`'s who-am-I request to `ip:port` succeeds; returns what was seen.
pub async fn seen_as_eventually(ns: &Netns, ip: &str, port: u16, t: Duration) -> String {
    let deadline = Instant::now() + t;
    loop {
        let s = seen_as(ns, ip, port).await;
        if !s.is_empty() || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a TCP connection from `ns` to `ip:port` is accepted.
pub async fn tcp_connects(ns: &Netns, ip: &str, port: u16) -> bool {
    let target = format!("TCP:{ip}:{port},connect-timeout=1");
    ns.output(&["socat", "-T1", "/dev/null", &target]).await.map(|o| o.success).unwrap_or(false)
}

/// Pings once with a short timeout.
pub async fn ping1(ns: &Netns, ip: &str) -> bool {
    ns.output(&["ping", "-n", "-q", "-c", "1", "-W", "1", ip]).await.map(|o| o.success).unwrap_or(false)
}

/// A long-lived TCP connection (socat in `ns` to an echo server), to show
/// that established flows survive.
pub struct Conversation {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Conversation {
    /// Connects from `ns` to `ip:port`.
    pub fn open(ns: &Netns, ip: &str, port: u16) -> Conversation {
        let mut child = tokio::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), "socat", "-", &format!("TCP:{ip}:{port},connect-timeout=3")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("socat client");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Conversation { child, stdin, lines }
    }

    /// Sends a line and waits (at most `t`) for its echo.
    pub async fn echo(&mut self, line: &str, t: Duration) -> bool {
        if self.stdin.write_all(format!("{line}\n").as_bytes()).await.is_err() {
            return false;
        }
        let _ = self.stdin.flush().await;
        matches!(tokio::time::timeout(t, self.lines.next_line()).await, Ok(Ok(Some(l))) if l == line)
    }

    /// Ends it.
    pub async fn close(mut self) {
        let _ = self.child.kill().await;
    }
}

/// An echo server in `ns` on `port`.
pub fn echo_server(ns: &Netns, port: u16) -> tokio::process::Child {
    let listen = format!("TCP-LISTEN:{port},fork,reuseaddr");
    ns.spawn(&["socat", &listen, "EXEC:cat"]).expect("socat echo server")
}
