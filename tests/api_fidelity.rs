//! API fidelity (issue 11): behaviours an independent conformance check
//! found to differ from Neutron, each pinned on SQLite and PostgreSQL.

mod common;

use common::{project, Client, Server};
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// An external network with an IPv4 subnet (admin).
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

// Item 1: integer and boolean attributes are JSON numbers and booleans, also
// when the request gave them as strings (Neutron converts them).
on_both_stores!(response_types, |srv: Server| async move {
    let c = srv.member(&project());
    let body = json!({"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/16"], "default_prefixlen": "29",
        "min_prefixlen": "24", "max_prefixlen": "30", "is_default": "false"}});
    let p = c.post("subnetpools", body).await.expect(201)["subnetpool"].clone();
    for (k, v) in [("default_prefixlen", 29), ("min_prefixlen", 24), ("max_prefixlen", 30), ("ip_version", 4)] {
        assert_eq!(p[k], json!(v), "{k} is an integer: {p}");
    }
    assert_eq!(p["is_default"], json!(false));
    assert_eq!(p["shared"], json!(false));
    assert!(p["revision_number"].is_i64());
    let pid = id(&p);
    let up = c.put(&format!("subnetpools/{pid}"), json!({"subnetpool": {"default_prefixlen": "28"}})).await.expect(200)
        ["subnetpool"]
        .clone();
    assert_eq!(up["default_prefixlen"], json!(28));
    let shown = c.get(&format!("subnetpools/{pid}")).await.expect(200)["subnetpool"].clone();
    assert_eq!(shown["default_prefixlen"], json!(28));
    assert_eq!(shown["min_prefixlen"], json!(24));
    // Other resources the same way.
    let n = c
        .post("networks", json!({"network": {"name": "n", "admin_state_up": "true", "mtu": "1400"}}))
        .await
        .expect(201)["network"]
        .clone();
    assert_eq!(n["admin_state_up"], json!(true));
    assert_eq!(n["mtu"], json!(1400));
    let s = c
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.1.0.0/24", "ip_version": "4", "enable_dhcp": "false"}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(s["ip_version"], json!(4));
    assert_eq!(s["enable_dhcp"], json!(false));
    let sg =
        c.post("security-groups", json!({"security_group": {"name": "g"}})).await.expect(201)["security_group"].clone();
    let r = c
        .post(
            "security-group-rules",
            json!({"security_group_rule": {"security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": "22", "port_range_max": "23"}}),
        )
        .await
        .expect(201)["security_group_rule"]
        .clone();
    assert_eq!(r["port_range_min"], json!(22));
    assert_eq!(r["port_range_max"], json!(23));
});

