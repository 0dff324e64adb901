//! Ports: MAC and IP allocation, security groups, port security, allowed
//! address pairs, extra DHCP options, DNS assignment and binding attributes.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use neutrino_ipam::allocator;
use neutrino_ipam::slaac;
use neutrino_lib::checks::{format_mac, parse_mac};
use neutrino_lib::defs::port::PORT;
use neutrino_lib::defs::{DEVICE_OWNER_DHCP, DEVICE_OWNER_NETWORK_PREFIX};
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{NETWORKS, PORTS, SECURITY_GROUPS, SUBNETS};
use neutrino_store::{Cond, Tx};
use rand::Rng;
use serde_json::{json, Value};

use crate::error::{invalid, Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::subnet::{ipam_ref, is_auto_address};
use crate::Core;

/// The ports collection.
pub struct Ports(pub Arc<Core>);

/// Most fixed IPs a port may have.
const MAX_FIXED_IPS: usize = 5;

/// Device owners of router ports, whose addresses are never automatic.
fn is_router_owner(owner: &str) -> bool {
    matches!(
        owner,
        "network:router_interface"
            | "network:router_interface_distributed"
            | "network:ha_router_replicated_interface"
            | "network:router_gateway"
    )
}

fn random_mac(core: &Core) -> String {
    let mut b = core.cfg.base_mac;
    let mut rng = rand::thread_rng();
    for (i, byte) in b.iter_mut().enumerate().skip(core.cfg.base_mac_fixed) {
        let _ = i;
        *byte = rng.gen();
    }
    format_mac(b)
}

fn fixed_ip(subnet: &str, ip: IpAddr) -> Value {
    json!({"subnet_id": subnet, "ip_address": ip.to_string()})
}

/// Subnets usable for a device owner: those whose service types name it, or
/// else those without service types.
fn service_subnets<'a>(subnets: &'a [Map], owner: &str) -> Vec<&'a Map> {
    let typed = |s: &Map| s.get("service_types").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let matching: Vec<&Map> = subnets
        .iter()
        .filter(|s| {
            s.get("service_types")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|t| t.as_str() == Some(owner)))
        })
        .collect();
    if !matching.is_empty() {
        return matching;
    }
    subnets.iter().filter(|s| !typed(s)).collect()
}

/// Where the addresses of a port come from.
struct Addressing<'a> {
    port_id: &'a str,
    mac: [u8; 6],
    owner: &'a str,
    network_id: &'a str,
    subnets: &'a [Map],
}

