//! The L3 plugin's errors, named after Neutron's exceptions.

use neutrino_lib::Fault;
use neutrino_ml2::Ml2Error;

/// What the L3 plugin refuses.
#[derive(Debug, thiserror::Error)]
pub enum L3Error {
    /// 404.
    #[error("Router {0} could not be found")]
    RouterNotFound(String),
    /// 404.
    #[error("Floating IP {0} could not be found")]
    FloatingIpNotFound(String),
    /// 409: the router still has interfaces.
    #[error("Router {0} still has ports")]
    RouterInUse(String),
    /// 400.
    #[error("Bad {resource} request: {msg}.")]
    BadRequest {
        /// `router` or `floatingip`.
        resource: &'static str,
        /// Why.
        msg: String,
    },
    /// 404 no interface on that subnet.
    #[error("Router {router} has no interface on subnet {subnet}")]
    InterfaceNotFoundForSubnet {
        /// Router.
        router: String,
        /// Subnet.
        subnet: String,
    },
    /// 404 no such interface port.
    #[error("Router {router} does not have an interface with id {port}")]
    InterfaceNotFound {
        /// Router.
        router: String,
        /// Port.
        port: String,
    },
    /// 409 a floating IP needs this interface.
    #[error("Router interface for subnet {subnet} on router {router} cannot be deleted, as it is required by one or more floating IPs.")]
    InterfaceInUseByFloatingIp {
        /// Router.
        router: String,
        /// Subnet.
        subnet: String,
    },
    /// 409 a route needs this interface.
    #[error("Router interface for subnet {subnet} on router {router} cannot be deleted, as it is required by one or more routes.")]
    InterfaceInUseByRoute {
        /// Router.
        router: String,
        /// Subnet.
        subnet: String,
    },
    /// 409 the gateway is needed by floating IPs.
    #[error("Gateway cannot be updated for router {router}, since a gateway to external network {net} is required by one or more floating IPs.")]
    GatewayInUseByFloatingIp {
        /// Router.
        router: String,
        /// Network.
        net: String,
    },
    /// 404 no router connects the port's subnet to the external network.
    #[error("External network {net} is not reachable from subnet {subnet}.  Therefore, cannot associate Port {port} with a Floating IP.")]
    GatewayForFloatingIpNotFound {
        /// External network.
        net: String,
        /// Subnet.
        subnet: String,
        /// Port.
        port: String,
    },
    /// 409 the fixed IP already has a floating IP.
    #[error("Cannot associate floating IP {fip} ({addr}) with port {port} using fixed IP {fixed}, as that fixed IP already has a floating IP on external network {net}.")]
    PortAlreadyAssociated {
        /// Floating IP id.
        fip: String,
        /// Its address.
        addr: String,
        /// Port.
        port: String,
        /// Fixed IP.
        fixed: String,
        /// External network.
        net: String,
    },
    /// 409 a port the L3 plugin owns.
    #[error("Port {port} has owner {owner} and therefore cannot be deleted directly via the port API.")]
    L3PortInUse {
        /// Port.
        port: String,
        /// Owner.
        owner: String,
    },
    /// 400 invalid extra routes.
    #[error("Invalid format for routes: {routes}, {reason}")]
    InvalidRoutes {
        /// The routes.
        routes: String,
        /// Why.
        reason: String,
    },
    /// The core plugin refused.
    #[error(transparent)]
    Core(#[from] Ml2Error),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] neutrino_store::StoreError),
}

impl From<L3Error> for Fault {
    fn from(e: L3Error) -> Fault {
        let msg = e.to_string();
        use L3Error::*;
        match e {
            RouterNotFound(_) => Fault::not_found("RouterNotFound", msg),
            FloatingIpNotFound(_) => Fault::not_found("FloatingIPNotFound", msg),
            RouterInUse(_) => Fault::conflict("RouterInUse", msg),
            BadRequest { .. } => Fault::new(400, "BadRequest", msg),
            InterfaceNotFoundForSubnet { .. } => Fault::not_found("RouterInterfaceNotFoundForSubnet", msg),
            InterfaceNotFound { .. } => Fault::not_found("RouterInterfaceNotFound", msg),
            InterfaceInUseByFloatingIp { .. } => Fault::conflict("RouterInterfaceInUseByFloatingIP", msg),
            InterfaceInUseByRoute { .. } => Fault::conflict("RouterInterfaceInUseByRoute", msg),
            GatewayInUseByFloatingIp { .. } => Fault::conflict("RouterExternalGatewayInUseByFloatingIp", msg),
            GatewayForFloatingIpNotFound { .. } => Fault::not_found("ExternalGatewayForFloatingIPNotFound", msg),
            PortAlreadyAssociated { .. } => Fault::conflict("FloatingIPPortAlreadyAssociated", msg),
            L3PortInUse { .. } => Fault::conflict("L3PortInUse", msg),
            InvalidRoutes { .. } => Fault::new(400, "InvalidRoutes", msg),
            Core(e) => e.into(),
            Store(e) => e.into(),
        }
    }
}

/// Shorthand for a router `BadRequest`.
pub fn bad_router(msg: impl Into<String>) -> L3Error {
    L3Error::BadRequest { resource: "router", msg: msg.into() }
}

/// Shorthand for a floating IP `BadRequest`.
pub fn bad_fip(msg: impl Into<String>) -> L3Error {
    L3Error::BadRequest { resource: "floatingip", msg: msg.into() }
}

/// Result type of the L3 plugin.
pub type Result<T> = std::result::Result<T, L3Error>;
