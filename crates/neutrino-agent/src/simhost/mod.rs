//! Simulated hypervisors and VMs, built only from network namespaces.
//!
//! ```text
//!  <prefix>fabric  (namespace; the root namespace is never touched)
//!    ulsw  Linux bridge = the underlay switch, 198.51.100.0/24
//!    sw-<physnet>  Linux bridge = a physical network switch (carries 802.1Q transparently)
//!      |  veth                         |  veth
//!  <prefix><host>  (one per hypervisor)
//!    ul0 ── br-ul (OVS, netdev: underlay IP on its internal port, as OVS userspace tunnelling needs;
//!                  datapath system: the IP is on ul0 itself)
//!    ph-<physnet>  (NIC for a provider bridge)
//!    private ovsdb-server + ovs-vswitchd, run/db/log dir <workdir>/<host>
//!  <prefix>vm-<name>  (one per VM: eth0 with the VM's MAC, plugged into a host's br-int)
//! ```
//!
//! ```no_run
//! # async fn demo() -> neutrino_agent::Result<()> {
//! use neutrino_agent::simhost::*;
//! let sim = SimNet::new(SimConfig::new()).await?;          // random prefix "nt<hex>-"
//! let a = sim.add_host("hostA").await?;                    // namespace + OVS, ~100-200 ms
//! a.layout().ensure_int_bridge(a.ovsdb()).await?;
//! let vm = a.add_vm(&VmSpec::new("vm1", "fa:16:3e:00:00:01").cidr("10.0.0.1/24").tag(1)).await?;
//! vm.exec(&["ip", "addr"]).await?;
//! drop(sim); // everything is swept when the last handle goes (also on panic / SIGINT / SIGTERM)
//! # Ok(()) }
//! ```

pub mod cleanup;
pub mod ovs;
pub mod vm;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::bridges::Layout;
use crate::cmd::{which, Output};
use crate::error::{Error, Result};
use crate::link::IpBatch;
use crate::netns::Netns;
use crate::openflow::Ofctl;
use crate::ovsdb::{BridgeSpec, Client, Commit, DatapathType, Endpoint, FailMode, InterfaceSpec, PortSpec};

pub use cleanup::{sweep, RunState};
pub use ovs::OvsInstance;
pub use vm::{PlugKind, SimVm, VmSpec};

/// Name of the underlay Linux bridge in the fabric namespace.
pub const UNDERLAY_SWITCH: &str = "ulsw";
/// Name of the host's underlay NIC.
pub const UNDERLAY_NIC: &str = "ul0";
/// Name of the OVS bridge holding the underlay address (netdev datapath).
pub const UNDERLAY_BRIDGE: &str = "br-ul";

/// Fills `buf` from the kernel's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most len bytes into the valid buffer.
        let r = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if r <= 0 {
            // Fall back to time-based bytes (only uniqueness matters here).
            let t =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            for (i, b) in buf[filled..].iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8);
            }
            return;
        }
        filled += r as usize;
    }
}

/// A random version-4 UUID string.
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    random_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Why simulated hosts cannot run here (not root, tools missing), if so.
/// Tests use it to skip with a clear message.
pub fn unavailable_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need CAP_SYS_ADMIN/CAP_NET_ADMIN)".into());
    }
    let missing: Vec<&str> = ["ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-ofctl", "ovs-appctl"]
        .into_iter()
        .filter(|p| !which(p))
        .collect();
    if !missing.is_empty() {
        return Some(format!("missing tools: {} (install iproute2 and openvswitch-switch)", missing.join(", ")));
    }
    if !std::path::Path::new(ovs::DEFAULT_SCHEMA).exists() {
        return Some(format!("OVS schema {} missing", ovs::DEFAULT_SCHEMA));
    }
    None
}

/// Settings of a simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Prefix of every namespace (and the work directory), e.g. `nt1a2b3-`.
    pub prefix: String,
    /// Datapath type of the hosts' bridges.
    pub datapath_type: DatapathType,
    /// Where OVS databases, sockets and logs go (default `/tmp/<prefix>sim`).
    pub workdir: PathBuf,
    /// Underlay network (hosts get .1, .2, ...).
    pub underlay_net: Ipv4Addr,
    /// Underlay prefix length.
    pub underlay_prefix_len: u8,
    /// OVS schema file.
    pub ovs_schema: PathBuf,
    /// Keep everything at the end (debugging; also set by `NEUTRINO_SIM_KEEP=1`).
    pub keep: bool,
    /// Install the SIGINT/SIGTERM/SIGHUP handler that sweeps every run and
    /// exits (default true; a daemon with its own shutdown path sets false and
    /// drops or [`SimNet::cleanup`]s the run itself).
    pub signal_handler: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl SimConfig {
    /// A configuration with a random prefix `nt<5 hex digits>-`.
    pub fn new() -> SimConfig {
        let mut b = [0u8; 3];
        random_bytes(&mut b);
        let id = (u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])) & 0xf_ffff;
        Self::with_prefix(&format!("nt{id:05x}-"))
    }

    /// A configuration with the given prefix.
    pub fn with_prefix(prefix: &str) -> SimConfig {
        SimConfig {
            prefix: prefix.to_string(),
            datapath_type: DatapathType::Netdev,
            workdir: std::env::temp_dir().join(format!("{prefix}sim")),
            underlay_net: Ipv4Addr::new(198, 51, 100, 0),
            underlay_prefix_len: 24,
            ovs_schema: PathBuf::from(ovs::DEFAULT_SCHEMA),
            keep: std::env::var("NEUTRINO_SIM_KEEP").map(|v| v == "1").unwrap_or(false),
            signal_handler: true,
        }
    }
}

