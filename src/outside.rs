//! "The outside world" of `neutrino up --sim-hosts`: the admin-owned external
//! flat network `public` (router:external, 203.0.113.0/24, gateway
//! 203.0.113.1, no DHCP) on a physical network of the simulated hosts, and a
//! namespace on that physical network holding 203.0.113.1, "the internet"
//! for SNAT and floating IP tests.
//!
//! The network is created through the running API (plain HTTP/1.1 on the API
//! address, as an admin in noauth mode), so it is validated and notified
//! like any client's. Use:
//!
//! ```ignore
//! let nic = sim.connect_physnet(&network_node, outside::PHYSNET).await?;   // once per host, bridge_mappings public:br-public
//! let outside = outside::provide(api_bind, &sim, outside::PHYSNET, outside::NAMESPACE).await?;
//! // ... outside.world.netns() is "the internet"; dropping `outside` removes the namespace
//! ```
#![allow(dead_code)] // wired into `neutrino up --sim-hosts` by its orchestration

use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use neutrino_agent::l3::outside::{OutsideWorld, DEFAULT_NAMESPACE, DEFAULT_PHYSNET, PUBLIC_CIDR, PUBLIC_GATEWAY};
use neutrino_agent::simhost::SimNet;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The namespace name of the outside world.
pub const NAMESPACE: &str = DEFAULT_NAMESPACE;
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

/// Creates (or finds) `public` and attaches the outside namespace to
/// `physnet` in `sim` (a host must be connected to that physnet already).
pub async fn provide(api: SocketAddr, sim: &SimNet, physnet: &str, namespace: &str) -> anyhow::Result<Outside> {
    let network = ensure_public_network(api, physnet).await?;
    let world = OutsideWorld::attach(sim, physnet, namespace, &format!("{PUBLIC_GATEWAY}/24"))
        .await
        .context("attaching the outside namespace")?;
    Ok(Outside { network, world })
}

/// Creates the admin-owned external flat network `public` on `physnet` with
/// its subnet, unless a network of that name exists. Idempotent.
pub async fn ensure_public_network(api: SocketAddr, physnet: &str) -> anyhow::Result<PublicNetwork> {
    let (_, found) = request(api, "GET", &format!("/v2.0/networks?name={NETWORK_NAME}"), None).await?;
    let network_id = match found["networks"].as_array().and_then(|a| a.first()) {
        Some(n) => n["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let body = json!({"network": {
                "name": NETWORK_NAME,
                "router:external": true,
                "provider:network_type": "flat",
                "provider:physical_network": physnet,
            }});
            let (status, n) = request(api, "POST", "/v2.0/networks", Some(body)).await?;
            if status != 201 {
                bail!("creating network {NETWORK_NAME}: HTTP {status}: {n}");
            }
            n["network"]["id"].as_str().unwrap_or_default().to_string()
        }
    };
    let (_, subnets) = request(api, "GET", &format!("/v2.0/subnets?network_id={network_id}"), None).await?;
    let subnet_id = match subnets["subnets"].as_array().and_then(|a| a.first()) {
        Some(s) => s["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let body = json!({"subnet": {
                "network_id": network_id,
                "name": format!("{NETWORK_NAME}-subnet"),
                "ip_version": 4,
                "cidr": PUBLIC_CIDR,
                "gateway_ip": PUBLIC_GATEWAY,
                "enable_dhcp": false,
            }});
            let (status, s) = request(api, "POST", "/v2.0/subnets", Some(body)).await?;
            if status != 201 {
                bail!("creating the subnet of {NETWORK_NAME}: HTTP {status}: {s}");
            }
            s["subnet"]["id"].as_str().unwrap_or_default().to_string()
        }
    };
    tracing::info!(%network_id, %subnet_id, physnet, "external network ready");
    Ok(PublicNetwork { network_id, subnet_id })
}

/// One HTTP/1.1 request as an admin (noauth headers); returns status and JSON body.
async fn request(api: SocketAddr, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nAccept: application/json\r\nContent-Type: application/json\r\n\
         X-Project-Id: admin\r\nX-Roles: admin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
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
    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"), "{\"a\":1}");
    }
}
