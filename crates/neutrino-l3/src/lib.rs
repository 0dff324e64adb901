//! neutrino-l3: the L3 service plugin.
//!
//! Routers connect tenant subnets (router interfaces: ports owned by the
//! router) and reach an external network through a gateway port, with SNAT
//! when enabled; floating IPs map an address of an external network 1:1 to a
//! port's fixed address through such a router. The dataplane is the L3
//! agent's; this crate keeps the logical state and its rules.

mod error;
mod floatingip;
mod metering;
mod observer;
mod router;
mod scheduler;
pub mod southbound;

use std::sync::Arc;

use neutrino_lib::plugin::ResourcePlugin;
use neutrino_lib::resource::stamp;
use neutrino_lib::Map;
use neutrino_ml2::Core;
use neutrino_store::schema::PORTS;
use neutrino_store::Tx;
use serde_json::Value;

pub use error::L3Error;
pub use floatingip::FloatingIps;
pub use router::Routers;

/// Device owner of router interface ports.
pub const OWNER_INTERFACE: &str = "network:router_interface";
/// Device owner of router gateway ports.
pub const OWNER_GATEWAY: &str = "network:router_gateway";
/// Device owner of floating IP ports.
pub const OWNER_FLOATINGIP: &str = "network:floatingip";

/// The L3 plugin's resources; registers its port observer with the core.
pub fn plugins(core: &Arc<Core>) -> Vec<Arc<dyn ResourcePlugin>> {
    core.add_port_observer(Arc::new(observer::L3PortObserver));
    core.add_agent_observer(Arc::new(scheduler::L3AgentObserver));
    core.add_agent_subresource(Arc::new(scheduler::L3Routers(core.clone())));
    vec![
        Arc::new(Routers(core.clone())),
        Arc::new(FloatingIps(core.clone())),
        Arc::new(metering::MeteringLabels(core.clone())),
        Arc::new(metering::MeteringLabelRules(core.clone())),
    ]
}

/// (subnet id, address) pairs of a port.
pub(crate) fn fixed_ips(port: &Map) -> Vec<(String, String)> {
    port.get("fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("subnet_id")?.as_str()?.to_string(), f.get("ip_address")?.as_str()?.to_string())))
        .collect()
}

/// The ports a router owns with the given device owner.
pub(crate) async fn router_ports(tx: &mut Tx, router: &str, owner: &str) -> error::Result<Vec<Map>> {
    Ok(tx.list(&PORTS, &[("device_id", vec![router.to_string()]), ("device_owner", vec![owner.to_string()])]).await?)
}

/// The string attribute `k`.
pub(crate) fn s<'a>(m: &'a Map, k: &str) -> &'a str {
    stamp::str_of(m, k)
}