/// A simulation run: the fabric namespace and the hosts created in it.
/// Dropping the last handle (this, or any host/VM of it) sweeps everything.
#[derive(Debug)]
pub struct SimNet {
    cfg: SimConfig,
    fabric: Netns,
    run: Arc<RunState>,
    next_host: AtomicU32,
    physnets: tokio::sync::Mutex<BTreeMap<String, u32>>,
}

impl SimNet {
    /// Starts a run: registers it for cleanup and creates the fabric namespace
    /// with the underlay switch.
    pub async fn new(cfg: SimConfig) -> Result<SimNet> {
        if let Some(r) = unavailable_reason() {
            return Err(Error::Invalid(format!("simulated hosts unavailable: {r}")));
        }
        if cfg.prefix.len() < 3 || cfg.prefix.len() > 40 || cfg.prefix.contains(['/', ' ']) {
            return Err(Error::Invalid(format!("bad simulation prefix {:?}", cfg.prefix)));
        }
        // Leftovers of an earlier run with the same prefix.
        if !Netns::list_prefixed(&cfg.prefix).is_empty() {
            tracing::warn!(prefix = %cfg.prefix, "sweeping leftovers of an earlier run");
            sweep(&cfg.prefix);
        }
        let run = RunState::register(&cfg.prefix, &cfg.workdir, cfg.keep, cfg.signal_handler);
        std::fs::create_dir_all(&cfg.workdir).map_err(|e| Error::io(format!("mkdir {}", cfg.workdir.display()), e))?;
        let fabric = Netns::create(format!("{}fabric", cfg.prefix)).await?;
        let mut b = fabric.ip();
        b.bridge(UNDERLAY_SWITCH).link_up(UNDERLAY_SWITCH);
        b.run().await?;
        tracing::info!(prefix = %cfg.prefix, "simulation fabric ready");
        Ok(SimNet {
            cfg,
            fabric,
            run,
            next_host: AtomicU32::new(0),
            physnets: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// The namespace prefix of this run.
    pub fn prefix(&self) -> &str {
        &self.cfg.prefix
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The fabric namespace (underlay and physnet switches).
    pub fn fabric(&self) -> &Netns {
        &self.fabric
    }

    /// The cleanup state (shared by hosts and VMs).
    pub fn run_state(&self) -> &Arc<RunState> {
        &self.run
    }

    /// Sweeps everything now (also happens on drop).
    pub fn cleanup(&self) {
        self.run.sweep();
    }

    /// Creates a hypervisor: namespace `<prefix><name>`, underlay NIC on the
    /// underlay switch, private OVS, underlay address `.<n+1>`.
    pub async fn add_host(&self, name: &str) -> Result<SimHost> {
        if name.is_empty() || name.len() > 20 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::Invalid(format!("bad host name {name:?}")));
        }
        let idx = self.next_host.fetch_add(1, Ordering::SeqCst);
        let host_octets = u32::from(self.cfg.underlay_net) + idx + 1;
        let underlay_ip = Ipv4Addr::from(host_octets);
        let netns = Netns::create(format!("{}{}", self.cfg.prefix, name)).await?;
        let fabric_end = format!("ul-h{idx}");
        let mut b = self.fabric.ip();
        b.veth(&fabric_end, UNDERLAY_NIC, Some(netns.name()), None, None)
            .set_master(&fabric_end, UNDERLAY_SWITCH)
            .link_up(&fabric_end);
        b.run().await?;
        netns.ip().link_up(UNDERLAY_NIC).run().await?;
        let ovs =
            OvsInstance::start(&netns, &self.cfg.workdir.join(name), &self.cfg.ovs_schema, self.run.clone()).await?;
        let db = Client::connect(ovs.endpoint()).await?;
        let mut ids = BTreeMap::new();
        ids.insert("hostname".to_string(), name.to_string());
        ids.insert("system-id".to_string(), name.to_string());
        db.set_ovs_external_ids(&ids).await?;
        let cidr = format!("{underlay_ip}/{}", self.cfg.underlay_prefix_len);
        match self.cfg.datapath_type {
            DatapathType::Netdev => {
                // OVS userspace tunnelling: the tunnel endpoint address lives on a
                // netdev bridge's internal port, the NIC is a port of that bridge.
                db.add_bridge(
                    &BridgeSpec::new(UNDERLAY_BRIDGE).datapath(DatapathType::Netdev).fail_mode(FailMode::Standalone),
                    Commit::NoWait,
                )
                .await?;
                db.add_port(UNDERLAY_BRIDGE, &PortSpec::single(InterfaceSpec::system(UNDERLAY_NIC)), Commit::default())
                    .await?;
                let mut b = netns.ip();
                b.addr_replace(UNDERLAY_BRIDGE, &cidr).link_up(UNDERLAY_BRIDGE);
                b.run().await?;
            }
            DatapathType::System => {
                netns.ip().addr_replace(UNDERLAY_NIC, &cidr).run().await?;
            }
        }
        tracing::info!(host = name, netns = %netns.name(), %underlay_ip, "simulated host ready");
        Ok(SimHost {
            name: name.to_string(),
            idx,
            netns,
            ovs,
            db,
            underlay_ip,
            datapath_type: self.cfg.datapath_type,
            prefix: self.cfg.prefix.clone(),
            run: self.run.clone(),
        })
    }

    /// Connects `host` to physical network `physnet` (a Linux bridge
    /// `sw-<physnet>` in the fabric, created on first use). Returns the name of
    /// the host's NIC (`ph-<physnet>`), to be attached to a provider bridge.
    pub async fn connect_physnet(&self, host: &SimHost, physnet: &str) -> Result<String> {
        if physnet.is_empty() || physnet.len() > 12 || !physnet.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::Invalid(format!("physnet name {physnet:?}: 1..=12 alphanumerics in a simulation")));
        }
        let switch = format!("sw-{physnet}");
        let pn_idx = {
            // Held across the creation so a concurrent caller never sees a missing switch.
            let mut p = self.physnets.lock().await;
            let n = p.len() as u32;
            match p.get(physnet) {
                Some(i) => *i,
                None => {
                    let mut b = self.fabric.ip();
                    b.bridge(&switch).link_up(&switch);
                    b.run().await?;
                    p.insert(physnet.to_string(), n);
                    n
                }
            }
        };
        let nic = format!("ph-{physnet}");
        let fabric_end = format!("pn{pn_idx}-h{}", host.idx);
        let mut b = self.fabric.ip();
        b.veth(&fabric_end, &nic, Some(host.netns.name()), None, None)
            .set_master(&fabric_end, &switch)
            .link_up(&fabric_end);
        b.run().await?;
        host.netns.ip().link_up(&nic).run().await?;
        Ok(nic)
    }
}

