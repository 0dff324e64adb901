//! End-to-end: two simulated hypervisors wired like Neutron's OVS agent
//! (br-int with local VLANs, br-tun with key=flow tunnels and l2pop flows,
//! provider bridges with VLAN translation), VMs pinging across hosts, and
//! tenant isolation even with identical subnets.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neutrino_agent::bridges::TunBridgePorts;
use neutrino_agent::openflow::SyncScope;
use neutrino_agent::ovsdb::TunnelType;
use neutrino_agent::pipeline::{self, LocalNet, Segment, TunnelFdb, VmPort};
use neutrino_agent::simhost::{PlugKind, SimHost, SimNet, SimVm, VmSpec};

const COOKIE: u64 = 0x4e54_0000_0000_0001;

/// A VM to create: (name, network index, MAC, CIDR).
struct VmDef {
    name: &'static str,
    net: usize,
    mac: &'static str,
    cidr: &'static str,
}

async fn neigh_mac(vm: &SimVm, ip: &str) -> Option<String> {
    let out = vm.output(&["ip", "neigh", "show", ip]).await.ok()?;
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    words.iter().position(|w| *w == "lladdr").and_then(|i| words.get(i + 1)).map(|s| s.to_string())
}

async fn reach(vm: &SimVm, ip: &str) -> bool {
    vm.ping(ip, 2).await.unwrap()
}

