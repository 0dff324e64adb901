//! Subnets.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use neutrino_ipam::addr::{host_range, to_u128, version};
use neutrino_ipam::allocator::{self, SubnetRef};
use neutrino_ipam::pools;
use neutrino_lib::defs::subnet::SUBNET;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{NETWORKS, PORTS, SEGMENTS, SUBNETPOOLS, SUBNETS};
use neutrino_store::{Cond, Tx};
use serde_json::{json, Value};

use crate::error::{invalid, Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::Core;

/// The subnets collection.
pub struct Subnets(pub Arc<Core>);

/// Is the subnet's IPv6 addressing automatic (SLAAC or DHCPv6-stateless)?
pub fn is_auto_address(s: &Map) -> bool {
    let auto = |k: &str| matches!(s.get(k).and_then(Value::as_str), Some("slaac") | Some("dhcpv6-stateless"));
    stamp::str_of(s, "cidr").contains(':') && (auto("ipv6_address_mode") || auto("ipv6_ra_mode"))
}

/// The IPAM view of a subnet document.
pub fn ipam_ref(s: &Map) -> Result<SubnetRef> {
    let cidr: IpNet = stamp::str_of(s, "cidr").parse().map_err(|_| invalid("corrupt subnet cidr"))?;
    let mut ranges = vec![];
    for p in s.get("allocation_pools").and_then(Value::as_array).into_iter().flatten() {
        let a: Option<IpAddr> = p.get("start").and_then(Value::as_str).and_then(|x| x.parse().ok());
        let b: Option<IpAddr> = p.get("end").and_then(Value::as_str).and_then(|x| x.parse().ok());
        if let (Some(a), Some(b)) = (a, b) {
            ranges.push((to_u128(a), to_u128(b)));
        }
    }
    Ok(SubnetRef {
        id: stamp::str_of(s, "id").to_string(),
        network_id: stamp::str_of(s, "network_id").to_string(),
        cidr,
        pools: ranges,
        gateway: s.get("gateway_ip").and_then(Value::as_str).and_then(|x| x.parse().ok()),
    })
}

fn parse_pools(v: &Value) -> Vec<(IpAddr, IpAddr)> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("start")?.as_str()?.parse().ok()?, p.get("end")?.as_str()?.parse().ok()?)))
        .collect()
}

fn check_gateway(net: &IpNet, gw: IpAddr) -> Result<()> {
    if version(net) != if gw.is_ipv4() { 4 } else { 6 } {
        return Err(invalid("Gateway IP version inconsistent with allocation pool version".to_string()));
    }
    if let IpAddr::V6(v6) = gw {
        if v6.segments()[0] & 0xffc0 == 0xfe80 {
            return Ok(()); // IPv6 link-local gateways live outside the subnet
        }
    }
    let ok = net.contains(&gw) && host_range(net).is_some_and(|(a, b)| a <= to_u128(gw) && to_u128(gw) <= b);
    if !ok {
        return Err(invalid("Gateway is not valid on subnet".to_string()));
    }
    Ok(())
}

fn check_routes_and_dns(core: &Core, ip_version: u8, req: &Map) -> Result<()> {
    if let Some(ns) = req.get("dns_nameservers").and_then(Value::as_array) {
        if ns.len() > core.cfg.max_dns_nameservers {
            return Err(Ml2Error::Fault(Fault::new(
                400,
                "DNSNameServersExhausted",
                format!(
                    "Unable to complete operation for {}. The number of DNS nameservers exceeds the limit {}.",
                    stamp::str_of(req, "id"),
                    core.cfg.max_dns_nameservers
                ),
            )));
        }
    }
    if let Some(routes) = req.get("host_routes").and_then(Value::as_array) {
        if routes.len() > core.cfg.max_subnet_host_routes {
            return Err(Ml2Error::Fault(Fault::new(
                400,
                "HostRoutesExhausted",
                format!(
                    "Unable to complete operation for {}. The number of host routes exceeds the limit {}.",
                    stamp::str_of(req, "id"),
                    core.cfg.max_subnet_host_routes
                ),
            )));
        }
        for r in routes {
            let dst = r.get("destination").and_then(Value::as_str).unwrap_or("");
            let nh = r.get("nexthop").and_then(Value::as_str).unwrap_or("");
            let dv = if dst.contains(':') { 6 } else { 4 };
            let nv = if nh.contains(':') { 6 } else { 4 };
            if dv != ip_version || nv != ip_version {
                return Err(invalid(format!("Invalid route {r}: IP version mismatch")));
            }
        }
    }
    Ok(())
}