/// A simulated hypervisor.
#[derive(Debug)]
pub struct SimHost {
    name: String,
    idx: u32,
    netns: Netns,
    ovs: OvsInstance,
    db: Client,
    underlay_ip: Ipv4Addr,
    datapath_type: DatapathType,
    prefix: String,
    run: Arc<RunState>,
}

impl SimHost {
    /// Host name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The host's underlay (tunnel endpoint) address.
    pub fn underlay_ip(&self) -> Ipv4Addr {
        self.underlay_ip
    }

    /// The datapath type of its bridges.
    pub fn datapath_type(&self) -> DatapathType {
        self.datapath_type
    }

    /// The OVSDB client of its private instance.
    pub fn ovsdb(&self) -> &Client {
        &self.db
    }

    /// Its OVSDB endpoint (for monitors).
    pub fn endpoint(&self) -> Endpoint {
        self.ovs.endpoint()
    }

    /// Its OVS instance (rundir, appctl, restart of ovsdb-server).
    pub fn ovs(&self) -> &OvsInstance {
        &self.ovs
    }

    /// `ovs-ofctl` for one of its bridges.
    pub fn ofctl(&self, bridge: &str) -> Ofctl {
        self.ovs.ofctl(bridge)
    }

    /// The Neutron bridge layout helper with this host's datapath type.
    pub fn layout(&self) -> Layout {
        Layout::new(self.datapath_type)
    }

    /// Runs a command in the host namespace.
    pub async fn exec(&self, argv: &[&str]) -> Result<Output> {
        self.netns.exec(argv).await
    }

    /// The cleanup state of the run.
    pub fn run_state(&self) -> &Arc<RunState> {
        &self.run
    }

    pub(crate) fn vm_netns_name(&self, vm: &str) -> String {
        format!("{}vm-{}", self.prefix, vm)
    }

    /// An `ip -batch` builder for the host namespace.
    pub fn ip(&self) -> IpBatch {
        self.netns.ip()
    }
}
