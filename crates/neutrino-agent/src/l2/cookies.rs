//! Flow cookies: which object of the agent owns a flow.
//!
//! ```text
//!  63            32 31     24 23                0
//! +----------------+---------+------------------+
//! |  "NTL2" (tag)  |  kind   |  id              |
//! +----------------+---------+------------------+
//! ```
//!
//! Every flow the agent installs carries its tag, so a full resync owns
//! exactly `cookie=TAG/TAG_MASK` and never touches other controllers' flows.
//! The kind and id name the owner (the bridge base flows, one network by its
//! local VLAN, one port or tunnel by its OpenFlow port), so a change converges
//! only the flows of the objects it touched — and a restarted agent, which
//! computes the same cookies from the same OVS state, leaves correct flows
//! (and their counters) alone.

/// The agent's tag in the upper 32 bits ("NTL2").
pub const TAG: u64 = 0x4e54_4c32_0000_0000;
/// The mask selecting the tag.
pub const TAG_MASK: u64 = 0xffff_ffff_0000_0000;

/// What owns a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// The bridge's fixed flows.
    Base,
    /// A network, by its local VLAN.
    Network(u16),
    /// A port on br-int, by its OpenFlow port number.
    Port(u32),
    /// A tunnel port on br-tun, by its OpenFlow port number.
    Tunnel(u32),
    /// Security-group flows shared by the ports of one network (by local VLAN).
    Firewall(u16),
}

impl Owner {
    /// The cookie of the owner's flows.
    pub fn cookie(self) -> u64 {
        let (kind, id): (u64, u64) = match self {
            Owner::Base => (0, 0),
            Owner::Network(v) => (1, u64::from(v)),
            Owner::Port(p) => (2, u64::from(p)),
            Owner::Tunnel(p) => (3, u64::from(p)),
            Owner::Firewall(v) => (4, u64::from(v)),
        };
        TAG | (kind << 24) | (id & 0xff_ffff)
    }

    /// The owner of a cookie, if it is one of the agent's.
    pub fn of_cookie(c: u64) -> Option<Owner> {
        if c & TAG_MASK != TAG {
            return None;
        }
        let id = c & 0xff_ffff;
        Some(match (c >> 24) & 0xff {
            0 => Owner::Base,
            1 => Owner::Network(u16::try_from(id).ok()?),
            2 => Owner::Port(u32::try_from(id).ok()?),
            3 => Owner::Tunnel(u32::try_from(id).ok()?),
            4 => Owner::Firewall(u16::try_from(id).ok()?),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        for o in [Owner::Base, Owner::Network(4094), Owner::Port(65279), Owner::Tunnel(3), Owner::Firewall(7)] {
            assert_eq!(Owner::of_cookie(o.cookie()), Some(o));
            assert_eq!(o.cookie() & TAG_MASK, TAG);
        }
        assert_eq!(Owner::of_cookie(0x1234), None);
        assert_ne!(Owner::Network(5).cookie(), Owner::Port(5).cookie());
    }
}
