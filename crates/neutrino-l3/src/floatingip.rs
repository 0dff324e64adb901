//! Floating IPs: an address of an external network, mapped 1:1 to a port's
//! fixed address through a router that connects both.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use neutrino_lib::defs::router::FLOATINGIP;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_ml2::notify::{Action, Outbox};
use neutrino_ml2::{Core, Ml2Error};
use neutrino_store::schema::{FLOATINGIPS, NETWORKS, PORTS, ROUTERS, SUBNETS};
use neutrino_store::Tx;
use serde_json::{json, Value};

use crate::error::{bad_fip, L3Error, Result};
use crate::{fixed_ips, router_ports, s, OWNER_FLOATINGIP, OWNER_GATEWAY, OWNER_INTERFACE};

/// The floating IPs collection.
pub struct FloatingIps(pub Arc<Core>);

fn port_details(port: &Map) -> Value {
    json!({
        "name": port.get("name"),
        "network_id": port.get("network_id"),
        "mac_address": port.get("mac_address"),
        "admin_state_up": port.get("admin_state_up"),
        "status": port.get("status"),
        "device_id": port.get("device_id"),
        "device_owner": port.get("device_owner"),
    })
}

impl FloatingIps {
    /// Resolves `port_id`/`fixed_ip_address` into (port, fixed address, router).
    async fn association(
        &self,
        ctx: &Context,
        tx: &mut Tx,
        fip: &Map,
        port_id: &str,
        fixed: Option<&str>,
    ) -> Result<(Map, String, String)> {
        let ext_net = s(fip, "floating_network_id").to_string();
        let port = tx
            .peek(&PORTS, port_id)
            .await?
            .filter(|p| ctx.sees(p))
            .ok_or_else(|| Ml2Error::PortNotFound(port_id.into()))?;
        if s(&port, "network_id") == ext_net {
            return Err(bad_fip(format!(
                "Port {port_id} is on the external network {ext_net}; a floating IP cannot be associated with it"
            )));
        }
        if !ctx.is_admin() && s(&port, "project_id") != s(fip, "project_id") {
            return Err(Ml2Error::PortNotFound(port_id.into()).into());
        }
        let v4: Vec<(String, String)> = fixed_ips(&port).into_iter().filter(|(_, ip)| ip.contains('.')).collect();
        let (subnet, addr) = match fixed {
            Some(f) => v4
                .iter()
                .find(|(_, ip)| ip == f)
                .cloned()
                .ok_or_else(|| bad_fip(format!("Port {port_id} does not have fixed ip {f}")))?,
            None => match v4.as_slice() {
                [] => return Err(bad_fip(format!("Port {port_id} does not have any IPv4 address and cannot have a floating IP"))),
                [one] => one.clone(),
                _ => {
                    return Err(bad_fip(format!(
                        "Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP"
                    )))
                }
            },
        };
        // A router with a gateway on the external network and an interface on the subnet.
        let mut router = None;
        for p in tx
            .list(&PORTS, &[("network_id", vec![ext_net.clone()]), ("device_owner", vec![OWNER_GATEWAY.to_string()])])
            .await?
        {
            let rid = s(&p, "device_id").to_string();
            let connected = router_ports(tx, &rid, OWNER_INTERFACE)
                .await?
                .iter()
                .any(|ip| fixed_ips(ip).iter().any(|(sn, _)| *sn == subnet));
            if connected {
                router = Some(rid);
                break;
            }
        }
        let Some(router) = router else {
            return Err(L3Error::GatewayForFloatingIpNotFound { net: ext_net, subnet, port: port_id.into() });
        };
        for other in tx.list(&FLOATINGIPS, &[("port_id", vec![port_id.to_string()])]).await? {
            if s(&other, "id") != s(fip, "id")
                && s(&other, "fixed_ip_address") == addr
                && s(&other, "floating_network_id") == ext_net
            {
                return Err(L3Error::PortAlreadyAssociated {
                    fip: s(fip, "id").into(),
                    addr: s(fip, "floating_ip_address").into(),
                    port: port_id.into(),
                    fixed: addr,
                    net: ext_net,
                });
            }
        }
        Ok((port, addr, router))
    }

    fn associate(fip: &mut Map, found: Option<(Map, String, String)>) {
        match found {
            Some((port, addr, router)) => {
                // DOWN until the L3 agent hosting the router reports it
                // configured (update_floatingip_statuses), as in Neutron; an
                // unchanged association keeps its status.
                let same = s(fip, "port_id") == s(&port, "id") && s(fip, "fixed_ip_address") == addr;
                if !same || fip.get("status").is_none_or(Value::is_null) {
                    fip.insert("status".into(), json!("DOWN"));
                }
                fip.insert("port_id".into(), json!(s(&port, "id")));
                fip.insert("fixed_ip_address".into(), json!(addr));
                fip.insert("router_id".into(), json!(router));
                fip.insert("port_details".into(), port_details(&port));
            }
            None => {
                for k in ["port_id", "fixed_ip_address", "router_id", "port_details"] {
                    fip.insert(k.into(), Value::Null);
                }
                fip.insert("status".into(), json!("DOWN"));
            }
        }
    }

