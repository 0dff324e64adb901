//! Security groups and rules over real HTTP, on SQLite and PostgreSQL.

mod common;

use common::{project, Server};
use serde_json::{json, Value};

on_both_stores!(groups, |srv: Server| async move {
    let c = srv.member(&project());
    let list = c.get("security-groups").await.expect(200);
    let groups = list["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "listing creates the project's default group");
    let d = &groups[0];
    assert_eq!(d["name"], "default");
    let rules = d["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert_eq!(rules.iter().filter(|r| r["direction"] == "ingress" && r["remote_group_id"] == d["id"]).count(), 2);
    assert!(rules.iter().all(|r| r["belongs_to_default_sg"] == true));
    // Listing again does not create another.
    assert_eq!(c.get("security-groups").await.expect(200)["security_groups"].as_array().unwrap().len(), 1);
    let sg =
        c.post("security-groups", json!({"security_group": {"name": "web", "description": "w"}})).await.expect(201)
            ["security_group"]
            .clone();
    let r = sg["security_group_rules"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|x| x["direction"] == "egress" && x["remote_ip_prefix"].is_null()));
    assert_eq!(sg["stateful"], true);
    c.post("security-groups", json!({"security_group": {"name": "default"}}))
        .await
        .fault(409, "SecurityGroupDefaultAlreadyExists");
    c.post("security-groups", json!({"security_group": {"name": "DEFAULT"}}))
        .await
        .fault(409, "SecurityGroupDefaultAlreadyExists");
    let sid = sg["id"].as_str().unwrap();
    c.put(&format!("security-groups/{sid}"), json!({"security_group": {"name": "default"}}))
        .await
        .fault(409, "SecurityGroupDefaultAlreadyExists");
    let up = c
        .put(&format!("security-groups/{sid}"), json!({"security_group": {"name": "web2", "stateful": false}}))
        .await
        .expect(200)["security_group"]
        .clone();
    assert_eq!(up["stateful"], false);
    c.delete(&format!("security-groups/{}", d["id"].as_str().unwrap()))
        .await
        .fault(409, "SecurityGroupCannotRemoveDefault");
    // Deleting a group deletes its rules and rules that refer to it.
    let other = c.post("security-groups", json!({"security_group": {"name": "other"}})).await.expect(201)
        ["security_group"]
        .clone();
    c.post("security-group-rules", json!({"security_group_rule": {"security_group_id": other["id"], "direction": "ingress", "remote_group_id": sid}})).await.expect(201);
    c.delete(&format!("security-groups/{sid}")).await.expect(204);
    let rules =
        c.get(&format!("security-group-rules?security_group_id={}", other["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(rules["security_group_rules"].as_array().unwrap().len(), 2, "the referring rule went with the group");
    c.get(&format!("security-groups/{sid}")).await.fault(404, "SecurityGroupNotFound");
    // Other projects neither see nor touch it.
    let b = srv.member(&project());
    b.get(&format!("security-groups/{}", other["id"].as_str().unwrap())).await.fault(404, "SecurityGroupNotFound");
    b.post(
        "security-group-rules",
        json!({"security_group_rule": {"security_group_id": other["id"], "direction": "ingress"}}),
    )
    .await
    .fault(404, "SecurityGroupNotFound");
    // The admin may delete a default group.
    srv.admin().delete(&format!("security-groups/{}", d["id"].as_str().unwrap())).await.expect(204);
});

on_both_stores!(rules, |srv: Server| async move {
    let c = srv.member(&project());
    let sg =
        c.post("security-groups", json!({"security_group": {"name": "r"}})).await.expect(201)["security_group"].clone();
    let g = sg["id"].clone();
    let rule = |extra: Value| {
        let mut r = json!({"security_group_id": g, "direction": "ingress"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({ "security_group_rule": r })
    };
    let ssh = c.post("security-group-rules", rule(json!({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.1/24"}))).await.expect(201)["security_group_rule"].clone();
    assert_eq!(ssh["ethertype"], "IPv4");
    assert_eq!(ssh["remote_ip_prefix"], "10.0.0.1/24");
    assert_eq!(ssh["normalized_cidr"], "10.0.0.0/24");
    assert_eq!(ssh["belongs_to_default_sg"], false);
    c.post(
        "security-group-rules",
        rule(json!({"protocol": "6", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.1/24"})),
    )
    .await
    .fault(409, "SecurityGroupRuleExists");
    let icmp = c
        .post("security-group-rules", rule(json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0})))
        .await
        .expect(201)["security_group_rule"]
        .clone();
    assert_eq!(icmp["protocol"], "icmp");
    let v6 = c.post("security-group-rules", rule(json!({"protocol": "icmp", "ethertype": "ipv6"}))).await.expect(201)
        ["security_group_rule"]
        .clone();
    assert_eq!(v6["protocol"], "ipv6-icmp", "legacy IPv6 ICMP names are canonicalised");
    assert_eq!(v6["ethertype"], "IPv6");
    let num =
        c.post("security-group-rules", rule(json!({"protocol": 132}))).await.expect(201)["security_group_rule"].clone();
    assert_eq!(num["protocol"], "132");
    let any = c
        .post(
            "security-group-rules",
            rule(json!({"protocol": "any", "direction": "egress", "remote_ip_prefix": "192.168.0.0/16"})),
        )
        .await
        .expect(201)["security_group_rule"]
        .clone();
    assert_eq!(any["protocol"], Value::Null);
    // Neutron's validation, one by one.
    c.post("security-group-rules", rule(json!({"ethertype": "IPv5"})))
        .await
        .fault(400, "SecurityGroupRuleInvalidEtherType");
    c.post("security-group-rules", rule(json!({"protocol": "bogus"})))
        .await
        .fault(400, "SecurityGroupRuleInvalidProtocol");
    c.post("security-group-rules", rule(json!({"protocol": 300}))).await.fault(400, "SecurityGroupRuleInvalidProtocol");
    c.post("security-group-rules", rule(json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 22})))
        .await
        .fault(400, "SecurityGroupInvalidPortRange");
    c.post("security-group-rules", rule(json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 22})))
        .await
        .fault(400, "SecurityGroupInvalidPortValue");
    c.post("security-group-rules", rule(json!({"protocol": "tcp", "port_range_min": 70000})))
        .await
        .fault(400, "SecurityGroupInvalidPortValue");
    c.post("security-group-rules", rule(json!({"port_range_min": 22, "port_range_max": 22})))
        .await
        .fault(400, "SecurityGroupProtocolRequiredWithPorts");
    c.post("security-group-rules", rule(json!({"protocol": "icmp", "port_range_min": 256})))
        .await
        .fault(400, "SecurityGroupInvalidIcmpValue");
    c.post("security-group-rules", rule(json!({"protocol": "icmp", "port_range_max": 0})))
        .await
        .fault(400, "SecurityGroupMissingIcmpType");
    c.post("security-group-rules", rule(json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 2})))
        .await
        .fault(400, "SecurityGroupInvalidProtocolForPort");
    c.post("security-group-rules", rule(json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": g})))
        .await
        .fault(400, "SecurityGroupMultipleRemoteEntites");
    c.post("security-group-rules", rule(json!({"remote_ip_prefix": "2001:db8::/64"})))
        .await
        .fault(400, "SecurityGroupRuleParameterConflict");
    c.post("security-group-rules", rule(json!({"remote_ip_prefix": "10.0.0.0/33"}))).await.fault(400, "InvalidCIDR");
    c.post("security-group-rules", rule(json!({"protocol": "ipv6-icmp", "ethertype": "IPv4"})))
        .await
        .fault(400, "SecurityGroupEthertypeConflictWithProtocol");
    c.post("security-group-rules", rule(json!({"remote_group_id": "00000000-0000-0000-0000-000000000000"})))
        .await
        .fault(404, "SecurityGroupNotFound");
    c.post("security-group-rules", json!({"security_group_rule": {"security_group_id": "00000000-0000-0000-0000-000000000000", "direction": "ingress"}})).await.fault(404, "SecurityGroupNotFound");
    c.post("security-group-rules", json!({"security_group_rule": {"security_group_id": g, "direction": "sideways"}}))
        .await
        .fault(400, "HTTPBadRequest");
    let rid = ssh["id"].as_str().unwrap();
    assert_eq!(
        c.get(&format!("security-group-rules/{rid}")).await.expect(200)["security_group_rule"]["port_range_max"],
        22
    );
    c.delete(&format!("security-group-rules/{rid}")).await.expect(204);
    c.get(&format!("security-group-rules/{rid}")).await.fault(404, "SecurityGroupRuleNotFound");
    let listed = c.get(&format!("security-groups/{}", g.as_str().unwrap())).await.expect(200);
    assert_eq!(listed["security_group"]["security_group_rules"].as_array().unwrap().len(), 6);
});
