//! The `Open_vSwitch` schema as Rust types: what to create (`*Spec`) and
//! what is read back (`*Info`, [`Interface`]). The operations using them are
//! in [`super::vsctl`], the Interface event stream in [`super::iface_monitor`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::datum::{Atom, Datum, Row};
use super::monitor::col_str;

/// `Bridge.datapath_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DatapathType {
    /// The kernel datapath (`system`, needs the openvswitch module).
    System,
    /// The userspace datapath (`netdev`).
    #[default]
    Netdev,
}

impl DatapathType {
    /// The OVSDB value.
    pub fn as_str(self) -> &'static str {
        match self {
            DatapathType::System => "system",
            DatapathType::Netdev => "netdev",
        }
    }
}

impl fmt::Display for DatapathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Bridge.fail_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// No flows are added by OVS itself when no controller is connected.
    Secure,
    /// Acts as a learning switch without a controller.
    Standalone,
}

impl FailMode {
    /// The OVSDB value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailMode::Secure => "secure",
            FailMode::Standalone => "standalone",
        }
    }
}

/// `Interface.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceType {
    /// An existing network device (empty `type`).
    System,
    /// An OVS internal port (a tap device with the netdev datapath).
    Internal,
    /// One end of a patch pair (`options:peer`).
    Patch,
    /// VXLAN tunnel.
    Vxlan,
    /// GRE tunnel.
    Gre,
    /// Geneve tunnel.
    Geneve,
    /// Any other type.
    Other(String),
}

impl InterfaceType {
    /// The OVSDB value.
    pub fn as_str(&self) -> &str {
        match self {
            InterfaceType::System => "",
            InterfaceType::Internal => "internal",
            InterfaceType::Patch => "patch",
            InterfaceType::Vxlan => "vxlan",
            InterfaceType::Gre => "gre",
            InterfaceType::Geneve => "geneve",
            InterfaceType::Other(s) => s,
        }
    }

    /// Parses the OVSDB value.
    pub fn parse(s: &str) -> InterfaceType {
        match s {
            "" | "system" => InterfaceType::System,
            "internal" => InterfaceType::Internal,
            "patch" => InterfaceType::Patch,
            "vxlan" => InterfaceType::Vxlan,
            "gre" => InterfaceType::Gre,
            "geneve" => InterfaceType::Geneve,
            o => InterfaceType::Other(o.to_string()),
        }
    }
}

/// Tunnel types of `br-tun` (Neutron's `tunnel_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelType {
    /// VXLAN (UDP 4789).
    Vxlan,
    /// GRE (IP protocol 47).
    Gre,
    /// Geneve (UDP 6081).
    Geneve,
}

impl TunnelType {
    /// The name as in Neutron config and OVS (`vxlan`, `gre`, `geneve`).
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelType::Vxlan => "vxlan",
            TunnelType::Gre => "gre",
            TunnelType::Geneve => "geneve",
        }
    }

    /// The interface type.
    pub fn interface_type(self) -> InterfaceType {
        match self {
            TunnelType::Vxlan => InterfaceType::Vxlan,
            TunnelType::Gre => InterfaceType::Gre,
            TunnelType::Geneve => InterfaceType::Geneve,
        }
    }

    /// Encapsulation overhead over IPv4 for the tenant MTU (as Neutron computes it).
    pub fn ipv4_overhead(self) -> u32 {
        match self {
            TunnelType::Vxlan => 50,
            TunnelType::Gre => 42,
            TunnelType::Geneve => 58,
        }
    }
}

impl fmt::Display for TunnelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether (and how long) to wait for ovs-vswitchd to apply a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Return once ovsdb-server committed (`ovs-vsctl --no-wait`).
    NoWait,
    /// Also wait until ovs-vswitchd reconfigured (`cur_cfg`), at most this long.
    Wait(Duration),
}

impl Default for Commit {
    fn default() -> Self {
        Commit::Wait(Duration::from_secs(10))
    }
}

/// A bridge to create or update.
#[derive(Debug, Clone, Default)]
pub struct BridgeSpec {
    /// Bridge name.
    pub name: String,
    /// `datapath_type`.
    pub datapath_type: Option<DatapathType>,
    /// `fail_mode`.
    pub fail_mode: Option<FailMode>,
    /// `protocols`, e.g. `OpenFlow13` (empty = leave unchanged / OVS default).
    pub protocols: Vec<String>,
    /// `other_config` keys to set.
    pub other_config: BTreeMap<String, String>,
    /// `external_ids` keys to set.
    pub external_ids: BTreeMap<String, String>,
}

impl BridgeSpec {
    /// A bridge named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        BridgeSpec { name: name.into(), ..Default::default() }
    }
    /// Sets `datapath_type`.
    pub fn datapath(mut self, d: DatapathType) -> Self {
        self.datapath_type = Some(d);
        self
    }
    /// Sets `fail_mode`.
    pub fn fail_mode(mut self, f: FailMode) -> Self {
        self.fail_mode = Some(f);
        self
    }
    /// Sets `protocols`.
    pub fn protocols(mut self, p: &[&str]) -> Self {
        self.protocols = p.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Sets one `other_config` key.
    pub fn other_config(mut self, k: &str, v: &str) -> Self {
        self.other_config.insert(k.into(), v.into());
        self
    }
    /// Sets one `external_ids` key.
    pub fn external_id(mut self, k: &str, v: &str) -> Self {
        self.external_ids.insert(k.into(), v.into());
        self
    }
}

