//! `neutrino agent l2|dhcp|l3`: an agent as its own process (talks to the
//! server over `transport_url`, normally RabbitMQ).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Arguments of `neutrino agent`.
#[derive(Args)]
pub struct AgentArgs {
    #[command(subcommand)]
    kind: AgentKind,
}

/// Options every agent takes.
#[derive(Args, Clone)]
pub struct CommonAgentArgs {
    /// The host name the agent reports (the ports' binding:host_id).
    #[arg(long)]
    pub host: Option<String>,
    /// Message bus to the server (default: [DEFAULT] transport_url).
    #[arg(long)]
    pub transport_url: Option<String>,
    /// Neutron-style configuration files (e.g. openvswitch_agent.ini).
    #[arg(long = "config", num_args = 1..)]
    pub config: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum AgentKind {
    /// The Open vSwitch L2 agent.
    L2(CommonAgentArgs),
    /// The DHCP agent.
    Dhcp(CommonAgentArgs),
    /// The L3 agent.
    L3(CommonAgentArgs),
}

/// Runs an agent until SIGTERM/SIGINT.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    match args.kind {
        AgentKind::L2(_) | AgentKind::Dhcp(_) | AgentKind::L3(_) => anyhow::bail!("this agent is not built yet"),
    }
}