// Item 2: bulk creation of security groups, and of ports with tags
// (tag-ports-during-bulk-creation).
on_both_stores!(bulk_create, |srv: Server| async move {
    let c = srv.member(&project());
    let out = c
        .post("security-groups", json!({"security_groups": [{"name": "a"}, {"name": "b", "stateful": false}]}))
        .await
        .expect(201);
    let groups = out["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["name"], "a");
    assert_eq!(groups[1]["stateful"], false);
    assert_eq!(groups[0]["security_group_rules"].as_array().unwrap().len(), 2);
    let list = c.get("security-groups").await.expect(200)["security_groups"].as_array().unwrap().len();
    assert_eq!(list, 3, "the two and the project's default group");
    let n = c.network("n").await;
    let out = c
        .post(
            "ports",
            json!({"ports": [{"network_id": n["id"], "tags": ["red", "blue"]}, {"network_id": n["id"], "tags": []},
                {"network_id": n["id"]}]}),
        )
        .await
        .expect(201);
    let ports = out["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 3);
    let mut t: Vec<&str> = ports[0]["tags"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    t.sort();
    assert_eq!(t, ["blue", "red"]);
    assert_eq!(ports[1]["tags"], json!([]));
    let shown = c.get(&format!("ports/{}", id(&ports[0]))).await.expect(200)["port"].clone();
    assert_eq!(shown["tags"].as_array().unwrap().len(), 2);
    let tagged = c.get("ports?tags=red").await.expect(200)["ports"].as_array().unwrap().len();
    assert_eq!(tagged, 1);
});

// Item 3: subnet pools in address scopes.
on_both_stores!(subnetpool_address_scopes, |srv: Server| async move {
    let admin = srv.admin();
    let c = srv.member(&project());
    let shared = admin
        .post("address-scopes", json!({"address_scope": {"name": "s", "ip_version": 4, "shared": true}}))
        .await
        .expect(201)["address_scope"]
        .clone();
    let private =
        admin.post("address-scopes", json!({"address_scope": {"name": "p", "ip_version": 4}})).await.expect(201)
            ["address_scope"]
            .clone();
    let s = id(&shared);
    let first = admin
        .post("subnetpools", json!({"subnetpool": {"name": "a", "prefixes": ["10.10.0.0/16"], "address_scope_id": s}}))
        .await
        .expect(201)["subnetpool"]
        .clone();
    // Overlapping prefixes in one scope: 409 AddressScopePrefixConflict.
    admin
        .post("subnetpools", json!({"subnetpool": {"name": "b", "prefixes": ["10.10.5.0/24"], "address_scope_id": s}}))
        .await
        .fault(409, "AddressScopePrefixConflict");
    c.post("subnetpools", json!({"subnetpool": {"name": "b", "prefixes": ["10.0.0.0/8"], "address_scope_id": s}}))
        .await
        .fault(409, "AddressScopePrefixConflict");
    // A project's pool may use a shared scope of another owner...
    let mine = c
        .post("subnetpools", json!({"subnetpool": {"name": "m", "prefixes": ["10.20.0.0/16"], "address_scope_id": s}}))
        .await
        .expect(201)["subnetpool"]
        .clone();
    // ... but not another owner's private one (which it does not see).
    c.post(
        "subnetpools",
        json!({"subnetpool": {"name": "x", "prefixes": ["10.30.0.0/16"], "address_scope_id": id(&private)}}),
    )
    .await
    .fault(404, "AddressScopeNotFound");
    let other =
        c.post("subnetpools", json!({"subnetpool": {"name": "o", "prefixes": ["10.40.0.0/16"]}})).await.expect(201)
            ["subnetpool"]
            .clone();
    c.put(&format!("subnetpools/{}", id(&other)), json!({"subnetpool": {"address_scope_id": id(&private)}}))
        .await
        .fault(404, "AddressScopeNotFound");
    // Moving a pool into a scope, or growing it, must not overlap either.
    let clash =
        c.post("subnetpools", json!({"subnetpool": {"name": "c", "prefixes": ["10.10.9.0/24"]}})).await.expect(201)
            ["subnetpool"]
            .clone();
    c.put(&format!("subnetpools/{}", id(&clash)), json!({"subnetpool": {"address_scope_id": s}}))
        .await
        .fault(409, "AddressScopePrefixConflict");
    c.put(&format!("subnetpools/{}/add_prefixes", id(&mine)), json!({"prefixes": ["10.10.200.0/24"]}))
        .await
        .fault(409, "AddressScopePrefixConflict");
    c.put(&format!("subnetpools/{}/add_prefixes", id(&mine)), json!({"prefixes": ["10.21.0.0/16"]})).await.expect(200);
    c.put(&format!("subnetpools/{}", id(&mine)), json!({"subnetpool": {"prefixes": ["10.20.0.0/15", "10.10.0.0/24"]}}))
        .await
        .fault(409, "AddressScopePrefixConflict");
    // A scope of another IP version.
    let v6 = admin
        .post("address-scopes", json!({"address_scope": {"name": "six", "ip_version": 6, "shared": true}}))
        .await
        .expect(201)["address_scope"]
        .clone();
    c.post(
        "subnetpools",
        json!({"subnetpool": {"name": "v", "prefixes": ["10.50.0.0/16"], "address_scope_id": id(&v6)}}),
    )
    .await
    .fault(400, "IllegalSubnetPoolIpVersionAssociationToAddressScope");
    let _ = first;
});

// Item 3: MTU below the minimum of the network's subnets.
on_both_stores!(mtu_minimums, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    // No subnets: any MTU.
    c.put(&format!("networks/{}", id(&n)), json!({"network": {"mtu": 60}})).await.expect(200);
    c.post("subnets", json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24", "ip_version": 4}}))
        .await
        .fault(409, "NetworkMTUSubnetConflict");
    c.put(&format!("networks/{}", id(&n)), json!({"network": {"mtu": 1000}})).await.expect(200);
    c.subnet(&n, "10.0.0.0/24").await;
    c.put(&format!("networks/{}", id(&n)), json!({"network": {"mtu": 67}}))
        .await
        .fault(409, "NetworkMTUSubnetConflict");
    c.put(&format!("networks/{}", id(&n)), json!({"network": {"mtu": 68}})).await.expect(200);
    c.post("subnets", json!({"subnet": {"network_id": n["id"], "cidr": "2001:db8::/64", "ip_version": 6}}))
        .await
        .fault(409, "NetworkMTUSubnetConflict");
    c.put(&format!("networks/{}", id(&n)), json!({"network": {"mtu": 1280}})).await.expect(200);
    c.subnet(&n, "2001:db8::/64").await;
    c.put(&format!("networks/{}", id(&n)), json!({"network": {"mtu": 1279}}))
        .await
        .fault(409, "NetworkMTUSubnetConflict");
    assert_eq!(c.get(&format!("networks/{}", id(&n))).await.expect(200)["network"]["mtu"], json!(1280));
});

// Item 3: security groups of a port.
on_both_stores!(port_security_groups, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    c.subnet(&n, "10.0.0.0/24").await;
    let full =
        c.post("security-groups", json!({"security_group": {"name": "f"}})).await.expect(201)["security_group"].clone();
    let less = c.post("security-groups", json!({"security_group": {"name": "l", "stateful": false}})).await.expect(201)
        ["security_group"]
        .clone();
    // Stateful and stateless groups on one port: 409 SecurityGroupConflict.
    c.post("ports", json!({"port": {"network_id": n["id"], "security_groups": [full["id"], less["id"]]}}))
        .await
        .fault(409, "SecurityGroupConflict");
    let p =
        c.post("ports", json!({"port": {"network_id": n["id"], "security_groups": [full["id"]]}})).await.expect(201)
            ["port"]
            .clone();
    c.put(&format!("ports/{}", id(&p)), json!({"port": {"security_groups": [full["id"], less["id"]]}}))
        .await
        .fault(409, "SecurityGroupConflict");
    // The same group twice: refused by the uuid_list validator.
    let dup = c
        .post("ports", json!({"port": {"network_id": n["id"], "security_groups": [full["id"], full["id"]]}}))
        .await
        .fault(400, "HTTPBadRequest");
    assert!(dup["NeutronError"]["message"].as_str().unwrap().contains("Duplicate items in the list"), "{dup}");
    c.put(&format!("ports/{}", id(&p)), json!({"port": {"security_groups": [less["id"], less["id"]]}}))
        .await
        .fault(400, "HTTPBadRequest");
    let shown = c.get(&format!("ports/{}", id(&p))).await.expect(200)["port"].clone();
    assert_eq!(shown["security_groups"], json!([full["id"]]));
});

// Item 3: a port for a project Keystone does not know. Neutron's default
// pipeline does not look projects up (its project_id middleware is not in
// api-paste.ini's pipelines), so an admin may create it.
on_both_stores!(port_for_unknown_project, |srv: Server| async move {
    let admin = srv.admin();
    let n =
        admin.post("networks", json!({"network": {"name": "n", "shared": true}})).await.expect(201)["network"].clone();
    let p = admin
        .post("ports", json!({"port": {"network_id": n["id"], "project_id": "no-such-project"}}))
        .await
        .expect(201)["port"]
        .clone();
    assert_eq!(p["project_id"], "no-such-project");
});

// Item 3 and 4: subnet service_types values and policy.
on_both_stores!(subnet_service_types, |srv: Server| async move {
    let admin = srv.admin();
    let c = srv.member(&project());
    let n = c.network("n").await;
    let bad = admin
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "service_types": ["foo"]}}),
        )
        .await
        .fault(400, "InvalidSubnetServiceType");
    assert!(bad["NeutronError"]["message"].as_str().unwrap().contains("foo"));
    admin
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "service_types": [7]}}),
        )
        .await
        .fault(400, "InvalidInputSubnetServiceType");
    let s = admin
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "project_id": c.project,
                "service_types": ["network:foo", "compute:nova", "neutron:bar"]}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(s["service_types"], json!(["network:foo", "compute:nova", "neutron:bar"]));
    let sid = id(&s);
    // Only an admin sets them, on create and on update (even restating them).
    c.post(
        "subnets",
        json!({"subnet": {"network_id": n["id"], "cidr": "10.1.0.0/24", "ip_version": 4, "service_types": ["network:x"]}}),
    )
    .await
    .fault(403, "PolicyNotAuthorized");
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"service_types": ["network:dhcp"]}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"service_types": s["service_types"]}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"name": "renamed"}})).await.expect(200);
    admin
        .put(&format!("subnets/{sid}"), json!({"subnet": {"service_types": ["bogus"]}}))
        .await
        .fault(400, "InvalidSubnetServiceType");
    let up = admin.put(&format!("subnets/{sid}"), json!({"subnet": {"service_types": []}})).await.expect(200);
    assert_eq!(up["subnet"]["service_types"], json!([]));
});

