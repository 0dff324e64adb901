//! `neutrino up --sim-hosts N`: N simulated hypervisors `compute1`…`computeN`
//! (their `binding:host_id`), each a network namespace with its own underlay
//! address on a shared underlay switch, its own Open vSwitch and its own L2
//! agent. Between the hosts: the underlay (198.51.100.0/24, for VXLAN, GRE
//! and Geneve) and the physical networks `physnet1` (flat and VLANs 100–199,
//! trunked by a Linux bridge) and `public` (the external network's physnet).
//!
//! With the in-process bus the agents are tasks of `up`, each driving its
//! host's OVS through that host's unix sockets; with `--transport-url
//! rabbit://…` they are `neutrino agent l2` processes (configured through an
//! `openvswitch_agent.ini` each), restarted if they exit.
//!
//! Agent processes log to `<state dir>/sim/<host>/l2-agent.log`, filtered by
//! `NEUTRINO_AGENT_LOG` (else `RUST_LOG`).
//!
//! What `neutrino vm` needs to reach the hosts is written to
//! `<state dir>/sim.json` ([`SimRecord`]). Everything lives under one
//! namespace prefix derived from the state directory, so stopping `up`
//! (or starting it again after a crash) removes all of it, VMs included.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use neutrino_agent::dhcp::{DhcpAgent, DhcpAgentConfig, DhcpAgentHandle};
use neutrino_agent::l2::{L2AgentHandle, L2Config};
use neutrino_agent::l3::{L3Agent, L3AgentHandle, L3Config};
use neutrino_agent::ovsdb::{DatapathType, Endpoint, TunnelType};
use neutrino_agent::simhost::{SimConfig, SimHost, SimNet};
use serde_json::{json, Value};
use tokio::sync::watch;

/// The physical networks every simulated host is attached to.
pub const PHYSNETS: &[&str] = &["physnet1", "public"];
/// The file describing the simulation in the state directory.
pub const RECORD_FILE: &str = "sim.json";

/// One simulated hypervisor, as `neutrino vm` (and tests) reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimHostRecord {
    /// Host name (`binding:host_id`).
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Run directory of its OVS (db.sock, `<bridge>.mgmt`, logs).
    pub ovs_rundir: PathBuf,
    /// Its OVSDB socket.
    pub ovsdb: PathBuf,
    /// Its underlay (tunnel endpoint) address.
    pub underlay_ip: Ipv4Addr,
    /// The integration bridge VMs are plugged into.
    pub integration_bridge: String,
    /// Physical network → provider bridge.
    pub bridge_mappings: BTreeMap<String, String>,
    /// PID of its L2 agent process (agents run as processes only with an AMQP bus).
    pub agent_pid: Option<u32>,
}

/// The simulation as recorded in `<state dir>/sim.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRecord {
    /// Namespace prefix of everything the simulation created.
    pub prefix: String,
    /// Prefix of VM namespaces (`<prefix>vm-<name>`).
    pub vm_prefix: String,
    /// Work directory (OVS databases, sockets, logs).
    pub workdir: PathBuf,
    /// The hosts.
    pub hosts: Vec<SimHostRecord>,
}

impl SimHostRecord {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "netns": self.netns,
            "ovs_rundir": self.ovs_rundir,
            "ovsdb": self.ovsdb,
            "underlay_ip": self.underlay_ip.to_string(),
            "integration_bridge": self.integration_bridge,
            "bridge_mappings": self.bridge_mappings,
            "agent_pid": self.agent_pid,
        })
    }

    fn from_json(v: &Value) -> Option<SimHostRecord> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        Some(SimHostRecord {
            name: s("name")?,
            netns: s("netns")?,
            ovs_rundir: s("ovs_rundir")?.into(),
            ovsdb: s("ovsdb")?.into(),
            underlay_ip: s("underlay_ip")?.parse().ok()?,
            integration_bridge: s("integration_bridge")?,
            bridge_mappings: v
                .get("bridge_mappings")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, b)| Some((k.clone(), b.as_str()?.to_string()))).collect())
                .unwrap_or_default(),
            agent_pid: v.get("agent_pid").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok()),
        })
    }
}

