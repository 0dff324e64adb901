//! Who may do what in the identity API: a condensed form of Keystone's
//! default policy.
//!
//! * **admin**: the `admin` role, in any scope (a project-scoped admin token,
//!   as Tempest and the CLI use, administers the whole deployment);
//! * **reader**: admin, or a system-scoped token with the `reader` role;
//! * **self**: a user may read itself, the projects it holds roles on, and
//!   its own role assignments, and may validate or revoke its own tokens;
//! * **service**: the `service` role (keystonemiddleware in other services)
//!   may validate anybody's token.

use crate::tokens::TokenInfo;
use crate::{IdentityError, Result};

/// The authenticated caller of an identity API request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's token.
    pub token: String,
    /// What it stands for.
    pub info: TokenInfo,
}

impl Caller {
    /// The caller's user id.
    pub fn user_id(&self) -> &str {
        &self.info.user.id
    }

    /// Holds the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.info.has_role("admin")
    }

    /// May read everything: admin, or a system-scoped reader.
    pub fn is_reader(&self) -> bool {
        self.is_admin() || (self.info.is_system() && self.info.has_role("reader"))
    }

    /// Holds the `service` role.
    pub fn is_service(&self) -> bool {
        self.info.has_role("service")
    }

    /// Requires admin for `identity:<action>`.
    pub fn require_admin(&self, action: &str) -> Result<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(self.refuse(action))
        }
    }

    /// Requires read access to everything for `identity:<action>`.
    pub fn require_reader(&self, action: &str) -> Result<()> {
        if self.is_reader() {
            Ok(())
        } else {
            Err(self.refuse(action))
        }
    }

    /// Requires reader, or being the user concerned.
    pub fn require_reader_or_self(&self, action: &str, user_id: &str) -> Result<()> {
        if self.is_reader() || self.user_id() == user_id {
            Ok(())
        } else {
            Err(self.refuse(action))
        }
    }

    /// May validate/check the subject token: reader, service, or its owner.
    pub fn may_validate(&self, subject: &TokenInfo) -> bool {
        self.is_reader() || self.is_service() || subject.user.id == self.info.user.id
    }

    /// A 403 for `identity:<action>`, logged.
    pub fn refuse(&self, action: &str) -> IdentityError {
        tracing::info!(user_id = %self.user_id(), action, "identity policy refused");
        IdentityError::Forbidden(action.to_string())
    }
}