impl Addressing<'_> {
    fn subnet(&self, id: &str) -> Result<&Map> {
        self.subnets
            .iter()
            .find(|s| stamp::str_of(s, "id") == id)
            .ok_or_else(|| Ml2Error::InvalidSubnetForNetwork(self.network_id.into(), id.into()))
    }

    fn subnet_for_ip(&self, ip: IpAddr) -> Result<&Map> {
        self.subnets
            .iter()
            .find(|s| stamp::str_of(s, "cidr").parse::<IpNet>().is_ok_and(|n| n.contains(&ip)))
            .ok_or_else(|| {
                Ml2Error::Fault(Fault::new(
                    400,
                    "InvalidIpForNetwork",
                    format!("IP address {ip} is not a valid IP for any of the subnets on the specified network."),
                ))
            })
    }

    fn eui64(&self, s: &Map) -> Option<IpAddr> {
        match stamp::str_of(s, "cidr").parse::<IpNet>() {
            Ok(IpNet::V6(n)) => Some(IpAddr::V6(slaac::eui64(&n, self.mac))),
            _ => None,
        }
    }

    fn exhausted(&self) -> Ml2Error {
        Ml2Error::Ipam(neutrino_ipam::IpamError::Exhausted { network: self.network_id.into() })
    }

    /// Allocates one address: the requested one, or the lowest free.
    async fn one(&self, tx: &mut Tx, s: &Map, ip: Option<IpAddr>) -> Result<Value> {
        let r = ipam_ref(s)?;
        let id = stamp::str_of(s, "id");
        if is_auto_address(s) && !is_router_owner(self.owner) {
            let a = self.eui64(s).ok_or_else(|| invalid("SLAAC needs an IPv6 subnet"))?;
            if let Some(want) = ip {
                if want != a {
                    return Err(Ml2Error::Fault(Fault::new(
                        400,
                        "AllocationOnAutoAddressSubnet",
                        format!("IPv6 address {want} cannot be directly assigned to a port on subnet {id} as the subnet is configured for automatic addresses"),
                    )));
                }
            }
            allocator::record(tx, &r, a, self.port_id).await?;
            return Ok(fixed_ip(id, a));
        }
        match ip {
            Some(a) => {
                allocator::allocate_specific(tx, &r, a, self.port_id).await?;
                Ok(fixed_ip(id, a))
            }
            None => match allocator::allocate_any(tx, &r, self.port_id).await? {
                Some(a) => Ok(fixed_ip(id, a)),
                None => Err(self.exhausted()),
            },
        }
    }

    /// Allocates a plan of (subnet, address) in a global order (by subnet
    /// id), so two transactions never wait on each other's pools crosswise;
    /// results come back in the plan's order.
    async fn allocate_plan(&self, tx: &mut Tx, plan: &[(&Map, Option<IpAddr>)]) -> Result<Vec<Value>> {
        let mut order: Vec<usize> = (0..plan.len()).collect();
        order.sort_by(|x, y| stamp::str_of(plan[*x].0, "id").cmp(stamp::str_of(plan[*y].0, "id")));
        let mut out: Vec<Option<Value>> = vec![None; plan.len()];
        for i in order {
            let (s, ip) = plan[i];
            out[i] = Some(self.one(tx, s, ip).await?);
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Addresses for a new port: requested `fixed_ips`, or automatic.
    async fn allocate(&self, tx: &mut Tx, requested: Option<&Vec<Value>>) -> Result<Vec<Value>> {
        let mut out = vec![];
        let usable = service_subnets(self.subnets, self.owner);
        match requested {
            Some(list) => {
                if list.len() > MAX_FIXED_IPS {
                    return Err(invalid("Exceeded maximum amount of fixed ips per port."));
                }
                let mut plan = vec![];
                for f in list {
                    let ip: Option<IpAddr> = f.get("ip_address").and_then(Value::as_str).and_then(|s| s.parse().ok());
                    let s = match (f.get("subnet_id").and_then(Value::as_str), ip) {
                        (Some(sid), Some(a)) => {
                            let s = self.subnet(sid)?;
                            let r = ipam_ref(s)?;
                            if !r.cidr.contains(&a) {
                                return Err(Ml2Error::Ipam(neutrino_ipam::IpamError::InvalidIpForSubnet {
                                    ip: a.to_string(),
                                }));
                            }
                            s
                        }
                        (Some(sid), None) => self.subnet(sid)?,
                        (None, Some(a)) => self.subnet_for_ip(a)?,
                        (None, None) => return Err(invalid("IP allocation requires subnet_id or ip_address")),
                    };
                    if ip.is_none() && is_auto_address(s) && !is_router_owner(self.owner) {
                        continue; // added with the other automatic addresses below
                    }
                    plan.push((s, ip));
                }
                out.extend(self.allocate_plan(tx, &plan).await?);
            }
            None => {
                let v4: Vec<&Map> =
                    usable.iter().copied().filter(|s| s.get("ip_version").and_then(Value::as_i64) == Some(4)).collect();
                let v6: Vec<&Map> = usable
                    .iter()
                    .copied()
                    .filter(|s| s.get("ip_version").and_then(Value::as_i64) == Some(6) && !is_auto_address(s))
                    .collect();
                for group in [v4, v6] {
                    if group.is_empty() {
                        continue;
                    }
                    let mut got = None;
                    for s in &group {
                        let r = ipam_ref(s)?;
                        if let Some(a) = allocator::allocate_any(tx, &r, self.port_id).await? {
                            got = Some(fixed_ip(stamp::str_of(s, "id"), a));
                            break;
                        }
                    }
                    out.push(got.ok_or_else(|| self.exhausted())?);
                }
            }
        }
        if !is_router_owner(self.owner) {
            for s in usable.iter().filter(|s| is_auto_address(s)) {
                let id = stamp::str_of(s, "id");
                if out.iter().any(|f| f.get("subnet_id").and_then(Value::as_str) == Some(id)) {
                    continue;
                }
                out.push(self.one(tx, s, None).await?);
            }
        }
        Ok(out)
    }
}

/// `dns_assignment` of a port: one entry per fixed IP.
fn dns_assignment(core: &Core, port: &Map) -> Value {
    let name = stamp::str_of(port, "dns_name");
    let domain = core.cfg.dns_domain.trim_end_matches('.');
    let list: Vec<Value> = port
        .get("fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("ip_address").and_then(Value::as_str))
        .map(|ip| {
            let host = if name.is_empty() { format!("host-{}", ip.replace(['.', ':'], "-")) } else { name.to_string() };
            json!({"hostname": host, "ip_address": ip, "fqdn": format!("{host}.{domain}.")})
        })
        .collect();
    Value::Array(list)
}

/// Releases the addresses of a port document (all of them).
async fn release_all(tx: &mut Tx, subnets: &[Map], port: &Map) -> Result<()> {
    for f in port.get("fixed_ips").and_then(Value::as_array).into_iter().flatten() {
        let (Some(sid), Some(ip)) =
            (f.get("subnet_id").and_then(Value::as_str), f.get("ip_address").and_then(Value::as_str))
        else {
            continue;
        };
        let Ok(ip) = ip.parse::<IpAddr>() else {
            continue;
        };
        if let Some(s) = subnets.iter().find(|s| stamp::str_of(s, "id") == sid) {
            allocator::release(tx, &ipam_ref(s)?, ip).await?;
        } else {
            tx.alloc_delete(stamp::str_of(port, "network_id"), &ip.to_string()).await?;
        }
    }
    Ok(())
}

/// Creates a port inside a caller's transaction (for service plugins: router
/// interfaces, gateways, floating IPs, DHCP ports). `req` is a port request
/// as the API edge would pass it; missing attributes take their defaults.
pub async fn create_in(core: &Arc<Core>, ctx: &Context, tx: &mut Tx, out: &mut Outbox, mut req: Map) -> Result<Map> {
    PORT.with_defaults(&mut req);
    if !req.contains_key("tenant_id") {
        if let Some(p) = req.get("project_id").cloned() {
            req.insert("tenant_id".into(), p);
        }
    }
    Ports(core.clone()).create_one(ctx, tx, out, req).await
}

/// Deletes a port inside a caller's transaction (observers are told, not asked
/// through the port API).
pub async fn delete_in(core: &Core, tx: &mut Tx, out: &mut Outbox, port: &Map) -> Result<()> {
    for o in core.port_observers() {
        o.before_port_delete(tx, out, port, false).await?;
    }
    remove(core, tx, out, port).await
}

/// Deletes a port and releases what it held.
pub(crate) async fn remove(core: &Core, tx: &mut Tx, out: &mut Outbox, port: &Map) -> Result<()> {
    let net = stamp::str_of(port, "network_id").to_string();
    let subnets = tx.list(&SUBNETS, &[("network_id", vec![net])]).await?;
    release_all(tx, &subnets, port).await?;
    tx.delete(&PORTS, stamp::str_of(port, "id")).await?;
    core.quota_release(tx, stamp::str_of(port, "project_id"), "port", 1).await?;
    out.push("port", Action::Delete, port);
    Ok(())
}

/// Takes a subnet's addresses away from a port (subnet delete).
pub(crate) async fn drop_subnet_addresses(
    core: &Core,
    tx: &mut Tx,
    out: &mut Outbox,
    port: &mut Map,
    subnet: &Map,
) -> Result<()> {
    let sid = stamp::str_of(subnet, "id").to_string();
    let r = ipam_ref(subnet)?;
    let mut keep = vec![];
    for f in port.get("fixed_ips").and_then(Value::as_array).cloned().unwrap_or_default() {
        if f.get("subnet_id").and_then(Value::as_str) == Some(sid.as_str()) {
            if let Some(ip) = f.get("ip_address").and_then(Value::as_str).and_then(|s| s.parse().ok()) {
                allocator::release(tx, &r, ip).await?;
            }
        } else {
            keep.push(f);
        }
    }
    port.insert("fixed_ips".into(), Value::Array(keep));
    port.insert("dns_assignment".into(), dns_assignment(core, port));
    stamp::changed(port);
    tx.update(&PORTS, port).await?;
    out.push("port", Action::Update, port);
    Ok(())
}

/// Gives every port on the network an address on a new automatic-address subnet.
pub(crate) async fn add_auto_addresses(core: &Core, tx: &mut Tx, out: &mut Outbox, subnet: &Map) -> Result<()> {
    let net = stamp::str_of(subnet, "network_id").to_string();
    let r = ipam_ref(subnet)?;
    let IpNet::V6(prefix) = r.cidr else {
        return Ok(());
    };
    for mut p in tx.list(&PORTS, &[("network_id", vec![net])]).await? {
        let owner = stamp::str_of(&p, "device_owner").to_string();
        if is_router_owner(&owner) {
            continue;
        }
        let Some(mac) = parse_mac(stamp::str_of(&p, "mac_address")) else {
            continue;
        };
        let a = IpAddr::V6(slaac::eui64(&prefix, mac));
        allocator::record(tx, &r, a, stamp::str_of(&p, "id")).await?;
        if let Some(Value::Array(list)) = p.get_mut("fixed_ips") {
            list.push(fixed_ip(&r.id, a));
        }
        p.insert("dns_assignment".into(), dns_assignment(core, &p));
        stamp::changed(&mut p);
        tx.update(&PORTS, &p).await?;
        out.push("port", Action::Update, &p);
    }
    Ok(())
}

impl Ports {
    /// Security groups for a port: the requested ones (checked), or the
    /// project's default group for ports with port security that are not
    /// owned by the network itself.
    async fn security_groups(
        &self,
        ctx: &Context,
        tx: &mut Tx,
        out: &mut Outbox,
        req: &Map,
        project: &str,
        port_security: bool,
    ) -> Result<Value> {
        let owner = stamp::str_of(req, "device_owner");
        match req.get("security_groups") {
            Some(Value::Array(ids)) => {
                if !ids.is_empty() && !port_security {
                    return Err(Ml2Error::Fault(Fault::new(
                        400,
                        "PortSecurityAndIPRequiredForSecurityGroups",
                        "Port security must be enabled and port must have an IP address in order to use security groups.",
                    )));
                }
                let (mut stateful, mut stateless) = (false, false);
                for id in ids {
                    let id = id.as_str().unwrap_or("");
                    let sg = tx
                        .peek(&SECURITY_GROUPS, id)
                        .await?
                        .ok_or_else(|| Ml2Error::SecurityGroupNotFound(id.into()))?;
                    let sg_project = stamp::str_of(&sg, "project_id");
                    if sg_project != project && !stamp::bool_of(&sg, "shared") && !ctx.is_admin() {
                        return Err(Ml2Error::SecurityGroupNotFound(id.into()));
                    }
                    if sg.get("stateful").and_then(Value::as_bool).unwrap_or(true) {
                        stateful = true;
                    } else {
                        stateless = true;
                    }
                }
                // Neutron's _validate_sgs_for_port.
                if stateful && stateless {
                    return Err(Ml2Error::SecurityGroupConflict(
                        "Cannot apply both stateful and stateless security groups on the same port at the same time"
                            .into(),
                    ));
                }
                Ok(Value::Array(ids.clone()))
            }
            _ if !port_security || owner.starts_with(DEVICE_OWNER_NETWORK_PREFIX) => Ok(json!([])),
            _ => {
                let sg = crate::secgroup::ensure_default(&self.0, tx, out, project).await?;
                Ok(json!([sg]))
            }
        }
    }

    fn check_address_pairs(&self, pairs: &Value, port_security: bool, mac: &str) -> Result<Value> {
        let list = pairs.as_array().cloned().unwrap_or_default();
        if !list.is_empty() && !port_security {
            return Err(Ml2Error::Fault(Fault::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            )));
        }
        if list.len() > self.0.cfg.max_allowed_address_pair {
            return Err(Ml2Error::Fault(Fault::new(
                400,
                "AllowedAddressPairExhausted",
                format!(
                    "The number of allowed address pair exceeds the maximum {}.",
                    self.0.cfg.max_allowed_address_pair
                ),
            )));
        }
        let mut out = vec![];
        for mut p in list {
            let ip = p.get("ip_address").and_then(Value::as_str).unwrap_or("");
            let addr = ip.split('/').next().and_then(|a| a.parse::<IpAddr>().ok());
            if addr.is_some_and(|a| a.is_multicast()) {
                return Err(invalid(format!("Multicast address {ip} is not allowed in allowed address pairs")));
            }
            if let Some(o) = p.as_object_mut() {
                o.entry("mac_address").or_insert_with(|| json!(mac));
            }
            out.push(p);
        }
        Ok(Value::Array(out))
    }

    async fn create_one(&self, ctx: &Context, tx: &mut Tx, out: &mut Outbox, req: Map) -> Result<Map> {
        let core = &self.0;
        let net_id = stamp::str_of(&req, "network_id").to_string();
        let network =
            tx.get_shared(&NETWORKS, &net_id).await?.ok_or_else(|| Ml2Error::NetworkNotFound(net_id.clone()))?;
        let project = crate::opt_str(&req, "project_id").unwrap_or_default();
        let owner = stamp::str_of(&req, "device_owner").to_string();
        let id = neutrino_lib::new_id();
        let port_security = req
            .get("port_security_enabled")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| network.get("port_security_enabled").and_then(Value::as_bool).unwrap_or(true));
        let sgs = self.security_groups(ctx, tx, out, &req, &project, port_security).await?;
        let port_limit = core.quota_prepare(tx, &project, "port").await?;
        let given_mac = req.get("mac_address").and_then(Value::as_str).map(String::from);
        let mut mac = given_mac.clone().unwrap_or_else(|| random_mac(core));
        let aap =
            self.check_address_pairs(req.get("allowed_address_pairs").unwrap_or(&json!([])), port_security, &mac)?;
        let mut doc = Map::new();
        doc.insert("id".into(), json!(id));
        for k in [
            "name",
            "network_id",
            "admin_state_up",
            "device_id",
            "device_owner",
            "extra_dhcp_opts",
            "dns_name",
            "dns_domain",
            "binding:host_id",
            "binding:vnic_type",
            "binding:profile",
            "propagate_uplink_status",
            "numa_affinity_policy",
            "device_profile",
            "description",
        ] {
            if let Some(v) = req.get(k) {
                doc.insert(k.into(), v.clone());
            }
        }
        if let Some(t) = req.get("trusted") {
            doc.insert("trusted".into(), t.clone());
        }
        doc.insert("status".into(), json!("DOWN"));
        doc.insert("port_security_enabled".into(), json!(port_security));
        doc.insert("security_groups".into(), sgs);
        doc.insert("allowed_address_pairs".into(), aap);
        doc.insert("ip_allocation".into(), json!("immediate"));
        doc.insert("resource_request".into(), Value::Null);
        doc.insert("data_plane_status".into(), Value::Null);
        doc.insert("binding:vif_details".into(), json!({}));
        stamp::created(&mut doc, &project, true, true);
        if let Some(Value::Array(tags)) = req.get("tags") {
            doc.insert("tags".into(), Value::Array(tags.clone()));
        }
        let subnets = tx.list(&SUBNETS, &[("network_id", vec![net_id.clone()])]).await?;
        // Addresses first, then the row (whose unique index checks the MAC),
        // then quota: the contended locks are taken late and held briefly.
        let addressing = Addressing {
            port_id: &id,
            mac: parse_mac(&mac).unwrap_or_default(),
            owner: &owner,
            network_id: &net_id,
            subnets: &subnets,
        };
        let requested = match req.get("fixed_ips") {
            Some(Value::Array(l)) => Some(l),
            _ => None,
        };
        let ips = addressing.allocate(tx, requested).await?;
        doc.insert("fixed_ips".into(), Value::Array(ips));
        crate::binding::bind(core, tx, &mut doc).await?;
        let mut tries = 0;
        loop {
            doc.insert("mac_address".into(), json!(mac));
            doc.insert("dns_assignment".into(), dns_assignment(core, &doc));
            if tx.insert(&PORTS, &doc).await? {
                break;
            }
            if given_mac.is_some() || tries >= 16 {
                return Err(Ml2Error::MacAddressInUse { net: net_id, mac });
            }
            tries += 1;
            mac = random_mac(core);
            // SLAAC addresses derive from the MAC: a new MAC needs new ones.
            if subnets.iter().any(is_auto_address) {
                return Err(Ml2Error::MacAddressInUse { net: net_id, mac });
            }
        }
        core.quota_take_prepared(tx, &project, "port", 1, port_limit).await?;
        out.push("port", Action::Create, &doc);
        Ok(doc)
    }

    async fn update_ips(&self, tx: &mut Tx, doc: &Map, new: &[Value]) -> Result<Vec<Value>> {
        let net_id = stamp::str_of(doc, "network_id").to_string();
        let subnets = tx.list(&SUBNETS, &[("network_id", vec![net_id.clone()])]).await?;
        let owner = stamp::str_of(doc, "device_owner").to_string();
        let id = stamp::str_of(doc, "id").to_string();
        let mac = parse_mac(stamp::str_of(doc, "mac_address")).unwrap_or_default();
        let addressing = Addressing { port_id: &id, mac, owner: &owner, network_id: &net_id, subnets: &subnets };
        if new.len() > MAX_FIXED_IPS {
            return Err(invalid("Exceeded maximum amount of fixed ips per port."));
        }
        let original: Vec<Value> = doc.get("fixed_ips").and_then(Value::as_array).cloned().unwrap_or_default();
        let ip_of = |v: &Value| v.get("ip_address").and_then(Value::as_str).map(String::from);
        let sub_of = |v: &Value| v.get("subnet_id").and_then(Value::as_str).map(String::from);
        let mut remaining: Vec<Value> = original.clone();
        let mut keep = vec![];
        let mut add: Vec<(Option<String>, Option<IpAddr>)> = vec![];
        for f in new.iter().filter(|f| ip_of(f).is_some()) {
            let ip = ip_of(f);
            if let Some(pos) = remaining.iter().position(|o| ip_of(o) == ip) {
                keep.push(remaining.remove(pos));
            } else {
                add.push((sub_of(f), ip.and_then(|s| s.parse().ok())));
            }
        }
        for f in new.iter().filter(|f| ip_of(f).is_none()) {
            let sid = sub_of(f);
            if let Some(pos) = remaining.iter().position(|o| sub_of(o) == sid) {
                keep.push(remaining.remove(pos));
            } else {
                add.push((sid, None));
            }
        }
        // Addresses on automatic subnets stay unless the port is a router port.
        for o in remaining {
            let sid = sub_of(&o).unwrap_or_default();
            let auto = subnets.iter().find(|s| stamp::str_of(s, "id") == sid).is_some_and(is_auto_address);
            if auto && !is_router_owner(&owner) {
                keep.push(o);
                continue;
            }
            if let (Some(s), Some(ip)) =
                (subnets.iter().find(|s| stamp::str_of(s, "id") == sid), ip_of(&o).and_then(|x| x.parse().ok()))
            {
                allocator::release(tx, &ipam_ref(s)?, ip).await?;
            }
        }
        let mut out = keep;
        let wanted: Vec<Value> = add
            .into_iter()
            .map(|(s, ip)| {
                let mut m = Map::new();
                if let Some(s) = s {
                    m.insert("subnet_id".into(), json!(s));
                }
                if let Some(ip) = ip {
                    m.insert("ip_address".into(), json!(ip.to_string()));
                }
                Value::Object(m)
            })
            .collect();
        if !wanted.is_empty() {
            let mut plan = vec![];
            for f in &wanted {
                let ip: Option<IpAddr> = ip_of(f).and_then(|s| s.parse().ok());
                let s = match (sub_of(f), ip) {
                    (Some(sid), _) => addressing.subnet(&sid)?,
                    (None, Some(a)) => addressing.subnet_for_ip(a)?,
                    _ => continue,
                };
                if let (Some(a), Ok(n)) = (ip, stamp::str_of(s, "cidr").parse::<IpNet>()) {
                    if !n.contains(&a) {
                        return Err(Ml2Error::Ipam(neutrino_ipam::IpamError::InvalidIpForSubnet { ip: a.to_string() }));
                    }
                }
                plan.push((s, ip));
            }
            out.extend(addressing.allocate_plan(tx, &plan).await?);
        }
        Ok(out)
    }
}

