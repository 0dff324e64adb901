//! DHCP agent scheduling: which DHCP agents serve a network
//! (`dhcp_agents_per_network`), and the scheduler API
//! (`/v2.0/networks/{id}/dhcp-agents`, `/v2.0/agents/{id}/dhcp-networks`).

use neutrino_lib::defs::agent::AGENT_TYPE_DHCP;
use neutrino_lib::plugin::SubResponse;
use neutrino_lib::resource::stamp;
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::scheduling::NETWORK_DHCP;
use neutrino_store::schema::{AGENTS, NETWORKS, SUBNETS};
use neutrino_store::Tx;
use serde_json::{json, Value};

use crate::error::{Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::Core;

impl Core {
    async fn network_needs_dhcp(&self, tx: &mut Tx, network_id: &str) -> Result<bool> {
        let subnets = tx.list(&SUBNETS, &[("network_id", vec![network_id.to_string()])]).await?;
        Ok(subnets.iter().any(|s| stamp::bool_of(s, "enable_dhcp")))
    }

    /// Puts a network with DHCP-enabled subnets on enough live DHCP agents
    /// (least loaded first). Returns the agents added.
    pub async fn schedule_network_dhcp(&self, tx: &mut Tx, out: &mut Outbox, network_id: &str) -> Result<Vec<Map>> {
        if !self.network_needs_dhcp(tx, network_id).await? {
            return Ok(vec![]);
        }
        let hosts = tx.hosts_of(NETWORK_DHCP, network_id).await?;
        let want = self.cfg.dhcp_agents_per_network.saturating_sub(hosts.len());
        if want == 0 {
            return Ok(vec![]);
        }
        let load: std::collections::HashMap<String, i64> = tx.hosting_load(NETWORK_DHCP).await?.into_iter().collect();
        let mut agents: Vec<Map> = tx
            .list(&AGENTS, &[("agent_type", vec![AGENT_TYPE_DHCP.to_string()])])
            .await?
            .into_iter()
            .filter(|a| {
                self.agent_alive(a)
                    && stamp::bool_of(a, "admin_state_up")
                    && !hosts.iter().any(|h| h == stamp::str_of(a, "id"))
            })
            .collect();
        agents.sort_by_key(|a| {
            (load.get(stamp::str_of(a, "id")).copied().unwrap_or(0), stamp::str_of(a, "host").to_string())
        });
        let mut added = vec![];
        for a in agents.into_iter().take(want) {
            if tx.host(NETWORK_DHCP, network_id, stamp::str_of(&a, "id")).await? {
                out.push("dhcp_network_hosted", Action::Create, &hosting_doc(network_id, &a));
                added.push(a);
            }
        }
        if !added.is_empty() {
            self.refresh_network_azs(tx, out, network_id).await?;
        }
        Ok(added)
    }

    /// A network's `availability_zones`: those of the DHCP agents serving it.
    pub(crate) async fn refresh_network_azs(&self, tx: &mut Tx, out: &mut Outbox, network_id: &str) -> Result<()> {
        let mut zones = vec![];
        for id in tx.hosts_of(NETWORK_DHCP, network_id).await? {
            if let Some(a) = tx.peek(&AGENTS, &id).await? {
                if let Some(z) = a.get("availability_zone").and_then(Value::as_str) {
                    zones.push(z.to_string());
                }
            }
        }
        zones.sort();
        zones.dedup();
        if let Some(mut n) = tx.get(&NETWORKS, network_id).await? {
            if n.get("availability_zones") != Some(&json!(zones)) {
                n.insert("availability_zones".into(), json!(zones));
                tx.update(&NETWORKS, &n).await?;
                out.push("network", Action::Update, &n);
            }
        }
        Ok(())
    }

    /// A DHCP agent appeared: give it the networks that lack DHCP agents.
    pub async fn auto_schedule_dhcp(&self) -> Result<usize> {
        let mut tx = self.store.begin().await?;
        let mut out = Outbox::default();
        let mut n = 0;
        for net in tx.list(&NETWORKS, &[]).await? {
            n += self.schedule_network_dhcp(&mut tx, &mut out, stamp::str_of(&net, "id")).await?.len();
        }
        self.commit(tx, out).await?;
        Ok(n)
    }

    /// The DHCP agents serving a network.
    pub async fn dhcp_agents_of(&self, network_id: &str) -> Result<Vec<Map>> {
        let mut out = vec![];
        for id in self.store.hosts_of(NETWORK_DHCP, network_id).await? {
            if let Some(a) = self.store.get(&AGENTS, &id).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// `/v2.0/agents/{id}/dhcp-networks[/{network}]`.
    pub(crate) async fn dhcp_networks_request(
        &self,
        ctx: &Context,
        method: &str,
        agent: &Map,
        rest: &[&str],
        body: Option<Value>,
    ) -> std::result::Result<SubResponse, Fault> {
        if !ctx.is_admin() {
            return Err(Fault::policy("get_dhcp-networks"));
        }
        let agent_id = stamp::str_of(agent, "id").to_string();
        match (method, rest) {
            ("GET", []) => {
                let mut nets = vec![];
                for id in self.store.hosted_by(NETWORK_DHCP, &agent_id).await.map_err(Ml2Error::from)? {
                    if let Some(n) = self.store.get(&NETWORKS, &id).await.map_err(Ml2Error::from)? {
                        nets.push(Value::Object(n));
                    }
                }
                Ok((200, Some(json!({ "networks": nets }))))
            }
            ("POST", []) => {
                let net_id = body
                    .as_ref()
                    .and_then(|b| b.get("network_id"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Fault::bad_request("Failed to parse request. Required attribute 'network_id' not specified")
                    })?
                    .to_string();
                if stamp::str_of(agent, "agent_type") != AGENT_TYPE_DHCP || !stamp::bool_of(agent, "admin_state_up") {
                    return Err(Fault::conflict(
                        "InvalidDHCPAgent",
                        format!("Agent {agent_id} is not a valid DHCP Agent or has been disabled."),
                    ));
                }
                let mut tx = self.store.begin().await.map_err(Ml2Error::from)?;
                tx.get(&NETWORKS, &net_id)
                    .await
                    .map_err(Ml2Error::from)?
                    .ok_or_else(|| Ml2Error::NetworkNotFound(net_id.clone()))?;
                if !tx.host(NETWORK_DHCP, &net_id, &agent_id).await.map_err(Ml2Error::from)? {
                    return Err(Fault::conflict(
                        "NetworkHostedByDHCPAgent",
                        format!("The network {net_id} has been already hosted by the DHCP Agent {agent_id}."),
                    ));
                }
                let mut out = Outbox::default();
                out.push("dhcp_network_hosted", Action::Create, &hosting_doc(&net_id, agent));
                self.refresh_network_azs(&mut tx, &mut out, &net_id).await?;
                self.commit(tx, out).await?;
                Ok((201, None))
            }
            ("DELETE", [net_id]) => {
                let mut tx = self.store.begin().await.map_err(Ml2Error::from)?;
                if !tx.unhost(NETWORK_DHCP, net_id, &agent_id).await.map_err(Ml2Error::from)? {
                    return Err(Fault::conflict(
                        "NetworkNotHostedByDhcpAgent",
                        format!("The network {net_id} is not hosted by the DHCP agent {agent_id}."),
                    ));
                }
                let mut out = Outbox::default();
                out.push("dhcp_network_hosted", Action::Delete, &hosting_doc(net_id, agent));
                self.refresh_network_azs(&mut tx, &mut out, net_id).await?;
                self.commit(tx, out).await?;
                Ok((204, None))
            }
            _ => Err(Fault::no_such_path()),
        }
    }
}

/// The event payload of a hosting change.
fn hosting_doc(network_id: &str, agent: &Map) -> Map {
    json!({"network_id": network_id, "agent_id": agent.get("id"), "host": agent.get("host")})
        .as_object()
        .cloned()
        .unwrap_or_default()
}
