//! Security groups and their rules (the API half; agents enforce them).

use std::sync::Arc;

use async_trait::async_trait;
use neutrino_lib::defs::security_group::{
    ICMP_PROTOCOLS, PORT_PROTOCOLS, PROTOCOLS, SECURITY_GROUP, SECURITY_GROUP_RULE,
};
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{PORTS, SECURITY_GROUPS, SECURITY_GROUP_RULES};
use neutrino_store::{Cond, Tx};
use serde_json::{json, Value};

use crate::error::{Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::Core;

/// The id of a project's default group, if it has one.
async fn default_group(tx: &mut Tx, project: &str) -> Result<Option<String>> {
    Ok(tx.default_security_group(project).await?)
}

/// The security groups collection.
pub struct SecurityGroups(pub Arc<Core>);
/// The security group rules collection.
pub struct SecurityGroupRules(pub Arc<Core>);

fn rule_doc(
    sg: &str,
    project: &str,
    direction: &str,
    ethertype: &str,
    remote_group: Option<&str>,
    default_sg: bool,
) -> Map {
    let mut r = json!({
        "security_group_id": sg,
        "direction": direction,
        "ethertype": ethertype,
        "protocol": null,
        "port_range_min": null,
        "port_range_max": null,
        "remote_ip_prefix": null,
        "remote_group_id": remote_group,
        "remote_address_group_id": null,
        "normalized_cidr": null,
        "belongs_to_default_sg": default_sg,
        "description": "",
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    stamp::created(&mut r, project, true, false);
    r
}

/// Creates a group with its implicit rules (egress for IPv4 and IPv6; the
/// default group also allows ingress from its own members).
async fn insert_group(tx: &mut Tx, out: &mut Outbox, mut sg: Map, default: bool) -> Result<Map> {
    let id = stamp::str_of(&sg, "id").to_string();
    let project = stamp::str_of(&sg, "project_id").to_string();
    let mut rules = vec![];
    for et in ["IPv4", "IPv6"] {
        rules.push(rule_doc(&id, &project, "egress", et, None, default));
        if default {
            rules.push(rule_doc(&id, &project, "ingress", et, Some(&id), default));
        }
    }
    for r in &rules {
        tx.insert(&SECURITY_GROUP_RULES, r).await?;
    }
    tx.insert(&SECURITY_GROUPS, &sg).await?;
    out.push("security_group", Action::Create, &sg);
    sg.insert("security_group_rules".into(), Value::Array(rules.into_iter().map(Value::Object).collect()));
    Ok(sg)
}

/// The project's default group, created on first use (once, also when
/// several requests race for it).
pub async fn ensure_default(_core: &Core, tx: &mut Tx, out: &mut Outbox, project: &str) -> Result<String> {
    if let Some(id) = default_group(tx, project).await? {
        return Ok(id);
    }
    let id = neutrino_lib::new_id();
    if !tx.claim_default_security_group(project, &id).await? {
        // Somebody else created it meanwhile.
        return default_group(tx, project).await?.ok_or_else(|| Ml2Error::SecurityGroupNotFound("default".into()));
    }
    let mut sg = json!({"id": id, "name": "default", "description": "Default security group", "stateful": true, "shared": false})
        .as_object()
        .cloned()
        .unwrap_or_default();
    stamp::created(&mut sg, project, true, true);
    insert_group(tx, out, sg, true).await?;
    Ok(id)
}

async fn with_rules(core: &Core, mut groups: Vec<Map>) -> Result<Vec<Map>> {
    if groups.is_empty() {
        return Ok(groups);
    }
    let ids: Vec<String> = groups.iter().map(|g| stamp::str_of(g, "id").to_string()).collect();
    let rules = core.store.list(&SECURITY_GROUP_RULES, &[("security_group_id", ids)]).await?;
    for g in groups.iter_mut() {
        let id = stamp::str_of(g, "id").to_string();
        let mine: Vec<Value> =
            rules.iter().filter(|r| stamp::str_of(r, "security_group_id") == id).cloned().map(Value::Object).collect();
        g.insert("security_group_rules".into(), Value::Array(mine));
    }
    Ok(groups)
}

#[async_trait]
impl ResourcePlugin for SecurityGroups {
    fn def(&self) -> &'static ResourceDef {
        &SECURITY_GROUP
    }

    async fn create(&self, _ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        let mut docs = vec![];
        for req in items {
            let project = crate::opt_str(&req, "project_id").unwrap_or_default();
            // Neutron's quota_limit_check: the rules a new group (and the
            // project's default group, made first) starts with must fit in
            // the security_group_rule limit.
            let rule_limit = core.quota_limit(&mut tx, &project, "security_group_rule").await?;
            let default_missing = default_group(&mut tx, &project).await?.is_none();
            let need = if default_missing { 4 } else { 2 };
            if !project.is_empty() && rule_limit >= 0 && rule_limit < need {
                return Err(Ml2Error::OverQuota("security_group_rule".into()).into());
            }
            ensure_default(core, &mut tx, &mut out, &project).await?;
            let mut sg = Map::new();
            for k in ["name", "description", "stateful"] {
                if let Some(v) = req.get(k) {
                    sg.insert(k.into(), v.clone());
                }
            }
            sg.insert("shared".into(), json!(false));
            stamp::created(&mut sg, &project, true, true);
            core.quota_take(&mut tx, &project, "security_group", 1).await?;
            docs.push(insert_group(&mut tx, &mut out, sg, false).await?);
        }
        core.commit(tx, out).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let g = self.0.store.get(&SECURITY_GROUPS, id).await.map_err(Ml2Error::from)?;
        let g = g
            .filter(|g| ctx.sees(g) || stamp::bool_of(g, "shared"))
            .ok_or_else(|| Ml2Error::SecurityGroupNotFound(id.into()))?;
        Ok(with_rules(&self.0, vec![g]).await?.remove(0))
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let core = &self.0;
        default_group_of_caller(core, ctx).await?;
        let conds =
            if ctx.is_admin() { vec![] } else { vec![Cond::Or(vec![crate::own(ctx), Cond::Flag("shared", true)])] };
        let groups = match crate::select(&core.store, self.def(), &SECURITY_GROUPS, spec, &conds).await? {
            Listing::Page(g) | Listing::Unfiltered(g) => g,
            Listing::Stream(s) => {
                use futures::TryStreamExt;
                s.try_collect().await?
            }
        };
        Ok(Listing::Page(with_rules(core, groups).await?))
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        default_group_of_caller(core, ctx).await?;
        let mut groups = core
            .store
            .list(&SECURITY_GROUPS, &crate::pushdown(&SECURITY_GROUPS, hint))
            .await
            .map_err(Ml2Error::from)?;
        groups.retain(|g| ctx.sees(g) || stamp::bool_of(g, "shared"));
        Ok(with_rules(core, groups).await?)
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
        let mut sg = tx
            .get(&SECURITY_GROUPS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SecurityGroupNotFound(id.into()))?;
        stamp::check_if_match(&sg, if_match)?;
        if stamp::str_of(&sg, "name") == "default" && changes.get("name").is_some_and(|n| n.as_str() != Some("default"))
        {
            return Err(Ml2Error::SecurityGroupCannotUpdateDefault.into());
        }
        if let Some(st) = changes.get("stateful") {
            if Some(st) != sg.get("stateful") {
                let ports = tx.list(&PORTS, &[]).await.map_err(Ml2Error::from)?;
                if ports.iter().any(|p| {
                    p.get("security_groups")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(id)))
                }) {
                    return Err(Ml2Error::SecurityGroupInUse { id: id.into(), reason: "in use".into() }.into());
                }
            }
        }
        for (k, v) in changes {
            sg.insert(k, v);
        }
        stamp::changed(&mut sg);
        tx.update(&SECURITY_GROUPS, &sg).await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        out.push("security_group", Action::Update, &sg);
        core.commit(tx, out).await?;
        Ok(with_rules(core, vec![sg]).await?.remove(0))
    }

    async fn delete(&self, ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let sg = tx
            .get(&SECURITY_GROUPS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SecurityGroupNotFound(id.into()))?;
        stamp::check_if_match(&sg, if_match)?;
        let project = stamp::str_of(&sg, "project_id").to_string();
        let is_default = default_group(&mut tx, &project).await?.as_deref() == Some(id);
        if is_default && !ctx.is_admin() {
            return Err(Ml2Error::SecurityGroupCannotRemoveDefault.into());
        }
        let ports = tx.list(&PORTS, &[]).await.map_err(Ml2Error::from)?;
        if ports.iter().any(|p| {
            p.get("security_groups").and_then(Value::as_array).is_some_and(|a| a.iter().any(|x| x.as_str() == Some(id)))
        }) {
            return Err(Ml2Error::SecurityGroupInUse { id: id.into(), reason: "in use".into() }.into());
        }
        let mut out = Outbox::default();
        let own = tx
            .list(&SECURITY_GROUP_RULES, &[("security_group_id", vec![id.to_string()])])
            .await
            .map_err(Ml2Error::from)?;
        let referring = tx
            .list(&SECURITY_GROUP_RULES, &[("remote_group_id", vec![id.to_string()])])
            .await
            .map_err(Ml2Error::from)?;
        for r in own.iter().chain(referring.iter()) {
            if tx.delete(&SECURITY_GROUP_RULES, stamp::str_of(r, "id")).await.map_err(Ml2Error::from)? {
                out.push("security_group_rule", Action::Delete, r);
            }
        }
        tx.delete(&SECURITY_GROUPS, id).await.map_err(Ml2Error::from)?;
        if is_default {
            tx.release_default_security_group(&project).await.map_err(Ml2Error::from)?;
        } else {
            core.quota_release(&mut tx, &project, "security_group", 1).await?;
        }
        out.push("security_group", Action::Delete, &sg);
        core.commit(tx, out).await?;
        Ok(())
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self
            .0
            .set_tags(&SECURITY_GROUPS, "security_group", || Ml2Error::SecurityGroupNotFound(id.into()), id, tags)
            .await?)
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[
            "security-group",
            "stateful-security-group",
            "security-groups-normalized-cidr",
            "security-groups-remote-address-group",
            "security-groups-rules-belongs-to-default-sg",
            "security-groups-shared-filtering",
        ]
    }
}

