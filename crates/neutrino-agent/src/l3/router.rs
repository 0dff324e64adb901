//! A router's namespace and devices: the `qrouter-<id>` namespace, its
//! `qr-`/`qg-` devices plugged into the integration bridge, their addresses
//! and the routing table. Every function reads what exists and changes only
//! the difference, so it is safe to run again at any time.
//!
//! Plugging: a veth pair `tap<id>` (in the host's namespace, an OVS port on
//! br-int with os-vif's `external_ids`: `iface-id`, `iface-status`,
//! `attached-mac`) ↔ `qr-<id>` / `qg-<id>` (in the router namespace, with
//! the port's MAC). New ports start on the dead VLAN 4095 like Neutron's
//! interface driver does; the host's L2 agent sets the real tag when it wires
//! the port. A veth rather than an OVS internal port, because an internal
//! port of the userspace datapath cannot be moved to another namespace
//! reliably (ovs-vswitchd loses track of it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use super::error::Result;
use super::model::{DesiredRouter, Device, EXTERNAL_DEV_PREFIX, INTERNAL_DEV_PREFIX};
use crate::cmd::Cmd;
use crate::error::Error;
use crate::link::{delete_link, IpBatch};
use crate::netns::Netns;
use crate::ovsdb::{Client, Commit, Condition, InterfaceSpec, Operation, PortSpec};

/// Neutron's dead VLAN: ports wait there until the L2 agent wires them.
pub use crate::l2::local_vlan::DEAD_VLAN;
/// `external_ids` key naming the router that owns an OVS port (for stale-port cleanup).
pub const OWNER_KEY: &str = "neutrino-l3-router";

/// The sysctls of a router namespace.
pub const SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.arp_ignore=1",
    "net.ipv4.conf.all.arp_announce=2",
    "net.ipv4.conf.all.promote_secondaries=1",
    "net.ipv6.conf.all.forwarding=1",
];

/// A link inside a router namespace as `ip -j addr show` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NsLink {
    /// MAC address.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// Global addresses, `ip/len`.
    pub addrs: Vec<String>,
}

/// Parses `ip -j addr show`.
pub fn parse_links(json: &str) -> Result<BTreeMap<String, NsLink>> {
    let v: Value = serde_json::from_str(json.trim()).map_err(|_| Error::parse("ip -j addr", json))?;
    let mut out = BTreeMap::new();
    for l in v.as_array().into_iter().flatten() {
        let Some(name) = l.get("ifname").and_then(Value::as_str) else { continue };
        let addrs = l
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|a| a.get("scope").and_then(Value::as_str) == Some("global"))
            .filter_map(|a| Some(format!("{}/{}", a.get("local")?.as_str()?, a.get("prefixlen")?.as_u64()?)))
            .collect();
        out.insert(
            name.to_string(),
            NsLink {
                mac: l.get("address").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase(),
                mtu: l.get("mtu").and_then(Value::as_u64).and_then(|m| u32::try_from(m).ok()).unwrap_or(0),
                up: l
                    .get("flags")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP"))),
                addrs,
            },
        );
    }
    Ok(out)
}

/// The links of a namespace.
pub async fn read_links(ns: &Netns) -> Result<BTreeMap<String, NsLink>> {
    let out = Cmd::new("ip").args(["-n", ns.name(), "-j", "addr", "show"]).run().await?;
    parse_links(&out.stdout)
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelRoute {
    /// Destination (`default`, `10.0.0.0/24`, `10.0.0.1`).
    pub dst: String,
    /// Next hop, if any.
    pub gateway: Option<String>,
    /// Device.
    pub dev: String,
    /// `kernel` for connected routes, `boot` for ours.
    pub protocol: String,
    /// `link`, `global`, ...
    pub scope: String,
}

/// Parses `ip -j route show`.
pub fn parse_routes(json: &str) -> Result<Vec<KernelRoute>> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(json.trim()).map_err(|_| Error::parse("ip -j route", json))?;
    let s = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(KernelRoute {
                dst: s(r, "dst")?,
                gateway: s(r, "gateway"),
                dev: s(r, "dev").unwrap_or_default(),
                protocol: s(r, "protocol").unwrap_or_default(),
                scope: s(r, "scope").unwrap_or_else(|| "global".into()),
            })
        })
        .collect())
}

/// The routes of a namespace (IPv4, and IPv6 when asked).
pub async fn read_routes(ns: &Netns, v6: bool) -> Result<Vec<KernelRoute>> {
    let out = Cmd::new("ip").args(["-n", ns.name(), "-j", "route", "show"]).run().await?;
    let mut routes = parse_routes(&out.stdout)?;
    if v6 {
        let out = Cmd::new("ip").args(["-n", ns.name(), "-6", "-j", "route", "show"]).run().await?;
        routes.extend(parse_routes(&out.stdout)?);
    }
    Ok(routes)
}

