//! `agents` (and `availability_zones`, derived from them).

use crate::attr::{Attr, Check, Dflt};
use crate::resource::ResourceDef;

/// Agent type of the Open vSwitch L2 agent.
pub const AGENT_TYPE_OVS: &str = "Open vSwitch agent";
/// Agent type of the DHCP agent.
pub const AGENT_TYPE_DHCP: &str = "DHCP agent";
/// Agent type of the L3 agent.
pub const AGENT_TYPE_L3: &str = "L3 agent";
/// Agent type of the metadata agent.
pub const AGENT_TYPE_METADATA: &str = "Metadata agent";

/// The agent types neutrino's agents report (Neutron's spelling).
pub const AGENT_TYPES: &[&str] = &[AGENT_TYPE_OVS, AGENT_TYPE_DHCP, AGENT_TYPE_L3, AGENT_TYPE_METADATA];

const ATTRS: &[Attr] = &[
    // Filters match without regard to case, as on Neutron's usual MariaDB
    // (Tempest asks for agent_type=DHCP Agent).
    Attr::ro("agent_type").fs().check(Check::Canonical(AGENT_TYPES)),
    Attr::ro("binary").fs(),
    Attr::ro("topic").fs(),
    Attr::ro("host").fs(),
    Attr::ro("admin_state_up").put().fs().check(Check::Bool),
    Attr::ro("created_at").fs(),
    Attr::ro("started_at").fs(),
    Attr::ro("heartbeat_timestamp").fs(),
    Attr::ro("alive").fs().check(Check::Bool),
    Attr::ro("configurations"),
    Attr::ro("description").post(Dflt::Null).put().fs().check(Check::StrOrNull(255)),
    Attr::ro("availability_zone").fs(),
    Attr::ro("resources_synced").fs(),
];

/// The agent resource.
pub static AGENT: ResourceDef = ResourceDef {
    member: "agent",
    collection: "agents",
    path: "agents",
    label: "Agent",
    not_found: "AgentNotFound",
    attrs: ATTRS,
    project: false,
    standard: false,
    tags: false,
};

const AZ_ATTRS: &[Attr] = &[Attr::ro("name").fs(), Attr::ro("resource").fs(), Attr::ro("state").fs()];

/// The availability zone resource (read-only).
pub static AVAILABILITY_ZONE: ResourceDef = ResourceDef {
    member: "availability_zone",
    collection: "availability_zones",
    path: "availability_zones",
    label: "AvailabilityZone",
    not_found: "AvailabilityZoneNotFound",
    attrs: AZ_ATTRS,
    project: false,
    standard: false,
    tags: false,
};
