//! Which agent hosts what: networks on DHCP agents, routers on L3 agents.

use sqlx::Row;

use crate::tx::Tx;
use crate::{Result, Store};

/// A scheduling relation: (resource, agent) pairs in one table.
#[derive(Debug, Clone, Copy)]
pub struct Hosting {
    table: &'static str,
    resource_col: &'static str,
}

/// Networks hosted by DHCP agents.
pub const NETWORK_DHCP: Hosting = Hosting { table: "network_dhcp_agents", resource_col: "network_id" };
/// Routers hosted by L3 agents.
pub const ROUTER_L3: Hosting = Hosting { table: "router_l3_agents", resource_col: "router_id" };

impl Tx {
    /// Hosts `resource` on `agent`; `false` if it already was.
    pub async fn host(&mut self, h: Hosting, resource: &str, agent: &str) -> Result<bool> {
        let sql =
            format!("INSERT INTO {} ({}, agent_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", h.table, h.resource_col);
        let r = sqlx::query(&sql).bind(resource).bind(agent).execute(&mut *self.inner).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Stops hosting; `false` if it was not hosted there.
    pub async fn unhost(&mut self, h: Hosting, resource: &str, agent: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE {} = $1 AND agent_id = $2", h.table, h.resource_col);
        let r = sqlx::query(&sql).bind(resource).bind(agent).execute(&mut *self.inner).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets every hosting of a resource (it was deleted).
    pub async fn unhost_resource(&mut self, h: Hosting, resource: &str) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE {} = $1", h.table, h.resource_col);
        sqlx::query(&sql).bind(resource).execute(&mut *self.inner).await?;
        Ok(())
    }

    /// Forgets every hosting by an agent (it was deleted).
    pub async fn unhost_agent(&mut self, h: Hosting, agent: &str) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE agent_id = $1", h.table);
        sqlx::query(&sql).bind(agent).execute(&mut *self.inner).await?;
        Ok(())
    }

    /// Agents hosting a resource.
    pub async fn hosts_of(&mut self, h: Hosting, resource: &str) -> Result<Vec<String>> {
        let sql = format!("SELECT agent_id FROM {} WHERE {} = $1", h.table, h.resource_col);
        let rows = sqlx::query(&sql).bind(resource).fetch_all(&mut *self.inner).await?;
        rows.iter().map(|r| Ok(r.try_get("agent_id")?)).collect()
    }

    /// Number of resources each agent hosts (agents hosting nothing are absent).
    pub async fn hosting_load(&mut self, h: Hosting) -> Result<Vec<(String, i64)>> {
        let sql = format!("SELECT agent_id, COUNT(*) AS n FROM {} GROUP BY agent_id", h.table);
        let rows = sqlx::query(&sql).fetch_all(&mut *self.inner).await?;
        rows.iter().map(|r| Ok((r.try_get("agent_id")?, r.try_get("n")?))).collect()
    }
}

impl Store {
    /// Agents hosting a resource.
    pub async fn hosts_of(&self, h: Hosting, resource: &str) -> Result<Vec<String>> {
        let sql = format!("SELECT agent_id FROM {} WHERE {} = $1", h.table, h.resource_col);
        let rows = sqlx::query(&sql).bind(resource).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("agent_id")?)).collect()
    }

    /// Resources hosted by an agent.
    pub async fn hosted_by(&self, h: Hosting, agent: &str) -> Result<Vec<String>> {
        let sql = format!("SELECT {} AS id FROM {} WHERE agent_id = $1", h.resource_col, h.table);
        let rows = sqlx::query(&sql).bind(agent).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}
