//! The IP allocation table: which port holds which address on a network.
//! Its primary key (network, address) makes a duplicate address impossible.

use sqlx::Row;

use crate::tx::Tx;
use crate::{Result, Store};

/// One allocated address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Network id.
    pub network_id: String,
    /// Address, canonical text.
    pub ip_address: String,
    /// Subnet id.
    pub subnet_id: String,
    /// Port id.
    pub port_id: String,
}

fn row(r: &sqlx::any::AnyRow) -> Result<Allocation> {
    Ok(Allocation {
        network_id: r.try_get("network_id")?,
        ip_address: r.try_get("ip_address")?,
        subnet_id: r.try_get("subnet_id")?,
        port_id: r.try_get("port_id")?,
    })
}

impl Tx {
    /// Records an allocation; `false` if the address is already held on the network.
    pub async fn alloc_insert(&mut self, network: &str, ip: &str, subnet: &str, port: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO ip_allocations (network_id, ip_address, subnet_id, port_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(network)
        .bind(ip)
        .bind(subnet)
        .bind(port)
        .execute(&mut *self.inner)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes an allocation.
    pub async fn alloc_delete(&mut self, network: &str, ip: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM ip_allocations WHERE network_id = $1 AND ip_address = $2")
            .bind(network)
            .bind(ip)
            .execute(&mut *self.inner)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Allocations of a subnet.
    pub async fn alloc_by_subnet(&mut self, subnet: &str) -> Result<Vec<Allocation>> {
        let rows =
            sqlx::query("SELECT network_id, ip_address, subnet_id, port_id FROM ip_allocations WHERE subnet_id = $1")
                .bind(subnet)
                .fetch_all(&mut *self.inner)
                .await?;
        rows.iter().map(row).collect()
    }

    /// Number of allocations of a subnet.
    pub async fn alloc_count(&mut self, subnet: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM ip_allocations WHERE subnet_id = $1")
            .bind(subnet)
            .fetch_one(&mut *self.inner)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Who holds an address on a network?
    pub async fn alloc_holder(&mut self, network: &str, ip: &str) -> Result<Option<Allocation>> {
        let r = sqlx::query(
            "SELECT network_id, ip_address, subnet_id, port_id FROM ip_allocations WHERE network_id = $1 AND ip_address = $2",
        )
        .bind(network)
        .bind(ip)
        .fetch_optional(&mut *self.inner)
        .await?;
        r.as_ref().map(row).transpose()
    }
}

impl Store {
    /// Number of allocations per subnet, for the given subnets.
    pub async fn alloc_counts(&self, subnets: &[String]) -> Result<Vec<(String, i64)>> {
        if subnets.is_empty() {
            return Ok(vec![]);
        }
        let ph: Vec<String> = (1..=subnets.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT subnet_id, COUNT(*) AS n FROM ip_allocations WHERE subnet_id IN ({}) GROUP BY subnet_id",
            ph.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for s in subnets {
            q = q.bind(s);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("subnet_id")?, r.try_get("n")?))).collect()
    }

    /// Ports holding addresses that match: exact addresses or substrings.
    pub async fn alloc_ports_matching(&self, exact: &[String], substr: &[String]) -> Result<Vec<String>> {
        let mut conds = vec![];
        let mut args = vec![];
        for e in exact {
            args.push(e.clone());
            conds.push(format!("ip_address = ${}", args.len()));
        }
        for s in substr {
            args.push(format!("%{}%", s.replace(['%', '_'], "")));
            conds.push(format!("ip_address LIKE ${}", args.len()));
        }
        if conds.is_empty() {
            return Ok(vec![]);
        }
        let sql = format!("SELECT DISTINCT port_id FROM ip_allocations WHERE {}", conds.join(" OR "));
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("port_id")?)).collect()
    }
}
