//! The L3 agent's configuration, from Neutron's `l3_agent.ini` (plus a
//! `[neutrino]` section for what Neutron has no option for).
//!
//! | option | default | meaning |
//! | --- | --- | --- |
//! | `[DEFAULT] host` | the machine's host name | the agent's host (router ports are bound to it) |
//! | `[DEFAULT] agent_mode` | `legacy` | only `legacy` is supported |
//! | `[DEFAULT] external_network_bridge` | empty | must stay empty: the gateway is plugged into br-int |
//! | `[DEFAULT] handle_internal_only_routers` | true | build routers without a gateway |
//! | `[DEFAULT] send_arp_for_ha` | 3 | gratuitous ARPs per new external address (0: none) |
//! | `[DEFAULT] periodic_interval` | 120 | seconds between full resyncs (0: only at start, reconnect, revival) |
//! | `[DEFAULT] rpc_response_timeout` | 60 | seconds a call to the server may take |
//! | `[ovs] integration_bridge` (or `[DEFAULT] ovs_integration_bridge`) | `br-int` | where router ports are plugged |
//! | `[ovs] ovsdb_connection` | `unix:/run/openvswitch/db.sock` | the host's OVSDB |
//! | `[agent] report_interval` | 4 | seconds between state reports |
//! | `[agent] availability_zone` | `nova` | reported availability zone |
//! | `[neutrino] ovs_netns` | none | namespace of the host's OVS and its ports (a simulated host) |
//! | `[neutrino] namespace_prefix` | empty | prefix of the `qrouter-<id>` namespaces (tests, simulated hosts) |
//! | `[neutrino] sync_workers` | 4 | routers configured in parallel |

use std::time::Duration;

use neutrino_lib::ini::Ini;

use super::error::{L3Error, Result};
use crate::ovsdb::Endpoint;

/// Default OVSDB socket of a real host.
pub const DEFAULT_OVSDB: &str = "unix:/run/openvswitch/db.sock";
/// Default `[DEFAULT] state_path`.
pub const DEFAULT_STATE_PATH: &str = "/var/lib/neutrino/l3";

/// Everything the L3 agent needs to know about its host.
#[derive(Debug, Clone)]
pub struct L3Config {
    /// The host name the agent reports (and the router ports' binding:host_id).
    pub host: String,
    /// The integration bridge the router ports are plugged into.
    pub integration_bridge: String,
    /// The host's OVSDB.
    pub ovsdb: Endpoint,
    /// The namespace where the host's OVS and its ports live (a simulated
    /// host); `None` is the agent's own namespace.
    pub ovs_netns: Option<String>,
    /// Prefix of the router namespaces (`<prefix>qrouter-<router id>`).
    pub namespace_prefix: String,
    /// Build routers that have no gateway.
    pub handle_internal_only_routers: bool,
    /// Gratuitous ARPs sent for each new external address.
    pub send_arp_for_ha: u32,
    /// Interval of state reports.
    pub report_interval: Duration,
    /// Interval of unconditional full resyncs (`None`: never).
    pub full_sync_interval: Option<Duration>,
    /// Timeout of calls to the server.
    pub rpc_timeout: Duration,
    /// Availability zone reported.
    pub availability_zone: String,
    /// Routers configured in parallel.
    pub sync_workers: usize,
    /// Where the agent keeps its files (`[DEFAULT] state_path`; radvd's under `ra/`).
    pub state_path: std::path::PathBuf,
}

impl L3Config {
    /// The defaults for `host` on a real machine.
    pub fn new(host: &str) -> L3Config {
        L3Config {
            host: host.to_string(),
            integration_bridge: crate::bridges::INT_BRIDGE.to_string(),
            ovsdb: Endpoint::Unix(DEFAULT_OVSDB.trim_start_matches("unix:").into()),
            ovs_netns: None,
            namespace_prefix: String::new(),
            handle_internal_only_routers: true,
            send_arp_for_ha: 3,
            report_interval: Duration::from_secs(4),
            full_sync_interval: Some(Duration::from_secs(120)),
            rpc_timeout: Duration::from_secs(60),
            availability_zone: "nova".into(),
            sync_workers: 4,
            state_path: std::path::PathBuf::from(DEFAULT_STATE_PATH),
        }
    }

    /// The directory of the routers' radvd files.
    pub fn ra_dir(&self) -> std::path::PathBuf {
        self.state_path.join("ra")
    }

