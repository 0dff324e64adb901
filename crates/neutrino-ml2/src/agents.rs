//! Agents: registration and heartbeats (`report_state`), the `agents` API,
//! and the availability zones derived from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use neutrino_lib::defs::agent::{AGENT, AVAILABILITY_ZONE};
use neutrino_lib::plugin::{ListHint, ResourcePlugin};
use neutrino_lib::resource::{stamp, ResourceDef};
use neutrino_lib::{Context, Fault, Map};
use neutrino_store::schema::AGENTS;
use serde_json::{json, Value};

use crate::error::{Ml2Error, Result};
use crate::notify::{Action, Outbox};
use crate::Core;

/// Now, as Neutron renders agent timestamps, and as epoch seconds.
fn stamp_now() -> (String, i64) {
    let secs = neutrino_lib::time::now_micros() / 1_000_000;
    (neutrino_lib::time::format_agent_time(secs), secs)
}

/// What an agent reports in `report_state`.
#[derive(Debug, Clone)]
pub struct AgentState {
    /// e.g. "Open vSwitch agent".
    pub agent_type: String,
    /// e.g. "neutrino-openvswitch-agent".
    pub binary: String,
    /// The host it runs on.
    pub host: String,
    /// Its RPC topic ("N/A" for L2 agents).
    pub topic: String,
    /// Its availability zone (DHCP and L3 agents).
    pub availability_zone: Option<String>,
    /// Agent configuration (bridge mappings, tunnel types, …).
    pub configurations: Value,
    /// True on the first report after the agent (re)started.
    pub start_flag: bool,
}

