//! Routers: gateways, interfaces, extra routes.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use neutrino_lib::defs::router::ROUTER;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_ml2::notify::{Action, Outbox};
use neutrino_ml2::{Core, Ml2Error};
use neutrino_store::schema::{FLOATINGIPS, NETWORKS, PORTS, ROUTERS, SUBNETS};
use neutrino_store::Tx;
use serde_json::{json, Value};

use crate::error::{bad_router, L3Error, Result};
use crate::{fixed_ips, router_ports, s, OWNER_GATEWAY, OWNER_INTERFACE};

/// Most extra routes a router may have (`max_routes`).
const MAX_ROUTES: usize = 30;

/// The routers collection.
pub struct Routers(pub Arc<Core>);

fn cidr_of(subnet: &Map) -> Option<IpNet> {
    s(subnet, "cidr").parse().ok()
}

impl Routers {
    async fn load(&self, tx: &mut Tx, id: &str) -> Result<Map> {
        tx.get(&ROUTERS, id).await?.ok_or_else(|| L3Error::RouterNotFound(id.into()))
    }

    /// Sets, changes or clears the external gateway of `router`.
    async fn set_gateway(&self, tx: &mut Tx, out: &mut Outbox, router: &mut Map, info: &Value) -> Result<()> {
        let core = &self.0;
        let rid = s(router, "id").to_string();
        let current = router_ports(tx, &rid, OWNER_GATEWAY).await?;
        let cur_net = current.first().map(|p| s(p, "network_id").to_string());
        let Some(info) = info.as_object() else {
            if let Some(net) = cur_net {
                if !tx.list(&FLOATINGIPS, &[("router_id", vec![rid.clone()])]).await?.is_empty() {
                    return Err(L3Error::GatewayInUseByFloatingIp { router: rid, net });
                }
                for p in &current {
                    neutrino_ml2::port::delete_in(core, tx, out, p).await?;
                }
            }
            router.insert("external_gateway_info".into(), Value::Null);
            return Ok(());
        };
        let net_id = info.get("network_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let network =
            tx.get_shared(&NETWORKS, &net_id).await?.ok_or_else(|| Ml2Error::NetworkNotFound(net_id.clone()))?;
        if !stamp::bool_of(&network, "router:external") {
            return Err(bad_router(format!("Network {net_id} is not an external network")));
        }
        let enable_snat = info.get("enable_snat").and_then(Value::as_bool).unwrap_or(true);
        let wanted_ips = info.get("external_fixed_ips").cloned();
        let same_net = cur_net.as_deref() == Some(net_id.as_str());
        let mut gw_port = current.first().cloned();
        let need_new = !same_net
            || wanted_ips.as_ref().is_some_and(|w| {
                let have: Vec<Value> = gw_port
                    .as_ref()
                    .map(|p| {
                        fixed_ips(p).into_iter().map(|(sn, ip)| json!({"subnet_id": sn, "ip_address": ip})).collect()
                    })
                    .unwrap_or_default();
                w.as_array().is_some_and(|w| {
                    w.iter().any(|x| {
                        !have.iter().any(|h| {
                            x.get("ip_address").is_none_or(|ip| h.get("ip_address") == Some(ip))
                                && x.get("subnet_id").is_none_or(|sn| h.get("subnet_id") == Some(sn))
                        })
                    }) || w.len() != have.len()
                })
            });
        if need_new {
            if let Some(old) = cur_net.as_ref().filter(|_| !same_net) {
                if !tx.list(&FLOATINGIPS, &[("router_id", vec![rid.clone()])]).await?.is_empty() {
                    return Err(L3Error::GatewayInUseByFloatingIp { router: rid, net: old.clone() });
                }
            }
            for p in &current {
                neutrino_ml2::port::delete_in(core, tx, out, p).await?;
            }
            let mut req = Map::new();
            req.insert("network_id".into(), json!(net_id));
            req.insert("project_id".into(), json!(""));
            req.insert("device_id".into(), json!(rid));
            req.insert("device_owner".into(), json!(OWNER_GATEWAY));
            if let Some(h) = crate::scheduler::router_host(tx, &rid).await? {
                req.insert("binding:host_id".into(), json!(h));
            }
            if let Some(w) = &wanted_ips {
                req.insert("fixed_ips".into(), w.clone());
            }
            let port = neutrino_ml2::port::create_in(core, &Context::admin(), tx, out, req).await?;
            if fixed_ips(&port).is_empty() {
                return Err(bad_router(format!("No IPs available for external network {net_id}")));
            }
            gw_port = Some(port);
        }
        let ips: Vec<Value> = gw_port
            .as_ref()
            .map(|p| fixed_ips(p).into_iter().map(|(sn, ip)| json!({"subnet_id": sn, "ip_address": ip})).collect())
            .unwrap_or_default();
        router.insert(
            "external_gateway_info".into(),
            json!({"network_id": net_id, "enable_snat": enable_snat, "external_fixed_ips": ips}),
        );
        Ok(())
    }

    /// The subnets a router is attached to through interfaces (and its gateway).
    async fn attached_subnets(&self, tx: &mut Tx, rid: &str, with_gateway: bool) -> Result<Vec<Map>> {
        let mut ports = router_ports(tx, rid, OWNER_INTERFACE).await?;
        if with_gateway {
            ports.extend(router_ports(tx, rid, OWNER_GATEWAY).await?);
        }
        let mut out = vec![];
        for p in &ports {
            for (sn, _) in fixed_ips(p) {
                if let Some(sub) = tx.peek(&SUBNETS, &sn).await? {
                    out.push(sub);
                }
            }
        }
        Ok(out)
    }

    fn check_overlap(new: &Map, existing: &[Map]) -> Result<()> {
        let Some(nc) = cidr_of(new) else { return Ok(()) };
        for e in existing {
            if let Some(ec) = cidr_of(e) {
                if neutrino_ipam::addr::overlaps(&nc, &ec) {
                    return Err(bad_router(format!(
                        "Cidr {nc} of subnet {} overlaps with cidr {ec} of subnet {}",
                        s(new, "id"),
                        s(e, "id")
                    )));
                }
            }
        }
        Ok(())
    }

    async fn validate_routes(&self, tx: &mut Tx, rid: &str, routes: &Value) -> Result<()> {
        let list = routes.as_array().cloned().unwrap_or_default();
        if list.len() > MAX_ROUTES {
            return Err(L3Error::Core(Ml2Error::Fault(Fault::new(
                400,
                "RoutesExhausted",
                format!(
                    "Unable to complete operation for {rid}. The number of routes exceeds the maximum {MAX_ROUTES}."
                ),
            ))));
        }
        let subnets = self.attached_subnets(tx, rid, true).await?;
        let mut own_ips = vec![];
        for owner in [OWNER_INTERFACE, OWNER_GATEWAY] {
            for p in router_ports(tx, rid, owner).await? {
                own_ips.extend(fixed_ips(&p).into_iter().map(|(_, ip)| ip));
            }
        }
        for r in &list {
            let nh = r.get("nexthop").and_then(Value::as_str).unwrap_or("");
            let ip: Option<IpAddr> = nh.parse().ok();
            let connected = ip.is_some_and(|ip| subnets.iter().filter_map(cidr_of).any(|c| c.contains(&ip)));
            if !connected {
                return Err(L3Error::InvalidRoutes {
                    routes: r.to_string(),
                    reason: "the nexthop is not connected with router".into(),
                });
            }
            if own_ips.iter().any(|o| o == nh) {
                return Err(L3Error::InvalidRoutes {
                    routes: r.to_string(),
                    reason: "the nexthop is used by router".into(),
                });
            }
        }
        Ok(())
    }

    async fn add_interface(
        &self,
        ctx: &Context,
        tx: &mut Tx,
        out: &mut Outbox,
        router: &Map,
        body: &Value,
    ) -> Result<Value> {
        let core = &self.0;
        let rid = s(router, "id").to_string();
        let subnet_id = body.get("subnet_id").and_then(Value::as_str).map(String::from);
        let port_id = body.get("port_id").and_then(Value::as_str).map(String::from);
        let existing = self.attached_subnets(tx, &rid, false).await?;
        let port = match (subnet_id, port_id) {
            (Some(_), Some(_)) => return Err(bad_router("Cannot specify both subnet-id and port-id")),
            (None, None) => return Err(bad_router("Either subnet_id or port_id must be specified")),
            (None, Some(pid)) => {
                let mut port = tx
                    .get(&PORTS, &pid)
                    .await?
                    .filter(|p| ctx.sees(p))
                    .ok_or_else(|| Ml2Error::PortNotFound(pid.clone()))?;
                if !s(&port, "device_id").is_empty()
                    || !s(&port, "device_owner").is_empty() && s(&port, "device_owner") != OWNER_INTERFACE
                {
                    return Err(L3Error::Core(Ml2Error::Fault(Fault::conflict(
                        "PortInUse",
                        format!("Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.", s(&port, "network_id"), s(&port, "device_id")),
                    ))));
                }
                let ips = fixed_ips(&port);
                if ips.is_empty() {
                    return Err(bad_router("Router port must have at least one fixed IP".to_string()));
                }
                let mut v4 = 0;
                for (sn, ip) in &ips {
                    if ip.contains('.') {
                        v4 += 1;
                    }
                    if let Some(sub) = tx.peek(&SUBNETS, sn).await? {
                        Self::check_overlap(&sub, &existing)?;
                    }
                }
                if v4 > 1 {
                    return Err(bad_router("Cannot have multiple IPv4 subnets on router port"));
                }
                let mut ch = Map::new();
                ch.insert("device_id".into(), json!(rid));
                ch.insert("device_owner".into(), json!(OWNER_INTERFACE));
                if let Some(h) = crate::scheduler::router_host(tx, &rid).await? {
                    ch.insert("binding:host_id".into(), json!(h));
                }
                let _ = &mut port;
                neutrino_ml2::port::update_in(core, tx, out, &port, ch).await?
            }
            (Some(sid), None) => {
                let subnet = tx.peek(&SUBNETS, &sid).await?.ok_or_else(|| Ml2Error::SubnetNotFound(sid.clone()))?;
                if !ctx.sees(&subnet) {
                    let net = tx.peek(&NETWORKS, s(&subnet, "network_id")).await?;
                    if !net.is_some_and(|n| neutrino_ml2::network::visible(ctx, &n)) {
                        return Err(Ml2Error::SubnetNotFound(sid).into());
                    }
                }
                let Some(gw) = subnet.get("gateway_ip").and_then(Value::as_str).map(String::from) else {
                    return Err(bad_router("Subnet for router interface must have a gateway IP"));
                };
                if existing.iter().any(|e| s(e, "id") == sid) {
                    return Err(bad_router(format!("Router already has a port on subnet {sid}")));
                }
                Self::check_overlap(&subnet, &existing)?;
                let net_id = s(&subnet, "network_id").to_string();
                // IPv6 subnets of one network share the router's port there.
                let shared_v6 = if s(&subnet, "cidr").contains(':') {
                    router_ports(tx, &rid, OWNER_INTERFACE)
                        .await?
                        .into_iter()
                        .find(|p| s(p, "network_id") == net_id && fixed_ips(p).iter().all(|(_, ip)| ip.contains(':')))
                } else {
                    None
                };
                match shared_v6 {
                    Some(p) => {
                        let mut wanted: Vec<Value> = fixed_ips(&p)
                            .into_iter()
                            .map(|(sn, ip)| json!({"subnet_id": sn, "ip_address": ip}))
                            .collect();
                        wanted.push(json!({"subnet_id": sid, "ip_address": gw}));
                        let mut ch = Map::new();
                        ch.insert("fixed_ips".into(), Value::Array(wanted));
                        neutrino_ml2::port::update_in(core, tx, out, &p, ch).await?
                    }
                    None => {
                        let mut req = Map::new();
                        req.insert("network_id".into(), json!(net_id));
                        req.insert("project_id".into(), json!(s(router, "project_id")));
                        req.insert("device_id".into(), json!(rid));
                        req.insert("device_owner".into(), json!(OWNER_INTERFACE));
                        req.insert("fixed_ips".into(), json!([{"subnet_id": sid, "ip_address": gw}]));
                        if let Some(h) = crate::scheduler::router_host(tx, &rid).await? {
                            req.insert("binding:host_id".into(), json!(h));
                        }
                        neutrino_ml2::port::create_in(core, &Context::admin(), tx, out, req).await?
                    }
                }
            }
        };
        let ips = fixed_ips(&port);
        Ok(json!({
            "id": rid,
            "tenant_id": s(router, "project_id"),
            "project_id": s(router, "project_id"),
            "port_id": s(&port, "id"),
            "network_id": s(&port, "network_id"),
            "subnet_id": ips.first().map(|(sn, _)| sn.clone()),
            "subnet_ids": ips.iter().map(|(sn, _)| sn.clone()).collect::<Vec<_>>(),
        }))
    }

    async fn remove_interface(&self, tx: &mut Tx, out: &mut Outbox, router: &Map, body: &Value) -> Result<Value> {
        let core = &self.0;
        let rid = s(router, "id").to_string();
        let subnet_id = body.get("subnet_id").and_then(Value::as_str).map(String::from);
        let port_id = body.get("port_id").and_then(Value::as_str).map(String::from);
        let ports = router_ports(tx, &rid, OWNER_INTERFACE).await?;
        let (port, subnets): (Map, Vec<String>) = match (&port_id, &subnet_id) {
            (None, None) => return Err(bad_router("Either subnet_id or port_id must be specified")),
            (Some(pid), sub) => {
                let p = ports
                    .iter()
                    .find(|p| s(p, "id") == pid)
                    .cloned()
                    .ok_or_else(|| L3Error::InterfaceNotFound { router: rid.clone(), port: pid.clone() })?;
                let subs: Vec<String> = fixed_ips(&p).into_iter().map(|(sn, _)| sn).collect();
                if let Some(sid) = sub {
                    if !subs.contains(sid) {
                        return Err(L3Error::Core(Ml2Error::Fault(Fault::conflict(
                            "SubnetMismatchForPort",
                            format!("Subnet on port {pid} does not match the requested subnet {sid}."),
                        ))));
                    }
                }
                (p, subs)
            }
            (None, Some(sid)) => {
                let p =
                    ports.iter().find(|p| fixed_ips(p).iter().any(|(sn, _)| sn == sid)).cloned().ok_or_else(|| {
                        L3Error::InterfaceNotFoundForSubnet { router: rid.clone(), subnet: sid.clone() }
                    })?;
                (p, vec![sid.clone()])
            }
        };
        // Nothing may still depend on these subnets: floating IPs, routes.
        for sid in &subnets {
            let sub = tx.peek(&SUBNETS, sid).await?;
            let cidr = sub.as_ref().and_then(cidr_of);
            for fip in tx.list(&FLOATINGIPS, &[("router_id", vec![rid.clone()])]).await? {
                let fixed: Option<IpAddr> =
                    fip.get("fixed_ip_address").and_then(Value::as_str).and_then(|a| a.parse().ok());
                if let (Some(c), Some(a)) = (cidr, fixed) {
                    if c.contains(&a) {
                        return Err(L3Error::InterfaceInUseByFloatingIp { router: rid, subnet: sid.clone() });
                    }
                }
            }
            for r in router.get("routes").and_then(Value::as_array).into_iter().flatten() {
                let nh: Option<IpAddr> = r.get("nexthop").and_then(Value::as_str).and_then(|a| a.parse().ok());
                if let (Some(c), Some(a)) = (cidr, nh) {
                    if c.contains(&a) {
                        return Err(L3Error::InterfaceInUseByRoute { router: rid, subnet: sid.clone() });
                    }
                }
            }
        }
        let remaining: Vec<(String, String)> =
            fixed_ips(&port).into_iter().filter(|(sn, _)| !subnets.contains(sn)).collect();
        if remaining.is_empty() {
            neutrino_ml2::port::delete_in(core, tx, out, &port).await?;
        } else {
            let mut ch = Map::new();
            ch.insert(
                "fixed_ips".into(),
                Value::Array(
                    remaining.into_iter().map(|(sn, ip)| json!({"subnet_id": sn, "ip_address": ip})).collect(),
                ),
            );
            neutrino_ml2::port::update_in(core, tx, out, &port, ch).await?;
        }
        Ok(json!({
            "id": rid,
            "tenant_id": s(router, "project_id"),
            "project_id": s(router, "project_id"),
            "port_id": s(&port, "id"),
            "network_id": s(&port, "network_id"),
            "subnet_id": subnets.first(),
            "subnet_ids": subnets,
        }))
    }
}

fn routes_key(r: &Value) -> (String, String) {
    (
        r.get("destination").and_then(Value::as_str).unwrap_or("").to_string(),
        r.get("nexthop").and_then(Value::as_str).unwrap_or("").to_string(),
    )
}

#[async_trait]
impl ResourcePlugin for Routers {
    fn def(&self) -> &'static ResourceDef {
        &ROUTER
    }

