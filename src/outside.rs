//! "The outside world" of `neutrino up --sim-hosts`: the admin-owned external
//! flat network `public` (router:external, 203.0.113.0/24, gateway
//! 203.0.113.1, no DHCP) on a physical network of the simulated hosts, and a
//! namespace on that physical network holding 203.0.113.1, "the internet"
//! for SNAT and floating IP tests.
//!
//! The network is created through the API layer, so it is validated,
//! defaulted and notified like any client's: in-process through the
//! plugins ([`ensure_public_network`]), or over HTTP to a running server
//! ([`ensure_public_network_http`]). Use in `up`:
//!
//! ```ignore
//! let nic = sim.connect_physnet(&network_node, outside::PHYSNET).await?;   // bridge_mappings public:br-public
//! let api = net.api(Arc::new(neutrino_api::NoAuth));                      // any Api over the same plugins
//! let outside = outside::provide(&api, "admin", &sim, outside::PHYSNET, "nt1-outside").await?;
//! // outside.world.netns() is "the internet"; dropping `outside` removes the namespace
//! ```
#![allow(dead_code)] // wired into `neutrino up --sim-hosts` by its orchestration

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use neutrino_agent::l3::outside::{OutsideWorld, DEFAULT_PHYSNET};
pub use neutrino_agent::l3::outside::{PUBLIC_CIDR, PUBLIC_GATEWAY};
use neutrino_agent::simhost::SimNet;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The physical network of `public`.
pub const PHYSNET: &str = DEFAULT_PHYSNET;
/// The name of the external network.
pub const NETWORK_NAME: &str = "public";

/// The external network as created.
#[derive(Debug, Clone)]
pub struct PublicNetwork {
    /// Network id.
    pub network_id: String,
    /// Subnet id.
    pub subnet_id: String,
}

/// The outside world: the external network and the namespace holding its gateway.
#[derive(Debug)]
pub struct Outside {
    /// The `public` network.
    pub network: PublicNetwork,
    /// The namespace (removed on drop).
    pub world: OutsideWorld,
}

/// Creates (or finds) `public` as an admin of `project_id` and attaches the
/// outside namespace to `physnet` in `sim` (a host must be connected to that
/// physnet already).
pub async fn provide(
    api: &neutrino_api::Api,
    project_id: &str,
    sim: &SimNet,
    physnet: &str,
    namespace: &str,
) -> anyhow::Result<Outside> {
    let network = ensure_public_network(api, project_id, physnet).await?;
    let world = OutsideWorld::attach(sim, physnet, namespace, &format!("{PUBLIC_GATEWAY}/24"))
        .await
        .context("attaching the outside namespace")?;
    Ok(Outside { network, world })
}

fn network_body(physnet: &str) -> Value {
    json!({
        "name": NETWORK_NAME,
        "router:external": true,
        "provider:network_type": "flat",
        "provider:physical_network": physnet,
    })
}

fn subnet_body(network_id: &str) -> Value {
    json!({
        "network_id": network_id,
        "name": format!("{NETWORK_NAME}-subnet"),
        "ip_version": 4,
        "cidr": PUBLIC_CIDR,
        "gateway_ip": PUBLIC_GATEWAY,
        "enable_dhcp": false,
    })
}

/// Creates the external flat network `public` on `physnet` with its subnet,
/// owned by `project_id`, through the API layer in-process (validation and
/// defaults of a POST, as an admin), unless a network of that name exists.
/// Idempotent.
pub async fn ensure_public_network(
    api: &neutrino_api::Api,
    project_id: &str,
    physnet: &str,
) -> anyhow::Result<PublicNetwork> {
    use neutrino_lib::plugin::ListHint;
    let mut ctx = neutrino_lib::Context::admin();
    ctx.project_id = Some(project_id.to_string());
    let plugin = |c: &str| api.plugin_for_collection(c).with_context(|| format!("no {c} plugin"));
    let (networks, subnets) = (plugin("networks")?, plugin("subnets")?);
    let fault = |e: neutrino_lib::Fault| anyhow::anyhow!("{}: {}", e.kind, e.message);
    let hint = ListHint { eq: vec![("name".into(), vec![json!(NETWORK_NAME)])], ..Default::default() };
    let found = networks.list(&ctx, &hint).await.map_err(fault)?;
    let network_id = match found.iter().find(|n| n.get("name").and_then(Value::as_str) == Some(NETWORK_NAME)) {
        Some(n) => str_of(n, "id"),
        None => {
            let item =
                neutrino_api::request::prepare_create(networks.def(), &ctx, &network_body(physnet)).map_err(fault)?;
            let created = networks.create(&ctx, vec![item]).await.map_err(fault)?;
            created.first().map(|n| str_of(n, "id")).context("network create returned nothing")?
        }
    };
    let hint = ListHint { eq: vec![("network_id".into(), vec![json!(network_id)])], ..Default::default() };
    let found = subnets.list(&ctx, &hint).await.map_err(fault)?;
    let subnet_id = match found.iter().find(|s| s.get("network_id").and_then(Value::as_str) == Some(&network_id)) {
        Some(s) => str_of(s, "id"),
        None => {
            let item =
                neutrino_api::request::prepare_create(subnets.def(), &ctx, &subnet_body(&network_id)).map_err(fault)?;
            let created = subnets.create(&ctx, vec![item]).await.map_err(fault)?;
            created.first().map(|s| str_of(s, "id")).context("subnet create returned nothing")?
        }
    };
    tracing::info!(%network_id, %subnet_id, physnet, "external network ready");
    Ok(PublicNetwork { network_id, subnet_id })
}