// Item 4: floating IP updates and cross-project association by an admin.
on_both_stores!(floatingip_updates, |srv: Server| async move {
    let admin = srv.admin();
    let c = srv.member(&project());
    let ext = external(&admin, "203.0.113.0/24").await;
    let n = c.network("n").await;
    let sn = c.subnet(&n, "10.0.0.0/24").await;
    let r = c
        .post("routers", json!({"router": {"name": "r", "external_gateway_info": {"network_id": ext["id"]}}}))
        .await
        .expect(201)["router"]
        .clone();
    c.put(&format!("routers/{}/add_router_interface", id(&r)), json!({"subnet_id": sn["id"]})).await.expect(200);
    let port = c.port(&n).await;
    // The admin's own floating IP on the member's port.
    let f = admin.post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"]}})).await.expect(201)
        ["floatingip"]
        .clone();
    let fid = id(&f);
    let up = admin.put(&format!("floatingips/{fid}"), json!({"floatingip": {"port_id": port["id"]}})).await.expect(200)
        ["floatingip"]
        .clone();
    assert_eq!(up["port_id"], port["id"]);
    assert_eq!(up["router_id"], r["id"]);
    // A description update keeps the association.
    let up = admin.put(&format!("floatingips/{fid}"), json!({"floatingip": {"description": "d"}})).await.expect(200)
        ["floatingip"]
        .clone();
    assert_eq!(up["description"], "d");
    assert_eq!(up["port_id"], port["id"]);
    // A fixed address needs a port.
    admin
        .put(&format!("floatingips/{fid}"), json!({"floatingip": {"fixed_ip_address": "10.0.0.9"}}))
        .await
        .fault(400, "BadRequest");
    // A blank update clears it.
    let up =
        admin.put(&format!("floatingips/{fid}"), json!({"floatingip": {}})).await.expect(200)["floatingip"].clone();
    assert_eq!(up["port_id"], Value::Null);
    assert_eq!(up["fixed_ip_address"], Value::Null);
    assert_eq!(up["router_id"], Value::Null);
    assert_eq!(up["description"], "d");
    // The member's own floating IP: same rules.
    let mf = c
        .post("floatingips", json!({"floatingip": {"floating_network_id": ext["id"], "port_id": port["id"]}}))
        .await
        .expect(201)["floatingip"]
        .clone();
    let up =
        c.put(&format!("floatingips/{}", id(&mf)), json!({"floatingip": {}})).await.expect(200)["floatingip"].clone();
    assert_eq!(up["port_id"], Value::Null);
});

