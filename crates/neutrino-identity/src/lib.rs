//! neutrino-identity: identity for neutrino.
//!
//! Two halves:
//!
//! * an **embedded Keystone v3 service** ([`IdentityService`] + [`api::router`]):
//!   domains, projects, users, roles (with implied roles), role assignments,
//!   the service catalog, and Fernet tokens with revocation — the part of
//!   Keystone that the `openstack` CLI, openstacksdk, keystonemiddleware and
//!   Tempest's dynamic credentials use;
//! * **token validation for the network API**: [`EmbeddedAuth`] validates
//!   in-process against the embedded service, [`KeystoneAuth`] validates
//!   against an operator's real Keystone, configured like keystonemiddleware's
//!   `[keystone_authtoken]`.
//!
//! Typical assembly (what `neutrino up` does):
//!
//! ```no_run
//! # async fn f(store: neutrino_store::Store, dir: &std::path::Path) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use neutrino_identity::{bootstrap, BootstrapOptions, IdentityOptions, IdentityService};
//! let opts = IdentityOptions::new("http://127.0.0.1:5000", dir.join("fernet-keys"));
//! let identity = Arc::new(IdentityService::new(store, opts).await?);
//! let outcome = bootstrap::bootstrap(&identity, &BootstrapOptions::new("http://127.0.0.1:9696")).await?;
//! bootstrap::write_openrc(dir, &outcome)?;
//! bootstrap::write_clouds_yaml(dir, &outcome)?;
//! let identity_router = neutrino_identity::router(identity.clone());
//! let auth = neutrino_identity::EmbeddedAuth::new(identity);
//! # Ok(()) }
//! ```

pub mod api;
pub mod app_creds;
pub mod assignments;
pub mod authenticate;
pub mod authtoken;
pub mod bootstrap;
pub mod catalog;
mod db;
pub mod domains;
pub mod embedded;
mod error;
pub mod fernet_keys;
mod input;
pub mod password;
pub mod policy;
pub mod projects;
pub mod revocation;
pub mod roles;
mod schema;
mod service;
pub mod tokens;
pub mod users;

pub use api::router;
pub use authtoken::{KeystoneAuth, KeystoneAuthConfig};
pub use bootstrap::{BootstrapOptions, BootstrapOutcome};
pub use embedded::EmbeddedAuth;
pub use error::IdentityError;
pub use schema::MIGRATIONS;
pub use service::{IdentityOptions, IdentityService};
pub use tokens::{Scope, TokenInfo};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, IdentityError>;

/// The id of the domain every deployment has (Keystone's `default`).
pub const DEFAULT_DOMAIN_ID: &str = "default";
