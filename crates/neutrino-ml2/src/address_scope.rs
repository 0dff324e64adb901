//! Address scopes.

use std::sync::Arc;

use async_trait::async_trait;
use neutrino_lib::defs::address_scope::ADDRESS_SCOPE;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{ADDRESS_SCOPES, SUBNETPOOLS};
use neutrino_store::Cond;

use crate::error::Ml2Error;
use crate::notify::Outbox;
use crate::Core;

/// The address scopes collection.
pub struct AddressScopes(pub Arc<Core>);

#[async_trait]
impl ResourcePlugin for AddressScopes {
    fn def(&self) -> &'static ResourceDef {
        &ADDRESS_SCOPE
    }

    async fn create(&self, _ctx: &Context, items: Vec<Map>) -> Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut docs = vec![];
        for req in items {
            let project = crate::opt_str(&req, "project_id").unwrap_or_default();
            let mut doc = Map::new();
            for k in ["name", "shared", "ip_version", "description"] {
                if let Some(v) = req.get(k) {
                    doc.insert(k.into(), v.clone());
                }
            }
            stamp::created(&mut doc, &project, true, false);
            tx.insert(&ADDRESS_SCOPES, &doc).await.map_err(Ml2Error::from)?;
            docs.push(doc);
        }
        core.commit(tx, Outbox::default()).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> Result<Map, Fault> {
        let d = self.0.store.get(&ADDRESS_SCOPES, id).await.map_err(Ml2Error::from)?;
        Ok(d.filter(|d| ctx.sees(d) || stamp::bool_of(d, "shared"))
            .ok_or_else(|| Ml2Error::AddressScopeNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let conds =
            if ctx.is_admin() { vec![] } else { vec![Cond::Or(vec![crate::own(ctx), Cond::Flag("shared", true)])] };
        crate::select(&self.0.store, self.def(), &ADDRESS_SCOPES, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        h.projects = None;
        let mut all =
            self.0.store.list(&ADDRESS_SCOPES, &crate::pushdown(&ADDRESS_SCOPES, &h)).await.map_err(Ml2Error::from)?;
        all.retain(|d| ctx.sees(d) || stamp::bool_of(d, "shared"));
        Ok(all)
    }

    async fn update(&self, _ctx: &Context, id: &str, changes: Map, if_match: Option<i64>) -> Result<Map, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut doc = tx
            .get(&ADDRESS_SCOPES, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::AddressScopeNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        for (k, v) in changes {
            doc.insert(k, v);
        }
        stamp::changed(&mut doc);
        tx.update(&ADDRESS_SCOPES, &doc).await.map_err(Ml2Error::from)?;
        core.commit(tx, Outbox::default()).await?;
        Ok(doc)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let doc = tx
            .get(&ADDRESS_SCOPES, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::AddressScopeNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        if !tx
            .list(&SUBNETPOOLS, &[("address_scope_id", vec![id.to_string()])])
            .await
            .map_err(Ml2Error::from)?
            .is_empty()
        {
            return Err(Fault::conflict("AddressScopeInUse", format!("Unable to complete operation on address scope {id}. There are one or more subnet pools in use on the address scope.")));
        }
        tx.delete(&ADDRESS_SCOPES, id).await.map_err(Ml2Error::from)?;
        core.commit(tx, Outbox::default()).await?;
        Ok(())
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["address-scope"]
    }
}
