//! Networks.

use std::sync::Arc;

use async_trait::async_trait;
use neutrino_lib::defs::network::NETWORK;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{NETWORKS, PORTS, SEGMENTS, SUBNETS};
use neutrino_store::{Cond, Tx};
use serde_json::{json, Value};

use crate::error::{invalid, Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::types::{Segment, SegmentSpec};
use crate::{segments, Core};

/// The networks collection.
pub struct Networks(pub Arc<Core>);

fn spec_of(v: &Map) -> SegmentSpec {
    SegmentSpec {
        network_type: v.get("provider:network_type").and_then(Value::as_str).map(String::from),
        physical_network: v.get("provider:physical_network").and_then(Value::as_str).map(String::from),
        segmentation_id: v.get("provider:segmentation_id").and_then(Value::as_i64),
    }
}

fn has_provider(v: &Map) -> bool {
    ["provider:network_type", "provider:physical_network", "provider:segmentation_id"]
        .iter()
        .any(|k| v.get(*k).is_some_and(|x| !x.is_null()))
}

/// Writes the provider view of the segments into a network document:
/// `provider:*` for one segment, `segments` for several.
pub(crate) fn show_segments(doc: &mut Map, segs: &[Segment]) {
    if segs.len() == 1 {
        if let Value::Object(p) = segs[0].provider_json() {
            doc.extend(p);
        }
        doc.remove("segments");
    } else {
        for k in ["provider:network_type", "provider:physical_network", "provider:segmentation_id"] {
            doc.remove(k);
        }
        doc.insert("segments".into(), Value::Array(segs.iter().map(Segment::provider_json).collect()));
    }
}

/// Networks a caller sees: its own, shared ones and external ones.
/// [`visible`] as a listing condition.
pub fn visible_cond(ctx: &Context) -> Cond {
    Cond::Or(vec![crate::own(ctx), Cond::Flag("shared", true), Cond::Flag("router:external", true)])
}

pub fn visible(ctx: &Context, n: &Map) -> bool {
    ctx.sees(n) || stamp::bool_of(n, "shared") || stamp::bool_of(n, "router:external")
}

impl Networks {
    async fn create_one(&self, tx: &mut Tx, out: &mut Outbox, mut req: Map) -> Result<Map> {
        let core = &self.0;
        let id = neutrino_lib::new_id();
        let project = crate::opt_str(&req, "project_id").unwrap_or_default();
        let segs: Vec<Segment> = match req.remove("segments") {
            Some(Value::Array(list)) => {
                if has_provider(&req) {
                    return Err(invalid("Segments and provider values cannot both be set"));
                }
                if list.is_empty() {
                    return Err(invalid("Empty segments list"));
                }
                let mut segs = vec![];
                for s in &list {
                    let spec = spec_of(s.as_object().unwrap_or(&Map::new()));
                    if spec.network_type.is_none() {
                        return Err(invalid("network_type required"));
                    }
                    if segs.iter().any(|x: &Segment| {
                        Some(&x.network_type) == spec.network_type.as_ref()
                            && x.physical_network == spec.physical_network
                            && spec.segmentation_id.is_some()
                            && x.segmentation_id == spec.segmentation_id
                    }) {
                        return Err(invalid("Duplicate segment entry in request."));
                    }
                    segs.push(core.types.reserve_provider(tx, &spec, &id).await?);
                }
                segs
            }
            _ if has_provider(&req) => {
                vec![core.types.reserve_provider(tx, &spec_of(&req), &id).await?]
            }
            _ => vec![core.types.allocate_tenant(tx, &id).await?],
        };
        let max_mtu = segs.iter().map(|s| core.types.mtu(s)).min().unwrap_or(core.cfg.global_physnet_mtu);
        let mtu = match req.get("mtu").and_then(Value::as_i64) {
            Some(m) if m > 0 => {
                if m as u32 > max_mtu {
                    return Err(invalid(format!("Requested MTU is too big, maximum is {max_mtu}")));
                }
                m as u32
            }
            _ => max_mtu,
        };
        let mut doc = Map::new();
        doc.insert("id".into(), Value::String(id.clone()));
        for k in [
            "name",
            "admin_state_up",
            "shared",
            "router:external",
            "port_security_enabled",
            "availability_zone_hints",
            "dns_domain",
            "is_default",
            "description",
        ] {
            if let Some(v) = req.get(k) {
                doc.insert(k.into(), v.clone());
            }
        }
        doc.insert("status".into(), json!("ACTIVE"));
        doc.insert("subnets".into(), json!([]));
        doc.insert("mtu".into(), json!(mtu));
        doc.insert("availability_zones".into(), json!([]));
        doc.insert("ipv4_address_scope".into(), Value::Null);
        doc.insert("ipv6_address_scope".into(), Value::Null);
        doc.insert("l2_adjacency".into(), json!(true));
        show_segments(&mut doc, &segs);
        if stamp::bool_of(&doc, "is_default") {
            if !stamp::bool_of(&doc, "router:external") {
                return Err(invalid("is_default can only be set on external networks"));
            }
            self.check_single_default(tx, &id).await?;
        }
        stamp::created(&mut doc, &project, true, true);
        segments::add(tx, &doc, &segs).await?;
        core.quota_take(tx, &project, "network", 1).await?;
        tx.insert(&NETWORKS, &doc).await?;
        out.push("network", Action::Create, &doc);
        Ok(doc)
    }

    async fn check_single_default(&self, tx: &mut Tx, except: &str) -> Result<()> {
        for n in tx.list(&NETWORKS, &[]).await? {
            if stamp::bool_of(&n, "is_default") && stamp::str_of(&n, "id") != except {
                return Err(Ml2Error::Fault(Fault::conflict(
                    "DefaultExternalNetworkExists",
                    format!("Unable to set the default external network. Network {} is already the default external network.", stamp::str_of(&n, "id")),
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ResourcePlugin for Networks {
    fn def(&self) -> &'static ResourceDef {
        &NETWORK
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
        let n = self.0.store.get(&NETWORKS, id).await.map_err(Ml2Error::from)?;
        Ok(n.filter(|n| visible(ctx, n)).ok_or_else(|| Ml2Error::NetworkNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let conds = if ctx.is_admin() { vec![] } else { vec![visible_cond(ctx)] };
        crate::select(&self.0.store, self.def(), &NETWORKS, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        h.projects = None; // shared and external networks are visible across projects
        let mut nets = self.0.store.list(&NETWORKS, &crate::pushdown(&NETWORKS, &h)).await.map_err(Ml2Error::from)?;
        nets.retain(|n| visible(ctx, n));
        Ok(nets)
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
            tx.get(&NETWORKS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::NetworkNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let mut changes = changes;
        // Provider attributes may be restated but not changed.
        let segs: Vec<Segment> = segments::of_network(&mut tx, id).await?.iter().map(segments::as_segment).collect();
        if has_provider(&changes) || changes.contains_key("segments") {
            let mut cur = Map::new();
            show_segments(&mut cur, &segs);
            let same = ["provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"]
                .iter()
                .all(|k| changes.get(*k).is_none_or(|v| cur.get(*k) == Some(v)));
            if !same {
                return Err(
                    Ml2Error::InvalidInput("Plugin does not support updating provider attributes".into()).into()
                );
            }
            for k in ["provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"] {
                changes.remove(k);
            }
        }
        if let Some(m) = changes.get("mtu").and_then(Value::as_i64) {
            let max = segs.iter().map(|s| core.types.mtu(s)).min().unwrap_or(core.cfg.global_physnet_mtu) as i64;
            if m > max {
                return Err(Ml2Error::InvalidInput(format!("Requested MTU is too big, maximum is {max}")).into());
            }
            if m == 0 {
                changes.insert("mtu".into(), json!(max));
            }
            let m = changes.get("mtu").and_then(Value::as_i64).unwrap_or(m);
            let versions: Vec<i64> = tx
                .list(&SUBNETS, &[("network_id", vec![id.to_string()])])
                .await
                .map_err(Ml2Error::from)?
                .iter()
                .filter_map(|s| s.get("ip_version").and_then(Value::as_i64))
                .collect();
            crate::subnet::check_mtu(id, m, &versions)?;
        }
        if changes.get("shared") == Some(&Value::Bool(false)) && stamp::bool_of(&doc, "shared") {
            let owner = stamp::str_of(&doc, "project_id").to_string();
            let ports = tx.list(&PORTS, &[("network_id", vec![id.to_string()])]).await.map_err(Ml2Error::from)?;
            if ports.iter().any(|p| {
                stamp::str_of(p, "project_id") != owner && !stamp::str_of(p, "device_owner").starts_with("network:")
            }) {
                return Err(Fault::conflict(
                    "InvalidSharedSetting",
                    format!("Unable to reconfigure sharing settings for network {id}. Multiple tenants are using it."),
                ));
            }
        }
        if changes.get("is_default") == Some(&Value::Bool(true)) {
            let external = changes
                .get("router:external")
                .and_then(Value::as_bool)
                .unwrap_or(stamp::bool_of(&doc, "router:external"));
            if !external {
                return Err(Ml2Error::InvalidInput("is_default can only be set on external networks".into()).into());
            }
            self.check_single_default(&mut tx, id).await?;
        }
        let external_changed = changes.get("router:external").is_some_and(|v| Some(v) != doc.get("router:external"));
        for (k, v) in changes {
            doc.insert(k, v);
        }
        stamp::changed(&mut doc);
        tx.update(&NETWORKS, &doc).await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        if external_changed {
            // Subnets show whether their network is external.
            for mut s in tx.list(&SUBNETS, &[("network_id", vec![id.to_string()])]).await.map_err(Ml2Error::from)? {
                s.insert("router:external".into(), doc.get("router:external").cloned().unwrap_or(Value::Bool(false)));
                tx.update(&SUBNETS, &s).await.map_err(Ml2Error::from)?;
            }
        }
        out.push("network", Action::Update, &doc);
        core.commit(tx, out).await?;
        Ok(doc)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let doc =
            tx.get(&NETWORKS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::NetworkNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let mut out = Outbox::default();
        for o in core.port_observers() {
            o.before_network_delete(core, &mut tx, &mut out, &doc).await?;
        }
        let ports = tx.list(&PORTS, &[("network_id", vec![id.to_string()])]).await.map_err(Ml2Error::from)?;
        if ports.iter().any(|p| stamp::str_of(p, "device_owner") != neutrino_lib::defs::DEVICE_OWNER_DHCP) {
            return Err(Ml2Error::NetworkInUse(id.into()).into());
        }
        for p in &ports {
            crate::port::delete_in(core, &mut tx, &mut out, p).await?;
        }
        for s in tx.list(&SUBNETS, &[("network_id", vec![id.to_string()])]).await.map_err(Ml2Error::from)? {
            crate::subnet::remove(core, &mut tx, &mut out, &s).await?;
        }
        for s in segments::of_network(&mut tx, id).await? {
            core.types.release(&mut tx, &segments::as_segment(&s)).await?;
            tx.delete(&SEGMENTS, stamp::str_of(&s, "id")).await.map_err(Ml2Error::from)?;
        }
        tx.delete(&NETWORKS, id).await.map_err(Ml2Error::from)?;
        for agent_id in tx.hosts_of(neutrino_store::scheduling::NETWORK_DHCP, id).await.map_err(Ml2Error::from)? {
            if let Some(a) = tx.peek(&neutrino_store::schema::AGENTS, &agent_id).await.map_err(Ml2Error::from)? {
                let ev = json!({"network_id": id, "agent_id": agent_id, "host": a.get("host")});
                out.push("dhcp_network_hosted", Action::Delete, ev.as_object().unwrap_or(&Map::new()));
            }
        }
        tx.unhost_resource(neutrino_store::scheduling::NETWORK_DHCP, id).await.map_err(Ml2Error::from)?;
        core.quota_release(&mut tx, stamp::str_of(&doc, "project_id"), "network", 1).await?;
        out.push("network", Action::Delete, &doc);
        core.commit(tx, out).await?;
        Ok(())
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
            ("GET", ["dhcp-agents"]) => {
                if !ctx.is_admin() {
                    return Err(Fault::policy("get_dhcp-agents"));
                }
                self.get(ctx, id).await?;
                let agents: Vec<Value> = self
                    .0
                    .dhcp_agents_of(id)
                    .await?
                    .into_iter()
                    .map(|a| {
                        let mut a = a;
                        a.insert("alive".into(), json!(self.0.agent_alive(&a)));
                        a.retain(|k, _| !k.starts_with('_'));
                        Value::Object(a)
                    })
                    .collect();
                Ok((200, Some(json!({ "agents": agents }))))
            }
            _ => Err(Fault::no_such_path()),
        }
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self.0.set_tags(&NETWORKS, "network", || Ml2Error::NetworkNotFound(id.into()), id, tags).await?)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[
            "external-net",
            "provider",
            "multi-provider",
            "net-mtu",
            "net-mtu-writable",
            "port-security",
            "l2_adjacency",
            "dns-integration",
            "network_availability_zone",
            "availability_zone",
        ]
    }
}
