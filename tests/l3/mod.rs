//! Helpers of the L3 dataplane tests: a lab made of a real server (`neutrino
//! up` on a per-test RabbitMQ vhost), a simulated network node `compute1`
//! (namespace + private OVS, userspace datapath) with the external flat
//! network on physnet `public`, the outside world (a namespace on that
//! physnet holding 203.0.113.1), the L3 agent (`neutrino agent l3` as its
//! own process, or in-process), VMs, and a STAND-IN for the L2 agent.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use neutrino_agent::bridges::ProviderBridge;
use neutrino_agent::l3::outside::{OutsideWorld, PUBLIC_CIDR, PUBLIC_GATEWAY};
use neutrino_agent::netns::Netns;
use neutrino_agent::openflow::SyncScope;
use neutrino_agent::pipeline::{self, LocalNet, Segment};
use neutrino_agent::simhost::{SimConfig, SimHost, SimNet, SimVm, VmSpec};
use neutrino_rpc::{CallContext, RpcClient, Target, Transport};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{self, Client, RabbitVhost, Server};

/// The network node's host name.
pub const HOST: &str = "compute1";
/// The external physical network.
pub const PHYSNET: &str = "public";
/// The provider bridge of `public`.
pub const PHYS_BRIDGE: &str = "br-public";
/// The cookie of the stand-in's flows.
const COOKIE: u64 = 0x4e54_0000_0000_0003;

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
            eprintln!("SKIP {}: {}", module_path!(), r);
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

/// STAND-IN for the L2 agent (until crates/neutrino-agent/src/l2 lands on
/// main): one local VLAN per network on br-int, the flat external network
/// through br-public, router and VM ports tagged by network. Only what the
/// L3 tests need; everything on the one host.
pub struct StandinL2 {
    lvids: BTreeMap<String, u16>,
    bridge: ProviderBridge,
}

impl StandinL2 {
    /// Local VLAN of a network (assigned on first use).
    pub fn lvid(&mut self, net: &str) -> u16 {
        let n = self.lvids.len() as u16 + 1;
        *self.lvids.entry(net.to_string()).or_insert(n)
    }

    /// Installs the flows of br-int and br-public for the known networks;
    /// `external` is the network id of `public`.
    pub async fn flows(&self, host: &SimHost, external: &str) {
        let nets: Vec<LocalNet> = self
            .lvids
            .iter()
            .map(|(id, l)| LocalNet {
                lvid: *l,
                segment: if id == external {
                    Segment::Flat { physnet: PHYSNET.into() }
                } else {
                    Segment::Tunnel { kind: neutrino_agent::ovsdb::TunnelType::Vxlan, segid: u32::from(*l) }
                },
            })
            .collect();
        let mut phys = BTreeMap::new();
        phys.insert(PHYSNET.to_string(), self.bridge.int_ofport);
        let int = pipeline::int_bridge_flows(COOKIE, &nets, &phys);
        host.ofctl("br-int").sync(&int, SyncScope::Cookie(COOKIE)).await.expect("br-int flows");
        let pf = pipeline::phys_bridge_flows(COOKIE, PHYSNET, self.bridge.phy_ofport, &nets);
        host.ofctl(PHYS_BRIDGE).sync(&pf, SyncScope::Cookie(COOKIE)).await.expect("br-public flows");
    }

