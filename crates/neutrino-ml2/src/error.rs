//! The core plugin's errors and their Neutron faults.

use neutrino_lib::Fault;

/// What the core plugin refuses, named after Neutron's exceptions.
#[derive(Debug, thiserror::Error)]
pub enum Ml2Error {
    /// 404.
    #[error("Network {0} could not be found.")]
    NetworkNotFound(String),
    /// 404.
    #[error("Subnet {0} could not be found.")]
    SubnetNotFound(String),
    /// 404.
    #[error("Port {0} could not be found.")]
    PortNotFound(String),
    /// 404.
    #[error("Security group {0} does not exist")]
    SecurityGroupNotFound(String),
    /// 404.
    #[error("Security group rule {0} does not exist")]
    SecurityGroupRuleNotFound(String),
    /// 404.
    #[error("Subnet pool {0} could not be found.")]
    SubnetPoolNotFound(String),
    /// 404.
    #[error("Address scope {0} could not be found.")]
    AddressScopeNotFound(String),
    /// 404.
    #[error("Segment {0} could not be found.")]
    SegmentNotFound(String),
    /// 409: the network still has ports.
    #[error("Unable to complete operation on network {0}. There are one or more ports still in use on the network.")]
    NetworkInUse(String),
    /// 409: the subnet still has allocations.
    #[error("Unable to complete operation on subnet {id}: {reason}.")]
    SubnetInUse {
        /// Subnet.
        id: String,
        /// Why.
        reason: String,
    },
    /// 409.
    #[error("Unable to complete operation for network {net}. The mac address {mac} is in use.")]
    MacAddressInUse {
        /// Network.
        net: String,
        /// MAC.
        mac: String,
    },
    /// 409.
    #[error("Unable to complete operation for {net}. The IP address {ip} is in use.")]
    IpAddressInUse {
        /// Network.
        net: String,
        /// Address.
        ip: String,
    },
    /// 400.
    #[error("Invalid input for operation: {0}.")]
    InvalidInput(String),
    /// 400: a fixed IP names a subnet of another network.
    #[error("Invalid input for operation: Failed to create port on network {0}, because fixed_ips included invalid subnet {1}.")]
    InvalidSubnetForNetwork(String, String),
    /// 400.
    #[error("Bad {resource} request: {msg}.")]
    BadRequest {
        /// Resource.
        resource: &'static str,
        /// Message.
        msg: String,
    },
    /// 409 the segment is held by another network.
    #[error("{0}")]
    SegmentInUse(String),
    /// 503 no tenant segment left.
    #[error("Unable to create the network. No tenant network is available for allocation.")]
    NoNetworkAvailable,
    /// 409.
    #[error("Security Group {id} {reason}.")]
    SecurityGroupInUse {
        /// Group.
        id: String,
        /// Why.
        reason: String,
    },
    /// 409 (e.g. stateful and stateless groups on one port).
    #[error("Error {0} while attempting the operation.")]
    SecurityGroupConflict(String),
    /// 409 a network's MTU is too small for its subnets.
    #[error("MTU of {net} is not valid, subnet requires a minimum of {mtu}")]
    NetworkMTUSubnetConflict {
        /// Network.
        net: String,
        /// The minimum MTU.
        mtu: i64,
    },
    /// 409.
    #[error("Security group rule already exists. Rule id is {0}.")]
    SecurityGroupRuleExists(String),
    /// 409.
    #[error("Insufficient rights for removing default security group.")]
    SecurityGroupCannotRemoveDefault,
    /// 409.
    #[error("Updating default security group not allowed.")]
    SecurityGroupCannotUpdateDefault,
    /// 409 quota.
    #[error("Quota exceeded for resources: ['{0}'].")]
    OverQuota(String),
    /// 409 a subnet CIDR overlaps another on the network.
    #[error("Invalid input for operation: Requested subnet with cidr: {cidr} for network: {net} overlaps with another subnet.")]
    OverlappingCidr {
        /// CIDR.
        cidr: String,
        /// Network.
        net: String,
    },
    /// Anything else with its own Neutron type and status.
    #[error("{0}")]
    Fault(Fault),
    /// IPAM refused.
    #[error(transparent)]
    Ipam(#[from] neutrino_ipam::IpamError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] neutrino_store::StoreError),
}

impl From<Ml2Error> for Fault {
    fn from(e: Ml2Error) -> Fault {
        let msg = e.to_string();
        use neutrino_lib::Fault as F;
        use Ml2Error::*;
        match e {
            NetworkNotFound(_) => F::not_found("NetworkNotFound", msg),
            SubnetNotFound(_) => F::not_found("SubnetNotFound", msg),
            PortNotFound(_) => F::not_found("PortNotFound", msg),
            SecurityGroupNotFound(_) => F::not_found("SecurityGroupNotFound", msg),
            SecurityGroupRuleNotFound(_) => F::not_found("SecurityGroupRuleNotFound", msg),
            SubnetPoolNotFound(_) => F::not_found("SubnetPoolNotFound", msg),
            AddressScopeNotFound(_) => F::not_found("AddressScopeNotFound", msg),
            SegmentNotFound(_) => F::not_found("SegmentNotFound", msg),
            NetworkInUse(_) => F::conflict("NetworkInUse", msg),
            SubnetInUse { .. } => F::conflict("SubnetInUse", msg),
            MacAddressInUse { .. } => F::conflict("MacAddressInUse", msg),
            IpAddressInUse { .. } => F::conflict("IpAddressInUse", msg),
            InvalidInput(_) | InvalidSubnetForNetwork(..) => F::new(400, "InvalidInput", msg),
            BadRequest { .. } => F::new(400, "BadRequest", msg),
            SegmentInUse(_) => F::conflict("SegmentationIdInUse", msg),
            NoNetworkAvailable => F::unavailable("NoNetworkAvailable", msg),
            SecurityGroupInUse { .. } => F::conflict("SecurityGroupInUse", msg),
            SecurityGroupConflict(_) => F::conflict("SecurityGroupConflict", msg),
            NetworkMTUSubnetConflict { .. } => F::conflict("NetworkMTUSubnetConflict", msg),
            SecurityGroupRuleExists(_) => F::conflict("SecurityGroupRuleExists", msg),
            SecurityGroupCannotRemoveDefault => F::conflict("SecurityGroupCannotRemoveDefault", msg),
            SecurityGroupCannotUpdateDefault => F::conflict("SecurityGroupCannotUpdateDefault", msg),
            OverQuota(_) => F::conflict("OverQuota", msg),
            OverlappingCidr { .. } => F::new(400, "InvalidInput", msg),
            Ml2Error::Fault(f) => f,
            Ipam(e) => e.into(),
            Store(e) => e.into(),
        }
    }
}

/// Shorthand for `InvalidInput`.
pub fn invalid(msg: impl Into<String>) -> Ml2Error {
    Ml2Error::InvalidInput(msg.into())
}

/// Result type of the plugin internals.
pub type Result<T> = std::result::Result<T, Ml2Error>;
