//! `service-providers`: which driver serves each advanced service type.

use async_trait::async_trait;
use neutrino_lib::defs::metering::SERVICE_PROVIDER;
use neutrino_lib::plugin::{ListHint, ResourcePlugin};
use neutrino_lib::resource::ResourceDef;
use neutrino_lib::{Context, Fault, Map};
use serde_json::json;

/// The service providers of this deployment.
pub struct ServiceProviders;

fn read_only() -> Fault {
    Fault::new(405, "HTTPMethodNotAllowed", "Service providers are read-only.")
}

#[async_trait]
impl ResourcePlugin for ServiceProviders {
    fn def(&self) -> &'static ResourceDef {
        &SERVICE_PROVIDER
    }

    async fn create(&self, _ctx: &Context, _items: Vec<Map>) -> Result<Vec<Map>, Fault> {
        Err(read_only())
    }

    async fn get(&self, _ctx: &Context, _id: &str) -> Result<Map, Fault> {
        Err(Fault::no_such_path())
    }

    async fn list(&self, _ctx: &Context, _hint: &ListHint) -> Result<Vec<Map>, Fault> {
        Ok([("L3_ROUTER_NAT", "neutrino")]
            .iter()
            .map(|(t, n)| {
                json!({"service_type": t, "name": n, "default": true}).as_object().cloned().unwrap_or_default()
            })
            .collect())
    }

    async fn update(&self, _ctx: &Context, _id: &str, _c: Map, _m: Option<i64>) -> Result<Map, Fault> {
        Err(read_only())
    }

    async fn delete(&self, _ctx: &Context, _id: &str, _m: Option<i64>) -> Result<(), Fault> {
        Err(read_only())
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["service-type"]
    }
}
