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
    /// Also serve the embedded identity (Keystone v3) API on this address
    /// (when not validating against a real Keystone).
    #[arg(long)]
    pub identity_bind: Option<SocketAddr>,
    /// Fernet key repository shared by all servers (default: [fernet_tokens] key_repository, else /var/lib/neutrino/fernet-keys).
    #[arg(long)]
    pub key_repository: Option<PathBuf>,
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut servers = vec![];
    let auth: Arc<dyn neutrino_api::Authenticator> = if args.noauth {
        Arc::new(neutrino_api::NoAuth)
    } else if ini.get("keystone_authtoken", "auth_url").is_some() {
        let cfg = neutrino_identity::KeystoneAuthConfig::from_ini(&ini).context("[keystone_authtoken]")?;
        tracing::info!("validating tokens against Keystone");
        Arc::new(neutrino_identity::KeystoneAuth::new(cfg).context("Keystone client")?)
    } else {
        let identity =
            crate::identity::shared(&net.store, &ini, args.identity_bind, args.key_repository.clone()).await?;
        if let Some(bind) = args.identity_bind {
            servers.push(
                service::serve(bind, neutrino_identity::router(identity.clone()), stopped(stop_rx.clone())).await?,
            );
            println!("identity API on http://{bind}/v3");
        }
        Arc::new(neutrino_identity::EmbeddedAuth::new(identity))
    };
    servers.push(service::serve(args.api_bind, net.api(auth).router(), stopped(stop_rx.clone())).await?);
    tracing::info!(bind = %args.api_bind, "network API serving");
    println!("neutrino server listening on http://{}", args.api_bind);
    service::terminated().await;
    let _ = stop_tx.send(true);
    for s in servers {
        s.await??;
    }
    net.store.close().await;
    Ok(())
}