    async fn create(&self, _ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut out = Outbox::default();
        let mut docs = vec![];
        for req in items {
            let project = s(&req, "project_id").to_string();
            let mut r = Map::new();
            for k in ["name", "admin_state_up", "description", "availability_zone_hints"] {
                if let Some(v) = req.get(k) {
                    r.insert(k.into(), v.clone());
                }
            }
            r.insert("status".into(), json!("ACTIVE"));
            r.insert("routes".into(), json!([]));
            r.insert("availability_zones".into(), json!([]));
            r.insert("external_gateway_info".into(), Value::Null);
            stamp::created(&mut r, &project, true, true);
            core.quota_take(&mut tx, &project, "router", 1).await.map_err(L3Error::from)?;
            tx.insert(&ROUTERS, &r).await.map_err(L3Error::from)?;
            if let Some(info) = req.get("external_gateway_info").filter(|v| !v.is_null()) {
                self.set_gateway(&mut tx, &mut out, &mut r, info).await?;
                tx.update(&ROUTERS, &r).await.map_err(L3Error::from)?;
            }
            if crate::scheduler::schedule_router(core, &mut tx, &mut out, s(&r, "id")).await?.is_some() {
                r = tx.peek(&ROUTERS, s(&r, "id")).await.map_err(L3Error::from)?.unwrap_or(r);
            }
            out.push("router", Action::Create, &r);
            docs.push(r);
        }
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let r = self.0.store.get(&ROUTERS, id).await.map_err(L3Error::from)?;
        Ok(r.filter(|r| ctx.sees(r)).ok_or_else(|| L3Error::RouterNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let conds = if ctx.is_admin() { vec![] } else { vec![neutrino_ml2::own(ctx)] };
        neutrino_ml2::select(&self.0.store, self.def(), &ROUTERS, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        if !ctx.is_admin() {
            h.projects = Some(ctx.project_id.clone().into_iter().collect());
        }
        let mut all =
            self.0.store.list(&ROUTERS, &neutrino_ml2::pushdown(&ROUTERS, &h)).await.map_err(L3Error::from)?;
        all.retain(|r| ctx.sees(r));
        Ok(all)
    }

    async fn update(
        &self,
        _ctx: &Context,
        id: &str,
        changes: Map,
        if_match: Option<i64>,
    ) -> std::result::Result<Map, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut r = self.load(&mut tx, id).await?;
        stamp::check_if_match(&r, if_match)?;
        let mut out = Outbox::default();
        let mut changes = changes;
        if let Some(info) = changes.remove("external_gateway_info") {
            self.set_gateway(&mut tx, &mut out, &mut r, &info).await?;
        }
        if let Some(routes) = changes.get("routes") {
            self.validate_routes(&mut tx, id, routes).await?;
        }
        for (k, v) in changes {
            r.insert(k, v);
        }
        stamp::changed(&mut r);
        tx.update(&ROUTERS, &r).await.map_err(L3Error::from)?;
        out.push("router", Action::Update, &r);
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(r)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let r = self.load(&mut tx, id).await?;
        stamp::check_if_match(&r, if_match)?;
        if !router_ports(&mut tx, id, OWNER_INTERFACE).await?.is_empty() {
            return Err(L3Error::RouterInUse(id.into()).into());
        }
        let mut out = Outbox::default();
        if !tx.delete(&ROUTERS, id).await.map_err(L3Error::from)? {
            // Deleted meanwhile: its quota went back with that delete.
            return Err(L3Error::RouterNotFound(id.into()).into());
        }
        // The router's usage before its gateway port's, the order a create
        // with a gateway takes them in: two transactions never wait on each
        // other's counters (a deadlock failed such deletes with 500 and
        // kept their quota).
        core.quota_release(&mut tx, s(&r, "project_id"), "router", 1).await.map_err(L3Error::from)?;
        for p in router_ports(&mut tx, id, OWNER_GATEWAY).await? {
            neutrino_ml2::port::delete_in(core, &mut tx, &mut out, &p).await.map_err(L3Error::from)?;
        }
        for agent_id in tx.hosts_of(neutrino_store::scheduling::ROUTER_L3, id).await.map_err(L3Error::from)? {
            if let Some(a) = tx.peek(&neutrino_store::schema::AGENTS, &agent_id).await.map_err(L3Error::from)? {
                let ev = json!({"router_id": id, "agent_id": agent_id, "host": a.get("host")});
                out.push("l3_router_hosted", Action::Delete, ev.as_object().unwrap_or(&Map::new()));
            }
        }
        tx.unhost_resource(neutrino_store::scheduling::ROUTER_L3, id).await.map_err(L3Error::from)?;
        out.push("router", Action::Delete, &r);
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(())
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self
            .0
            .set_tags(&ROUTERS, "router", || Ml2Error::Fault(L3Error::RouterNotFound(id.into()).into()), id, tags)
            .await?)
    }

    async fn sub_request(
        &self,
        ctx: &Context,
        method: &str,
        id: &str,
        rest: &[&str],
        _body: Option<Value>,
    ) -> std::result::Result<neutrino_lib::plugin::SubResponse, Fault> {
        match (method, rest) {
            ("GET", ["l3-agents"]) => {
                if !ctx.is_admin() {
                    return Err(Fault::policy("get_l3-agents"));
                }
                self.get(ctx, id).await?;
                let agents: Vec<Value> =
                    crate::scheduler::l3_agents_of(&self.0, id).await?.into_iter().map(Value::Object).collect();
                Ok((200, Some(json!({ "agents": agents }))))
            }
            _ => Err(Fault::no_such_path()),
        }
    }

    fn has_member_action(&self, action: &str) -> bool {
        matches!(action, "add_router_interface" | "remove_router_interface" | "add_extraroutes" | "remove_extraroutes")
    }

    async fn member_action(
        &self,
        ctx: &Context,
        id: &str,
        action: &str,
        body: Value,
    ) -> std::result::Result<Value, Fault> {
        let core = &self.0;
        if !body.is_object() {
            return Err(Fault::bad_request("Request body must be a JSON object"));
        }
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut r = self.load(&mut tx, id).await?;
        let mut out = Outbox::default();
        let result = match action {
            "add_router_interface" => self.add_interface(ctx, &mut tx, &mut out, &r, &body).await?,
            "remove_router_interface" => self.remove_interface(&mut tx, &mut out, &r, &body).await?,
            _ => {
                let given = body
                    .get("router")
                    .and_then(|r| r.get("routes"))
                    .ok_or_else(|| Fault::bad_request("Request body must contain router.routes"))?;
                let given = neutrino_lib::checks::host_routes(given)
                    .map_err(|e| Fault::bad_request(format!("Invalid input for routes. Reason: {e}.")))?;
                let mut routes: Vec<Value> = r.get("routes").and_then(Value::as_array).cloned().unwrap_or_default();
                for g in given.as_array().into_iter().flatten() {
                    let k = routes_key(g);
                    if action == "add_extraroutes" {
                        if !routes.iter().any(|x| routes_key(x) == k) {
                            routes.push(g.clone());
                        }
                    } else {
                        routes.retain(|x| routes_key(x) != k);
                    }
                }
                let routes = Value::Array(routes);
                if action == "add_extraroutes" {
                    self.validate_routes(&mut tx, id, &routes).await?;
                }
                r.insert("routes".into(), routes);
                stamp::changed(&mut r);
                tx.update(&ROUTERS, &r).await.map_err(L3Error::from)?;
                json!({ "router": r })
            }
        };
        if action.ends_with("router_interface") {
            // Interfaces change the router (agents reconfigure it).
            stamp::changed(&mut r);
            tx.update(&ROUTERS, &r).await.map_err(L3Error::from)?;
        }
        out.push("router", Action::Update, &r);
        core.commit(tx, out).await.map_err(L3Error::from)?;
        Ok(result)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[
            "router",
            "ext-gw-mode",
            "extraroute",
            "extraroute-atomic",
            "l3-port-ip-change-not-allowed",
            "dns-integration",
        ]
    }
}
