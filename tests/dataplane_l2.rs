//! The Open vSwitch L2 agent end to end, on the in-process bus: `neutrino up
//! --sim-hosts 2` (two simulated hypervisors with their own OVS and L2 agent)
//! and VMs booted with `neutrino vm`. Needs root and Open vSwitch (skips
//! otherwise); every namespace, link, OVS instance and process is removed,
//! also on failure.

mod common;
mod dataplane;

use std::time::Duration;

use dataplane::Cloud;
use serde_json::json;

/// Boots one VM per host on `net` and pings both ways.
async fn ping_across(cloud: &Cloud, net: &str, tag: &str) {
    let a = cloud.boot(&format!("{tag}a"), &["--network", net, "--host", "compute1"]).await;
    let b = cloud.boot(&format!("{tag}b"), &["--network", net, "--host", "compute2"]).await;
    assert!(cloud.ping(&a, &b.ip, 3).await, "{tag}: {} -> {} across hosts", a.ip, b.ip);
    assert!(cloud.ping(&b, &a.ip, 3).await, "{tag}: {} -> {} across hosts", b.ip, a.ip);
    eprintln!("FIGURE {tag}: boot to ACTIVE {} ms / {} ms", a.boot["active_ms"], b.boot["active_ms"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_networks_connect_hosts() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    for (t, cidr) in [("vxlan", "10.1.0.0/24"), ("gre", "10.2.0.0/24"), ("geneve", "10.3.0.0/24")] {
        let (net, _) = cloud.network("demo", &format!("net-{t}"), json!({"provider:network_type": t}), cidr).await;
        let doc = cloud.admin.req("GET", &format!("networks/{net}"), None, &[]).await.expect(200);
        assert_eq!(doc["network"]["provider:network_type"], t);
        ping_across(&cloud, &net, t).await;
        // compute1 has a tunnel port of that type to compute2's underlay address.
        let text = std::fs::read_to_string(cloud.state_dir.join("sim.json")).unwrap();
        let rec: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ip: std::net::Ipv4Addr = rec["hosts"][1]["underlay_ip"].as_str().unwrap().parse().unwrap();
        let name = format!("{t}-{:08x}", u32::from(ip));
        let ports = cloud.vsctl("compute1", &["list-ports", "br-tun"]).await;
        assert!(ports.contains(&name), "compute1 has a {t} tunnel to {ip} ({name}): {ports}");
    }
    let flows = cloud.flows("compute1", "br-tun").await;
    assert!(flows.contains("table=21") && flows.contains("arp_tpa="), "ARP responder entries: {flows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_vlan_and_flat_networks_connect_hosts() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (vlan, _) = cloud
        .network(
            "demo",
            "net-vlan",
            json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 142}),
            "10.4.0.0/24",
        )
        .await;
    ping_across(&cloud, &vlan, "vlan").await;
    let (flat, _) = cloud
        .network(
            "demo",
            "net-flat",
            json!({"provider:network_type": "flat", "provider:physical_network": "physnet1"}),
            "10.5.0.0/24",
        )
        .await;
    ping_across(&cloud, &flat, "flat").await;
    // A tenant VLAN network (allocated from physnet1:100:199) too.
    let (tenant_vlan, _) =
        cloud.network("demo", "net-vlan2", json!({"provider:network_type": "vlan"}), "10.6.0.0/24").await;
    ping_across(&cloud, &tenant_vlan, "vlan2").await;
    // Local VLAN ↔ provider VLAN translation on the provider bridge.
    let phys = cloud.flows("compute1", "br-physnet1").await;
    assert!(phys.contains("set_field:4238->vlan_vid"), "local VLAN → VLAN 142 (4096+142): {phys}");
    assert!(phys.contains("pop_vlan"), "local VLAN → untagged for flat: {phys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_isolated_even_with_the_same_cidr() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (n1, _) = cloud.network("t1", "iso1", json!({}), "10.9.0.0/24").await;
    let (n2, _) = cloud.network("t2", "iso2", json!({"provider:network_type": "gre"}), "10.9.0.0/24").await;
    let a1 = cloud.boot("a1", &["--network", &n1, "--host", "compute1", "--fixed-ip", "10.9.0.10"]).await;
    let b1 = cloud.boot("b1", &["--network", &n1, "--host", "compute2", "--fixed-ip", "10.9.0.11"]).await;
    let a2 = cloud.boot("a2", &["--network", &n2, "--host", "compute1", "--fixed-ip", "10.9.0.10"]).await;
    let b2 = cloud.boot("b2", &["--network", &n2, "--host", "compute2", "--fixed-ip", "10.9.0.12"]).await;
    // Own networks work; the same address answers from the right network.
    assert!(cloud.ping(&a1, "10.9.0.11", 2).await, "iso1 across hosts");
    assert!(cloud.ping(&a2, "10.9.0.12", 2).await, "iso2 across hosts");
    assert!(cloud.ping(&b1, "10.9.0.10", 2).await);
    assert!(cloud.ping(&b2, "10.9.0.10", 2).await);
    let neigh = dataplane::ns_output(&b1.netns, &["ip", "neigh", "show", "10.9.0.10"]).await;
    assert!(String::from_utf8_lossy(&neigh.stdout).contains(&a1.mac), "b1 reached a1, not a2");
    let neigh = dataplane::ns_output(&b2.netns, &["ip", "neigh", "show", "10.9.0.10"]).await;
    assert!(String::from_utf8_lossy(&neigh.stdout).contains(&a2.mac), "b2 reached a2, not a1");
    // Across networks nothing gets through, across hosts or on one host.
    assert!(!cloud.ping(&a1, "10.9.0.12", 2).await, "iso1 must not reach b2 (iso2), across hosts");
    assert!(!cloud.ping(&a2, "10.9.0.11", 2).await, "iso2 must not reach b1 (iso1), across hosts");
    assert!(!cloud.ping(&b1, "10.9.0.12", 2).await, "b1 (iso1) must not reach b2 (iso2) on the same host");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_status_follows_the_vm_and_deleting_a_port_unplugs_it() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "st", json!({}), "10.7.0.0/24").await;
    // A port bound to compute1 before any VM exists: DOWN.
    let p = cloud
        .client("demo")
        .req("POST", "ports", Some(json!({"port": {"network_id": net, "binding:host_id": "compute1"}})), &[])
        .await
        .expect(201);
    let pid = p["port"]["id"].as_str().unwrap().to_string();
    assert_eq!(p["port"]["status"], "DOWN");
    assert_eq!(p["port"]["binding:vif_type"], "ovs", "bound: a live agent reaches the segment: {p}");
    // Nova boots on it: ACTIVE once the agent wired it.
    let vm = cloud.boot("vm1", &["--port", &pid, "--host", "compute1"]).await;
    assert_eq!(cloud.port(&pid).await["status"], "ACTIVE");
    let peer = cloud.boot("vm2", &["--network", &net, "--host", "compute2"]).await;
    assert!(cloud.ping(&peer, &vm.ip, 2).await);
    // The VM goes away (unplugged; the port stays): DOWN.
    cloud.delete_vm("vm1").await;
    let t = cloud.wait_status(&pid, "DOWN", Duration::from_secs(10)).await;
    eprintln!("FIGURE port DOWN {} ms after the unplug", t.as_millis());
    assert_eq!(cloud.port(&pid).await["binding:host_id"], "", "unbound by vm delete");

    // Deleting a port through the API unplugs it from the dataplane at once.
    let vm3 = cloud.boot("vm3", &["--network", &net, "--host", "compute1"]).await;
    assert!(cloud.ping(&peer, &vm3.ip, 2).await);
    cloud.admin.req("DELETE", &format!("ports/{}", vm3.port_id), None, &[]).await.expect(204);
    let dev = format!("tap{}", &vm3.port_id[..11]);
    let dead = dataplane::common_eventually(Duration::from_secs(5), || async {
        cloud.vsctl("compute1", &["get", "Port", &dev, "tag"]).await == "4095"
    })
    .await;
    assert!(dead, "the deleted port's OVS port is on the dead VLAN");
    assert!(!cloud.ping(&peer, &vm3.ip, 2).await, "a deleted port does not forward");
    let flows = cloud.flows("compute1", "br-int").await;
    let ofport = cloud.vsctl("compute1", &["get", "Interface", &dev, "ofport"]).await;
    assert!(!flows.contains(&format!("in_port={ofport} ")), "no flows left for the deleted port: {flows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_up_removes_everything() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "bye", json!({}), "10.8.0.0/24").await;
    cloud.boot("x1", &["--network", &net]).await;
    cloud.boot("x2", &["--network", &net]).await;
    let list = cloud.neutrino(&["vm", "list"]).await;
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("x1") && text.contains("x2") && text.contains("ACTIVE"), "{text}");
    assert!(text.contains("compute1") && text.contains("compute2"), "spread over the hosts: {text}");
    let prefix = cloud.prefix.clone();
    let dir = cloud.state_dir.clone();
    let mut cloud = cloud;
    // SIGTERM: up removes its simulation itself.
    let _ = std::process::Command::new("kill").args(["-TERM", &cloud.server.child.id().to_string()]).status();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut stopped = false;
    while std::time::Instant::now() < deadline && !stopped {
        stopped = matches!(cloud.server.child.try_wait(), Ok(Some(_)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stopped, "up stops on SIGTERM");
    dataplane::assert_clean(&prefix, &dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_uses_a_token_when_identity_is_on() {
    require_dataplane!();
    let cloud = Cloud::start_with_identity(1).await;
    let token = cloud.token().await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}/v2.0/{path}", cloud.server.url)).header("X-Auth-Token", &token).json(&body).send()
    };
    let r = post("networks", json!({"network": {"name": "tok"}})).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let net: serde_json::Value = r.json().await.unwrap();
    let net = net["network"]["id"].as_str().unwrap().to_string();
    let r =
        post("subnets", json!({"subnet": {"network_id": net, "cidr": "10.60.0.0/24", "ip_version": 4}})).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    // Without a token the API refuses; `neutrino vm` authenticates with the state directory's openrc.
    let anon = http.get(format!("{}/v2.0/ports", cloud.server.url)).send().await.unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let a = cloud.boot("ta", &["--network", "tok"]).await;
    let b = cloud.boot("tb", &["--network", "tok"]).await;
    assert!(cloud.ping(&a, &b.ip, 2).await);
    let list = cloud.neutrino(&["vm", "list"]).await;
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.matches("ACTIVE").count(), 2, "{text}");
}
