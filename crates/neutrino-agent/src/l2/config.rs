//! The L2 agent's configuration: built in code (simulated hosts, `neutrino
//! up`) or read from Neutron's `openvswitch_agent.ini`:
//!
//! | section | option | meaning |
//! |---|---|---|
//! | `[DEFAULT]` | `host` | the agent's host name (the ports' `binding:host_id`) |
//! | `[ovs]` | `integration_bridge`, `tunnel_bridge` | bridge names (`br-int`, `br-tun`) |
//! | `[ovs]` | `bridge_mappings` | `physnet:bridge,…` provider bridges |
//! | `[ovs]` | `local_ip` | this host's tunnel endpoint (IPv4) |
//! | `[ovs]` | `datapath_type` | `system` (kernel module) or `netdev` (userspace) |
//! | `[ovs]` | `ovsdb_connection` | `unix:/var/run/openvswitch/db.sock` by default; the bridges' OpenFlow management sockets are looked up next to it |
//! | `[agent]` | `tunnel_types`, `l2_population`, `arp_responder`, `report_interval` | |
//! | `[securitygroup]` | `firewall_driver`, `enable_security_group` | `openvswitch` (default) or `noop` |
//!
//! Options the agent does not use are returned by [`L2Config::from_ini`] so
//! the caller can log them; they are never fatal.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use neutrino_lib::ini::Ini;

use crate::ovsdb::{DatapathType, Endpoint, TunnelType};

use super::error::L2Error;

/// The default OVSDB socket of a system Open vSwitch.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

/// How port security (security groups, anti-spoofing) is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirewallDriver {
    /// Neutron's `openvswitch` driver: OpenFlow + conntrack on br-int.
    #[default]
    Openvswitch,
    /// No filtering at all (`noop`), only the ARP/MAC anti-spoofing tables.
    Noop,
}

impl FirewallDriver {
    /// Parses Neutron's `firewall_driver` values.
    pub fn parse(s: &str) -> Option<FirewallDriver> {
        match s.trim() {
            "openvswitch" | "neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver" => {
                Some(FirewallDriver::Openvswitch)
            }
            "noop" | "neutron.agent.firewall.NoopFirewallDriver" => Some(FirewallDriver::Noop),
            _ => None,
        }
    }
}

/// Everything the Open vSwitch L2 agent is configured with.
#[derive(Debug, Clone)]
pub struct L2Config {
    /// Host name reported to the server (ports are bound to it).
    pub host: String,
    /// Integration bridge (`br-int`).
    pub integration_bridge: String,
    /// Tunnel bridge (`br-tun`).
    pub tunnel_bridge: String,
    /// Datapath type of every bridge the agent creates.
    pub datapath_type: DatapathType,
    /// Tunnel endpoint; without it the agent offers no tunnel types.
    pub local_ip: Option<Ipv4Addr>,
    /// Tunnel types offered (needs `local_ip`).
    pub tunnel_types: Vec<TunnelType>,
    /// Physical network → provider bridge.
    pub bridge_mappings: BTreeMap<String, String>,
    /// l2population: unicast flows to known remote MACs, flooding only to
    /// hosts with ports on the network (always on in neutrino).
    pub l2_population: bool,
    /// Answer ARP requests for remote ports locally on br-tun.
    pub arp_responder: bool,
    /// OVSDB server of the local Open vSwitch.
    pub ovsdb: Endpoint,
    /// Directory holding the bridges' OpenFlow management sockets (`<bridge>.mgmt`).
    pub ovs_rundir: PathBuf,
    /// Interval of `report_state`.
    pub report_interval: Duration,
    /// Timeout of calls to the server.
    pub rpc_timeout: Duration,
    /// Ports per `get_devices_details_list` call.
    pub device_batch: usize,
    /// Security-group enforcement.
    pub firewall_driver: FirewallDriver,
    /// The safety net against lost notifications (`[agent]
    /// resync_check_interval`, seconds; 0 turns it off): this often the
    /// agent compares its ports' revisions with the server's (one call),
    /// and resyncs fully when they differ; every tenth check it resyncs
    /// fully anyway (security-group rules and peers carry no revision here).
    pub resync_check_interval: Duration,
}

