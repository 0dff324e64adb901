//! The DHCP agent's configuration: Neutron's `dhcp_agent.ini` options that
//! apply (plus a few of neutrino's own for simulated hosts).

use std::path::PathBuf;
use std::time::Duration;

use neutrino_lib::ini::Ini;

use super::error::{DhcpError, Result};
use crate::ovsdb::Endpoint;

/// Default OVSDB endpoint of the host's Open vSwitch.
pub const DEFAULT_OVSDB: &str = "unix:/run/openvswitch/db.sock";
/// Prefix of the namespaces (`qdhcp-<network id>`), as Neutron names them.
pub const DEFAULT_NETNS_PREFIX: &str = "qdhcp-";

/// Everything the DHCP agent needs to know about its host.
///
/// Built with [`DhcpAgentConfig::new`] (defaults) or
/// [`DhcpAgentConfig::from_ini`] (Neutron's options, see the field docs for
/// the option each field comes from).
#[derive(Debug, Clone)]
pub struct DhcpAgentConfig {
    /// The host name the agent reports and binds its DHCP ports to
    /// (`[DEFAULT] host`).
    pub host: String,
    /// Where the per-network dnsmasq files live (`[DEFAULT] dhcp_confs`,
    /// default `<state_path>/dhcp`).
    pub state_dir: PathBuf,
    /// The host's OVSDB server (`[ovs] ovsdb_connection`).
    pub ovsdb: Endpoint,
    /// The integration bridge the DHCP devices are plugged into
    /// (`[ovs] integration_bridge`, default `br-int`).
    pub integration_bridge: String,
    /// The network namespace in which the host's OVS sees its devices: `None`
    /// for the agent's own namespace (a real host); a simulated host's
    /// namespace otherwise (neutrino's `[DEFAULT] ovs_bridge_namespace`).
    /// The qdhcp namespaces themselves are global.
    pub bridge_netns: Option<String>,
    /// Prefix of the qdhcp namespaces (neutrino's `[DEFAULT]
    /// dhcp_namespace_prefix`, default `qdhcp-`). Agents sharing a machine
    /// (simulated hosts) need distinct prefixes: stale namespaces with the
    /// prefix are removed at resync.
    pub netns_prefix: String,
    /// Lease time in seconds, -1 for infinite (`[DEFAULT] dhcp_lease_duration`).
    pub lease_duration: i64,
    /// DNS forwarders for dnsmasq (`[DEFAULT] dnsmasq_dns_servers`).
    pub dns_servers: Vec<String>,
    /// Let dnsmasq read the namespace's resolv.conf for forwarding
    /// (`[DEFAULT] dnsmasq_local_resolv`, default false).
    pub dnsmasq_local_resolv: bool,
    /// Maximum number of leases per network (`[DEFAULT] dnsmasq_lease_max`).
    pub dnsmasq_lease_max: u64,
    /// DHCP option 58, seconds, 0 for dnsmasq's default (`[DEFAULT] dhcp_renewal_time`).
    pub dhcp_renewal_time: u64,
    /// DHCP option 59, seconds, 0 for dnsmasq's default (`[DEFAULT] dhcp_rebinding_time`).
    pub dhcp_rebinding_time: u64,
    /// Extra dnsmasq configuration file (`[DEFAULT] dnsmasq_config_file`).
    pub dnsmasq_config_file: Option<PathBuf>,
    /// Broadcast DHCP replies (`[DEFAULT] dhcp_broadcast_reply`).
    pub dhcp_broadcast_reply: bool,
    /// Log every DHCP transaction in detail (`--log-dhcp`; set when
    /// `[DEFAULT] dnsmasq_base_log_dir` is given).
    pub dnsmasq_log_dhcp: bool,
    /// User dnsmasq drops privileges to (`None`: dnsmasq's default, `nobody`).
    pub dnsmasq_user: Option<String>,
    /// The dnsmasq binary.
    pub dnsmasq_binary: String,
    /// How often the agent reports its state (`[AGENT] report_interval`).
    pub report_interval: Duration,
    /// Delay before a failed network is retried (`[DEFAULT] resync_interval`).
    pub resync_interval: Duration,
    /// How often dnsmasq processes are checked (`[AGENT] check_child_processes_interval`).
    pub check_interval: Duration,
    /// Networks configured in parallel (`[DEFAULT] num_sync_threads`).
    pub num_sync_threads: usize,
    /// Availability zone reported (`[AGENT] availability_zone`).
    pub availability_zone: String,
}

