//! The agent's heartbeat: `report_state` every `report_interval`, with what
//! it hosts in `configurations` (Neutron's L3 agent keys).

use neutrino_lib::southbound::AgentState;
use serde_json::json;

use super::config::L3Config;
use super::sync::L3Stats;

/// Neutron's agent type of L3 agents.
pub const AGENT_TYPE: &str = "L3 agent";
/// The binary name reported.
pub const BINARY: &str = "neutrino-l3-agent";
/// The agent's topic.
pub const TOPIC: &str = neutrino_rpc::topics::L3_AGENT;

/// The state to report.
pub fn agent_state(cfg: &L3Config, stats: &L3Stats, start_flag: bool) -> AgentState {
    AgentState {
        agent_type: AGENT_TYPE.into(),
        binary: BINARY.into(),
        host: cfg.host.clone(),
        topic: TOPIC.into(),
        availability_zone: Some(cfg.availability_zone.clone()),
        configurations: json!({
            "agent_mode": "legacy",
            "routers": stats.routers,
            "interfaces": stats.interfaces,
            "ex_gw_ports": stats.ex_gw_ports,
            "floating_ips": stats.floating_ips,
            "external_network_bridge": "",
            "gateway_external_network_id": "",
            "handle_internal_only_routers": cfg.handle_internal_only_routers,
            "interface_driver": "openvswitch",
            "log_agent_heartbeats": false,
        }),
        start_flag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_counts() {
        let s = L3Stats { routers: 2, interfaces: 3, floating_ips: 1, ..Default::default() };
        let st = agent_state(&L3Config::new("net1"), &s, true);
        assert_eq!(st.agent_type, "L3 agent");
        assert_eq!(st.topic, "l3_agent");
        assert_eq!(st.availability_zone.as_deref(), Some("nova"));
        assert_eq!(st.configurations["routers"], 2);
        assert_eq!(st.configurations["interfaces"], 3);
        assert_eq!(st.configurations["floating_ips"], 1);
        assert_eq!(st.configurations["agent_mode"], "legacy");
        assert_eq!(st.configurations["external_network_bridge"], "");
    }
}