impl AgentState {
    /// Reads a report as agents send it over RPC (`agent_state.agent_state`).
    pub fn from_json(v: &Value) -> Option<AgentState> {
        Some(AgentState {
            agent_type: v.get("agent_type")?.as_str()?.to_string(),
            binary: v.get("binary").and_then(Value::as_str).unwrap_or("").to_string(),
            host: v.get("host")?.as_str()?.to_string(),
            topic: v.get("topic").and_then(Value::as_str).unwrap_or("N/A").to_string(),
            availability_zone: v.get("availability_zone").and_then(Value::as_str).map(String::from),
            configurations: v.get("configurations").cloned().unwrap_or(json!({})),
            start_flag: v.get("start_flag").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// What `report_state` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// First registration of this agent.
    New,
    /// A known agent that had been considered dead.
    Revived,
    /// A routine heartbeat.
    Alive,
}

impl Core {
    /// Is the agent alive (heartbeat within `agent_down_time`)?
    pub fn agent_alive(&self, agent: &Map) -> bool {
        let hb = agent.get("_heartbeat").and_then(Value::as_i64).unwrap_or(0);
        let now = neutrino_lib::time::now_micros() / 1_000_000;
        now - hb <= self.cfg.agent_down_time as i64
    }

    /// Registers an agent or records its heartbeat.
    pub async fn report_state(&self, st: &AgentState) -> Result<(Reported, Map)> {
        let mut tx = self.store.begin().await?;
        let (ts, secs) = stamp_now();
        let existing =
            tx.list(&AGENTS, &[("agent_type", vec![st.agent_type.clone()]), ("host", vec![st.host.clone()])]).await?;
        let mut out = Outbox::default();
        let (outcome, doc) = match existing.into_iter().next() {
            Some(mut a) => {
                let was_alive = self.agent_alive(&a);
                a.insert("heartbeat_timestamp".into(), json!(ts));
                a.insert("_heartbeat".into(), json!(secs));
                a.insert("configurations".into(), st.configurations.clone());
                a.insert("binary".into(), json!(st.binary));
                a.insert("topic".into(), json!(st.topic));
                if st.availability_zone.is_some() {
                    a.insert("availability_zone".into(), json!(st.availability_zone));
                }
                if st.start_flag {
                    a.insert("started_at".into(), json!(ts));
                }
                tx.update(&AGENTS, &a).await?;
                let outcome = if was_alive && !st.start_flag { Reported::Alive } else { Reported::Revived };
                if outcome != Reported::Alive {
                    out.push("agent", Action::Update, &a);
                }
                (outcome, a)
            }
            None => {
                let a = json!({
                    "id": neutrino_lib::new_id(),
                    "agent_type": st.agent_type,
                    "binary": st.binary,
                    "topic": st.topic,
                    "host": st.host,
                    "admin_state_up": true,
                    "created_at": ts,
                    "started_at": ts,
                    "heartbeat_timestamp": ts,
                    "_heartbeat": secs,
                    "configurations": st.configurations,
                    "description": null,
                    "availability_zone": st.availability_zone,
                    "resources_synced": null,
                })
                .as_object()
                .cloned()
                .unwrap_or_default();
                if !tx.insert(&AGENTS, &a).await? {
                    // Registered concurrently by another server: a heartbeat then.
                    return Box::pin(self.report_state(st)).await;
                }
                out.push("agent", Action::Create, &a);
                (Reported::New, a)
            }
        };
        self.commit(tx, out).await?;
        if outcome != Reported::Alive {
            self.agent_came_up(&doc).await?;
        }
        Ok((outcome, doc))
    }

    /// What follows an agent's (re)appearance: ports waiting for it are
    /// bound, networks and routers are scheduled to it.
    async fn agent_came_up(&self, agent: &Map) -> Result<()> {
        match stamp::str_of(agent, "agent_type") {
            neutrino_lib::defs::agent::AGENT_TYPE_OVS => {
                let n = self.rebind_host(stamp::str_of(agent, "host")).await?;
                tracing::info!(host = stamp::str_of(agent, "host"), rebound = n, "L2 agent up");
            }
            neutrino_lib::defs::agent::AGENT_TYPE_DHCP => {
                let n = self.auto_schedule_dhcp().await?;
                tracing::info!(host = stamp::str_of(agent, "host"), scheduled = n, "DHCP agent up");
            }
            _ => {}
        }
        for o in self.agent_observers() {
            o.agent_up(self, agent).await?;
        }
        Ok(())
    }

    /// Live, enabled agents of a type (on a host, if given).
    pub async fn live_agents(&self, agent_type: &str, host: Option<&str>) -> Result<Vec<Map>> {
        let mut f = vec![("agent_type", vec![agent_type.to_string()])];
        if let Some(h) = host {
            f.push(("host", vec![h.to_string()]));
        }
        let all = self.store.list(&AGENTS, &f).await?;
        Ok(all.into_iter().filter(|a| self.agent_alive(a) && stamp::bool_of(a, "admin_state_up")).collect())
    }

    fn render_agent(&self, mut a: Map) -> Map {
        let alive = self.agent_alive(&a);
        a.insert("alive".into(), json!(alive));
        a
    }
}

/// The agents collection (admin only).
pub struct Agents(pub Arc<Core>);

#[async_trait]
impl ResourcePlugin for Agents {
    fn def(&self) -> &'static ResourceDef {
        &AGENT
    }

    async fn create(&self, _ctx: &Context, _items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        Err(Fault::new(
            405,
            "HTTPMethodNotAllowed",
            "Agents register themselves; they cannot be created through the API.",
        ))
    }

    async fn get(&self, ctx: &Context, id: &str) -> std::result::Result<Map, Fault> {
        let a = self.0.store.get(&AGENTS, id).await.map_err(Ml2Error::from)?;
        let a = a
            .filter(|_| ctx.is_admin())
            .ok_or_else(|| Fault::not_found("AgentNotFound", format!("Agent {id} could not be found.")))?;
        Ok(self.0.render_agent(a))
    }

    async fn list(&self, ctx: &Context, hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        if !ctx.is_admin() {
            return Ok(vec![]);
        }
        let all = self.0.store.list(&AGENTS, &crate::pushdown(&AGENTS, hint)).await.map_err(Ml2Error::from)?;
        Ok(all.into_iter().map(|a| self.0.render_agent(a)).collect())
    }

    async fn update(
        &self,
        _ctx: &Context,
        id: &str,
        changes: Map,
        _if_match: Option<i64>,
    ) -> std::result::Result<Map, Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let mut a = tx
            .get(&AGENTS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Fault::not_found("AgentNotFound", format!("Agent {id} could not be found.")))?;
        for (k, v) in changes {
            a.insert(k, v);
        }
        tx.update(&AGENTS, &a).await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        out.push("agent", Action::Update, &a);
        core.commit(tx, out).await?;
        Ok(core.render_agent(a))
    }

    async fn delete(&self, _ctx: &Context, id: &str, _if_match: Option<i64>) -> std::result::Result<(), Fault> {
        let core = &self.0;
        let mut tx = core.store.begin().await.map_err(Ml2Error::from)?;
        let a = tx
            .get(&AGENTS, id)
            .await
            .map_err(Ml2Error::from)?
            .ok_or_else(|| Fault::not_found("AgentNotFound", format!("Agent {id} could not be found.")))?;
        tx.delete(&AGENTS, id).await.map_err(Ml2Error::from)?;
        tx.unhost_agent(neutrino_store::scheduling::NETWORK_DHCP, id).await.map_err(Ml2Error::from)?;
        tx.unhost_agent(neutrino_store::scheduling::ROUTER_L3, id).await.map_err(Ml2Error::from)?;
        let mut out = Outbox::default();
        out.push("agent", Action::Delete, &a);
        core.commit(tx, out).await?;
        Ok(())
    }

    async fn sub_request(
        &self,
        ctx: &Context,
        method: &str,
        id: &str,
        rest: &[&str],
        body: Option<Value>,
    ) -> std::result::Result<neutrino_lib::plugin::SubResponse, Fault> {
        let agent = self.get(ctx, id).await?;
        match rest {
            ["dhcp-networks", tail @ ..] => self.0.dhcp_networks_request(ctx, method, &agent, tail, body).await,
            [name, tail @ ..] => match self.0.agent_subresource(name) {
                Some(s) => s.request(ctx, method, &agent, tail, body).await,
                None => Err(Fault::no_such_path()),
            },
            _ => Err(Fault::no_such_path()),
        }
    }

    fn extensions(&self) -> &'static [&'static str] {
        &[
            "agent",
            "agent_sort_key",
            "dhcp_agent_scheduler",
            "availability_zone",
            "availability_zone_filter",
            "network_availability_zone",
        ]
    }
}