impl Ports {
    /// Applies validated changes to a port inside a transaction.
    async fn update_tx(&self, ctx: &Context, tx: &mut Tx, out: &mut Outbox, mut doc: Map, changes: Map) -> Result<Map> {
        let core = &self.0;
        let id = stamp::str_of(&doc, "id").to_string();
        let previous_groups = doc.get("security_groups").cloned();
        let mut changes = changes;
        let port_security = changes
            .get("port_security_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(stamp::bool_of(&doc, "port_security_enabled"));
        if let Some(sgs) = changes.get("security_groups").cloned() {
            let project = stamp::str_of(&doc, "project_id").to_string();
            let mut req = Map::new();
            req.insert("security_groups".into(), sgs);
            req.insert("device_owner".into(), json!(stamp::str_of(&doc, "device_owner")));
            let v = self.security_groups(ctx, tx, out, &req, &project, port_security).await?;
            changes.insert("security_groups".into(), v);
        } else if !port_security && doc.get("security_groups").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
        {
            return Err(Ml2Error::Fault(Fault::conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            )));
        }
        let aap_now = changes
            .get("allowed_address_pairs")
            .cloned()
            .unwrap_or_else(|| doc.get("allowed_address_pairs").cloned().unwrap_or(json!([])));
        if changes.contains_key("allowed_address_pairs") || changes.contains_key("port_security_enabled") {
            let mac = changes
                .get("mac_address")
                .and_then(Value::as_str)
                .unwrap_or(stamp::str_of(&doc, "mac_address"))
                .to_string();
            let checked = self.check_address_pairs(&aap_now, port_security, &mac)?;
            changes.insert("allowed_address_pairs".into(), checked);
        }
        if let Some(m) = changes.get("mac_address").cloned() {
            let new_mac = match m.as_str() {
                Some(s) => s.to_string(),
                None => random_mac(core), // port-mac-address-regenerate
            };
            if new_mac != stamp::str_of(&doc, "mac_address") {
                if !stamp::str_of(&doc, "binding:host_id").is_empty() && stamp::str_of(&doc, "status") == "ACTIVE" {
                    return Err(Ml2Error::Fault(Fault::conflict(
                        "PortBound",
                        format!("Unable to complete operation on port {id}, port is already bound."),
                    )));
                }
                let net = stamp::str_of(&doc, "network_id").to_string();
                let used = tx
                    .list(&PORTS, &[("network_id", vec![net.clone()]), ("mac_address", vec![new_mac.clone()])])
                    .await
                    .map_err(Ml2Error::from)?;
                if !used.is_empty() {
                    return Err(Ml2Error::MacAddressInUse { net, mac: new_mac });
                }
            }
            changes.insert("mac_address".into(), json!(new_mac));
        }
        if let Some(Value::Array(new)) = changes.get("fixed_ips").cloned() {
            let ips = self.update_ips(tx, &doc, &new).await?;
            changes.insert("fixed_ips".into(), Value::Array(ips));
        }
        if let Some(opts) = changes.remove("extra_dhcp_opts") {
            let merged = merge_dhcp_opts(doc.get("extra_dhcp_opts").unwrap_or(&json!([])), &opts);
            doc.insert("extra_dhcp_opts".into(), merged);
        }
        let rebind = ["binding:host_id", "binding:vnic_type", "binding:profile"]
            .iter()
            .any(|k| changes.get(*k).is_some_and(|v| Some(v) != doc.get(*k)));
        for (k, v) in changes {
            doc.insert(k, v);
        }
        doc.insert("dns_assignment".into(), dns_assignment(core, &doc));
        if rebind {
            crate::binding::bind(core, tx, &mut doc).await?;
        }
        stamp::changed(&mut doc);
        if !tx.update(&PORTS, &doc).await.map_err(Ml2Error::from)? {
            return Err(Ml2Error::MacAddressInUse {
                net: stamp::str_of(&doc, "network_id").into(),
                mac: stamp::str_of(&doc, "mac_address").into(),
            });
        }
        if previous_groups.is_some() && previous_groups.as_ref() != doc.get("security_groups") {
            // Agents must learn that the port left its former groups too.
            let mut ev = doc.clone();
            ev.insert("_previous_security_groups".into(), previous_groups.unwrap_or_default());
            out.push("port", Action::Update, &ev);
        } else {
            out.push("port", Action::Update, &doc);
        }
        Ok(doc)
    }
}

