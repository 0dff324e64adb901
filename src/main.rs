//! `neutrino`: OpenStack Networking (Neutron) rebuilt in Rust.
//!
//! One binary, several roles: `up` (everything in one process on an embedded
//! store), `server` (a stateless API server on PostgreSQL), `db` (schema
//! management).

mod cmd;
mod identity;
mod logging;
mod outside;
mod service;
mod sim;

use clap::{Parser, Subcommand};

/// OpenStack Networking (Neutron), rebuilt in Rust.
#[derive(Parser)]
#[command(name = "neutrino", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process on an embedded SQLite store.
    Up(cmd::up::UpArgs),
    /// Run an API server on a shared database (PostgreSQL).
    Server(cmd::server::ServerArgs),
    /// Database schema management.
    Db(cmd::db::DbArgs),
    /// Run an agent (L2, DHCP, L3) as its own process.
    Agent(cmd::agent::AgentArgs),
    /// Nova's part on simulated hosts: boot, exec, list, delete VMs.
    Vm(cmd::vm::VmArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("neutrino: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Up(a) => cmd::up::run(a).await,
            Command::Server(a) => cmd::server::run(a).await,
            Command::Db(a) => cmd::db::run(a).await,
            Command::Agent(a) => cmd::agent::run(a).await,
            Command::Vm(a) => cmd::vm::run(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "neutrino failed");
            eprintln!("neutrino: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
