//! [`EmbeddedAuth`]: the network API's authenticator when identity runs in
//! the same process — tokens are validated against the [`IdentityService`]
//! directly, with no HTTP round trip.
//!
//! Validated tokens are cached briefly, keyed by the token's SHA-256. A
//! cached entry is used only while the service's
//! [generation](IdentityService::generation) is unchanged, so any identity
//! write in this process (revocation, password change, role removal, ...)
//! takes effect at once; `cache_time` bounds how long a change made by
//! another server on the same database can go unseen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::Utc;
use neutrino_api::{AuthFailure, Authenticator};
use neutrino_lib::Context;
use sha2::{Digest, Sha256};

use crate::{IdentityError, IdentityService};

/// Default upper bound on the age of a cached validation.
pub const DEFAULT_CACHE_TIME: Duration = Duration::from_secs(5);

/// Cached validations beyond this count trigger a sweep.
const CACHE_SWEEP_AT: usize = 10_000;

struct Entry {
    ctx: Context,
    generation: u64,
    until: Instant,
}

/// Validates `X-Auth-Token` in-process.
pub struct EmbeddedAuth {
    service: Arc<IdentityService>,
    cache_time: Duration,
    cache: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for EmbeddedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddedAuth({:?}, cache {:?})", self.service, self.cache_time)
    }
}

impl EmbeddedAuth {
    /// An authenticator over the service, caching for [`DEFAULT_CACHE_TIME`].
    pub fn new(service: Arc<IdentityService>) -> Self {
        EmbeddedAuth { service, cache_time: DEFAULT_CACHE_TIME, cache: Mutex::new(HashMap::new()) }
    }

    /// Sets the cache bound (`Duration::ZERO` disables the cache).
    pub fn with_cache_time(mut self, cache_time: Duration) -> Self {
        self.cache_time = cache_time;
        self
    }

    fn failure(&self, message: &str) -> AuthFailure {
        AuthFailure::unauthorized(message, Some(self.service.public_url().to_string()))
    }

    fn cached(&self, key: &[u8; 32], generation: u64) -> Option<Context> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|e| e.generation == generation && e.until > Instant::now()).map(|e| e.ctx.clone())
    }

    fn remember(&self, key: [u8; 32], ctx: Context, generation: u64, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_SWEEP_AT {
                let now = Instant::now();
                cache.retain(|_, e| e.until > now && e.generation == generation);
                if cache.len() >= CACHE_SWEEP_AT {
                    cache.clear();
                }
            }
            cache.insert(key, Entry { ctx, generation, until: Instant::now() + ttl });
        }
    }
}

#[async_trait]
impl Authenticator for EmbeddedAuth {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Context, AuthFailure> {
        const MSG: &str = "The request you have made requires authentication.";
        let Some(token) =
            headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
        else {
            return Err(self.failure(MSG));
        };
        // Read the generation before validating: a write committed meanwhile
        // makes this entry stale.
        let generation = self.service.generation();
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(ctx) = self.cached(&key, generation) {
            return Ok(ctx);
        }
        match self.service.validate_token(token).await {
            Ok(info) => {
                let ctx = info.to_context();
                let left = (info.expires_at - Utc::now()).to_std().unwrap_or_default();
                self.remember(key, ctx.clone(), generation, left.min(self.cache_time));
                Ok(ctx)
            }
            Err(IdentityError::TokenNotFound) => Err(self.failure(MSG)),
            Err(e) => {
                tracing::error!(error = %e, "token validation failed");
                Err(self.failure("The identity service could not validate the token."))
            }
        }
    }
}