/// An interface to create.
#[derive(Debug, Clone)]
pub struct InterfaceSpec {
    /// Interface name (also the device name for system/internal ports).
    pub name: String,
    /// `type`.
    pub kind: InterfaceType,
    /// `options` (peer, remote_ip, local_ip, key, dst_port, ...).
    pub options: BTreeMap<String, String>,
    /// `external_ids` (iface-id, attached-mac, iface-status, vm-uuid, ...).
    pub external_ids: BTreeMap<String, String>,
    /// `ofport_request`.
    pub ofport_request: Option<i64>,
    /// `mtu_request`.
    pub mtu_request: Option<i64>,
}

impl InterfaceSpec {
    /// An interface of the given type.
    pub fn new(name: impl Into<String>, kind: InterfaceType) -> Self {
        InterfaceSpec {
            name: name.into(),
            kind,
            options: BTreeMap::new(),
            external_ids: BTreeMap::new(),
            ofport_request: None,
            mtu_request: None,
        }
    }
    /// An existing network device.
    pub fn system(name: impl Into<String>) -> Self {
        Self::new(name, InterfaceType::System)
    }
    /// An OVS internal port.
    pub fn internal(name: impl Into<String>) -> Self {
        Self::new(name, InterfaceType::Internal)
    }
    /// A patch port whose peer is `peer`.
    pub fn patch(name: impl Into<String>, peer: &str) -> Self {
        Self::new(name, InterfaceType::Patch).option("peer", peer)
    }
    /// A flow-based tunnel port as Neutron creates them on `br-tun`:
    /// `options:key=flow, local_ip, remote_ip` (plus `df_default=true`,
    /// `in_key=flow`, `out_key=flow` implied by `key=flow`).
    pub fn tunnel(name: impl Into<String>, t: TunnelType, local_ip: &str, remote_ip: &str) -> Self {
        Self::new(name, t.interface_type())
            .option("key", "flow")
            .option("local_ip", local_ip)
            .option("remote_ip", remote_ip)
            .option("df_default", "true")
    }
    /// A VM port as os-vif plugs it: `external_ids:{iface-id, attached-mac, iface-status=active, vm-uuid}`.
    pub fn vm_port(name: impl Into<String>, kind: InterfaceType, port_id: &str, mac: &str, vm_uuid: &str) -> Self {
        Self::new(name, kind)
            .external_id("iface-id", port_id)
            .external_id("attached-mac", mac)
            .external_id("iface-status", "active")
            .external_id("vm-uuid", vm_uuid)
    }
    /// Sets an option.
    pub fn option(mut self, k: &str, v: &str) -> Self {
        self.options.insert(k.into(), v.into());
        self
    }
    /// Sets an external id.
    pub fn external_id(mut self, k: &str, v: &str) -> Self {
        self.external_ids.insert(k.into(), v.into());
        self
    }
    /// Requests an OpenFlow port number.
    pub fn ofport_request(mut self, n: i64) -> Self {
        self.ofport_request = Some(n);
        self
    }
    /// Requests an MTU.
    pub fn mtu_request(mut self, n: i64) -> Self {
        self.mtu_request = Some(n);
        self
    }

    pub(crate) fn row(&self) -> Row {
        let mut r = Row::new();
        r.insert("name".into(), Datum::scalar(self.name.as_str()));
        r.insert("type".into(), Datum::scalar(self.kind.as_str()));
        if !self.options.is_empty() {
            r.insert("options".into(), Datum::string_map(&self.options));
        }
        if !self.external_ids.is_empty() {
            r.insert("external_ids".into(), Datum::string_map(&self.external_ids));
        }
        if let Some(n) = self.ofport_request {
            r.insert("ofport_request".into(), Datum::scalar(n));
        }
        if let Some(n) = self.mtu_request {
            r.insert("mtu_request".into(), Datum::scalar(n));
        }
        r
    }
}

/// A port (one or more interfaces) to create.
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// Port name.
    pub name: String,
    /// Its interfaces (one, except for bonds).
    pub interfaces: Vec<InterfaceSpec>,
    /// Access VLAN (`tag`), e.g. the local VLAN of the port's network on `br-int`.
    pub tag: Option<u16>,
    /// Trunked VLANs.
    pub trunks: Vec<u16>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// `other_config` (Neutron keeps net_uuid, network_type, segmentation_id, tag here).
    pub other_config: BTreeMap<String, String>,
}

impl PortSpec {
    /// A port with a single interface of the same name.
    pub fn single(iface: InterfaceSpec) -> Self {
        PortSpec {
            name: iface.name.clone(),
            interfaces: vec![iface],
            tag: None,
            trunks: Vec::new(),
            external_ids: BTreeMap::new(),
            other_config: BTreeMap::new(),
        }
    }
    /// Sets the access VLAN.
    pub fn tag(mut self, tag: u16) -> Self {
        self.tag = Some(tag);
        self
    }
    /// Sets one `other_config` key.
    pub fn other_config(mut self, k: &str, v: &str) -> Self {
        self.other_config.insert(k.into(), v.into());
        self
    }