    /// The configuration of an agent serving a simulated host: its OVSDB and
    /// namespace, router namespaces named `<namespace_prefix>qrouter-<id>`.
    pub fn for_sim_host(host: &crate::simhost::SimHost, namespace_prefix: &str) -> L3Config {
        let mut c = L3Config::new(host.name());
        c.ovsdb = host.endpoint();
        c.ovs_netns = Some(host.netns().name().to_string());
        c.namespace_prefix = namespace_prefix.to_string();
        c.state_path = host.ovs().rundir().join("l3");
        c
    }

    /// Reads Neutron's `l3_agent.ini` options; `host` (e.g. from the command
    /// line) wins over `[DEFAULT] host`, which wins over `default_host`.
    pub fn from_ini(ini: &Ini, host: Option<&str>, default_host: &str) -> Result<L3Config> {
        let h = host.map(String::from).or_else(|| ini.get("DEFAULT", "host").map(String::from));
        let mut c = L3Config::new(h.as_deref().unwrap_or(default_host));
        if let Some(m) = ini.get("DEFAULT", "agent_mode") {
            if m != "legacy" {
                return Err(L3Error::Config(format!("agent_mode = {m}: only 'legacy' routers are supported (no DVR)")));
            }
        }
        if let Some(b) = ini.get("DEFAULT", "external_network_bridge").filter(|b| !b.is_empty()) {
            return Err(L3Error::Config(format!(
                "external_network_bridge = {b}: not supported; leave it empty (the gateway port is plugged into the \
                 integration bridge and the external network is a provider network)"
            )));
        }
        let _ = ini.get("DEFAULT", "interface_driver");
        if let Some(p) = ini.get("DEFAULT", "state_path").filter(|p| !p.is_empty()) {
            c.state_path = p.into();
        }
        if let Some(v) = ini.bool("DEFAULT", "handle_internal_only_routers")? {
            c.handle_internal_only_routers = v;
        }
        if let Some(v) = ini.int("DEFAULT", "send_arp_for_ha")? {
            c.send_arp_for_ha = u32::try_from(v.max(0)).unwrap_or(0);
        }
        if let Some(v) = ini.float("DEFAULT", "periodic_interval")? {
            c.full_sync_interval = (v > 0.0).then(|| Duration::from_secs_f64(v));
        }
        if let Some(v) = ini.float("DEFAULT", "rpc_response_timeout")? {
            c.rpc_timeout = Duration::from_secs_f64(v.max(1.0));
        }
        if let Some(b) = ini.get("ovs", "integration_bridge").or_else(|| ini.get("DEFAULT", "ovs_integration_bridge")) {
            crate::link::check_ifname(b)?;
            c.integration_bridge = b.to_string();
        }
        if let Some(e) = ini.get("ovs", "ovsdb_connection") {
            c.ovsdb = Endpoint::parse(e)?;
        }
        if let Some(v) = ini.float("agent", "report_interval")? {
            c.report_interval = Duration::from_secs_f64(v.max(0.5));
        }
        if let Some(z) = ini.get("agent", "availability_zone").filter(|z| !z.is_empty()) {
            c.availability_zone = z.to_string();
        }
        if let Some(ns) = ini.get("neutrino", "ovs_netns").filter(|n| !n.is_empty()) {
            c.ovs_netns = Some(ns.to_string());
        }
        if let Some(p) = ini.get("neutrino", "namespace_prefix") {
            if p.contains(['/', ' ']) {
                return Err(L3Error::Config(format!("namespace_prefix {p:?} must not contain '/' or spaces")));
            }
            c.namespace_prefix = p.to_string();
        }
        if let Some(v) = ini.int("neutrino", "sync_workers")? {
            c.sync_workers = usize::try_from(v.clamp(1, 64)).unwrap_or(4);
        }
        Ok(c)
    }