    async fn create_one(&self, ctx: &Context, tx: &mut Tx, out: &mut Outbox, req: Map) -> Result<Map> {
        let core = &self.0;
        let net_id = s(&req, "floating_network_id").to_string();
        let project = s(&req, "project_id").to_string();
        let net = tx.get_shared(&NETWORKS, &net_id).await?.ok_or_else(|| Ml2Error::NetworkNotFound(net_id.clone()))?;
        if !stamp::bool_of(&net, "router:external") {
            return Err(bad_fip(format!("Network {net_id} is not a valid external network")));
        }
        let subnets: Vec<Map> = tx.list(&SUBNETS, &[("network_id", vec![net_id.clone()])]).await?;
        let v4: Vec<&Map> =
            subnets.iter().filter(|sn| sn.get("ip_version").and_then(Value::as_i64) == Some(4)).collect();
        if v4.is_empty() {
            return Err(bad_fip(format!("Network {net_id} does not contain any IPv4 subnet")));
        }
        let id = neutrino_lib::new_id();
        let addr = req.get("floating_ip_address").and_then(Value::as_str);
        let subnet = req.get("subnet_id").and_then(Value::as_str);
        if let Some(sid) = subnet {
            if !v4.iter().any(|sn| s(sn, "id") == sid) {
                return Err(bad_fip(format!("Subnet {sid} is not an IPv4 subnet of network {net_id}")));
            }
        }
        let fixed = match (subnet, addr) {
            (Some(sid), Some(a)) => json!([{"subnet_id": sid, "ip_address": a}]),
            (Some(sid), None) => json!([{"subnet_id": sid}]),
            (None, Some(a)) => json!([{"ip_address": a}]),
            (None, None) => Value::Array(v4.iter().map(|sn| json!({"subnet_id": s(sn, "id")})).take(1).collect()),
        };
        let mut preq = Map::new();
        preq.insert("network_id".into(), json!(net_id));
        preq.insert("project_id".into(), json!(""));
        preq.insert("device_id".into(), json!(id));
        preq.insert("device_owner".into(), json!(OWNER_FLOATINGIP));
        preq.insert("fixed_ips".into(), fixed);
        let port = match neutrino_ml2::port::create_in(core, &Context::admin(), tx, out, preq).await {
            Ok(p) => p,
            Err(Ml2Error::Ipam(neutrino_ipam::IpamError::Exhausted { .. })) => {
                return Err(L3Error::Core(Ml2Error::Fault(Fault::conflict(
                    "IpAddressGenerationFailure",
                    format!("No more IP addresses available on network {net_id}."),
                ))))
            }
            Err(e) => return Err(e.into()),
        };
        let address =
            fixed_ips(&port).into_iter().find(|(_, ip)| ip.contains('.')).map(|(_, ip)| ip).unwrap_or_default();
        let mut fip = Map::new();
        fip.insert("id".into(), json!(id));
        fip.insert("floating_network_id".into(), json!(net_id));
        fip.insert("floating_ip_address".into(), json!(address));
        fip.insert("description".into(), req.get("description").cloned().unwrap_or(json!("")));
        fip.insert("dns_name".into(), req.get("dns_name").cloned().unwrap_or(json!("")));
        fip.insert("dns_domain".into(), req.get("dns_domain").cloned().unwrap_or(json!("")));
        fip.insert("port_forwardings".into(), json!([]));
        stamp::created(&mut fip, &project, true, true);
        let found = match req.get("port_id").and_then(Value::as_str) {
            Some(pid) => {
                Some(self.association(ctx, tx, &fip, pid, req.get("fixed_ip_address").and_then(Value::as_str)).await?)
            }
            None => None,
        };
        Self::associate(&mut fip, found);
        core.quota_take(tx, &project, "floatingip", 1).await?;
        tx.insert(&FLOATINGIPS, &fip).await?;
        out.push("floatingip", Action::Create, &fip);
        Ok(fip)
    }
}

