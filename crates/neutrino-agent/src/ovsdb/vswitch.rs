//! Typed helpers over the `Open_vSwitch` schema: bridges, ports, interfaces,
//! the root row's `external_ids`/`other_config`, and an Interface monitor.
//!
//! These play the role of `ovs-vsctl` (and of ovsdbapp's `add_br`,
//! `add_port`, `db_set`) but as single OVSDB transactions.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::client::{inserted_uuid, rows_of, Client};
use super::datum::{Atom, Datum, Row};
use super::jsonrpc::Endpoint;
use super::monitor::{col_str, MonitorEvent, MonitorMethod, MonitorSpec, RowChange, TableMonitor};
use super::ops::{Condition, Mutation, Operation};
use crate::error::{Error, Result};

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

    fn row(&self) -> Row {
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

    fn row(&self, iface_refs: Vec<Atom>) -> Row {
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
    fn from_row(r: &Row) -> BridgeInfo {
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
    fn from_row(r: &Row) -> PortInfo {
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

fn uuid_of(r: &Row) -> String {
    r.get("_uuid").and_then(|d| d.first()).map(|a| a.to_string()).unwrap_or_default()
}

fn map_update_ops(table: &str, cond: Vec<Condition>, column: &str, kv: &BTreeMap<String, String>) -> Vec<Operation> {
    if kv.is_empty() {
        return Vec::new();
    }
    // "insert" does not overwrite existing keys: delete the keys first.
    vec![
        Operation::mutate(
            table,
            cond.clone(),
            vec![Mutation::delete(column, Datum::Set(kv.keys().map(|k| Atom::String(k.clone())).collect()))],
        ),
        Operation::mutate(table, cond, vec![Mutation::insert(column, Datum::string_map(kv))]),
    ]
}

impl Client {
    async fn commit(&self, ops: &[Operation], commit: Commit) -> Result<Vec<serde_json::Value>> {
        match commit {
            Commit::NoWait => self.transact(ops).await,
            Commit::Wait(t) => self.transact_and_wait(ops, t).await,
        }
    }

    /// Creates the `Open_vSwitch` root row if the database has none (`ovs-vsctl init`).
    /// Returns its UUID.
    pub async fn init_db(&self) -> Result<String> {
        let rows = self.select("Open_vSwitch", vec![], &["_uuid"]).await?;
        if let Some(r) = rows.first() {
            return Ok(uuid_of(r));
        }
        let res = self
            .transact(&[
                Operation::wait_absent("Open_vSwitch", vec![]),
                Operation::insert_named("Open_vSwitch", Row::new(), "root"),
            ])
            .await?;
        inserted_uuid(res.get(1)).ok_or_else(|| Error::Protocol("insert without uuid".into()))
    }

    /// Sets keys of `Open_vSwitch.external_ids` (other keys are kept).
    pub async fn set_ovs_external_ids(&self, kv: &BTreeMap<String, String>) -> Result<()> {
        self.transact(&map_update_ops("Open_vSwitch", vec![], "external_ids", kv)).await.map(|_| ())
    }

    /// Sets keys of `Open_vSwitch.other_config` (other keys are kept).
    pub async fn set_ovs_other_config(&self, kv: &BTreeMap<String, String>) -> Result<()> {
        self.transact(&map_update_ops("Open_vSwitch", vec![], "other_config", kv)).await.map(|_| ())
    }

    /// Reads `Open_vSwitch.external_ids`.
    pub async fn ovs_external_ids(&self) -> Result<BTreeMap<String, String>> {
        let rows = self.select("Open_vSwitch", vec![], &["external_ids"]).await?;
        Ok(rows.first().and_then(|r| r.get("external_ids")).map(Datum::to_string_map).unwrap_or_default())
    }

    /// Creates a bridge (with its internal port), or updates the given settings
    /// of an existing one (`--may-exist`). Returns the bridge UUID.
    pub async fn add_bridge(&self, spec: &BridgeSpec, commit: Commit) -> Result<String> {
        let existing = self.find_bridge(&spec.name).await?;
        let cond = vec![Condition::eq("name", spec.name.as_str())];
        let mut settings = Row::new();
        if let Some(d) = spec.datapath_type {
            settings.insert("datapath_type".into(), Datum::scalar(d.as_str()));
        }
        if let Some(f) = spec.fail_mode {
            settings.insert("fail_mode".into(), Datum::scalar(f.as_str()));
        }
        if !spec.protocols.is_empty() {
            settings.insert("protocols".into(), Datum::string_set(spec.protocols.iter().cloned()));
        }
        if let Some(b) = existing {
            let mut ops = Vec::new();
            if !settings.is_empty() {
                ops.push(Operation::update("Bridge", cond.clone(), settings));
            }
            ops.extend(map_update_ops("Bridge", cond.clone(), "other_config", &spec.other_config));
            ops.extend(map_update_ops("Bridge", cond, "external_ids", &spec.external_ids));
            if !ops.is_empty() {
                self.commit(&ops, commit).await?;
            }
            tracing::debug!(bridge = %spec.name, "bridge exists, settings updated");
            return Ok(b.uuid);
        }
        let mut brow = settings;
        brow.insert("name".into(), Datum::scalar(spec.name.as_str()));
        brow.insert("ports".into(), Datum::named_uuid("port"));
        if !spec.other_config.is_empty() {
            brow.insert("other_config".into(), Datum::string_map(&spec.other_config));
        }
        if !spec.external_ids.is_empty() {
            brow.insert("external_ids".into(), Datum::string_map(&spec.external_ids));
        }
        let iface = InterfaceSpec::internal(spec.name.as_str());
        let ops = vec![
            Operation::wait_absent("Bridge", cond),
            Operation::insert_named("Interface", iface.row(), "iface"),
            Operation::insert_named(
                "Port",
                PortSpec::single(iface.clone()).row(vec![Atom::NamedUuid("iface".into())]),
                "port",
            ),
            Operation::insert_named("Bridge", brow, "br"),
            Operation::mutate("Open_vSwitch", vec![], vec![Mutation::insert("bridges", Datum::named_uuid("br"))]),
        ];
        let res = self.commit(&ops, commit).await?;
        tracing::info!(bridge = %spec.name, "bridge created");
        inserted_uuid(res.get(3)).ok_or_else(|| Error::Protocol("bridge insert without uuid".into()))
    }

    /// Looks a bridge up by name.
    pub async fn find_bridge(&self, name: &str) -> Result<Option<BridgeInfo>> {
        let rows = self.select("Bridge", vec![Condition::eq("name", name)], &[]).await?;
        Ok(rows.first().map(BridgeInfo::from_row))
    }

    /// All bridges.
    pub async fn list_bridges(&self) -> Result<Vec<BridgeInfo>> {
        Ok(self.select("Bridge", vec![], &[]).await?.iter().map(BridgeInfo::from_row).collect())
    }

    /// Deletes a bridge (and, by garbage collection, its ports and interfaces).
    /// Returns false if it did not exist (`--if-exists`).
    pub async fn del_bridge(&self, name: &str, commit: Commit) -> Result<bool> {
        let Some(b) = self.find_bridge(name).await? else {
            return Ok(false);
        };
        self.commit(
            &[Operation::mutate("Open_vSwitch", vec![], vec![Mutation::delete("bridges", Datum::uuid(&b.uuid))])],
            commit,
        )
        .await?;
        tracing::info!(bridge = name, "bridge deleted");
        Ok(true)
    }

    /// Adds a port to `bridge`, or, if a port of that name is already on that
    /// bridge, updates its tag and its interfaces' type/options/external_ids
    /// (`--may-exist`). A port of that name on another bridge is an error.
    /// Returns the port UUID.
    pub async fn add_port(&self, bridge: &str, port: &PortSpec, commit: Commit) -> Result<String> {
        self.add_ports(bridge, std::slice::from_ref(port), commit)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("add_ports returned no uuid".into()))
    }

    /// Adds several ports to `bridge` in one transaction (see [`Client::add_port`]).
    /// Returns the port UUIDs in order.
    pub async fn add_ports(&self, bridge: &str, ports: &[PortSpec], commit: Commit) -> Result<Vec<String>> {
        if ports.is_empty() {
            return Ok(Vec::new());
        }
        let br =
            self.find_bridge(bridge).await?.ok_or_else(|| Error::NotFound { kind: "bridge", name: bridge.into() })?;
        // Which of the ports exist already, and where?
        let existing: BTreeMap<String, PortInfo> = if ports.len() == 1 {
            self.select("Port", vec![Condition::eq("name", ports[0].name.as_str())], &[])
                .await?
                .iter()
                .map(|r| (col_str(r, "name"), PortInfo::from_row(r)))
                .collect()
        } else {
            self.select("Port", vec![], &[])
                .await?
                .iter()
                .map(|r| (col_str(r, "name"), PortInfo::from_row(r)))
                .collect()
        };
        let mut ops = Vec::new();
        // (index in result of the port insert) or the known uuid
        let mut slots: Vec<std::result::Result<usize, String>> = Vec::new();
        let mut new_refs = Vec::new();
        for (pi, p) in ports.iter().enumerate() {
            if let Some(e) = existing.get(&p.name) {
                if !br.ports.contains(&e.uuid) {
                    return Err(Error::AlreadyExists { kind: "port (on another bridge)", name: p.name.clone() });
                }
                let pc = vec![Condition::uuid(&e.uuid)];
                let mut prow = Row::new();
                prow.insert("tag".into(), p.tag.map(|t| Datum::scalar(i64::from(t))).unwrap_or_default());
                ops.push(Operation::update("Port", pc.clone(), prow));
                ops.extend(map_update_ops("Port", pc.clone(), "external_ids", &p.external_ids));
                ops.extend(map_update_ops("Port", pc, "other_config", &p.other_config));
                for i in &p.interfaces {
                    let ic = vec![Condition::eq("name", i.name.as_str())];
                    let mut irow = Row::new();
                    irow.insert("type".into(), Datum::scalar(i.kind.as_str()));
                    if !i.options.is_empty() {
                        irow.insert("options".into(), Datum::string_map(&i.options));
                    }
                    ops.push(Operation::update("Interface", ic.clone(), irow));
                    ops.extend(map_update_ops("Interface", ic, "external_ids", &i.external_ids));
                }
                slots.push(Err(e.uuid.clone()));
                continue;
            }
            let mut refs = Vec::new();
            for (ii, i) in p.interfaces.iter().enumerate() {
                let n = format!("i{pi}_{ii}");
                ops.push(Operation::insert_named("Interface", i.row(), n.clone()));
                refs.push(Atom::NamedUuid(n));
            }
            let pn = format!("p{pi}");
            slots.push(Ok(ops.len()));
            ops.push(Operation::insert_named("Port", p.row(refs), pn.clone()));
            new_refs.push(Atom::NamedUuid(pn));
        }
        let mutate_idx = ops.len();
        if !new_refs.is_empty() {
            ops.push(Operation::mutate(
                "Bridge",
                vec![Condition::uuid(&br.uuid)],
                vec![Mutation::insert("ports", Datum::Set(new_refs))],
            ));
        }
        let res = self.commit(&ops, commit).await?;
        if mutate_idx < res.len() && res[mutate_idx].get("count").and_then(serde_json::Value::as_i64) == Some(0) {
            return Err(Error::NotFound { kind: "bridge", name: bridge.into() });
        }
        tracing::debug!(bridge, ports = ports.len(), "ports added");
        slots
            .into_iter()
            .map(|s| match s {
                Ok(i) => inserted_uuid(res.get(i)).ok_or_else(|| Error::Protocol("port insert without uuid".into())),
                Err(u) => Ok(u),
            })
            .collect()
    }

    /// Deletes ports by name from whatever bridge holds them. Returns how many existed.
    pub async fn del_ports(&self, names: &[&str], commit: Commit) -> Result<usize> {
        let rows = if names.len() == 1 {
            self.select("Port", vec![Condition::eq("name", names[0])], &["_uuid", "name"]).await?
        } else {
            self.select("Port", vec![], &["_uuid", "name"]).await?
        };
        let uuids: Vec<Atom> = rows
            .iter()
            .filter(|r| names.contains(&col_str(r, "name").as_str()))
            .map(|r| Atom::Uuid(uuid_of(r)))
            .collect();
        if uuids.is_empty() {
            return Ok(0);
        }
        let n = uuids.len();
        let mut ops = Vec::new();
        for u in &uuids {
            ops.push(Operation::mutate(
                "Bridge",
                vec![Condition::includes("ports", Datum::Set(vec![u.clone()]))],
                vec![Mutation::delete("ports", Datum::Set(vec![u.clone()]))],
            ));
        }
        self.commit(&ops, commit).await?;
        tracing::debug!(ports = n, "ports deleted");
        Ok(n)
    }

    /// Deletes one port by name. Returns false if it did not exist.
    pub async fn del_port(&self, name: &str, commit: Commit) -> Result<bool> {
        Ok(self.del_ports(&[name], commit).await? > 0)
    }

    /// Looks a port up by name.
    pub async fn find_port(&self, name: &str) -> Result<Option<PortInfo>> {
        let rows = self.select("Port", vec![Condition::eq("name", name)], &[]).await?;
        Ok(rows.first().map(PortInfo::from_row))
    }

    /// The ports of a bridge.
    pub async fn list_ports(&self, bridge: &str) -> Result<Vec<PortInfo>> {
        let br =
            self.find_bridge(bridge).await?.ok_or_else(|| Error::NotFound { kind: "bridge", name: bridge.into() })?;
        let mut ports: Vec<PortInfo> = self
            .select("Port", vec![], &[])
            .await?
            .iter()
            .map(PortInfo::from_row)
            .filter(|p| br.ports.contains(&p.uuid))
            .collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ports)
    }

    /// Looks an interface up by name.
    pub async fn find_interface(&self, name: &str) -> Result<Option<Interface>> {
        let mut cols = INTERFACE_COLUMNS.to_vec();
        cols.push("_uuid");
        let rows = self.select("Interface", vec![Condition::eq("name", name)], &cols).await?;
        Ok(rows.first().map(|r| Interface::from_row(&uuid_of(r), r)))
    }

    /// All interfaces.
    pub async fn list_interfaces(&self) -> Result<Vec<Interface>> {
        let mut cols = INTERFACE_COLUMNS.to_vec();
        cols.push("_uuid");
        let rows = self.select("Interface", vec![], &cols).await?;
        Ok(rows.iter().map(|r| Interface::from_row(&uuid_of(r), r)).collect())
    }

    /// The OpenFlow port number of interface `name` (error if unassigned or -1).
    pub async fn ofport(&self, name: &str) -> Result<u32> {
        let i =
            self.find_interface(name).await?.ok_or_else(|| Error::NotFound { kind: "interface", name: name.into() })?;
        i.valid_ofport().ok_or_else(|| {
            Error::Invalid(format!("interface {name} has no valid ofport ({:?}, error {:?})", i.ofport, i.error))
        })
    }

    /// Sets keys of an interface's `external_ids` (others are kept).
    pub async fn set_interface_external_ids(&self, name: &str, kv: &BTreeMap<String, String>) -> Result<()> {
        let ops = map_update_ops("Interface", vec![Condition::eq("name", name)], "external_ids", kv);
        self.transact(&ops).await.map(|_| ())
    }

    /// Sets (or clears) a port's access VLAN.
    pub async fn set_port_tag(&self, name: &str, tag: Option<u16>) -> Result<()> {
        let mut r = Row::new();
        r.insert("tag".into(), tag.map(|t| Datum::scalar(i64::from(t))).unwrap_or_default());
        let res = self.transact(&[Operation::update("Port", vec![Condition::eq("name", name)], r)]).await?;
        if res.first().and_then(|v| v.get("count")).and_then(serde_json::Value::as_i64) == Some(0) {
            return Err(Error::NotFound { kind: "port", name: name.into() });
        }
        Ok(())
    }

    /// Reads rows of any table (escape hatch; columns empty = all).
    pub async fn rows(&self, table: &str, conditions: Vec<Condition>, columns: &[&str]) -> Result<Vec<Row>> {
        let r = self.transact(&[Operation::select(table, conditions, columns)]).await?;
        rows_of(r.first())
    }
}

/// An event of an [`InterfaceMonitor`].
#[derive(Debug, Clone)]
pub enum InterfaceEvent {
    /// An interface appeared (its `ofport` may still be unset).
    Added(Interface),
    /// An interface changed (e.g. got its `ofport`, or external_ids changed).
    Modified {
        /// Before.
        old: Interface,
        /// After.
        new: Interface,
    },
    /// An interface disappeared.
    Deleted(Interface),
    /// The initial snapshot (or a post-reconnect resync) has been delivered.
    Synced {
        /// True after a reconnection.
        reconnect: bool,
    },
    /// The connection to ovsdb-server was lost; reconnecting.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// Follows the `Interface` table: the event source that wires VM ports.
#[derive(Debug)]
pub struct InterfaceMonitor {
    inner: TableMonitor,
}

impl InterfaceMonitor {
    /// Monitors all interfaces with `monitor_cond`.
    pub async fn start(endpoint: Endpoint) -> Result<InterfaceMonitor> {
        Self::start_with(endpoint, MonitorMethod::MonitorCond, None).await
    }

    /// Monitors with a chosen method and optional server-side condition
    /// (e.g. only interfaces with an `iface-id`).
    pub async fn start_with(
        endpoint: Endpoint,
        method: MonitorMethod,
        conditions: Option<Vec<Condition>>,
    ) -> Result<InterfaceMonitor> {
        let mut spec = MonitorSpec::new("Interface", INTERFACE_COLUMNS).method(method);
        if let Some(c) = conditions {
            spec = spec.conditions(c);
        }
        Ok(InterfaceMonitor { inner: TableMonitor::start(endpoint, spec).await? })
    }

    fn convert(e: MonitorEvent) -> InterfaceEvent {
        match e {
            MonitorEvent::Row(r) => {
                let old = r.old.as_ref().map(|o| Interface::from_row(&r.uuid, o));
                let new = r.new.as_ref().map(|n| Interface::from_row(&r.uuid, n));
                match (r.change, old, new) {
                    (RowChange::Insert, _, Some(n)) => InterfaceEvent::Added(n),
                    (RowChange::Modify, Some(o), Some(n)) => InterfaceEvent::Modified { old: o, new: n },
                    (_, Some(o), _) => InterfaceEvent::Deleted(o),
                    (_, None, n) => {
                        InterfaceEvent::Added(n.unwrap_or_else(|| Interface::from_row(&r.uuid, &Row::new())))
                    }
                }
            }
            MonitorEvent::Synced { reconnect } => InterfaceEvent::Synced { reconnect },
            MonitorEvent::Disconnected { reason } => InterfaceEvent::Disconnected { reason },
        }
    }

    /// The next event.
    pub async fn next(&mut self) -> Option<InterfaceEvent> {
        self.inner.next().await.map(Self::convert)
    }

    /// The next event, waiting at most `t`.
    pub async fn next_timeout(&mut self, t: Duration) -> Option<InterfaceEvent> {
        self.inner.next_timeout(t).await.map(Self::convert)
    }

    /// Waits (at most `t`) for an event satisfying `pred`, skipping others.
    pub async fn wait_for<F>(&mut self, t: Duration, mut pred: F) -> Result<InterfaceEvent>
    where
        F: FnMut(&InterfaceEvent) -> bool,
    {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Ok(Some(e)) => {
                    let e = Self::convert(e);
                    if pred(&e) {
                        return Ok(e);
                    }
                }
                Ok(None) => return Err(Error::Protocol("interface monitor ended".into())),
                Err(_) => return Err(Error::Timeout { what: "interface event".into(), after: t }),
            }
        }
    }

    /// The interfaces currently known.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.inner.rows().iter().map(|(u, r)| Interface::from_row(u, r)).collect()
    }
}