/// Neutron's minimum MTUs for a network's subnets: 68 with any subnet, 1280
/// with an IPv6 one (an MTU of 0 means unset).
pub(crate) fn check_mtu(net: &str, mtu: i64, versions: &[i64]) -> Result<()> {
    if mtu == 0 || mtu >= 1280 || versions.is_empty() {
        return Ok(());
    }
    let need = if mtu < 68 {
        68
    } else if versions.contains(&6) {
        1280
    } else {
        return Ok(());
    };
    Err(Ml2Error::NetworkMTUSubnetConflict { net: net.to_string(), mtu: need })
}

/// Neutron's ROUTER_PORT_OWNERS: ports of routers on a subnet.
const ROUTER_PORT_OWNERS: &[&str] = &[
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
    "network:router_gateway",
];

fn check_ipv6_modes(ip_version: u8, cidr: &IpNet, ra: Option<&str>, addr: Option<&str>) -> Result<()> {
    if ip_version == 4 && (ra.is_some() || addr.is_some()) {
        let which = if ra.is_some() { "ipv6_ra_mode" } else { "ipv6_address_mode" };
        return Err(invalid(format!("{which} is not valid when ip_version is 4")));
    }
    if let (Some(r), Some(a)) = (ra, addr) {
        if r != a {
            return Err(invalid(format!(
                "ipv6_ra_mode set to '{r}' with ipv6_address_mode set to '{a}' is not valid. If both attributes are set, they must be the same value"
            )));
        }
    }
    let auto = |m: Option<&str>| matches!(m, Some("slaac") | Some("dhcpv6-stateless"));
    if (auto(ra) || auto(addr)) && cidr.prefix_len() != 64 {
        return Err(invalid(format!(
            "Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64"
        )));
    }
    Ok(())
}

