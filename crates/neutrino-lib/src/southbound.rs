//! The payloads of the southbound protocol between the server and the
//! agents (see docs/southbound.md). Shared so both sides agree by type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Method names.
pub mod methods {
    /// Agent heartbeat and registration.
    pub const REPORT_STATE: &str = "report_state";
    /// Ports bound to a host.
    pub const GET_PORTS_ON_HOST: &str = "get_ports_on_host";
    /// Details of devices (ports).
    pub const GET_DEVICES_DETAILS_LIST: &str = "get_devices_details_list";
    /// Devices wired/unwired.
    pub const UPDATE_DEVICE_LIST: &str = "update_device_list";
    /// Tunnel endpoint registration.
    pub const TUNNEL_SYNC: &str = "tunnel_sync";
    /// Remote endpoints of networks.
    pub const GET_NETWORK_PEERS: &str = "get_network_peers";
    /// Security groups of devices.
    pub const SECURITY_GROUP_INFO_FOR_DEVICES: &str = "security_group_info_for_devices";
    /// Networks a DHCP agent serves.
    pub const GET_ACTIVE_NETWORKS: &str = "get_active_networks";
    /// One network's DHCP data.
    pub const GET_NETWORK_INFO: &str = "get_network_info";
    /// The DHCP port of an agent on a network.
    pub const CREATE_DHCP_PORT: &str = "create_dhcp_port";
    /// Release a DHCP port.
    pub const RELEASE_DHCP_PORT: &str = "release_dhcp_port";
    /// DHCP is serving these ports.
    pub const DHCP_READY_ON_PORTS: &str = "dhcp_ready_on_ports";
    /// Routers an L3 agent hosts.
    pub const GET_ROUTER_IDS: &str = "get_router_ids";
    /// Full router data.
    pub const SYNC_ROUTERS: &str = "sync_routers";
    /// Floating IP statuses from the L3 agent.
    pub const UPDATE_FLOATINGIP_STATUSES: &str = "update_floatingip_statuses";
    /// Notification: a port changed.
    pub const PORT_UPDATE: &str = "port_update";
    /// Notification: a port was deleted.
    pub const PORT_DELETE: &str = "port_delete";
    /// Notification: a network changed.
    pub const NETWORK_UPDATE: &str = "network_update";
    /// Notification: a network was deleted.
    pub const NETWORK_DELETE: &str = "network_delete";
    /// Notification: security group rules changed.
    pub const SG_RULE_UPDATED: &str = "security_groups_rule_updated";
    /// Notification: security group membership changed.
    pub const SG_MEMBER_UPDATED: &str = "security_groups_member_updated";
    /// Notification: peers of a network changed.
    pub const PEERS_CHANGED: &str = "peers_changed";
    /// Notification: a tunnel endpoint appeared.
    pub const TUNNEL_UPDATE: &str = "tunnel_update";
    /// To a DHCP agent: reload a network.
    pub const NETWORK_CHANGED: &str = "network_changed";
    /// To a DHCP agent: stop serving a network.
    pub const NETWORK_REMOVED: &str = "network_removed";
    /// To an L3 agent: resync routers.
    pub const ROUTERS_UPDATED: &str = "routers_updated";
    /// To an L3 agent: drop a router.
    pub const ROUTER_REMOVED: &str = "router_removed";
}

/// Notification topics (server → agents), as Neutron names them.
pub mod topics {
    /// Port updates.
    pub const PORT_UPDATE: &str = "q-agent-notifier-port-update";
    /// Port deletes.
    pub const PORT_DELETE: &str = "q-agent-notifier-port-delete";
    /// Network updates.
    pub const NETWORK_UPDATE: &str = "q-agent-notifier-network-update";
    /// Network deletes.
    pub const NETWORK_DELETE: &str = "q-agent-notifier-network-delete";
    /// Security group changes.
    pub const SECURITY_GROUP: &str = "q-agent-notifier-securitygroup-update";
    /// Peer (l2population) changes.
    pub const L2POP: &str = "q-agent-notifier-l2population-update";
    /// Tunnel endpoints.
    pub const TUNNEL: &str = "q-agent-notifier-tunnel-update";
}

/// What an agent reports about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentState {
    /// e.g. "Open vSwitch agent".
    pub agent_type: String,
    /// The binary name.
    pub binary: String,
    /// The host.
    pub host: String,
    /// Its topic ("N/A" for L2 agents).
    pub topic: String,
    /// Availability zone (DHCP and L3 agents).
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Configuration: bridge_mappings, tunnel_types, tunneling_ip, datapath_type, …
    #[serde(default)]
    pub configurations: Value,
    /// First report after a start.
    #[serde(default)]
    pub start_flag: bool,
}

/// A port by id, with enough to route a notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortRef {
    /// Port id.
    pub id: String,
    /// Network id.
    pub network_id: String,
    /// Bound host ("" when unbound).
    #[serde(default)]
    pub host: String,
    /// Revision number.
    #[serde(default)]
    pub revision_number: i64,
}