// Item 4: the gateway of a subnet a router interface holds.
on_both_stores!(router_interface_gateway, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    let sn = c
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24", "ip_version": 4,
                "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.200"}]}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    let sid = id(&sn);
    // Without a router port on it the gateway moves freely.
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.2"}})).await.expect(200);
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.1"}})).await.expect(200);
    let r = c.post("routers", json!({"router": {"name": "r"}})).await.expect(201)["router"].clone();
    let i = c.put(&format!("routers/{}/add_router_interface", id(&r)), json!({"subnet_id": sid})).await.expect(200);
    let held = c
        .put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.3"}}))
        .await
        .fault(409, "GatewayIpInUse");
    assert!(held["NeutronError"]["message"].as_str().unwrap().contains(i["port_id"].as_str().unwrap()), "{held}");
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": null}})).await.fault(409, "GatewayIpInUse");
    // Restating it is no change.
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.1"}})).await.expect(200);
    c.put(&format!("routers/{}/remove_router_interface", id(&r)), json!({"subnet_id": sid})).await.expect(200);
    let up = c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.3"}})).await.expect(200);
    assert_eq!(up["subnet"]["gateway_ip"], "10.0.0.3");
});

// Item 3: a new group's rules must fit in the security_group_rule quota
// (Neutron's quota_limit_check with the number of template rules).
on_both_stores!(security_group_rule_quota, |srv: Server| async move {
    let p = project();
    let c = srv.member(&p);
    let admin = srv.admin();
    admin.put(&format!("quotas/{p}"), json!({"quota": {"security_group_rule": 3}})).await.expect(200);
    // The default group (4 rules) is made first and does not fit.
    c.post("security-groups", json!({"security_group": {"name": "a"}})).await.fault(409, "OverQuota");
    admin.put(&format!("quotas/{p}"), json!({"quota": {"security_group_rule": 100}})).await.expect(200);
    c.post("security-groups", json!({"security_group": {"name": "a"}})).await.expect(201);
    admin.put(&format!("quotas/{p}"), json!({"quota": {"security_group_rule": 1}})).await.expect(200);
    c.post("security-groups", json!({"security_group": {"name": "b"}})).await.fault(409, "OverQuota");
    c.post("security-groups", json!({"security_groups": [{"name": "c"}]})).await.fault(409, "OverQuota");
});

