//! L3 agent scheduling: one L3 agent per router (least loaded), the
//! `/v2.0/routers/{id}/l3-agents` and `/v2.0/agents/{id}/l3-routers` APIs.

use async_trait::async_trait;
use neutrino_lib::defs::agent::AGENT_TYPE_L3;
use neutrino_lib::plugin::SubResponse;
use neutrino_lib::resource::stamp;
use neutrino_lib::{Context, Fault, Map};
use neutrino_ml2::notify::{Action, Outbox};
use neutrino_ml2::{AgentObserver, AgentSubresource, Core, Ml2Error};
use neutrino_store::scheduling::ROUTER_L3;
use neutrino_store::schema::{AGENTS, ROUTERS};
use neutrino_store::Tx;
use serde_json::{json, Value};

use crate::error::{L3Error, Result};
use crate::s;

fn hosting_doc(router: &str, agent: &Map) -> Map {
    json!({"router_id": router, "agent_id": agent.get("id"), "host": agent.get("host")})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A router's `availability_zones`: those of its L3 agents.
async fn refresh_azs(tx: &mut Tx, router_id: &str) -> Result<()> {
    let mut zones = vec![];
    for id in tx.hosts_of(ROUTER_L3, router_id).await? {
        if let Some(a) = tx.peek(&AGENTS, &id).await? {
            if let Some(z) = a.get("availability_zone").and_then(Value::as_str) {
                zones.push(z.to_string());
            }
        }
    }
    zones.sort();
    zones.dedup();
    if let Some(mut r) = tx.get(&ROUTERS, router_id).await? {
        r.insert("availability_zones".into(), json!(zones));
        tx.update(&ROUTERS, &r).await?;
    }
    Ok(())
}

/// The host of the L3 agent hosting a router, if scheduled.
pub async fn router_host(tx: &mut Tx, router_id: &str) -> Result<Option<String>> {
    for id in tx.hosts_of(ROUTER_L3, router_id).await? {
        if let Some(a) = tx.peek(&AGENTS, &id).await? {
            return Ok(Some(s(&a, "host").to_string()));
        }
    }
    Ok(None)
}

/// Binds a router's ports to the host of the agent that runs it (its
/// interfaces and gateway are plugged there), or unbinds them.
async fn bind_router_ports(core: &Core, tx: &mut Tx, out: &mut Outbox, router_id: &str, host: &str) -> Result<()> {
    for owner in [crate::OWNER_INTERFACE, crate::OWNER_GATEWAY] {
        for p in crate::router_ports(tx, router_id, owner).await? {
            if s(&p, "binding:host_id") != host {
                let mut ch = Map::new();
                ch.insert("binding:host_id".into(), json!(host));
                neutrino_ml2::port::update_in_core(core, tx, out, &p, ch).await?;
            }
        }
    }
    Ok(())
}

/// Puts an unscheduled router on the least loaded live L3 agent.
pub async fn schedule_router(core: &Core, tx: &mut Tx, out: &mut Outbox, router_id: &str) -> Result<Option<Map>> {
    if !tx.hosts_of(ROUTER_L3, router_id).await?.is_empty() {
        return Ok(None);
    }
    let load: std::collections::HashMap<String, i64> = tx.hosting_load(ROUTER_L3).await?.into_iter().collect();
    let mut agents: Vec<Map> = tx
        .list(&AGENTS, &[("agent_type", vec![AGENT_TYPE_L3.to_string()])])
        .await?
        .into_iter()
        .filter(|a| core.agent_alive(a) && stamp::bool_of(a, "admin_state_up"))
        .collect();
    agents.sort_by_key(|a| (load.get(s(a, "id")).copied().unwrap_or(0), s(a, "host").to_string()));
    let Some(a) = agents.into_iter().next() else { return Ok(None) };
    tx.host(ROUTER_L3, router_id, s(&a, "id")).await?;
    refresh_azs(tx, router_id).await?;
    bind_router_ports(core, tx, out, router_id, s(&a, "host")).await?;
    out.push("l3_router_hosted", Action::Create, &hosting_doc(router_id, &a));
    Ok(Some(a))
}

/// Schedules unscheduled routers when an L3 agent comes up.
pub struct L3AgentObserver;

#[async_trait]
impl AgentObserver for L3AgentObserver {
    async fn agent_up(&self, core: &Core, agent: &Map) -> std::result::Result<(), Ml2Error> {
        if s(agent, "agent_type") != AGENT_TYPE_L3 {
            return Ok(());
        }
        let mut tx = core.store.begin().await?;
        let mut out = Outbox::default();
        let mut n = 0;
        for r in tx.list(&ROUTERS, &[]).await? {
            if schedule_router(core, &mut tx, &mut out, s(&r, "id")).await.map_err(into_ml2)?.is_some() {
                n += 1;
            }
        }
        core.commit(tx, out).await?;
        tracing::info!(host = s(agent, "host"), scheduled = n, "L3 agent up");
        Ok(())
    }
}

fn into_ml2(e: L3Error) -> Ml2Error {
    match e {
        L3Error::Core(e) => e,
        other => Ml2Error::Fault(other.into()),
    }
}

/// `/v2.0/agents/{id}/l3-routers[/{router}]`.
pub struct L3Routers(pub std::sync::Arc<Core>);

#[async_trait]
impl AgentSubresource for L3Routers {
    fn name(&self) -> &'static str {
        "l3-routers"
    }

    async fn request(
        &self,
        ctx: &Context,
        method: &str,
        agent: &Map,
        rest: &[&str],
        body: Option<Value>,
    ) -> std::result::Result<SubResponse, Fault> {
        if !ctx.is_admin() {
            return Err(Fault::policy("get_l3-routers"));
        }
        let core = &self.0;
        let agent_id = s(agent, "id").to_string();
        match (method, rest) {
            ("GET", []) => {
                let mut routers = vec![];
                for id in core.store.hosted_by(ROUTER_L3, &agent_id).await.map_err(L3Error::from)? {
                    if let Some(r) = core.store.get(&ROUTERS, &id).await.map_err(L3Error::from)? {
                        routers.push(Value::Object(r));
                    }
                }
                Ok((200, Some(json!({ "routers": routers }))))
            }
            ("POST", []) => {
                let rid = body
                    .as_ref()
                    .and_then(|b| b.get("router_id"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        Fault::bad_request("Failed to parse request. Required attribute 'router_id' not specified")
                    })?
                    .to_string();
                if s(agent, "agent_type") != AGENT_TYPE_L3 || !stamp::bool_of(agent, "admin_state_up") {
                    return Err(Fault::conflict(
                        "InvalidL3Agent",
                        format!("Agent {agent_id} is not a L3 Agent or has been disabled"),
                    ));
                }
                let mut tx = core.store.begin().await.map_err(L3Error::from)?;
                tx.get(&ROUTERS, &rid)
                    .await
                    .map_err(L3Error::from)?
                    .ok_or_else(|| L3Error::RouterNotFound(rid.clone()))?;
                let hosts = tx.hosts_of(ROUTER_L3, &rid).await.map_err(L3Error::from)?;
                if !hosts.is_empty() {
                    return Err(Fault::conflict(
                        "RouterHostedByL3Agent",
                        format!("The router {rid} has been already hosted by the L3 Agent {}.", hosts[0]),
                    ));
                }
                tx.host(ROUTER_L3, &rid, &agent_id).await.map_err(L3Error::from)?;
                refresh_azs(&mut tx, &rid).await?;
                let mut out = Outbox::default();
                bind_router_ports(core, &mut tx, &mut out, &rid, s(agent, "host")).await?;
                out.push("l3_router_hosted", Action::Create, &hosting_doc(&rid, agent));
                core.commit(tx, out).await.map_err(L3Error::from)?;
                Ok((201, None))
            }
            ("DELETE", [rid]) => {
                let mut tx = core.store.begin().await.map_err(L3Error::from)?;
                if !tx.unhost(ROUTER_L3, rid, &agent_id).await.map_err(L3Error::from)? {
                    return Err(Fault::conflict(
                        "RouterNotHostedByL3Agent",
                        format!("The router {rid} is not hosted by L3 agent {agent_id}."),
                    ));
                }
                refresh_azs(&mut tx, rid).await?;
                let mut out = Outbox::default();
                bind_router_ports(core, &mut tx, &mut out, rid, "").await?;
                out.push("l3_router_hosted", Action::Delete, &hosting_doc(rid, agent));
                core.commit(tx, out).await.map_err(L3Error::from)?;
                Ok((204, None))
            }
            _ => Err(Fault::no_such_path()),
        }
    }
}

/// The L3 agents hosting a router.
pub async fn l3_agents_of(core: &Core, router_id: &str) -> Result<Vec<Map>> {
    let mut out = vec![];
    for id in core.store.hosts_of(ROUTER_L3, router_id).await? {
        if let Some(mut a) = core.store.get(&AGENTS, &id).await? {
            a.insert("alive".into(), json!(core.agent_alive(&a)));
            a.retain(|k, _| !k.starts_with('_'));
            out.push(a);
        }
    }
    Ok(out)
}
