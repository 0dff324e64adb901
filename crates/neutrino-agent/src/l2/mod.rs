//! The Open vSwitch L2 agent, in Neutron's reference design.
//!
//! * `br-int` (integration bridge, fail mode secure): VM ports are access
//!   ports tagged with a *local VLAN* per network; the entry table drops
//!   whatever the agent has not wired; the conntrack firewall
//!   ([`firewall`]) filters ports with port security.
//! * `br-tun` (tunnel bridge): VXLAN, GRE and Geneve ports (`key=flow`)
//!   between the hosts' `local_ip`, created on demand; l2population flows
//!   (unicast to known remote MACs, flooding only to hosts with ports on the
//!   network) and an ARP responder for remote ports ([`tunnels`]).
//! * provider bridges from `bridge_mappings` for flat and VLAN networks,
//!   translating local VLANs to provider VLANs ([`provider`]).
//!
//! The agent follows OVSDB with a monitor, so ports are wired on the
//! event; it talks to the server only over the southbound RPC
//! (docs/southbound.md), reports its state every few seconds, and resyncs
//! idempotently at start, after a bus or OVSDB reconnection and after a flow
//! table reset — leaving correct flows and port tags alone, so VMs keep
//! forwarding through an agent restart. Flows are installed in atomic
//! bundles, per owner ([`cookies`]).
//!
//! ```no_run
//! # async fn demo(bus: std::sync::Arc<dyn neutrino_rpc::Transport>) -> Result<(), neutrino_agent::l2::L2Error> {
//! use neutrino_agent::l2::{L2AgentHandle, L2Config};
//! use neutrino_agent::ovsdb::{DatapathType, Endpoint, TunnelType};
//! let mut cfg = L2Config::new("compute1").with_ovsdb(Endpoint::unix("/tmp/sim/compute1/db.sock"));
//! cfg.datapath_type = DatapathType::Netdev;
//! cfg.local_ip = Some("198.51.100.1".parse().unwrap());
//! cfg.tunnel_types = vec![TunnelType::Vxlan, TunnelType::Gre, TunnelType::Geneve];
//! cfg.bridge_mappings.insert("physnet1".into(), "br-physnet1".into());
//! let agent = L2AgentHandle::spawn(cfg, bus);   // a task; or `run(cfg, bus, stop)` in the foreground
//! // ...
//! agent.stop().await?;
//! # Ok(()) }
//! ```
//!
//! Trunk ports (VLAN-aware VMs) are not supported: the server does not
//! implement the `trunk` extension yet.

mod agent;
pub mod config;
mod converge;
pub mod cookies;
pub mod error;
pub mod firewall;
pub mod flowsync;
pub mod int_bridge;
pub mod local_vlan;
pub mod model;
pub mod notifications;
pub mod plugin;
pub mod provider;
mod report;
mod resync;
pub mod tunnels;
mod wiring;

pub use agent::{run, L2AgentHandle};
pub use config::{FirewallDriver, L2Config};
pub use error::{L2Error, L2Result};
pub use report::BINARY;