#[async_trait]
impl ResourcePlugin for FloatingIps {
    fn def(&self) -> &'static ResourceDef {
        &FLOATINGIP
    }

    async fn create(&self, ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut out = Outbox::default();
        let mut docs = vec![];
        for req in items {
            docs.push(self.create_one(ctx, &mut tx, &mut out, req).await?);
        }
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let f = self.0.store.get(&FLOATINGIPS, id).await.map_err(L3Error::from)?;
        Ok(f.filter(|f| ctx.sees(f)).ok_or_else(|| L3Error::FloatingIpNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let conds = if ctx.is_admin() { vec![] } else { vec![neutrino_ml2::own(ctx)] };
        neutrino_ml2::select(&self.0.store, self.def(), &FLOATINGIPS, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        if !ctx.is_admin() {
            h.projects = Some(ctx.project_id.clone().into_iter().collect());
        }
        let mut all =
            self.0.store.list(&FLOATINGIPS, &neutrino_ml2::pushdown(&FLOATINGIPS, &h)).await.map_err(L3Error::from)?;
        all.retain(|f| ctx.sees(f));
        Ok(all)
    }

    async fn update(
        &self,
        ctx: &Context,
        id: &str,
        changes: Map,
        if_match: Option<i64>,
    ) -> std::result::Result<Map, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut fip = tx
            .get(&FLOATINGIPS, id)
            .await
            .map_err(L3Error::from)?
            .ok_or_else(|| L3Error::FloatingIpNotFound(id.into()))?;
        stamp::check_if_match(&fip, if_match)?;
        let previous_router = fip.get("router_id").cloned();
        // Neutron's _check_and_get_fip_assoc: a fixed address needs a port;
        // an update naming no port keeps the association, except a blank
        // one (`{}`), which clears it.
        if changes.get("fixed_ip_address").is_some_and(|v| !v.is_null() && v != "")
            && changes.get("port_id").is_none_or(Value::is_null)
        {
            return Err(bad_fip("fixed_ip_address cannot be specified without a port_id").into());
        }
        if changes.is_empty() {
            Self::associate(&mut fip, None);
        } else if changes.contains_key("port_id") || changes.contains_key("fixed_ip_address") {
            let port_id = match changes.get("port_id") {
                Some(v) => v.as_str().map(String::from),
                None => fip.get("port_id").and_then(Value::as_str).map(String::from),
            };
            let found = match port_id {
                Some(pid) => Some(
                    self.association(ctx, &mut tx, &fip, &pid, changes.get("fixed_ip_address").and_then(Value::as_str))
                        .await?,
                ),
                None => None,
            };
            Self::associate(&mut fip, found);
        }
        if let Some(d) = changes.get("description") {
            fip.insert("description".into(), d.clone());
        }
        stamp::changed(&mut fip);
        tx.update(&FLOATINGIPS, &fip).await.map_err(L3Error::from)?;
        let mut out = Outbox::default();
        let mut ev = fip.clone();
        if let Some(p) = previous_router.filter(|p| !p.is_null() && Some(p) != fip.get("router_id")) {
            ev.insert("_previous_router_id".into(), p);
        }
        out.push("floatingip", Action::Update, &ev);
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(fip)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let fip = tx
            .get(&FLOATINGIPS, id)
            .await
            .map_err(L3Error::from)?
            .ok_or_else(|| L3Error::FloatingIpNotFound(id.into()))?;
        stamp::check_if_match(&fip, if_match)?;
        let mut out = Outbox::default();
        tx.delete(&FLOATINGIPS, id).await.map_err(L3Error::from)?;
        for p in tx
            .list(&PORTS, &[("device_id", vec![id.to_string()]), ("device_owner", vec![OWNER_FLOATINGIP.to_string()])])
            .await
            .map_err(L3Error::from)?
        {
            neutrino_ml2::port::delete_in(core, &mut tx, &mut out, &p).await.map_err(L3Error::from)?;
        }
        core.quota_release(&mut tx, s(&fip, "project_id"), "floatingip", 1).await.map_err(L3Error::from)?;
        out.push("floatingip", Action::Delete, &fip);
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(())
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self
            .0
            .set_tags(
                &FLOATINGIPS,
                "floatingip",
                || Ml2Error::Fault(L3Error::FloatingIpNotFound(id.into()).into()),
                id,
                tags,
            )
            .await?)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["fip-port-details", "expose-port-forwarding-in-fip"]
    }
}

#[allow(dead_code)]
fn in_subnet(sub: &Map, ip: &str) -> bool {
    let c: Option<IpNet> = s(sub, "cidr").parse().ok();
    let a: Option<IpAddr> = ip.parse().ok();
    matches!((c, a), (Some(c), Some(a)) if c.contains(&a))
}

#[allow(dead_code)]
async fn router_exists(tx: &mut Tx, id: &str) -> Result<bool> {
    Ok(tx.peek(&ROUTERS, id).await?.is_some())
}
