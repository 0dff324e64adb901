//! The schema: resource tables and the constraint tables beside them.
//!
//! Migrations are append-only: a released version is never edited; a change
//! is a new entry in [`MIGRATIONS`].

use crate::store::Backend;
use crate::table::Table;

/// `networks`.
pub static NETWORKS: Table = Table { name: "networks", cols: &[], uniques: &[] };
/// `subnets`.
pub static SUBNETS: Table =
    Table { name: "subnets", cols: &["network_id", "subnetpool_id", "segment_id"], uniques: &[] };
/// `ports`: a MAC address is unique within a network.
pub static PORTS: Table = Table {
    name: "ports",
    cols: &["network_id", "device_id", "device_owner", "mac_address", "binding:host_id"],
    uniques: &[&["network_id", "mac_address"]],
};
/// `security_groups`.
pub static SECURITY_GROUPS: Table = Table { name: "security_groups", cols: &[], uniques: &[] };
/// `security_group_rules`.
pub static SECURITY_GROUP_RULES: Table =
    Table { name: "security_group_rules", cols: &["security_group_id", "remote_group_id"], uniques: &[] };
/// `subnetpools`.
pub static SUBNETPOOLS: Table = Table { name: "subnetpools", cols: &["address_scope_id"], uniques: &[] };
/// `address_scopes`.
pub static ADDRESS_SCOPES: Table = Table { name: "address_scopes", cols: &[], uniques: &[] };
/// `segments`.
pub static SEGMENTS: Table = Table { name: "segments", cols: &["network_id"], uniques: &[] };
/// `routers`.
pub static ROUTERS: Table = Table { name: "routers", cols: &[], uniques: &[] };
/// `floatingips`: one floating IP per address on its network.
pub static FLOATINGIPS: Table = Table {
    name: "floatingips",
    cols: &["floating_network_id", "router_id", "port_id", "floating_ip_address"],
    uniques: &[],
};
/// `agents`: one agent of a type per host.
pub static AGENTS: Table = Table { name: "agents", cols: &["host", "agent_type"], uniques: &[&["agent_type", "host"]] };

/// `metering_labels`.
pub static METERING_LABELS: Table = Table { name: "metering_labels", cols: &[], uniques: &[] };
/// `metering_label_rules`.
pub static METERING_LABEL_RULES: Table =
    Table { name: "metering_label_rules", cols: &["metering_label_id"], uniques: &[] };

/// Resource tables of schema version 1.
const V1_TABLES: &[&Table] = &[
    &NETWORKS,
    &SUBNETS,
    &PORTS,
    &SECURITY_GROUPS,
    &SECURITY_GROUP_RULES,
    &SUBNETPOOLS,
    &ADDRESS_SCOPES,
    &SEGMENTS,
    &ROUTERS,
    &FLOATINGIPS,
    &AGENTS,
];

fn v1(_: Backend) -> Vec<String> {
    let mut out: Vec<String> = V1_TABLES.iter().flat_map(|t| t.ddl()).collect();
    out.extend(
        [
            "CREATE TABLE IF NOT EXISTS range_pools (pool_id TEXT PRIMARY KEY)",
            "CREATE TABLE IF NOT EXISTS pool_ranges (pool_id TEXT NOT NULL, first TEXT NOT NULL, last TEXT NOT NULL, PRIMARY KEY (pool_id, first))",
            "CREATE TABLE IF NOT EXISTS ip_allocations (network_id TEXT NOT NULL, ip_address TEXT NOT NULL, subnet_id TEXT NOT NULL, port_id TEXT NOT NULL, PRIMARY KEY (network_id, ip_address))",
            "CREATE INDEX IF NOT EXISTS ix_ip_allocations_port ON ip_allocations (port_id)",
            "CREATE INDEX IF NOT EXISTS ix_ip_allocations_subnet ON ip_allocations (subnet_id)",
            "CREATE TABLE IF NOT EXISTS quota_usages (project_id TEXT NOT NULL, resource TEXT NOT NULL, in_use BIGINT NOT NULL, PRIMARY KEY (project_id, resource))",
            "CREATE TABLE IF NOT EXISTS quota_limits (project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL, PRIMARY KEY (project_id, resource))",
            "CREATE TABLE IF NOT EXISTS segment_allocations (network_type TEXT NOT NULL, physical_network TEXT NOT NULL, segmentation_id BIGINT NOT NULL, network_id TEXT NOT NULL, PRIMARY KEY (network_type, physical_network, segmentation_id))",
            "CREATE TABLE IF NOT EXISTS default_security_groups (project_id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL)",
        ]
        .map(String::from),
    );
    out
}

/// One schema step.
pub struct Migration {
    /// Version number, increasing.
    pub version: i64,
    /// What it does.
    pub description: &'static str,
    /// The statements for a backend.
    pub statements: fn(Backend) -> Vec<String>,
}

fn v2(_: Backend) -> Vec<String> {
    [
        "CREATE TABLE IF NOT EXISTS network_dhcp_agents (network_id TEXT NOT NULL, agent_id TEXT NOT NULL, PRIMARY KEY (network_id, agent_id))",
        "CREATE INDEX IF NOT EXISTS ix_network_dhcp_agents_agent ON network_dhcp_agents (agent_id)",
        "CREATE TABLE IF NOT EXISTS router_l3_agents (router_id TEXT NOT NULL, agent_id TEXT NOT NULL, PRIMARY KEY (router_id, agent_id))",
        "CREATE INDEX IF NOT EXISTS ix_router_l3_agents_agent ON router_l3_agents (agent_id)",
    ]
    .map(String::from)
    .to_vec()
}

fn v3(_: Backend) -> Vec<String> {
    [&METERING_LABELS, &METERING_LABEL_RULES].iter().flat_map(|t| t.ddl()).collect()
}

fn v4(_: Backend) -> Vec<String> {
    let mut out = vec![
        "CREATE TABLE IF NOT EXISTS southbound_outbox (id TEXT PRIMARY KEY, seq BIGINT NOT NULL, lease_until BIGINT NOT NULL, body TEXT NOT NULL)".to_string(),
        "CREATE INDEX IF NOT EXISTS ix_southbound_outbox_lease ON southbound_outbox (lease_until, seq)".to_string(),
    ];
    // Keyset pages of one project's resources in id order read only the page.
    for t in V1_TABLES.iter().chain([&METERING_LABELS, &METERING_LABEL_RULES].iter()) {
        out.push(format!("CREATE INDEX IF NOT EXISTS ix_{0}_project_id_id ON {0} (project_id, id)", t.name));
    }
    out
}

/// The network schema's migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "resource tables, range pools, IP allocations, quotas, default security groups",
        statements: v1,
    },
    Migration { version: 2, description: "DHCP and L3 agent scheduling", statements: v2 },
    Migration { version: 3, description: "metering labels and rules", statements: v3 },
    Migration {
        version: 4,
        description: "durable southbound outbox; (project_id, id) indexes for keyset pages",
        statements: v4,
    },
];
