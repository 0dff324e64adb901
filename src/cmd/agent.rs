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
        AgentKind::L3(a) => run_l3(a).await,
        AgentKind::Dhcp(a) => run_dhcp(a).await,
        AgentKind::L2(a) => run_l2(a).await,
    }
}

/// The agent's message bus: `--transport-url`, else `[DEFAULT] transport_url`.
fn transport_url(a: &CommonAgentArgs, ini: &neutrino_lib::ini::Ini) -> anyhow::Result<String> {
    use anyhow::Context as _;
    a.transport_url
        .clone()
        .or_else(|| ini.get("DEFAULT", "transport_url").map(String::from))
        .context("no --transport-url and no [DEFAULT] transport_url: the agent needs the server's message bus")
}

/// `neutrino agent l3`: the L3 agent until SIGTERM/SIGINT. Routers stay in
/// place when it stops (a restart converges without breaking connections).
async fn run_l3(a: CommonAgentArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let ini = crate::service::load_config(&a.config)?;
    let cfg = neutrino_agent::l3::L3Config::from_ini(&ini, a.host.as_deref(), &crate::service::hostname())?;
    let url = transport_url(&a, &ini)?;
    crate::service::report_unused(&ini);
    let bus = neutrino_rpc::connect(&url).with_context(|| format!("transport_url {url}"))?;
    let agent = neutrino_agent::l3::L3Agent::start(cfg, bus.clone()).await?;
    crate::service::terminated().await;
    tracing::info!("stopping");
    agent.stop().await;
    bus.close().await;
    Ok(())
}

/// `neutrino agent dhcp`: the DHCP agent until SIGTERM/SIGINT. dnsmasq
/// processes keep serving when it stops; a restarted agent adopts them.
async fn run_dhcp(a: CommonAgentArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let ini = crate::service::load_config(&a.config)?;
    let cfg = neutrino_agent::dhcp::DhcpAgentConfig::from_ini(&ini, a.host.as_deref(), &crate::service::hostname())?;
    let url = transport_url(&a, &ini)?;
    crate::service::report_unused(&ini);
    let bus = neutrino_rpc::connect(&url).with_context(|| format!("transport_url {url}"))?;
    let agent = neutrino_agent::dhcp::DhcpAgent::start(cfg, bus.clone()).await?;
    crate::service::terminated().await;
    tracing::info!("stopping");
    agent.stop().await;
    bus.close().await;
    Ok(())
}

/// `neutrino agent l2`: the Open vSwitch L2 agent until SIGTERM/SIGINT,
/// configured from `openvswitch_agent.ini` (`--config`). The dataplane stays
/// as it is when it stops; a restarted agent resyncs without disturbing it.
async fn run_l2(a: CommonAgentArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let ini = crate::service::load_config(&a.config)?;
    let host = a.host.clone().unwrap_or_else(crate::service::hostname);
    let (mut cfg, _) = neutrino_agent::l2::L2Config::from_ini(&ini, &host)?;
    if let Some(h) = &a.host {
        cfg.host = h.clone();
    }
    let url = transport_url(&a, &ini)?;
    if matches!(neutrino_rpc::TransportUrl::parse(&url), Ok(neutrino_rpc::TransportUrl::InProcess { .. })) {
        anyhow::bail!(
            "transport_url {url} is in-process: an agent process needs the server's message bus (rabbit://…)"
        );
    }
    crate::service::report_unused(&ini);
    let bus = neutrino_rpc::connect(&url).with_context(|| format!("transport_url {url}"))?;
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut agent = tokio::spawn(neutrino_agent::l2::run(cfg, bus.clone(), stop_rx));
    let result = tokio::select! {
        r = &mut agent => r.context("L2 agent task")?.map_err(anyhow::Error::from),
        _ = crate::service::terminated() => {
            tracing::info!("stopping");
            let _ = stop.send(true);
            agent.await.context("L2 agent task")?.map_err(anyhow::Error::from)
        }
    };
    bus.close().await;
    result
}
