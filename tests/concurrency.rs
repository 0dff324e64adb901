//! IPAM under concurrency: many clients racing for the addresses of one /24,
//! across two server processes sharing one PostgreSQL database, and on the
//! embedded SQLite store.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use common::{project, Client, PgDb, Server, StoreKind};
use serde_json::json;

async fn race(clients: Vec<Client>, net: String, per_client: usize) -> BTreeMap<u16, usize> {
    let mut tasks = vec![];
    for c in clients {
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = BTreeMap::new();
            for _ in 0..per_client {
                let r = c.post("ports", json!({"port": {"network_id": net}})).await;
                if r.status != 201 && r.status != 409 {
                    panic!("unexpected {} {}", r.status, r.body);
                }
                if r.status == 409 {
                    assert_eq!(r.body["NeutronError"]["type"], "IpAddressGenerationFailure", "{}", r.body);
                }
                *statuses.entry(r.status).or_insert(0) += 1;
            }
            statuses
        }));
    }
    let mut total = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await.expect("client task") {
            *total.entry(k).or_insert(0) += v;
        }
    }
    total
}

async fn check_unique(c: &Client, net: &str, expect: usize) {
    let ports = c.get(&format!("ports?network_id={net}")).await.expect(200);
    let ports = ports["ports"].as_array().unwrap();
    assert_eq!(ports.len(), expect, "exactly the pool's size was created");
    let ips: HashSet<&str> = ports.iter().map(|p| p["fixed_ips"][0]["ip_address"].as_str().unwrap()).collect();
    let macs: HashSet<&str> = ports.iter().map(|p| p["mac_address"].as_str().unwrap()).collect();
    assert_eq!(ips.len(), expect, "no address handed out twice");
    assert_eq!(macs.len(), expect, "no MAC handed out twice");
}

/// 16 clients × 200 ports on one /24, over two servers on one PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_servers_16x200_on_a_slash24() {
    let db = Arc::new(PgDb::create());
    let a = Server::start_server(db.clone(), &[]).await;
    let b = Server::start_server(db.clone(), &[]).await;
    let p = project();
    let ca = a.member(&p);
    let n = ca.network("race").await;
    ca.subnet(&n, "10.0.0.0/24").await;
    let clients: Vec<Client> = (0..16).map(|i| if i % 2 == 0 { a.member(&p) } else { b.member(&p) }).collect();
    let net = n["id"].as_str().unwrap().to_string();
    let statuses = race(clients, net.clone(), 200).await;
    assert_eq!(statuses.get(&201).copied().unwrap_or(0), 253, "{statuses:?}");
    assert_eq!(statuses.get(&409).copied().unwrap_or(0), 16 * 200 - 253, "{statuses:?}");
    check_unique(&ca, &net, 253).await;
    // Both servers agree.
    check_unique(&b.member(&p), &net, 253).await;
}

/// The same race on the embedded store (one process).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_16x40_on_a_slash26() {
    let srv = Server::start(StoreKind::Sqlite).await;
    let p = project();
    let c = srv.member(&p);
    let n = c.network("race").await;
    c.subnet(&n, "10.0.0.0/26").await;
    let net = n["id"].as_str().unwrap().to_string();
    let statuses = race((0..16).map(|_| srv.member(&p)).collect(), net.clone(), 40).await;
    assert_eq!(statuses.get(&201).copied().unwrap_or(0), 61, "{statuses:?}");
    check_unique(&c, &net, 61).await;
}

/// Races that the database settles are 409s, never 500s: 16 clients over
/// two servers move their ports to the same MAC, and create ports with the
/// same fixed IP, at the same moment. One of each wins; the rest get
/// Neutron's conflicts; nothing half-made remains.
async fn same_mac_and_ip_races(servers: &[&Server]) {
    let p = project();
    let c0 = servers[0].member(&p);
    let n = c0.network("race").await;
    c0.subnet(&n, "10.0.0.0/24").await;
    let net = n["id"].as_str().unwrap().to_string();
    let mut ports = vec![];
    for _ in 0..16 {
        ports.push(c0.port(&n).await["id"].as_str().unwrap().to_string());
    }
    let mac = "fa:16:3e:00:00:42";
    let mut tasks = vec![];
    for (i, id) in ports.iter().enumerate() {
        let c = servers[i % servers.len()].admin();
        let id = id.clone();
        tasks.push(tokio::spawn(
            async move { c.put(&format!("ports/{id}"), json!({"port": {"mac_address": mac}})).await },
        ));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            409 => assert_eq!(r.body["NeutronError"]["type"], "MacAddressInUse", "{}", r.body),
            s => panic!("a MAC race answered {s}: {}", r.body),
        }
    }
    assert_eq!(ok, 1, "exactly one port takes the MAC");
    let mut tasks = vec![];
    for i in 0..16 {
        let c = servers[i % servers.len()].member(&p);
        let net = net.clone();
        tasks.push(tokio::spawn(async move {
            c.post("ports", json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.0.0.200"}]}})).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => ok += 1,
            409 => assert_eq!(r.body["NeutronError"]["type"], "IpAddressAlreadyAllocated", "{}", r.body),
            s => panic!("an IP race answered {s}: {}", r.body),
        }
    }
    assert_eq!(ok, 1, "exactly one port takes the address");
    check_unique(&c0, &net, 17).await;
    let with_mac = c0.get(&format!("ports?mac_address={mac}")).await.expect(200);
    assert_eq!(with_mac["ports"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_races_are_conflicts_not_errors() {
    let db = Arc::new(PgDb::create());
    let a = Server::start_server(db.clone(), &[]).await;
    let b = Server::start_server(db.clone(), &[]).await;
    same_mac_and_ip_races(&[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_races_are_conflicts_not_errors() {
    let srv = Server::start(StoreKind::Sqlite).await;
    same_mac_and_ip_races(&[&srv]).await;
}
