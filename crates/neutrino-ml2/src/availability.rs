//! Network IP availability: how many addresses each network and subnet has
//! and uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use neutrino_ipam::pools;
use neutrino_lib::attr::Attr;
use neutrino_lib::plugin::{ListHint, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{NETWORKS, SUBNETS};
use serde_json::{json, Value};

use crate::error::Ml2Error;
use crate::subnet::ipam_ref;
use crate::Core;

const ATTRS: &[Attr] = &[
    Attr::ro("network_id").filter(),
    Attr::ro("network_name").filter(),
    Attr::ro("total_ips"),
    Attr::ro("used_ips"),
    Attr::ro("subnet_ip_availability"),
    Attr::ro("ip_version").hidden().filter(),
];

/// The `network-ip-availabilities` resource (read-only, admin).
pub static NETWORK_IP_AVAILABILITY: ResourceDef = ResourceDef {
    member: "network_ip_availability",
    collection: "network_ip_availabilities",
    path: "network-ip-availabilities",
    label: "Network",
    not_found: "NetworkNotFound",
    attrs: ATTRS,
    project: true,
    standard: false,
    tags: false,
};

/// Serves `network-ip-availabilities`.
pub struct NetworkIpAvailabilities(pub Arc<Core>);

impl NetworkIpAvailabilities {
    async fn build(&self, nets: Vec<Map>) -> Result<Vec<Map>, Fault> {
        let store = &self.0.store;
        let ids: Vec<String> = nets.iter().map(|n| stamp::str_of(n, "id").to_string()).collect();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let subnets = store.list(&SUBNETS, &[("network_id", ids)]).await.map_err(Ml2Error::from)?;
        let sids: Vec<String> = subnets.iter().map(|s| stamp::str_of(s, "id").to_string()).collect();
        let used: BTreeMap<String, i64> =
            store.alloc_counts(&sids).await.map_err(Ml2Error::from)?.into_iter().collect();
        let mut out = vec![];
        for n in nets {
            let nid = stamp::str_of(&n, "id");
            let mut total: u128 = 0;
            let mut used_n: i64 = 0;
            let mut per = vec![];
            for s in subnets.iter().filter(|s| stamp::str_of(s, "network_id") == nid) {
                let r = ipam_ref(s)?;
                let t = pools::total(&r.pools);
                let u = used.get(&r.id).copied().unwrap_or(0);
                total = total.saturating_add(t);
                used_n += u;
                per.push(json!({
                    "subnet_id": r.id,
                    "subnet_name": s.get("name").cloned().unwrap_or(Value::Null),
                    "cidr": r.cidr.to_string(),
                    "ip_version": s.get("ip_version").cloned().unwrap_or(Value::Null),
                    "total_ips": t.min(u64::MAX as u128) as u64,
                    "used_ips": u,
                }));
            }
            let mut m = Map::new();
            m.insert("network_id".into(), json!(nid));
            m.insert("network_name".into(), n.get("name").cloned().unwrap_or(Value::Null));
            m.insert("project_id".into(), n.get("project_id").cloned().unwrap_or(Value::Null));
            m.insert("tenant_id".into(), n.get("project_id").cloned().unwrap_or(Value::Null));
            m.insert("total_ips".into(), json!(total.min(u64::MAX as u128) as u64));
            m.insert("used_ips".into(), json!(used_n));
            m.insert("subnet_ip_availability".into(), Value::Array(per));
            m.insert("id".into(), json!(nid));
            out.push(m);
        }
        Ok(out)
    }
}

#[async_trait]
impl ResourcePlugin for NetworkIpAvailabilities {
    fn def(&self) -> &'static ResourceDef {
        &NETWORK_IP_AVAILABILITY
    }

    async fn create(&self, _ctx: &Context, _items: Vec<Map>) -> Result<Vec<Map>, Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "The method POST is not allowed for network-ip-availabilities."))
    }

    async fn get(&self, ctx: &Context, id: &str) -> Result<Map, Fault> {
        if !ctx.is_admin() {
            return Err(Fault::policy("get_network_ip_availability"));
        }
        let n = self
            .0
            .store
            .get(&NETWORKS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::NetworkNotFound(id.into()))?;
        Ok(self.build(vec![n]).await?.remove(0))
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> Result<Vec<Map>, Fault> {
        if !ctx.is_admin() {
            return Err(Fault::policy("get_network_ip_availability"));
        }
        let mut nets = self.0.store.list(&NETWORKS, &[]).await.map_err(Ml2Error::from)?;
        if let Some(ids) = hint.values("network_id") {
            nets.retain(|n| ids.iter().any(|i| i.as_str() == Some(stamp::str_of(n, "id"))));
        }
        let mut out = self.build(nets).await?;
        if let Some(v) = hint.values("ip_version") {
            for n in out.iter_mut() {
                if let Some(Value::Array(per)) = n.get_mut("subnet_ip_availability") {
                    per.retain(|s| {
                        v.iter().any(|x| {
                            x.as_str().and_then(|x| x.parse::<i64>().ok())
                                == s.get("ip_version").and_then(Value::as_i64)
                                || Some(x) == s.get("ip_version")
                        })
                    });
                }
            }
        }
        Ok(out)
    }

    async fn update(&self, _ctx: &Context, _id: &str, _c: Map, _m: Option<i64>) -> Result<Map, Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "The method PUT is not allowed for network-ip-availabilities."))
    }

    async fn delete(&self, _ctx: &Context, _id: &str, _m: Option<i64>) -> Result<(), Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "The method DELETE is not allowed for network-ip-availabilities."))
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["network-ip-availability"]
    }
}