/// A protocol's name and number as strings (for comparisons).
fn proto_key(p: Option<&str>, ethertype: &str) -> Option<(String, String)> {
    let mut p = p?.to_string();
    if ethertype == "IPv6" {
        if p == "icmp" || p == "icmpv6" {
            p = "ipv6-icmp".into();
        } else if p == "1" {
            p = "58".into();
        }
    }
    if let Some((n, num)) = PROTOCOLS.iter().find(|(n, _)| *n == p) {
        let name = if *n == "icmpv6" { "ipv6-icmp" } else { n };
        return Some((name.to_string(), num.to_string()));
    }
    if let Some((n, _)) = PROTOCOLS.iter().find(|(n, num)| num.to_string() == p && *n != "hopopt" && *n != "icmpv6") {
        return Some((n.to_string(), p));
    }
    Some((p.clone(), p))
}

fn invalid_for(kind: &'static str, msg: String) -> Ml2Error {
    Ml2Error::Fault(Fault::new(400, kind, msg))
}

/// Validates and completes a rule request (Neutron's checks, in its order).
fn validate_rule(r: &mut Map) -> Result<()> {
    let ethertype = stamp::str_of(r, "ethertype").to_string();
    let remotes = ["remote_ip_prefix", "remote_group_id", "remote_address_group_id"]
        .iter()
        .filter(|k| r.get(**k).is_some_and(|v| !v.is_null()))
        .count();
    if remotes > 1 {
        return Err(invalid_for(
            "SecurityGroupMultipleRemoteEntites",
            "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.".into(),
        ));
    }
    let protocol = r.get("protocol").and_then(Value::as_str).map(String::from);
    // Legacy IPv6 ICMP names become ipv6-icmp.
    if ethertype == "IPv6" {
        if let Some(p) = &protocol {
            if p == "icmp" || p == "icmpv6" {
                r.insert("protocol".into(), json!("ipv6-icmp"));
            } else if p == "1" {
                r.insert("protocol".into(), json!("58"));
            }
        }
    }
    let protocol = r.get("protocol").and_then(Value::as_str).map(String::from);
    if let Some(p) = &protocol {
        let v6_only = [
            "ipv6-encap",
            "ipv6-frag",
            "ipv6-icmp",
            "icmpv6",
            "ipv6-nonxt",
            "ipv6-opts",
            "ipv6-route",
            "41",
            "44",
            "58",
            "59",
            "60",
            "43",
        ];
        if ethertype == "IPv4" && v6_only.contains(&p.as_str()) {
            return Err(invalid_for(
                "SecurityGroupEthertypeConflictWithProtocol",
                format!("Invalid ethertype {ethertype} for protocol {p}."),
            ));
        }
    }
    let min = r.get("port_range_min").and_then(Value::as_i64);
    let max = r.get("port_range_max").and_then(Value::as_i64);
    if min.is_some() || max.is_some() {
        let Some(p) = &protocol else {
            return Err(invalid_for(
                "SecurityGroupProtocolRequiredWithPorts",
                "Must also specify protocol if port range is given.".into(),
            ));
        };
        let key = proto_key(Some(p), &ethertype).unwrap_or_default();
        if PORT_PROTOCOLS.contains(&key.0.as_str()) || PORT_PROTOCOLS.contains(&key.1.as_str()) {
            if min == Some(0) || max == Some(0) {
                return Err(invalid_for("SecurityGroupInvalidPortValue", "Invalid value for port 0".into()));
            }
            match (min, max) {
                (Some(a), Some(b)) if a <= b => {}
                _ => {
                    return Err(invalid_for(
                        "SecurityGroupInvalidPortRange",
                        "For TCP/UDP protocols, port_range_min must be <= port_range_max".into(),
                    ))
                }
            }
            if min == Some(1) && max == Some(65535) {
                r.insert("port_range_min".into(), Value::Null);
                r.insert("port_range_max".into(), Value::Null);
            }
        } else if ICMP_PROTOCOLS.contains(&key.0.as_str()) || key.1 == "58" || key.1 == "1" || key.0 == "ipv6-icmp" {
            for (v, attr, field) in [(min, "port_range_min", "type"), (max, "port_range_max", "code")] {
                if let Some(v) = v {
                    if !(0..=255).contains(&v) {
                        return Err(invalid_for(
                            "SecurityGroupInvalidIcmpValue",
                            format!("Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."),
                        ));
                    }
                }
            }
            if min.is_none() && max.is_some() {
                return Err(invalid_for(
                    "SecurityGroupMissingIcmpType",
                    format!(
                        "ICMP code (port-range-max) {} is provided but ICMP type (port-range-min) is missing.",
                        max.unwrap_or(0)
                    ),
                ));
            }
        } else {
            return Err(invalid_for(
                "SecurityGroupInvalidProtocolForPort",
                format!("Ports cannot be specified for protocol {}. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.", key.1),
            ));
        }
    }
    if let Some(prefix) = r.get("remote_ip_prefix").and_then(Value::as_str).map(String::from) {
        let net: ipnet::IpNet = prefix
            .parse()
            .map_err(|_| invalid_for("InvalidCIDR", format!("Invalid CIDR {prefix} given as IP prefix.")))?;
        let v = if matches!(net, ipnet::IpNet::V4(_)) { "IPv4" } else { "IPv6" };
        if v != ethertype {
            return Err(invalid_for(
                "SecurityGroupRuleParameterConflict",
                format!("Conflicting value ethertype {ethertype} for CIDR {prefix}"),
            ));
        }
        r.insert("normalized_cidr".into(), json!(net.trunc().to_string()));
    } else {
        r.insert("normalized_cidr".into(), Value::Null);
    }
    Ok(())
}