impl Subnets {
    async fn pick_cidr(
        &self,
        tx: &mut Tx,
        req: &Map,
        ip_version: u8,
        net_subnets: &[Map],
    ) -> Result<(IpNet, Option<String>)> {
        let pool_id = match req.get("subnetpool_id") {
            Some(Value::String(s)) => Some(s.clone()),
            _ if stamp::bool_of(req, "use_default_subnetpool") => {
                let pools = tx.list(&SUBNETPOOLS, &[]).await?;
                let d = pools.iter().find(|p| {
                    stamp::bool_of(p, "is_default")
                        && p.get("ip_version").and_then(Value::as_i64) == Some(ip_version as i64)
                });
                match d {
                    Some(p) => Some(stamp::str_of(p, "id").to_string()),
                    None => {
                        return Err(Ml2Error::BadRequest {
                            resource: "subnets",
                            msg: "No default subnetpool found for IPv".to_string() + &ip_version.to_string(),
                        })
                    }
                }
            }
            _ => None,
        };
        let cidr_req: Option<IpNet> = req.get("cidr").and_then(Value::as_str).and_then(|c| c.parse().ok());
        let Some(pool_id) = pool_id else {
            return match cidr_req {
                Some(c) => Ok((c, None)),
                None => Err(Ml2Error::BadRequest {
                    resource: "subnets",
                    msg: "a subnetpool must be specified in the absence of a cidr".into(),
                }),
            };
        };
        let pool =
            tx.get(&SUBNETPOOLS, &pool_id).await?.ok_or_else(|| Ml2Error::SubnetPoolNotFound(pool_id.clone()))?;
        if pool.get("ip_version").and_then(Value::as_i64) != Some(ip_version as i64) {
            return Err(invalid(format!(
                "Cannot allocate IPv{ip_version} subnet from IPv{} subnet pool",
                pool.get("ip_version").and_then(Value::as_i64).unwrap_or(0)
            )));
        }
        let prefixes: Vec<IpNet> = pool
            .get("prefixes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str()?.parse().ok())
            .collect();
        let used: Vec<IpNet> = tx
            .list(&SUBNETS, &[("subnetpool_id", vec![pool_id.clone()])])
            .await?
            .iter()
            .chain(net_subnets.iter())
            .filter_map(|s| stamp::str_of(s, "cidr").parse().ok())
            .collect();
        let minp = pool.get("min_prefixlen").and_then(Value::as_i64).unwrap_or(8) as u8;
        let maxp =
            pool.get("max_prefixlen").and_then(Value::as_i64).unwrap_or(if ip_version == 4 { 32 } else { 128 }) as u8;
        let cidr = match cidr_req {
            Some(c) => {
                if !neutrino_ipam::prefixes::within(&prefixes, &c) {
                    return Err(Ml2Error::Fault(Fault::new(
                        400,
                        "IllegalSubnetPoolPrefixBounds",
                        format!("Cidr {c} is not within the prefixes of subnet pool {pool_id}"),
                    )));
                }
                if !neutrino_ipam::prefixes::is_free(&prefixes, &used, &c) {
                    return Err(Ml2Error::Fault(Fault::conflict(
                        "SubnetAllocationError",
                        format!("Failed to allocate subnet: Cidr {c} overlaps with another subnet"),
                    )));
                }
                c
            }
            None => {
                let plen = req
                    .get("prefixlen")
                    .and_then(Value::as_i64)
                    .or_else(|| pool.get("default_prefixlen").and_then(Value::as_i64))
                    .unwrap_or(minp as i64) as u8;
                if plen < minp || plen > maxp {
                    return Err(Ml2Error::Fault(Fault::new(
                        400,
                        "IllegalSubnetPoolPrefixLength",
                        format!("Illegal prefix bounds: prefixlen={plen}, min_prefixlen={minp}, max_prefixlen={maxp}."),
                    )));
                }
                neutrino_ipam::prefixes::allocate(&prefixes, &used, plen).ok_or_else(|| {
                    Ml2Error::Fault(Fault::conflict(
                        "SubnetAllocationError",
                        "Failed to allocate subnet: Insufficient prefix space to allocate subnet size".to_string(),
                    ))
                })?
            }
        };
        Ok((cidr, Some(pool_id)))
    }

    async fn create_one(&self, tx: &mut Tx, out: &mut Outbox, req: Map) -> Result<Map> {
        let core = &self.0;
        let net_id = stamp::str_of(&req, "network_id").to_string();
        let mut network = tx.get(&NETWORKS, &net_id).await?.ok_or_else(|| Ml2Error::NetworkNotFound(net_id.clone()))?;
        let ip_version = req.get("ip_version").and_then(Value::as_i64).unwrap_or(4) as u8;
        let project = crate::opt_str(&req, "project_id").unwrap_or_default();
        let net_subnets = tx.list(&SUBNETS, &[("network_id", vec![net_id.clone()])]).await?;
        let (cidr, pool_id) = self.pick_cidr(tx, &req, ip_version, &net_subnets).await?;
        if version(&cidr) != ip_version {
            return Err(invalid(format!("Cidr {cidr} does not match the IP version {ip_version}")));
        }
        if cidr.prefix_len() == 0 && ip_version == 4 {
            return Err(invalid(format!("{cidr} is not a valid IP subnet")));
        }
        for s in &net_subnets {
            if let Ok(other) = stamp::str_of(s, "cidr").parse::<IpNet>() {
                if neutrino_ipam::addr::overlaps(&cidr, &other) {
                    return Err(Ml2Error::OverlappingCidr { cidr: cidr.to_string(), net: net_id.clone() });
                }
            }
        }
        let ra = req.get("ipv6_ra_mode").and_then(Value::as_str);
        let am = req.get("ipv6_address_mode").and_then(Value::as_str);
        check_ipv6_modes(ip_version, &cidr, ra, am)?;
        if let Some(mtu) = network.get("mtu").and_then(Value::as_i64) {
            check_mtu(&net_id, mtu, &[ip_version as i64])?;
        }
        let gateway: Option<IpAddr> = match req.get("gateway_ip") {
            None => host_range(&cidr).map(|(a, _)| neutrino_ipam::addr::from_u128(a, ip_version)),
            Some(Value::Null) => None,
            Some(v) => {
                let gw: IpAddr =
                    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| invalid("invalid gateway_ip"))?;
                check_gateway(&cidr, gw)?;
                Some(gw)
            }
        };
        let ranges = match req.get("allocation_pools") {
            Some(v) => pools::validate(&cidr, &parse_pools(v), gateway)?,
            None => pools::default_pools(&cidr, gateway),
        };
        let id = neutrino_lib::new_id();
        let mut doc = Map::new();
        doc.insert("id".into(), json!(id));
        check_routes_and_dns(core, ip_version, &{
            let mut r = req.clone();
            r.insert("id".into(), json!(id));
            r
        })?;
        if let Some(seg) = req.get("segment_id").and_then(Value::as_str) {
            let s = tx.get(&SEGMENTS, seg).await?.ok_or_else(|| Ml2Error::SegmentNotFound(seg.into()))?;
            if stamp::str_of(&s, "network_id") != net_id {
                return Err(invalid(format!("Network {net_id} does not contain segment {seg}")));
            }
        }
        for k in ["name", "network_id", "enable_dhcp", "description", "segment_id", "dns_publish_fixed_ip"] {
            if let Some(v) = req.get(k) {
                doc.insert(k.into(), v.clone());
            }
        }
        doc.insert("ip_version".into(), json!(ip_version));
        doc.insert("cidr".into(), json!(cidr.to_string()));
        doc.insert("gateway_ip".into(), gateway.map(|g| json!(g.to_string())).unwrap_or(Value::Null));
        doc.insert("allocation_pools".into(), pools::to_json(&ranges, ip_version));
        doc.insert("dns_nameservers".into(), req.get("dns_nameservers").cloned().unwrap_or(json!([])));
        doc.insert("host_routes".into(), req.get("host_routes").cloned().unwrap_or(json!([])));
        doc.insert("ipv6_ra_mode".into(), json!(ra));
        doc.insert("ipv6_address_mode".into(), json!(am));
        doc.insert("subnetpool_id".into(), json!(pool_id));
        doc.insert("service_types".into(), req.get("service_types").cloned().unwrap_or(json!([])));
        doc.entry("segment_id").or_insert(Value::Null);
        doc.entry("dns_publish_fixed_ip").or_insert(json!(false));
        doc.insert("router:external".into(), json!(stamp::bool_of(&network, "router:external")));
        stamp::created(&mut doc, &project, true, true);
        core.quota_take(tx, &project, "subnet", 1).await?;
        tx.insert(&SUBNETS, &doc).await?;
        allocator::create(tx, &ipam_ref(&doc)?).await?;
        // The network lists its subnets.
        if let Some(Value::Array(list)) = network.get_mut("subnets") {
            list.push(json!(id));
        }
        stamp::changed(&mut network);
        tx.update(&NETWORKS, &network).await?;
        // Existing ports pick up an address on a new SLAAC/stateless subnet.
        if is_auto_address(&doc) {
            crate::port::add_auto_addresses(core, tx, out, &doc).await?;
        }
        out.push("subnet", Action::Create, &doc);
        out.push("network", Action::Update, &network);
        core.schedule_network_dhcp(tx, out, &net_id).await?;
        Ok(doc)
    }
}

