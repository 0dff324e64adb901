//! ML2 type drivers over real HTTP: tenant allocation from configured
//! ranges, exhaustion, provider validation, admin-only provider attributes,
//! release and reuse, MTUs, and Neutron-format configuration files.

mod common;

use std::sync::Arc;

use common::{project, Client, PgDb, Server};
use serde_json::{json, Value};

const ML2_CONF: &str = r#"
[DEFAULT]
global_physnet_mtu = 9000
core_plugin = ml2
some_option_neutrino_ignores = true

[ml2]
type_drivers = local,flat,vlan,gre,vxlan,geneve
tenant_network_types = vxlan,vlan
mechanism_drivers = openvswitch,l2population
extension_drivers = port_security
path_mtu = 1500
physical_network_mtus = physnet2:1400

[ml2_type_flat]
flat_networks = physnet1,physnet2

[ml2_type_vlan]
network_vlan_ranges = physnet1:100:101,physnet2

[ml2_type_vxlan]
vni_ranges = 5:7

[ml2_type_gre]
tunnel_id_ranges = 10:11

[ml2_type_geneve]
vni_ranges = 20:21
max_header_size = 38
"#;

fn write_conf(text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("ml2-{}.ini", uuid::Uuid::new_v4().simple()));
    std::fs::write(&p, text).unwrap();
    p
}

