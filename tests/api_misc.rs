//! Discovery, extensions, quotas and fault shapes over real HTTP.

mod common;

use common::{project, Server};
use serde_json::json;

on_both_stores!(discovery_and_extensions, |srv: Server| async move {
    let c = srv.member(&project());
    let v = c.get(&format!("{}/", srv.url)).await.expect(200);
    assert_eq!(v["versions"][0]["id"], "v2.0");
    assert_eq!(v["versions"][0]["status"], "CURRENT");
    let r = c.get("").await.expect(200);
    let colls: Vec<&str> =
        r["resources"].as_array().unwrap().iter().map(|x| x["collection"].as_str().unwrap()).collect();
    for want in ["networks", "subnets", "ports", "security_groups", "security_group_rules", "subnetpools", "quotas"] {
        assert!(colls.contains(&want), "{want} missing from {colls:?}");
    }
    let ext = c.get("extensions").await.expect(200);
    let aliases: Vec<&str> =
        ext["extensions"].as_array().unwrap().iter().map(|e| e["alias"].as_str().unwrap()).collect();
    for want in [
        "external-net",
        "provider",
        "security-group",
        "quotas",
        "standard-attr-tag",
        "pagination",
        "sorting",
        "revision-if-match",
        "port-security",
        "subnet_allocation",
    ] {
        assert!(aliases.contains(&want), "{want} missing");
    }
    // Nothing is listed that is not implemented.
    for absent in ["dvr", "l3-ha", "trunk", "qos", "l3-flavors"] {
        assert!(!aliases.contains(&absent), "{absent} listed but not implemented");
    }
    for e in ext["extensions"].as_array().unwrap() {
        assert!(
            e["name"].as_str().is_some_and(|n| !n.is_empty())
                && e["updated"].is_string()
                && e["description"].is_string(),
            "{e}"
        );
    }
    assert_eq!(c.get("extensions/external-net").await.expect(200)["extension"]["alias"], "external-net");
    c.get("extensions/dvr").await.fault(404, "HTTPNotFound");
    // Faults everywhere have the Neutron shape.
    let f = c.get("networks/00000000-0000-0000-0000-000000000000").await.fault(404, "NetworkNotFound");
    assert!(f["NeutronError"]["message"].as_str().unwrap().contains("00000000-0000-0000-0000-000000000000"));
    // Health.
    let h = reqwest::get(format!("{}/healthcheck", srv.url)).await.unwrap();
    assert_eq!(h.status(), 200);
    let resp = c.get("networks").await;
    assert!(resp.headers.get("x-openstack-request-id").is_some_and(|v| v.to_str().unwrap().starts_with("req-")));
});

on_both_stores!(quotas, |srv: Server| async move {
    let p = project();
    let c = srv.member(&p);
    let admin = srv.admin();
    let q = c.get(&format!("quotas/{p}")).await.expect(200)["quota"].clone();
    assert_eq!(q["network"], 100);
    assert_eq!(q["port"], 500);
    assert_eq!(q["security_group_rule"], 100);
    c.put(&format!("quotas/{p}"), json!({"quota": {"network": 2}})).await.fault(403, "PolicyNotAuthorized");
    c.get(&format!("quotas/{}", project())).await.fault(403, "PolicyNotAuthorized");
    assert_eq!(
        admin.put(&format!("quotas/{p}"), json!({"quota": {"network": 2, "port": 3}})).await.expect(200)["quota"]
            ["network"],
        2
    );
    let n = c.network("a").await;
    c.network("b").await;
    c.post("networks", json!({"network": {"name": "c"}})).await.fault(409, "OverQuota");
    c.subnet(&n, "10.0.0.0/24").await;
    for _ in 0..3 {
        c.port(&n).await;
    }
    c.post("ports", json!({"port": {"network_id": n["id"]}})).await.fault(409, "OverQuota");
    let d = c.get(&format!("quotas/{p}/details")).await.expect(200)["quota"].clone();
    assert_eq!(d["network"], json!({"limit": 2, "used": 2, "reserved": 0}));
    assert_eq!(d["port"]["used"], 3);
    // A limit below usage is refused (quota-check-limit).
    admin.put(&format!("quotas/{p}"), json!({"quota": {"network": 1}})).await.fault(400, "InvalidQuotaValue");
    let listed = admin.get("quotas").await.expect(200);
    assert!(listed["quotas"].as_array().unwrap().iter().any(|q| q["project_id"] == p.as_str()));
    admin.delete(&format!("quotas/{p}")).await.expect(204);
    assert_eq!(c.get(&format!("quotas/{p}")).await.expect(200)["quota"]["network"], 100);
    c.network("c").await;
    // Deleting gives quota back.
    admin.put(&format!("quotas/{p}"), json!({"quota": {"network": 3}})).await.expect(200);
    c.post("networks", json!({"network": {"name": "d"}})).await.fault(409, "OverQuota");
    let nets = c.get("networks?name=c").await.expect(200);
    c.delete(&format!("networks/{}", nets["networks"][0]["id"].as_str().unwrap())).await.expect(204);
    c.network("d").await;
});

on_both_stores!(metering_and_service_providers, |srv: Server| async move {
    let admin = srv.admin();
    let member = srv.member(&project());
    let sp = member.get("service-providers").await.expect(200);
    assert_eq!(sp["service_providers"][0]["service_type"], "L3_ROUTER_NAT");
    member
        .post("metering/metering-labels", json!({"metering_label": {"name": "x"}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    let l = admin
        .post("metering/metering-labels", json!({"metering_label": {"name": "l1", "description": "d"}}))
        .await
        .expect(201)["metering_label"]
        .clone();
    assert_eq!(l["shared"], false);
    let lid = l["id"].as_str().unwrap();
    let r = admin
        .post("metering/metering-label-rules", json!({"metering_label_rule": {"metering_label_id": lid, "direction": "ingress", "remote_ip_prefix": "10.0.0.0/24"}}))
        .await
        .expect(201)["metering_label_rule"]
        .clone();
    assert_eq!(r["excluded"], false);
    admin
        .post("metering/metering-label-rules", json!({"metering_label_rule": {"metering_label_id": lid, "direction": "ingress", "remote_ip_prefix": "10.0.0.128/25"}}))
        .await
        .fault(409, "MeteringLabelRuleOverlaps");
    admin
        .post("metering/metering-label-rules", json!({"metering_label_rule": {"metering_label_id": lid, "direction": "egress", "remote_ip_prefix": "10.0.0.0/24", "source_ip_prefix": "10.1.0.0/24"}}))
        .await
        .fault(400, "HTTPBadRequest");
    let rules = admin.get(&format!("metering/metering-label-rules?id={}", r["id"].as_str().unwrap())).await.expect(200);
    assert_eq!(rules["metering_label_rules"].as_array().unwrap().len(), 1);
    admin.delete(&format!("metering/metering-labels/{lid}")).await.expect(204);
    admin
        .get(&format!("metering/metering-label-rules/{}", r["id"].as_str().unwrap()))
        .await
        .fault(404, "MeteringLabelRuleNotFound");
    admin.get(&format!("metering/metering-labels/{lid}")).await.fault(404, "MeteringLabelNotFound");
});
