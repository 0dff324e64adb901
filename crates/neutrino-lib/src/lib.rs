//! neutrino-lib: the shared vocabulary of neutrino, in the role neutron-lib plays for Neutron.
//!
//! * [`attr`] and [`resource`]: declarative attribute maps (what may be POSTed, PUT, filtered,
//!   sorted, and how each value is validated and converted);
//! * [`defs`]: the resource definitions neutrino serves;
//! * [`checks`]: validators and converters used by those definitions;
//! * [`fault`]: the Neutron-shaped error every layer finally turns into;
//! * [`context`]: who is calling (project, roles);
//! * [`plugin`]: the interface between the API edge and the plugins;
//! * [`extensions`]: the extension descriptors listed by `GET /v2.0/extensions`.

pub mod attr;
pub mod checks;
pub mod context;
pub mod defs;
pub mod extensions;
pub mod fault;
pub mod ini;
pub mod listing;
pub mod plugin;
pub mod resource;
pub mod southbound;
pub mod time;

pub use context::Context;
pub use fault::Fault;

/// A resource as it travels between layers: a JSON object.
pub type Map = serde_json::Map<String, serde_json::Value>;

/// Generates a new resource id (a random UUID, as Neutron does).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