/// Creates the namespace if needed; applies the router sysctls when it was
/// created or `force` (first sight of the router in this process).
pub async fn ensure_namespace(ns: &Netns, force: bool) -> Result<bool> {
    let existed = ns.exists();
    if !existed {
        Netns::create(ns.name()).await?;
    }
    if !existed || force {
        let mut argv = vec!["sysctl", "-q", "-w"];
        argv.extend(SYSCTLS.iter().copied());
        ns.exec(&argv).await?;
    }
    Ok(!existed)
}

/// Router devices (`qr-`/`qg-`) present in a namespace.
pub fn router_devices(links: &BTreeMap<String, NsLink>) -> Vec<String> {
    links.keys().filter(|n| n.starts_with(INTERNAL_DEV_PREFIX) || n.starts_with(EXTERNAL_DEV_PREFIX)).cloned().collect()
}

/// Where router ports are plugged: the host namespace and its OVS.
pub struct Plumbing<'a> {
    /// The namespace of the host's OVS and its ports (`None`: ours).
    pub host_netns: Option<&'a str>,
    /// The integration bridge.
    pub bridge: &'a str,
    /// The host's OVSDB.
    pub ovs: &'a Client,
    /// Switch off TX checksum offload on router devices (userspace datapath:
    /// it does not complete partial checksums).
    pub tx_offload_off: bool,
}

impl Plumbing<'_> {
    /// Plugs new devices: veth pairs, OVS ports (dead VLAN), offloads.
    pub async fn plug(&self, router_id: &str, ns: &Netns, devices: &[&Device]) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        // Bridge-side ends left over from an earlier life of the devices (one
        // forced batch: a missing link is the normal case, not an error).
        let mut c = Cmd::new("ip");
        if let Some(h) = self.host_netns {
            c = c.args(["-n", h]);
        }
        let dels: String = devices.iter().map(|d| format!("link del {}\n", d.tap)).collect();
        c.args(["-force", "-batch", "-"]).stdin(dels).output().await?;
        let mut b = IpBatch::new(self.host_netns);
        for d in devices {
            b.veth(&d.tap, &d.name, Some(ns.name()), Some(&d.mac), Some(d.mtu)).link_up(&d.tap);
        }
        b.run().await?;
        self.ensure_ovs_ports(router_id, devices).await?;
        if self.tx_offload_off && crate::cmd::which("ethtool") {
            for d in devices {
                let out = ns.output(&["ethtool", "-K", &d.name, "tx", "off"]).await?;
                if !out.success {
                    tracing::debug!(dev = %d.name, stderr = %out.stderr, "ethtool tx off failed");
                }
            }
        }
        tracing::debug!(router = router_id, devices = devices.len(), "router devices plugged");
        Ok(())
    }

    /// Adds the OVS ports of `devices` that are missing (existing ones, and
    /// the tags the L2 agent gave them, are left alone).
    pub async fn ensure_ovs_ports(&self, router_id: &str, devices: &[&Device]) -> Result<()> {
        if devices.is_empty() {
            return Ok(());
        }
        let ops: Vec<Operation> = devices
            .iter()
            .map(|d| Operation::select("Interface", vec![Condition::eq("name", d.tap.as_str())], &["name"]))
            .collect();
        let res = self.ovs.transact(&ops).await?;
        let mut missing = Vec::new();
        for (i, d) in devices.iter().enumerate() {
            if crate::ovsdb::client::rows_of(res.get(i))?.is_empty() {
                missing.push(*d);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let specs: Vec<PortSpec> = missing
            .iter()
            .map(|d| {
                let iface = InterfaceSpec::system(d.tap.as_str())
                    .external_id("iface-id", &d.port_id)
                    .external_id("iface-status", "active")
                    .external_id("attached-mac", &d.mac)
                    .external_id(OWNER_KEY, router_id);
                PortSpec::single(iface).tag(DEAD_VLAN)
            })
            .collect();
        self.ovs.add_ports(self.bridge, &specs, Commit::NoWait).await?;
        Ok(())
    }

    /// Unplugs devices by their namespace name: OVS ports, then the veth pairs.
    pub async fn unplug(&self, ns: &Netns, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let taps: Vec<String> = names.iter().filter_map(|n| super::model::tap_of(n)).collect();
        let refs: Vec<&str> = taps.iter().map(String::as_str).collect();
        self.ovs.del_ports(&refs, Commit::NoWait).await?;
        if ns.exists() {
            for n in names {
                delete_link(Some(ns.name()), n).await?;
            }
        }
        // The bridge side normally dies with its peer; make sure.
        for t in &taps {
            delete_link(self.host_netns, t).await?;
        }
        Ok(())
    }

    /// Removes OVS ports owned by routers for which `keep` says no.
    pub async fn remove_stale_ovs_ports(&self, keep: impl Fn(&str, &str) -> bool) -> Result<Vec<String>> {
        let mut stale = Vec::new();
        for i in self.ovs.list_interfaces().await? {
            if let Some(r) = i.external_ids.get(OWNER_KEY) {
                if !keep(r, &i.name) {
                    stale.push(i.name.clone());
                }
            }
        }
        if !stale.is_empty() {
            let refs: Vec<&str> = stale.iter().map(String::as_str).collect();
            self.ovs.del_ports(&refs, Commit::NoWait).await?;
            for t in &stale {
                delete_link(self.host_netns, t).await?;
            }
        }
        Ok(stale)
    }
}

/// The `ip` lines that make the links of `d` match (MAC, MTU, up, addresses).
/// Returns the lines and the addresses removed.
pub fn link_changes(d: &DesiredRouter, links: &BTreeMap<String, NsLink>) -> (IpBatch, Vec<String>) {
    let mut b = IpBatch::new(Some(&d.namespace));
    let mut removed = Vec::new();
    let wanted = d.addresses();
    for dev in d.devices() {
        let cur = links.get(&dev.name).cloned().unwrap_or_default();
        if cur.mac != dev.mac {
            b.set_mac(&dev.name, &dev.mac);
        }
        if cur.mtu != dev.mtu {
            b.set_mtu(&dev.name, dev.mtu);
        }
        if !cur.up && d.admin_up {
            b.link_up(&dev.name);
        } else if cur.up && !d.admin_up {
            b.link_down(&dev.name);
        }
        let want: BTreeSet<&String> = wanted.get(&dev.name).into_iter().flatten().collect();
        for a in &cur.addrs {
            if !want.contains(a) {
                b.line(format!("addr del {a} dev {}", dev.name));
                removed.push(a.clone());
            }
        }
        for a in want {
            if !cur.addrs.contains(a) {
                b.addr_replace(&dev.name, a);
            }
        }
    }
    (b, removed)
}

/// One route the router should have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WantedRoute {
    /// Destination (`default`, prefix or host).
    pub dst: String,
    /// Next hop (`None`: on-link through `dev`).
    pub via: Option<IpAddr>,
    /// Device, when it matters.
    pub dev: Option<String>,
}

