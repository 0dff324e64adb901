//! The segments API: a network's segments as resources (admin), for
//! multi-segment and routed provider networks.

use std::sync::Arc;

use async_trait::async_trait;
use neutrino_lib::defs::segment::SEGMENT;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{NETWORKS, PORTS, SEGMENTS, SUBNETS};
use serde_json::{json, Value};

use crate::error::{Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::types::SegmentSpec;
use crate::{segments, Core};

/// The segments collection.
pub struct Segments(pub Arc<Core>);

impl Segments {
    /// Rewrites the provider view of a network after its segments changed.
    async fn refresh_network(&self, tx: &mut neutrino_store::Tx, out: &mut Outbox, net_id: &str) -> Result<()> {
        let segs: Vec<_> = segments::of_network(tx, net_id).await?.iter().map(segments::as_segment).collect();
        if let Some(mut n) = tx.get(&NETWORKS, net_id).await? {
            if segs.is_empty() {
                for k in ["provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments"]
                {
                    n.insert(k.into(), Value::Null);
                }
            } else {
                crate::network::show_segments(&mut n, &segs);
            }
            let mtu = segs.iter().map(|s| self.0.types.mtu(s)).min().unwrap_or(self.0.cfg.global_physnet_mtu);
            if n.get("mtu").and_then(Value::as_i64).is_none_or(|m| m as u32 > mtu) {
                n.insert("mtu".into(), json!(mtu));
            }
            stamp::changed(&mut n);
            tx.update(&NETWORKS, &n).await?;
            out.push("network", Action::Update, &n);
        }
        Ok(())
    }
}

#[async_trait]
impl ResourcePlugin for Segments {
    fn def(&self) -> &'static ResourceDef {
        &SEGMENT
    }

    async fn create(&self, _ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        let mut docs = vec![];
        for req in items {
            let net_id = stamp::str_of(&req, "network_id").to_string();
            let net = tx
                .get(&NETWORKS, &net_id)
                .await
                .map_err(Ml2Error::from)?
                .ok_or_else(|| Ml2Error::NetworkNotFound(net_id.clone()))?;
            let spec = SegmentSpec {
                network_type: req.get("network_type").and_then(Value::as_str).map(String::from),
                physical_network: req.get("physical_network").and_then(Value::as_str).map(String::from),
                segmentation_id: req.get("segmentation_id").and_then(Value::as_i64),
            };
            let seg = core.types.reserve_provider(&mut tx, &spec, &net_id).await?;
            let index = segments::of_network(&mut tx, &net_id).await?.len();
            let mut doc = json!({
                "network_id": net_id,
                "network_type": seg.network_type,
                "physical_network": seg.physical_network,
                "segmentation_id": seg.segmentation_id,
                "name": req.get("name").cloned().unwrap_or(Value::Null),
                "description": req.get("description").cloned().unwrap_or(json!("")),
                "segment_index": index,
            })
            .as_object()
            .cloned()
            .unwrap_or_default();
            stamp::created(&mut doc, stamp::str_of(&net, "project_id"), true, false);
            tx.insert(&SEGMENTS, &doc).await.map_err(Ml2Error::from)?;
            self.refresh_network(&mut tx, &mut out, &net_id).await?;
            out.push("segment", Action::Create, &doc);
            docs.push(doc);
        }
        core.commit(tx, out).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let s = self.0.store.get(&SEGMENTS, id).await.map_err(Ml2Error::from)?;
        Ok(s.filter(|_| ctx.is_admin()).ok_or_else(|| Ml2Error::SegmentNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        if !ctx.is_admin() {
            return Ok(Listing::Page(vec![]));
        }
        let conds = vec![];
        crate::select(&self.0.store, self.def(), &SEGMENTS, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        if !ctx.is_admin() {
            return Ok(vec![]);
        }
        let mut h = hint.clone();
        h.projects = None;
        Ok(self.0.store.list(&SEGMENTS, &crate::pushdown(&SEGMENTS, &h)).await.map_err(Ml2Error::from)?)
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
        let mut s =
            tx.get(&SEGMENTS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::SegmentNotFound(id.into()))?;
        stamp::check_if_match(&s, if_match)?;
        for (k, v) in changes {
            s.insert(k, v);
        }
        stamp::changed(&mut s);
        tx.update(&SEGMENTS, &s).await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        out.push("segment", Action::Update, &s);
        core.commit(tx, out).await?;
        Ok(s)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let s =
            tx.get(&SEGMENTS, id).await.map_err(Ml2Error::from)?.ok_or_else(|| Ml2Error::SegmentNotFound(id.into()))?;
        stamp::check_if_match(&s, if_match)?;
        let net_id = stamp::str_of(&s, "network_id").to_string();
        if !tx.list(&SUBNETS, &[("segment_id", vec![id.to_string()])]).await.map_err(Ml2Error::from)?.is_empty() {
            return Err(Fault::conflict(
                "SegmentInUse",
                format!("Segment '{id}' cannot be deleted: one or more subnets use it."),
            ));
        }
        let bound = tx
            .list(&PORTS, &[("network_id", vec![net_id.clone()])])
            .await
            .map_err(Ml2Error::from)?
            .iter()
            .any(|p| p.get("_segment").and_then(|x| x.get("id")).and_then(Value::as_str) == Some(id));
        if bound {
            return Err(Fault::conflict(
                "SegmentInUse",
                format!("Segment '{id}' cannot be deleted: ports are bound to it."),
            ));
        }
        core.types.release(&mut tx, &segments::as_segment(&s)).await?;
        tx.delete(&SEGMENTS, id).await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        self.refresh_network(&mut tx, &mut out, &net_id).await?;
        out.push("segment", Action::Delete, &s);
        core.commit(tx, out).await?;
        Ok(())
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["segment", "standard-attr-segment", "subnet-segmentid-writable"]
    }
}
