//! Assembling the identity side: the embedded Keystone (with bootstrap and
//! client files) for `up`, and a shared one for scale-out servers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use neutrino_identity::{bootstrap, BootstrapOptions, IdentityOptions, IdentityService};
use neutrino_lib::ini::Ini;
use neutrino_store::Store;

/// The embedded identity service of `neutrino up`: bootstrapped on every
/// start (idempotent), with `openrc` and `clouds.yaml` written to `dir`.
/// Returns it with the id of the admin project.
pub async fn embedded(
    store: &Store,
    ini: &Ini,
    dir: &Path,
    identity_url: &str,
    network_url: &str,
    admin_password: Option<String>,
) -> anyhow::Result<(Arc<IdentityService>, String)> {
    let mut opts = IdentityOptions::new(identity_url, dir.join("fernet-keys"));
    opts.apply_ini(ini).context("identity configuration")?;
    let identity = Arc::new(IdentityService::new(store.clone(), opts).await.context("identity service")?);
    let mut b = BootstrapOptions::new(network_url);
    b.admin_password = admin_password;
    let outcome = bootstrap::bootstrap(&identity, &b).await.context("identity bootstrap")?;
    bootstrap::write_openrc(dir, &outcome).context("writing openrc")?;
    bootstrap::write_clouds_yaml(dir, &outcome).context("writing clouds.yaml")?;
    if outcome.password_generated {
        tracing::info!(openrc = %dir.join("openrc").display(), "generated the admin password");
    }
    Ok((identity, outcome.admin_project_id.clone()))
}

/// The identity service of a scale-out server: the shared database and a
/// shared key repository (bootstrap is left to `neutrino up` or an operator).
pub async fn shared(
    store: &Store,
    ini: &Ini,
    bind: Option<SocketAddr>,
    keys: Option<PathBuf>,
) -> anyhow::Result<Arc<IdentityService>> {
    let url = match bind {
        Some(b) => format!("http://{b}"),
        None => ini.get("identity", "public_endpoint").unwrap_or("http://127.0.0.1:5000").to_string(),
    };
    let keys = keys
        .or_else(|| ini.get("fernet_tokens", "key_repository").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/neutrino/fernet-keys"));
    let mut opts = IdentityOptions::new(url, keys);
    opts.apply_ini(ini).context("identity configuration")?;
    Ok(Arc::new(IdentityService::new(store.clone(), opts).await.context("identity service")?))
}