impl DhcpAgentConfig {
    /// Defaults for `host`, with files under `state_dir`.
    pub fn new(host: impl Into<String>, state_dir: impl Into<PathBuf>) -> DhcpAgentConfig {
        DhcpAgentConfig {
            host: host.into(),
            state_dir: state_dir.into(),
            ovsdb: Endpoint::unix("/run/openvswitch/db.sock"),
            integration_bridge: crate::bridges::INT_BRIDGE.to_string(),
            bridge_netns: None,
            netns_prefix: DEFAULT_NETNS_PREFIX.to_string(),
            lease_duration: 86400,
            dns_servers: Vec::new(),
            dnsmasq_local_resolv: false,
            dnsmasq_lease_max: 1 << 24,
            dhcp_renewal_time: 0,
            dhcp_rebinding_time: 0,
            dnsmasq_config_file: None,
            dhcp_broadcast_reply: false,
            dnsmasq_log_dhcp: false,
            dnsmasq_user: None,
            dnsmasq_binary: "dnsmasq".to_string(),
            report_interval: Duration::from_secs(5),
            resync_interval: Duration::from_secs(5),
            check_interval: Duration::from_secs(10),
            num_sync_threads: 8,
            availability_zone: "nova".to_string(),
        }
    }

    /// Sets the OVSDB endpoint (builder style).
    pub fn ovsdb(mut self, endpoint: Endpoint) -> Self {
        self.ovsdb = endpoint;
        self
    }

    /// Sets the namespace in which the host's OVS sees its devices (builder style).
    pub fn bridge_netns(mut self, netns: impl Into<String>) -> Self {
        self.bridge_netns = Some(netns.into());
        self
    }

