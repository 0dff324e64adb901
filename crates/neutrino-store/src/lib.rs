//! neutrino-store: where the logical state lives.
//!
//! Two backends behind one interface: an embedded SQLite file (`neutrino up`)
//! and PostgreSQL (several API servers sharing one database). Resources are
//! rows of per-resource tables holding the resource as a JSON document plus
//! the columns that are indexed or constrained; invariants that must hold
//! under concurrency (unique IP per network, unique MAC per network, one
//! owner per segment id, quota usage) are enforced by the database.

pub mod allocations;
mod error;
mod migrate;
pub mod outbox;
pub mod pool;
pub mod query;
pub mod quota;
pub mod scheduling;
pub mod schema;
mod segments;
mod store;
mod table;
mod tx;

pub use error::StoreError;
pub use query::{Cond, Selected};
pub use store::{Backend, Store};
pub use table::Table;
pub use tx::Tx;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, StoreError>;
