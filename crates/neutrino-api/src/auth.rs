//! Who is calling: the [`Authenticator`] turns request headers into a
//! [`Context`]. The same policy code runs whatever the authenticator.

use async_trait::async_trait;
use axum::http::HeaderMap;
use neutrino_lib::Context;

/// Why a request was not authenticated (rendered as keystonemiddleware does:
/// 401 with `WWW-Authenticate: Keystone uri="…"`, or 503 when the identity
/// service cannot be reached).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AuthFailure {
    /// What went wrong, for the response body.
    pub message: String,
    /// The identity service URL for `WWW-Authenticate`.
    pub www_authenticate: Option<String>,
    /// 401 (bad credentials) or 503 (identity service unavailable).
    pub status: u16,
}

impl AuthFailure {
    /// The token is missing, invalid, expired or revoked: 401.
    pub fn unauthorized(message: impl Into<String>, www_authenticate: Option<String>) -> Self {
        AuthFailure { message: message.into(), www_authenticate, status: 401 }
    }

    /// The identity service cannot answer: 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        AuthFailure { message: message.into(), www_authenticate: None, status: 503 }
    }
}

/// Identifies callers.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Builds the caller's context from the request headers.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Context, AuthFailure>;
}

/// Development mode without tokens: the caller declares itself with
/// `X-Project-Id`, `X-Roles` (comma-separated) and optionally `X-User-Id`.
/// Without `X-Project-Id` the caller is an admin of project `admin`.
pub struct NoAuth;

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

#[async_trait]
impl Authenticator for NoAuth {
    async fn authenticate(&self, h: &HeaderMap) -> Result<Context, AuthFailure> {
        let project = header(h, "x-project-id").or_else(|| header(h, "x-tenant-id"));
        let roles: Vec<String> = match header(h, "x-roles") {
            Some(r) => r.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect(),
            None if project.is_none() => vec!["admin".into()],
            None => vec!["member".into()],
        };
        let mut ctx = Context {
            user_id: header(h, "x-user-id"),
            project_id: Some(project.unwrap_or_else(|| "admin".into())),
            roles,
            system_scope: false,
            request_id: String::new(),
        };
        ctx.expand_implied_roles();
        Ok(ctx)
    }
}
