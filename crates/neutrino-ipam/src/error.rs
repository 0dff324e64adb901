//! IPAM errors, mapped to Neutron's faults.

use neutrino_lib::Fault;

/// What IPAM can refuse.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// No free address left on the network's subnets.
    #[error("No more IP addresses available on network {network}.")]
    Exhausted {
        /// Network id.
        network: String,
    },
    /// The requested address is already in use.
    #[error("IP address {ip} already allocated in subnet {subnet}")]
    AlreadyAllocated {
        /// The address.
        ip: String,
        /// Subnet id.
        subnet: String,
    },
    /// The address is not a valid host address of the subnet.
    #[error("IP address {ip} is not a valid IP for the specified subnet.")]
    InvalidIpForSubnet {
        /// The address.
        ip: String,
    },
    /// An allocation pool is malformed.
    #[error("The allocation pool {pool} spanning beyond the subnet cidr {cidr}.")]
    PoolOutOfSubnet {
        /// The pool.
        pool: String,
        /// The subnet.
        cidr: String,
    },
    /// An allocation pool is invalid.
    #[error("The allocation pool {pool} is not valid.")]
    InvalidPool {
        /// The pool.
        pool: String,
    },
    /// Two pools overlap.
    #[error("Found overlapping allocation pools: {a} and {b} for subnet {cidr}.")]
    OverlappingPools {
        /// First pool.
        a: String,
        /// Second pool.
        b: String,
        /// The subnet.
        cidr: String,
    },
    /// The gateway is inside a pool.
    #[error("Gateway ip {gateway} conflicts with allocation pool {pool}.")]
    GatewayInPool {
        /// Gateway.
        gateway: String,
        /// Pool.
        pool: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] neutrino_store::StoreError),
}

impl From<IpamError> for Fault {
    fn from(e: IpamError) -> Fault {
        let msg = e.to_string();
        match e {
            IpamError::Exhausted { .. } => Fault::conflict("IpAddressGenerationFailure", msg),
            IpamError::AlreadyAllocated { .. } => Fault::conflict("IpAddressAlreadyAllocated", msg),
            IpamError::InvalidIpForSubnet { .. } => Fault::new(400, "InvalidIpForSubnet", msg),
            IpamError::PoolOutOfSubnet { .. } => Fault::new(400, "OutOfBoundsAllocationPool", msg),
            IpamError::InvalidPool { .. } => Fault::new(400, "InvalidAllocationPool", msg),
            IpamError::OverlappingPools { .. } => Fault::new(400, "OverlappingAllocationPools", msg),
            IpamError::GatewayInPool { .. } => Fault::conflict("GatewayConflictWithAllocationPools", msg),
            IpamError::Store(e) => e.into(),
        }
    }
}