/// The comparison key of a rule (duplicates are refused).
fn rule_key(r: &Map) -> String {
    let et = stamp::str_of(r, "ethertype");
    let s = |k: &str| match r.get(k) {
        None | Some(Value::Null) => "+".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let prefix = match r.get("remote_ip_prefix").and_then(Value::as_str) {
        None | Some("0.0.0.0/0") | Some("::/0") => "+".to_string(),
        Some(p) => p.parse::<ipnet::IpNet>().map(|n| n.trunc().to_string()).unwrap_or_else(|_| p.to_string()),
    };
    let proto = match proto_key(r.get("protocol").and_then(Value::as_str), et) {
        None => "+".to_string(),
        Some((_, num)) => num,
    };
    [
        s("direction"),
        et.to_string(),
        s("port_range_max"),
        s("port_range_min"),
        proto,
        s("remote_group_id"),
        s("remote_address_group_id"),
        prefix,
        s("security_group_id"),
    ]
    .join("_")
}

#[async_trait]
impl ResourcePlugin for SecurityGroupRules {
    fn def(&self) -> &'static ResourceDef {
        &SECURITY_GROUP_RULE
    }

    async fn create(&self, ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        let mut docs: Vec<Map> = vec![];
        for mut r in items {
            let sg_id = stamp::str_of(&r, "security_group_id").to_string();
            let sg = tx
                .get(&SECURITY_GROUPS, &sg_id)
                .await
                .map_err(Ml2Error::from)?
                .ok_or_else(|| Ml2Error::SecurityGroupNotFound(sg_id.clone()))?;
            let project = crate::opt_str(&r, "project_id").unwrap_or_default();
            if !ctx.is_admin() && stamp::str_of(&sg, "project_id") != project {
                return Err(Ml2Error::SecurityGroupNotFound(sg_id).into());
            }
            if let Some(rg) = r.get("remote_group_id").and_then(Value::as_str).map(String::from) {
                if tx.peek(&SECURITY_GROUPS, &rg).await.map_err(Ml2Error::from)?.is_none() {
                    return Err(Ml2Error::SecurityGroupNotFound(rg).into());
                }
            }
            if let Some(ag) = r.get("remote_address_group_id").and_then(Value::as_str).map(String::from) {
                return Err(Fault::not_found(
                    "AddressGroupNotFound",
                    format!("Address group {ag} could not be found."),
                ));
            }
            validate_rule(&mut r)?;
            let key = rule_key(&r);
            if docs.iter().any(|d| rule_key(d) == key) {
                return Err(Fault::new(
                    400,
                    "DuplicateSecurityGroupRuleInPost",
                    "Duplicate Security Group Rule in POST.",
                ));
            }
            let existing = tx
                .list(&SECURITY_GROUP_RULES, &[("security_group_id", vec![sg_id.clone()])])
                .await
                .map_err(Ml2Error::from)?;
            if let Some(d) = existing.iter().find(|e| rule_key(e) == key) {
                return Err(Ml2Error::SecurityGroupRuleExists(stamp::str_of(d, "id").to_string()).into());
            }
            let is_default =
                default_group(&mut tx, stamp::str_of(&sg, "project_id")).await?.as_deref() == Some(sg_id.as_str());
            r.insert("belongs_to_default_sg".into(), json!(is_default));
            r.entry("description").or_insert(json!(""));
            stamp::created(&mut r, &project, true, false);
            core.quota_take(&mut tx, &project, "security_group_rule", 1).await?;
            tx.insert(&SECURITY_GROUP_RULES, &r).await.map_err(Ml2Error::from)?;
            let mut sgm = sg.clone();
            stamp::changed(&mut sgm);
            tx.update(&SECURITY_GROUPS, &sgm).await.map_err(Ml2Error::from)?;
            out.push("security_group_rule", Action::Create, &r);
            docs.push(r);
        }
        core.commit(tx, out).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let r = self
            .0
            .store
            .get(&SECURITY_GROUP_RULES, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SecurityGroupRuleNotFound(id.into()))?;
        if !ctx.sees(&r) {
            let sg = self
                .0
                .store
                .get(&SECURITY_GROUPS, stamp::str_of(&r, "security_group_id"))
                .await
                .map_err(Ml2Error::from)?;
            if !sg.is_some_and(|g| ctx.sees(&g)) {
                return Err(Ml2Error::SecurityGroupRuleNotFound(id.into()).into());
            }
        }
        Ok(r)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let conds = if ctx.is_admin() {
            vec![]
        } else {
            vec![Cond::Or(vec![
                crate::own(ctx),
                Cond::InTable {
                    col: "security_group_id",
                    table: &SECURITY_GROUPS,
                    key: "id",
                    cond: Box::new(crate::own(ctx)),
                },
            ])]
        };
        crate::select(&self.0.store, self.def(), &SECURITY_GROUP_RULES, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut rules = self
            .0
            .store
            .list(&SECURITY_GROUP_RULES, &crate::pushdown(&SECURITY_GROUP_RULES, hint))
            .await
            .map_err(Ml2Error::from)?;
        if !ctx.is_admin() {
            let own: std::collections::HashSet<String> = match &ctx.project_id {
                Some(p) => self
                    .0
                    .store
                    .list(&SECURITY_GROUPS, &[("project_id", vec![p.clone()])])
                    .await
                    .map_err(Ml2Error::from)?
                    .iter()
                    .map(|g| stamp::str_of(g, "id").to_string())
                    .collect(),
                None => Default::default(),
            };
            rules.retain(|r| ctx.sees(r) || own.contains(stamp::str_of(r, "security_group_id")));
        }
        Ok(rules)
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
        let mut r = tx
            .get(&SECURITY_GROUP_RULES, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SecurityGroupRuleNotFound(id.into()))?;
        stamp::check_if_match(&r, if_match)?;
        for (k, v) in changes {
            r.insert(k, v);
        }
        stamp::changed(&mut r);
        tx.update(&SECURITY_GROUP_RULES, &r).await.map_err(Ml2Error::from)?;
        core.commit(tx, Outbox::default()).await?;
        Ok(r)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let r = tx
            .get(&SECURITY_GROUP_RULES, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SecurityGroupRuleNotFound(id.into()))?;
        stamp::check_if_match(&r, if_match)?;
        tx.delete(&SECURITY_GROUP_RULES, id).await.map_err(Ml2Error::from)?;
        if let Some(mut sg) =
            tx.get(&SECURITY_GROUPS, stamp::str_of(&r, "security_group_id")).await.map_err(Ml2Error::from)?
        {
            stamp::changed(&mut sg);
            tx.update(&SECURITY_GROUPS, &sg).await.map_err(Ml2Error::from)?;
        }
        core.quota_release(&mut tx, stamp::str_of(&r, "project_id"), "security_group_rule", 1).await?;
        let mut out = Outbox::default();
        out.push("security_group_rule", Action::Delete, &r);
        core.commit(tx, out).await?;
        Ok(())
    }
}

/// Neutron creates a project's default group the first time the project
/// lists its groups.
async fn default_group_of_caller(core: &Core, ctx: &Context) -> Result<()> {
    if let Some(p) = &ctx.project_id {
        let mut tx = core.store.begin().await?;
        if default_group(&mut tx, p).await?.is_none() {
            let mut out = Outbox::default();
            ensure_default(core, &mut tx, &mut out, p).await?;
            core.commit(tx, out).await?;
        }
    }
    Ok(())
}