/// An address of a port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FixedIp {
    /// Subnet id.
    pub subnet_id: String,
    /// Address.
    pub ip_address: String,
}

/// An allowed address pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressPair {
    /// IP or CIDR.
    pub ip_address: String,
    /// MAC (defaults to the port's).
    pub mac_address: String,
}

/// The segment a port is bound to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BoundSegment {
    /// local, flat, vlan, gre, vxlan, geneve.
    pub network_type: String,
    /// For flat and vlan.
    pub physical_network: Option<String>,
    /// VLAN id / VNI / key.
    pub segmentation_id: Option<i64>,
}

/// Everything an L2 agent needs to wire one port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceDetails {
    /// The port id (also the OVS iface-id).
    pub port_id: String,
    /// Network id.
    pub network_id: String,
    /// The bound segment (absent when the port is not bound to this host).
    pub segment: Option<BoundSegment>,
    /// Host the port is bound to.
    pub host: String,
    /// Network MTU.
    pub mtu: i64,
    /// MAC.
    pub mac_address: String,
    /// Addresses.
    pub fixed_ips: Vec<FixedIp>,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Device owner.
    pub device_owner: String,
    /// Port security.
    pub port_security_enabled: bool,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// Allowed address pairs.
    pub allowed_address_pairs: Vec<AddressPair>,
    /// Revision number.
    pub revision_number: i64,
}

/// One remote host's endpoints on a network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Peer {
    /// The host.
    pub host: String,
    /// Its tunnel endpoint (tunnel networks).
    pub tunnel_ip: Option<String>,
    /// Its ports there: MAC and addresses (for unicast flows and ARP responses).
    pub ports: Vec<PeerPort>,
}

/// A remote port.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerPort {
    /// MAC.
    pub mac_address: String,
    /// Addresses.
    pub ip_addresses: Vec<String>,
}

/// A network's segment and its peers as seen from one host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkPeers {
    /// The segment used on tunnels/physnets.
    pub segment: Option<BoundSegment>,
    /// MTU.
    pub mtu: i64,
    /// Remote hosts with ports on the network.
    pub peers: Vec<Peer>,
}

/// A security group rule as agents need it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SgRule {
    /// Rule id.
    pub id: String,
    /// ingress / egress.
    pub direction: String,
    /// IPv4 / IPv6.
    pub ethertype: String,
    /// Protocol name or number, None for any.
    pub protocol: Option<String>,
    /// Port range (or ICMP type).
    pub port_range_min: Option<i64>,
    /// Port range (or ICMP code).
    pub port_range_max: Option<i64>,
    /// Remote CIDR.
    pub remote_ip_prefix: Option<String>,
    /// Remote group (its members' addresses are in `sg_member_ips`).
    pub remote_group_id: Option<String>,
}

/// A security group: statefulness and rules.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SgInfo {
    /// Stateful (conntrack) or not.
    pub stateful: bool,
    /// Rules.
    pub rules: Vec<SgRule>,
}

/// Security groups of a set of devices: rules plus membership, never
/// expanded per address.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroupInfo {
    /// Per device: its groups and addresses.
    pub devices: BTreeMap<String, DeviceDetails>,
    /// The groups used by those devices.
    pub security_groups: BTreeMap<String, SgInfo>,
    /// Member addresses of the groups named as remote groups: group → {IPv4: [...], IPv6: [...]}.
    pub sg_member_ips: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// What a DHCP agent serves on one network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DhcpNetwork {
    /// Network id.
    pub id: String,
    /// MTU.
    pub mtu: i64,
    /// DNS domain.
    pub dns_domain: String,
    /// Subnets (full documents).
    pub subnets: Vec<Value>,
    /// Ports (full documents).
    pub ports: Vec<Value>,
}

/// What an L3 agent needs to build one router.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouterInfo {
    /// Router id.
    pub id: String,
    /// Administrative state.
    pub admin_state_up: bool,
    /// SNAT on the gateway.
    pub enable_snat: bool,
    /// The gateway port with its subnets, if any.
    pub gw_port: Option<RouterPort>,
    /// Interface ports with their subnets.
    pub interfaces: Vec<RouterPort>,
    /// Extra routes.
    pub routes: Vec<Value>,
    /// Floating IPs mapped through this router.
    pub floating_ips: Vec<FloatingIpInfo>,
}

/// A router port and its subnets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RouterPort {
    /// Port id.
    pub id: String,
    /// Network id.
    pub network_id: String,
    /// MAC.
    pub mac_address: String,
    /// Addresses with their subnets.
    pub fixed_ips: Vec<FixedIp>,
    /// The subnets: id, cidr, gateway_ip.
    pub subnets: Vec<Value>,
    /// MTU.
    pub mtu: i64,
}

/// A floating IP as the L3 agent needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FloatingIpInfo {
    /// Id.
    pub id: String,
    /// External address.
    pub floating_ip_address: String,
    /// Internal address.
    pub fixed_ip_address: String,
    /// Internal port.
    pub port_id: String,
}
