//! Subnet pools (subnet_allocation) and their prefix operations.

use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use neutrino_ipam::addr::{bounds, version};
use neutrino_lib::defs::subnetpool::SUBNETPOOL;
use neutrino_lib::listing::ListSpec;
use neutrino_lib::plugin::{ListHint, Listing, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::{ADDRESS_SCOPES, SUBNETPOOLS, SUBNETS};
use neutrino_store::{Cond, Tx};
use serde_json::{json, Value};

use crate::error::{invalid, Ml2Error, Result};
use crate::notify::Outbox;
use crate::Core;

/// The subnet pools collection.
pub struct SubnetPools(pub Arc<Core>);

fn prefixes_of(v: &Value) -> Vec<IpNet> {
    v.as_array().into_iter().flatten().filter_map(|p| p.as_str()?.parse().ok()).collect()
}

/// Merges prefixes into the smallest equivalent list of CIDRs.
fn compact(prefixes: &[IpNet]) -> Vec<IpNet> {
    IpNet::aggregate(&prefixes.to_vec())
}

fn to_json(prefixes: &[IpNet]) -> Value {
    Value::Array(prefixes.iter().map(|p| json!(p.to_string())).collect())
}

fn covers(outer: &[IpNet], inner: &IpNet) -> bool {
    let (a, b) = bounds(inner);
    outer.iter().any(|o| {
        let (x, y) = bounds(o);
        version(o) == version(inner) && x <= a && b <= y
    })
}

impl SubnetPools {
    /// Neutron's `_validate_address_scope_id`: the caller must see the
    /// scope (its own, a shared one, or any as admin), of the pool's IP
    /// version, and no other pool in the scope may overlap these prefixes.
    async fn check_scope(
        &self,
        ctx: &Context,
        tx: &mut Tx,
        scope: Option<&str>,
        pool: &str,
        prefixes: &[IpNet],
        ipv: u8,
    ) -> Result<()> {
        let Some(s) = scope else {
            return Ok(());
        };
        let sc = tx
            .peek(&ADDRESS_SCOPES, s)
            .await?
            .filter(|sc| ctx.is_admin() || ctx.sees(sc) || stamp::bool_of(sc, "shared"))
            .ok_or_else(|| Ml2Error::AddressScopeNotFound(s.into()))?;
        let as_ipv = sc.get("ip_version").and_then(Value::as_i64).unwrap_or(0);
        if as_ipv != ipv as i64 {
            return Err(Ml2Error::Fault(Fault::new(
                400,
                "IllegalSubnetPoolIpVersionAssociationToAddressScope",
                format!("Illegal subnetpool association: subnetpool {pool} cannot associate with address scope {s} because subnetpool ip_version is not {as_ipv}."),
            )));
        }
        for other in tx.list(&SUBNETPOOLS, &[("address_scope_id", vec![s.to_string()])]).await? {
            if stamp::str_of(&other, "id") == pool {
                continue;
            }
            let theirs = prefixes_of(other.get("prefixes").unwrap_or(&Value::Null));
            if theirs.iter().any(|t| prefixes.iter().any(|p| neutrino_ipam::addr::overlaps(t, p))) {
                return Err(Ml2Error::Fault(Fault::conflict(
                    "AddressScopePrefixConflict",
                    "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.",
                )));
            }
        }
        Ok(())
    }

    fn check_lengths(doc: &Map) -> Result<()> {
        let g = |k: &str| doc.get(k).and_then(Value::as_i64).unwrap_or(0);
        let (min, dflt, max) = (g("min_prefixlen"), g("default_prefixlen"), g("max_prefixlen"));
        let limit = if g("ip_version") == 4 { 32 } else { 128 };
        if max > limit || min > max || dflt < min || dflt > max {
            return Err(Ml2Error::Fault(Fault::new(
                400,
                "IllegalSubnetPoolPrefixBounds",
                format!("Illegal prefix bounds: min_prefixlen={min}, default_prefixlen={dflt}, max_prefixlen={max}."),
            )));
        }
        Ok(())
    }

    async fn check_single_default(tx: &mut Tx, doc: &Map) -> Result<()> {
        if !stamp::bool_of(doc, "is_default") {
            return Ok(());
        }
        for p in tx.list(&SUBNETPOOLS, &[]).await? {
            if stamp::bool_of(&p, "is_default")
                && p.get("ip_version") == doc.get("ip_version")
                && stamp::str_of(&p, "id") != stamp::str_of(doc, "id")
            {
                return Err(Ml2Error::Fault(Fault::new(
                    400,
                    "InvalidInput",
                    "Invalid input for operation: A default subnetpool for this IP family has already been set. Only one default may exist per IP family.".to_string(),
                )));
            }
        }
        Ok(())
    }

    async fn used_prefixes(tx: &mut Tx, pool: &str) -> Result<Vec<IpNet>> {
        Ok(tx
            .list(&SUBNETS, &[("subnetpool_id", vec![pool.to_string()])])
            .await?
            .iter()
            .filter_map(|s| stamp::str_of(s, "cidr").parse().ok())
            .collect())
    }
}

#[async_trait]
impl ResourcePlugin for SubnetPools {
    fn def(&self) -> &'static ResourceDef {
        &SUBNETPOOL
    }

    async fn create(&self, ctx: &Context, items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut docs = vec![];
        for req in items {
            let prefixes = prefixes_of(req.get("prefixes").unwrap_or(&Value::Null));
            let ipv = prefixes.first().map(version).unwrap_or(4);
            if prefixes.iter().any(|p| version(p) != ipv) {
                return Err(Fault::new(
                    400,
                    "PrefixVersionMismatch",
                    "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                ));
            }
            let project = crate::opt_str(&req, "project_id").unwrap_or_default();
            let mut doc = Map::new();
            for k in ["name", "description", "shared", "is_default", "default_quota"] {
                if let Some(v) = req.get(k) {
                    doc.insert(k.into(), v.clone());
                }
            }
            let min_default = if ipv == 4 { 8 } else { 64 };
            let max_default = if ipv == 4 { 32 } else { 128 };
            let min = req.get("min_prefixlen").and_then(Value::as_i64).unwrap_or(min_default);
            doc.insert("ip_version".into(), json!(ipv));
            doc.insert("min_prefixlen".into(), json!(min));
            doc.insert(
                "max_prefixlen".into(),
                json!(req.get("max_prefixlen").and_then(Value::as_i64).unwrap_or(max_default)),
            );
            doc.insert(
                "default_prefixlen".into(),
                json!(req.get("default_prefixlen").and_then(Value::as_i64).unwrap_or(min)),
            );
            doc.insert("prefixes".into(), to_json(&compact(&prefixes)));
            doc.entry("default_quota").or_insert(Value::Null);
            doc.entry("shared").or_insert(json!(false));
            doc.entry("is_default").or_insert(json!(false));
            let scope = req.get("address_scope_id").and_then(Value::as_str).map(String::from);
            doc.insert("address_scope_id".into(), json!(scope));
            Self::check_lengths(&doc)?;
            stamp::created(&mut doc, &project, true, true);
            let id = stamp::str_of(&doc, "id").to_string();
            self.check_scope(ctx, &mut tx, scope.as_deref(), &id, &prefixes, ipv).await?;
            Self::check_single_default(&mut tx, &doc).await?;
            core.quota_take(&mut tx, &project, "subnetpool", 1).await?;
            tx.insert(&SUBNETPOOLS, &doc).await.map_err(Ml2Error::from)?;
            docs.push(doc);
        }
        core.commit(tx, Outbox::default()).await?;
        Ok(docs)
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let d = self.0.store.get(&SUBNETPOOLS, id).await.map_err(Ml2Error::from)?;
        Ok(d.filter(|d| ctx.sees(d) || stamp::bool_of(d, "shared"))
            .ok_or_else(|| Ml2Error::SubnetPoolNotFound(id.into()))?)
    }

    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> std::result::Result<Listing, Fault> {
        let conds =
            if ctx.is_admin() { vec![] } else { vec![Cond::Or(vec![crate::own(ctx), Cond::Flag("shared", true)])] };
        crate::select(&self.0.store, self.def(), &SUBNETPOOLS, spec, &conds).await
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let mut h = hint.clone();
        h.projects = None; // shared pools are visible
        let mut all =
            self.0.store.list(&SUBNETPOOLS, &crate::pushdown(&SUBNETPOOLS, &h)).await.map_err(Ml2Error::from)?;
        all.retain(|d| ctx.sees(d) || stamp::bool_of(d, "shared"));
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
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut doc = tx
            .get(&SUBNETPOOLS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SubnetPoolNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        let ipv = doc.get("ip_version").and_then(Value::as_i64).unwrap_or(4) as u8;
        let mut changes = changes;
        if let Some(p) = changes.remove("prefixes") {
            let new = prefixes_of(&p);
            if new.iter().any(|p| version(p) != ipv) {
                return Err(Fault::new(
                    400,
                    "PrefixVersionMismatch",
                    "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                ));
            }
            let old = prefixes_of(doc.get("prefixes").unwrap_or(&Value::Null));
            if old.iter().any(|o| !covers(&new, o)) {
                return Err(Fault::new(
                    400,
                    "IllegalSubnetPoolPrefixUpdate",
                    "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes",
                ));
            }
            doc.insert("prefixes".into(), to_json(&compact(&new)));
        }
        for (k, v) in changes {
            doc.insert(k, v);
        }
        let scope = doc.get("address_scope_id").and_then(Value::as_str).map(String::from);
        let prefixes = prefixes_of(doc.get("prefixes").unwrap_or(&Value::Null));
        self.check_scope(ctx, &mut tx, scope.as_deref(), id, &prefixes, ipv).await?;
        Self::check_lengths(&doc)?;
        Self::check_single_default(&mut tx, &doc).await?;
        stamp::changed(&mut doc);
        tx.update(&SUBNETPOOLS, &doc).await.map_err(Ml2Error::from)?;
        core.commit(tx, Outbox::default()).await?;
        Ok(doc)
    }

    async fn delete(&self, _ctx: &Context, id: &str, if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let doc = tx
            .get(&SUBNETPOOLS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SubnetPoolNotFound(id.into()))?;
        stamp::check_if_match(&doc, if_match)?;
        if !Self::used_prefixes(&mut tx, id).await?.is_empty() {
            return Err(Fault::conflict(
                "SubnetPoolInUse",
                format!("Subnet pool {id} cannot be deleted: it has subnets allocated from it."),
            ));
        }
        tx.delete(&SUBNETPOOLS, id).await.map_err(Ml2Error::from)?;
        core.quota_release(&mut tx, stamp::str_of(&doc, "project_id"), "subnetpool", 1).await?;
        core.commit(tx, Outbox::default()).await?;
        Ok(())
    }

    async fn set_tags(&self, _ctx: &Context, id: &str, tags: Vec<String>) -> std::result::Result<Vec<String>, Fault> {
        Ok(self.0.set_tags(&SUBNETPOOLS, "subnetpool", || Ml2Error::SubnetPoolNotFound(id.into()), id, tags).await?)
    }

    fn has_member_action(&self, action: &str) -> bool {
        matches!(action, "add_prefixes" | "remove_prefixes")
    }

    async fn member_action(
        &self,
        ctx: &Context,
        id: &str,
        action: &str,
        body: Value,
    ) -> std::result::Result<Value, Fault> {
        let core = &self.0;
        let given = body.get("prefixes").ok_or_else(|| Fault::bad_request("Request body must contain 'prefixes'"))?;
        let req = neutrino_lib::checks::str_list(given, 64)
            .map_err(|r| Fault::bad_request(format!("Invalid input for prefixes. Reason: {r}.")))?;
        let mut nets = vec![];
        for p in req.as_array().into_iter().flatten() {
            let s = p.as_str().unwrap_or("");
            nets.push(s.parse::<IpNet>().map_err(|_| invalid(format!("'{s}' is not a valid IP subnet")))?);
        }
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut doc = tx
            .get(&SUBNETPOOLS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Ml2Error::SubnetPoolNotFound(id.into()))?;
        let ipv = doc.get("ip_version").and_then(Value::as_i64).unwrap_or(4) as u8;
        if nets.iter().any(|p| version(p) != ipv) {
            return Err(Fault::new(
                400,
                "PrefixVersionMismatch",
                "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
            ));
        }
        let old = prefixes_of(doc.get("prefixes").unwrap_or(&Value::Null));
        let new = if action == "add_prefixes" {
            compact(&[old, nets].concat())
        } else {
            let used = Self::used_prefixes(&mut tx, id).await?;
            for n in &nets {
                if used.iter().any(|u| neutrino_ipam::addr::overlaps(u, n)) {
                    return Err(Fault::conflict(
                        "IllegalSubnetPoolUpdate",
                        format!("Illegal update to subnet pool: prefix {n} is in use"),
                    ));
                }
            }
            let mut ranges: Vec<(u128, u128)> = old.iter().map(bounds).collect();
            for n in &nets {
                let (a, b) = bounds(n);
                ranges = ranges
                    .into_iter()
                    .flat_map(|(x, y)| {
                        let mut v = vec![];
                        if b < x || a > y {
                            v.push((x, y));
                        } else {
                            if x < a {
                                v.push((x, a - 1));
                            }
                            if b < y {
                                v.push((b + 1, y));
                            }
                        }
                        v
                    })
                    .collect();
            }
            ranges_to_cidrs(&ranges, ipv)
        };
        if action == "add_prefixes" {
            let scope = doc.get("address_scope_id").and_then(Value::as_str).map(String::from);
            self.check_scope(ctx, &mut tx, scope.as_deref(), id, &new, ipv).await?;
        }
        doc.insert("prefixes".into(), to_json(&new));
        stamp::changed(&mut doc);
        tx.update(&SUBNETPOOLS, &doc).await.map_err(Ml2Error::from)?;
        core.commit(tx, Outbox::default()).await?;
        Ok(json!({"prefixes": doc["prefixes"]}))
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["subnet_allocation", "subnetpool-prefix-ops", "default-subnetpools"]
    }
}

/// Splits integer ranges into CIDRs.
fn ranges_to_cidrs(ranges: &[(u128, u128)], ipv: u8) -> Vec<IpNet> {
    let bits: u32 = if ipv == 4 { 32 } else { 128 };
    let mut out = vec![];
    for &(mut a, b) in ranges {
        while a <= b {
            let mut len = bits;
            while len > 0 {
                let size = 1u128 << (bits - len + 1).min(127);
                if a % size != 0 || a.checked_add(size - 1).is_none_or(|e| e > b) {
                    break;
                }
                len -= 1;
            }
            let size = 1u128 << (bits - len);
            if let Ok(n) = IpNet::new(neutrino_ipam::addr::from_u128(a, ipv), len as u8) {
                out.push(n);
            }
            match a.checked_add(size) {
                Some(n) => a = n,
                None => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_cidrs() {
        let n: IpNet = "10.0.0.0/16".parse().unwrap();
        let (a, b) = bounds(&n);
        let hole: IpNet = "10.0.1.0/24".parse().unwrap();
        let (ha, hb) = bounds(&hole);
        let got = ranges_to_cidrs(&[(a, ha - 1), (hb + 1, b)], 4);
        let want: Vec<IpNet> = [
            "10.0.0.0/24",
            "10.0.2.0/23",
            "10.0.4.0/22",
            "10.0.8.0/21",
            "10.0.16.0/20",
            "10.0.32.0/19",
            "10.0.64.0/18",
            "10.0.128.0/17",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(got, want);
    }
}
