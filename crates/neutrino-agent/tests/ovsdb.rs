//! OVSDB client against a private ovsdb-server/ovs-vswitchd in a simulated host.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neutrino_agent::ovsdb::{
    BridgeSpec, Commit, DatapathType, FailMode, InterfaceEvent, InterfaceMonitor, InterfaceSpec, InterfaceType,
    MonitorMethod, PortSpec, TunnelType,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridges_ports_interfaces_roundtrip() {
    require_sim!();
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let h = sim.add_host("h1").await.unwrap();
    let db = h.ovsdb();

    let spec = BridgeSpec::new("br-test")
        .datapath(DatapathType::Netdev)
        .fail_mode(FailMode::Secure)
        .protocols(&["OpenFlow10", "OpenFlow13"])
        .other_config("mac-table-size", "5000")
        .external_id("owner", "neutrino-test");
    let uuid = db.add_bridge(&spec, Commit::default()).await.unwrap();
    let b = db.find_bridge("br-test").await.unwrap().expect("bridge exists");
    assert_eq!(b.uuid, uuid);
    assert_eq!(b.datapath_type, "netdev");
    assert_eq!(b.fail_mode.as_deref(), Some("secure"));
    assert_eq!(b.protocols, vec!["OpenFlow10".to_string(), "OpenFlow13".to_string()]);
    assert_eq!(b.other_config.get("mac-table-size").map(String::as_str), Some("5000"));
    assert_eq!(b.external_ids.get("owner").map(String::as_str), Some("neutrino-test"));
    // idempotent (--may-exist), settings updated
    let uuid2 = db.add_bridge(&spec.clone().other_config("mac-table-size", "6000"), Commit::default()).await.unwrap();
    assert_eq!(uuid, uuid2);
    let b = db.find_bridge("br-test").await.unwrap().unwrap();
    assert_eq!(b.other_config.get("mac-table-size").map(String::as_str), Some("6000"));
    assert_eq!(b.external_ids.get("owner").map(String::as_str), Some("neutrino-test"), "other keys kept");

    db.add_bridge(&BridgeSpec::new("br-peer").datapath(DatapathType::Netdev), Commit::NoWait).await.unwrap();
    let ports = vec![
        PortSpec::single(InterfaceSpec::internal("int0")).tag(5),
        PortSpec::single(InterfaceSpec::patch("patch-a", "patch-b")),
        PortSpec::single(InterfaceSpec::tunnel("vxlan-c6336402", TunnelType::Vxlan, "198.51.100.1", "198.51.100.2")),
        PortSpec::single(InterfaceSpec::tunnel("gre-c6336402", TunnelType::Gre, "198.51.100.1", "198.51.100.2")),
        PortSpec::single(InterfaceSpec::tunnel("geneve-c6336402", TunnelType::Geneve, "198.51.100.1", "198.51.100.2")),
        PortSpec::single(InterfaceSpec::vm_port(
            "tapvm1",
            InterfaceType::Internal,
            "11111111-2222-3333-4444-555555555555",
            "fa:16:3e:aa:bb:cc",
            "99999999-8888-7777-6666-555555555555",
        )),
    ];
    let t = Instant::now();
    let port_uuids = db.add_ports("br-test", &ports, Commit::default()).await.unwrap();
    eprintln!("6 ports in one transaction (waiting for ovs-vswitchd): {:?}", t.elapsed());
    assert_eq!(port_uuids.len(), 6);
    db.add_port("br-peer", &PortSpec::single(InterfaceSpec::patch("patch-b", "patch-a")), Commit::default())
        .await
        .unwrap();

    let names: Vec<String> = db.list_ports("br-test").await.unwrap().into_iter().map(|p| p.name).collect();
    for n in ["br-test", "int0", "patch-a", "vxlan-c6336402", "gre-c6336402", "geneve-c6336402", "tapvm1"] {
        assert!(names.contains(&n.to_string()), "{n} missing in {names:?}");
    }
    assert_eq!(db.find_port("int0").await.unwrap().unwrap().tag, Some(5));

    let vx = db.find_interface("vxlan-c6336402").await.unwrap().unwrap();
    assert_eq!(vx.kind, InterfaceType::Vxlan);
    assert_eq!(vx.options.get("key").map(String::as_str), Some("flow"));
    assert_eq!(vx.options.get("remote_ip").map(String::as_str), Some("198.51.100.2"));
    assert!(vx.valid_ofport().is_some(), "tunnel got an ofport: {vx:?}");
    for n in ["gre-c6336402", "geneve-c6336402", "patch-b", "int0", "tapvm1"] {
        let i = db.find_interface(n).await.unwrap().unwrap();
        assert!(i.valid_ofport().is_some(), "{n} has no ofport: {i:?}");
        assert!(i.error.is_none(), "{n}: {:?}", i.error);
    }
    // patch-a was added before its peer existed: it has its ofport, but
    // ovs-vswitchd may keep the "no usable peer" error it wrote then (it
    // rewrites the column only when the interface itself is reconfigured).
    let pa = db.find_interface("patch-a").await.unwrap().unwrap();
    assert!(pa.valid_ofport().is_some(), "patch-a has no ofport: {pa:?}");
    let vm = db.find_interface("tapvm1").await.unwrap().unwrap();
    assert_eq!(vm.iface_id(), Some("11111111-2222-3333-4444-555555555555"));
    assert_eq!(vm.external_ids.get("attached-mac").map(String::as_str), Some("fa:16:3e:aa:bb:cc"));
    assert_eq!(vm.external_ids.get("iface-status").map(String::as_str), Some("active"));
    assert_eq!(vm.external_ids.get("vm-uuid").map(String::as_str), Some("99999999-8888-7777-6666-555555555555"));

    // cross-check with ovs-vsctl
    let out = h.ovs().vsctl(&["get", "Interface", "gre-c6336402", "options:key", "type"]).await.unwrap();
    assert_eq!(out.stdout.split_whitespace().collect::<Vec<_>>(), vec!["flow", "gre"]);
    let out = h.ovs().vsctl(&["get", "Interface", "patch-a", "options:peer"]).await.unwrap();
    assert_eq!(out.stdout.trim(), "patch-b");

    // root row
    let mut ids = BTreeMap::new();
    ids.insert("ovn-encap-ip".to_string(), "198.51.100.1".to_string());
    db.set_ovs_external_ids(&ids).await.unwrap();
    let mut oc = BTreeMap::new();
    oc.insert("vlan-limit".to_string(), "2".to_string());
    db.set_ovs_other_config(&oc).await.unwrap();
    let got = db.ovs_external_ids().await.unwrap();
    assert_eq!(got.get("ovn-encap-ip").map(String::as_str), Some("198.51.100.1"));
    assert_eq!(got.get("hostname").map(String::as_str), Some("h1"), "existing keys kept");
    let out = h.ovs().vsctl(&["get", "Open_vSwitch", ".", "other_config:vlan-limit"]).await.unwrap();
    assert_eq!(out.stdout.trim().trim_matches('"'), "2");

    // interface external_ids and tag updates
    let mut ext = BTreeMap::new();
    ext.insert("iface-status".to_string(), "inactive".to_string());
    db.set_interface_external_ids("tapvm1", &ext).await.unwrap();
    let vm = db.find_interface("tapvm1").await.unwrap().unwrap();
    assert_eq!(vm.external_ids.get("iface-status").map(String::as_str), Some("inactive"));
    assert!(vm.iface_id().is_some());
    db.set_port_tag("int0", Some(7)).await.unwrap();
    assert_eq!(db.find_port("int0").await.unwrap().unwrap().tag, Some(7));
    db.set_port_tag("int0", None).await.unwrap();
    assert_eq!(db.find_port("int0").await.unwrap().unwrap().tag, None);

    // may-exist port: updates options in place
    let changed =
        PortSpec::single(InterfaceSpec::tunnel("vxlan-c6336402", TunnelType::Vxlan, "198.51.100.1", "198.51.100.9"));
    db.add_port("br-test", &changed, Commit::default()).await.unwrap();
    let vx2 = db.find_interface("vxlan-c6336402").await.unwrap().unwrap();
    assert_eq!(vx2.options.get("remote_ip").map(String::as_str), Some("198.51.100.9"));
    assert_eq!(vx2.uuid, vx.uuid);
    // a port of that name on another bridge is refused
    assert!(db.add_port("br-peer", &PortSpec::single(InterfaceSpec::internal("int0")), Commit::NoWait).await.is_err());

    // deletion
    assert!(db.del_port("int0", Commit::default()).await.unwrap());
    assert!(!db.del_port("int0", Commit::default()).await.unwrap(), "second delete is a no-op");
    assert!(db.find_port("int0").await.unwrap().is_none());
    assert!(db.find_interface("int0").await.unwrap().is_none(), "interface garbage-collected");
    assert!(db.del_bridge("br-test", Commit::default()).await.unwrap());
    assert!(db.find_bridge("br-test").await.unwrap().is_none());
    assert!(db.find_interface("gre-c6336402").await.unwrap().is_none());
    assert!(!db.del_bridge("br-test", Commit::default()).await.unwrap());

    drop(h);
    drop(sim);
    common::assert_swept(&prefix);
}

