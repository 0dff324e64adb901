//! Subcommands.

pub mod agent;
pub mod db;
pub mod server;
pub mod up;
pub mod vm;
