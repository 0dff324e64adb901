//! Networks over real HTTP against a real neutrino process, on SQLite and PostgreSQL.

mod common;

use common::{project, Server};
use serde_json::{json, Value};

fn ids(v: &Value, coll: &str) -> Vec<String> {
    v[coll].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
}

on_both_stores!(crud_and_defaults, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.post("networks", json!({"network": {"name": "net1"}})).await.expect(201)["network"].clone();
    assert_eq!(n["name"], "net1");
    assert_eq!(n["admin_state_up"], true);
    assert_eq!(n["shared"], false);
    assert_eq!(n["router:external"], false);
    assert_eq!(n["status"], "ACTIVE");
    assert_eq!(n["subnets"], json!([]));
    assert_eq!(n["mtu"], 1450, "tenant networks are VXLAN by default: 1500 - 50");
    assert_eq!(n["port_security_enabled"], true);
    assert_eq!(n["revision_number"], 1);
    assert_eq!(n["project_id"], c.project.as_str());
    assert_eq!(n["tenant_id"], c.project.as_str());
    assert_eq!(n["tags"], json!([]));
    assert!(n.get("provider:network_type").is_none(), "provider attributes are admin-only");
    let ts = n["created_at"].as_str().unwrap();
    assert!(ts.len() == 20 && ts.ends_with('Z'), "timestamp format {ts}");
    let id = n["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());

    let shown = c.get(&format!("networks/{id}")).await.expect(200)["network"].clone();
    assert_eq!(shown["id"], id);
    let listed = c.get("networks").await.expect(200);
    assert_eq!(ids(&listed, "networks"), vec![id.to_string()]);

    let up =
        c.put(&format!("networks/{id}"), json!({"network": {"name": "net2", "description": "d"}})).await.expect(200)
            ["network"]
            .clone();
    assert_eq!(up["name"], "net2");
    assert_eq!(up["description"], "d");
    assert_eq!(up["revision_number"], 2);

    c.delete(&format!("networks/{id}")).await.expect(204);
    c.get(&format!("networks/{id}")).await.fault(404, "NetworkNotFound");
    c.delete(&format!("networks/{id}")).await.fault(404, "NetworkNotFound");
    c.put(&format!("networks/{id}"), json!({"network": {"name": "x"}})).await.fault(404, "NetworkNotFound");
    // A name, not an id: 404 so clients fall back to ?name= lookups.
    assert_eq!(c.get("networks/net1").await.status, 404);
});

on_both_stores!(validation_errors, |srv: Server| async move {
    let c = srv.member(&project());
    c.post("networks", json!({"network": {"name": "a", "bogus": 1}})).await.fault(400, "HTTPBadRequest");
    c.post("networks", json!({"network": {"admin_state_up": "maybe"}})).await.fault(400, "HTTPBadRequest");
    c.post("networks", json!({"network": {"status": "DOWN"}})).await.fault(400, "HTTPBadRequest");
    c.post("networks", json!({"network": {"name": "x".repeat(256)}})).await.fault(400, "HTTPBadRequest");
    c.post("networks", json!({"net": {}})).await.fault(400, "HTTPBadRequest");
    c.post("networks", json!([1, 2])).await.fault(400, "HTTPBadRequest");
    c.raw("POST", "networks", "{\"network\": ").await.fault(400, "HTTPBadRequest");
    c.raw("POST", "networks", "").await.fault(400, "HTTPBadRequest");
    let big = format!("{{\"network\": {{\"name\": \"{}\"}}}}", "x".repeat(2 * 1024 * 1024));
    c.raw("POST", "networks", &big).await.fault(413, "RequestEntityTooLarge");
    // Booleans convert case-insensitively, as in Neutron.
    let n = c.post("networks", json!({"network": {"admin_state_up": "False"}})).await.expect(201)["network"].clone();
    assert_eq!(n["admin_state_up"], false);
    let id = n["id"].as_str().unwrap();
    c.put(&format!("networks/{id}"), json!({"network": {"id": "x"}})).await.fault(400, "HTTPBadRequest");
    c.put(&format!("networks/{id}"), json!({"network": {"mtu": 9000}})).await.fault(400, "InvalidInput");
    let n2 = c.put(&format!("networks/{id}"), json!({"network": {"mtu": 1400}})).await.expect(200)["network"].clone();
    assert_eq!(n2["mtu"], 1400);
    c.post("networks", json!({"network": {"mtu": 1451}})).await.fault(400, "InvalidInput");
    // Unknown URLs and methods.
    c.get("nosuchthing").await.fault(404, "HTTPNotFound");
    assert_eq!(c.get("networks?bogus_filter=1").await.status, 400);
    // Nothing half-written.
    assert_eq!(c.get("networks").await.expect(200)["networks"].as_array().unwrap().len(), 1);
});

