//! `neutrino server`: a stateless API server on a shared database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;

use crate::service::{self, NetworkService};

/// Arguments of `neutrino server`.
#[derive(Args)]
pub struct ServerArgs {
    /// Database URL (postgresql://… or sqlite://PATH); default: [database] connection.
    #[arg(long, env = "NEUTRINO_DB")]
    pub db: Option<String>,
    /// Address of the network API.
    #[arg(long, default_value = "127.0.0.1:9696")]
    pub api_bind: SocketAddr,
    /// Development mode: no tokens.
    #[arg(long)]
    pub noauth: bool,
    /// Message bus to the agents (default: [DEFAULT] transport_url, else in-process).
    #[arg(long)]
    pub transport_url: Option<String>,
    /// Neutron-style configuration files.
    #[arg(long = "config", num_args = 1..)]
    pub config: Vec<PathBuf>,
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let ini = service::load_config(&args.config)?;
    let db = match &args.db {
        Some(d) => d.clone(),
        None => ini.get("database", "connection").map(String::from).context("no --db and no [database] connection")?,
    };
    let transport = service::transport_url(args.transport_url.as_deref(), &ini);
    let net = NetworkService::start(&db, &ini, &transport).await?;
    service::report_unused(&ini);
    let auth: Arc<dyn neutrino_api::Authenticator> = Arc::new(neutrino_api::NoAuth);
    let api = service::serve(args.api_bind, net.api(auth).router(), service::terminated()).await?;
    tracing::info!(bind = %args.api_bind, "network API serving");
    println!("neutrino server listening on http://{}", args.api_bind);
    api.await??;
    net.store.close().await;
    Ok(())
}