impl SimRecord {
    /// Reads the record of a state directory.
    pub fn load(state_dir: &Path) -> anyhow::Result<SimRecord> {
        let p = state_dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("reading {} (is `neutrino up --sim-hosts N` running?)", p.display()))?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        let bad = || anyhow::anyhow!("{}: not a simulation record", p.display());
        Ok(SimRecord {
            prefix: s("prefix").ok_or_else(bad)?,
            vm_prefix: s("vm_prefix").ok_or_else(bad)?,
            workdir: s("workdir").ok_or_else(bad)?.into(),
            hosts: v
                .get("hosts")
                .and_then(Value::as_array)
                .ok_or_else(bad)?
                .iter()
                .map(|h| SimHostRecord::from_json(h).ok_or_else(bad))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let p = state_dir.join(RECORD_FILE);
        let tmp = state_dir.join(format!("{RECORD_FILE}.tmp"));
        let v = json!({
            "prefix": self.prefix,
            "vm_prefix": self.vm_prefix,
            "workdir": self.workdir,
            "hosts": self.hosts.iter().map(SimHostRecord::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(&tmp, serde_json::to_vec_pretty(&v)?).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("writing {}", p.display()))?;
        Ok(())
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&SimHostRecord> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// The namespace prefix of a state directory's simulation: stable across
/// restarts (leftovers of a crashed run are swept by the next one), distinct
/// between state directories.
pub fn prefix_for(state_dir: &Path) -> String {
    let path = state_dir.canonicalize().unwrap_or_else(|_| state_dir.to_path_buf());
    let mut h: u32 = 0x811c_9dc5;
    for b in path.to_string_lossy().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("nu{:05x}-", h & 0xf_ffff)
}

/// How the agents run.
enum Agents {
    /// Tasks of this process: an L2 agent per host, and the network node's
    /// DHCP and L3 agents.
    Tasks { l2: Vec<L2AgentHandle>, dhcp: Option<DhcpAgentHandle>, l3: Option<L3AgentHandle> },
    /// `neutrino agent l2` processes under a supervisor each.
    Processes { stop: watch::Sender<bool>, supervisors: Vec<tokio::task::JoinHandle<()>> },
}

/// A running simulation.
pub struct Simulation {
    sim: Arc<SimNet>,
    hosts: Vec<SimHost>,
    agents: Agents,
    state_dir: PathBuf,
}

/// The L2 agent configuration of a simulated host.
fn agent_config(h: &SimHost, resync_check: Option<Duration>) -> L2Config {
    let mut cfg = L2Config::new(h.name()).with_ovsdb(h.endpoint());
    if let Some(d) = resync_check {
        cfg.resync_check_interval = d;
    }
    cfg.datapath_type = h.datapath_type();
    cfg.local_ip = Some(h.underlay_ip());
    cfg.tunnel_types = vec![TunnelType::Vxlan, TunnelType::Gre, TunnelType::Geneve];
    cfg.bridge_mappings = PHYSNETS.iter().map(|p| (p.to_string(), format!("br-{p}"))).collect();
    cfg
}

/// The same configuration as Neutron's `openvswitch_agent.ini`.
fn agent_ini(cfg: &L2Config, transport_url: &str) -> String {
    let mappings: Vec<String> = cfg.bridge_mappings.iter().map(|(p, b)| format!("{p}:{b}")).collect();
    let types: Vec<&str> = cfg.tunnel_types.iter().map(|t| t.as_str()).collect();
    let ovsdb = match &cfg.ovsdb {
        Endpoint::Unix(p) => format!("unix:{}", p.display()),
        Endpoint::Tcp(t) => format!("tcp:{t}"),
    };
    format!(
        "# written by neutrino up --sim-hosts\n[DEFAULT]\nhost = {host}\ntransport_url = {transport_url}\n\n\
         [ovs]\nintegration_bridge = {int}\ntunnel_bridge = {tun}\nlocal_ip = {ip}\nbridge_mappings = {maps}\n\
         datapath_type = {dp}\novsdb_connection = {ovsdb}\n\n[agent]\ntunnel_types = {types}\nl2_population = True\n\
         resync_check_interval = {check}\n\n\
         [securitygroup]\nfirewall_driver = openvswitch\n",
        host = cfg.host,
        int = cfg.integration_bridge,
        tun = cfg.tunnel_bridge,
        ip = cfg.local_ip.map(|i| i.to_string()).unwrap_or_default(),
        maps = mappings.join(","),
        dp = cfg.datapath_type.as_str(),
        types = types.join(","),
        check = cfg.resync_check_interval.as_secs_f64(),
    )
}

impl Simulation {
    /// Creates `n` hosts and starts their L2 agents: as tasks on `bus` when
    /// it is the in-process bus, else as processes connecting to `transport_url`.
    pub async fn start(
        n: u32,
        network_node: &str,
        state_dir: &Path,
        transport_url: &str,
        bus: Arc<dyn neutrino_rpc::Transport>,
        resync_check: Option<Duration>,
    ) -> anyhow::Result<Simulation> {
        anyhow::ensure!((1..=200).contains(&n), "--sim-hosts must be between 1 and 200");
        let node_index = (1..=n)
            .position(|i| format!("compute{i}") == network_node)
            .with_context(|| format!("--network-node {network_node}: not one of compute1…compute{n}"))?;
        if let Some(why) = neutrino_agent::simhost::unavailable_reason() {
            anyhow::bail!("--sim-hosts: simulated hosts cannot run here: {why}");
        }
        let started = std::time::Instant::now();
        claim(state_dir)?;
        let prefix = prefix_for(state_dir);
        let mut sc = SimConfig::with_prefix(&prefix);
        sc.workdir = state_dir.join("sim");
        sc.datapath_type = DatapathType::Netdev;
        // `up` stops on SIGTERM/SIGINT itself and removes everything then.
        sc.signal_handler = false;
        let sim = Arc::new(SimNet::new(sc).await.context("creating the simulation fabric")?);
        remove_resolv_shadows(&prefix);
        let mut setups = tokio::task::JoinSet::new();
        for i in 1..=n {
            let sim = sim.clone();
            setups.spawn(async move { (i, setup_host(&sim, &format!("compute{i}")).await) });
        }
        let mut hosts: Vec<(u32, SimHost)> = Vec::new();
        while let Some(r) = setups.join_next().await {
            let (i, h) = r.context("host setup task")?;
            hosts.push((i, h?));
        }
        hosts.sort_by_key(|(i, _)| *i);
        let hosts: Vec<SimHost> = hosts.into_iter().map(|(_, h)| h).collect();
        let record = SimRecord {
            prefix: prefix.clone(),
            vm_prefix: format!("{prefix}vm-"),
            workdir: sim.config().workdir.clone(),
            hosts: hosts
                .iter()
                .map(|h| SimHostRecord {
                    name: h.name().to_string(),
                    netns: h.netns().name().to_string(),
                    ovs_rundir: h.ovs().rundir().to_path_buf(),
                    ovsdb: h.ovs().rundir().join("db.sock"),
                    underlay_ip: h.underlay_ip(),
                    integration_bridge: neutrino_agent::bridges::INT_BRIDGE.into(),
                    bridge_mappings: agent_config(h, resync_check).bridge_mappings,
                    agent_pid: None,
                })
                .collect(),
        };
        let shared = Arc::new(Mutex::new(record));
        // The network node (compute1 unless configured) also runs the DHCP and L3 agents.
        let node = &hosts[node_index];
        let dhcp_cfg = DhcpAgentConfig::for_sim_host(node, state_dir.join("sim").join(node.name()).join("dhcp"));
        let l3_cfg = L3Config::for_sim_host(node, &prefix);
        let agents = if bus.kind() == "in-process" {
            let l2 = hosts.iter().map(|h| L2AgentHandle::spawn(agent_config(h, resync_check), bus.clone())).collect();
            let dhcp = DhcpAgent::start(dhcp_cfg, bus.clone()).await.context("starting the DHCP agent")?;
            let l3 = L3Agent::start(l3_cfg, bus.clone()).await.context("starting the L3 agent")?;
            Agents::Tasks { l2, dhcp: Some(dhcp), l3: Some(l3) }
        } else {
            let (stop, stop_rx) = watch::channel(false);
            let mut supervisors = Vec::new();
            for h in &hosts {
                let dir = sim.config().workdir.join(h.name());
                let ini = dir.join("openvswitch_agent.ini");
                std::fs::write(&ini, agent_ini(&agent_config(h, resync_check), transport_url))
                    .with_context(|| format!("writing {}", ini.display()))?;
                supervisors.push(tokio::spawn(supervise(
                    h.name().to_string(),
                    ini,
                    dir.join("l2-agent.log"),
                    shared.clone(),
                    state_dir.to_path_buf(),
                    stop_rx.clone(),
                )));
            }
            let dir = sim.config().workdir.join(node.name());
            let dhcp_ini = dir.join("dhcp_agent.ini");
            std::fs::write(&dhcp_ini, dhcp_cfg.to_ini()).with_context(|| format!("writing {}", dhcp_ini.display()))?;
            let l3_ini = dir.join("l3_agent.ini");
            std::fs::write(&l3_ini, l3_cfg.to_ini(Some(transport_url)))
                .with_context(|| format!("writing {}", l3_ini.display()))?;
            for (kind, ini, extra) in [
                ("dhcp", dhcp_ini, vec!["--transport-url".to_string(), transport_url.to_string()]),
                ("l3", l3_ini, vec![]),
            ] {
                supervisors.push(tokio::spawn(supervise_agent(
                    kind,
                    node.name().to_string(),
                    ini,
                    extra,
                    dir.join(format!("{kind}-agent.log")),
                    |_| {},
                    stop_rx.clone(),
                )));
            }
            Agents::Processes { stop, supervisors }
        };
        // Supervisors record their agents' PIDs once the file exists.
        shared.lock().map_err(|_| anyhow::anyhow!("simulation record lock poisoned"))?.save(state_dir)?;
        tracing::info!(
            hosts = n,
            prefix = %prefix,
            elapsed_ms = started.elapsed().as_millis() as u64,
            agents = if matches!(agents, Agents::Tasks { .. }) { "tasks" } else { "processes" },
            "simulated hosts ready"
        );
        Ok(Simulation { sim, hosts, agents, state_dir: state_dir.to_path_buf() })
    }

    /// The simulation fabric (for other components attaching to it: the
    /// outside world, DHCP and L3 agents on the simulated hosts).
    #[allow(dead_code)]
    pub fn net(&self) -> &Arc<SimNet> {
        &self.sim
    }

    /// The hosts.
    #[allow(dead_code)]
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }

    /// Stops the agents and removes every namespace, OVS instance, link and
    /// file the simulation (and `neutrino vm`) created.
    pub async fn stop(self) {
        match self.agents {
            Agents::Tasks { l2, dhcp, l3 } => {
                if let Some(a) = l3 {
                    a.stop().await;
                }
                if let Some(a) = dhcp {
                    a.stop_and_teardown().await;
                }
                for a in l2 {
                    let host = a.host().to_string();
                    if let Err(e) = a.stop().await {
                        tracing::debug!(%host, error = %e, "agent stop");
                    }
                }
            }
            Agents::Processes { stop, supervisors } => {
                let _ = stop.send(true);
                for s in supervisors {
                    let _ = s.await;
                }
            }
        }
        let _ = std::fs::remove_file(self.state_dir.join(RECORD_FILE));
        let _ = std::fs::remove_file(self.state_dir.join(OWNER_FILE));
        drop(self.hosts);
        let sim = self.sim;
        let prefix = sim.prefix().to_string();
        let _ = tokio::task::spawn_blocking(move || sim.cleanup()).await;
        remove_resolv_shadows(&prefix);
        tracing::info!("simulated hosts removed");
    }
}

/// The file naming the process that owns a state directory's simulation.
const OWNER_FILE: &str = "sim.pid";

/// Makes this process the owner of the state directory's simulation;
/// refuses when another live `neutrino` process owns it (starting would sweep
/// its hosts away).
fn claim(state_dir: &Path) -> anyhow::Result<()> {
    let p = state_dir.join(OWNER_FILE);
    let me = std::process::id();
    if let Some(pid) = std::fs::read_to_string(&p).ok().and_then(|t| t.trim().parse::<u32>().ok()) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if pid != me && String::from_utf8_lossy(&cmdline).contains("neutrino") {
            anyhow::bail!("another neutrino (pid {pid}) runs the simulation of {}", state_dir.display());
        }
    }
    std::fs::write(&p, me.to_string()).with_context(|| format!("writing {}", p.display()))
}

/// Removes the `/etc/netns/<ns>` directories (resolv.conf shadows of VM
/// namespaces) of a simulation prefix.
fn remove_resolv_shadows(prefix: &str) {
    for e in std::fs::read_dir("/etc/netns").into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// One host: namespace, OVS, physical networks with their provider bridges.
async fn setup_host(sim: &SimNet, name: &str) -> anyhow::Result<SimHost> {
    let h = sim.add_host(name).await.with_context(|| format!("creating simulated host {name}"))?;
    let layout = h.layout();
    for physnet in PHYSNETS {
        let nic =
            sim.connect_physnet(&h, physnet).await.with_context(|| format!("{name}: physical network {physnet}"))?;
        layout
            .ensure_provider_bridge(h.ovsdb(), physnet, &format!("br-{physnet}"), Some(&nic))
            .await
            .with_context(|| format!("{name}: provider bridge of {physnet}"))?;
    }
    Ok(h)
}

/// Supervises the L2 agent of one host (see [`supervise_agent`]), recording
/// each new PID in the simulation record (`neutrino vm` and tests read it).
async fn supervise(
    host: String,
    ini: PathBuf,
    log: PathBuf,
    record: Arc<Mutex<SimRecord>>,
    state_dir: PathBuf,
    stop: watch::Receiver<bool>,
) {
    let name = host.clone();
    let on_start = move |pid: Option<u32>| {
        if let Ok(mut r) = record.lock() {
            if let Some(h) = r.hosts.iter_mut().find(|h| h.name == name) {
                h.agent_pid = pid;
            }
            if state_dir.join(RECORD_FILE).exists() {
                let _ = r.save(&state_dir);
            }
        }
    };
    supervise_agent("l2", host, ini, vec![], log, on_start, stop).await
}

/// Runs `neutrino agent <kind> --host <host> --config <ini> [extra…]`,
/// restarting it when it exits, until `stop` (SIGTERM, SIGKILL after 5 s);
/// `on_start` learns each new PID.
async fn supervise_agent(
    kind: &'static str,
    host: String,
    ini: PathBuf,
    extra: Vec<String>,
    log: PathBuf,
    on_start: impl Fn(Option<u32>),
    mut stop: watch::Receiver<bool>,
) {
    let Ok(exe) = std::env::current_exe() else {
        tracing::error!("cannot find the neutrino binary for the agents");
        return;
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(["agent", kind, "--host", &host, "--config"])
            .arg(&ini)
            .args(&extra)
            .stdin(std::process::Stdio::null());
        if let Ok(filter) = std::env::var("NEUTRINO_AGENT_LOG") {
            // The agents' own log filter (RUST_LOG applies otherwise).
            cmd.env("RUST_LOG", filter);
        }
        if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(&log) {
            if let Ok(f2) = f.try_clone() {
                cmd.stdout(f).stderr(f2);
            }
        }
        cmd.kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(%host, kind, error = %e, "cannot start the agent");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::info!(%host, kind, pid = child.id(), "agent process started");
        on_start(child.id());
        tokio::select! {
            status = child.wait() => {
                tracing::warn!(%host, kind, ?status, "agent process exited, restarting");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stopped(&mut stop) => return,
                }
            }
            _ = stopped(&mut stop) => {
                if let Some(pid) = child.id() {
                    let _ = tokio::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
                }
                if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
                return;
            }
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The L2 agents `neutrino up` runs.
pub enum UpAgents {
    /// None (no Open vSwitch on this machine, and no `--sim-hosts`).
    None,
    /// One agent for this machine's Open vSwitch.
    Local(L2AgentHandle),
    /// Simulated hosts, each with its agent.
    Sim(Box<Simulation>),
}

/// Starts what `neutrino up` runs besides the server: `--sim-hosts N`
/// simulated hosts, else one L2 agent on this machine when its Open vSwitch
/// is running (`[ovs] ovsdb_connection`, else the default socket), configured
/// from the `[ovs]`/`[agent]`/`[securitygroup]` sections of `ini`.
pub async fn start_for_up(
    sim_hosts: Option<u32>,
    network_node: &str,
    state_dir: &Path,
    transport_url: &str,
    bus: Arc<dyn neutrino_rpc::Transport>,
    ini: &neutrino_lib::ini::Ini,
) -> anyhow::Result<UpAgents> {
    if let Some(n) = sim_hosts.filter(|n| *n > 0) {
        // `[agent] resync_check_interval` of up's configuration applies to the simulated hosts' agents.
        let resync_check = match ini.get("agent", "resync_check_interval") {
            Some(v) => Some(Duration::from_secs_f64(
                v.parse::<f64>().map_err(|_| anyhow::anyhow!("[agent] resync_check_interval = {v}"))?.max(0.0),
            )),
            None => None,
        };
        return Ok(UpAgents::Sim(Box::new(
            Simulation::start(n, network_node, state_dir, transport_url, bus, resync_check).await?,
        )));
    }
    let host = crate::service::hostname();
    let auto_datapath = ini.get("ovs", "datapath_type").is_none();
    let (mut cfg, unused) = L2Config::from_ini(ini, &host).context("L2 agent configuration")?;
    let sock = match &cfg.ovsdb {
        Endpoint::Unix(p) => p.clone(),
        Endpoint::Tcp(_) => PathBuf::new(),
    };
    let reachable = !sock.as_os_str().is_empty()
        && sock.exists()
        && tokio::time::timeout(Duration::from_secs(2), neutrino_agent::ovsdb::Client::connect(cfg.ovsdb.clone()))
            .await
            .is_ok_and(|r| r.is_ok());
    if !reachable {
        tracing::info!(ovsdb = %cfg.ovsdb, "no Open vSwitch running here: no local L2 agent (use --sim-hosts N for simulated hypervisors)");
        return Ok(UpAgents::None);
    }
    for (section, key) in unused {
        tracing::warn!(%section, %key, "L2 agent option not used");
    }
    if auto_datapath {
        cfg.datapath_type =
            if Path::new("/sys/module/openvswitch").exists() { DatapathType::System } else { DatapathType::Netdev };
    }
    tracing::info!(%host, ovsdb = %cfg.ovsdb, datapath = %cfg.datapath_type, "starting the local L2 agent");
    Ok(UpAgents::Local(L2AgentHandle::spawn(cfg, bus)))
}

impl UpAgents {
    /// Stops the agents (and removes the simulation).
    pub async fn stop(self) {
        match self {
            UpAgents::None => {}
            UpAgents::Local(a) => {
                if let Err(e) = a.stop().await {
                    tracing::debug!(error = %e, "local L2 agent stop");
                }
            }
            UpAgents::Sim(s) => s.stop().await,
        }
    }
}
