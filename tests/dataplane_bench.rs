//! Benchmarks of the L2 agent (ignored by default; they print `FIGURE`
//! lines). Needs root and Open vSwitch, the second one RabbitMQ too.
//!
//! ```sh
//! cargo test --release --test dataplane_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! * port create → "VM answers ping": `neutrino vm boot` (port creation,
//!   plug, ACTIVE, address) then a ping from a VM on the other host until it
//!   answers, 100 times: p50/p99;
//! * ports wired per second by one agent: N ports created bound to one host,
//!   plugged into its br-int in one OVSDB transaction, until all are ACTIVE;
//! * agent restart with 1000 ports: time to converge (the agent's own
//!   measure of its full resync, and until it reported all devices up).

mod common;
mod dataplane;

use std::time::{Duration, Instant};

use dataplane::Cloud;
use neutrino_agent::ovsdb::{Client, Commit, Endpoint, InterfaceSpec, InterfaceType, PortSpec};
use serde_json::{json, Value};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_port_create_to_ping() {
    require_dataplane!();
    let n: usize = std::env::var("BENCH_VMS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "bench", json!({}), "10.30.0.0/22").await;
    let pinger = cloud.boot("pinger", &["--network", &net, "--host", "compute1"]).await;
    let mut took = Vec::with_capacity(n);
    let mut active = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("vm{i}");
        let started = Instant::now();
        let vm = cloud.boot(&name, &["--network", &net, "--host", "compute2"]).await;
        let mut answered = false;
        while started.elapsed() < Duration::from_secs(10) {
            if dataplane::ns_ok(&pinger.netns, &["ping", "-n", "-q", "-c", "1", "-W", "0.1", &vm.ip]).await {
                answered = true;
                break;
            }
        }
        assert!(answered, "{name} never answered");
        took.push(started.elapsed());
        active.push(Duration::from_millis(vm.boot["active_ms"].as_u64().unwrap_or(0)));
    }
    took.sort();
    active.sort();
    println!(
        "FIGURE port create → VM answers ping over {n} VMs (across hosts, conntrack firewall): p50 {:?}, p99 {:?}, max {:?}",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took[n - 1]
    );
    println!(
        "FIGURE port create → port ACTIVE (inside vm boot): p50 {:?}, p99 {:?}",
        percentile(&active, 0.5),
        percentile(&active, 0.99)
    );
}

/// Creates `n` ports bound to `host` on `net` (bulk requests of 100).
async fn bound_ports(cloud: &Cloud, net: &str, host: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    let c = cloud.client("demo");
    while out.len() < n {
        let k = (n - out.len()).min(100);
        let items: Vec<Value> = (0..k)
            .map(|_| json!({"network_id": net, "binding:host_id": host, "device_owner": "compute:nova", "device_id": uuid::Uuid::new_v4().to_string()}))
            .collect();
        let r = c.req("POST", "ports", Some(json!({"ports": items})), &[]).await.expect(201);
        for p in r["ports"].as_array().unwrap() {
            out.push((p["id"].as_str().unwrap().to_string(), p["mac_address"].as_str().unwrap().to_string()));
        }
    }
    out
}

/// Plugs ports into a host's br-int as OVS internal ports, in one transaction.
async fn plug_all(cloud: &Cloud, host: &str, ports: &[(String, String)]) {
    let h = cloud.host(host);
    let db = Client::connect(Endpoint::unix(h.rundir.join("db.sock"))).await.unwrap();
    let specs: Vec<PortSpec> = ports
        .iter()
        .map(|(id, mac)| {
            let name = format!("tap{}", &id[..11]);
            PortSpec::single(InterfaceSpec::vm_port(name.as_str(), InterfaceType::Internal, id, mac, id))
        })
        .collect();
    db.add_ports("br-int", &specs, Commit::NoWait).await.unwrap();
}

async fn active_count(cloud: &Cloud, net: &str) -> usize {
    let r =
        // The VMs' ports (the network's DHCP port, also ACTIVE, is not counted).
        cloud.admin.req("GET", &format!("ports?network_id={net}&status=ACTIVE&device_owner=compute:nova&fields=id"), None, &[]).await.expect(200);
    r["ports"].as_array().map(Vec::len).unwrap_or(0)
}

/// The agent's last "full resync done" record in its JSON log: (ports, ms).
fn last_resync(log: &str) -> Option<(u64, f64)> {
    log.lines().rev().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find_map(|v| {
        let f = &v["fields"];
        (f["message"] == "full resync done")
            .then(|| (f["ports"].as_u64().unwrap_or(0), f["elapsed_ms"].as_f64().unwrap_or(0.0)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_wiring_rate_and_resync_of_1000_ports() {
    require_dataplane!();
    let n: usize = std::env::var("BENCH_PORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    // The agents are processes (RabbitMQ); their JSON logs carry the resync figures.
    std::env::set_var("NEUTRINO_AGENT_LOG", "warn,neutrino_agent::l2=info");
    std::env::set_var("NEUTRINO_LOG_FORMAT", "json");
    let Some(cloud) = Cloud::start_on_rabbit(1).await else { return };
    std::env::remove_var("NEUTRINO_LOG_FORMAT");
    let (net, _) = cloud.network("demo", "many", json!({}), "10.64.0.0/18").await;
    cloud.admin.req("PUT", "quotas/demo", Some(json!({"quota": {"port": -1}})), &[]).await.expect(200);

    // A first batch of 100, then the rest: ports wired per second.
    for batch in [100, n - 100] {
        let t0 = Instant::now();
        let ports = bound_ports(&cloud, &net, "compute1", batch).await;
        let created = t0.elapsed();
        let before = active_count(&cloud, &net).await;
        let t1 = Instant::now();
        plug_all(&cloud, "compute1", &ports).await;
        let ok = dataplane::common_eventually(Duration::from_secs(120), || async {
            active_count(&cloud, &net).await >= before + batch
        })
        .await;
        assert!(ok, "{batch} ports did not all go ACTIVE");
        let wired = t1.elapsed();
        println!(
            "FIGURE one agent wired {batch} ports (plug → all ACTIVE) in {wired:?}: {:.0} ports/s (API created them in {created:?})",
            batch as f64 / wired.as_secs_f64()
        );
    }
    let flows = cloud.flows("compute1", "br-int").await.lines().count();
    println!("FIGURE br-int holds {flows} flows for {n} ports (default security group, conntrack firewall)");

    // Restart the agent: it recovers everything and converges.
    let log_path = cloud.state_dir.join("sim/compute1/l2-agent.log");
    let pid = cloud.host("compute1").agent_pid.unwrap();
    let restart = Instant::now();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let mut figure = None;
    while restart.elapsed() < Duration::from_secs(120) {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some((ports, ms)) = last_resync(&log).filter(|(p, _)| *p as usize >= n) {
            if cloud.host("compute1").agent_pid != Some(pid) {
                figure = Some((ports, ms));
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ports, ms) = figure.expect("the restarted agent finished its resync");
    let wall = restart.elapsed();
    println!(
        "FIGURE agent restart with {ports} ports: full resync (OVSDB + server state read, flows compared, devices reported) {ms:.0} ms; kill → resync done {wall:?} (includes process start and the 0.5 s restart delay)"
    );
    assert!(ms < 5000.0, "resync of {ports} ports under 5 s");
    assert_eq!(active_count(&cloud, &net).await, n);
}