/// Updates a port inside a caller's transaction, from a plain `&Core` (the
/// plugin handle is rebuilt from the store; used by schedulers).
pub async fn update_in_core(core: &Core, tx: &mut Tx, out: &mut Outbox, port: &Map, changes: Map) -> Result<Map> {
    let mut doc = port.clone();
    let rebind = changes.contains_key("binding:host_id");
    for (k, v) in changes {
        doc.insert(k, v);
    }
    if rebind {
        crate::binding::bind(core, tx, &mut doc).await?;
    }
    stamp::changed(&mut doc);
    tx.update(&PORTS, &doc).await?;
    out.push("port", Action::Update, &doc);
    Ok(doc)
}

/// Updates a port inside a caller's transaction (service plugins: router
/// interfaces gaining or losing addresses).
pub async fn update_in(core: &Arc<Core>, tx: &mut Tx, out: &mut Outbox, port: &Map, changes: Map) -> Result<Map> {
    Ports(core.clone()).update_tx(&Context::admin(), tx, out, port.clone(), changes).await
}

/// Merges `extra_dhcp_opts` updates: same (name, version) replaces, a null
/// value removes.
fn merge_dhcp_opts(old: &Value, new: &Value) -> Value {
    let mut list: Vec<Value> = old.as_array().cloned().unwrap_or_default();
    for n in new.as_array().into_iter().flatten() {
        let key = |v: &Value| (v.get("opt_name").cloned(), v.get("ip_version").cloned());
        list.retain(|o| key(o) != key(n));
        if !n.get("opt_value").is_none_or(Value::is_null) {
            list.push(n.clone());
        }
    }
    Value::Array(list)
}

