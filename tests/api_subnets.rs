//! Subnets and IPAM over real HTTP, on SQLite and PostgreSQL.

mod common;

use common::{project, Server};
use serde_json::{json, Value};

on_both_stores!(defaults_and_crud, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    let s = c
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "name": "s",
            "dns_nameservers": ["8.8.8.8", "1.1.1.1"], "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(s["gateway_ip"], "10.0.0.1");
    assert_eq!(s["allocation_pools"], json!([{"start": "10.0.0.2", "end": "10.0.0.254"}]));
    assert_eq!(s["dns_nameservers"], json!(["8.8.8.8", "1.1.1.1"]));
    assert_eq!(s["host_routes"][0]["nexthop"], "10.0.0.254");
    assert_eq!(s["enable_dhcp"], true);
    assert_eq!(s["ip_version"], 4);
    assert_eq!(s["ipv6_ra_mode"], Value::Null);
    assert_eq!(s["subnetpool_id"], Value::Null);
    assert_eq!(s["service_types"], json!([]));
    let sid = s["id"].as_str().unwrap();
    let net = c.get(&format!("networks/{}", n["id"].as_str().unwrap())).await.expect(200)["network"].clone();
    assert_eq!(net["subnets"], json!([sid]));
    assert_eq!(net["revision_number"], 2, "adding a subnet bumps the network");
    // Update: gateway, DNS, routes, DHCP, name.
    let up = c
        .put(
            &format!("subnets/{sid}"),
            json!({"subnet": {"name": "s2", "enable_dhcp": false, "dns_nameservers": [], "gateway_ip": null}}),
        )
        .await
        .expect(200)["subnet"]
        .clone();
    assert_eq!(up["gateway_ip"], Value::Null);
    assert_eq!(up["enable_dhcp"], false);
    assert_eq!(up["dns_nameservers"], json!([]));
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"cidr": "10.1.0.0/24"}})).await.fault(400, "HTTPBadRequest");
    // No gateway, the default pool covers .1 too.
    let s3 = c
        .post(
            "subnets",
            json!({"subnet": {"network_id": n["id"], "cidr": "10.3.0.0/29", "ip_version": 4, "gateway_ip": null}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(s3["allocation_pools"], json!([{"start": "10.3.0.1", "end": "10.3.0.6"}]));
    c.delete(&format!("subnets/{sid}")).await.expect(204);
    c.get(&format!("subnets/{sid}")).await.fault(404, "SubnetNotFound");
});

on_both_stores!(validation, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    let post = |body: Value| {
        let c = c.clone();
        async move { c.post("subnets", json!({ "subnet": body })).await }
    };
    let net = n["id"].clone();
    post(json!({"network_id": net, "cidr": "10.0.0.1/24", "ip_version": 4})).await.fault(400, "HTTPBadRequest");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24"})).await.fault(400, "HTTPBadRequest");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 5})).await.fault(400, "HTTPBadRequest");
    post(json!({"network_id": net, "cidr": "2001:db8::/64", "ip_version": 4})).await.fault(400, "InvalidInput");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.1.1"}))
        .await
        .fault(400, "InvalidInput");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.1.5"}]}))
        .await
        .fault(400, "OutOfBoundsAllocationPool");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4,
        "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"}, {"start": "10.0.0.15", "end": "10.0.0.30"}]}))
    .await
    .fault(400, "OverlappingAllocationPools");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "allocation_pools": [{"start": "10.0.0.20", "end": "10.0.0.10"}]}))
        .await
        .fault(400, "InvalidAllocationPool");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.5", "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.10"}]}))
        .await
        .fault(409, "GatewayConflictWithAllocationPools");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "dns_nameservers": ["1.1.1.1", "1.1.1.1"]}))
        .await
        .fault(400, "HTTPBadRequest");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "dns_nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6"]}))
        .await
        .fault(400, "DNSNameServersExhausted");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "host_routes": [{"destination": "10.5.0.0/16"}]})).await.fault(400, "HTTPBadRequest");
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4, "ipv6_ra_mode": "slaac"}))
        .await
        .fault(400, "InvalidInput");
    post(json!({"network_id": "00000000-0000-0000-0000-000000000000", "cidr": "10.0.0.0/24", "ip_version": 4}))
        .await
        .fault(404, "NetworkNotFound");
    // Overlap on the same network is refused; on another network it is fine.
    post(json!({"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4})).await.expect(201);
    post(json!({"network_id": net, "cidr": "10.0.0.128/25", "ip_version": 4})).await.fault(400, "InvalidInput");
    let n2 = c.network("n2").await;
    c.subnet(&n2, "10.0.0.0/24").await;
    // IPv6 address modes.
    post(json!({"network_id": net, "cidr": "2001:db8::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}))
        .await
        .fault(400, "InvalidInput");
    post(json!({"network_id": net, "cidr": "2001:db8::/80", "ip_version": 6, "ipv6_address_mode": "slaac"}))
        .await
        .fault(400, "InvalidInput");
    assert_eq!(c.get("subnets").await.expect(200)["subnets"].as_array().unwrap().len(), 2, "nothing half-written");
});

on_both_stores!(pools_update_and_in_use, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("n").await;
    let s = c
        .post("subnets", json!({"subnet": {"network_id": n["id"], "cidr": "10.0.0.0/28", "ip_version": 4, "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.3"}]}}))
        .await
        .expect(201)["subnet"]
        .clone();
    let sid = s["id"].as_str().unwrap();
    let p1 = c.port(&n).await;
    let p2 = c.port(&n).await;
    assert_eq!(p1["fixed_ips"][0]["ip_address"], "10.0.0.2");
    assert_eq!(p2["fixed_ips"][0]["ip_address"], "10.0.0.3");
    c.post("ports", json!({"port": {"network_id": n["id"]}})).await.fault(409, "IpAddressGenerationFailure");
    // Grow the pool: the next port gets the next address, never an allocated one.
    c.put(
        &format!("subnets/{sid}"),
        json!({"subnet": {"allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.5"}]}}),
    )
    .await
    .expect(200);
    assert_eq!(c.port(&n).await["fixed_ips"][0]["ip_address"], "10.0.0.4");
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.5"}}))
        .await
        .fault(409, "GatewayConflictWithAllocationPools");
    c.put(&format!("subnets/{sid}"), json!({"subnet": {"gateway_ip": "10.0.0.2"}})).await.fault(409, "GatewayIpInUse");
    c.delete(&format!("subnets/{sid}")).await.fault(409, "SubnetInUse");
    // Releasing an address makes it available again.
    c.delete(&format!("ports/{}", p1["id"].as_str().unwrap())).await.expect(204);
    assert_eq!(c.port(&n).await["fixed_ips"][0]["ip_address"], "10.0.0.2");
    let avail = srv.admin().get(&format!("network-ip-availabilities/{}", n["id"].as_str().unwrap())).await.expect(200);
    let a = &avail["network_ip_availability"];
    assert_eq!(a["total_ips"], 4);
    assert_eq!(a["used_ips"], 3);
    assert_eq!(a["subnet_ip_availability"][0]["cidr"], "10.0.0.0/28");
    c.get("network-ip-availabilities").await.fault(403, "PolicyNotAuthorized");
});

