//! Routers and floating IPs over real HTTP, on SQLite and PostgreSQL.

mod common;

use common::{project, Client, Server};
use serde_json::{json, Value};

async fn external(admin: &Client, cidr: &str) -> Value {
    let ext = admin.post("networks", json!({"network": {"name": "ext", "router:external": true}})).await.expect(201)
        ["network"]
        .clone();
    admin
        .post(
            "subnets",
            json!({"subnet": {"network_id": ext["id"], "cidr": cidr, "ip_version": 4, "enable_dhcp": false}}),
        )
        .await
        .expect(201);
    ext
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

on_both_stores!(routers_interfaces_gateways, |srv: Server| async move {
    let c = srv.member(&project());
    let admin = srv.admin();
    let ext = external(&admin, "203.0.113.0/24").await;
    let n = c.network("n").await;
    let s1 = c.subnet(&n, "10.0.0.0/24").await;
    let r = c.post("routers", json!({"router": {"name": "r1", "admin_state_up": true}})).await.expect(201)["router"]
        .clone();
    assert_eq!(r["status"], "ACTIVE");
    assert_eq!(r["external_gateway_info"], Value::Null);
    assert_eq!(r["routes"], json!([]));
    let rid = id(&r);
    // Interface by subnet: a port with the gateway address.
    let i = c.put(&format!("routers/{rid}/add_router_interface"), json!({"subnet_id": s1["id"]})).await.expect(200);
    assert_eq!(i["id"], rid.as_str());
    assert_eq!(i["subnet_id"], s1["id"]);
    let ports = c.get(&format!("ports?device_id={rid}")).await.expect(200)["ports"].clone();
    assert_eq!(ports.as_array().unwrap().len(), 1);
    assert_eq!(ports[0]["fixed_ips"][0]["ip_address"], "10.0.0.1");
    assert_eq!(ports[0]["device_owner"], "network:router_interface");
    assert_eq!(ports[0]["id"], i["port_id"]);
    c.put(&format!("routers/{rid}/add_router_interface"), json!({"subnet_id": s1["id"]}))
        .await
        .fault(400, "BadRequest");
    c.put(&format!("routers/{rid}/add_router_interface"), json!({})).await.fault(400, "BadRequest");
    c.put(&format!("routers/{rid}/add_router_interface"), json!({"subnet_id": s1["id"], "port_id": i["port_id"]}))
        .await
        .fault(400, "BadRequest");
    // Overlapping subnets on one router are refused.
    let n2 = c.network("n2").await;
    let s2 = c.subnet(&n2, "10.0.0.0/25").await;
    c.put(&format!("routers/{rid}/add_router_interface"), json!({"subnet_id": s2["id"]}))
        .await
        .fault(400, "BadRequest");
    // Interface by port.
    let n3 = c.network("n3").await;
    c.subnet(&n3, "10.3.0.0/24").await;
    let p3 = c.port(&n3).await;
    let i3 = c.put(&format!("routers/{rid}/add_router_interface"), json!({"port_id": p3["id"]})).await.expect(200);
    assert_eq!(i3["port_id"], p3["id"]);
    assert_eq!(
        c.get(&format!("ports/{}", id(&p3))).await.expect(200)["port"]["device_owner"],
        "network:router_interface"
    );
    // Router ports are not deleted through the port API, and their IPs stay.
    c.delete(&format!("ports/{}", id(&p3))).await.fault(409, "L3PortInUse");
    c.put(&format!("ports/{}", id(&p3)), json!({"port": {"fixed_ips": [{"ip_address": "10.3.0.77"}]}}))
        .await
        .fault(400, "IPAddressChangeNotAllowed");
    c.delete(&format!("networks/{}", id(&n3))).await.fault(409, "NetworkInUse");
    c.delete(&format!("subnets/{}", id(&s1))).await.fault(409, "SubnetInUse");
    c.delete(&format!("routers/{rid}")).await.fault(409, "RouterInUse");
    // Gateway: member sets it, the admin-only knobs are refused.
    c.put(&format!("routers/{rid}"), json!({"router": {"external_gateway_info": {"network_id": n["id"]}}}))
        .await
        .fault(400, "BadRequest");
    c.put(
        &format!("routers/{rid}"),
        json!({"router": {"external_gateway_info": {"network_id": "00000000-0000-0000-0000-000000000000"}}}),
    )
    .await
    .fault(404, "NetworkNotFound");
    c.put(
        &format!("routers/{rid}"),
        json!({"router": {"external_gateway_info": {"network_id": ext["id"], "enable_snat": false}}}),
    )
    .await
    .fault(403, "PolicyNotAuthorized");
    let g = c
        .put(&format!("routers/{rid}"), json!({"router": {"external_gateway_info": {"network_id": ext["id"]}}}))
        .await
        .expect(200)["router"]
        .clone();
    let gw = &g["external_gateway_info"];
    assert_eq!(gw["network_id"], ext["id"]);
    assert_eq!(gw["enable_snat"], true);
    assert_eq!(gw["external_fixed_ips"][0]["ip_address"], "203.0.113.2");
    let gwp = admin.get(&format!("ports?device_id={rid}&device_owner=network:router_gateway")).await.expect(200)
        ["ports"]
        .clone();
    assert_eq!(gwp.as_array().unwrap().len(), 1);
    // Admin: a chosen gateway address; a used one is a conflict.
    let g2 = admin
        .put(&format!("routers/{rid}"), json!({"router": {"external_gateway_info": {"network_id": ext["id"], "enable_snat": false, "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}}}))
        .await
        .expect(200)["router"]
        .clone();
    assert_eq!(g2["external_gateway_info"]["external_fixed_ips"][0]["ip_address"], "203.0.113.50");
    assert_eq!(g2["external_gateway_info"]["enable_snat"], false);
    let r2 = admin.post("routers", json!({"router": {"name": "r2", "project_id": c.project}})).await.expect(201)
        ["router"]
        .clone();
    admin
        .put(&format!("routers/{}", id(&r2)), json!({"router": {"external_gateway_info": {"network_id": ext["id"], "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}}}))
        .await
        .fault(409, "IpAddressAlreadyAllocated");
    // Extra routes.
    c.put(
        &format!("routers/{rid}"),
        json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.9.9.9"}]}}),
    )
    .await
    .fault(400, "InvalidRoutes");
    c.put(
        &format!("routers/{rid}"),
        json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.1"}]}}),
    )
    .await
    .fault(400, "InvalidRoutes");
    let rr = c
        .put(
            &format!("routers/{rid}"),
            json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.10"}]}}),
        )
        .await
        .expect(200)["router"]
        .clone();
    assert_eq!(rr["routes"].as_array().unwrap().len(), 1);
    let add = c
        .put(
            &format!("routers/{rid}/add_extraroutes"),
            json!({"router": {"routes": [{"destination": "192.168.1.0/24", "nexthop": "10.0.0.11"}]}}),
        )
        .await
        .expect(200);
    assert_eq!(add["router"]["routes"].as_array().unwrap().len(), 2);
    let rm = c
        .put(
            &format!("routers/{rid}/remove_extraroutes"),
            json!({"router": {"routes": [{"destination": "192.168.0.0/24", "nexthop": "10.0.0.10"}]}}),
        )
        .await
        .expect(200);
    assert_eq!(rm["router"]["routes"], json!([{"destination": "192.168.1.0/24", "nexthop": "10.0.0.11"}]));
    c.put(&format!("routers/{rid}/remove_router_interface"), json!({"subnet_id": s1["id"]}))
        .await
        .fault(409, "RouterInterfaceInUseByRoute");
    c.put(&format!("routers/{rid}"), json!({"router": {"routes": []}})).await.expect(200);
    // Removing interfaces.
    c.put(&format!("routers/{rid}/remove_router_interface"), json!({"subnet_id": s2["id"]}))
        .await
        .fault(404, "RouterInterfaceNotFoundForSubnet");
    c.put(
        &format!("routers/{rid}/remove_router_interface"),
        json!({"port_id": "00000000-0000-0000-0000-000000000000"}),
    )
    .await
    .fault(404, "RouterInterfaceNotFound");
    let out =
        c.put(&format!("routers/{rid}/remove_router_interface"), json!({"subnet_id": s1["id"]})).await.expect(200);
    assert_eq!(out["subnet_id"], s1["id"]);
    c.put(&format!("routers/{rid}/remove_router_interface"), json!({"port_id": p3["id"]})).await.expect(200);
    assert!(c.get(&format!("ports?device_id={rid}&device_owner=network:router_interface")).await.expect(200)["ports"]
        .as_array()
        .unwrap()
        .is_empty());
    // Clearing the gateway with {} (as the CLI does), then delete.
    let cleared = c.put(&format!("routers/{rid}"), json!({"router": {"external_gateway_info": {}}})).await.expect(200)
        ["router"]
        .clone();
    assert_eq!(cleared["external_gateway_info"], Value::Null);
    c.delete(&format!("routers/{rid}")).await.expect(204);
    c.get(&format!("routers/{rid}")).await.fault(404, "RouterNotFound");
    // Other projects do not see routers.
    srv.member(&project()).get(&format!("routers/{}", id(&r2))).await.fault(404, "RouterNotFound");
});

on_both_stores!(floating_ips, |srv: Server| async move {
    let c = srv.member(&project());
    let admin = srv.admin();
    let ext = external(&admin, "203.0.113.0/24").await;
    let n = c.network("n").await;
    let s1 = c.subnet(&n, "10.0.0.0/24").await;
    let vm =
        c.post("ports", json!({"port": {"network_id": n["id"], "device_owner": "compute:nova"}})).await.expect(201)
            ["port"]
            .clone();
    // Not an external network / no IPv4 subnet.
    c.post("floatingips", json!({"floatingip": {"floating_network_id": n["id"]}})).await.fault(400, "BadRequest");
    let bare = admin.post("networks", json!({"network": {"name": "bare", "router:external": true}})).await.expect(201)
        ["network"]
        .clone();
    c.post("floatingips", json!({"floatingip": {"floating_network_id": bare["id"]}})).await.fault(400, "BadRequest");
    // A floating IP without a port.
    let f = c.post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"]}})).await.expect(201)
        ["floatingip"]
        .clone();
    assert_eq!(f["floating_ip_address"], "203.0.113.2");
    assert_eq!(f["status"], "DOWN");
    assert_eq!(f["port_id"], Value::Null);
    assert_eq!(f["router_id"], Value::Null);
    let fid = id(&f);
    // Association needs a router between the subnet and the external network.
    c.put(&format!("floatingips/{fid}"), json!({"floatingip": {"port_id": vm["id"]}}))
        .await
        .fault(404, "ExternalGatewayForFloatingIPNotFound");
    let r = c
        .post("routers", json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}}))
        .await
        .expect(201)["router"]
        .clone();
    c.put(&format!("routers/{}/add_router_interface", id(&r)), json!({"subnet_id": s1["id"]})).await.expect(200);
    let a = c.put(&format!("floatingips/{fid}"), json!({"floatingip": {"port_id": vm["id"]}})).await.expect(200)
        ["floatingip"]
        .clone();
    assert_eq!(a["port_id"], vm["id"]);
    assert_eq!(a["fixed_ip_address"], vm["fixed_ips"][0]["ip_address"]);
    assert_eq!(a["router_id"], r["id"]);
    assert_eq!(a["port_details"]["mac_address"], vm["mac_address"]);
    // One floating IP per fixed address.
    let f2 = c.post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"]}})).await.expect(201)
        ["floatingip"]
        .clone();
    c.put(&format!("floatingips/{}", id(&f2)), json!({"floatingip": {"port_id": vm["id"]}}))
        .await
        .fault(409, "FloatingIPPortAlreadyAssociated");
    c.put(
        &format!("floatingips/{}", id(&f2)),
        json!({"floatingip": {"port_id": vm["id"], "fixed_ip_address": "10.0.0.99"}}),
    )
    .await
    .fault(400, "BadRequest");
    // The gateway and the interface are needed while associated.
    c.put(&format!("routers/{}", id(&r)), json!({"router": {"external_gateway_info": {}}}))
        .await
        .fault(409, "RouterExternalGatewayInUseByFloatingIp");
    c.put(&format!("routers/{}/remove_router_interface", id(&r)), json!({"subnet_id": s1["id"]}))
        .await
        .fault(409, "RouterInterfaceInUseByFloatingIP");
    // Listing, filters.
    let by_port = c.get(&format!("floatingips?port_id={}", id(&vm))).await.expect(200);
    assert_eq!(by_port["floatingips"].as_array().unwrap().len(), 1);
    let by_net = c.get(&format!("floatingips?floating_network_id={}", id(&ext))).await.expect(200);
    assert_eq!(by_net["floatingips"].as_array().unwrap().len(), 2);
    // Disassociate, re-associate at create, port delete disassociates.
    let d = c.put(&format!("floatingips/{fid}"), json!({"floatingip": {"port_id": null}})).await.expect(200)
        ["floatingip"]
        .clone();
    assert_eq!(d["fixed_ip_address"], Value::Null);
    let f3 = c
        .post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"], "port_id": vm["id"]}}))
        .await
        .expect(201)["floatingip"]
        .clone();
    assert_eq!(f3["router_id"], r["id"]);
    c.delete(&format!("ports/{}", id(&vm))).await.expect(204);
    let f3 = c.get(&format!("floatingips/{}", id(&f3))).await.expect(200)["floatingip"].clone();
    assert_eq!(f3["port_id"], Value::Null);
    // FIP ports are not deleted via the port API; the external network is in use.
    let fport = admin.get(&format!("ports?device_id={fid}")).await.expect(200)["ports"][0].clone();
    assert_eq!(fport["device_owner"], "network:floatingip");
    admin.delete(&format!("ports/{}", id(&fport))).await.fault(409, "L3PortInUse");
    admin.delete(&format!("networks/{}", id(&ext))).await.fault(409, "NetworkInUse");
    // Admin picks the address; members may not.
    c.post(
        "floatingips",
        json!({"floatingip": {"floating_network_id": ext["id"], "floating_ip_address": "203.0.113.77"}}),
    )
    .await
    .fault(403, "PolicyNotAuthorized");
    let f4 = admin.post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"], "floating_ip_address": "203.0.113.77", "project_id": c.project}})).await.expect(201)["floatingip"].clone();
    assert_eq!(f4["floating_ip_address"], "203.0.113.77");
    assert_eq!(f4["project_id"], c.project.as_str());
    admin
        .post("ports", json!({"port": {"network_id": ext["id"], "fixed_ips": [{"ip_address": "203.0.113.77"}]}}))
        .await
        .fault(409, "IpAddressAlreadyAllocated");
    // Deleting releases the address.
    for f in [&fid, &id(&f2), &id(&f3), &id(&f4)] {
        c.delete(&format!("floatingips/{f}")).await.expect(204);
    }
    c.get(&format!("floatingips/{fid}")).await.fault(404, "FloatingIPNotFound");
    let again = c.post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"]}})).await.expect(201)
        ["floatingip"]
        .clone();
    assert_eq!(again["floating_ip_address"], "203.0.113.2");
});

on_both_stores!(external_network_delete_and_router_port_ips, |srv: Server| async move {
    let admin = srv.admin();
    let ext = external(&admin, "203.0.113.0/24").await;
    let f = admin.post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"]}})).await.expect(201)
        ["floatingip"]
        .clone();
    // Unassociated floating IPs go with their external network.
    admin.delete(&format!("networks/{}", id(&ext))).await.expect(204);
    admin.get(&format!("floatingips/{}", id(&f))).await.fault(404, "FloatingIPNotFound");
    // A router interface keeps its IPv4 address; restating its subnet is fine.
    let c = srv.member(&project());
    let n = c.network("n").await;
    let s1 = c.subnet(&n, "10.0.0.0/24").await;
    let r = c.post("routers", json!({"router": {"name": "r"}})).await.expect(201)["router"].clone();
    let i =
        c.put(&format!("routers/{}/add_router_interface", id(&r)), json!({"subnet_id": s1["id"]})).await.expect(200);
    let pid = i["port_id"].as_str().unwrap();
    let same =
        c.put(&format!("ports/{pid}"), json!({"port": {"fixed_ips": [{"subnet_id": s1["id"]}]}})).await.expect(200);
    assert_eq!(same["port"]["fixed_ips"][0]["ip_address"], "10.0.0.1");
    c.put(&format!("ports/{pid}"), json!({"port": {"fixed_ips": [{"subnet_id": s1["id"], "ip_address": "10.0.0.9"}]}}))
        .await
        .fault(400, "IPAddressChangeNotAllowed");
});