// Item 4: router quota usage comes back after concurrent creates and
// deletes (also deletes of one router racing each other).
async fn router_churn(servers: Vec<Client>, admin: Client, project: String) {
    admin.put(&format!("quotas/{project}"), json!({"quota": {"router": 3}})).await.expect(200);
    let ext = external(&admin, "198.51.100.0/24").await;
    let mut tasks = vec![];
    for (i, c) in servers.iter().cycle().take(8).cloned().enumerate() {
        let ext = ext["id"].clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..12 {
                let gw = if k % 2 == 0 { json!({"network_id": ext}) } else { Value::Null };
                let r = c
                    .post("routers", json!({"router": {"name": format!("r{i}-{k}"), "external_gateway_info": gw}}))
                    .await;
                match r.status {
                    201 => {
                        let rid = r.body["router"]["id"].as_str().unwrap().to_string();
                        let path = format!("routers/{rid}");
                        let (a, b) = tokio::join!(c.delete(&path), c.delete(&path));
                        let mut st = [a.status, b.status];
                        st.sort();
                        assert_eq!(st, [204, 404], "one delete wins: {} {}", a.body, b.body);
                    }
                    409 => assert_eq!(r.body["NeutronError"]["type"], "OverQuota", "{}", r.body),
                    s => panic!("unexpected {s}: {}", r.body),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let c = &servers[0];
    assert_eq!(c.get("routers").await.expect(200)["routers"].as_array().unwrap().len(), 0);
    let d = c.get(&format!("quotas/{project}/details")).await.expect(200)["quota"]["router"].clone();
    assert_eq!(d["used"], 0, "usage came back: {d}");
    for k in 0..3 {
        c.post("routers", json!({"router": {"name": format!("after{k}")}})).await.expect(201);
    }
    c.post("routers", json!({"router": {"name": "over"}})).await.fault(409, "OverQuota");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn router_quota_under_concurrency_postgres_two_servers() {
    let db = std::sync::Arc::new(common::PgDb::create());
    let a = Server::start_server(db.clone(), &[]).await;
    let b = Server::start_server(db.clone(), &[]).await;
    let p = project();
    router_churn(vec![a.member(&p), b.member(&p)], a.admin(), p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn router_quota_under_concurrency_sqlite() {
    let srv = Server::start(common::StoreKind::Sqlite).await;
    let p = project();
    router_churn(vec![srv.member(&p)], srv.admin(), p).await;
}

// Item 5: the physical networks `[ml2_type_vlan] network_vlan_ranges` names
// take VLAN provider networks with no further step (with or without a range).
async fn vlan_physnets_from_config(srv: Server) {
    let admin = srv.admin();
    let vlan = |physnet: &str, id: Option<i64>| {
        let mut n = json!({"name": "v", "provider:network_type": "vlan", "provider:physical_network": physnet});
        if let Some(i) = id {
            n["provider:segmentation_id"] = json!(i);
        }
        json!({ "network": n })
    };
    let n = admin.post("networks", vlan("physnet1", Some(150))).await.expect(201)["network"].clone();
    assert_eq!(n["provider:physical_network"], "physnet1");
    assert_eq!(n["provider:segmentation_id"], 150);
    // Outside the tenant range is fine for a provider network.
    admin.post("networks", vlan("physnet1", Some(3000))).await.expect(201);
    // Without a segmentation id: allocated from the physnet's range.
    let a = admin.post("networks", vlan("physnet1", None)).await.expect(201)["network"].clone();
    let seg = a["provider:segmentation_id"].as_i64().unwrap();
    assert!((100..=200).contains(&seg), "{a}");
    // A physnet named without a range takes explicit ids.
    admin.post("networks", vlan("datacentre", Some(42))).await.expect(201);
    admin.post("networks", vlan("nowhere", Some(42))).await.fault(400, "InvalidInput");
}

fn vlan_config() -> (common::tempdir::Dir, String) {
    let dir = common::tempdir::Dir::new();
    let path = dir.0.join("ml2_conf.ini");
    std::fs::write(
        &path,
        "[ml2]\ntype_drivers = flat,vlan,vxlan\ntenant_network_types = vxlan\nmechanism_drivers = openvswitch\n\
         [ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:200,datacentre\n",
    )
    .unwrap();
    let p = path.display().to_string();
    (dir, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlan_physnets_from_config_sqlite() {
    let (_dir, cfg) = vlan_config();
    let srv = Server::start_up(&["--config", &cfg]).await;
    vlan_physnets_from_config(srv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlan_physnets_from_config_postgres() {
    let (_dir, cfg) = vlan_config();
    let db = std::sync::Arc::new(common::PgDb::create());
    let srv = Server::start_server(db, &["--config", &cfg]).await;
    vlan_physnets_from_config(srv).await;
}
