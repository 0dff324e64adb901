//! Type drivers: local, flat, vlan, gre, vxlan, geneve.
//!
//! A segment is (network_type, physical_network, segmentation_id). Each
//! allocated segment is claimed in the store's segment table (its primary
//! key forbids a second owner, whatever the server); tenant ranges are range
//! pools from which the lowest free id is taken under the pool lock.

use neutrino_lib::defs::network::types::*;
use neutrino_store::{Store, Tx};
use serde_json::{json, Value};

use crate::config::Ml2Config;
use crate::error::{invalid, Ml2Error, Result};

/// A tenant segment range of one type and physnet: (type, physnet, ranges).
type TenantPool = (&'static str, String, Vec<(u32, u32)>);

/// A segment as requested (provider attributes, any may be missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentSpec {
    /// `provider:network_type`.
    pub network_type: Option<String>,
    /// `provider:physical_network`.
    pub physical_network: Option<String>,
    /// `provider:segmentation_id`.
    pub segmentation_id: Option<i64>,
}

/// An allocated segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Type.
    pub network_type: String,
    /// Physical network (flat, vlan).
    pub physical_network: Option<String>,
    /// Segmentation id (vlan id, VNI, GRE key).
    pub segmentation_id: Option<i64>,
}

impl Segment {
    /// The provider attributes of the segment.
    pub fn provider_json(&self) -> Value {
        json!({
            "provider:network_type": self.network_type,
            "provider:physical_network": self.physical_network,
            "provider:segmentation_id": self.segmentation_id,
        })
    }

    /// Reads a segment back from provider attributes.
    pub fn from_json(v: &Value) -> Option<Segment> {
        Some(Segment {
            network_type: v.get("provider:network_type")?.as_str()?.to_string(),
            physical_network: v.get("provider:physical_network").and_then(Value::as_str).map(String::from),
            segmentation_id: v.get("provider:segmentation_id").and_then(Value::as_i64),
        })
    }
}

/// Valid segmentation ids per type.
fn id_limits(t: &str) -> Option<(i64, i64)> {
    match t {
        VLAN => Some((1, 4094)),
        VXLAN | GENEVE => Some((1, (1 << 24) - 1)),
        GRE => Some((1, u32::MAX as i64)),
        _ => None,
    }
}

fn is_tunnel(t: &str) -> bool {
    matches!(t, VXLAN | GRE | GENEVE)
}

/// The loaded type drivers and their configuration.
#[derive(Debug, Clone)]
pub struct TypeManager {
    cfg: Ml2Config,
}

impl TypeManager {
    /// Type drivers as configured.
    pub fn new(cfg: &Ml2Config) -> TypeManager {
        TypeManager { cfg: cfg.clone() }
    }

    /// Is this type loaded?
    pub fn supports(&self, t: &str) -> bool {
        self.cfg.type_drivers.iter().any(|d| d == t)
    }

    fn pool_id(t: &str, physnet: &str) -> String {
        format!("seg:{t}:{physnet}")
    }

    /// The configured tenant ranges: (type, physnet, ranges).
    fn tenant_pools(&self) -> Vec<TenantPool> {
        let mut out = vec![];
        if self.supports(VLAN) {
            for r in &self.cfg.vlan_ranges {
                let ranges: Vec<(u32, u32)> =
                    self.cfg.vlan_ranges.iter().filter(|x| x.physnet == r.physnet).filter_map(|x| x.range).collect();
                if !out.iter().any(|(t, p, _): &(&str, String, _)| *t == VLAN && *p == r.physnet) {
                    out.push((VLAN, r.physnet.clone(), ranges));
                }
            }
        }
        for (t, ranges) in
            [(VXLAN, &self.cfg.vxlan_ranges), (GRE, &self.cfg.gre_ranges), (GENEVE, &self.cfg.geneve_ranges)]
        {
            if self.supports(t) {
                out.push((t, String::new(), ranges.clone()));
            }
        }
        out
    }

    fn in_tenant_range(&self, t: &str, physnet: &str, id: i64) -> bool {
        self.tenant_pools()
            .iter()
            .filter(|(pt, pp, _)| *pt == t && pp == physnet)
            .any(|(_, _, rs)| rs.iter().any(|(a, b)| (*a as i64) <= id && id <= (*b as i64)))
    }