on_both_stores!(filters_fields_sorting_pagination, |srv: Server| async move {
    let c = srv.member(&project());
    for (name, up) in [("b", true), ("a", true), ("d", false), ("c", true), ("e", false)] {
        c.post("networks", json!({"network": {"name": name, "admin_state_up": up}})).await.expect(201);
    }
    let names = |v: &Value| {
        v["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let mut got = names(&c.get("networks?name=a&name=c").await.expect(200));
    got.sort();
    assert_eq!(got, vec!["a", "c"], "repeated filter = OR");
    let mut got = names(&c.get("networks?admin_state_up=FALSE").await.expect(200));
    got.sort();
    assert_eq!(got, vec!["d", "e"], "booleans case-insensitive");
    assert!(names(&c.get("networks?name=a&admin_state_up=false").await.expect(200)).is_empty());
    assert!(
        names(&c.get("networks?name=").await.expect(200)).is_empty(),
        "empty-string filter matches empty names only"
    );

    let f = c.get("networks?fields=id&fields=name").await.expect(200);
    for n in f["networks"].as_array().unwrap() {
        let keys: Vec<&String> = n.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "only the requested fields: {n}");
    }
    let one = c.get("networks?name=a").await.expect(200)["networks"][0]["id"].as_str().unwrap().to_string();
    let shown = c.get(&format!("networks/{one}?fields=name")).await.expect(200);
    assert_eq!(shown["network"].as_object().unwrap().len(), 1);

    assert_eq!(names(&c.get("networks?sort_key=name&sort_dir=desc").await.expect(200)), vec!["e", "d", "c", "b", "a"]);
    assert_eq!(names(&c.get("networks?sort_key=name&sort_dir=asc").await.expect(200)), vec!["a", "b", "c", "d", "e"]);
    assert_eq!(c.get("networks?sort_key=name").await.status, 400, "sort_key without sort_dir");
    assert_eq!(c.get("networks?sort_key=bogus&sort_dir=asc").await.status, 400);

    // Follow next links to the end.
    let mut seen = vec![];
    let mut url = format!("{}/v2.0/networks?limit=2&sort_key=name&sort_dir=asc", c.base);
    loop {
        let page = c.get(&url).await.expect(200);
        let batch = names(&page);
        seen.extend(batch.clone());
        let next = page["networks_links"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["rel"] == "next"))
            .map(|x| x["href"].as_str().unwrap().to_string());
        match next {
            Some(n) if !batch.is_empty() => url = n,
            _ => break,
        }
        assert!(seen.len() <= 5, "pagination loops");
    }
    assert_eq!(seen, vec!["a", "b", "c", "d", "e"]);
    // The SDK pages without links until an empty page: the last id gives [].
    let all = c.get("networks?sort_key=name&sort_dir=asc").await.expect(200);
    let last = all["networks"][4]["id"].as_str().unwrap();
    assert!(names(&c.get(&format!("networks?limit=2&sort_key=name&sort_dir=asc&marker={last}")).await.expect(200))
        .is_empty());
    let third = all["networks"][2]["id"].as_str().unwrap();
    assert_eq!(
        names(
            &c.get(&format!("networks?limit=2&sort_key=name&sort_dir=asc&marker={third}&page_reverse=True"))
                .await
                .expect(200)
        ),
        vec!["a", "b"]
    );
    assert_eq!(c.get("networks?limit=-1").await.status, 400);
});

