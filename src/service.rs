//! Assembling the network service: store, core plugin, API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use neutrino_api::{Api, Authenticator};
use neutrino_lib::ini::Ini;
use neutrino_ml2::{Core, Ml2Config};
use neutrino_store::Store;

/// Reads the configuration files given with `--config`.
pub fn load_config(files: &[PathBuf]) -> anyhow::Result<Ini> {
    let ini = Ini::load(files).with_context(|| format!("reading {files:?}"))?;
    Ok(ini)
}

/// Logs options in the files that neutrino does not use.
pub fn report_unused(ini: &Ini) {
    for (section, key) in ini.unread() {
        tracing::warn!(%section, %key, "configuration option not used by neutrino");
    }
}

/// The running network service: store, core plugin, southbound RPC.
pub struct NetworkService {
    /// The store.
    pub store: Store,
    /// The core plugin.
    pub core: Arc<Core>,
    /// The message bus to the agents.
    pub bus: Arc<dyn neutrino_rpc::Transport>,
    /// The RPC topics served (dropping them stops serving).
    _servers: Vec<neutrino_rpc::ServerHandle>,
}

/// The transport URL: the flag, else `[DEFAULT] transport_url`, else the
/// in-process bus.
pub fn transport_url(flag: Option<&str>, ini: &Ini) -> String {
    flag.map(String::from)
        .or_else(|| ini.get("DEFAULT", "transport_url").map(String::from))
        .unwrap_or_else(|| "in-process://neutrino".into())
}

/// This machine's host name (for RPC server names and agents).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

impl NetworkService {
    /// Opens the store (migrating it), connects the bus, builds the plugins
    /// and serves their RPC topics.
    pub async fn start(db_url: &str, ini: &Ini, transport: &str) -> anyhow::Result<NetworkService> {
        let store = Store::open(db_url).await.with_context(|| format!("opening the database {db_url}"))?;
        let cfg = Ml2Config::from_ini(ini).context("ML2 configuration")?;
        let bus = neutrino_rpc::connect(transport).with_context(|| format!("transport_url {transport}"))?;
        let notifier = neutrino_ml2::southbound::RpcNotifier::start(bus.clone(), store.clone());
        let core = Core::new(store.clone(), cfg, notifier).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let host = hostname();
        let mut servers = neutrino_ml2::southbound::serve(&core, &bus, &host).await.context("serving RPC")?;
        for (topic, router) in neutrino_l3::southbound::handlers(&core) {
            servers.push(
                bus.serve(topic, &host, Arc::new(router), neutrino_rpc::ServerOptions::default())
                    .await
                    .context("serving RPC")?,
            );
        }
        Ok(NetworkService { store, core, bus, _servers: servers })
    }

    /// The API over this service's plugins.
    pub fn api(&self, auth: Arc<dyn Authenticator>) -> Api {
        let mut plugins = neutrino_ml2::plugins(&self.core);
        plugins.extend(neutrino_l3::plugins(&self.core));
        let mut api = Api::new(plugins, auth);
        let store = self.store.clone();
        api.health.push((
            "database",
            Arc::new(move || {
                let s = store.clone();
                Box::pin(async move { s.ping().await.map_err(|e| e.to_string()) })
            }),
        ));
        let bus = self.bus.clone();
        api.health.push((
            "message_bus",
            Arc::new(move || {
                let up = bus.is_connected();
                Box::pin(async move {
                    if up {
                        Ok(())
                    } else {
                        Err("not connected".into())
                    }
                })
            }),
        ));
        api
    }
}

/// Serves a router on an address until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    Ok(tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(shutdown).await.context("serving")?;
        Ok(())
    }))
}

/// Completes on SIGTERM or SIGINT.
pub async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