impl L2Config {
    /// Defaults for `host`: Neutron's bridge names, the system OVS at its
    /// default socket, no tunnels, no provider bridges.
    pub fn new(host: impl Into<String>) -> L2Config {
        let ovsdb = Endpoint::parse(DEFAULT_OVSDB).unwrap_or_else(|_| Endpoint::unix("/var/run/openvswitch/db.sock"));
        L2Config {
            host: host.into(),
            integration_bridge: crate::bridges::INT_BRIDGE.into(),
            tunnel_bridge: crate::bridges::TUN_BRIDGE.into(),
            datapath_type: DatapathType::System,
            local_ip: None,
            tunnel_types: Vec::new(),
            bridge_mappings: BTreeMap::new(),
            l2_population: true,
            arp_responder: true,
            ovs_rundir: rundir_of(&ovsdb),
            ovsdb,
            report_interval: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(30),
            device_batch: 256,
            firewall_driver: FirewallDriver::Openvswitch,
            resync_check_interval: Duration::from_secs(30),
        }
    }

    /// Points the agent at another OVS instance (its `db.sock`); the
    /// management sockets are expected in the same directory.
    pub fn with_ovsdb(mut self, endpoint: Endpoint) -> L2Config {
        self.ovs_rundir = rundir_of(&endpoint);
        self.ovsdb = endpoint;
        self
    }

    /// Whether the agent runs tunnels (a local IP and at least one type).
    pub fn tunneling(&self) -> bool {
        self.local_ip.is_some() && !self.tunnel_types.is_empty()
    }

    /// Reads `openvswitch_agent.ini` options over the defaults for `host`
    /// (`[DEFAULT] host` wins over the argument when set). Returns the
    /// configuration and the options of the agent's sections it did not use.
    pub fn from_ini(ini: &Ini, host: &str) -> Result<(L2Config, Vec<(String, String)>), L2Error> {
        let host = ini.get("DEFAULT", "host").map(str::to_string).unwrap_or_else(|| host.to_string());
        let mut cfg = L2Config::new(host);
        let get = |key: &str| ini.get("ovs", key).or_else(|| ini.get("OVS", key));
        let agent = |key: &str| ini.get("agent", key).or_else(|| ini.get("AGENT", key));
        if let Some(v) = get("integration_bridge") {
            cfg.integration_bridge = v.to_string();
        }
        if let Some(v) = get("tunnel_bridge") {
            cfg.tunnel_bridge = v.to_string();
        }
        if let Some(v) = get("datapath_type") {
            cfg.datapath_type = parse_datapath(v)?;
        }
        if let Some(v) = get("local_ip") {
            cfg.local_ip = Some(parse_local_ip(v)?);
        }
        if let Some(v) = get("bridge_mappings") {
            cfg.bridge_mappings = parse_bridge_mappings(v)?;
        }
        if let Some(v) = get("ovsdb_connection") {
            let ep = Endpoint::parse(v).map_err(|e| L2Error::Config(format!("[ovs] ovsdb_connection: {e}")))?;
            cfg = cfg.with_ovsdb(ep);
        }
        if let Some(v) = agent("tunnel_types") {
            cfg.tunnel_types = parse_tunnel_types(v)?;
        }
        let flag = |section: &str, key: &str| -> Result<Option<bool>, L2Error> {
            let lower = ini.bool(section, key).map_err(|e| L2Error::Config(e.to_string()))?;
            match lower {
                Some(b) => Ok(Some(b)),
                None => ini.bool(&section.to_ascii_uppercase(), key).map_err(|e| L2Error::Config(e.to_string())),
            }
        };
        if let Some(b) = flag("agent", "l2_population")? {
            if !b {
                tracing::warn!("[agent] l2_population = false: neutrino's L2 agent always uses l2population");
            }
        }
        if let Some(b) = flag("agent", "arp_responder")? {
            cfg.arp_responder = b;
        }
        if let Some(v) = agent("report_interval") {
            let secs: f64 = v.parse().map_err(|_| L2Error::Config(format!("[agent] report_interval = {v}")))?;
            if secs > 0.0 {
                cfg.report_interval = Duration::from_secs_f64(secs);
            }
        }
        if let Some(v) = agent("resync_check_interval") {
            let secs: f64 = v.parse().map_err(|_| L2Error::Config(format!("[agent] resync_check_interval = {v}")))?;
            cfg.resync_check_interval = Duration::from_secs_f64(secs.max(0.0));
        }
        if let Some(v) = ini.get("securitygroup", "firewall_driver") {
            cfg.firewall_driver = match FirewallDriver::parse(v) {
                Some(d) => d,
                None => {
                    tracing::warn!(driver = v, "unsupported firewall_driver, using openvswitch");
                    FirewallDriver::Openvswitch
                }
            };
        }
        if flag("securitygroup", "enable_security_group")? == Some(false) {
            cfg.firewall_driver = FirewallDriver::Noop;
        }
        if !cfg.tunnel_types.is_empty() && cfg.local_ip.is_none() {
            tracing::warn!("[agent] tunnel_types without [ovs] local_ip: tunnels disabled");
        }
        let unused = ini
            .unread()
            .into_iter()
            .filter(|(s, _)| ["ovs", "OVS", "agent", "AGENT", "securitygroup"].contains(&s.as_str()))
            .collect();
        Ok((cfg, unused))
    }