    /// Tags the OVS ports of the given Neutron ports (port id → network id)
    /// once they exist; returns false if some did not appear in time.
    pub async fn wire(&mut self, host: &SimHost, ports: &BTreeMap<String, String>, t: Duration) -> bool {
        let deadline = Instant::now() + t;
        let mut done = std::collections::BTreeSet::new();
        while Instant::now() < deadline {
            for i in host.ovsdb().list_interfaces().await.expect("interfaces") {
                let Some(id) = i.iface_id() else { continue };
                if done.contains(id) {
                    continue;
                }
                if let Some(net) = ports.get(id) {
                    let tag = self.lvid(net);
                    if host.ovsdb().set_port_tag(&i.name, Some(tag)).await.is_ok() {
                        done.insert(id.to_string());
                    }
                }
            }
            if done.len() == ports.len() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// Everything one L3 test runs against.
/// Fields drop in order: the server before its vhost, the simulation last.
pub struct Lab {
    pub server: Server,
    pub vhost: RabbitVhost,
    pub outside: OutsideWorld,
    pub host: SimHost,
    pub sim: SimNet,
    pub admin: Client,
    pub demo: Client,
    pub public: Value,
    pub l2: StandinL2,
    pub dir: common::tempdir::Dir,
}

impl Lab {
    /// Builds the lab (no L3 agent yet).
    pub async fn start() -> Lab {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("NEUTRINO_TEST_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,lapin=off,neutrino_rpc=error")),
            )
            .with_test_writer()
            .try_init();
        let sim = SimNet::new(SimConfig::new()).await.expect("simulation");
        let host = sim.add_host(HOST).await.expect("network node");
        host.layout().ensure_int_bridge(host.ovsdb()).await.expect("br-int");
        let nic = sim.connect_physnet(&host, PHYSNET).await.expect("physnet");
        let bridge = host
            .layout()
            .ensure_provider_bridge(host.ovsdb(), PHYSNET, PHYS_BRIDGE, Some(&nic))
            .await
            .expect("br-public");
        let outside =
            OutsideWorld::attach(&sim, PHYSNET, &format!("{}outside", sim.prefix()), &format!("{PUBLIC_GATEWAY}/24"))
                .await
                .expect("outside world");
        let vhost = RabbitVhost::create();
        let server = Server::start_up(&["--transport-url", &vhost.url()]).await;
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
        let mut l2 = StandinL2 { lvids: BTreeMap::new(), bridge };
        l2.lvid(public["id"].as_str().unwrap());
        l2.flows(&host, public["id"].as_str().unwrap()).await;
        Lab { server, vhost, outside, host, sim, admin, demo, public, l2, dir: common::tempdir::Dir::new() }
    }

    /// The agent's l3_agent.ini for this lab.
    pub fn agent_ini(&self) -> String {
        format!(
            "[DEFAULT]\ninterface_driver = openvswitch\nexternal_network_bridge =\nsend_arp_for_ha = 1\n\
             [ovs]\novsdb_connection = {}\n[agent]\nreport_interval = 2\n\
             [neutrino]\novs_netns = {}\nnamespace_prefix = {}\n",
            self.host.endpoint(),
            self.host.netns().name(),
            self.sim.prefix()
        )
    }

    /// Starts `neutrino agent l3` for compute1.
    pub fn start_agent(&self) -> AgentProcess {
        AgentProcess::start(&self.dir.0, &self.vhost.url(), &self.agent_ini())
    }

    /// The L3 agent's config for running it in-process.
    pub fn agent_config(&self) -> neutrino_agent::l3::L3Config {
        let mut c = neutrino_agent::l3::L3Config::for_sim_host(&self.host, self.sim.prefix());
        c.send_arp_for_ha = 1;
        c.report_interval = Duration::from_secs(2);
        c
    }

    /// A bus client on the lab's vhost.
    pub async fn bus(&self) -> Arc<dyn Transport> {
        let bus = neutrino_rpc::connect(&self.vhost.url()).expect("bus");
        bus.wait_connected(Duration::from_secs(10)).await.expect("broker reachable");
        bus
    }

    /// Registers compute1's (stand-in) L2 agent so ports bind there.
    pub async fn register_l2_standin(&self, bus: &Arc<dyn Transport>) {
        RpcClient::new(bus.clone(), Target::topic("q-reports-plugin"))
            .call(
                &CallContext::admin(),
                "report_state",
                json!({"agent_state": {"agent_type": "Open vSwitch agent", "binary": "l3-test-standin", "host": HOST,
                    "topic": "N/A", "start_flag": true, "configurations": {"bridge_mappings": {PHYSNET: PHYS_BRIDGE},
                    "tunnel_types": ["vxlan"], "tunneling_ip": self.host.underlay_ip().to_string(), "datapath_type": "netdev"}}}),
            )
            .await
            .expect("report_state");
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
    pub async fn tenant_net(&mut self, name: &str, cidr: &str) -> (Value, Value) {
        let net = self.demo.network(name).await;
        let sub = self.demo.subnet(&net, cidr).await;
        self.l2.lvid(net["id"].as_str().unwrap());
        self.l2.flows(&self.host, self.public["id"].as_str().unwrap()).await;
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

    /// Stand-in L2: tags the router's ports once the agent plugged them.
    pub async fn wire_router(&mut self, router_id: &str) -> bool {
        let ports = self.admin.get(&format!("ports?device_id={router_id}")).await.expect(200)["ports"].clone();
        let map: BTreeMap<String, String> = ports
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap().to_string(), p["network_id"].as_str().unwrap().to_string()))
            .collect();
        let host = &self.host;
        self.l2.wire(host, &map, Duration::from_secs(20)).await
    }

    /// A VM on `net` (a Neutron port is created for it), default route via `.1`.
    pub async fn vm(&mut self, name: &str, net: &Value, sub: &Value) -> (SimVm, Value) {
        let port = self.demo.port(net).await;
        let ip = port["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
        let len = sub["cidr"].as_str().unwrap().split('/').nth(1).unwrap().to_string();
        let tag = self.l2.lvid(net["id"].as_str().unwrap());
        let spec = VmSpec::new(name, port["mac_address"].as_str().unwrap())
            .port_id(port["id"].as_str().unwrap())
            .cidr(&format!("{ip}/{len}"))
            .gateway(sub["gateway_ip"].as_str().unwrap())
            .mtu(u32::try_from(net["mtu"].as_i64().unwrap_or(1450)).unwrap())
            .tag(tag);
        (self.host.add_vm(&spec).await.expect("vm"), port)
    }
}

/// Polls `f` every 50 ms until true, at most `t`.
pub async fn common_eventually<F, Fut>(t: Duration, mut f: F) -> bool
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