async fn provider(admin: &Client, body: Value) -> common::Resp {
    admin.post("networks", json!({ "network": body })).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_drivers_from_neutron_config_files() {
    let conf = write_conf(ML2_CONF);
    let srv = Server::start_up(&["--config", conf.to_str().unwrap()]).await;
    let admin = srv.admin();
    let member = srv.member(&project());
    // Tenant networks: VXLAN 5..7 first, then VLAN on physnet1 100..101, then 503.
    let mut got = vec![];
    for _ in 0..5 {
        let n = member.network("t").await;
        let a = admin.get(&format!("networks/{}", n["id"].as_str().unwrap())).await.expect(200)["network"].clone();
        got.push((
            a["provider:network_type"].as_str().unwrap().to_string(),
            a["provider:segmentation_id"].as_i64().unwrap(),
            a["mtu"].as_i64().unwrap(),
        ));
    }
    assert_eq!(
        got,
        vec![
            ("vxlan".into(), 5, 1450),
            ("vxlan".into(), 6, 1450),
            ("vxlan".into(), 7, 1450),
            ("vlan".into(), 100, 9000),
            ("vlan".into(), 101, 9000)
        ],
        "path_mtu 1500 bounds tunnels; VLAN uses the physnet MTU"
    );
    member.post("networks", json!({"network": {"name": "x"}})).await.fault(503, "NoNetworkAvailable");
    // Release and reuse.
    let first = member.get("networks").await.expect(200)["networks"][0]["id"].as_str().unwrap().to_string();
    member.delete(&format!("networks/{first}")).await.expect(204);
    let again = member.network("again").await;
    let a = admin.get(&format!("networks/{}", again["id"].as_str().unwrap())).await.expect(200)["network"].clone();
    assert_eq!((a["provider:network_type"].as_str(), a["provider:segmentation_id"].as_i64()), (Some("vxlan"), Some(5)));

    // Provider networks: admin only, validated against the configuration.
    member
        .post(
            "networks",
            json!({"network": {"provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
        )
        .await
        .fault(403, "PolicyNotAuthorized");
    let flat = provider(&admin, json!({"provider:network_type": "flat", "provider:physical_network": "physnet2"}))
        .await
        .expect(201)["network"]
        .clone();
    assert_eq!(flat["mtu"], 1400, "physical_network_mtus");
    provider(&admin, json!({"provider:network_type": "flat", "provider:physical_network": "physnet2"}))
        .await
        .fault(409, "FlatNetworkInUse");
    provider(&admin, json!({"provider:network_type": "flat", "provider:physical_network": "nope"}))
        .await
        .fault(400, "InvalidInput");
    provider(&admin, json!({"provider:network_type": "flat"})).await.fault(400, "InvalidInput");
    provider(&admin, json!({"provider:network_type": "flat", "provider:physical_network": "physnet1", "provider:segmentation_id": 3})).await.fault(400, "InvalidInput");
    // VLAN: explicit ids inside and outside the tenant range, on a physnet without range.
    let v = provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 3000})).await.expect(201)["network"].clone();
    assert_eq!(v["provider:segmentation_id"], 3000);
    provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 3000})).await.fault(409, "VlanIdInUse");
    provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 100})).await.fault(409, "VlanIdInUse");
    provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 4095})).await.fault(400, "InvalidInput");
    provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet9", "provider:segmentation_id": 5})).await.fault(400, "InvalidInput");
    provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1"}))
        .await
        .fault(503, "NoNetworkAvailable");
    // Tunnels: GRE and Geneve allocate from their ranges; MTUs by encapsulation.
    let g = provider(&admin, json!({"provider:network_type": "gre"})).await.expect(201)["network"].clone();
    assert_eq!((g["provider:segmentation_id"].as_i64(), g["mtu"].as_i64()), (Some(10), Some(1458)));
    let gv = provider(&admin, json!({"provider:network_type": "geneve"})).await.expect(201)["network"].clone();
    assert_eq!((gv["provider:segmentation_id"].as_i64(), gv["mtu"].as_i64()), (Some(20), Some(1442)));
    provider(&admin, json!({"provider:network_type": "vxlan", "provider:segmentation_id": 99999})).await.expect(201);
    provider(&admin, json!({"provider:network_type": "vxlan", "provider:segmentation_id": 99999}))
        .await
        .fault(409, "TunnelIdInUse");
    provider(&admin, json!({"provider:network_type": "vxlan", "provider:segmentation_id": 1 << 24}))
        .await
        .fault(400, "InvalidInput");
    provider(&admin, json!({"provider:network_type": "gre", "provider:physical_network": "physnet1"}))
        .await
        .fault(400, "InvalidInput");
    provider(&admin, json!({"provider:network_type": "bogus"})).await.fault(400, "InvalidInput");
    let l = provider(&admin, json!({"provider:network_type": "local"})).await.expect(201)["network"].clone();
    assert_eq!(l["provider:segmentation_id"], Value::Null);
    // Provider attributes cannot be changed afterwards.
    admin
        .put(&format!("networks/{}", g["id"].as_str().unwrap()), json!({"network": {"provider:segmentation_id": 11}}))
        .await
        .fault(400, "InvalidInput");
    // Deleting frees the id for others.
    admin.delete(&format!("networks/{}", v["id"].as_str().unwrap())).await.expect(204);
    provider(&admin, json!({"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 3000})).await.expect(201);
    // Multi-provider networks and the segments API.
    let m = provider(
        &admin,
        json!({"name": "multi", "segments": [
        {"provider:network_type": "vlan", "provider:physical_network": "physnet2", "provider:segmentation_id": 42},
        {"provider:network_type": "gre"}]}),
    )
    .await
    .expect(201)["network"]
        .clone();
    assert_eq!(m["segments"].as_array().unwrap().len(), 2);
    assert_eq!(m["segments"][1]["provider:segmentation_id"], 11);
    assert!(m.get("provider:network_type").is_none());
    let segs =
        admin.get(&format!("segments?network_id={}", m["id"].as_str().unwrap())).await.expect(200)["segments"].clone();
    assert_eq!(segs.as_array().unwrap().len(), 2);
    assert!(member.get("segments").await.expect(200)["segments"].as_array().is_some_and(Vec::is_empty));
    let extra = admin.post("segments", json!({"segment": {"network_id": l["id"], "network_type": "vlan", "physical_network": "physnet2", "segmentation_id": 43, "name": "s2"}})).await.expect(201)["segment"].clone();
    let l2 = admin.get(&format!("networks/{}", l["id"].as_str().unwrap())).await.expect(200)["network"].clone();
    assert_eq!(l2["segments"].as_array().unwrap().len(), 2);
    admin.post("subnets", json!({"subnet": {"network_id": l["id"], "cidr": "10.50.0.0/24", "ip_version": 4, "segment_id": extra["id"]}})).await.expect(201);
    admin.delete(&format!("segments/{}", extra["id"].as_str().unwrap())).await.fault(409, "SegmentInUse");
    // Unknown options were logged, not fatal (the server is up); and the
    // configuration reached the API (MTUs above).
    let _ = std::fs::remove_file(conf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused_at_start() {
    let conf = write_conf("[ml2]\ntype_drivers = flat\ntenant_network_types = vxlan\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neutrino"))
        .args([
            "up",
            "--noauth",
            "--state-dir",
            std::env::temp_dir().join(format!("nt-bad-{}", uuid::Uuid::new_v4().simple())).to_str().unwrap(),
        ])
        .args(["--api-bind", &format!("127.0.0.1:{}", common::free_port()), "--config", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tenant network type 'vxlan'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(conf);
}

/// Concurrent tenant network creates on two servers sharing PostgreSQL with
/// a 20-VNI range: every VNI is used at most once, the rest are 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_segment_allocation_on_two_servers() {
    let conf = write_conf(
        "[ml2]\ntype_drivers = vxlan\ntenant_network_types = vxlan\n[ml2_type_vxlan]\nvni_ranges = 100:119\n",
    );
    let db = Arc::new(PgDb::create());
    let a = Server::start_server(db.clone(), &["--config", conf.to_str().unwrap()]).await;
    let b = Server::start_server(db.clone(), &["--config", conf.to_str().unwrap()]).await;
    let p = project();
    let mut tasks = vec![];
    for i in 0..12 {
        let c = if i % 2 == 0 { a.member(&p) } else { b.member(&p) };
        tasks.push(tokio::spawn(async move {
            let mut codes = vec![];
            for _ in 0..5 {
                let r = c.post("networks", json!({"network": {"name": "race"}})).await;
                assert!(r.status == 201 || r.status == 503, "unexpected {} {}", r.status, r.body);
                if r.status == 503 {
                    assert_eq!(r.body["NeutronError"]["type"], "NoNetworkAvailable");
                }
                codes.push(r.status);
            }
            codes
        }));
    }
    let mut created = 0;
    for t in tasks {
        created += t.await.unwrap().iter().filter(|c| **c == 201).count();
    }
    assert_eq!(created, 20, "exactly the range's size");
    let nets = a.admin().get("networks").await.expect(200)["networks"].clone();
    let mut vnis: Vec<i64> =
        nets.as_array().unwrap().iter().map(|n| n["provider:segmentation_id"].as_i64().unwrap()).collect();
    vnis.sort();
    assert_eq!(vnis, (100..120).collect::<Vec<_>>(), "every VNI once");
    let _ = std::fs::remove_file(conf);
}
