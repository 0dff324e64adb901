//! Tempest runs its classes in parallel: concurrent credential setups must
//! all succeed, and racing duplicates must give one 201 and 409s, never 500.

mod common;

use common::{password_by_id, role_names, Cloud};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_dynamic_credentials_and_duplicate_races() {
    let c = std::sync::Arc::new(Cloud::start().await);
    let member = c.role_id("member").await;
    let mut tasks = vec![];
    for i in 0..16 {
        let c = c.clone();
        let member = member.clone();
        tasks.push(tokio::spawn(async move {
            let pid = c.project(&format!("par-{i}")).await;
            let (s, b) = c
                .admin(
                    Method::POST,
                    "/v3/users",
                    Some(json!({"user": {"name": format!("par-u-{i}"), "password": "pw", "domain_id": "default"}})),
                )
                .await;
            assert_eq!(s, 201, "{b}");
            let uid = b["user"]["id"].as_str().unwrap().to_string();
            let (s, _) = c.admin(Method::PUT, &format!("/v3/projects/{pid}/users/{uid}/roles/{member}"), None).await;
            assert_eq!(s, 204);
            let (tok, body) = c.token(password_by_id(&uid, "pw", &pid)).await;
            assert_eq!(role_names(&body), vec!["member", "reader"]);
            assert_eq!(c.validate(&tok).await, 200);
            assert_eq!(c.admin(Method::DELETE, &format!("/v3/users/{uid}"), None).await.0, 204);
            assert_eq!(c.admin(Method::DELETE, &format!("/v3/projects/{pid}"), None).await.0, 204);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Racing duplicates.
    let mut races = vec![];
    for _ in 0..8 {
        let c = c.clone();
        races.push(tokio::spawn(async move {
            c.admin(
                Method::POST,
                "/v3/projects",
                Some(json!({"project": {"name": "same-name", "domain_id": "default"}})),
            )
            .await
            .0
        }));
    }
    let mut statuses = vec![];
    for r in races {
        statuses.push(r.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    let (_, b) = c.admin(Method::GET, "/v3/projects?name=same-name", None).await;
    assert_eq!(b["projects"].as_array().unwrap().len(), 1);
    std::sync::Arc::into_inner(c).unwrap().stop().await;
}
