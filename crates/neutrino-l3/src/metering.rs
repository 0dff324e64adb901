//! Metering labels and rules (the metering service plugin's API; counting
//! traffic is a metering agent's job, which neutrino does not run).

use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use neutrino_lib::defs::metering::{METERING_LABEL, METERING_LABEL_RULE};
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_ml2::notify::Outbox;
use neutrino_ml2::Core;
use neutrino_store::schema::{METERING_LABELS, METERING_LABEL_RULES};
use neutrino_store::Cond;
use serde_json::{json, Value};

use crate::error::L3Error;
use crate::s;

/// Metering labels.
pub struct MeteringLabels(pub Arc<Core>);
/// Metering label rules.
pub struct MeteringLabelRules(pub Arc<Core>);

fn label_missing(id: &str) -> Fault {
    Fault::not_found("MeteringLabelNotFound", format!("Metering label {id} does not exist"))
}

fn rule_missing(id: &str) -> Fault {
    Fault::not_found("MeteringLabelRuleNotFound", format!("Metering label rule {id} does not exist"))
}

fn no_update() -> Fault {
    Fault::new(405, "HTTPMethodNotAllowed", "Metering resources cannot be updated.")
}

#[async_trait]
impl ResourcePlugin for MeteringLabels {
    fn def(&self) -> &'static ResourceDef {
        &METERING_LABEL
    }

    async fn create(&self, _ctx: &Context, items: Vec<Map>) -> Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut out = vec![];
        for req in items {
            let mut doc = Map::new();
            for k in ["name", "description", "shared"] {
                doc.insert(k.into(), req.get(k).cloned().unwrap_or(Value::Null));
            }
            stamp::created(&mut doc, s(&req, "project_id"), false, false);
            tx.insert(&METERING_LABELS, &doc).await.map_err(L3Error::from)?;
            out.push(doc);
        }
        core.commit(tx, Outbox::default()).await.map_err(L3Error::from)?;
        Ok(out)
    }

    async fn get(&self, ctx: &Context, id: &str) -> Result<Map, Fault> {
        let d = self.0.store.get(&METERING_LABELS, id).await.map_err(L3Error::from)?;
        d.filter(|d| ctx.sees(d) || stamp::bool_of(d, "shared")).ok_or_else(|| label_missing(id))
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> Result<Listing, Fault> {
        let conds = if ctx.is_admin() {
            vec![]
        } else {
            vec![Cond::Or(vec![neutrino_ml2::own(ctx), Cond::Flag("shared", true)])]
        };
        neutrino_ml2::select(&self.0.store, self.def(), &METERING_LABELS, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        h.projects = None;
        let mut all = self
            .0
            .store
            .list(&METERING_LABELS, &neutrino_ml2::pushdown(&METERING_LABELS, &h))
            .await
            .map_err(L3Error::from)?;
        all.retain(|d| ctx.sees(d) || stamp::bool_of(d, "shared"));
        Ok(all)
    }

    async fn update(&self, _ctx: &Context, _id: &str, _c: Map, _m: Option<i64>) -> Result<Map, Fault> {
        Err(no_update())
    }

    async fn delete(&self, _ctx: &Context, id: &str, _m: Option<i64>) -> Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        if !tx.delete(&METERING_LABELS, id).await.map_err(L3Error::from)? {
            return Err(label_missing(id));
        }
        for r in tx
            .list(&METERING_LABEL_RULES, &[("metering_label_id", vec![id.to_string()])])
            .await
            .map_err(L3Error::from)?
        {
            tx.delete(&METERING_LABEL_RULES, s(&r, "id")).await.map_err(L3Error::from)?;
        }
        core.commit(tx, Outbox::default()).await.map_err(L3Error::from)?;
        Ok(())
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["metering", "metering_source_and_destination_fields"]
    }
}

fn overlaps(a: Option<&str>, b: Option<&str>) -> bool {
    match (a.and_then(|x| x.parse::<IpNet>().ok()), b.and_then(|x| x.parse::<IpNet>().ok())) {
        (Some(x), Some(y)) => neutrino_ipam::addr::overlaps(&x, &y),
        (None, None) => true,
        _ => false,
    }
}

