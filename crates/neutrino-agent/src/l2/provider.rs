//! Provider bridges (`bridge_mappings`): one OVS bridge per physical network,
//! patched to br-int (`int-<bridge>` ↔ `phy-<bridge>`), translating local
//! VLANs to provider VLANs (or untagged frames, for flat networks) on the way
//! out; br-int translates back on the way in (see [`super::int_bridge`]).
//!
//! | table | priority | match | actions | owner |
//! |---|---|---|---|---|
//! | 0 | 4 | `in_port=phy-br-X,dl_vlan=<lvid>` | `mod_vlan_vid:<vid>,NORMAL` (VLAN) or `strip_vlan,NORMAL` (flat) | network |
//! | 0 | 2 | `in_port=phy-br-X` | drop | base |
//! | 0 | 0 | | `NORMAL` | base |

use crate::openflow::{Action, Flow, Match};

use super::cookies::Owner;
use super::flowsync::BridgeFlows;
use super::model::{Net, NetSegment};

/// A provider bridge of the agent.
#[derive(Debug)]
pub struct Provider {
    /// Physical network.
    pub physnet: String,
    /// `int-br-X` on br-int.
    pub int_ofport: u32,
    /// `phy-br-X` on the provider bridge.
    pub phy_ofport: u32,
    /// The bridge's flows.
    pub flows: BridgeFlows,
}

/// The fixed flows of a provider bridge.
pub fn base_flows(phy_ofport: u32) -> Vec<Flow> {
    let c = Owner::Base.cookie();
    vec![
        Flow::new(0, 2).cookie(c).matching(Match::any().in_port(phy_ofport)),
        Flow::new(0, 0).cookie(c).action(Action::Normal),
    ]
}

/// A network's flow on the provider bridge of `physnet`.
pub fn network_flows(net: &Net, physnet: &str, phy_ofport: u32) -> Vec<Flow> {
    let translate = match &net.segment {
        NetSegment::Vlan { physnet: p, vid } if p == physnet => Action::ModVlanVid(*vid),
        NetSegment::Flat { physnet: p } if p == physnet => Action::StripVlan,
        _ => return Vec::new(),
    };
    vec![Flow::new(0, 4)
        .cookie(Owner::Network(net.lvid).cookie())
        .matching(Match::any().in_port(phy_ofport).dl_vlan(net.lvid))
        .action(translate)
        .action(Action::Normal)]
}
