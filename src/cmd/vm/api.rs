//! The network API as `neutrino vm` reaches it: like any client, with the
//! credentials of the state directory (`openrc`): development mode
//! (`OS_AUTH_TYPE=none`: `X-Project-Id`/`X-Roles` headers) or a Keystone token
//! (`POST /v3/auth/tokens`), whose catalog also says whether Nova (a
//! `compute` endpoint) wants port events.
//!
//! Plain HTTP/1.1 over TCP, one connection per request; `https://` is not
//! supported (the embedded services speak plain HTTP).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// JSON body (`Null` when empty or not JSON).
    pub body: Value,
}

fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("http://").with_context(|| format!("{url}: only http:// endpoints are supported"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
    Ok((hostport, path.to_string()))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..i])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        b = &b[i + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
    out
}

/// One request to an absolute `url`.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&Value>,
) -> anyhow::Result<Response> {
    let (hostport, path) = split_url(url)?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if body.is_some() {
        req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", payload.len()));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    let exchange = async {
        let mut s =
            tokio::net::TcpStream::connect(&hostport).await.with_context(|| format!("connecting to {hostport}"))?;
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .with_context(|| format!("{method} {url}: no answer in 60 s"))??;
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").with_context(|| format!("{method} {url}: bad response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{method} {url}: bad status line"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    let mut body_bytes = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body_bytes = dechunk(&body_bytes);
    }
    let body = serde_json::from_slice(&body_bytes).unwrap_or(Value::Null);
    Ok(Response { status, headers, body })
}

/// Reads `export K=V` lines of an openrc (single or double quotes removed).
pub fn parse_openrc(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let l = l.trim();
        let Some(kv) = l.strip_prefix("export ") else { continue };
        let Some((k, v)) = kv.split_once('=') else { continue };
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('\'') && v.ends_with('\'')) || (v.starts_with('"') && v.ends_with('"')))
        {
            v[1..v.len() - 1].replace("'\\''", "'")
        } else {
            v.to_string()
        };
        out.insert(k.trim().to_string(), v);
    }
    out
}

/// How requests are authorized.
#[derive(Debug, Clone)]
enum Auth {
    /// Development mode: the caller declares its project and roles.
    NoAuth,
    /// A Keystone token.
    Token(String),
}

/// A client of the network API.
#[derive(Debug, Clone)]
pub struct Api {
    /// Base URL (`http://host:port`).
    pub endpoint: String,
    auth: Auth,
    /// The compute endpoint of the catalog, if any (Nova wants port events then).
    pub compute: Option<String>,
}

