//! [`EmbeddedAuth`]: the network API's authenticator when identity runs in
//! the same process — tokens are validated against the [`IdentityService`]
//! directly, with no HTTP round trip.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::HeaderMap;
use neutrino_api::{AuthFailure, Authenticator};
use neutrino_lib::Context;

use crate::{IdentityError, IdentityService};

/// Validates `X-Auth-Token` in-process.
#[derive(Debug, Clone)]
pub struct EmbeddedAuth {
    service: Arc<IdentityService>,
}

impl EmbeddedAuth {
    /// An authenticator over the service.
    pub fn new(service: Arc<IdentityService>) -> Self {
        EmbeddedAuth { service }
    }

    fn failure(&self, message: &str) -> AuthFailure {
        AuthFailure { message: message.into(), www_authenticate: Some(self.service.public_url().to_string()) }
    }
}

#[async_trait]
impl Authenticator for EmbeddedAuth {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Context, AuthFailure> {
        let Some(token) =
            headers.get("x-auth-token").and_then(|v| v.to_str().ok()).map(str::trim).filter(|t| !t.is_empty())
        else {
            return Err(self.failure("The request you have made requires authentication."));
        };
        match self.service.validate_token(token).await {
            Ok(info) => Ok(info.to_context()),
            Err(IdentityError::TokenNotFound) => {
                Err(self.failure("The request you have made requires authentication."))
            }
            Err(e) => {
                tracing::error!(error = %e, "token validation failed");
                Err(self.failure("The identity service could not validate the token."))
            }
        }
    }
}
