//! A server killed with SIGKILL under load: two `neutrino server`s on one
//! PostgreSQL database and one RabbitMQ vhost, 16 clients creating and
//! deleting ports on both; one server is killed and restarted. Every
//! request that got a 2xx holds (created ports exist, deleted ones are
//! gone), nothing half-made remains (ports without addresses, addresses
//! without ports, undelivered notifications), and the other server kept
//! answering. Prints the figures: requests failed, time to recover.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{project, Client, PgDb, RabbitVhost};
use serde_json::json;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(db: &str, transport: &str, port: u16) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_neutrino"))
            .args(["server", "--noauth", "--db", db, "--transport-url", transport])
            .args(["--api-bind", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .spawn()
            .expect("neutrino server starts"),
    )
}

async fn wait_up(url: &str) -> Duration {
    let started = Instant::now();
    loop {
        if reqwest::get(format!("{url}/")).await.is_ok_and(|r| r.status().is_success()) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn psql_count(db: &str, sql: &str) -> i64 {
    let out = Command::new("psql").arg(db).arg("-Atc").arg(sql).output().expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a count")
}

#[derive(Default)]
struct Tally {
    created: Vec<String>,
    deleted: Vec<String>,
    failed_a: usize,
    failed_b: usize,
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_of_one_server_under_load_loses_and_duplicates_nothing() {
    let db = PgDb::create();
    let vhost = RabbitVhost::create();
    let (pa, pb) = (common::free_port(), common::free_port());
    let (ua, ub) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let mut a = spawn(&db.url, &vhost.url(), pa);
    let _b = spawn(&db.url, &vhost.url(), pb);
    wait_up(&ua).await;
    wait_up(&ub).await;
    let p = project();
    let setup = Client::new(&ub, &p, "member");
    Client::new(&ub, "admin", "admin").put(&format!("quotas/{p}"), json!({"quota": {"port": -1}})).await.expect(200);
    let n = setup.network("fault").await;
    setup.subnet(&n, "10.0.0.0/16").await;
    let net = n["id"].as_str().unwrap().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = vec![];
    for i in 0..16 {
        let (stop, net) = (stop.clone(), net.clone());
        let on_a = i % 2 == 0;
        let c = Client::new(if on_a { &ua } else { &ub }, &p, "member");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            let mut mine: Vec<String> = vec![];
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                k += 1;
                let delete = k % 3 == 0 && !mine.is_empty();
                let r = if delete {
                    let id = mine.remove(0);
                    http.delete(format!("{}/v2.0/ports/{id}", c.base))
                        .header("X-Project-Id", &c.project)
                        .header("X-Roles", "member")
                        .send()
                        .await
                        .map(|r| (r.status().as_u16(), Some(id)))
                } else {
                    match http
                        .post(format!("{}/v2.0/ports", c.base))
                        .header("X-Project-Id", &c.project)
                        .header("X-Roles", "member")
                        .json(&json!({"port": {"network_id": net}}))
                        .send()
                        .await
                    {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            Ok((s, body["port"]["id"].as_str().map(String::from)))
                        }
                        Err(e) => Err(e),
                    }
                };
                match r {
                    Ok((201, Some(id))) => {
                        t.created.push(id.clone());
                        mine.push(id);
                    }
                    Ok((204, Some(id))) => t.deleted.push(id),
                    Ok((s, _)) => t.other.push(format!("{s} on {}", if delete { "delete" } else { "create" })),
                    Err(_) => {
                        if on_a {
                            t.failed_a += 1
                        } else {
                            t.failed_b += 1
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            t
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // SIGKILL: no shutdown, in-flight transactions die with the connection.
    let _ = a.0.kill();
    let _ = a.0.wait();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    a = spawn(&db.url, &vhost.url(), pa);
    let back_in = wait_up(&ua).await;
    let recovered = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.unwrap();
        all.created.extend(t.created);
        all.deleted.extend(t.deleted);
        all.failed_a += t.failed_a;
        all.failed_b += t.failed_b;
        all.other.extend(t.other);
    }
    drop(a);

    let listed = setup.get(&format!("ports?network_id={net}")).await.expect(200);
    let present: HashSet<String> =
        listed["ports"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_string()).collect();
    let deleted: HashSet<&String> = all.deleted.iter().collect();
    let lost: Vec<&String> = all.created.iter().filter(|id| !deleted.contains(id) && !present.contains(*id)).collect();
    let resurrected: Vec<&String> = all.deleted.iter().filter(|id| present.contains(*id)).collect();
    let unique: HashSet<&String> = all.created.iter().collect();
    let orphan_ips =
        psql_count(&db.url, "SELECT COUNT(*) FROM ip_allocations WHERE port_id NOT IN (SELECT id FROM ports)");
    let bare_ports = psql_count(
        &db.url,
        "SELECT COUNT(*) FROM ports WHERE device_owner IS DISTINCT FROM 'network:dhcp' AND id NOT IN (SELECT port_id FROM ip_allocations)",
    );
    let drained = common::eventually(Duration::from_secs(20), Duration::from_millis(200), || async {
        psql_count(&db.url, "SELECT COUNT(*) FROM southbound_outbox") == 0
    })
    .await;
    eprintln!(
        "fault figures: {} creates and {} deletes answered 2xx; {} requests to the killed server failed (0 to the other: {}); \
         killed server back in {:?} after restart, {:?} after the kill; lost {}, resurrected {}, duplicated ids {}; \
         orphan addresses {orphan_ips}, ports without addresses {bare_ports}; other answers: {}",
        all.created.len(),
        all.deleted.len(),
        all.failed_a,
        all.failed_b,
        back_in,
        recovered,
        lost.len(),
        resurrected.len(),
        all.created.len() - unique.len(),
        all.other.len()
    );
    assert!(all.created.len() > 100, "the load ran");
    assert_eq!(all.failed_b, 0, "the other server kept answering");
    assert!(all.other.is_empty(), "every answer was a 2xx or a dead connection: {:?}", all.other);
    assert!(lost.is_empty(), "ports created with 201 are gone: {lost:?}");
    assert!(resurrected.is_empty(), "ports deleted with 204 are back: {resurrected:?}");
    assert_eq!(unique.len(), all.created.len(), "no id handed out twice");
    assert_eq!(orphan_ips, 0, "addresses without ports");
    assert_eq!(bare_ports, 0, "ports without addresses");
    assert!(drained, "the outbox drains (the killed server's undelivered notifications included)");
}
