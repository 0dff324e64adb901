//! neutrino-agent: the low-level building blocks of neutrino's L2 agents.
//!
//! The agents follow Neutron's reference OVS design (`br-int` with local VLAN
//! tags, `br-tun` with flow-based tunnels, provider bridges `br-<physnet>`).
//! This crate provides what they are built on:
//!
//! * [`ovsdb`]: an OVSDB (RFC 7047) client with typed Bridge/Port/Interface
//!   helpers and an event-driven Interface monitor;
//! * [`openflow`]: a flow model, bundle installation and dump parsing through
//!   `ovs-ofctl -O OpenFlow13`, and a non-disruptive *sync* of a bridge;
//! * [`netns`] and [`link`]: network namespaces, veth pairs, addresses and
//!   routes through `ip` (batched);
//! * [`bridges`]: the Neutron bridge layout (`br-int`, `br-tun`, `br-<physnet>`);
//! * [`pipeline`]: a first version of the Neutron-style flow tables;
//! * [`simhost`]: simulated hypervisors (a namespace with a private OVS) and
//!   VMs, with leak-proof cleanup, for tests and `neutrino up --sim-hosts`.
//!
//! On top of them, the agents themselves (each talks to the server only over
//! RPC — this crate never depends on the store; see docs/southbound.md):
//!
//! * [`l2`]: the Open vSwitch L2 agent (wiring, tunnels, provider networks,
//!   security groups);
//! * [`dhcp`]: the DHCP agent;
//! * [`l3`]: the L3 agent (routers, SNAT, floating IPs).

#![warn(missing_docs)]

pub mod bridges;
pub mod cmd;
pub mod dhcp;
pub mod error;
pub mod l2;
pub mod l3;
pub mod link;
pub mod netns;
pub mod openflow;
pub mod ovsdb;
pub mod pipeline;
pub mod simhost;

pub use error::{Error, Result};
