//! The identity error: every failure of this crate, and how Keystone shows it
//! (`{"error": {"code", "title", "message"}}` with an HTTP status).
//!
//! The user-facing message is the `Display` text; internal causes (database,
//! key repository) are logged and replaced by a generic message.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What can go wrong in the identity service.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// 401: the caller is not authenticated (no token, bad token, bad
    /// credentials). Failed logins all share one message.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the policy refuses the action (`identity:<action>`).
    #[error("You are not authorized to perform the requested action: identity:{0}.")]
    Forbidden(String),
    /// 403 with a specific explanation (e.g. deleting an enabled domain).
    #[error("{0}")]
    ForbiddenAction(String),
    /// 404: an unknown id (`kind` is Keystone's word: project, user, role...).
    #[error("Could not find {kind}: {id}.")]
    NotFound {
        /// What was looked for.
        kind: &'static str,
        /// The id (or name) given.
        id: String,
    },
    /// 404: the subject token is invalid, expired or revoked.
    #[error("Failed to validate token")]
    TokenNotFound,
    /// 409: a duplicate.
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict {
        /// What was being stored.
        kind: &'static str,
        /// Why it conflicts.
        detail: String,
    },
    /// 400: the request is malformed or violates the schema.
    #[error("{0}")]
    BadRequest(String),
    /// 503: a dependency (a remote Keystone) cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// 500: the database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// 500: the store failed.
    #[error("store error: {0}")]
    Store(#[from] neutrino_store::StoreError),
    /// 500: the Fernet key repository is unusable.
    #[error("key repository: {0}")]
    Keys(String),
    /// 500: anything else internal.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IdentityError {
    /// 401 with Keystone's generic message.
    pub fn unauthenticated() -> Self {
        IdentityError::Unauthorized("The request you have made requires authentication.".into())
    }

    /// 400 for one invalid field, in Keystone's schema-validation wording.
    pub fn invalid_field(field: &str, reason: impl std::fmt::Display) -> Self {
        IdentityError::BadRequest(format!("Invalid input for field '{field}': {reason}"))
    }

    /// 400 for a missing attribute.
    pub fn missing(attr: &str, target: &str) -> Self {
        IdentityError::BadRequest(format!(
            "Expecting to find {attr} in {target}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error."
        ))
    }

    /// 404 helper.
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        IdentityError::NotFound { kind, id: id.into() }
    }

    /// 409 helper.
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        IdentityError::Conflict { kind, detail: detail.into() }
    }

    /// Is this a unique-constraint violation from the database?
    pub fn is_unique_violation(&self) -> bool {
        match self {
            IdentityError::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            IdentityError::Store(s) => s.is_unique_violation(),
            _ => false,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            IdentityError::Unauthorized(_) => 401,
            IdentityError::Forbidden(_) | IdentityError::ForbiddenAction(_) => 403,
            IdentityError::NotFound { .. } | IdentityError::TokenNotFound => 404,
            IdentityError::Conflict { .. } => 409,
            IdentityError::BadRequest(_) => 400,
            IdentityError::Unavailable(_) => 503,
            IdentityError::Db(_) | IdentityError::Store(_) | IdentityError::Keys(_) | IdentityError::Internal(_) => 500,
        }
    }

    /// Keystone's title for the status.
    pub fn title(&self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        }
    }

    /// The message shown to the client (internal causes are hidden).
    pub fn public_message(&self) -> String {
        if self.status() == 500 {
            "An unexpected error prevented the server from fulfilling your request.".into()
        } else {
            self.to_string()
        }
    }

    /// Keystone's error body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "code": self.status(),
            "title": self.title(),
            "message": self.public_message(),
        }})
    }

    /// The response, with `WWW-Authenticate` on 401 when the identity URL is known.
    pub fn into_response_with(self, www_authenticate: Option<&str>) -> Response {
        if self.status() == 500 {
            tracing::error!(error = %self, "identity request failed");
        }
        let mut r = (
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, "application/json")],
            self.body().to_string(),
        )
            .into_response();
        if self.status() == 401 {
            if let Some(uri) = www_authenticate {
                if let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{uri}\"")) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
        }
        r
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        self.into_response_with(None)
    }
}