on_both_stores!(ipv6_slaac_and_stateful, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("v6").await;
    let slaac = c
        .post("subnets", json!({"subnet": {"network_id": n["id"], "cidr": "2001:db8:1::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}))
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(slaac["gateway_ip"], "2001:db8:1::1");
    let p =
        c.post("ports", json!({"port": {"network_id": n["id"], "mac_address": "fa:16:3e:12:34:56"}})).await.expect(201)
            ["port"]
            .clone();
    assert_eq!(p["fixed_ips"][0]["ip_address"], "2001:db8:1:0:f816:3eff:fe12:3456", "EUI-64 from the MAC");
    // A stateful subnet added later gives new ports one address from it too.
    let st = c
        .post("subnets", json!({"subnet": {"network_id": n["id"], "cidr": "2001:db8:2::/64", "ip_version": 6, "ipv6_address_mode": "dhcpv6-stateful"}}))
        .await
        .expect(201)["subnet"]
        .clone();
    let p2 =
        c.post("ports", json!({"port": {"network_id": n["id"], "mac_address": "fa:16:3e:00:00:01"}})).await.expect(201)
            ["port"]
            .clone();
    let addrs: Vec<&str> =
        p2["fixed_ips"].as_array().unwrap().iter().map(|f| f["ip_address"].as_str().unwrap()).collect();
    assert!(addrs.contains(&"2001:db8:2::2"), "{addrs:?}");
    assert!(addrs.contains(&"2001:db8:1:0:f816:3eff:fe00:1"), "{addrs:?}");
    // A new SLAAC subnet gives existing ports an address as well.
    c.post("subnets", json!({"subnet": {"network_id": n["id"], "cidr": "2001:db8:3::/64", "ip_version": 6, "ipv6_address_mode": "slaac"}})).await.expect(201);
    let p = c.get(&format!("ports/{}", p["id"].as_str().unwrap())).await.expect(200)["port"].clone();
    assert_eq!(p["fixed_ips"].as_array().unwrap().len(), 2);
    // An explicit address on a SLAAC subnet must be the EUI-64 one.
    c.post("ports", json!({"port": {"network_id": n["id"], "fixed_ips": [{"subnet_id": slaac["id"], "ip_address": "2001:db8:1::99"}]}}))
        .await
        .fault(400, "AllocationOnAutoAddressSubnet");
    // Deleting a SLAAC subnet takes its addresses from the ports.
    c.delete(&format!("subnets/{}", slaac["id"].as_str().unwrap())).await.expect(204);
    let p = c.get(&format!("ports/{}", p["id"].as_str().unwrap())).await.expect(200)["port"].clone();
    assert_eq!(p["fixed_ips"].as_array().unwrap().len(), 1);
    let _ = st;
});

on_both_stores!(subnet_pools, |srv: Server| async move {
    let c = srv.member(&project());
    let pool = c
        .post("subnetpools", json!({"subnetpool": {"name": "p", "prefixes": ["10.10.0.0/16"], "default_prefixlen": 24, "min_prefixlen": 20, "max_prefixlen": 28}}))
        .await
        .expect(201)["subnetpool"]
        .clone();
    assert_eq!(pool["ip_version"], 4);
    let pid = pool["id"].as_str().unwrap();
    let n = c.network("n").await;
    let s1 = c
        .post("subnets", json!({"subnet": {"network_id": n["id"], "subnetpool_id": pid, "ip_version": 4}}))
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(s1["cidr"], "10.10.0.0/24");
    assert_eq!(s1["subnetpool_id"], pid);
    let n2 = c.network("n2").await;
    let s2 = c
        .post(
            "subnets",
            json!({"subnet": {"network_id": n2["id"], "subnetpool_id": pid, "ip_version": 4, "prefixlen": 26}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    assert_eq!(s2["cidr"], "10.10.1.0/26");
    c.post(
        "subnets",
        json!({"subnet": {"network_id": n2["id"], "subnetpool_id": pid, "ip_version": 4, "prefixlen": 30}}),
    )
    .await
    .fault(400, "IllegalSubnetPoolPrefixLength");
    c.post(
        "subnets",
        json!({"subnet": {"network_id": n2["id"], "subnetpool_id": pid, "ip_version": 4, "cidr": "10.10.0.128/25"}}),
    )
    .await
    .fault(409, "SubnetAllocationError");
    c.post(
        "subnets",
        json!({"subnet": {"network_id": n2["id"], "subnetpool_id": pid, "ip_version": 4, "cidr": "10.20.0.0/24"}}),
    )
    .await
    .fault(400, "IllegalSubnetPoolPrefixBounds");
    c.delete(&format!("subnetpools/{pid}")).await.fault(409, "SubnetPoolInUse");
    let up = c
        .put(
            &format!("subnetpools/{pid}"),
            json!({"subnetpool": {"prefixes": ["10.10.0.0/16", "10.30.0.0/16"], "name": "p2"}}),
        )
        .await
        .expect(200)["subnetpool"]
        .clone();
    assert_eq!(up["prefixes"].as_array().unwrap().len(), 2);
    c.put(&format!("subnetpools/{pid}"), json!({"subnetpool": {"prefixes": ["10.30.0.0/16"]}}))
        .await
        .fault(400, "IllegalSubnetPoolPrefixUpdate");
    let added =
        c.put(&format!("subnetpools/{pid}/add_prefixes"), json!({"prefixes": ["10.31.0.0/16"]})).await.expect(200);
    assert_eq!(added["prefixes"], json!(["10.10.0.0/16", "10.30.0.0/15"]));
    let removed =
        c.put(&format!("subnetpools/{pid}/remove_prefixes"), json!({"prefixes": ["10.31.0.0/16"]})).await.expect(200);
    assert_eq!(removed["prefixes"], json!(["10.10.0.0/16", "10.30.0.0/16"]));
    c.put(&format!("subnetpools/{pid}/remove_prefixes"), json!({"prefixes": ["10.10.0.0/16"]}))
        .await
        .fault(409, "IllegalSubnetPoolUpdate");
    c.post("subnetpools", json!({"subnetpool": {"name": "mixed", "prefixes": ["10.0.0.0/8", "2001:db8::/32"]}}))
        .await
        .fault(400, "PrefixVersionMismatch");
    c.post("subnetpools", json!({"subnetpool": {"prefixes": ["10.0.0.0/8"]}})).await.fault(400, "HTTPBadRequest");
});
