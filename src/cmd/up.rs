//! `neutrino up`: everything in one process on an embedded SQLite store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use tokio::sync::watch;

use crate::service::{self, NetworkService};

/// Arguments of `neutrino up`.
#[derive(Args)]
pub struct UpArgs {
    /// State directory (database, keys, openrc).
    #[arg(long, env = "NEUTRINO_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Address of the network API.
    #[arg(long, default_value = "127.0.0.1:9696")]
    pub api_bind: SocketAddr,
    /// Address of the identity (Keystone v3) API.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub identity_bind: SocketAddr,
    /// Development mode: no tokens; callers declare X-Project-Id/X-Roles.
    #[arg(long)]
    pub noauth: bool,
    /// Message bus to the agents (default: [DEFAULT] transport_url, else in-process).
    #[arg(long)]
    pub transport_url: Option<String>,
    /// Password of the bootstrap `admin` user (default: generated once, kept in the state directory).
    #[arg(long, env = "NEUTRINO_ADMIN_PASSWORD")]
    pub admin_password: Option<String>,
    /// Neutron-style configuration files (neutron.conf, ml2_conf.ini), in order.
    #[arg(long = "config", num_args = 1..)]
    pub config: Vec<PathBuf>,
    /// Simulated hypervisors compute1…computeN (namespaces with their own OVS and L2 agent).
    #[arg(long)]
    pub sim_hosts: Option<u32>,
    /// With --sim-hosts: the host that runs the DHCP and L3 agents and reaches the external network.
    #[arg(long, default_value = "compute1")]
    pub network_node: String,
    /// With --sim-hosts: the namespace of "the internet" (holding the external network's gateway).
    #[arg(long, default_value = "neutrino-outside")]
    pub outside_netns: String,
}

/// The default state directory: /var/lib/neutrino as root, else ~/.local/state/neutrino.
pub fn default_state_dir() -> PathBuf {
    // SAFETY-free check of root: the effective uid via /proc.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false);
    if root {
        PathBuf::from("/var/lib/neutrino")
    } else {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/state/neutrino")
    }
}

/// Runs `neutrino up` until SIGTERM/SIGINT.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ini = service::load_config(&args.config)?;
    let db = format!("sqlite://{}", dir.join("neutrino.sqlite").display());
    let transport = service::transport_url(args.transport_url.as_deref(), &ini);
    let net = NetworkService::start(&db, &ini, &transport).await?;
    let l2_agents =
        crate::sim::start_for_up(args.sim_hosts, &args.network_node, &dir, &transport, net.bus.clone(), &ini).await?;
    service::report_unused(&ini);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let endpoint = format!("http://{}", args.api_bind);
    let identity_url = format!("http://{}", args.identity_bind);
    let mut servers = vec![];
    let mut owner = "admin".to_string();
    let auth: Arc<dyn neutrino_api::Authenticator> = if args.noauth {
        write_noauth_openrc(&dir, &endpoint)?;
        Arc::new(neutrino_api::NoAuth)
    } else {
        let (identity, admin_project) =
            crate::identity::embedded(&net.store, &ini, &dir, &identity_url, &endpoint, args.admin_password.clone())
                .await?;
        owner = admin_project;
        servers.push(
            service::serve(args.identity_bind, neutrino_identity::router(identity.clone()), stopped(stop_rx.clone()))
                .await?,
        );
        Arc::new(neutrino_identity::EmbeddedAuth::new(identity))
    };
    let api = net.api(auth);
    // With simulated hosts, the outside world: the external network `public`
    // and a namespace holding its gateway, "the internet".
    let outside = match &l2_agents {
        crate::sim::UpAgents::Sim(sim) => Some(
            crate::outside::provide(&api, &owner, sim.net(), crate::outside::PHYSNET, &args.outside_netns)
                .await
                .context("providing the outside world")?,
        ),
        _ => None,
    };
    servers.push(service::serve(args.api_bind, api.router(), stopped(stop_rx.clone())).await?);
    println!("neutrino is up");
    println!("  network API:  {endpoint}/v2.0/  (Neutron v2.0)");
    if args.noauth {
        println!("  auth:         none (development mode: send X-Project-Id and X-Roles headers)");
    } else {
        println!("  identity API: {identity_url}/v3  (Keystone v3)");
        println!("  credentials:  source {}   (or clouds.yaml: cloud 'neutrino')", dir.join("openrc").display());
    }
    if let Some(o) = &outside {
        println!(
            "  outside:      network 'public' ({}) reaches namespace {} at {}",
            crate::outside::PUBLIC_CIDR,
            o.world.netns().name(),
            crate::outside::PUBLIC_GATEWAY
        );
    }
    println!("  state:        {}", dir.display());
    service::terminated().await;
    tracing::info!("stopping");
    drop(outside);
    l2_agents.stop().await;
    let _ = stop_tx.send(true);
    for s in servers {
        s.await??;
    }
    net.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn write_noauth_openrc(dir: &std::path::Path, endpoint: &str) -> anyhow::Result<()> {
    let text = format!(
        "# neutrino (no authentication): use with `openstack --os-auth-type none`\nexport OS_AUTH_TYPE=none\nexport OS_ENDPOINT={endpoint}\nexport OS_NETWORK_ENDPOINT={endpoint}\n"
    );
    let path = dir.join("openrc");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
