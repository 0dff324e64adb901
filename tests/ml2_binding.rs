//! Port binding with agents registered through the same RPC path a real
//! agent uses (RabbitMQ): bound when an agent on the host reaches the
//! segment, `binding_failed` otherwise, rebound when the agent appears;
//! provisioning: ACTIVE only after the L2 agent reports the device up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{project, RabbitVhost, Server};
use neutrino_rpc::{CallContext, RpcClient, Target, Transport};
use serde_json::{json, Value};

async fn report(bus: &Arc<dyn Transport>, host: &str, conf: Value) -> Value {
    RpcClient::new(bus.clone(), Target::topic("q-reports-plugin"))
        .call(
            &CallContext::admin(),
            "report_state",
            json!({"agent_state": {"agent_type": "Open vSwitch agent", "binary": "test-agent", "host": host, "topic": "N/A", "configurations": conf, "start_flag": true}}),
        )
        .await
        .expect("report_state answered")
}

async fn plugin(bus: &Arc<dyn Transport>, method: &str, args: Value) -> Value {
    RpcClient::new(bus.clone(), Target::topic("q-plugin"))
        .call(&CallContext::admin(), method, args)
        .await
        .expect("plugin call")
}

/// `neutrino up` on a private RabbitMQ vhost, and a client of that bus.
async fn server_on_rabbit() -> (RabbitVhost, Server, Arc<dyn Transport>) {
    let vhost = RabbitVhost::create();
    let srv = Server::start_up(&["--transport-url", &vhost.url()]).await;
    let bus = neutrino_rpc::connect(&vhost.url()).unwrap();
    bus.wait_connected(Duration::from_secs(10)).await.expect("broker reachable");
    (vhost, srv, bus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_follows_agents() {
    let (_vhost, srv, bus) = server_on_rabbit().await;
    let admin = srv.admin();
    let member = srv.member(&project());

    // compute1 reaches VXLAN and physnet1; compute2 only physnet1 (no tunnels).
    let r = report(&bus, "compute1", json!({"tunnel_types": ["vxlan"], "bridge_mappings": {"physnet1": "br-physnet1"}, "tunneling_ip": "198.51.100.11", "datapath_type": "netdev"})).await;
    assert_eq!(r["status"], "new");
    report(
        &bus,
        "compute2",
        json!({"tunnel_types": [], "bridge_mappings": {"physnet1": "br-physnet1"}, "tunneling_ip": "198.51.100.12"}),
    )
    .await;
    let again = report(&bus, "compute1", json!({"tunnel_types": ["vxlan"], "bridge_mappings": {"physnet1": "br-physnet1"}, "tunneling_ip": "198.51.100.11", "datapath_type": "netdev"})).await;
    assert_eq!(again["status"], "revived", "a start_flag report revives");

    let agents = admin.get("agents").await.expect(200)["agents"].clone();
    assert_eq!(agents.as_array().unwrap().len(), 2);
    assert!(agents.as_array().unwrap().iter().all(|a| a["alive"] == true && a["agent_type"] == "Open vSwitch agent"));
    assert!(member.get("agents").await.expect(200)["agents"].as_array().unwrap().is_empty(), "agents are admin-only");
    // agent_type filters match without regard to case (as on Neutron's MariaDB).
    let n = |q: &'static str| {
        let admin = &admin;
        async move { admin.get(q).await.expect(200)["agents"].as_array().unwrap().len() }
    };
    assert_eq!(n("agents?agent_type=open%20vswitch%20AGENT").await, 2);
    assert_eq!(n("agents?agent_type=DHCP%20Agent").await, 0);
    assert_eq!(n("agents?agent_type=Open%20vSwitch%20agent&host=compute2").await, 1);

    let net = member.network("n").await;
    member.subnet(&net, "10.0.0.0/24").await;
    let bind = |host: &str| json!({"port": {"network_id": net["id"], "binding:host_id": host, "device_owner": "compute:nova", "project_id": member.project}});
    // Bound where an agent reaches the VXLAN segment.
    let p = admin.post("ports", bind("compute1")).await.expect(201)["port"].clone();
    assert_eq!(p["binding:vif_type"], "ovs");
    assert_eq!(p["binding:vif_details"]["datapath_type"], "netdev");
    assert_eq!(p["binding:vif_details"]["port_filter"], true);
    assert_eq!(p["status"], "DOWN", "not ACTIVE before the agent reports");
    // Not where the agent cannot reach it, nor where there is no agent.
    assert_eq!(admin.post("ports", bind("compute2")).await.expect(201)["port"]["binding:vif_type"], "binding_failed");
    let late = admin.post("ports", bind("compute3")).await.expect(201)["port"].clone();
    assert_eq!(late["binding:vif_type"], "binding_failed");
    let unbound = member.port(&net).await;
    assert_eq!(
        admin.get(&format!("ports/{}", unbound["id"].as_str().unwrap())).await.expect(200)["port"]["binding:vif_type"],
        "unbound"
    );

    // The agent asks for the device: it gets the segment to wire.
    let details = plugin(&bus, "get_devices_details_list", json!({"devices": [p["id"]], "host": "compute1"})).await;
    let d = &details["devices"][0];
    assert_eq!(d["segment"]["network_type"], "vxlan");
    assert_eq!(d["mac_address"], p["mac_address"]);
    assert_eq!(d["mtu"], 1450);
    let ports_here = plugin(&bus, "get_ports_on_host", json!({"host": "compute1"})).await;
    assert_eq!(ports_here["ports"].as_array().unwrap().len(), 1);
    // Device up → ACTIVE; down → DOWN.
    let up =
        plugin(&bus, "update_device_list", json!({"devices_up": [p["id"]], "devices_down": [], "host": "compute1"}))
            .await;
    assert_eq!(up["devices_up"], json!([p["id"]]));
    let pid = p["id"].as_str().unwrap();
    assert_eq!(admin.get(&format!("ports/{pid}")).await.expect(200)["port"]["status"], "ACTIVE");
    // Another host cannot report for it.
    let wrong =
        plugin(&bus, "update_device_list", json!({"devices_up": [], "devices_down": [p["id"]], "host": "compute2"}))
            .await;
    assert_eq!(wrong["devices_down"], json!([p["id"]]), "accepted but ignored");
    assert_eq!(admin.get(&format!("ports/{pid}")).await.expect(200)["port"]["status"], "ACTIVE");
    plugin(&bus, "update_device_list", json!({"devices_up": [], "devices_down": [p["id"]], "host": "compute1"})).await;
    assert_eq!(admin.get(&format!("ports/{pid}")).await.expect(200)["port"]["status"], "DOWN");

    // compute3's agent appears: its waiting port gets bound.
    report(
        &bus,
        "compute3",
        json!({"tunnel_types": ["vxlan", "geneve"], "bridge_mappings": {}, "tunneling_ip": "198.51.100.13"}),
    )
    .await;
    assert_eq!(
        admin.get(&format!("ports/{}", late["id"].as_str().unwrap())).await.expect(200)["port"]["binding:vif_type"],
        "ovs"
    );
    // Peers: compute1 sees compute3's port with compute3's tunnel endpoint.
    let peers = plugin(&bus, "get_network_peers", json!({"networks": [net["id"]], "host": "compute1"})).await;
    let np = &peers["networks"][net["id"].as_str().unwrap()];
    assert_eq!(np["segment"]["network_type"], "vxlan");
    let remote: Vec<&Value> = np["peers"].as_array().unwrap().iter().collect();
    assert_eq!(remote.len(), 1);
    assert_eq!(remote[0]["host"], "compute3");
    assert_eq!(remote[0]["tunnel_ip"], "198.51.100.13");
    let tunnels = plugin(
        &bus,
        "tunnel_sync",
        json!({"tunnel_ip": "198.51.100.11", "tunnel_types": ["vxlan"], "host": "compute1"}),
    )
    .await;
    assert_eq!(tunnels["tunnels"].as_array().unwrap().len(), 2);

    // Moving the port to a host whose agent cannot reach the segment fails the binding.
    let moved = admin.put(&format!("ports/{pid}"), json!({"port": {"binding:host_id": "compute2"}})).await.expect(200)
        ["port"]
        .clone();
    assert_eq!(moved["binding:vif_type"], "binding_failed");
    // Provider VLAN on physnet1 binds on compute2.
    let vlan = admin.post("networks", json!({"network": {"provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 150}})).await.expect(201)["network"].clone();
    let vp = admin
        .post("ports", json!({"port": {"network_id": vlan["id"], "binding:host_id": "compute2"}}))
        .await
        .expect(201)["port"]
        .clone();
    assert_eq!(vp["binding:vif_type"], "ovs");
    let d = plugin(&bus, "get_devices_details_list", json!({"devices": [vp["id"]], "host": "compute2"})).await;
    assert_eq!(
        d["devices"][0]["segment"],
        json!({"network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 150})
    );
    // Security group info: rules plus membership, not per-IP expansion.
    let sg = plugin(&bus, "security_group_info_for_devices", json!({"devices": [p["id"]]})).await;
    let groups = sg["security_groups"].as_object().unwrap();
    assert_eq!(groups.len(), 1);
    let g = groups.values().next().unwrap();
    assert_eq!(g["rules"].as_array().unwrap().len(), 4, "the default group's rules");
    let gid = groups.keys().next().unwrap();
    assert!(sg["sg_member_ips"][gid]["IPv4"]
        .as_array()
        .unwrap()
        .iter()
        .any(|ip| ip == &p["fixed_ips"][0]["ip_address"]));
    // Agent admin: disable, describe, delete.
    let a1 = admin.get("agents?host=compute1").await.expect(200)["agents"][0].clone();
    let a1id = a1["id"].as_str().unwrap();
    let upd = admin
        .put(&format!("agents/{a1id}"), json!({"agent": {"admin_state_up": false, "description": "maintenance"}}))
        .await
        .expect(200)["agent"]
        .clone();
    assert_eq!(upd["admin_state_up"], false);
    assert_eq!(
        admin.post("ports", bind("compute1")).await.expect(201)["port"]["binding:vif_type"],
        "binding_failed",
        "a disabled agent does not bind"
    );
    admin.delete(&format!("agents/{a1id}")).await.expect(204);
    assert_eq!(admin.get("agents").await.expect(200)["agents"].as_array().unwrap().len(), 2);
    drop(srv);
    bus.close().await;
}

/// The DHCP agent's view of a big network travels in one RPC reply over
/// RabbitMQ, with only the port attributes the agent reads (full port
/// documents of 1500 ports once exceeded the message guard, and the
/// network's ports never went ACTIVE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_network_info_of_a_big_network() {
    let (_vhost, srv, bus) = server_on_rabbit().await;
    let admin = srv.admin();
    let p = project();
    let member = srv.member(&p);
    admin.put(&format!("quotas/{p}"), json!({"quota": {"port": -1}})).await.expect(200);
    let net = member.network("big").await;
    member.subnet(&net, "10.80.0.0/20").await;
    let n = 1500;
    for _ in 0..3 {
        let ports: Vec<Value> = (0..n / 3)
            .map(|i| json!({"network_id": net["id"], "name": format!("p{i}"), "device_owner": "compute:nova"}))
            .collect();
        member.post("ports", json!({"ports": ports})).await.expect(201);
    }
    let info = RpcClient::new(bus.clone(), Target::topic("q-dhcp-notifer"))
        .call(&CallContext::admin(), "get_network_info", json!({"network_id": net["id"], "host": "compute1"}))
        .await
        .expect("get_network_info answered");
    let ports = info["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), n);
    let allowed = neutrino_ml2::southbound::DHCP_PORT_FIELDS;
    for port in ports {
        let keys: Vec<&String> = port.as_object().unwrap().keys().collect();
        assert!(keys.iter().all(|k| allowed.contains(&k.as_str())), "only what the DHCP agent reads: {keys:?}");
        assert!(port["mac_address"].is_string() && port["fixed_ips"][0]["ip_address"].is_string(), "{port}");
    }
    let size = serde_json::to_vec(&info).unwrap().len();
    assert!(size < 1 << 20, "{n} ports take {size} bytes");
}