/// Captures up to 6 packets on `dev` in `ns` matching `filter` while `vm` pings `ip`.
async fn capture(sim: &SimNet, dev: &str, filter: &str, vm: &SimVm, ip: &str) -> String {
    if !neutrino_agent::cmd::which("tcpdump") {
        return String::from("(tcpdump not installed)");
    }
    let child =
        sim.fabric().spawn(&["timeout", "4", "tcpdump", "-l", "-nn", "-e", "-c", "6", "-i", dev, filter]).unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = vm.ping(ip, 3).await;
    let out = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Plugs VMs on `h` with the given local VLANs and returns them with their br-int ports.
async fn plug_vms(h: &SimHost, defs: &[&VmDef], lvids: &[u16], mtu: u32) -> (Vec<SimVm>, Vec<VmPort>) {
    let specs: Vec<VmSpec> =
        defs.iter().map(|d| VmSpec::new(d.name, d.mac).cidr(d.cidr).mtu(mtu).tag(lvids[d.net])).collect();
    let vms = h.add_vms(&specs).await.unwrap();
    let mut ports = Vec::new();
    for (vm, d) in vms.iter().zip(defs) {
        let ofport = h.ovsdb().ofport(&vm.device).await.unwrap();
        ports.push(VmPort { ofport, mac: d.mac.to_string(), ips: vec![d.cidr.split('/').next().unwrap().to_string()] });
    }
    (vms, ports)
}

async fn tunnel_e2e(kind: TunnelType) {
    let started = Instant::now();
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let (a, b) = tokio::join!(sim.add_host("hostA"), sim.add_host("hostB"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let t_hosts = started.elapsed();

    // Tenant networks: both 10.0.0.0/24; local VLANs differ per host on purpose.
    let segids = [1001u32, 1002];
    let lvids_a = [1u16, 2];
    let lvids_b = [2u16, 1];
    let defs_a = [
        VmDef { name: "a1", net: 0, mac: "fa:16:3e:01:0a:01", cidr: "10.0.0.1/24" },
        VmDef { name: "a2", net: 1, mac: "fa:16:3e:02:0a:01", cidr: "10.0.0.1/24" }, // same IP, other tenant
    ];
    let defs_b = [
        VmDef { name: "b1", net: 0, mac: "fa:16:3e:01:0b:02", cidr: "10.0.0.2/24" },
        VmDef { name: "b2", net: 1, mac: "fa:16:3e:02:0b:03", cidr: "10.0.0.3/24" },
    ];
    let mtu = 1500 - kind.ipv4_overhead();

    let mut hosts = Vec::new();
    for (h, peer, lvids, defs, remote_defs) in
        [(&a, &b, &lvids_a, &defs_a, &defs_b), (&b, &a, &lvids_b, &defs_b, &defs_a)]
    {
        let db = h.ovsdb();
        let layout = h.layout();
        let TunBridgePorts { patch_int, .. } = layout.ensure_tun_bridge(db).await.unwrap();
        let tun = layout.ensure_tunnel_port(db, kind, h.underlay_ip(), peer.underlay_ip()).await.unwrap();
        let nets: Vec<LocalNet> = segids
            .iter()
            .zip(lvids.iter())
            .map(|(s, l)| LocalNet { lvid: *l, segment: Segment::Tunnel { kind, segid: *s } })
            .collect();
        // l2population: every remote VM's MAC is behind the tunnel to the peer.
        let mut fdb: BTreeMap<u16, TunnelFdb> = BTreeMap::new();
        for (i, l) in lvids.iter().enumerate() {
            let e = fdb.entry(*l).or_default();
            e.flood_ports.push(tun.ofport);
            for r in remote_defs.iter().filter(|r| r.net == i) {
                e.unicast.push((r.mac.to_string(), tun.ofport));
            }
        }
        let (vms, ports) = plug_vms(h, &defs.iter().collect::<Vec<_>>(), lvids, mtu).await;
        let mut int_flows = pipeline::int_bridge_flows(COOKIE, &nets, &BTreeMap::new());
        for p in &ports {
            int_flows.extend(pipeline::vm_port_flows(COOKIE, p));
        }
        let tun_flows = pipeline::tun_bridge_flows(COOKIE, patch_int, &[(kind, tun.ofport)], &nets, &fdb);
        let r1 = h.ofctl("br-int").sync(&int_flows, SyncScope::Cookie(COOKIE)).await.unwrap();
        let r2 = h.ofctl("br-tun").sync(&tun_flows, SyncScope::Cookie(COOKIE)).await.unwrap();
        assert_eq!((r1.added, r2.added), (int_flows.len(), tun_flows.len()));
        // converged: an agent restart re-syncing the same state changes nothing
        assert!(h.ofctl("br-int").sync(&int_flows, SyncScope::Cookie(COOKIE)).await.unwrap().is_noop());
        assert!(h.ofctl("br-tun").sync(&tun_flows, SyncScope::Cookie(COOKIE)).await.unwrap().is_noop());
        hosts.push(vms);
    }
    let t_wired = started.elapsed();
    let (va, vb) = (&hosts[0], &hosts[1]);

    // Same network across hosts.
    assert!(reach(&va[0], "10.0.0.2").await, "{kind}: a1 -> b1 (net1)");
    assert!(reach(&va[1], "10.0.0.3").await, "{kind}: a2 -> b2 (net2)");
    assert!(reach(&vb[0], "10.0.0.1").await, "{kind}: b1 -> 10.0.0.1 (net1)");
    assert!(reach(&vb[1], "10.0.0.1").await, "{kind}: b2 -> 10.0.0.1 (net2)");
    // 10.0.0.1 exists in both tenants: each reached its own.
    assert_eq!(neigh_mac(&vb[0], "10.0.0.1").await.as_deref(), Some("fa:16:3e:01:0a:01"));
    assert_eq!(neigh_mac(&vb[1], "10.0.0.1").await.as_deref(), Some("fa:16:3e:02:0a:01"));
    assert_eq!(neigh_mac(&va[0], "10.0.0.2").await.as_deref(), Some("fa:16:3e:01:0b:02"));
    // Isolation between the tenants (same subnet), across hosts and on one host.
    let (x1, x2, x3) = tokio::join!(reach(&va[0], "10.0.0.3"), reach(&va[1], "10.0.0.2"), reach(&vb[0], "10.0.0.3"));
    assert!(!x1, "{kind}: a1 (net1) must not reach b2 (net2)");
    assert!(!x2, "{kind}: a2 (net2) must not reach b1 (net1)");
    assert!(!x3, "{kind}: b1 (net1) must not reach b2 (net2) on the same host");

    // The wire carries the right tunnel key.
    let (filter, expect) = match kind {
        TunnelType::Vxlan => ("udp port 4789", "vni 1002"),
        TunnelType::Gre => ("ip proto 47", "key=0x3ea"),
        TunnelType::Geneve => ("udp port 6081", "vni 0x3ea"),
    };
    let cap = capture(&sim, "ul-h1", filter, &va[1], "10.0.0.3").await;
    if !cap.starts_with("(tcpdump") {
        assert!(cap.contains(expect), "{kind}: capture shows {expect}: {cap}");
    }
    eprintln!(
        "{kind}: 2 hosts in {t_hosts:?}, bridges+tunnels+4 VMs+flows in {:?}, total {:?}; wire: {}",
        t_wired - t_hosts,
        started.elapsed(),
        cap.lines().next().unwrap_or("")
    );

    // TCP works too (VM TX checksum offload is off).
    if neutrino_agent::cmd::which("socat") {
        let srv = vb[0].netns.spawn(&["timeout", "5", "socat", "-u", "TCP-LISTEN:8080,reuseaddr", "STDOUT"]).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = va[0]
            .output(&["sh", "-c", "echo hello-over-tunnel | socat -T2 - TCP:10.0.0.2:8080,connect-timeout=2"])
            .await
            .unwrap();
        let out = srv.wait_with_output().await.unwrap();
        assert!(sent.success, "{kind}: TCP client: {}", sent.stderr);
        assert!(String::from_utf8_lossy(&out.stdout).contains("hello-over-tunnel"), "{kind}: TCP payload arrived");
    }

    drop(hosts);
    drop((a, b));
    drop(sim);
    common::assert_swept(&prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vxlan_two_hosts_two_tenants() {
    require_sim!();
    tunnel_e2e(TunnelType::Vxlan).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gre_two_hosts_two_tenants() {
    require_sim!();
    tunnel_e2e(TunnelType::Gre).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geneve_two_hosts_two_tenants() {
    require_sim!();
    tunnel_e2e(TunnelType::Geneve).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_vlan_and_flat_with_vlan_translation() {
    require_sim!();
    let started = Instant::now();
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let (a, b) = tokio::join!(sim.add_host("hostA"), sim.add_host("hostB"));
    let (a, b) = (a.unwrap(), b.unwrap());

    let physnet = "physnet1";
    let segments = [
        Segment::Vlan { physnet: physnet.into(), vlan: 100 },
        Segment::Vlan { physnet: physnet.into(), vlan: 200 },
        Segment::Flat { physnet: physnet.into() },
    ];
    let lvids_a = [1u16, 2, 3];
    let lvids_b = [3u16, 1, 2]; // different local tags on purpose: translation is per host
    let defs_a = [
        VmDef { name: "a100", net: 0, mac: "fa:16:3e:64:0a:01", cidr: "10.1.0.1/24" },
        VmDef { name: "a200", net: 1, mac: "fa:16:3e:c8:0a:01", cidr: "10.1.0.1/24" },
        VmDef { name: "aflat", net: 2, mac: "fa:16:3e:ff:0a:01", cidr: "10.2.0.1/24" },
    ];
    let defs_b = [
        VmDef { name: "b100", net: 0, mac: "fa:16:3e:64:0b:02", cidr: "10.1.0.2/24" },
        VmDef { name: "b200", net: 1, mac: "fa:16:3e:c8:0b:03", cidr: "10.1.0.3/24" },
        VmDef { name: "bflat", net: 2, mac: "fa:16:3e:ff:0b:02", cidr: "10.2.0.2/24" },
    ];
    let mut hosts = Vec::new();
    for (h, lvids, defs) in [(&a, &lvids_a, &defs_a), (&b, &lvids_b, &defs_b)] {
        let db = h.ovsdb();
        let nic = sim.connect_physnet(h, physnet).await.unwrap();
        let pb = h.layout().ensure_provider_bridge(db, physnet, "br-physnet1", Some(&nic)).await.unwrap();
        assert_eq!((pb.int_patch.as_str(), pb.phy_patch.as_str()), ("int-br-physnet1", "phy-br-physnet1"));
        let nets: Vec<LocalNet> =
            segments.iter().zip(lvids.iter()).map(|(s, l)| LocalNet { lvid: *l, segment: s.clone() }).collect();
        let (vms, ports) = plug_vms(h, &defs.iter().collect::<Vec<_>>(), lvids, 1500).await;
        let mut phys = BTreeMap::new();
        phys.insert(physnet.to_string(), pb.int_ofport);
        let mut int_flows = pipeline::int_bridge_flows(COOKIE, &nets, &phys);
        for p in &ports {
            int_flows.extend(pipeline::vm_port_flows(COOKIE, p));
        }
        let phys_flows = pipeline::phys_bridge_flows(COOKIE, physnet, pb.phy_ofport, &nets);
        h.ofctl("br-int").sync(&int_flows, SyncScope::Cookie(COOKIE)).await.unwrap();
        h.ofctl("br-physnet1").sync(&phys_flows, SyncScope::Cookie(COOKIE)).await.unwrap();
        assert!(h.ofctl("br-physnet1").sync(&phys_flows, SyncScope::Cookie(COOKIE)).await.unwrap().is_noop());
        hosts.push(vms);
    }
    let (va, vb) = (&hosts[0], &hosts[1]);
    assert!(reach(&va[0], "10.1.0.2").await, "VLAN 100: a100 -> b100");
    assert!(reach(&va[1], "10.1.0.3").await, "VLAN 200: a200 -> b200");
    assert!(reach(&va[2], "10.2.0.2").await, "flat: aflat -> bflat");
    assert!(reach(&vb[0], "10.1.0.1").await, "VLAN 100: b100 -> 10.1.0.1");
    assert!(reach(&vb[1], "10.1.0.1").await, "VLAN 200: b200 -> 10.1.0.1");
    assert_eq!(neigh_mac(&vb[0], "10.1.0.1").await.as_deref(), Some("fa:16:3e:64:0a:01"));
    assert_eq!(neigh_mac(&vb[1], "10.1.0.1").await.as_deref(), Some("fa:16:3e:c8:0a:01"));
    let (x1, x2) = tokio::join!(reach(&va[0], "10.1.0.3"), reach(&va[1], "10.1.0.2"));
    assert!(!x1, "VLAN 100 must not reach VLAN 200");
    assert!(!x2, "VLAN 200 must not reach VLAN 100");

    // The physical network sees provider VLAN 100 (not the local tags) and untagged flat traffic.
    let cap = capture(&sim, "pn0-h1", "vlan 100 and icmp", &va[0], "10.1.0.2").await;
    if !cap.starts_with("(tcpdump") {
        assert!(cap.contains("vlan 100"), "wire shows provider VLAN 100: {cap}");
        let cap = capture(&sim, "pn0-h1", "icmp and not vlan", &va[2], "10.2.0.2").await;
        assert!(cap.contains("10.2.0.1 > 10.2.0.2"), "flat traffic untagged on the wire: {cap}");
    }
    eprintln!("provider flat+VLAN e2e in {:?}; wire: {}", started.elapsed(), cap.lines().next().unwrap_or(""));

    drop(hosts);
    drop((a, b));
    drop(sim);
    common::assert_swept(&prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_plugged_as_internal_port_talks_to_veth_vm() {
    require_sim!();
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let h = sim.add_host("h1").await.unwrap();
    h.layout().ensure_int_bridge(h.ovsdb()).await.unwrap();
    let nets = [LocalNet { lvid: 3, segment: Segment::Flat { physnet: "none".into() } }];
    let flows = pipeline::int_bridge_flows(COOKIE, &nets, &BTreeMap::new());
    h.ofctl("br-int").sync(&flows, SyncScope::Cookie(COOKIE)).await.unwrap();
    let vms = h
        .add_vms(&[
            VmSpec::new("veth", "fa:16:3e:10:00:01").cidr("10.3.0.1/24").tag(3),
            VmSpec::new("int", "fa:16:3e:10:00:02").cidr("10.3.0.2/24").tag(3).plug(PlugKind::Internal),
        ])
        .await
        .unwrap();
    assert_eq!(vms[1].ifname, vms[1].device, "internal port keeps its OVS name inside the VM");
    let iface = h.ovsdb().find_interface(&vms[1].device).await.unwrap().unwrap();
    assert_eq!(iface.kind, neutrino_agent::ovsdb::InterfaceType::Internal);
    assert_eq!(iface.external_ids.get("attached-mac").map(String::as_str), Some("fa:16:3e:10:00:02"));
    assert!(reach(&vms[0], "10.3.0.2").await, "veth VM -> internal-port VM");
    assert!(reach(&vms[1], "10.3.0.1").await, "internal-port VM -> veth VM");
    assert_eq!(neigh_mac(&vms[0], "10.3.0.2").await.as_deref(), Some("fa:16:3e:10:00:02"));
    h.remove_vm(&vms[0]).await.unwrap();
    assert!(!vms[0].netns.exists());
    assert!(h.ovsdb().find_port(&vms[0].device).await.unwrap().is_none());
    drop(vms);
    drop(h);
    drop(sim);
    common::assert_swept(&prefix);
}
