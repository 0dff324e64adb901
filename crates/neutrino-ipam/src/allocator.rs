//! Allocating and releasing addresses in the store.
//!
//! The free addresses of a subnet's allocation pools form a range pool in the
//! store (see `neutrino_store::pool`); an allocation takes the lowest free
//! address (or a requested one) under the pool's row lock and records it in
//! the allocation table, whose primary key forbids duplicates. Neither step
//! scans the address range, so a /8 allocates as fast as a /24.

use std::net::IpAddr;

use ipnet::IpNet;
use neutrino_store::Tx;

use crate::addr::{from_u128, host_range, to_u128, version};
use crate::IpamError;

/// What the allocator needs to know of a subnet.
#[derive(Debug, Clone)]
pub struct SubnetRef {
    /// Subnet id.
    pub id: String,
    /// Network id.
    pub network_id: String,
    /// CIDR.
    pub cidr: IpNet,
    /// Allocation pools as integer ranges.
    pub pools: Vec<(u128, u128)>,
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
}

impl SubnetRef {
    /// Is `ip` inside one of the allocation pools?
    pub fn in_pools(&self, ip: IpAddr) -> bool {
        let v = to_u128(ip);
        self.pools.iter().any(|(a, b)| *a <= v && v <= *b)
    }
}

/// The range-pool id of a subnet.
pub fn pool_id(subnet_id: &str) -> String {
    format!("ip:{subnet_id}")
}

/// Sets up the free-address pool of a new subnet.
pub async fn create(tx: &mut Tx, subnet: &SubnetRef) -> Result<(), IpamError> {
    tx.pool_create(&pool_id(&subnet.id), &subnet.pools).await?;
    Ok(())
}

/// Removes the pool of a deleted subnet.
pub async fn drop(tx: &mut Tx, subnet_id: &str) -> Result<(), IpamError> {
    tx.pool_drop(&pool_id(subnet_id)).await?;
    Ok(())
}

/// Allocates the lowest free address of the subnet to `port`; `None` when
/// the subnet is full.
pub async fn allocate_any(tx: &mut Tx, subnet: &SubnetRef, port: &str) -> Result<Option<IpAddr>, IpamError> {
    let v = version(&subnet.cidr);
    // A taken value can only collide with an address recorded outside the
    // pools before the pools grew; skip such values (bounded by the number
    // of such addresses, normally zero).
    loop {
        let Some(n) = tx.pool_take_first(&pool_id(&subnet.id)).await? else {
            return Ok(None);
        };
        let ip = from_u128(n, v);
        if tx.alloc_insert(&subnet.network_id, &ip.to_string(), &subnet.id, port).await? {
            return Ok(Some(ip));
        }
        tracing::warn!(subnet = %subnet.id, %ip, "free pool held an allocated address; skipped");
    }
}

/// Allocates a requested address to `port`.
pub async fn allocate_specific(tx: &mut Tx, subnet: &SubnetRef, ip: IpAddr, port: &str) -> Result<(), IpamError> {
    check_valid(subnet, ip)?;
    let taken_from_pool =
        if subnet.in_pools(ip) { tx.pool_take(&pool_id(&subnet.id), to_u128(ip)).await? } else { true };
    if !taken_from_pool || !tx.alloc_insert(&subnet.network_id, &ip.to_string(), &subnet.id, port).await? {
        return Err(IpamError::AlreadyAllocated { ip: ip.to_string(), subnet: subnet.id.clone() });
    }
    Ok(())
}

/// Records an address computed elsewhere (SLAAC) so it stays unique.
pub async fn record(tx: &mut Tx, subnet: &SubnetRef, ip: IpAddr, port: &str) -> Result<(), IpamError> {
    if !tx.alloc_insert(&subnet.network_id, &ip.to_string(), &subnet.id, port).await? {
        return Err(IpamError::AlreadyAllocated { ip: ip.to_string(), subnet: subnet.id.clone() });
    }
    Ok(())
}

/// Releases an address.
pub async fn release(tx: &mut Tx, subnet: &SubnetRef, ip: IpAddr) -> Result<(), IpamError> {
    tx.alloc_delete(&subnet.network_id, &ip.to_string()).await?;
    if subnet.in_pools(ip) {
        tx.pool_release(&pool_id(&subnet.id), to_u128(ip)).await?;
    }
    Ok(())
}

/// Replaces the allocation pools of a subnet: the free set becomes the new
/// pools minus every address currently allocated.
pub async fn set_pools(tx: &mut Tx, subnet: &SubnetRef) -> Result<(), IpamError> {
    // Exclusive first: allocations in flight (they hold the pool shared)
    // commit before the allocations are read, so none is missed.
    tx.pool_lock(&pool_id(&subnet.id)).await?;
    let mut free = subnet.pools.clone();
    for a in tx.alloc_by_subnet(&subnet.id).await? {
        if let Ok(ip) = a.ip_address.parse::<IpAddr>() {
            free = crate::pools::subtract(free, to_u128(ip));
        }
    }
    tx.pool_create(&pool_id(&subnet.id), &free).await?;
    Ok(())
}

/// Is `ip` a host address of the subnet (not the network/broadcast address)?
pub fn check_valid(subnet: &SubnetRef, ip: IpAddr) -> Result<(), IpamError> {
    let ok = subnet.cidr.contains(&ip)
        && host_range(&subnet.cidr).is_some_and(|(a, b)| {
            let v = to_u128(ip);
            a <= v && v <= b
        });
    if ok {
        Ok(())
    } else {
        Err(IpamError::InvalidIpForSubnet { ip: ip.to_string() })
    }
}