    /// The `configurations` the agent reports (what the server binds on).
    pub fn report_configurations(&self, devices: usize) -> serde_json::Value {
        let tunnel_types: Vec<&str> =
            if self.tunneling() { self.tunnel_types.iter().map(|t| t.as_str()).collect() } else { vec![] };
        serde_json::json!({
            "bridge_mappings": self.bridge_mappings,
            "tunnel_types": tunnel_types,
            "tunneling_ip": self.local_ip.filter(|_| self.tunneling()).map(|ip| ip.to_string()),
            "datapath_type": self.datapath_type.as_str(),
            "integration_bridge": self.integration_bridge,
            "tunnel_bridge": self.tunnel_bridge,
            "l2_population": true,
            "arp_responder_enabled": self.arp_responder,
            "firewall_driver": match self.firewall_driver {
                FirewallDriver::Openvswitch => "openvswitch",
                FirewallDriver::Noop => "noop",
            },
            "ovs_hybrid_plug": false,
            "devices": devices,
        })
    }
}

/// The directory of a unix endpoint's socket (where OVS also keeps the
/// bridges' `.mgmt` sockets); the system default otherwise.
pub fn rundir_of(ep: &Endpoint) -> PathBuf {
    match ep {
        Endpoint::Unix(p) => p.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/run/openvswitch")),
        _ => PathBuf::from("/var/run/openvswitch"),
    }
}

/// Parses `system` / `netdev`.
pub fn parse_datapath(v: &str) -> Result<DatapathType, L2Error> {
    match v.trim() {
        "system" | "" => Ok(DatapathType::System),
        "netdev" => Ok(DatapathType::Netdev),
        o => Err(L2Error::Config(format!("[ovs] datapath_type = {o}: expected system or netdev"))),
    }
}

/// Parses an IPv4 tunnel endpoint.
pub fn parse_local_ip(v: &str) -> Result<Ipv4Addr, L2Error> {
    match v.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => {
            Err(L2Error::Config(format!("[ovs] local_ip = {v}: IPv6 tunnel endpoints are not supported")))
        }
        Err(_) => Err(L2Error::Config(format!("[ovs] local_ip = {v}: not an IP address"))),
    }
}

