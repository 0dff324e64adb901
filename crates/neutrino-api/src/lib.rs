//! neutrino-api: the northbound Neutron v2.0 REST API.
//!
//! The edge between HTTP and the plugins: it authenticates the caller
//! ([`auth`]), parses and validates request bodies against the resource
//! definitions ([`request`]), enforces Neutron's default policy
//! ([`policy`]), filters, sorts and pages collections ([`listing`]), renders
//! responses and maps every failure to a Neutron fault ([`respond`]).

pub mod auth;
mod discovery;
mod dispatch;
pub mod listing;
pub mod policy;
pub mod request;
pub mod respond;

use std::collections::HashMap;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use neutrino_lib::extensions::Extension;
use neutrino_lib::plugin::ResourcePlugin;

pub use auth::{AuthFailure, Authenticator, NoAuth};

/// A health probe of a dependency (the store, the bus).
pub type HealthCheck =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Everything the API edge needs.
pub struct Api {
    /// Plugins by URL path under `/v2.0/`.
    pub plugins: HashMap<&'static str, Arc<dyn ResourcePlugin>>,
    /// Extensions listed by `GET /v2.0/extensions`.
    pub extensions: Vec<&'static Extension>,
    /// How callers are identified.
    pub auth: Arc<dyn Authenticator>,
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
    /// Health probes, by name.
    pub health: Vec<(&'static str, HealthCheck)>,
}

impl Api {
    /// Builds the API over the given plugins; the extension list is the
    /// union of what the plugins implement.
    pub fn new(plugins: Vec<Arc<dyn ResourcePlugin>>, auth: Arc<dyn Authenticator>) -> Api {
        let mut exts: Vec<&'static Extension> = vec![];
        for p in &plugins {
            for alias in p.extensions() {
                match neutrino_lib::extensions::find(alias) {
                    Some(e) if !exts.iter().any(|x| x.alias == e.alias) => exts.push(e),
                    Some(_) => {}
                    None => tracing::warn!(alias, "plugin names an extension without a descriptor"),
                }
            }
        }
        for alias in discovery::EDGE_EXTENSIONS {
            if let Some(e) = neutrino_lib::extensions::find(alias) {
                if !exts.iter().any(|x| x.alias == e.alias) {
                    exts.push(e);
                }
            }
        }
        exts.sort_by_key(|e| e.alias);
        Api {
            plugins: plugins.into_iter().map(|p| (p.def().path, p)).collect(),
            extensions: exts,
            auth,
            max_body: 1024 * 1024,
            health: vec![],
        }
    }

    /// Finds the plugin serving a collection by its JSON collection name.
    pub fn plugin_for_collection(&self, collection: &str) -> Option<&Arc<dyn ResourcePlugin>> {
        self.plugins.values().find(|p| p.def().collection == collection)
    }

    /// The axum router serving the API.
    pub fn router(self) -> Router {
        let api = Arc::new(self);
        Router::new()
            .route("/", get(discovery::versions))
            .route("/healthcheck", get(discovery::health))
            .fallback(dispatch::dispatch)
            .with_state(api)
    }
}