async fn monitor_add_delete(method: MonitorMethod) {
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let h = sim.add_host("h1").await.unwrap();
    let db = h.ovsdb();
    h.layout().ensure_int_bridge(db).await.unwrap();

    let mut mon = InterfaceMonitor::start_with(h.endpoint(), method, None).await.unwrap();
    let mut initial = Vec::new();
    loop {
        match mon.next_timeout(Duration::from_secs(5)).await.expect("initial snapshot") {
            InterfaceEvent::Added(i) => initial.push(i.name),
            InterfaceEvent::Synced { reconnect } => {
                assert!(!reconnect);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(initial.contains(&"br-int".to_string()), "initial snapshot: {initial:?}");

    let port = PortSpec::single(InterfaceSpec::vm_port(
        "tapmon1",
        InterfaceType::Internal,
        "aaaaaaaa-0000-0000-0000-000000000001",
        "fa:16:3e:00:00:01",
        "bbbbbbbb-0000-0000-0000-000000000001",
    ));
    let t0 = Instant::now();
    db.add_port("br-int", &port, Commit::NoWait).await.unwrap();
    let committed = t0.elapsed();
    let ev = mon
        .wait_for(Duration::from_secs(2), |e| matches!(e, InterfaceEvent::Added(i) if i.name == "tapmon1"))
        .await
        .unwrap();
    let t_add = t0.elapsed();
    if let InterfaceEvent::Added(i) = &ev {
        assert_eq!(i.iface_id(), Some("aaaaaaaa-0000-0000-0000-000000000001"));
    }
    let ofport_ev = if let InterfaceEvent::Added(i) = &ev { i.valid_ofport() } else { None };
    if ofport_ev.is_none() {
        mon.wait_for(Duration::from_secs(2), |e| {
            matches!(e, InterfaceEvent::Modified { new, .. } if new.name == "tapmon1" && new.valid_ofport().is_some())
        })
        .await
        .unwrap();
    }
    let t_ofport = t0.elapsed();

    let t1 = Instant::now();
    db.del_port("tapmon1", Commit::NoWait).await.unwrap();
    let ev = mon
        .wait_for(Duration::from_secs(2), |e| matches!(e, InterfaceEvent::Deleted(i) if i.name == "tapmon1"))
        .await
        .unwrap();
    let t_del = t1.elapsed();
    assert!(matches!(ev, InterfaceEvent::Deleted(_)));
    eprintln!(
        "monitor ({method:?}): commit {committed:?}, add event {t_add:?}, ofport event {t_ofport:?}, delete event {t_del:?}"
    );
    assert!(t_add < Duration::from_millis(100), "add event took {t_add:?}");
    assert!(t_del < Duration::from_millis(100), "delete event took {t_del:?}");
    assert!(!mon.interfaces().iter().any(|i| i.name == "tapmon1"));

    drop(mon);
    drop(h);
    drop(sim);
    common::assert_swept(&prefix);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_cond_add_delete_events() {
    require_sim!();
    monitor_add_delete(MonitorMethod::MonitorCond).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_plain_add_delete_events() {
    require_sim!();
    monitor_add_delete(MonitorMethod::Monitor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_survives_ovsdb_restart() {
    require_sim!();
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let h = sim.add_host("h1").await.unwrap();
    let db = h.ovsdb();
    h.layout().ensure_int_bridge(db).await.unwrap();
    for n in ["keep1", "gone1"] {
        db.add_port("br-int", &PortSpec::single(InterfaceSpec::internal(n)), Commit::default()).await.unwrap();
    }
    let mut mon = InterfaceMonitor::start(h.endpoint()).await.unwrap();
    mon.wait_for(Duration::from_secs(5), |e| matches!(e, InterfaceEvent::Synced { .. })).await.unwrap();

    // Stop ovsdb-server, change the database offline, restart it.
    h.ovs().stop_ovsdb().await.unwrap();
    mon.wait_for(Duration::from_secs(5), |e| matches!(e, InterfaceEvent::Disconnected { .. })).await.unwrap();
    let dbfile = h.ovs().rundir().join("conf.db");
    let txn = serde_json::json!([
        "Open_vSwitch",
        {"op": "mutate", "table": "Bridge", "where": [["name", "==", "br-int"]],
         "mutations": [["ports", "delete", ["set", []]]]}
    ]);
    // Find the port uuid of gone1 with ovsdb-tool query, then delete it from br-int.
    let q = serde_json::json!(["Open_vSwitch", {"op": "select", "table": "Port", "where": [["name", "==", "gone1"]], "columns": ["_uuid"]}]);
    let out =
        neutrino_agent::cmd::Cmd::new("ovsdb-tool").arg("query").arg(&dbfile).arg(q.to_string()).run().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let uuid = v[0]["rows"][0]["_uuid"][1].as_str().unwrap().to_string();
    let mut txn = txn;
    txn[1]["mutations"][0][2] = serde_json::json!(["uuid", uuid]);
    neutrino_agent::cmd::Cmd::new("ovsdb-tool").arg("transact").arg(&dbfile).arg(txn.to_string()).run().await.unwrap();
    let t0 = Instant::now();
    h.ovs().start_ovsdb().await.unwrap();

    // The monitor reconnects, resyncs, and reports the offline deletion.
    let ev = mon
        .wait_for(Duration::from_secs(5), |e| matches!(e, InterfaceEvent::Deleted(i) if i.name == "gone1"))
        .await
        .unwrap();
    assert!(matches!(ev, InterfaceEvent::Deleted(_)));
    mon.wait_for(Duration::from_secs(5), |e| matches!(e, InterfaceEvent::Synced { reconnect: true })).await.unwrap();
    eprintln!("monitor resynced {:?} after ovsdb-server restart", t0.elapsed());
    assert!(mon.interfaces().iter().any(|i| i.name == "keep1"));

    // The transact client reconnects lazily too, and events keep coming.
    db.add_port("br-int", &PortSpec::single(InterfaceSpec::internal("new1")), Commit::NoWait).await.unwrap();
    mon.wait_for(Duration::from_secs(2), |e| matches!(e, InterfaceEvent::Added(i) if i.name == "new1")).await.unwrap();
    // ovs-vswitchd reconnected as well: it assigns the ofport.
    mon.wait_for(
        Duration::from_secs(5),
        |e| matches!(e, InterfaceEvent::Modified { new, .. } if new.name == "new1" && new.valid_ofport().is_some()),
    )
    .await
    .unwrap();

    drop(mon);
    drop(h);
    drop(sim);
    common::assert_swept(&prefix);
}
