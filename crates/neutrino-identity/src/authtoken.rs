//! [`KeystoneAuth`]: validating tokens against an operator's real Keystone,
//! as keystonemiddleware's `auth_token` does.
//!
//! The middleware authenticates itself once with the configured service
//! credentials (password method, project scope), then validates each user
//! token with `GET /v3/auth/tokens` (`X-Auth-Token`: its own token,
//! `X-Subject-Token`: the user's). Valid tokens are cached for
//! `token_cache_time` but never past their expiry, invalid ones briefly; so a
//! revocation is honoured within `token_cache_time`. The service token is
//! renewed before it expires and whenever Keystone answers 401.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use neutrino_api::{AuthFailure, Authenticator};
use neutrino_lib::ini::{BadOption, Ini};
use neutrino_lib::Context;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `[keystone_authtoken]` section.
pub const SECTION: &str = "keystone_authtoken";

/// Configuration, named as in keystonemiddleware's `[keystone_authtoken]`.
#[derive(Clone)]
pub struct KeystoneAuthConfig {
    /// The URL clients are told to authenticate at (`WWW-Authenticate`);
    /// defaults to `auth_url`.
    pub www_authenticate_uri: Option<String>,
    /// Keystone's URL (`http://keystone:5000` or `.../v3`).
    pub auth_url: String,
    /// Service user name.
    pub username: String,
    /// Service user password.
    pub password: String,
    /// Service project name.
    pub project_name: String,
    /// Service user's domain name (`Default`).
    pub user_domain_name: String,
    /// Service project's domain name (`Default`).
    pub project_domain_name: String,
    /// Region (informational: validation does not use the catalog).
    pub region_name: Option<String>,
    /// How long a validated token is trusted without asking again (300 s).
    pub token_cache_time: Duration,
    /// How long an invalid token is remembered as invalid (10 s, at most
    /// `token_cache_time`).
    pub negative_cache_time: Duration,
    /// Timeout of each request to Keystone (10 s).
    pub http_timeout: Duration,
}

impl std::fmt::Debug for KeystoneAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneAuthConfig")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("project_name", &self.project_name)
            .field("token_cache_time", &self.token_cache_time)
            .finish_non_exhaustive()
    }
}

/// A `[keystone_authtoken]` section that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeystoneAuthConfigError {
    /// A required option is missing.
    #[error("[keystone_authtoken] {0} is required")]
    Missing(&'static str),
    /// An option does not parse.
    #[error(transparent)]
    Bad(#[from] BadOption),
}

impl KeystoneAuthConfig {
    /// A configuration with keystonemiddleware's defaults.
    pub fn new(
        auth_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
        project_name: impl Into<String>,
    ) -> Self {
        KeystoneAuthConfig {
            www_authenticate_uri: None,
            auth_url: auth_url.into(),
            username: username.into(),
            password: password.into(),
            project_name: project_name.into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            region_name: None,
            token_cache_time: Duration::from_secs(300),
            negative_cache_time: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
        }
    }

    /// Reads `[keystone_authtoken]`: `auth_url`, `username`, `password`,
    /// `project_name` (required), `www_authenticate_uri` (or the older
    /// `auth_uri`), `user_domain_name`, `project_domain_name`, `region_name`,
    /// `token_cache_time`, `http_connect_timeout`.
    pub fn from_ini(ini: &Ini) -> Result<Self, KeystoneAuthConfigError> {
        let req = |k: &'static str| {
            ini.get(SECTION, k).filter(|v| !v.is_empty()).map(String::from).ok_or(KeystoneAuthConfigError::Missing(k))
        };
        let mut c = KeystoneAuthConfig::new(req("auth_url")?, req("username")?, req("password")?, req("project_name")?);
        c.www_authenticate_uri = ini
            .get(SECTION, "www_authenticate_uri")
            .or_else(|| ini.get(SECTION, "auth_uri"))
            .filter(|v| !v.is_empty())
            .map(String::from);
        if let Some(v) = ini.get(SECTION, "user_domain_name").filter(|v| !v.is_empty()) {
            c.user_domain_name = v.into();
        }
        if let Some(v) = ini.get(SECTION, "project_domain_name").filter(|v| !v.is_empty()) {
            c.project_domain_name = v.into();
        }
        c.region_name = ini.get(SECTION, "region_name").filter(|v| !v.is_empty()).map(String::from);
        if let Some(s) = ini.int(SECTION, "token_cache_time")? {
            c.token_cache_time = Duration::from_secs(s.max(0) as u64);
        }
        if let Some(s) = ini.int(SECTION, "http_connect_timeout")? {
            c.http_timeout = Duration::from_secs(s.max(1) as u64);
        }
        c.negative_cache_time = c.negative_cache_time.min(c.token_cache_time);
        // keystonemiddleware's auth_type is always password here.
        let _ = ini.get(SECTION, "auth_type");
        Ok(c)
    }

    /// The v3 base URL derived from `auth_url` (no trailing slash).
    pub fn v3_url(&self) -> String {
        let base = self.auth_url.trim_end_matches('/');
        if base.ends_with("/v3") {
            base.to_string()
        } else {
            format!("{base}/v3")
        }
    }

    /// The URL for `WWW-Authenticate`.
    pub fn www_authenticate(&self) -> String {
        self.www_authenticate_uri.clone().unwrap_or_else(|| self.auth_url.clone())
    }
}