/// The routes of the desired router: default route(s) via the external
/// gateway (with an on-link route when the gateway is outside its subnet) and
/// the extra routes.
pub fn wanted_routes(d: &DesiredRouter) -> Vec<WantedRoute> {
    let mut out = Vec::new();
    if !d.admin_up {
        return out;
    }
    if let Some(g) = &d.gateway {
        for gw in &g.onlink {
            out.push(WantedRoute { dst: gw.to_string(), via: None, dev: Some(g.device.name.clone()) });
        }
        for gw in &g.gateway_ips {
            out.push(WantedRoute { dst: "default".into(), via: Some(*gw), dev: Some(g.device.name.clone()) });
        }
    }
    for r in &d.routes {
        if r.destination == "default" && d.gateway.as_ref().is_some_and(|g| !g.gateway_ips.is_empty()) {
            // The gateway's default route wins (Neutron rejects such routes anyway).
            continue;
        }
        out.push(WantedRoute { dst: r.destination.clone(), via: Some(r.nexthop), dev: None });
    }
    out
}

/// The `ip` batch lines that make the routing table match: stale routes with a
/// next hop (or on-link routes we added) are deleted, wanted ones replaced.
pub fn route_changes(d: &DesiredRouter, current: &[KernelRoute]) -> Vec<String> {
    let wanted = wanted_routes(d);
    let mut b: Vec<String> = Vec::new();
    for r in current {
        if r.protocol == "kernel" {
            continue;
        }
        let keep = wanted.iter().any(|w| {
            w.dst == r.dst
                && w.via.map(|v| v.to_string()) == r.gateway
                && w.dev.as_ref().is_none_or(|dev| *dev == r.dev)
        });
        if !keep && (r.gateway.is_some() || r.scope == "link") {
            let mut l = format!("route del {}", r.dst);
            if let Some(g) = &r.gateway {
                l.push_str(&format!(" via {g}"));
            }
            if !r.dev.is_empty() {
                l.push_str(&format!(" dev {}", r.dev));
            }
            b.push(l);
        }
    }
    for w in &wanted {
        let present = current.iter().any(|r| {
            r.dst == w.dst
                && r.gateway == w.via.map(|v| v.to_string())
                && w.dev.as_ref().is_none_or(|dev| *dev == r.dev)
        });
        if present {
            continue;
        }
        let mut l = format!("route replace {}", w.dst);
        if let Some(v) = w.via {
            l.push_str(&format!(" via {v}"));
        }
        if let Some(dev) = &w.dev {
            l.push_str(&format!(" dev {dev}"));
        }
        if w.via.is_none() {
            l.push_str(" scope link");
        }
        b.push(l);
    }
    b
}