impl Api {
    /// From the environment (`OS_*`) over the state directory's `openrc`.
    pub async fn from_state_dir(dir: &Path) -> anyhow::Result<Api> {
        let mut env = std::fs::read_to_string(dir.join("openrc")).map(|t| parse_openrc(&t)).unwrap_or_default();
        for (k, v) in std::env::vars() {
            if k.starts_with("OS_") {
                env.insert(k, v);
            }
        }
        let get = |k: &str| env.get(k).cloned().filter(|v| !v.is_empty());
        let noauth = get("OS_AUTH_TYPE").is_some_and(|t| t == "none" || t == "noauth") || get("OS_AUTH_URL").is_none();
        if noauth {
            let endpoint = get("OS_ENDPOINT")
                .or_else(|| get("OS_NETWORK_ENDPOINT"))
                .context("no OS_ENDPOINT in the environment or the state directory's openrc")?;
            return Ok(Api { endpoint: endpoint.trim_end_matches('/').to_string(), auth: Auth::NoAuth, compute: None });
        }
        let auth_url = get("OS_AUTH_URL").unwrap_or_default();
        let base = auth_url.trim_end_matches('/');
        let tokens =
            if base.ends_with("/v3") { format!("{base}/auth/tokens") } else { format!("{base}/v3/auth/tokens") };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": get("OS_USERNAME").context("OS_USERNAME missing")?,
                "domain": {"name": get("OS_USER_DOMAIN_NAME").unwrap_or_else(|| "Default".into())},
                "password": get("OS_PASSWORD").context("OS_PASSWORD missing")?,
            }}},
            "scope": {"project": {
                "name": get("OS_PROJECT_NAME").context("OS_PROJECT_NAME missing")?,
                "domain": {"name": get("OS_PROJECT_DOMAIN_NAME").unwrap_or_else(|| "Default".into())},
            }},
        }});
        let r = request("POST", &tokens, &[], Some(&body)).await?;
        if r.status != 201 {
            bail!("authentication at {tokens} failed: HTTP {} {}", r.status, r.body);
        }
        let token = r.headers.get("x-subject-token").cloned().context("no X-Subject-Token in the answer")?;
        let interface = get("OS_INTERFACE").unwrap_or_else(|| "public".into());
        let region = get("OS_REGION_NAME");
        let find = |kind: &str| -> Option<String> {
            let cat = r.body["token"]["catalog"].as_array()?;
            let svc = cat.iter().find(|s| s["type"] == kind)?;
            svc["endpoints"]
                .as_array()?
                .iter()
                .filter(|e| e["interface"] == interface.as_str())
                .find(|e| region.as_deref().is_none_or(|rg| e["region_id"] == rg || e["region"] == rg))
                .and_then(|e| e["url"].as_str())
                .map(|u| u.trim_end_matches('/').to_string())
        };
        let endpoint = get("OS_ENDPOINT").or_else(|| find("network")).context("no network endpoint in the catalog")?;
        Ok(Api { endpoint, auth: Auth::Token(token), compute: find("compute") })
    }

    fn headers(&self, project: Option<&str>) -> Vec<(String, String)> {
        match &self.auth {
            Auth::NoAuth => vec![
                ("X-Project-Id".into(), project.unwrap_or("admin").to_string()),
                ("X-Roles".into(), "admin,member".into()),
            ],
            Auth::Token(t) => vec![("X-Auth-Token".into(), t.clone())],
        }
    }

    /// A request on the network API (`path` under `/v2.0`), acting in
    /// `project` (development mode only; a token carries its own scope).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        project: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let url = format!("{}/v2.0/{}", self.endpoint, path.trim_start_matches('/'));
        request(method, &url, &self.headers(project), body).await
    }

    /// Like [`Api::call`], failing unless the status is `want`.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        project: Option<&str>,
        body: Option<&Value>,
        want: u16,
    ) -> anyhow::Result<Value> {
        let r = self.call(method, path, project, body).await?;
        if r.status != want {
            bail!("{method} /v2.0/{path}: HTTP {}: {}", r.status, r.body);
        }
        Ok(r.body)
    }

    /// Tells Nova a VIF is plugged (`network-vif-plugged`), when the catalog
    /// has a compute endpoint (never in development mode).
    pub async fn notify_vif_plugged(&self, server_uuid: &str, port_id: &str) -> anyhow::Result<bool> {
        let (Some(compute), Auth::Token(_)) = (&self.compute, &self.auth) else { return Ok(false) };
        let body = json!({"events": [{"name": "network-vif-plugged", "server_uuid": server_uuid, "tag": port_id, "status": "completed"}]});
        let r =
            request("POST", &format!("{compute}/os-server-external-events"), &self.headers(None), Some(&body)).await?;
        if !(200..300).contains(&r.status) {
            tracing::warn!(status = r.status, body = %r.body, "Nova did not take the network-vif-plugged event");
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc() {
        let m = parse_openrc(
            "# x\nexport OS_AUTH_URL=http://127.0.0.1:5000/v3\nexport OS_PASSWORD='a b'\nexport OS_X=\"q\"\n",
        );
        assert_eq!(m["OS_AUTH_URL"], "http://127.0.0.1:5000/v3");
        assert_eq!(m["OS_PASSWORD"], "a b");
        assert_eq!(m["OS_X"], "q");
    }

    #[test]
    fn chunks() {
        assert_eq!(dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"), b"Wikipedia");
        assert_eq!(
            split_url("http://127.0.0.1:9696/v2.0/ports").unwrap(),
            ("127.0.0.1:9696".into(), "/v2.0/ports".into())
        );
        assert!(split_url("https://x").is_err());
    }
}
