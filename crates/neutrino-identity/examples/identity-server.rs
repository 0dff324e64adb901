//! A standalone embedded Keystone, for trying real clients against it:
//!
//! ```text
//! cargo run -p neutrino-identity --example identity-server -- \
//!     --state-dir /tmp/ident --bind 127.0.0.1:5000 --network-url http://127.0.0.1:9696
//! source /tmp/ident/openrc && openstack token issue
//! ```
//!
//! The database is `<state-dir>/identity.sqlite` unless `--db URL` is given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use neutrino_identity::{bootstrap, BootstrapOptions, IdentityOptions, IdentityService};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(arg(&args, "--state-dir").unwrap_or_else(|| "/tmp/neutrino-identity".into()));
    let bind: SocketAddr = arg(&args, "--bind").unwrap_or_else(|| "127.0.0.1:5000".into()).parse()?;
    let network_url = arg(&args, "--network-url").unwrap_or_else(|| "http://127.0.0.1:9696".into());
    std::fs::create_dir_all(&dir)?;
    let db = arg(&args, "--db").unwrap_or_else(|| format!("sqlite://{}", dir.join("identity.sqlite").display()));
    let store = neutrino_store::Store::connect(&db).await?;
    let opts = IdentityOptions::new(format!("http://{bind}"), dir.join("fernet-keys"));
    let svc = Arc::new(IdentityService::new(store, opts).await?);
    let mut bo = BootstrapOptions::new(network_url);
    bo.admin_password = arg(&args, "--admin-password");
    let outcome = bootstrap::bootstrap(&svc, &bo).await?;
    let rc = bootstrap::write_openrc(&dir, &outcome)?;
    let cy = bootstrap::write_clouds_yaml(&dir, &outcome)?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    println!("identity API on http://{bind}/v3  (source {}; clouds.yaml: {})", rc.display(), cy.display());
    axum::serve(listener, neutrino_identity::router(svc))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
