//! Ports over real HTTP, on SQLite and PostgreSQL.

mod common;

use common::{project, Server};
use serde_json::{json, Value};

fn ips(p: &Value) -> Vec<String> {
    p["fixed_ips"].as_array().unwrap().iter().map(|f| f["ip_address"].as_str().unwrap().to_string()).collect()
}

on_both_stores!(create_update_delete, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    let s = c.subnet(&n, "10.0.0.0/24").await;
    let p = c
        .post(
            "ports",
            json!({"port": {"network_id": n["id"], "name": "p1", "device_id": "vm-1", "device_owner": "compute:nova"}}),
        )
        .await
        .expect(201)["port"]
        .clone();
    let mac = p["mac_address"].as_str().unwrap();
    assert!(mac.starts_with("fa:16:3e:") && mac.len() == 17, "{mac}");
    assert_eq!(ips(&p), vec!["10.0.0.2"]);
    assert_eq!(p["fixed_ips"][0]["subnet_id"], s["id"]);
    assert_eq!(p["status"], "DOWN");
    assert_eq!(p["admin_state_up"], true);
    assert_eq!(p["port_security_enabled"], true);
    assert_eq!(p["security_groups"].as_array().unwrap().len(), 1, "the project's default group");
    assert_eq!(p["allowed_address_pairs"], json!([]));
    assert_eq!(p["extra_dhcp_opts"], json!([]));
    assert_eq!(p["dns_assignment"][0]["hostname"], "host-10-0-0-2");
    let sg = c.get(&format!("security-groups/{}", p["security_groups"][0].as_str().unwrap())).await.expect(200)
        ["security_group"]
        .clone();
    assert_eq!(sg["name"], "default");
    let pid = p["id"].as_str().unwrap();
    // Explicit addresses, a second address, release on update.
    let p2 = c
        .post("ports", json!({"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}}))
        .await
        .expect(201)["port"]
        .clone();
    assert_eq!(ips(&p2), vec!["10.0.0.50"]);
    c.post("ports", json!({"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}}))
        .await
        .fault(409, "IpAddressAlreadyAllocated");
    c.post("ports", json!({"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "10.9.0.5"}]}}))
        .await
        .fault(400, "InvalidIpForNetwork");
    c.post(
        "ports",
        json!({"port": {"network_id": n["id"], "fixed_ips": [{"subnet_id": s["id"], "ip_address": "10.0.0.255"}]}}),
    )
    .await
    .fault(400, "InvalidIpForSubnet");
    c.post(
        "ports",
        json!({"port": {"network_id": n["id"], "fixed_ips": [{"subnet_id": "00000000-0000-0000-0000-000000000000"}]}}),
    )
    .await
    .fault(400, "InvalidInput");
    let up = c
        .put(
            &format!("ports/{pid}"),
            json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.2"}, {"subnet_id": s["id"]}], "name": "renamed"}}),
        )
        .await
        .expect(200)["port"]
        .clone();
    let mut got = ips(&up);
    got.sort();
    assert_eq!(got, vec!["10.0.0.2", "10.0.0.3"]);
    assert_eq!(up["revision_number"], 2);
    let up =
        c.put(&format!("ports/{pid}"), json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.3"}]}})).await.expect(200)
            ["port"]
            .clone();
    assert_eq!(ips(&up), vec!["10.0.0.3"]);
    // 10.0.0.2 was released: the next port takes it.
    let p3 = c.port(&n).await;
    assert_eq!(ips(&p3), vec!["10.0.0.2"]);
    // MACs: given, duplicate, regenerate.
    let p4 =
        c.post("ports", json!({"port": {"network_id": n["id"], "mac_address": "FA:16:3E:AA:BB:CC"}})).await.expect(201)
            ["port"]
            .clone();
    assert_eq!(p4["mac_address"], "fa:16:3e:aa:bb:cc");
    c.post("ports", json!({"port": {"network_id": n["id"], "mac_address": "fa:16:3e:aa:bb:cc"}}))
        .await
        .fault(409, "MacAddressInUse");
    c.put(&format!("ports/{pid}"), json!({"port": {"mac_address": "fa:16:3e:aa:bb:cc"}}))
        .await
        .fault(409, "MacAddressInUse");
    let n2 = c.network("n2").await;
    c.post("ports", json!({"port": {"network_id": n2["id"], "mac_address": "fa:16:3e:aa:bb:cc"}})).await.expect(201);
    let regen = c
        .put(&format!("ports/{}", p4["id"].as_str().unwrap()), json!({"port": {"mac_address": null}}))
        .await
        .expect(200)["port"]
        .clone();
    assert_ne!(regen["mac_address"], "fa:16:3e:aa:bb:cc");
    c.post("ports", json!({"port": {"network_id": n["id"], "mac_address": "zz:16:3e:aa:bb:cc"}}))
        .await
        .fault(400, "HTTPBadRequest");
    // Filters.
    let by_dev = c.get("ports?device_id=vm-1").await.expect(200);
    assert_eq!(by_dev["ports"].as_array().unwrap().len(), 1);
    let by_ip = c.get("ports?fixed_ips=ip_address%3D10.0.0.50").await.expect(200);
    assert_eq!(by_ip["ports"][0]["id"], p2["id"]);
    let by_sub = c.get("ports?fixed_ips=ip_address_substr%3D0.0.5").await.expect(200);
    assert_eq!(by_sub["ports"].as_array().unwrap().len(), 1);
    let listed =
        c.get("ports?fields=id&fields=name&fields=mac_address&fields=fixed_ips&fields=status").await.expect(200);
    assert_eq!(listed["ports"][0].as_object().unwrap().len(), 5);
    // Delete releases.
    c.delete(&format!("ports/{}", p2["id"].as_str().unwrap())).await.expect(204);
    c.post("ports", json!({"port": {"network_id": n["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}}))
        .await
        .expect(201);
    c.get(&format!("ports/{}", p2["id"].as_str().unwrap())).await.fault(404, "PortNotFound");
    // A network with no subnet: ports without addresses.
    let bare = c.port(&n2).await;
    assert_eq!(bare["fixed_ips"], json!([]));
});

on_both_stores!(exhaustion_and_bulk, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    c.subnet(&n, "10.0.0.0/29").await; // .2-.6: five addresses
    let mut got = vec![];
    for _ in 0..5 {
        got.push(ips(&c.port(&n).await)[0].clone());
    }
    assert_eq!(got, vec!["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    c.post("ports", json!({"port": {"network_id": n["id"]}})).await.fault(409, "IpAddressGenerationFailure");
    // Bulk: all or nothing.
    let n2 = c.network("n2").await;
    c.subnet(&n2, "10.1.0.0/24").await;
    let r = c
        .post("ports", json!({"ports": [{"network_id": n2["id"], "name": "a"}, {"network_id": n2["id"], "name": "b"}]}))
        .await
        .expect(201);
    assert_eq!(r["ports"].as_array().unwrap().len(), 2);
    c.post("ports", json!({"ports": [{"network_id": n2["id"], "fixed_ips": [{"ip_address": "10.1.0.100"}]}, {"network_id": n2["id"], "fixed_ips": [{"ip_address": "10.1.0.2"}]}]}))
        .await
        .fault(409, "IpAddressAlreadyAllocated");
    // 10.1.0.100 was not kept by the failed bulk request.
    c.post("ports", json!({"port": {"network_id": n2["id"], "fixed_ips": [{"ip_address": "10.1.0.100"}]}}))
        .await
        .expect(201);
    assert_eq!(
        c.get(&format!("ports?network_id={}", n2["id"].as_str().unwrap())).await.expect(200)["ports"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Tags in a bulk create (tag-ports-during-bulk-creation).
    let t = c.post("ports", json!({"ports": [{"network_id": n2["id"], "tags": ["x", "y"]}]})).await.expect(201);
    assert_eq!(t["ports"][0]["tags"], json!(["x", "y"]));
});

on_both_stores!(security_and_pairs, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    c.subnet(&n, "10.0.0.0/24").await;
    let p = c.post("ports", json!({"port": {"network_id": n["id"], "security_groups": []}})).await.expect(201)["port"]
        .clone();
    assert_eq!(p["security_groups"], json!([]));
    c.post(
        "ports",
        json!({"port": {"network_id": n["id"], "security_groups": ["00000000-0000-0000-0000-000000000000"]}}),
    )
    .await
    .fault(404, "SecurityGroupNotFound");
    let ps =
        c.post("ports", json!({"port": {"network_id": n["id"], "port_security_enabled": false}})).await.expect(201)
            ["port"]
            .clone();
    assert_eq!(ps["security_groups"], json!([]));
    let sg = c.post("security-groups", json!({"security_group": {"name": "web"}})).await.expect(201)["security_group"]
        .clone();
    c.post(
        "ports",
        json!({"port": {"network_id": n["id"], "port_security_enabled": false, "security_groups": [sg["id"]]}}),
    )
    .await
    .fault(400, "PortSecurityAndIPRequiredForSecurityGroups");
    c.post("ports", json!({"port": {"network_id": n["id"], "port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "10.0.0.99"}]}}))
        .await
        .fault(409, "AddressPairAndPortSecurityRequired");
    let pid = p["id"].as_str().unwrap();
    let aap = c
        .put(&format!("ports/{pid}"), json!({"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.99"}, {"ip_address": "10.0.1.0/24", "mac_address": "fa:16:3e:00:00:09"}], "security_groups": [sg["id"]]}}))
        .await
        .expect(200)["port"]
        .clone();
    assert_eq!(aap["allowed_address_pairs"][0]["mac_address"], p["mac_address"], "pair MAC defaults to the port's");
    assert_eq!(aap["security_groups"], json!([sg["id"]]));
    c.put(&format!("ports/{pid}"), json!({"port": {"allowed_address_pairs": [{"ip_address": "224.0.0.5"}]}}))
        .await
        .fault(400, "InvalidInput");
    c.put(&format!("ports/{pid}"), json!({"port": {"allowed_address_pairs": [{"mac_address": "fa:16:3e:00:00:09"}]}}))
        .await
        .fault(400, "HTTPBadRequest");
    let sg_ports = c.get(&format!("ports?security_groups={}", sg["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(sg_ports["ports"].as_array().unwrap().len(), 1);
    c.delete(&format!("security-groups/{}", sg["id"].as_str().unwrap())).await.fault(409, "SecurityGroupInUse");
    // Extra DHCP options: add, update, remove with null.
    let o = c
        .put(&format!("ports/{pid}"), json!({"port": {"extra_dhcp_opts": [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}, {"opt_name": "tftp-server", "opt_value": "10.0.0.9"}]}}))
        .await
        .expect(200)["port"]
        .clone();
    assert_eq!(o["extra_dhcp_opts"].as_array().unwrap().len(), 2);
    let o = c
        .put(
            &format!("ports/{pid}"),
            json!({"port": {"extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": null}]}}),
        )
        .await
        .expect(200)["port"]
        .clone();
    assert_eq!(
        o["extra_dhcp_opts"],
        json!([{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}])
    );
    // Disabling port security with groups attached is refused.
    c.put(&format!("ports/{pid}"), json!({"port": {"port_security_enabled": false}}))
        .await
        .fault(409, "PortSecurityPortHasSecurityGroup");
});

on_both_stores!(policy, |srv: Server| async move {
    let pa = project();
    let a = srv.member(&pa);
    let b = srv.member(&project());
    let admin = srv.admin();
    let n = a.network("n").await;
    a.subnet(&n, "10.0.0.0/24").await;
    let p = a.port(&n).await;
    let pid = p["id"].as_str().unwrap();
    b.get(&format!("ports/{pid}")).await.fault(404, "PortNotFound");
    b.delete(&format!("ports/{pid}")).await.fault(404, "PortNotFound");
    assert!(b.get("ports").await.expect(200)["ports"].as_array().unwrap().is_empty());
    a.put(&format!("ports/{pid}"), json!({"port": {"binding:host_id": "compute1"}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    a.post("ports", json!({"port": {"network_id": n["id"], "binding:profile": {"a": 1}}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    let bound = admin.put(&format!("ports/{pid}"), json!({"port": {"binding:host_id": "compute1"}})).await.expect(200)
        ["port"]
        .clone();
    assert_eq!(bound["binding:host_id"], "compute1");
    assert!(a.get(&format!("ports/{pid}")).await.expect(200)["port"].get("binding:host_id").is_none());
    srv.reader(&pa).post("ports", json!({"port": {"network_id": n["id"]}})).await.fault(403, "PolicyNotAuthorized");
    // Ports on a network a project cannot see do not exist for it.
    b.post("ports", json!({"port": {"network_id": n["id"]}})).await.fault(404, "NetworkNotFound");
});