fn str_of(m: &neutrino_lib::Map, k: &str) -> String {
    m.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// [`ensure_public_network`] over HTTP against a running API at `api`: with
/// `token` (`X-Auth-Token`), else as the noauth admin (`--noauth`).
pub async fn ensure_public_network_http(
    api: SocketAddr,
    physnet: &str,
    token: Option<&str>,
) -> anyhow::Result<PublicNetwork> {
    let (_, found) = request(api, "GET", &format!("/v2.0/networks?name={NETWORK_NAME}"), None, token).await?;
    let network_id = match found["networks"].as_array().and_then(|a| a.first()) {
        Some(n) => n["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let body = json!({ "network": network_body(physnet) });
            let (status, n) = request(api, "POST", "/v2.0/networks", Some(body), token).await?;
            if status != 201 {
                bail!("creating network {NETWORK_NAME}: HTTP {status}: {n}");
            }
            n["network"]["id"].as_str().unwrap_or_default().to_string()
        }
    };
    let (_, subnets) = request(api, "GET", &format!("/v2.0/subnets?network_id={network_id}"), None, token).await?;
    let subnet_id = match subnets["subnets"].as_array().and_then(|a| a.first()) {
        Some(s) => s["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let body = json!({ "subnet": subnet_body(&network_id) });
            let (status, s) = request(api, "POST", "/v2.0/subnets", Some(body), token).await?;
            if status != 201 {
                bail!("creating the subnet of {NETWORK_NAME}: HTTP {status}: {s}");
            }
            s["subnet"]["id"].as_str().unwrap_or_default().to_string()
        }
    };
    Ok(PublicNetwork { network_id, subnet_id })
}

/// One HTTP/1.1 request (token, else noauth admin headers); returns status and JSON body.
async fn request(
    api: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let who = match token {
        Some(t) => format!("X-Auth-Token: {t}\r\n"),
        None => "X-Project-Id: admin\r\nX-Roles: admin\r\n".to_string(),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nAccept: application/json\r\nContent-Type: application/json\r\n\
         {who}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(api).await.with_context(|| format!("connecting to the API at {api}"))?;
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (headers, payload) = text.split_once("\r\n\r\n").context("malformed HTTP response")?;
    let status: u16 =
        headers.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("malformed HTTP status line")?;
    let chunked = headers.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let payload = if chunked { dechunk(payload) } else { payload.to_string() };
    let v = if payload.trim().is_empty() { Value::Null } else { serde_json::from_str(&payload)? };
    Ok((status, v))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let (Some(chunk), Some(after)) = (rest.get(..n), rest.get(n..)) else { break };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        s = after.trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_public_once() {
        let dir = std::env::temp_dir().join(format!("neutrino-outside-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite://{}", dir.join("db.sqlite").display());
        let ini = neutrino_lib::ini::Ini::default();
        let net = crate::service::NetworkService::start(&db, &ini, "in-process://outside-test").await.unwrap();
        let api = net.api(Arc::new(neutrino_api::NoAuth));
        let a = super::ensure_public_network(&api, "admin", "public").await.unwrap();
        let b = super::ensure_public_network(&api, "admin", "public").await.unwrap();
        assert_eq!((a.network_id.as_str(), a.subnet_id.as_str()), (b.network_id.as_str(), b.subnet_id.as_str()));
        let ctx = neutrino_lib::Context::admin();
        let n = api.plugin_for_collection("networks").unwrap().get(&ctx, &a.network_id).await.unwrap();
        assert_eq!(n["router:external"], true);
        assert_eq!(n["provider:network_type"], "flat");
        assert_eq!(n["provider:physical_network"], "public");
        assert_eq!(n["project_id"], "admin");
        let s = api.plugin_for_collection("subnets").unwrap().get(&ctx, &a.subnet_id).await.unwrap();
        assert_eq!(s["gateway_ip"], "203.0.113.1");
        assert_eq!(s["enable_dhcp"], false);
        net.store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"), "{\"a\":1}");
    }
}
