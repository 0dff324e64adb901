//! The resources neutrino serves, attribute by attribute, after neutron-lib's
//! API definitions and the extensions neutrino implements.

pub mod address_scope;
pub mod agent;
pub mod metering;
pub mod network;
pub mod port;
pub mod quota;
pub mod router;
pub mod security_group;
pub mod segment;
pub mod subnet;
pub mod subnetpool;

/// Device owner of DHCP ports.
pub const DEVICE_OWNER_DHCP: &str = "network:dhcp";
/// Device owner of router interface ports.
pub const DEVICE_OWNER_ROUTER_INTF: &str = "network:router_interface";
/// Device owner of router gateway ports.
pub const DEVICE_OWNER_ROUTER_GW: &str = "network:router_gateway";
/// Device owner of floating IP ports.
pub const DEVICE_OWNER_FLOATINGIP: &str = "network:floatingip";
/// Device owner of distributed router interface ports.
pub const DEVICE_OWNER_DVR_INTERFACE: &str = "network:router_interface_distributed";
/// Device owner of HA router replicated interfaces.
pub const DEVICE_OWNER_HA_REPLICATED_INT: &str = "network:ha_router_replicated_interface";
/// Prefix of Nova's device owners.
pub const DEVICE_OWNER_COMPUTE_PREFIX: &str = "compute:";
/// Device owner prefix of network-owned ports.
pub const DEVICE_OWNER_NETWORK_PREFIX: &str = "network:";