#[derive(Clone)]
enum Cached {
    Valid(Box<Context>),
    Invalid,
}

struct CacheEntry {
    value: Cached,
    until: Instant,
}

struct ServiceToken {
    token: String,
    expires_at: DateTime<Utc>,
}

/// Largest number of cached token results before expired ones are swept.
const CACHE_SWEEP_AT: usize = 10_000;

/// Why a remote validation did not produce an answer.
enum Remote {
    /// Keystone said the token is invalid (404).
    Invalid,
    /// Our service token was refused (401): renew and retry.
    ServiceTokenRefused,
    /// Anything else: Keystone unreachable, 403, 5xx, unreadable body.
    Unavailable(String),
}

/// Validates user tokens against a remote Keystone.
pub struct KeystoneAuth {
    cfg: KeystoneAuthConfig,
    v3: String,
    http: reqwest::Client,
    service_token: tokio::sync::Mutex<Option<ServiceToken>>,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    remote_validations: AtomicU64,
    service_logins: AtomicU64,
}

impl std::fmt::Debug for KeystoneAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeystoneAuth({})", self.v3)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The request context and expiry from a Keystone `{"token": ...}` body.
pub fn context_from_token_body(body: &Value) -> Option<(Context, DateTime<Utc>)> {
    let t = body.get("token")?;
    let expires_at = parse_time(t.get("expires_at")?.as_str()?)?;
    let user_id = t.pointer("/user/id").and_then(Value::as_str).map(String::from);
    let project_id = t.pointer("/project/id").and_then(Value::as_str).map(String::from);
    let roles = t
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter().filter_map(|r| r.get("name").and_then(Value::as_str)).map(|n| n.to_ascii_lowercase()).collect()
        })
        .unwrap_or_default();
    let system_scope = t.pointer("/system/all").and_then(Value::as_bool) == Some(true);
    let mut ctx = Context { user_id, project_id, roles, system_scope, request_id: String::new() };
    ctx.expand_implied_roles();
    Some((ctx, expires_at))
}

impl KeystoneAuth {
    /// An authenticator for the configured Keystone (no request is made yet).
    pub fn new(cfg: KeystoneAuthConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(cfg.http_timeout)
            .user_agent(concat!("neutrino/", env!("CARGO_PKG_VERSION"), " authtoken"))
            .build()?;
        Ok(KeystoneAuth {
            v3: cfg.v3_url(),
            cfg,
            http,
            service_token: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            remote_validations: AtomicU64::new(0),
            service_logins: AtomicU64::new(0),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KeystoneAuthConfig {
        &self.cfg
    }

    /// How many validations were sent to Keystone (cache misses), for
    /// diagnostics and tests.
    pub fn remote_validations(&self) -> u64 {
        self.remote_validations.load(Ordering::Relaxed)
    }

    /// How many times the service user authenticated.
    pub fn service_logins(&self) -> u64 {
        self.service_logins.load(Ordering::Relaxed)
    }

    /// Forgets every cached result.
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    fn failure(&self, message: &str) -> AuthFailure {
        AuthFailure::unauthorized(message, Some(self.cfg.www_authenticate()))
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Cached> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|e| e.until > Instant::now()).map(|e| e.value.clone())
    }

    fn remember(&self, key: [u8; 32], value: Cached, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_SWEEP_AT {
                let now = Instant::now();
                cache.retain(|_, e| e.until > now);
                if cache.len() >= CACHE_SWEEP_AT {
                    cache.clear();
                }
            }
            cache.insert(key, CacheEntry { value, until: Instant::now() + ttl });
        }
    }

    /// Authenticates the service user (password, project scope).
    async fn login(&self) -> Result<ServiceToken, String> {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.cfg.username,
                "domain": {"name": self.cfg.user_domain_name},
                "password": self.cfg.password,
            }}},
            "scope": {"project": {"name": self.cfg.project_name, "domain": {"name": self.cfg.project_domain_name}}},
        }});
        let resp = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.v3))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("cannot reach Keystone at {}: {e}", self.v3))?;
        let status = resp.status().as_u16();
        if status != 201 {
            return Err(format!("service user authentication refused: HTTP {status}"));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .ok_or("Keystone sent no X-Subject-Token")?;
        let body: Value = resp.json().await.map_err(|e| format!("token body: {e}"))?;
        let expires_at = body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .ok_or("token body without expires_at")?;
        self.service_logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(username = %self.cfg.username, %expires_at, "authenticated to Keystone as the service user");
        Ok(ServiceToken { token, expires_at })
    }

    /// The service token, renewed when missing, expiring within a minute,
    /// or `refused` by Keystone.
    async fn service_token(&self, refused: Option<&str>) -> Result<String, String> {
        let mut guard = self.service_token.lock().await;
        let stale = match &*guard {
            None => true,
            Some(t) => refused == Some(t.token.as_str()) || t.expires_at - chrono::Duration::seconds(60) <= Utc::now(),
        };
        if stale {
            *guard = Some(self.login().await?);
        }
        Ok(guard.as_ref().map(|t| t.token.clone()).unwrap_or_default())
    }

    async fn validate_remote(&self, service_token: &str, token: &str) -> Result<(Context, DateTime<Utc>), Remote> {
        self.remote_validations.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .get(format!("{}/auth/tokens?nocatalog", self.v3))
            .header("X-Auth-Token", service_token)
            .header("X-Subject-Token", token)
            .send()
            .await
            .map_err(|e| Remote::Unavailable(format!("cannot reach Keystone: {e}")))?;
        match resp.status().as_u16() {
            200 => {
                let body: Value =
                    resp.json().await.map_err(|e| Remote::Unavailable(format!("validation body: {e}")))?;
                context_from_token_body(&body)
                    .ok_or_else(|| Remote::Unavailable("validation body without token/expires_at".into()))
            }
            404 => Err(Remote::Invalid),
            401 => Err(Remote::ServiceTokenRefused),
            s => Err(Remote::Unavailable(format!("Keystone answered HTTP {s} to token validation"))),
        }
    }
}