on_both_stores!(tags, |srv: Server| async move {
    let c = srv.member(&project());
    let a = c.network("a").await;
    let b = c.network("b").await;
    let aid = a["id"].as_str().unwrap();
    let bid = b["id"].as_str().unwrap();
    let t = c.put(&format!("networks/{aid}/tags"), json!({"tags": ["red", "blue"]})).await.expect(200);
    let mut tags: Vec<String> = serde_json::from_value(t["tags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, vec!["blue", "red"]);
    assert_eq!(
        c.get(&format!("networks/{aid}")).await.expect(200)["network"]["revision_number"],
        2,
        "tags bump the revision"
    );
    c.req("PUT", &format!("networks/{bid}/tags/red"), None, &[]).await.expect(201);
    c.req("GET", &format!("networks/{bid}/tags/red"), None, &[]).await.expect(204);
    c.req("GET", &format!("networks/{bid}/tags/green"), None, &[]).await.fault(404, "TagNotFound");
    let names = |v: Value| {
        let mut n: Vec<String> =
            v["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    assert_eq!(names(c.get("networks?tags=red").await.expect(200)), vec!["a", "b"]);
    assert_eq!(names(c.get("networks?tags=red,blue").await.expect(200)), vec!["a"]);
    assert_eq!(names(c.get("networks?tags-any=blue,green").await.expect(200)), vec!["a"]);
    assert_eq!(names(c.get("networks?not-tags=red,blue").await.expect(200)), vec!["b"]);
    assert_eq!(names(c.get("networks?not-tags-any=blue").await.expect(200)), vec!["b"]);
    c.delete(&format!("networks/{aid}/tags/blue")).await.expect(204);
    c.delete(&format!("networks/{aid}/tags/blue")).await.fault(404, "TagNotFound");
    c.delete(&format!("networks/{aid}/tags")).await.expect(204);
    assert_eq!(c.get(&format!("networks/{aid}/tags")).await.expect(200)["tags"], json!([]));
    assert_eq!(c.put(&format!("networks/{aid}/tags"), json!({"tags": ["a,b"]})).await.status, 400);
    assert_eq!(c.put(&format!("networks/{aid}/tags"), json!({"tags": ["x".repeat(256)]})).await.status, 400);
    // Tags in the create body (tag-creation).
    let n = c.post("networks", json!({"network": {"name": "t", "tags": ["one"]}})).await.expect(201)["network"].clone();
    assert_eq!(n["tags"], json!(["one"]));
});

on_both_stores!(revision_if_match, |srv: Server| async move {
    let c = srv.member(&project());
    let n = c.network("r").await;
    let id = n["id"].as_str().unwrap();
    let hdr = |r: i64| vec![("If-Match", format!("revision_number={r}"))];
    c.req("PUT", &format!("networks/{id}"), Some(json!({"network": {"name": "x"}})), &hdr(5))
        .await
        .fault(412, "RevisionNumberConstraintFailed");
    let up =
        c.req("PUT", &format!("networks/{id}"), Some(json!({"network": {"name": "x"}})), &hdr(1)).await.expect(200);
    assert_eq!(up["network"]["revision_number"], 2);
    c.req("DELETE", &format!("networks/{id}"), None, &hdr(1)).await.fault(412, "RevisionNumberConstraintFailed");
    c.req("DELETE", &format!("networks/{id}"), None, &hdr(2)).await.expect(204);
});

on_both_stores!(bulk_is_all_or_nothing, |srv: Server| async move {
    let c = srv.member(&project());
    let r = c.post("networks", json!({"networks": [{"name": "b1"}, {"name": "b2"}]})).await.expect(201);
    assert_eq!(r["networks"].as_array().unwrap().len(), 2);
    // A refused item refuses the whole request.
    c.post("networks", json!({"networks": [{"name": "b3"}, {"name": "b4", "bogus": true}]}))
        .await
        .fault(400, "HTTPBadRequest");
    let admin = srv.admin();
    admin
        .post("networks", json!({"networks": [{"name": "b5", "project_id": c.project}, {"name": "b6", "provider:network_type": "nonsense"}]}))
        .await
        .fault(400, "InvalidInput");
    let all = c.get("networks").await.expect(200);
    let mut names: Vec<&str> =
        all["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["b1", "b2"]);
});

on_both_stores!(in_use_and_cleanup, |srv: Server| async move {
    let c = srv.member(&project());
    let admin = srv.admin();
    let n = c.network("n").await;
    let id = n["id"].as_str().unwrap();
    c.subnet(&n, "10.1.0.0/24").await;
    let p = c.port(&n).await;
    c.delete(&format!("networks/{id}")).await.fault(409, "NetworkInUse");
    c.delete(&format!("ports/{}", p["id"].as_str().unwrap())).await.expect(204);
    // A DHCP port does not keep a network alive.
    admin
        .post("ports", json!({"port": {"network_id": id, "device_owner": "network:dhcp", "project_id": c.project}}))
        .await
        .expect(201);
    c.delete(&format!("networks/{id}")).await.expect(204);
    assert!(c.get("subnets").await.expect(200)["subnets"].as_array().unwrap().is_empty());
    assert!(admin.get(&format!("ports?network_id={id}")).await.expect(200)["ports"].as_array().unwrap().is_empty());
});

on_both_stores!(policy, |srv: Server| async move {
    let pa = project();
    let pb = project();
    let a = srv.member(&pa);
    let b = srv.member(&pb);
    let reader = srv.reader(&pa);
    let admin = srv.admin();
    a.post("networks", json!({"network": {"shared": true}})).await.fault(403, "PolicyNotAuthorized");
    a.post("networks", json!({"network": {"router:external": true}})).await.fault(403, "PolicyNotAuthorized");
    a.post("networks", json!({"network": {"provider:network_type": "vxlan"}})).await.fault(403, "PolicyNotAuthorized");
    a.post("networks", json!({"network": {"name": "x", "project_id": pb}})).await.fault(403, "PolicyNotAuthorized");
    let na = a.network("a-net").await;
    let id = na["id"].as_str().unwrap();
    // Another project: not found (not forbidden), everywhere.
    b.get(&format!("networks/{id}")).await.fault(404, "NetworkNotFound");
    b.put(&format!("networks/{id}"), json!({"network": {"name": "y"}})).await.fault(404, "NetworkNotFound");
    b.delete(&format!("networks/{id}")).await.fault(404, "NetworkNotFound");
    assert!(b.get("networks").await.expect(200)["networks"].as_array().unwrap().is_empty());
    b.post("subnets", json!({"subnet": {"network_id": id, "cidr": "10.0.0.0/24", "ip_version": 4}}))
        .await
        .fault(404, "NetworkNotFound");
    b.post("ports", json!({"port": {"network_id": id}})).await.fault(404, "NetworkNotFound");
    // A reader reads but does not write.
    assert_eq!(reader.get(&format!("networks/{id}")).await.expect(200)["network"]["id"], id);
    reader.post("networks", json!({"network": {"name": "r"}})).await.fault(403, "PolicyNotAuthorized");
    reader.put(&format!("networks/{id}"), json!({"network": {"name": "r"}})).await.fault(403, "PolicyNotAuthorized");
    reader.delete(&format!("networks/{id}")).await.fault(403, "PolicyNotAuthorized");
    // Admin: everything, including provider attributes and other projects.
    let shown = admin.get(&format!("networks/{id}")).await.expect(200)["network"].clone();
    assert_eq!(shown["provider:network_type"], "vxlan");
    let shared = admin
        .post("networks", json!({"network": {"name": "shared", "shared": true, "project_id": pb}}))
        .await
        .expect(201)["network"]
        .clone();
    assert_eq!(shared["project_id"], pb.as_str());
    let sid = shared["id"].as_str().unwrap();
    // A shared network is visible to others, but only its owner changes it.
    a.get(&format!("networks/{sid}")).await.expect(200);
    a.put(&format!("networks/{sid}"), json!({"network": {"name": "mine"}})).await.fault(403, "PolicyNotAuthorized");
    b.put(&format!("networks/{sid}"), json!({"network": {"name": "ours"}})).await.expect(200);
    b.put(&format!("networks/{sid}"), json!({"network": {"shared": false}})).await.fault(403, "PolicyNotAuthorized");
    // Others may put ports on a shared network but not subnets.
    a.post("subnets", json!({"subnet": {"network_id": sid, "cidr": "10.9.0.0/24", "ip_version": 4}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    b.subnet(&shared, "10.9.0.0/24").await;
    let pa_port = a.post("ports", json!({"port": {"network_id": sid}})).await.expect(201)["port"].clone();
    assert!(pa_port.get("binding:host_id").is_none(), "binding attributes are admin-only");
    a.post("ports", json!({"port": {"network_id": sid, "fixed_ips": [{"ip_address": "10.9.0.50"}]}}))
        .await
        .fault(403, "PolicyNotAuthorized");
    // Once others use it, sharing cannot be withdrawn.
    admin
        .put(&format!("networks/{sid}"), json!({"network": {"shared": false}}))
        .await
        .fault(409, "InvalidSharedSetting");
    // External networks are visible to everybody.
    let ext = admin.post("networks", json!({"network": {"name": "ext", "router:external": true}})).await.expect(201)
        ["network"]
        .clone();
    let ext_names: Vec<String> = a.get("networks?router%3Aexternal=True").await.expect(200)["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ext_names, vec![ext["id"].as_str().unwrap().to_string()]);
});