    /// The configuration as an `l3_agent.ini` that [`L3Config::from_ini`]
    /// reads back (for supervisors starting `neutrino agent l3` processes);
    /// with `transport_url` in `[DEFAULT]` when given.
    pub fn to_ini(&self, transport_url: Option<&str>) -> String {
        let mut s = String::from("# written by neutrino\n[DEFAULT]\n");
        s.push_str(&format!("host = {}\n", self.host));
        s.push_str(&format!("state_path = {}\n", self.state_path.display()));
        if let Some(u) = transport_url {
            s.push_str(&format!("transport_url = {u}\n"));
        }
        s.push_str("agent_mode = legacy\ninterface_driver = openvswitch\nexternal_network_bridge =\n");
        s.push_str(&format!("handle_internal_only_routers = {}\n", self.handle_internal_only_routers));
        s.push_str(&format!("send_arp_for_ha = {}\n", self.send_arp_for_ha));
        s.push_str(&format!(
            "periodic_interval = {}\n",
            self.full_sync_interval.map(|d| d.as_secs_f64()).unwrap_or(0.0)
        ));
        s.push_str(&format!("rpc_response_timeout = {}\n", self.rpc_timeout.as_secs_f64()));
        s.push_str(&format!(
            "\n[ovs]\nintegration_bridge = {}\novsdb_connection = {}\n",
            self.integration_bridge, self.ovsdb
        ));
        s.push_str(&format!(
            "\n[agent]\nreport_interval = {}\navailability_zone = {}\n",
            self.report_interval.as_secs_f64(),
            self.availability_zone
        ));
        s.push_str("\n[neutrino]\n");
        if let Some(ns) = &self.ovs_netns {
            s.push_str(&format!("ovs_netns = {ns}\n"));
        }
        s.push_str(&format!("namespace_prefix = {}\nsync_workers = {}\n", self.namespace_prefix, self.sync_workers));
        s
    }

    /// The namespace of a router: `<prefix>qrouter-<id>`.
    pub fn router_namespace(&self, router_id: &str) -> String {
        format!("{}{}{router_id}", self.namespace_prefix, NS_PREFIX)
    }

    /// The router id of one of this agent's namespaces, if it is one.
    pub fn router_of_namespace<'a>(&self, ns: &'a str) -> Option<&'a str> {
        ns.strip_prefix(self.namespace_prefix.as_str())
            .and_then(|r| r.strip_prefix(NS_PREFIX))
            .filter(|r| !r.is_empty())
    }
}

/// Neutron's router namespace prefix.
pub const NS_PREFIX: &str = "qrouter-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_neutron_options() {
        let ini = Ini::parse(
            "[DEFAULT]\nhost = net1\ninterface_driver = openvswitch\nexternal_network_bridge =\nsend_arp_for_ha = 1\n\
             [ovs]\novsdb_connection = unix:/tmp/x/db.sock\n[agent]\nreport_interval = 2\n\
             [neutrino]\novs_netns = nt1-compute1\nnamespace_prefix = nt1-\n",
        );
        let c = L3Config::from_ini(&ini, None, "fallback").unwrap();
        assert_eq!(c.host, "net1");
        assert_eq!(c.send_arp_for_ha, 1);
        assert_eq!(c.report_interval, Duration::from_secs(2));
        assert_eq!(c.ovs_netns.as_deref(), Some("nt1-compute1"));
        assert_eq!(c.router_namespace("r1"), "nt1-qrouter-r1");
        assert_eq!(c.router_of_namespace("nt1-qrouter-r1"), Some("r1"));
        assert_eq!(c.router_of_namespace("qrouter-r1"), None);
        let c = L3Config::from_ini(&ini, Some("cli"), "fallback").unwrap();
        assert_eq!(c.host, "cli");
    }

    #[test]
    fn round_trips_through_ini() {
        let mut c = L3Config::new("net1");
        c.ovs_netns = Some("nt1-compute1".into());
        c.namespace_prefix = "nt1-".into();
        c.full_sync_interval = None;
        c.send_arp_for_ha = 1;
        c.ovsdb = Endpoint::parse("unix:/tmp/x/db.sock").unwrap();
        let text = c.to_ini(Some("rabbit://guest:guest@127.0.0.1:5672/v"));
        let ini = Ini::parse(&text);
        let back = L3Config::from_ini(&ini, None, "other").unwrap();
        assert_eq!(back.host, "net1");
        assert_eq!(back.ovs_netns, c.ovs_netns);
        assert_eq!(back.namespace_prefix, "nt1-");
        assert_eq!(back.full_sync_interval, None);
        assert_eq!(back.send_arp_for_ha, 1);
        assert_eq!(back.ovsdb, c.ovsdb);
        assert_eq!(back.report_interval, c.report_interval);
        assert_eq!(ini.get("DEFAULT", "transport_url"), Some("rabbit://guest:guest@127.0.0.1:5672/v"));
    }

    #[test]
    fn rejects_unsupported_modes() {
        let ini = Ini::parse("[DEFAULT]\nagent_mode = dvr\n");
        assert!(matches!(L3Config::from_ini(&ini, None, "h"), Err(L3Error::Config(_))));
        let ini = Ini::parse("[DEFAULT]\nexternal_network_bridge = br-ex\n");
        assert!(matches!(L3Config::from_ini(&ini, None, "h"), Err(L3Error::Config(_))));
    }
}