    /// Makes the tenant pools match the configuration: configured ranges minus
    /// the ids already claimed. Run at start-up (safe with several servers).
    pub async fn sync(&self, store: &Store) -> Result<()> {
        let mut tx = store.begin().await?;
        for (t, physnet, ranges) in self.tenant_pools() {
            let pool = Self::pool_id(t, &physnet);
            tx.pool_create(&pool, &[]).await?; // exists and locked from here on
            let claimed = tx.segment_claimed(t, &physnet).await?;
            let mut free: Vec<(u128, u128)> = ranges.iter().map(|(a, b)| (*a as u128, *b as u128)).collect();
            for id in claimed {
                free = neutrino_ipam::pools::subtract(free, id as u128);
            }
            tx.pool_create(&pool, &free).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Validates a provider request against the configuration.
    pub fn validate_provider(&self, s: &SegmentSpec) -> Result<()> {
        let Some(t) = s.network_type.as_deref() else {
            if s.physical_network.is_some() || s.segmentation_id.is_some() {
                return Err(invalid("network_type required"));
            }
            return Ok(());
        };
        if !self.supports(t) {
            return Err(invalid(format!("network_type value '{t}' not supported")));
        }
        match t {
            LOCAL => {
                if s.physical_network.is_some() {
                    return Err(invalid("physical_network not allowed for local provider network"));
                }
                if s.segmentation_id.is_some() {
                    return Err(invalid("segmentation_id not allowed for local provider network"));
                }
            }
            FLAT => {
                let Some(p) = s.physical_network.as_deref() else {
                    return Err(invalid("physical_network required for flat provider network"));
                };
                if !self.cfg.flat_networks.iter().any(|f| f == "*" || f == p) {
                    return Err(invalid(format!("physical_network '{p}' unknown for flat provider network")));
                }
                if s.segmentation_id.is_some() {
                    return Err(invalid("segmentation_id specified for flat provider network"));
                }
            }
            VLAN => {
                if let Some(p) = s.physical_network.as_deref() {
                    if !self.cfg.vlan_ranges.iter().any(|r| r.physnet == p) {
                        return Err(invalid(format!("physical_network '{p}' unknown for VLAN provider network")));
                    }
                }
                if let Some(id) = s.segmentation_id {
                    if !(1..=4094).contains(&id) {
                        return Err(invalid(format!("segmentation_id out of range ({} through {})", 1, 4094)));
                    }
                    if s.physical_network.is_none() {
                        return Err(invalid("segmentation_id requires physical_network for VLAN provider network"));
                    }
                }
            }
            _ => {
                if s.physical_network.is_some() {
                    return Err(invalid(format!("provider:physical_network specified for {t} network")));
                }
                if let Some(id) = s.segmentation_id {
                    let (a, b) = id_limits(t).unwrap_or((1, i64::MAX));
                    if !(a..=b).contains(&id) {
                        return Err(invalid(format!("segmentation_id out of range ({a} through {b})")));
                    }
                }
            }
        }
        Ok(())
    }

    /// Reserves the segment of a provider request (allocating the missing parts).
    pub async fn reserve_provider(&self, tx: &mut Tx, s: &SegmentSpec, network: &str) -> Result<Segment> {
        self.validate_provider(s)?;
        let t = s.network_type.clone().unwrap_or_default();
        match t.as_str() {
            LOCAL => Ok(Segment { network_type: t, physical_network: None, segmentation_id: None }),
            FLAT => {
                let p = s.physical_network.clone().unwrap_or_default();
                if !tx.segment_claim(FLAT, &p, 0, network).await? {
                    return Err(Ml2Error::Fault(neutrino_lib::Fault::conflict(
                        "FlatNetworkInUse",
                        format!("Unable to create the flat network. Physical network {p} is in use."),
                    )));
                }
                Ok(Segment { network_type: t, physical_network: Some(p), segmentation_id: None })
            }
            _ => {
                let physnet = s.physical_network.clone().unwrap_or_default();
                match s.segmentation_id {
                    Some(id) => {
                        self.claim(tx, &t, &physnet, id, network).await?;
                        Ok(Segment {
                            network_type: t,
                            physical_network: s.physical_network.clone(),
                            segmentation_id: Some(id),
                        })
                    }
                    None => {
                        let candidates: Vec<String> = if t == VLAN && s.physical_network.is_none() {
                            self.tenant_pools()
                                .into_iter()
                                .filter(|(pt, _, r)| *pt == VLAN && !r.is_empty())
                                .map(|(_, p, _)| p)
                                .collect()
                        } else {
                            vec![physnet]
                        };
                        for p in candidates {
                            if let Some(seg) = self.take_from_pool(tx, &t, &p, network).await? {
                                return Ok(seg);
                            }
                        }
                        Err(Ml2Error::NoNetworkAvailable)
                    }
                }
            }
        }
    }

    async fn claim(&self, tx: &mut Tx, t: &str, physnet: &str, id: i64, network: &str) -> Result<()> {
        let in_use = || {
            let msg = match t {
                VLAN => format!("Unable to create the network. The VLAN {id} on physical network {physnet} is in use."),
                _ => format!("Unable to create the network. The tunnel ID {id} is in use."),
            };
            Ml2Error::Fault(neutrino_lib::Fault::conflict(if t == VLAN { "VlanIdInUse" } else { "TunnelIdInUse" }, msg))
        };
        if self.in_tenant_range(t, physnet, id) && !tx.pool_take(&Self::pool_id(t, physnet), id as u128).await? {
            return Err(in_use());
        }
        if !tx.segment_claim(t, physnet, id, network).await? {
            return Err(in_use());
        }
        Ok(())
    }

    async fn take_from_pool(&self, tx: &mut Tx, t: &str, physnet: &str, network: &str) -> Result<Option<Segment>> {
        let pool = Self::pool_id(t, physnet);
        while let Some(id) = tx.pool_take_first(&pool).await? {
            let id = id as i64;
            if tx.segment_claim(t, physnet, id, network).await? {
                return Ok(Some(Segment {
                    network_type: t.to_string(),
                    physical_network: (!physnet.is_empty()).then(|| physnet.to_string()),
                    segmentation_id: Some(id),
                }));
            }
        }
        Ok(None)
    }

    /// Allocates a tenant network's segment from the first tenant type with a free id.
    pub async fn allocate_tenant(&self, tx: &mut Tx, network: &str) -> Result<Segment> {
        for t in &self.cfg.tenant_network_types {
            match t.as_str() {
                LOCAL => {
                    return Ok(Segment { network_type: LOCAL.into(), physical_network: None, segmentation_id: None })
                }
                FLAT => continue,
                _ => {
                    for (pt, p, ranges) in self.tenant_pools() {
                        if pt != t || ranges.is_empty() {
                            continue;
                        }
                        if let Some(seg) = self.take_from_pool(tx, pt, &p, network).await? {
                            return Ok(seg);
                        }
                    }
                }
            }
        }
        Err(Ml2Error::NoNetworkAvailable)
    }

    /// Releases a segment.
    pub async fn release(&self, tx: &mut Tx, s: &Segment) -> Result<()> {
        let physnet = s.physical_network.clone().unwrap_or_default();
        match s.network_type.as_str() {
            LOCAL => {}
            FLAT => tx.segment_unclaim(FLAT, &physnet, 0).await?,
            t => {
                if let Some(id) = s.segmentation_id {
                    tx.segment_unclaim(t, &physnet, id).await?;
                    if self.in_tenant_range(t, &physnet, id) {
                        tx.pool_release(&Self::pool_id(t, &physnet), id as u128).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The MTU a segment can carry.
    pub fn mtu(&self, s: &Segment) -> u32 {
        let under = self.cfg.tunnel_underlay_mtu();
        match s.network_type.as_str() {
            FLAT | VLAN => self.cfg.physnet_mtu(s.physical_network.as_deref()),
            VXLAN => under.saturating_sub(30 + 20),
            GRE => under.saturating_sub(22 + 20),
            GENEVE => under.saturating_sub(self.cfg.geneve_max_header_size + 20),
            _ => self.cfg.global_physnet_mtu,
        }
    }

    /// Is the type a tunnel type?
    pub fn is_tunnel(t: &str) -> bool {
        is_tunnel(t)
    }
}