/// Deletes a subnet whose addresses are released (used by network delete).
pub(crate) async fn remove(core: &Core, tx: &mut Tx, out: &mut Outbox, s: &Map) -> Result<()> {
    let id = stamp::str_of(s, "id").to_string();
    allocator::drop(tx, &id).await?;
    tx.delete(&SUBNETS, &id).await?;
    let net_id = stamp::str_of(s, "network_id").to_string();
    if let Some(mut net) = tx.get(&NETWORKS, &net_id).await? {
        if let Some(Value::Array(list)) = net.get_mut("subnets") {
            list.retain(|x| x.as_str() != Some(id.as_str()));
        }
        stamp::changed(&mut net);
        tx.update(&NETWORKS, &net).await?;
        out.push("network", Action::Update, &net);
    }
    core.quota_release(tx, stamp::str_of(s, "project_id"), "subnet", 1).await?;
    out.push("subnet", Action::Delete, s);
    Ok(())
}

#[async_trait]
impl ResourcePlugin for Subnets {
    fn def(&self) -> &'static ResourceDef {
        &SUBNET
    }

    async fn create(&self, _ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let mut tx = self.0.store.begin().await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        let mut docs = vec![];
        for item in items {
            docs.push(self.create_one(&mut tx, &mut out, item).await?);
        }
        self.0.commit(tx, out).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let s = self
            .0
            .store
            .get(&SUBNETS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SubnetNotFound(id.into()))?;
        if !ctx.sees(&s) {
            let net = self.0.store.get(&NETWORKS, stamp::str_of(&s, "network_id")).await.map_err(Ml2Error::from)?;
            if !net.is_some_and(|n| crate::network::visible(ctx, &n)) {
                return Err(Ml2Error::SubnetNotFound(id.into()).into());
            }
        }
        Ok(s)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let mut spec = spec.clone();
        let mut conds = vec![];
        if !ctx.is_admin() {
            conds.push(Cond::Or(vec![
                crate::own(ctx),
                Cond::InTable {
                    col: "network_id",
                    table: &NETWORKS,
                    key: "id",
                    cond: Box::new(crate::network::visible_cond(ctx)),
                },
            ]));
        }
        // A subnet is shared when its network is.
        if let Some(f) = spec.take_filter("shared") {
            conds.push(Cond::Or(
                f.values
                    .iter()
                    .filter_map(Value::as_bool)
                    .map(|b| Cond::InTable {
                        col: "network_id",
                        table: &NETWORKS,
                        key: "id",
                        cond: Box::new(Cond::Flag("shared", b)),
                    })
                    .collect(),
            ));
        }
        crate::select(&self.0.store, self.def(), &SUBNETS, &spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        h.projects = None; // subnets of shared networks are visible
        let mut subnets = self.0.store.list(&SUBNETS, &crate::pushdown(&SUBNETS, &h)).await.map_err(Ml2Error::from)?;
        if !ctx.is_admin() {
            let shared: std::collections::HashSet<String> = self
                .0
                .store
                .list(&NETWORKS, &[])
                .await
                .map_err(Ml2Error::from)?
                .iter()
                .filter(|n| crate::network::visible(ctx, n))
                .map(|n| stamp::str_of(n, "id").to_string())
                .collect();
            subnets.retain(|s| ctx.sees(s) || shared.contains(stamp::str_of(s, "network_id")));
        }
        Ok(subnets)
    }

    async fn update(
        &self,
        _ctx: &Context,
        id: &str,
        changes: Map,
        if_match: Option<i64>,
    ) -> std::result::Result<Map, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut doc =
            tx.get(&SUBNETS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::SubnetNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let sref = ipam_ref(&doc)?;
        let ipv = version(&sref.cidr);
        let mut check = changes.clone();
        check.insert("id".into(), json!(id));
        check_routes_and_dns(core, ipv, &check)?;
        // Neutron's _validate_subnet: the current gateway cannot be changed
        // or removed while a router port holds it.
        if let (Some(v), Some(cur)) = (changes.get("gateway_ip"), sref.gateway) {
            let new: Option<IpAddr> = v.as_str().and_then(|s| s.parse().ok());
            if new != Some(cur) {
                if let Some(holder) =
                    tx.alloc_holder(&sref.network_id, &cur.to_string()).await.map_err(Ml2Error::from)?
                {
                    let port = tx.peek(&PORTS, &holder.port_id).await.map_err(Ml2Error::from)?;
                    let owner = port.as_ref().map(|p| stamp::str_of(p, "device_owner")).unwrap_or("");
                    if ROUTER_PORT_OWNERS.contains(&owner) {
                        return Err(Fault::conflict(
                            "GatewayIpInUse",
                            format!(
                                "Current gateway ip {cur} already in use by port {}. Unable to update.",
                                holder.port_id
                            ),
                        ));
                    }
                }
            }
        }
        let gateway = match changes.get("gateway_ip") {
            None => sref.gateway,
            Some(Value::Null) => None,
            Some(v) => {
                let gw: IpAddr =
                    v.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| invalid("invalid gateway_ip"))?;
                check_gateway(&sref.cidr, gw)?;
                if Some(gw) != sref.gateway {
                    if let Some(holder) =
                        tx.alloc_holder(&sref.network_id, &gw.to_string()).await.map_err(Ml2Error::from)?
                    {
                        return Err(Fault::conflict(
                            "GatewayIpInUse",
                            format!(
                                "Current gateway ip {gw} already in use by port {}. Unable to update.",
                                holder.port_id
                            ),
                        ));
                    }
                }
                Some(gw)
            }
        };
        let mut pools_changed = false;
        let ranges = match changes.get("allocation_pools") {
            Some(v) => {
                pools_changed = true;
                pools::validate(&sref.cidr, &parse_pools(v), gateway).map_err(Ml2Error::from)?
            }
            None => {
                if let Some(gw) = gateway {
                    pools::check_gateway(&sref.pools, gw, ipv).map_err(Ml2Error::from)?;
                }
                sref.pools.clone()
            }
        };
        if let Some(seg) = changes.get("segment_id").and_then(Value::as_str) {
            let s = tx
                .get(&SEGMENTS, seg)
                .await
                .map_err(Ml2Error::from)?
                .ok_or_else(|| Ml2Error::SegmentNotFound(seg.into()))?;
            if stamp::str_of(&s, "network_id") != sref.network_id {
                return Err(invalid(format!("Network {} does not contain segment {seg}", sref.network_id)).into());
            }
        }
        for (k, v) in changes {
            match k.as_str() {
                "gateway_ip" | "allocation_pools" => {}
                _ => {
                    doc.insert(k, v);
                }
            }
        }
        doc.insert("gateway_ip".into(), gateway.map(|g| json!(g.to_string())).unwrap_or(Value::Null));
        doc.insert("allocation_pools".into(), pools::to_json(&ranges, ipv));
        stamp::changed(&mut doc);
        tx.update(&SUBNETS, &doc).await.map_err(Ml2Error::from)?;
        if pools_changed {
            allocator::set_pools(&mut tx, &ipam_ref(&doc)?).await.map_err(Ml2Error::from)?;
        }
        let mut out = Outbox::default();
        out.push("subnet", Action::Update, &doc);
        core.schedule_network_dhcp(&mut tx, &mut out, &sref.network_id).await?;
        core.commit(tx, out).await?;
        Ok(doc)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let doc =
            tx.get(&SUBNETS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::SubnetNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let mut out = Outbox::default();
        // Ports holding addresses of this subnet: DHCP ports (and any port on
        // an automatic-address subnet) give them up; anything else blocks.
        let allocs = tx.alloc_by_subnet(id).await.map_err(Ml2Error::from)?;
        let auto = is_auto_address(&doc);
        let mut release_from = vec![];
        for a in &allocs {
            let Some(port) = tx.get(&PORTS, &a.port_id).await.map_err(Ml2Error::from)? else {
                continue;
            };
            let owner = stamp::str_of(&port, "device_owner");
            let router_owned =
                owner.starts_with("network:router_interface") || owner == "network:ha_router_replicated_interface";
            if owner == neutrino_lib::defs::DEVICE_OWNER_DHCP || (auto && !router_owned) {
                release_from.push(port);
            } else {
                return Err(Ml2Error::SubnetInUse {
                    id: id.into(),
                    reason: "One or more ports have an IP allocation from this subnet".into(),
                }
                .into());
            }
        }
        for mut port in release_from {
            crate::port::drop_subnet_addresses(core, &mut tx, &mut out, &mut port, &doc).await?;
        }
        remove(core, &mut tx, &mut out, &doc).await?;
        core.commit(tx, out).await?;
        Ok(())
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self.0.set_tags(&SUBNETS, "subnet", || Ml2Error::SubnetNotFound(id.into()), id, tags).await?)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["subnet-service-types", "subnet-dns-publish-fixed-ip", "subnet-external-network"]
    }
}
