//! An OVSDB client (RFC 7047 JSON-RPC) for the `Open_vSwitch` database.
//!
//! * [`Client`]: `transact`, `get_schema`, waiting for ovs-vswitchd (`cur_cfg`),
//!   plus typed helpers (bridges, ports, interfaces, root row): types in
//!   [`vswitch`], operations in [`vsctl`];
//! * [`TableMonitor`] / [`InterfaceMonitor`]: `monitor` / `monitor_cond`
//!   event streams that reconnect and resynchronise after a server restart;
//! * [`Operation`], [`Condition`], [`Mutation`], [`Datum`]: the wire model.
//!
//! ```no_run
//! # async fn demo() -> neutrino_agent::Result<()> {
//! use neutrino_agent::ovsdb::*;
//! let db = Client::connect(Endpoint::parse("unix:/run/openvswitch/db.sock")?).await?;
//! db.add_bridge(&BridgeSpec::new("br-int").datapath(DatapathType::Netdev).fail_mode(FailMode::Secure),
//!               Commit::default()).await?;
//! let mut mon = InterfaceMonitor::start(db.endpoint().clone()).await?;
//! while let Some(ev) = mon.next().await {
//!     if let InterfaceEvent::Modified { new, .. } = ev { println!("{} -> ofport {:?}", new.name, new.ofport); }
//! }
//! # Ok(()) }
//! ```

pub mod client;
pub mod datum;
pub mod iface_monitor;
pub mod jsonrpc;
pub mod monitor;
pub mod ops;
pub mod schema;
pub mod vsctl;
pub mod vswitch;

pub use client::{Client, OPEN_VSWITCH_DB};
pub use datum::{Atom, Datum, Row};
pub use iface_monitor::{InterfaceEvent, InterfaceMonitor};
pub use jsonrpc::Endpoint;
pub use monitor::{MonitorEvent, MonitorMethod, MonitorSpec, RowChange, RowEvent, TableMonitor};
pub use ops::{Condition, Mutation, Operation};
pub use schema::Schema;
pub use vswitch::{
    BridgeInfo, BridgeSpec, Commit, DatapathType, FailMode, Interface, InterfaceSpec, InterfaceType, PortInfo,
    PortSpec, TunnelType, INTERFACE_COLUMNS,
};