#[async_trait]
impl Authenticator for KeystoneAuth {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Context, AuthFailure> {
        const MSG: &str = "The request you have made requires authentication.";
        let Some(token) =
            headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
        else {
            return Err(self.failure(MSG));
        };
        let key = digest(token);
        match self.cached(&key) {
            Some(Cached::Valid(ctx)) => return Ok(*ctx),
            Some(Cached::Invalid) => return Err(self.failure(MSG)),
            None => {}
        }
        let mut refused: Option<String> = None;
        for _attempt in 0..2 {
            let service = match self.service_token(refused.as_deref()).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot obtain a service token from Keystone");
                    return Err(AuthFailure::unavailable("The identity service is unavailable."));
                }
            };
            match self.validate_remote(&service, token).await {
                Ok((ctx, expires_at)) => {
                    let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
                    if left.is_zero() {
                        self.remember(key, Cached::Invalid, self.cfg.negative_cache_time);
                        return Err(self.failure(MSG));
                    }
                    self.remember(key, Cached::Valid(Box::new(ctx.clone())), left.min(self.cfg.token_cache_time));
                    return Ok(ctx);
                }
                Err(Remote::Invalid) => {
                    tracing::debug!("Keystone reports the token invalid");
                    self.remember(key, Cached::Invalid, self.cfg.negative_cache_time);
                    return Err(self.failure(MSG));
                }
                Err(Remote::ServiceTokenRefused) => {
                    tracing::info!("Keystone refused the service token; authenticating again");
                    refused = Some(service);
                }
                Err(Remote::Unavailable(e)) => {
                    tracing::error!(error = %e, "token validation failed");
                    return Err(self.failure("The identity service could not validate the token."));
                }
            }
        }
        Err(self.failure("The identity service refuses this service's credentials."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keystone_authtoken_section() {
        let ini = Ini::parse(
            "[keystone_authtoken]\nwww_authenticate_uri = http://ks:5000\nauth_url = http://ks:5000\nauth_type = password\nusername = neutron\npassword = pw\nproject_name = service\nuser_domain_name = Default\nproject_domain_name = Default\nregion_name = RegionOne\ntoken_cache_time = 60\n",
        );
        let c = KeystoneAuthConfig::from_ini(&ini).unwrap();
        assert_eq!(c.v3_url(), "http://ks:5000/v3");
        assert_eq!(c.username, "neutron");
        assert_eq!(c.token_cache_time, Duration::from_secs(60));
        assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(c.www_authenticate(), "http://ks:5000");
        assert!(!format!("{c:?}").contains("pw"));

        let missing = Ini::parse("[keystone_authtoken]\nauth_url = http://ks/v3/\n");
        assert!(matches!(KeystoneAuthConfig::from_ini(&missing), Err(KeystoneAuthConfigError::Missing("username"))));
        let c2 = KeystoneAuthConfig::new("http://ks/identity/v3/", "u", "p", "service");
        assert_eq!(c2.v3_url(), "http://ks/identity/v3");
    }

    #[test]
    fn context_from_keystone_body() {
        let body = json!({"token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": "u1"}, "project": {"id": "p1"},
            "roles": [{"id": "x", "name": "Member"}],
        }});
        let (ctx, exp) = context_from_token_body(&body).unwrap();
        assert_eq!(ctx.user_id.as_deref(), Some("u1"));
        assert_eq!(ctx.project_id.as_deref(), Some("p1"));
        assert_eq!(ctx.roles, vec!["member", "reader"]);
        assert_eq!(exp.timestamp(), 4070908800);
        assert!(context_from_token_body(&json!({"token": {}})).is_none());
    }
}