    pub(crate) fn row(&self, iface_refs: Vec<Atom>) -> Row {
        let mut r = Row::new();
        r.insert("name".into(), Datum::scalar(self.name.as_str()));
        r.insert("interfaces".into(), Datum::Set(iface_refs));
        if let Some(t) = self.tag {
            r.insert("tag".into(), Datum::scalar(i64::from(t)));
        }
        if !self.trunks.is_empty() {
            r.insert("trunks".into(), Datum::Set(self.trunks.iter().map(|t| Atom::Integer(i64::from(*t))).collect()));
        }
        if !self.external_ids.is_empty() {
            r.insert("external_ids".into(), Datum::string_map(&self.external_ids));
        }
        if !self.other_config.is_empty() {
            r.insert("other_config".into(), Datum::string_map(&self.other_config));
        }
        r
    }
}

/// A bridge as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeInfo {
    /// Row UUID.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// `datapath_type` ("" = system).
    pub datapath_type: String,
    /// `fail_mode` (None = standalone default).
    pub fail_mode: Option<String>,
    /// `protocols`.
    pub protocols: Vec<String>,
    /// Port UUIDs.
    pub ports: Vec<String>,
    /// `other_config`.
    pub other_config: BTreeMap<String, String>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

impl BridgeInfo {
    pub(crate) fn from_row(r: &Row) -> BridgeInfo {
        BridgeInfo {
            uuid: r.get("_uuid").and_then(|d| d.first()).map(|a| a.to_string()).unwrap_or_default(),
            name: col_str(r, "name"),
            datapath_type: col_str(r, "datapath_type"),
            fail_mode: r.get("fail_mode").and_then(Datum::as_str).map(str::to_string),
            protocols: r.get("protocols").map(Datum::strings).unwrap_or_default(),
            ports: r.get("ports").map(Datum::uuids).unwrap_or_default(),
            other_config: r.get("other_config").map(Datum::to_string_map).unwrap_or_default(),
            external_ids: r.get("external_ids").map(Datum::to_string_map).unwrap_or_default(),
        }
    }
}

/// A port as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct PortInfo {
    /// Row UUID.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Access VLAN.
    pub tag: Option<u16>,
    /// Interface UUIDs.
    pub interfaces: Vec<String>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// `other_config`.
    pub other_config: BTreeMap<String, String>,
}

impl PortInfo {
    pub(crate) fn from_row(r: &Row) -> PortInfo {
        PortInfo {
            uuid: r.get("_uuid").and_then(|d| d.first()).map(|a| a.to_string()).unwrap_or_default(),
            name: col_str(r, "name"),
            tag: r.get("tag").and_then(Datum::as_i64).and_then(|t| u16::try_from(t).ok()),
            interfaces: r.get("interfaces").map(Datum::uuids).unwrap_or_default(),
            external_ids: r.get("external_ids").map(Datum::to_string_map).unwrap_or_default(),
            other_config: r.get("other_config").map(Datum::to_string_map).unwrap_or_default(),
        }
    }
}

/// An interface as read back or reported by the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Row UUID.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Type.
    pub kind: InterfaceType,
    /// OpenFlow port number (None until ovs-vswitchd assigned it; -1 on failure).
    pub ofport: Option<i64>,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// `options`.
    pub options: BTreeMap<String, String>,
    /// `mac_in_use`.
    pub mac_in_use: Option<String>,
    /// `error` (why ovs-vswitchd could not open it).
    pub error: Option<String>,
}

/// The Interface columns read by the helpers and the monitor.
pub const INTERFACE_COLUMNS: &[&str] = &["name", "type", "ofport", "external_ids", "options", "mac_in_use", "error"];

impl Interface {
    /// Builds from a row (missing columns are defaults).
    pub fn from_row(uuid: &str, r: &Row) -> Interface {
        Interface {
            uuid: uuid.to_string(),
            name: col_str(r, "name"),
            kind: InterfaceType::parse(&col_str(r, "type")),
            ofport: r.get("ofport").and_then(Datum::as_i64),
            external_ids: r.get("external_ids").map(Datum::to_string_map).unwrap_or_default(),
            options: r.get("options").map(Datum::to_string_map).unwrap_or_default(),
            mac_in_use: r.get("mac_in_use").and_then(Datum::as_str).map(str::to_string),
            error: r.get("error").and_then(Datum::as_str).map(str::to_string),
        }
    }

    /// A usable OpenFlow port number (assigned and not -1).
    pub fn valid_ofport(&self) -> Option<u32> {
        self.ofport.filter(|p| *p > 0).and_then(|p| u32::try_from(p).ok())
    }

    /// `external_ids:iface-id` (the Neutron port UUID), if set.
    pub fn iface_id(&self) -> Option<&str> {
        self.external_ids.get("iface-id").map(String::as_str)
    }
}
