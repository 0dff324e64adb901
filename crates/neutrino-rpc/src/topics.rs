//! Topic naming, as Neutron and oslo.messaging spell it.
//!
//! The crate itself is generic: these are only names. The server side
//! publishes resource notifications as fanout casts on
//! `topic_name(AGENT_NOTIFIER, "port", UPDATE)` = `q-agent-notifier-port-update`,
//! and every agent serves that topic with its own host as server name.

/// Agents → server: the main plugin RPC API (`q-plugin`).
pub const PLUGIN: &str = "q-plugin";
/// Agents → server: agent state reports (`q-reports-plugin`).
pub const REPORTS: &str = "q-reports-plugin";
/// Agents → server: the L3 plugin API (`q-l3-plugin`).
pub const L3_PLUGIN: &str = "q-l3-plugin";
/// Agents → server: the DHCP plugin API (`q-dhcp-notifer`, Neutron's spelling).
pub const DHCP_PLUGIN: &str = "q-dhcp-notifer";
/// Agents → server: resource versions (`q-server-resource-versions`).
pub const SERVER_RESOURCE_VERSIONS: &str = "q-server-resource-versions";
/// Server → agents: prefix of the resource notification topics (`q-agent-notifier`).
pub const AGENT_NOTIFIER: &str = "q-agent-notifier";
/// Server → L3 agents (`l3_agent`).
pub const L3_AGENT: &str = "l3_agent";
/// Server → DHCP agents (`dhcp_agent`).
pub const DHCP_AGENT: &str = "dhcp_agent";

/// Operation name: create.
pub const CREATE: &str = "create";
/// Operation name: update.
pub const UPDATE: &str = "update";
/// Operation name: delete.
pub const DELETE: &str = "delete";

/// Neutron's `get_topic_name(prefix, table, operation)`: `prefix-table-operation`.
pub fn topic_name(prefix: &str, resource: &str, operation: &str) -> String {
    format!("{prefix}-{resource}-{operation}")
}

/// The direct queue of one server on a topic: `topic.server`.
pub fn server_queue(topic: &str, server: &str) -> String {
    format!("{topic}.{server}")
}

/// The fanout exchange of a topic: `topic_fanout`.
pub fn fanout_exchange(topic: &str) -> String {
    format!("{topic}_fanout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(topic_name(AGENT_NOTIFIER, "port", UPDATE), "q-agent-notifier-port-update");
        assert_eq!(fanout_exchange(&topic_name(AGENT_NOTIFIER, "port", UPDATE)), "q-agent-notifier-port-update_fanout");
        assert_eq!(server_queue(DHCP_AGENT, "host-1"), "dhcp_agent.host-1");
    }
}
