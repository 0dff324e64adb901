//! OpenFlow programming through `ovs-ofctl` (OpenFlow 1.3).
//!
//! * [`Flow`], [`Match`], [`Action`]: the flow model and its ofctl syntax;
//! * [`Ofctl`]: bundle installation (`--bundle add-flows`, atomic), dumps
//!   parsed into the model, and [`Ofctl::sync`], which converges a bridge
//!   (or the flows of one cookie) to a desired set without touching flows
//!   that are already right.

pub mod flow;
pub mod ofctl;

pub use flow::{parse_dump, Action, Flow, FlowKey, FlowStats, Match, MatchField, DEFAULT_PRIORITY};
pub use ofctl::{FlowMod, Ofctl, SyncReport, SyncScope};