/// Parses `physnet1:br-eth1,physnet2:br-eth2`.
pub fn parse_bridge_mappings(v: &str) -> Result<BTreeMap<String, String>, L2Error> {
    let mut out = BTreeMap::new();
    for item in v.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
        let (p, b) = item
            .split_once(':')
            .map(|(p, b)| (p.trim(), b.trim()))
            .filter(|(p, b)| !p.is_empty() && !b.is_empty())
            .ok_or_else(|| L2Error::Config(format!("[ovs] bridge_mappings: '{item}' is not physnet:bridge")))?;
        crate::link::check_ifname(b).map_err(|e| L2Error::Config(format!("[ovs] bridge_mappings: {e}")))?;
        if out.values().any(|x: &String| x == b) {
            return Err(L2Error::Config(format!("[ovs] bridge_mappings: bridge {b} mapped twice")));
        }
        if out.insert(p.to_string(), b.to_string()).is_some() {
            return Err(L2Error::Config(format!("[ovs] bridge_mappings: physical network {p} mapped twice")));
        }
    }
    Ok(out)
}

/// Parses `vxlan,gre,geneve`.
pub fn parse_tunnel_types(v: &str) -> Result<Vec<TunnelType>, L2Error> {
    let mut out = Vec::new();
    for t in v.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
        let tt = match t {
            "vxlan" => TunnelType::Vxlan,
            "gre" => TunnelType::Gre,
            "geneve" => TunnelType::Geneve,
            o => return Err(L2Error::Config(format!("[agent] tunnel_types: unsupported type {o}"))),
        };
        if !out.contains(&tt) {
            out.push(tt);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openvswitch_agent_ini() {
        let ini = Ini::parse(
            "[DEFAULT]\ndebug = true\n[ovs]\nbridge_mappings = physnet1:br-physnet1, ext:br-ex\nlocal_ip = 198.51.100.2\n\
             datapath_type = netdev\novsdb_connection = unix:/tmp/x/db.sock\nof_interface = native\n\
             [agent]\ntunnel_types = vxlan,gre,geneve\nl2_population = True\n[securitygroup]\nfirewall_driver = noop\n",
        );
        let (cfg, unused) = L2Config::from_ini(&ini, "compute1").unwrap();
        assert_eq!(cfg.host, "compute1");
        assert_eq!(cfg.bridge_mappings.get("physnet1").map(String::as_str), Some("br-physnet1"));
        assert_eq!(cfg.bridge_mappings.get("ext").map(String::as_str), Some("br-ex"));
        assert_eq!(cfg.local_ip, Some(Ipv4Addr::new(198, 51, 100, 2)));
        assert_eq!(cfg.datapath_type, DatapathType::Netdev);
        assert_eq!(cfg.tunnel_types, vec![TunnelType::Vxlan, TunnelType::Gre, TunnelType::Geneve]);
        assert_eq!(cfg.ovs_rundir, PathBuf::from("/tmp/x"));
        assert_eq!(cfg.firewall_driver, FirewallDriver::Noop);
        assert!(unused.contains(&("ovs".to_string(), "of_interface".to_string())), "{unused:?}");
        let conf = cfg.report_configurations(3);
        assert_eq!(conf["tunneling_ip"], "198.51.100.2");
        assert_eq!(conf["bridge_mappings"]["physnet1"], "br-physnet1");
        assert_eq!(conf["l2_population"], true);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse_bridge_mappings("physnet1").is_err());
        assert!(parse_bridge_mappings("a:br1,a:br2").is_err());
        assert!(parse_bridge_mappings("a:br1,b:br1").is_err());
        assert!(parse_tunnel_types("vxlan,stt").is_err());
        assert!(parse_local_ip("fd00::1").is_err());
        assert!(parse_datapath("dpdk").is_err());
        let (cfg, _) = L2Config::from_ini(&Ini::parse("[agent]\ntunnel_types = vxlan\n"), "h").unwrap();
        assert!(!cfg.tunneling(), "no local_ip, no tunnels");
        assert_eq!(cfg.report_configurations(0)["tunnel_types"], serde_json::json!([]));
    }
}