/// Applies route changes with `ip -force -batch`: every line is tried; a
/// route the kernel refuses (a next hop that just became unreachable) is
/// logged, not fatal, as Neutron ignores the exit code of its route commands.
pub async fn apply_routes(ns: &Netns, lines: &[String]) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let text = format!("{}\n", lines.join("\n"));
    let out = Cmd::new("ip").args(["-n", ns.name(), "-force", "-batch", "-"]).stdin(text).output().await?;
    if !out.success {
        tracing::warn!(netns = %ns.name(), stderr = %out.stderr, "some routes were refused");
    }
    Ok(())
}

/// Deletes a router namespace: unplugs its router devices, kills what still
/// runs inside (a late `arping`), deletes it.
pub async fn remove_namespace(p: &Plumbing<'_>, ns: &Netns) -> Result<()> {
    if !ns.exists() {
        return Ok(());
    }
    let links = read_links(ns).await.unwrap_or_default();
    p.unplug(ns, &router_devices(&links)).await?;
    for pid in ns.pids() {
        // SAFETY: kill(2) of a process living in the router namespace we delete.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    ns.delete().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::config::L3Config;
    use crate::l3::model::tests::router;

    #[test]
    fn parses_ip_json() {
        let links = parse_links(
            r#"[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP"],"mtu":65536,"address":"00:00:00:00:00:00",
                 "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},
                {"ifindex":5,"ifname":"qr-aaaaaaaaaaa","flags":["BROADCAST","UP"],"mtu":1450,"address":"FA:16:3E:00:01:01",
                 "addr_info":[{"family":"inet","local":"10.1.0.1","prefixlen":24,"scope":"global"},
                              {"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]"#,
        )
        .unwrap();
        let q = &links["qr-aaaaaaaaaaa"];
        assert_eq!(q.mac, "fa:16:3e:00:01:01");
        assert_eq!(q.addrs, vec!["10.1.0.1/24"]);
        assert!(q.up);
        assert!(links["lo"].addrs.is_empty());
        assert_eq!(router_devices(&links), vec!["qr-aaaaaaaaaaa"]);
        let routes = parse_routes(
            r#"[{"dst":"default","gateway":"203.0.113.1","dev":"qg-x","protocol":"boot","flags":[]},
                {"dst":"10.1.0.0/24","dev":"qr-a","protocol":"kernel","scope":"link","prefsrc":"10.1.0.1","flags":[]}]"#,
        )
        .unwrap();
        assert_eq!(routes[0].gateway.as_deref(), Some("203.0.113.1"));
        assert_eq!(routes[1].scope, "link");
    }

    #[test]
    fn converges_links_and_routes() {
        let d = DesiredRouter::from_info(&L3Config::new("h"), &router()).unwrap();
        let mut links = BTreeMap::new();
        links.insert(
            "qr-aaaaaaaaaaa".to_string(),
            NsLink { mac: "fa:16:3e:00:01:01".into(), mtu: 1450, up: true, addrs: vec!["10.1.0.1/24".into()] },
        );
        links.insert(
            "qg-ggggggggggg".to_string(),
            NsLink {
                mac: "fa:16:3e:00:00:01".into(),
                mtu: 1450,
                up: true,
                addrs: vec!["203.0.113.10/24".into(), "203.0.113.99/32".into()],
            },
        );
        let (b, removed) = link_changes(&d, &links);
        assert_eq!(removed, vec!["203.0.113.99/32"]);
        let text = format!("{b:?}");
        assert!(text.contains("addr del 203.0.113.99/32 dev qg-ggggggggggg"));
        assert!(text.contains("addr replace 203.0.113.50/32 dev qg-ggggggggggg"));
        assert!(text.contains("link set qr-bbbbbbbbbbb up"));
        assert!(!text.contains("qr-aaaaaaaaaaa"));

        let cur = vec![
            KernelRoute {
                dst: "default".into(),
                gateway: Some("203.0.113.1".into()),
                dev: "qg-ggggggggggg".into(),
                protocol: "boot".into(),
                scope: "global".into(),
            },
            KernelRoute {
                dst: "10.8.0.0/16".into(),
                gateway: Some("10.1.0.254".into()),
                dev: "qr-aaaaaaaaaaa".into(),
                protocol: "boot".into(),
                scope: "global".into(),
            },
        ];
        let text = format!("{:?}", route_changes(&d, &cur));
        assert!(text.contains("route del 10.8.0.0/16 via 10.1.0.254 dev qr-aaaaaaaaaaa"));
        assert!(text.contains("route replace 10.9.0.0/16 via 10.1.0.254"));
        assert!(!text.contains("route replace default"));
    }
}