    /// Sets the qdhcp namespace prefix (builder style).
    pub fn netns_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.netns_prefix = prefix.into();
        self
    }

    /// The configuration of a simulated hypervisor's DHCP agent: the host's
    /// private OVS, its namespace for the bridge-side devices, and qdhcp
    /// namespaces named `<host namespace>-qdhcp-<network id>` — unique per
    /// host, and swept with the simulation.
    pub fn for_sim_host(host: &crate::simhost::SimHost, state_dir: impl Into<PathBuf>) -> DhcpAgentConfig {
        DhcpAgentConfig::new(host.name(), state_dir)
            .ovsdb(host.endpoint())
            .bridge_netns(host.netns().name())
            .netns_prefix(format!("{}-qdhcp-", host.netns().name()))
    }

    /// Reads Neutron's options from `ini` (`dhcp_agent.ini`, `neutron.conf`).
    /// `host` overrides `[DEFAULT] host`; `default_host` is used when neither
    /// is set. Options of other drivers are rejected with a clear error
    /// (e.g. an `interface_driver` other than Open vSwitch).
    pub fn from_ini(ini: &Ini, host: Option<&str>, default_host: &str) -> Result<DhcpAgentConfig> {
        let host = host.map(str::to_string).or_else(|| ini.get("DEFAULT", "host").map(str::to_string));
        let state_path = ini.get("DEFAULT", "state_path").unwrap_or("/var/lib/neutrino");
        let state_dir = ini
            .get("DEFAULT", "dhcp_confs")
            .map(|d| d.replace("$state_path", state_path))
            .unwrap_or_else(|| format!("{state_path}/dhcp"));
        let mut c = DhcpAgentConfig::new(host.unwrap_or_else(|| default_host.to_string()), state_dir);
        let bad = |e: neutrino_lib::ini::BadOption| DhcpError::Config(e.to_string());
        if let Some(d) = ini.get("DEFAULT", "interface_driver") {
            if !matches!(d, "openvswitch" | "ovs" | "neutron.agent.linux.interface.OVSInterfaceDriver") {
                return Err(DhcpError::Config(format!("interface_driver {d:?} is not supported (openvswitch only)")));
            }
        }
        if let Some(d) = ini.get("DEFAULT", "dhcp_driver") {
            if !d.ends_with("Dnsmasq") && d != "dnsmasq" {
                return Err(DhcpError::Config(format!("dhcp_driver {d:?} is not supported (dnsmasq only)")));
            }
        }
        // The DHCP device is always a veth pair (`ovs_use_veth`): an OVS
        // internal port moved into a namespace does not work on every datapath.
        let _ = ini.bool("DEFAULT", "ovs_use_veth").map_err(bad)?;
        if let Some(v) = ini.get("ovs", "ovsdb_connection").or_else(|| ini.get("OVS", "ovsdb_connection")) {
            c.ovsdb = Endpoint::parse(v).map_err(|e| DhcpError::Config(format!("ovsdb_connection: {e}")))?;
        }
        if let Some(v) = ini
            .get("ovs", "integration_bridge")
            .or_else(|| ini.get("OVS", "integration_bridge"))
            .or_else(|| ini.get("DEFAULT", "ovs_integration_bridge"))
        {
            c.integration_bridge = v.to_string();
        }
        if let Some(v) = ini.get("DEFAULT", "ovs_bridge_namespace").filter(|v| !v.is_empty()) {
            c.bridge_netns = Some(v.to_string());
        }
        if let Some(v) = ini.get("DEFAULT", "dhcp_namespace_prefix").filter(|v| !v.is_empty()) {
            c.netns_prefix = v.to_string();
        }
        if let Some(v) = ini.int("DEFAULT", "dhcp_lease_duration").map_err(bad)? {
            c.lease_duration = v;
        }
        if let Some(v) = ini.list("DEFAULT", "dnsmasq_dns_servers") {
            c.dns_servers = v.into_iter().filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = ini.bool("DEFAULT", "dnsmasq_local_resolv").map_err(bad)? {
            c.dnsmasq_local_resolv = v;
        }
        if let Some(v) = ini.int("DEFAULT", "dnsmasq_lease_max").map_err(bad)? {
            c.dnsmasq_lease_max = v.max(1) as u64;
        }
        if let Some(v) = ini.int("DEFAULT", "dhcp_renewal_time").map_err(bad)? {
            c.dhcp_renewal_time = v.max(0) as u64;
        }
        if let Some(v) = ini.int("DEFAULT", "dhcp_rebinding_time").map_err(bad)? {
            c.dhcp_rebinding_time = v.max(0) as u64;
        }
        if let Some(v) = ini.get("DEFAULT", "dnsmasq_config_file").filter(|v| !v.trim().is_empty()) {
            c.dnsmasq_config_file = Some(PathBuf::from(v.trim()));
        }
        if let Some(v) = ini.bool("DEFAULT", "dhcp_broadcast_reply").map_err(bad)? {
            c.dhcp_broadcast_reply = v;
        }
        if ini.get("DEFAULT", "dnsmasq_base_log_dir").is_some_and(|v| !v.is_empty()) {
            c.dnsmasq_log_dhcp = true;
        }
        if let Some(v) = ini.get("DEFAULT", "dnsmasq_user").filter(|v| !v.is_empty()) {
            c.dnsmasq_user = Some(v.to_string());
        }
        if let Some(v) = ini.int("AGENT", "report_interval").map_err(bad)? {
            c.report_interval = Duration::from_secs_f64((v as f64).max(1.0));
        }
        if let Some(v) = ini.int("DEFAULT", "resync_interval").map_err(bad)? {
            c.resync_interval = Duration::from_secs(v.max(1) as u64);
        }
        if let Some(v) = ini.int("AGENT", "check_child_processes_interval").map_err(bad)? {
            c.check_interval = Duration::from_secs(v.max(1) as u64);
        }
        if let Some(v) = ini.int("DEFAULT", "num_sync_threads").map_err(bad)? {
            c.num_sync_threads = v.clamp(1, 256) as usize;
        }
        if let Some(v) = ini.get("AGENT", "availability_zone").filter(|v| !v.is_empty()) {
            c.availability_zone = v.to_string();
        }
        c.validate()?;
        Ok(c)
    }

    /// The configuration as a `dhcp_agent.ini` that [`DhcpAgentConfig::from_ini`]
    /// reads back (for running `neutrino agent dhcp --config` processes).
    pub fn to_ini(&self) -> String {
        let mut d = vec![
            format!("host = {}", self.host),
            format!("dhcp_confs = {}", self.state_dir.display()),
            "interface_driver = openvswitch".to_string(),
            format!("dhcp_namespace_prefix = {}", self.netns_prefix),
            format!("dhcp_lease_duration = {}", self.lease_duration),
            format!("dnsmasq_local_resolv = {}", self.dnsmasq_local_resolv),
            format!("dnsmasq_lease_max = {}", self.dnsmasq_lease_max),
            format!("dhcp_renewal_time = {}", self.dhcp_renewal_time),
            format!("dhcp_rebinding_time = {}", self.dhcp_rebinding_time),
            format!("dhcp_broadcast_reply = {}", self.dhcp_broadcast_reply),
            format!("resync_interval = {}", self.resync_interval.as_secs().max(1)),
            format!("num_sync_threads = {}", self.num_sync_threads),
        ];
        if let Some(ns) = &self.bridge_netns {
            d.push(format!("ovs_bridge_namespace = {ns}"));
        }
        if !self.dns_servers.is_empty() {
            d.push(format!("dnsmasq_dns_servers = {}", self.dns_servers.join(",")));
        }
        if let Some(f) = &self.dnsmasq_config_file {
            d.push(format!("dnsmasq_config_file = {}", f.display()));
        }
        if let Some(u) = &self.dnsmasq_user {
            d.push(format!("dnsmasq_user = {u}"));
        }
        format!(
            "[DEFAULT]\n{}\n\n[ovs]\novsdb_connection = {}\nintegration_bridge = {}\n\n[AGENT]\nreport_interval = {}\ncheck_child_processes_interval = {}\navailability_zone = {}\n",
            d.join("\n"),
            self.ovsdb,
            self.integration_bridge,
            self.report_interval.as_secs().max(1),
            self.check_interval.as_secs().max(1),
            self.availability_zone,
        )
    }

    /// Checks values that would make names or commands invalid.
    pub fn validate(&self) -> Result<()> {
        let ok_name = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_name(&self.host) {
            return Err(DhcpError::Config(format!("bad host name {:?}", self.host)));
        }
        if !ok_name(self.netns_prefix.trim_end_matches('-')) || self.netns_prefix.len() > 160 {
            return Err(DhcpError::Config(format!("bad namespace prefix {:?}", self.netns_prefix)));
        }
        crate::link::check_ifname(&self.integration_bridge)
            .map_err(|e| DhcpError::Config(format!("integration_bridge: {e}")))?;
        if self.state_dir.as_os_str().is_empty() {
            return Err(DhcpError::Config("empty dhcp_confs".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_neutron_options() {
        let ini = Ini::parse(
            "[DEFAULT]\nstate_path = /srv/n\ndhcp_confs = $state_path/dhcp2\ndhcp_lease_duration = 600\n\
             dnsmasq_dns_servers = 8.8.8.8, 1.1.1.1\nnum_sync_threads = 3\ndhcp_namespace_prefix = x-qdhcp-\n\
             [ovs]\novsdb_connection = unix:/tmp/h1/db.sock\nintegration_bridge = br-x\n\
             [AGENT]\nreport_interval = 7\navailability_zone = az1\n",
        );
        let c = DhcpAgentConfig::from_ini(&ini, Some("h1"), "fallback").unwrap();
        assert_eq!(c.host, "h1");
        assert_eq!(c.state_dir, PathBuf::from("/srv/n/dhcp2"));
        assert_eq!(c.lease_duration, 600);
        assert_eq!(c.dns_servers, vec!["8.8.8.8", "1.1.1.1"]);
        assert_eq!(c.num_sync_threads, 3);
        assert_eq!(c.netns_prefix, "x-qdhcp-");
        assert_eq!(c.integration_bridge, "br-x");
        assert_eq!(c.report_interval, Duration::from_secs(7));
        assert_eq!(c.availability_zone, "az1");
        assert_eq!(c.ovsdb.to_string(), "unix:/tmp/h1/db.sock");
    }

    #[test]
    fn ini_round_trip() {
        let mut c = DhcpAgentConfig::new("h2", "/tmp/x/dhcp").bridge_netns("nt1-h2").netns_prefix("nt1-h2-qdhcp-");
        c.dns_servers = vec!["192.0.2.53".into()];
        c.lease_duration = 120;
        let back = DhcpAgentConfig::from_ini(&Ini::parse(&c.to_ini()), None, "other").unwrap();
        assert_eq!(back.host, "h2");
        assert_eq!(back.state_dir, c.state_dir);
        assert_eq!(back.bridge_netns, c.bridge_netns);
        assert_eq!(back.netns_prefix, c.netns_prefix);
        assert_eq!(back.dns_servers, c.dns_servers);
        assert_eq!(back.lease_duration, 120);
        assert_eq!(back.ovsdb, c.ovsdb);
        assert_eq!(back.report_interval, c.report_interval);
    }

    #[test]
    fn rejects_other_drivers() {
        let ini = Ini::parse("[DEFAULT]\ninterface_driver = linuxbridge\n");
        assert!(DhcpAgentConfig::from_ini(&ini, Some("h"), "h").is_err());
    }
}
