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

/// The running network API.
pub struct NetworkService {
    /// The store.
    pub store: Store,
    /// The core plugin.
    pub core: Arc<Core>,
}

impl NetworkService {
    /// Opens the store (migrating it) and builds the core plugin.
    pub async fn start(db_url: &str, ini: &Ini) -> anyhow::Result<NetworkService> {
        let store = Store::open(db_url).await.with_context(|| format!("opening the database {db_url}"))?;
        let cfg = Ml2Config::from_ini(ini).context("ML2 configuration")?;
        let core = Core::new(store.clone(), cfg, Arc::new(neutrino_ml2::notify::Nobody))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(NetworkService { store, core })
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