#[async_trait]
impl ResourcePlugin for Ports {
    fn def(&self) -> &'static ResourceDef {
        &PORT
    }

    async fn create(&self, ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let mut tx = self.0.store.begin().await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        let mut docs = vec![];
        for item in items {
            docs.push(self.create_one(ctx, &mut tx, &mut out, item).await?);
        }
        self.0.commit(tx, out).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let p = self.0.store.get(&PORTS, id).await.map_err(Ml2Error::from)?;
        Ok(p.filter(|p| ctx.sees(p)).ok_or_else(|| Ml2Error::PortNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let mut spec = spec.clone();
        let mut conds = vec![];
        if !ctx.is_admin() {
            conds.push(crate::own(ctx));
        }
        // fixed_ips=ip_address=X alone: the allocation index answers it.
        if let Some(f) = spec.values("fixed_ips") {
            let exact: Option<Vec<String>> =
                f.iter().map(|v| v.as_str().and_then(|s| s.strip_prefix("ip_address=")).map(String::from)).collect();
            if let Some(ips) = exact {
                spec.take_filter("fixed_ips");
                conds.push(Cond::PortHoldsIp(ips));
            }
        }
        crate::select(&self.0.store, self.def(), &PORTS, &spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut hint = hint.clone();
        if !ctx.is_admin() {
            hint.projects = Some(ctx.project_id.clone().into_iter().collect());
        }
        let hint = &hint;
        let mut filter = crate::pushdown(&PORTS, hint);
        // fixed_ips=ip_address=X / ip_address_substr=X: use the allocation index.
        if let Some(vals) = hint.values("fixed_ips") {
            let mut exact = vec![];
            let mut substr = vec![];
            for v in vals {
                let s = v.as_str().unwrap_or("");
                if let Some(x) = s.strip_prefix("ip_address=") {
                    exact.push(x.to_string());
                } else if let Some(x) = s.strip_prefix("ip_address_substr=") {
                    substr.push(x.to_string());
                }
            }
            if !exact.is_empty() || !substr.is_empty() {
                let ids = self.0.store.alloc_ports_matching(&exact, &substr).await.map_err(Ml2Error::from)?;
                filter.push(("id", ids));
            }
        }
        let mut ports = self.0.store.list(&PORTS, &filter).await.map_err(Ml2Error::from)?;
        ports.retain(|p| ctx.sees(p));
        Ok(ports)
    }

    async fn update(
        &self,
        ctx: &Context,
        id: &str,
        changes: Map,
        if_match: Option<i64>,
    ) -> std::result::Result<Map, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let doc = tx.get(&PORTS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::PortNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let mut out = Outbox::default();
        for o in core.port_observers() {
            o.before_port_update(&mut tx, &doc, &changes).await?;
        }
        let doc = self.update_tx(ctx, &mut tx, &mut out, doc, changes).await?;
        out.push("port", Action::Update, &doc);
        core.commit(tx, out).await?;
        Ok(doc)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let doc = tx.get(&PORTS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::PortNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let mut out = Outbox::default();
        for o in core.port_observers() {
            o.before_port_delete(&mut tx, &mut out, &doc, true).await?;
        }
        remove(core, &mut tx, &mut out, &doc).await?;
        core.commit(tx, out).await?;
        Ok(())
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self.0.set_tags(&PORTS, "port", || Ml2Error::PortNotFound(id.into()), id, tags).await?)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[
            "allowed-address-pairs",
            "extra_dhcp_opt",
            "binding",
            "ip_allocation",
            "ip-substring-filtering",
            "port-security-groups-filtering",
            "port-mac-address-regenerate",
            "uplink-status-propagation",
            "port-resource-request",
            "data-plane-status",
            "port-numa-affinity-policy",
            "port-numa-affinity-policy-socket",
            "port-device-profile",
            "dns-domain-ports",
            "tag-ports-during-bulk-creation",
            "aap-reject-multicast",
        ]
    }
}

#[allow(dead_code)]
fn is_dhcp(p: &Map) -> bool {
    stamp::str_of(p, "device_owner") == DEVICE_OWNER_DHCP
}
