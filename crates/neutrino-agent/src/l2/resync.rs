//! Full resync: read everything the host has (OVSDB) and everything the
//! server says about it (ports on the host, their details, peers, tunnels,
//! security groups), rebuild the model — keeping the local VLANs the ports
//! already carry — and converge every bridge. Flows that are already right
//! are not touched, so a restarted agent does not interrupt traffic.

use std::collections::BTreeSet;

use crate::openflow::Ofctl;

use super::agent::{Agent, TunBridge};
use super::error::L2Result;
use super::flowsync::BridgeFlows;
use super::local_vlan::{DEAD_VLAN, MAX_VLAN};
use super::provider::Provider;
use super::tunnels;
use super::wiring::Work;

impl Agent {
    /// Ensures br-int, br-tun (when tunnelling) and the provider bridges,
    /// with their patch ports. Idempotent; existing flows are kept.
    pub(crate) async fn setup_bridges(&mut self) -> L2Result<()> {
        let layout = self.layout();
        layout.ensure_int_bridge(&self.db).await?;
        if self.cfg.tunneling() {
            let ports = layout.ensure_tun_bridge(&self.db).await?;
            let ofctl = Ofctl::for_bridge(&self.cfg.ovs_rundir, &self.cfg.tunnel_bridge);
            match &mut self.tun {
                Some(t) => {
                    t.patch_int = ports.patch_int;
                    t.patch_tun = ports.patch_tun;
                }
                None => {
                    self.tun = Some(TunBridge {
                        flows: BridgeFlows::new(&self.cfg.tunnel_bridge, ofctl),
                        patch_int: ports.patch_int,
                        patch_tun: ports.patch_tun,
                    })
                }
            }
        }
        for (physnet, bridge) in &self.cfg.bridge_mappings {
            let pb = layout.ensure_provider_bridge(&self.db, physnet, bridge, None).await?;
            match self.providers.get_mut(physnet) {
                Some(p) => {
                    p.int_ofport = pb.int_ofport;
                    p.phy_ofport = pb.phy_ofport;
                }
                None => {
                    let flows = BridgeFlows::new(bridge, Ofctl::for_bridge(&self.cfg.ovs_rundir, bridge));
                    self.providers.insert(
                        physnet.clone(),
                        Provider {
                            physnet: physnet.clone(),
                            int_ofport: pb.int_ofport,
                            phy_ofport: pb.phy_ofport,
                            flows,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// The full resync.
    pub(crate) async fn resync(&mut self) -> L2Result<()> {
        let started = std::time::Instant::now();
        self.setup_bridges().await?;
        // What OVS has: br-int ports with their tags; tunnel ports on br-tun.
        let int_ports = self.db.list_ports(&self.cfg.integration_bridge).await?;
        self.tags.clear();
        for p in &int_ports {
            let net = p.other_config.get("net_uuid").cloned().unwrap_or_default();
            if let Some(tag) = p.tag {
                if !net.is_empty() && (1..=MAX_VLAN).contains(&tag) && self.vlans.get(&net).is_none() {
                    if self.vlans.recover(&net, tag) {
                        tracing::info!(network = %net, lvid = tag, "local VLAN recovered");
                    } else {
                        tracing::warn!(network = %net, lvid = tag, port = %p.name, "conflicting local VLAN on a port");
                    }
                }
                if tag == DEAD_VLAN || !net.is_empty() {
                    self.tags.insert(p.name.clone(), (tag, if tag == DEAD_VLAN { String::new() } else { net }));
                }
            }
        }
        let on_int: BTreeSet<&str> = int_ports.iter().map(|p| p.name.as_str()).collect();
        let present: Vec<String> = self
            .port_iface
            .iter()
            .filter(|(_, iface)| on_int.contains(iface.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        self.tunnels.clear();
        if self.tun.is_some() {
            let on_tun: BTreeSet<String> =
                self.db.list_ports(&self.cfg.tunnel_bridge).await?.into_iter().map(|p| p.name).collect();
            for (name, i) in &self.tunnel_ifaces {
                if let (true, Some(key), Some(of)) =
                    (on_tun.contains(name), tunnels::parse_tunnel_iface(i), i.valid_ofport())
                {
                    if Some(key.1) != self.cfg.local_ip && crate::bridges::tunnel_port_name(key.0, key.1) == *name {
                        self.tunnels.insert(key, of);
                    }
                }
            }
        }
        // What the server says.
        let on_host = self.plugin.ports_on_host().await?;
        let (details, failed) = self.plugin.devices_details(&present, self.cfg.device_batch).await?;
        if let (Some(ip), Some(_)) = (self.cfg.local_ip, &self.tun) {
            let types: Vec<&str> = self.cfg.tunnel_types.iter().map(|t| t.as_str()).collect();
            let others = self.plugin.tunnel_sync(&ip.to_string(), &types).await?;
            tracing::debug!(endpoints = others.len(), "tunnel endpoints known to the server");
        }
        // Rebuild the model (local VLANs are kept in `vlans`).
        let mut w = Work::default();
        self.ports.clear();
        self.nets.clear();
        for id in failed {
            self.kill(&id, &mut w);
        }
        for d in details {
            self.apply_details(d, &mut w);
        }
        let stale_vlans: Vec<String> =
            self.vlans.iter().filter(|(n, _)| !self.nets.contains_key(*n)).map(|(n, _)| n.to_string()).collect();
        for n in stale_vlans {
            self.vlans.release(&n);
        }
        let nets: BTreeSet<String> = self.nets.keys().cloned().collect();
        self.refresh_peers(&nets, &mut w).await?;
        w.groups_changed = true;
        self.refresh_groups(&BTreeSet::new(), &mut w).await?;
        let stale = self.ensure_tunnels(&mut w).await?;
        let tags = std::mem::take(&mut w.tags);
        self.write_tags(&tags).await?;
        self.converge(None).await?;
        // Tunnel ports of earlier runs that no network needs any more.
        let mut stale = stale;
        for (name, i) in &self.tunnel_ifaces {
            if let Some(key) = tunnels::parse_tunnel_iface(i) {
                if !self.tunnels.contains_key(&key)
                    && crate::bridges::tunnel_port_name(key.0, key.1) == *name
                    && !stale.contains(&key)
                {
                    stale.push(key);
                }
            }
        }
        self.remove_tunnels(&stale).await?;
        // Everything wired is up; ports bound here but not plugged are down.
        w.up = self.ports.keys().cloned().collect();
        w.down.extend(on_host.into_iter().map(|p| p.id).filter(|id| !self.ports.contains_key(id)));
        self.report_devices(&w).await?;
        tracing::info!(
            ports = self.ports.len(),
            networks = self.nets.len(),
            tunnels = self.tunnels.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "full resync done"
        );
        Ok(())
    }
}
