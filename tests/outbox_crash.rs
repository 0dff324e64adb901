//! The durable southbound outbox under a crash: a second API server shares
//! `neutrino up`'s store and RabbitMQ vhost; it is killed (abort, as by
//! SIGKILL) right after committing a port create, before any notification
//! left. The port's notification survives in the outbox: once the crashed
//! server is restarted, the DHCP agent hears of the port (its dnsmasq host
//! file gets the port's MAC before anything else touches the port), and a
//! VM booted on the port goes ACTIVE and gets its address by DHCP.
//! Without the outbox the notification is lost, the DHCP agent never hears
//! of the port, and the test fails.

mod common;
mod dataplane;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use dataplane::Cloud;
use serde_json::{json, Value};

fn host_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            host_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == "host") {
            out.push(p);
        }
    }
}

/// Does a DHCP host file of the simulation name this MAC?
fn dhcp_knows(state_dir: &Path, mac: &str) -> bool {
    let mut files = vec![];
    host_files(&state_dir.join("sim"), &mut files);
    files.iter().any(|f| std::fs::read_to_string(f).is_ok_and(|s| s.to_lowercase().contains(mac)))
}

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `neutrino server` on `up`'s SQLite file and vhost, with the crash hook.
fn second_server(state_dir: &Path, transport: &str, port: u16, crash_on: Option<(&str, &Path)>) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_neutrino"));
    cmd.args(["server", "--noauth", "--api-bind", &format!("127.0.0.1:{port}"), "--transport-url", transport])
        .arg("--db")
        .arg(format!("sqlite://{}", state_dir.join("neutrino.sqlite").display()))
        .env("RUST_LOG", std::env::var("NEUTRINO_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null());
    if let Some((resource, armed)) = crash_on {
        cmd.env("NEUTRINO_TEST_CRASH_AFTER_COMMIT", resource).env("NEUTRINO_TEST_CRASH_ARMED", armed);
    }
    Proc(cmd.spawn().expect("neutrino server starts"))
}

async fn ready(url: &str) -> bool {
    dataplane::common_eventually(Duration::from_secs(30), || async {
        reqwest::get(format!("{url}/")).await.is_ok_and(|r| r.status().is_success())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_delivery_loses_no_notification() {
    require_dataplane!();
    let cloud = Cloud::start_on_rabbit(1).await.expect("RabbitMQ with rabbitmqctl is needed for this test");
    let transport = cloud.vhost.as_ref().unwrap().url();
    let dhcp_alive = dataplane::common_eventually(Duration::from_secs(30), || async {
        let a = cloud.admin.req("GET", "agents?agent_type=DHCP agent", None, &[]).await;
        a.body["agents"].as_array().is_some_and(|l| l.iter().any(|x| x["alive"] == true))
    })
    .await;
    assert!(dhcp_alive, "the network node's DHCP agent reports over RabbitMQ");
    let (net, _) = cloud.network("demo", "crashnet", json!({}), "10.29.0.0/24").await;
    let served = dataplane::common_eventually(Duration::from_secs(30), || async {
        let r = cloud.admin.req("GET", &format!("networks/{net}/dhcp-agents"), None, &[]).await;
        r.body["agents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(served, "the network is scheduled to the DHCP agent");

    // The second server, armed to die after the next port commit.
    let armed = cloud.state_dir.join("crash-armed");
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut crashing = second_server(&cloud.state_dir, &transport, port, Some(("port", &armed)));
    assert!(ready(&url).await, "the second server serves");
    std::fs::write(&armed, b"").unwrap();
    let c = common::Client::new(&url, "demo", "admin,member");
    let r = reqwest::Client::new()
        .post(format!("{url}/v2.0/ports"))
        .header("X-Project-Id", "demo")
        .header("X-Roles", "admin,member")
        .json(&json!({"port": {"network_id": net, "name": "survivor", "device_owner": "compute:nova",
            "binding:host_id": "compute1"}}))
        .send()
        .await;
    assert!(r.is_err(), "the server died before answering: {r:?}");
    let mut died = false;
    for _ in 0..200 {
        if crashing.0.try_wait().ok().flatten().is_some() {
            died = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(died, "the crash hook killed the second server");
    std::fs::remove_file(&armed).unwrap();

    // The port was committed; its notification went nowhere yet.
    let ports = cloud.admin.req("GET", &format!("ports?name=survivor&network_id={net}"), None, &[]).await.expect(200);
    let found: Vec<Value> = ports["ports"].as_array().cloned().unwrap_or_default();
    assert_eq!(found.len(), 1, "the committed port exists: {ports}");
    let port_id = found[0]["id"].as_str().unwrap().to_string();
    let mac = found[0]["mac_address"].as_str().unwrap().to_lowercase();
    assert_eq!(found[0]["status"], "DOWN");

    // Restart the crashed server: the outbox is delivered (by it, or by
    // `up`, whichever sweeps first) and the DHCP agent learns the port.
    drop(crashing);
    let _restarted = second_server(&cloud.state_dir, &transport, port, None);
    assert!(ready(&url).await, "the restarted server serves");
    let learned =
        dataplane::common_eventually(Duration::from_secs(30), || async { dhcp_knows(&cloud.state_dir, &mac) }).await;
    assert!(learned, "after the restart the DHCP agent's host file names the port's MAC {mac}");

    // A VM on the port: ACTIVE, and its address by DHCP.
    let vm = cloud.boot("surv", &["--port", &port_id, "--host", "compute1"]).await;
    assert_eq!(vm.boot["addressing"], "dhcp", "the VM got its address by DHCP: {}", vm.boot);
    cloud.wait_status(&port_id, "ACTIVE", Duration::from_secs(30)).await;
    let again = c.req("GET", &format!("ports/{port_id}"), None, &[]).await.expect(200);
    assert_eq!(again["port"]["status"], "ACTIVE", "the restarted server sees the port ACTIVE");
}
