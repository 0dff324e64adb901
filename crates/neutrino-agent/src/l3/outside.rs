//! "The outside world" of a simulation: a namespace plugged into the
//! physical network switch (`sw-<physnet>` in the fabric) that carries the
//! flat external network, holding the external network's gateway address
//! (203.0.113.1 by default). For SNAT and floating IP tests it is "the
//! internet"; nothing leaves the simulation.
//!
//! ```text
//!  <prefix>fabric:  sw-<physnet> ── o-<physnet> ═veth═ eth0 (203.0.113.1/24) : neutrino-outside
//!                        └── pn*-h* ═ ph-<physnet> ─ br-<physnet> ─ br-int (qg- ports) : network node
//! ```

use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::link::IpBatch;
use crate::netns::Netns;
use crate::simhost::SimNet;

/// The namespace name `neutrino up --sim-hosts` uses.
pub const DEFAULT_NAMESPACE: &str = "neutrino-outside";
/// The physical network of the external network.
pub const DEFAULT_PHYSNET: &str = "public";
/// The external subnet.
pub const PUBLIC_CIDR: &str = "203.0.113.0/24";
/// The external network's gateway, held by the outside namespace.
pub const PUBLIC_GATEWAY: &str = "203.0.113.1";

/// The outside namespace; removed by [`OutsideWorld::remove`] or on drop.
#[derive(Debug)]
pub struct OutsideWorld {
    netns: Netns,
    address: String,
    removed: bool,
}

/// The fabric-side device of the outside namespace (≤ 15 characters).
fn fabric_end(physnet: &str) -> String {
    format!("o-{physnet}")
}

impl OutsideWorld {
    /// Creates namespace `namespace` (replacing a leftover of that name) with
    /// `eth0` = `cidr` (e.g. `203.0.113.1/24`), plugged into the switch of
    /// `physnet` in `sim`'s fabric. The switch exists once a host was
    /// connected to the physnet ([`SimNet::connect_physnet`]).
    pub async fn attach(sim: &SimNet, physnet: &str, namespace: &str, cidr: &str) -> Result<OutsideWorld> {
        let switch = format!("sw-{physnet}");
        let fabric = sim.fabric();
        if crate::link::link(Some(fabric.name()), &switch).await?.is_none() {
            return Err(Error::NotFound {
                kind: "physical network switch (connect a host to the physnet first)",
                name: switch,
            });
        }
        let end = fabric_end(physnet);
        crate::link::check_ifname(&end)?;
        let ns = Netns::new(namespace);
        if ns.exists() {
            tracing::warn!(netns = namespace, "replacing a leftover outside namespace");
            kill_all(&ns);
            ns.delete().await?;
        }
        crate::link::delete_link(Some(fabric.name()), &end).await?;
        let ns = Netns::create(namespace).await?;
        let mut b = fabric.ip();
        b.veth(&end, "eth0", Some(ns.name()), None, None).set_master(&end, &switch).link_up(&end);
        if let Err(e) = b.run().await {
            let _ = ns.delete().await;
            return Err(e);
        }
        let mut b = IpBatch::new(Some(ns.name()));
        b.link_up("eth0").addr_replace("eth0", cidr);
        b.run().await?;
        if crate::cmd::which("ethtool") {
            // The simulated hosts' userspace datapath does not complete partial checksums.
            let _ = ns.output(&["ethtool", "-K", "eth0", "tx", "off"]).await?;
        }
        let address = cidr.split('/').next().unwrap_or(cidr).to_string();
        tracing::info!(netns = namespace, %address, physnet, "outside world attached");
        Ok(OutsideWorld { netns: ns, address, removed: false })
    }

    /// The namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Its address (without prefix length).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Pings `ip` from the outside `count` times (0.2 s apart, 1 s timeout); true if any reply came.
    pub async fn ping(&self, ip: &str, count: u32) -> Result<bool> {
        let c = count.to_string();
        Ok(self.netns.output(&["ping", "-n", "-q", "-c", &c, "-i", "0.2", "-W", "1", ip]).await?.success)
    }

    /// Deletes the namespace (its veth goes with it).
    pub async fn remove(mut self) -> Result<()> {
        self.removed = true;
        kill_all(&self.netns);
        self.netns.delete().await
    }
}

fn kill_all(ns: &Netns) {
    for pid in ns.pids() {
        // SAFETY: kill(2) of a process living in the namespace we remove.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

impl Drop for OutsideWorld {
    fn drop(&mut self) {
        if self.removed || !self.netns.exists() {
            return;
        }
        kill_all(&self.netns);
        if let Err(e) = Cmd::new("ip").args(["netns", "del", self.netns.name()]).run_blocking() {
            tracing::warn!(netns = %self.netns.name(), error = %e, "removing the outside namespace failed");
        }
    }
}
