//! Quotas: per-project limits over the defaults, with usage details.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use neutrino_lib::defs::quota::QUOTA;
use neutrino_lib::plugin::{ListHint, ResourcePlugin, SubResponse};
use neutrino_lib::resource::ResourceDef;
use neutrino_lib::{Context, Fault, Map};
use serde_json::{json, Value};

use crate::error::Ml2Error;
use crate::Core;

/// The quotas collection (members are addressed by project id).
pub struct Quotas(pub Arc<Core>);

impl Quotas {
    /// What a project uses, counted from the resources themselves.
    async fn usage(&self, project: &str) -> Result<BTreeMap<String, i64>, Fault> {
        let mut out = BTreeMap::new();
        for (r, _) in neutrino_lib::defs::quota::DEFAULTS {
            if let Some(t) = Core::quota_table(r) {
                let n = self
                    .0
                    .store
                    .count(t, &[("project_id", vec![project.to_string()])])
                    .await
                    .map_err(Ml2Error::from)?;
                out.insert(r.to_string(), n);
            }
        }
        Ok(out)
    }

    async fn limits(&self, project: &str) -> Result<BTreeMap<String, i64>, Fault> {
        let mut out = self.0.cfg.quota_defaults.clone();
        for (r, l) in self.0.store.quota_limits(project).await.map_err(Ml2Error::from)? {
            out.insert(r, l);
        }
        Ok(out)
    }

    async fn show(&self, project: &str) -> Result<Map, Fault> {
        let mut m = Map::new();
        for (r, l) in self.limits(project).await? {
            m.insert(r, json!(l));
        }
        m.insert("project_id".into(), json!(project));
        m.insert("tenant_id".into(), json!(project));
        Ok(m)
    }
}

#[async_trait]
impl ResourcePlugin for Quotas {
    fn def(&self) -> &'static ResourceDef {
        &QUOTA
    }

    async fn create(&self, _ctx: &Context, _items: Vec<Map>) -> Result<Vec<Map>, Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "The method POST is not allowed for quotas."))
    }

    async fn get(&self, ctx: &Context, id: &str) -> Result<Map, Fault> {
        if !ctx.is_admin() && ctx.project_id.as_deref() != Some(id) {
            return Err(Fault::policy("get_quota"));
        }
        self.show(id).await
    }

    async fn list(&self, ctx: &Context, _hint: &ListHint) -> Result<Vec<Map>, Fault> {
        if !ctx.is_admin() {
            return Err(Fault::policy("get_quota"));
        }
        let mut out = vec![];
        for p in self.0.store.quota_projects().await.map_err(Ml2Error::from)? {
            out.push(self.show(&p).await?);
        }
        Ok(out)
    }

    async fn update(&self, _ctx: &Context, id: &str, changes: Map, _if_match: Option<i64>) -> Result<Map, Fault> {
        let core = &self.0;
        let check = changes.get("check_limit").and_then(Value::as_bool).unwrap_or(true)
            && !changes.get("force").and_then(Value::as_bool).unwrap_or(false);
        let usage: BTreeMap<String, i64> =
            core.store.quota_usages(id).await.map_err(Ml2Error::from)?.into_iter().collect();
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        for (k, v) in &changes {
            if k == "check_limit" || k == "force" || k == "project_id" || k == "tenant_id" {
                continue;
            }
            let limit = v.as_i64().unwrap_or(-1);
            let used = usage.get(k).copied().unwrap_or(0);
            if check && limit >= 0 && limit < used {
                return Err(Fault::new(
                    400,
                    "InvalidQuotaValue",
                    format!("Change would make usage less than 0 for the following resources: {k}"),
                ));
            }
            tx.quota_set(id, k, limit).await.map_err(Ml2Error::from)?;
            if let Some(t) = Core::quota_table(k) {
                // Counters are only kept under finite limits: recount now.
                let n = tx.count(t, &[("project_id", vec![id.to_string()])]).await.map_err(Ml2Error::from)?;
                tx.usage_set(id, k, n).await.map_err(Ml2Error::from)?;
            }
        }
        tx.commit().await.map_err(Ml2Error::from)?;
        self.show(id).await
    }

    async fn delete(&self, _ctx: &Context, id: &str, _if_match: Option<i64>) -> Result<(), Fault> {
        let usage = self.usage(id).await?;
        let mut tx = self.0.store.begin().await.map_err(Ml2Error::from)?;
        tx.quota_reset(id).await.map_err(Ml2Error::from)?;
        for (r, n) in usage {
            tx.usage_set(id, &r, n).await.map_err(Ml2Error::from)?;
        }
        tx.commit().await.map_err(Ml2Error::from)?;
        Ok(())
    }

    async fn sub_request(
        &self,
        ctx: &Context,
        method: &str,
        id: &str,
        rest: &[&str],
        _body: Option<Value>,
    ) -> Result<SubResponse, Fault> {
        if !ctx.is_admin() && ctx.project_id.as_deref() != Some(id) {
            return Err(Fault::policy("get_quota"));
        }
        match (method, rest) {
            ("GET", ["details"]) => {
                let usage: BTreeMap<String, i64> =
                    self.0.store.quota_usages(id).await.map_err(Ml2Error::from)?.into_iter().collect();
                let mut m = Map::new();
                for (r, l) in self.limits(id).await? {
                    let used = usage.get(&r).copied().unwrap_or(0);
                    m.insert(r, json!({"limit": l, "used": used, "reserved": 0}));
                }
                Ok((200, Some(json!({"quota": m}))))
            }
            ("GET", ["default"]) => {
                let mut m = Map::new();
                for (r, l) in &self.0.cfg.quota_defaults {
                    m.insert(r.clone(), json!(l));
                }
                m.insert("project_id".into(), json!(id));
                m.insert("tenant_id".into(), json!(id));
                Ok((200, Some(json!({"quota": m}))))
            }
            _ => Err(Fault::no_such_path()),
        }
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["quotas", "quota_details", "quota-check-limit", "quota-check-limit-default"]
    }
}
