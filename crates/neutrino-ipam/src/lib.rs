//! neutrino-ipam: IP address management.
//!
//! * [`addr`]: addresses as integers, CIDR bounds;
//! * [`pools`]: allocation pools — defaults, validation;
//! * [`slaac`]: EUI-64 addresses from a prefix and a MAC;
//! * [`prefixes`]: carving subnets out of subnet-pool prefixes;
//! * [`allocator`]: allocating and releasing addresses in the store, correct
//!   under concurrency by construction and at a cost independent of the
//!   subnet's size.

pub mod addr;
pub mod allocator;
pub mod error;
pub mod pools;
pub mod prefixes;
pub mod slaac;

pub use error::IpamError;
