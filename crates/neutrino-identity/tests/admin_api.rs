//! The admin API as Tempest's dynamic credentials and the CLI use it, and
//! the isolation between projects.

mod common;

use common::{password_by_id, role_names, Cloud};
use reqwest::Method;
use serde_json::{json, Value};

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn tempest_dynamic_credentials_flow() {
    let c = Cloud::start().await;
    // 1. domain by name
    let (s, b) = c.admin(Method::GET, "/v3/domains?name=Default", None).await;
    assert_eq!(s, 200);
    assert_eq!(b["domains"].as_array().unwrap().len(), 1);
    assert_eq!(b["domains"][0]["id"], "default");
    assert_eq!(b["domains"][0]["enabled"], true);
    let (_, b) = c.admin(Method::GET, "/v3/domains?name=Nope", None).await;
    assert_eq!(b["domains"], json!([]));
    // 2. project
    let (s, b) = c
        .admin(
            Method::POST,
            "/v3/projects",
            Some(json!({"project": {"name": "tempest-X-123", "description": "tempest-X-123-desc", "domain_id": "default"}})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let pid = b["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(pid.len(), 32);
    assert_eq!(b["project"]["domain_id"], "default");
    assert_eq!(b["project"]["parent_id"], "default");
    assert_eq!(b["project"]["is_domain"], false);
    assert_eq!(b["project"]["description"], "tempest-X-123-desc");
    assert_eq!(b["project"]["links"]["self"], format!("{}/v3/projects/{pid}", c.url));
    let (s, b) = c
        .admin(
            Method::POST,
            "/v3/projects",
            Some(json!({"project": {"name": "tempest-X-123", "domain_id": "default"}})),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(b["error"]["title"], "Conflict");
    let (s, b) = c.admin(Method::GET, &format!("/v3/projects/{pid}"), None).await;
    assert_eq!((s, b["project"]["name"].as_str()), (200, Some("tempest-X-123")));
    let (_, b) = c.admin(Method::GET, "/v3/projects?name=tempest-X-123", None).await;
    assert_eq!(ids(&b, "projects"), vec![pid.clone()]);
    let (_, b) = c.admin(Method::GET, "/v3/projects?domain_id=default", None).await;
    assert_eq!(b["projects"].as_array().unwrap().len(), 3, "admin, service, tempest");
    // 3. users (primary and reader)
    let (s, b) = c
        .admin(
            Method::POST,
            "/v3/users",
            Some(json!({"user": {"name": "tempest-X-123-project", "password": "p1", "domain_id": "default", "email": "x@example.org"}})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let u1 = b["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["user"]["email"], "x@example.org");
    assert!(b["user"].get("password").is_none());
    let (s, _) = c
        .admin(
            Method::POST,
            "/v3/users",
            Some(json!({"user": {"name": "tempest-X-123-project", "password": "p", "domain_id": "default"}})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, b) = c
        .admin(
            Method::POST,
            "/v3/users",
            Some(json!({"user": {"name": "tempest-X-123-reader", "password": "p2", "domain_id": "default"}})),
        )
        .await;
    assert_eq!(s, 201);
    let u2 = b["user"]["id"].as_str().unwrap().to_string();
    let (_, b) = c.admin(Method::GET, "/v3/users?name=tempest-X-123-reader", None).await;
    assert_eq!(ids(&b, "users"), vec![u2.clone()]);
    // 4. roles
    let (s, b) = c.admin(Method::GET, "/v3/roles", None).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = b["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    for want in ["admin", "member", "reader", "manager", "service"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let role = |n: &str| {
        b["roles"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap()["id"].as_str().unwrap().to_string()
    };
    let (member, reader) = (role("member"), role("reader"));
    // 5. grants (idempotent), check, list
    for _ in 0..2 {
        let (s, _) = c.admin(Method::PUT, &format!("/v3/projects/{pid}/users/{u1}/roles/{member}"), None).await;
        assert_eq!(s, 204);
    }
    let (s, _) = c.admin(Method::PUT, &format!("/v3/projects/{pid}/users/{u2}/roles/{reader}"), None).await;
    assert_eq!(s, 204);
    let head = c
        .http
        .head(format!("{}/v3/projects/{pid}/users/{u1}/roles/{member}", c.url))
        .header("X-Auth-Token", &c.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 204);
    let (s, _) = c.admin(Method::GET, &format!("/v3/projects/{pid}/users/{u1}/roles/{reader}"), None).await;
    assert_eq!(s, 404, "reader is implied, not assigned");
    let (_, b) = c.admin(Method::GET, &format!("/v3/projects/{pid}/users/{u1}/roles"), None).await;
    assert_eq!(ids(&b, "roles"), vec![member.clone()]);
    let (s, _) = c.admin(Method::PUT, &format!("/v3/projects/{pid}/users/{u1}/roles/nope"), None).await;
    assert_eq!(s, 404);
    // role_assignments: effective expands implied roles; include_names names them.
    let (s, b) = c
        .admin(
            Method::GET,
            &format!("/v3/role_assignments?user.id={u1}&scope.project.id={pid}&effective&include_names=true"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let mut got: Vec<&str> =
        b["role_assignments"].as_array().unwrap().iter().map(|a| a["role"]["name"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, vec!["member", "reader"]);
    assert_eq!(b["role_assignments"][0]["scope"]["project"]["name"], "tempest-X-123");
    assert_eq!(b["role_assignments"][0]["user"]["domain"]["name"], "Default");
    let (_, b) =
        c.admin(Method::GET, &format!("/v3/role_assignments?role.id={reader}&scope.project.id={pid}"), None).await;
    assert_eq!(b["role_assignments"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["role_assignments"][0]["user"]["id"], u2.as_str());
    // 6. the new users authenticate by id with project scope
    let (t1, b1) = c.token(password_by_id(&u1, "p1", &pid)).await;
    assert_eq!(role_names(&b1), vec!["member", "reader"]);
    let (t2, b2) = c.token(password_by_id(&u2, "p2", &pid)).await;
    assert_eq!(role_names(&b2), vec!["reader"]);
    // 7. cleanup: their tokens stop validating
    let (s, _) = c.admin(Method::DELETE, &format!("/v3/users/{u1}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(c.validate(&t1).await, 404);
    assert_eq!(c.validate(&t2).await, 200);
    let (s, _) = c.admin(Method::DELETE, &format!("/v3/users/{u1}"), None).await;
    assert_eq!(s, 404);
    let (s, _) = c.admin(Method::DELETE, &format!("/v3/projects/{pid}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(c.validate(&t2).await, 404, "project deleted");
    let (s, b) = c.admin(Method::DELETE, &format!("/v3/projects/{pid}"), None).await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["message"], format!("Could not find project: {pid}."));
    let (_, b) = c.admin(Method::GET, &format!("/v3/role_assignments?user.id={u2}"), None).await;
    assert_eq!(b["role_assignments"], json!([]), "assignments went with the project");
    c.stop().await;
}

#[tokio::test]
async fn non_admins_see_only_their_own() {
    let cloud = Cloud::start().await;
    let c = &cloud;
    let pa = c.project("iso-a").await;
    let pb = c.project("iso-b").await;
    let ua = c.user_with_role("iso-ua", "pa", &pa, "member").await;
    let ub = c.user_with_role("iso-ub", "pb", &pb, "member").await;
    let (ta, _) = c.token(password_by_id(&ua, "pa", &pa)).await;
    let ta = &ta;
    let ca = |_m: Method, p: String| async move { c.call(Method::GET, &p, Some(ta), None).await };
    assert_eq!(ca(Method::GET, "/v3/users".into()).await.0, 403);
    assert_eq!(ca(Method::GET, format!("/v3/users/{ub}")).await.0, 403);
    assert_eq!(ca(Method::GET, format!("/v3/users/{ua}")).await.0, 200);
    assert_eq!(ca(Method::GET, format!("/v3/projects/{pb}")).await.0, 403);
    assert_eq!(ca(Method::GET, format!("/v3/projects/{pa}")).await.0, 200);
    let (s, b) = ca(Method::GET, "/v3/projects".into()).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&b, "projects"), vec![pa.clone()]);
    let (_, b) = ca(Method::GET, "/v3/auth/projects".into()).await;
    assert_eq!(ids(&b, "projects"), vec![pa.clone()]);
    assert_eq!(ca(Method::GET, format!("/v3/users/{ub}/projects")).await.0, 403);
    assert_eq!(ca(Method::GET, "/v3/role_assignments".into()).await.0, 403);
    assert_eq!(ca(Method::GET, format!("/v3/role_assignments?user.id={ub}")).await.0, 403);
    let (s, b) = ca(Method::GET, format!("/v3/role_assignments?user.id={ua}")).await;
    assert_eq!(s, 200);
    assert_eq!(b["role_assignments"].as_array().unwrap().len(), 1);
    assert_eq!(ca(Method::GET, "/v3/roles".into()).await.0, 403);
    assert_eq!(ca(Method::GET, "/v3/domains".into()).await.0, 403);
    assert_eq!(ca(Method::GET, "/v3/domains/default".into()).await.0, 200);
    let (s, b) = c.call(Method::POST, "/v3/projects", Some(ta), Some(json!({"project": {"name": "x"}}))).await;
    assert_eq!(s, 403);
    assert_eq!(
        b["error"]["message"],
        "You are not authorized to perform the requested action: identity:create_project."
    );
    let (s, _) = c
        .call(Method::PUT, &format!("/v3/projects/{pb}/users/{ua}/roles/{}", c.role_id("member").await), Some(ta), None)
        .await;
    assert_eq!(s, 403);
    // Catalog for any scoped token.
    let (s, b) = ca(Method::GET, "/v3/auth/catalog".into()).await;
    assert_eq!(s, 200);
    assert!(b["catalog"].as_array().unwrap().iter().any(|s| s["type"] == "network"));
    cloud.stop().await;
}

#[tokio::test]
async fn errors_look_like_keystone() {
    let c = Cloud::start().await;
    // No token: 401 with WWW-Authenticate.
    let (s, h, b) = c.call_full(Method::GET, "/v3/projects", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["code"], 401);
    assert_eq!(b["error"]["message"], "The request you have made requires authentication.");
    assert_eq!(h["www-authenticate"].to_str().unwrap(), format!("Keystone uri=\"{}\"", c.url));
    assert_eq!(h["content-type"], "application/json");
    assert!(h.contains_key("x-openstack-request-id"));
    // Bad token: 401.
    assert_eq!(c.call(Method::GET, "/v3/projects", Some("garbage"), None).await.0, 401);
    // Malformed JSON, wrong types, missing names: 400.
    let r = c
        .http
        .post(format!("{}/v3/projects", c.url))
        .header("X-Auth-Token", &c.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["title"], "Bad Request");
    for body in [
        json!({}),
        json!({"project": "x"}),
        json!({"project": {}}),
        json!({"project": {"name": 5}}),
        json!({"project": {"name": "  "}}),
        json!({"project": {"name": "ok", "enabled": "yes"}}),
        json!({"project": {"name": "ok", "domain_id": "nope"}}),
    ] {
        let (s, b) = c.admin(Method::POST, "/v3/projects", Some(body.clone())).await;
        assert_eq!(s, 400, "{body} -> {b}");
    }
    // Unknown ids: 404; unknown paths: 404 with a Keystone body.
    for p in [
        "/v3/projects/nope",
        "/v3/users/nope",
        "/v3/roles/nope",
        "/v3/domains/nope",
        "/v3/regions/nope",
        "/v3/services/nope",
        "/v3/endpoints/nope",
        "/v3/nothing-here",
    ] {
        let (s, b) = c.admin(Method::GET, p, None).await;
        assert_eq!(s, 404, "{p}");
        assert_eq!(b["error"]["code"], 404, "{p}");
    }
    // Duplicate role: 409.
    assert_eq!(c.admin(Method::POST, "/v3/roles", Some(json!({"role": {"name": "member"}}))).await.0, 409);
    // Domains: cannot delete an enabled one.
    let (s, b) = c.admin(Method::POST, "/v3/domains", Some(json!({"domain": {"name": "other"}}))).await;
    assert_eq!(s, 201);
    let did = b["domain"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.admin(Method::POST, "/v3/domains", Some(json!({"domain": {"name": "other"}}))).await.0, 409);
    assert_eq!(c.admin(Method::DELETE, &format!("/v3/domains/{did}"), None).await.0, 403);
    assert_eq!(
        c.admin(Method::PATCH, &format!("/v3/domains/{did}"), Some(json!({"domain": {"enabled": false}}))).await.0,
        200
    );
    assert_eq!(c.admin(Method::DELETE, &format!("/v3/domains/{did}"), None).await.0, 204);
    assert_eq!(c.admin(Method::PATCH, "/v3/domains/default", Some(json!({"domain": {"enabled": false}}))).await.0, 403);
    c.stop().await;
}

#[tokio::test]
async fn discovery_documents() {
    let c = Cloud::start().await;
    let (s, b) = c.call(Method::GET, "/", None, None).await;
    assert_eq!(s, 300);
    let v = &b["versions"]["values"][0];
    assert_eq!(v["id"], "v3.14");
    assert_eq!(v["status"], "stable");
    assert_eq!(v["links"][0]["rel"], "self");
    assert_eq!(v["links"][0]["href"], format!("{}/v3/", c.url));
    assert_eq!(v["media-types"][0]["type"], "application/vnd.openstack.identity-v3+json");
    for p in ["/v3", "/v3/"] {
        let (s, b) = c.call(Method::GET, p, None, None).await;
        assert_eq!(s, 200);
        assert_eq!(&b["version"], v);
    }
    c.stop().await;
}

#[tokio::test]
async fn implied_roles_api_and_token_expansion() {
    let c = Cloud::start().await;
    let (_, b) = c.admin(Method::GET, "/v3/role_inferences", None).await;
    let rules: Vec<(String, Vec<String>)> = b["role_inferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["prior_role"]["name"].as_str().unwrap().to_string(),
                r["implies"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect(),
            )
        })
        .collect();
    for want in [("admin", "manager"), ("manager", "member"), ("member", "reader")] {
        assert!(rules.iter().any(|(p, i)| p == want.0 && i.contains(&want.1.to_string())), "{want:?} in {rules:?}");
    }
    let (s, b) = c.admin(Method::POST, "/v3/roles", Some(json!({"role": {"name": "auditor"}}))).await;
    assert_eq!(s, 201);
    let auditor = b["role"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["role"]["domain_id"], Value::Null);
    let (s, b) = c.admin(Method::POST, "/v3/roles", Some(json!({"role": {"name": "observer"}}))).await;
    assert_eq!(s, 201);
    let observer = b["role"]["id"].as_str().unwrap().to_string();
    let (s, b) = c.admin(Method::PUT, &format!("/v3/roles/{auditor}/implies/{observer}"), None).await;
    assert_eq!(s, 201);
    assert_eq!(b["role_inference"]["prior_role"]["id"], auditor.as_str());
    assert_eq!(b["role_inference"]["implies"]["name"], "observer");
    let (s, _) = c.admin(Method::GET, &format!("/v3/roles/{auditor}/implies/{observer}"), None).await;
    assert_eq!(s, 200);
    let (_, b) = c.admin(Method::GET, &format!("/v3/roles/{auditor}/implies"), None).await;
    assert_eq!(b["role_inference"]["implies"][0]["id"], observer.as_str());
    // cycles and implying admin are refused
    assert_eq!(c.admin(Method::PUT, &format!("/v3/roles/{observer}/implies/{auditor}"), None).await.0, 400);
    let admin = c.role_id("admin").await;
    assert_eq!(c.admin(Method::PUT, &format!("/v3/roles/{observer}/implies/{admin}"), None).await.0, 403);
    // tokens carry the implied role
    let pid = c.project("impl-p").await;
    let uid = c.user_with_role("impl-u", "pw", &pid, "auditor").await;
    let (_, body) = c.token(password_by_id(&uid, "pw", &pid)).await;
    assert_eq!(role_names(&body), vec!["auditor", "observer"]);
    let (s, _) = c.admin(Method::DELETE, &format!("/v3/roles/{auditor}/implies/{observer}"), None).await;
    assert_eq!(s, 204);
    assert_eq!(c.admin(Method::GET, &format!("/v3/roles/{auditor}/implies/{observer}"), None).await.0, 404);
    let (_, body) = c.token(password_by_id(&uid, "pw", &pid)).await;
    assert_eq!(role_names(&body), vec!["auditor"]);
    // role update and delete; deleting the only role invalidates the token
    let (tok, _) = c.token(password_by_id(&uid, "pw", &pid)).await;
    let (s, b) = c
        .admin(Method::PATCH, &format!("/v3/roles/{auditor}"), Some(json!({"role": {"description": "reads logs"}})))
        .await;
    assert_eq!((s, b["role"]["description"].as_str()), (200, Some("reads logs")));
    assert_eq!(c.admin(Method::DELETE, &format!("/v3/roles/{auditor}"), None).await.0, 204);
    assert_eq!(c.validate(&tok).await, 404, "no role left on the project");
    c.stop().await;
}

#[tokio::test]
async fn catalog_admin_api() {
    let c = Cloud::start().await;
    let (s, b) = c.admin(Method::GET, "/v3/regions/RegionOne", None).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) =
        c.admin(Method::POST, "/v3/regions", Some(json!({"region": {"id": "RegionTwo", "description": "2"}}))).await;
    assert_eq!(s, 201);
    assert_eq!(c.admin(Method::POST, "/v3/regions", Some(json!({"region": {"id": "RegionTwo"}}))).await.0, 409);
    let (_, b) = c.admin(Method::GET, "/v3/services?type=network", None).await;
    assert_eq!(b["services"].as_array().unwrap().len(), 1);
    assert_eq!(b["services"][0]["name"], "neutron");
    let (s, b) =
        c.admin(Method::POST, "/v3/services", Some(json!({"service": {"type": "compute", "name": "nova"}}))).await;
    assert_eq!(s, 201);
    let sid = b["service"]["id"].as_str().unwrap().to_string();
    assert_eq!(c.admin(Method::POST, "/v3/services", Some(json!({"service": {"name": "x"}}))).await.0, 400);
    let (s, b) = c
        .admin(
            Method::POST,
            "/v3/endpoints",
            Some(json!({"endpoint": {"service_id": sid, "interface": "public", "region_id": "RegionTwo", "url": "http://nova:8774/v2.1"}})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let eid = b["endpoint"]["id"].as_str().unwrap().to_string();
    assert_eq!(b["endpoint"]["region"], "RegionTwo");
    for bad in [
        json!({"endpoint": {"service_id": sid, "interface": "sideways", "url": "http://x"}}),
        json!({"endpoint": {"service_id": sid, "interface": "public", "url": "ftp://x"}}),
        json!({"endpoint": {"service_id": "nope", "interface": "public", "url": "http://x"}}),
        json!({"endpoint": {"service_id": sid, "interface": "public", "region_id": "Nowhere", "url": "http://x"}}),
    ] {
        assert_eq!(c.admin(Method::POST, "/v3/endpoints", Some(bad.clone())).await.0, 400, "{bad}");
    }
    let (_, b) = c.admin(Method::GET, &format!("/v3/endpoints?service_id={sid}"), None).await;
    assert_eq!(ids(&b, "endpoints"), vec![eid.clone()]);
    let (s, b) = c
        .admin(
            Method::PATCH,
            &format!("/v3/endpoints/{eid}"),
            Some(json!({"endpoint": {"url": "http://nova:8775/v2.1"}})),
        )
        .await;
    assert_eq!((s, b["endpoint"]["url"].as_str()), (200, Some("http://nova:8775/v2.1")));
    let (_, b) = c.admin(Method::GET, "/v3/auth/catalog", None).await;
    let compute = b["catalog"].as_array().unwrap().iter().find(|s| s["type"] == "compute").unwrap().clone();
    assert_eq!(compute["endpoints"][0]["url"], "http://nova:8775/v2.1");
    assert_eq!(c.admin(Method::DELETE, "/v3/regions/RegionTwo", None).await.0, 403, "in use");
    assert_eq!(c.admin(Method::DELETE, &format!("/v3/services/{sid}"), None).await.0, 204);
    assert_eq!(c.admin(Method::GET, &format!("/v3/endpoints/{eid}"), None).await.0, 404, "went with its service");
    assert_eq!(c.admin(Method::DELETE, "/v3/regions/RegionTwo", None).await.0, 204);
    c.stop().await;
}