/// The availability zones, from the agents that serve networks (DHCP) and
/// routers (L3).
pub struct AvailabilityZones(pub Arc<Core>);

#[async_trait]
impl ResourcePlugin for AvailabilityZones {
    fn def(&self) -> &'static ResourceDef {
        &AVAILABILITY_ZONE
    }

    async fn create(&self, _ctx: &Context, _items: Vec<Map>) -> std::result::Result<Vec<Map>, Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "Availability zones are read-only."))
    }

    async fn get(&self, _ctx: &Context, _id: &str) -> std::result::Result<Map, Fault> {
        Err(Fault::no_such_path())
    }

    async fn list(&self, _ctx: &Context, _hint: &ListHint) -> std::result::Result<Vec<Map>, Fault> {
        let agents = self.0.store.list(&AGENTS, &[]).await.map_err(Ml2Error::from)?;
        let mut zones: BTreeMap<(String, &'static str), bool> = BTreeMap::new();
        for a in &agents {
            let resource = match stamp::str_of(a, "agent_type") {
                neutrino_lib::defs::agent::AGENT_TYPE_DHCP => "network",
                neutrino_lib::defs::agent::AGENT_TYPE_L3 => "router",
                _ => continue,
            };
            let Some(z) = a.get("availability_zone").and_then(Value::as_str) else { continue };
            let up = self.0.agent_alive(a) && stamp::bool_of(a, "admin_state_up");
            let e = zones.entry((z.to_string(), resource)).or_insert(false);
            *e = *e || up;
        }
        Ok(zones
            .into_iter()
            .map(|((name, resource), up)| {
                json!({"name": name, "resource": resource, "state": if up { "available" } else { "unavailable" }})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn update(&self, _ctx: &Context, _id: &str, _c: Map, _m: Option<i64>) -> std::result::Result<Map, Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "Availability zones are read-only."))
    }

    async fn delete(&self, _ctx: &Context, _id: &str, _m: Option<i64>) -> std::result::Result<(), Fault> {
        Err(Fault::new(405, "HTTPMethodNotAllowed", "Availability zones are read-only."))
    }
}