#[async_trait]
impl ResourcePlugin for MeteringLabelRules {
    fn def(&self) -> &'static ResourceDef {
        &METERING_LABEL_RULE
    }

    async fn create(&self, ctx: &Context, items: Vec<Map>) -> Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        let mut out = vec![];
        for req in items {
            let label = s(&req, "metering_label_id").to_string();
            let l = tx.get(&METERING_LABELS, &label).await.map_err(L3Error::from)?;
            let l = l.filter(|l| ctx.sees(l) || stamp::bool_of(l, "shared")).ok_or_else(|| label_missing(&label))?;
            let remote = req.get("remote_ip_prefix").and_then(Value::as_str);
            let src = req.get("source_ip_prefix").and_then(Value::as_str);
            let dst = req.get("destination_ip_prefix").and_then(Value::as_str);
            if remote.is_some() && (src.is_some() || dst.is_some()) {
                return Err(Fault::bad_request(
                    "Cannot use 'remote-ip-prefix' in conjunction with 'source-ip-prefix' or 'destination-ip-prefix'.",
                ));
            }
            if remote.is_none() && src.is_none() && dst.is_none() {
                return Err(Fault::bad_request(
                    "You must define at least one of the following parameters 'remote_ip_prefix', or 'source_ip_prefix' or 'destination_ip_prefix'.",
                ));
            }
            let direction = s(&req, "direction").to_string();
            let excluded = stamp::bool_of(&req, "excluded");
            for e in tx
                .list(&METERING_LABEL_RULES, &[("metering_label_id", vec![label.clone()])])
                .await
                .map_err(L3Error::from)?
            {
                let same_kind = s(&e, "direction") == direction && stamp::bool_of(&e, "excluded") == excluded;
                let g = |k: &str| e.get(k).and_then(Value::as_str);
                if same_kind
                    && remote.is_some()
                    && g("remote_ip_prefix").is_some()
                    && overlaps(remote, g("remote_ip_prefix"))
                {
                    return Err(Fault::conflict(
                        "MeteringLabelRuleOverlaps",
                        format!("Metering label rule with remote_ip_prefix {} overlaps another.", remote.unwrap_or("")),
                    ));
                }
            }
            let mut doc = Map::new();
            doc.insert("metering_label_id".into(), json!(label));
            doc.insert("direction".into(), json!(direction));
            doc.insert("excluded".into(), json!(excluded));
            for k in ["remote_ip_prefix", "source_ip_prefix", "destination_ip_prefix"] {
                doc.insert(k.into(), req.get(k).cloned().unwrap_or(Value::Null));
            }
            stamp::created(&mut doc, s(&l, "project_id"), false, false);
            tx.insert(&METERING_LABEL_RULES, &doc).await.map_err(L3Error::from)?;
            out.push(doc);
        }
        core.commit(tx, Outbox::default()).await.map_err(L3Error::from)?;
        Ok(out)
    }

    async fn get(&self, ctx: &Context, id: &str) -> Result<Map, Fault> {
        let d = self.0.store.get(&METERING_LABEL_RULES, id).await.map_err(L3Error::from)?;
        d.filter(|d| ctx.sees(d)).ok_or_else(|| rule_missing(id))
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> Result<Listing, Fault> {
        let conds = if ctx.is_admin() { vec![] } else { vec![neutrino_ml2::own(ctx)] };
        neutrino_ml2::select(&self.0.store, self.def(), &METERING_LABEL_RULES, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> Result<Vec<Map>, Fault> {
        let mut all = self
            .0
            .store
            .list(&METERING_LABEL_RULES, &neutrino_ml2::pushdown(&METERING_LABEL_RULES, hint))
            .await
            .map_err(L3Error::from)?;
        all.retain(|d| ctx.sees(d));
        Ok(all)
    }

    async fn update(&self, _ctx: &Context, _id: &str, _c: Map, _m: Option<i64>) -> Result<Map, Fault> {
        Err(no_update())
    }

    async fn delete(&self, _ctx: &Context, id: &str, _m: Option<i64>) -> Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(L3Error::from)?;
        if !tx.delete(&METERING_LABEL_RULES, id).await.map_err(L3Error::from)? {
            return Err(rule_missing(id));
        }
        core.commit(tx, Outbox::default()).await.map_err(L3Error::from)?;
        Ok(())
    }
}
