//! The L2 agent over RabbitMQ: `neutrino up --sim-hosts 2 --transport-url
//! rabbit://…/<private vhost>`, the agents being `neutrino agent l2`
//! processes (configured through openvswitch_agent.ini). Includes agent
//! restarts under a continuous ping and (opt-in, it disturbs every user of
//! the broker) a broker restart. Needs root, Open vSwitch and RabbitMQ with
//! `rabbitmqctl` (skips otherwise).

mod common;
mod dataplane;

use std::time::{Duration, Instant};

use dataplane::Cloud;
use serde_json::{json, Value};

/// Flows of the agent (cookie tag "NTL2") with their age in seconds.
fn agent_flows(dump: &str) -> Vec<(String, f64)> {
    dump.lines()
        .filter(|l| l.contains("cookie=0x4e544c32"))
        .filter_map(|l| {
            let dur = l.split("duration=").nth(1)?.split('s').next()?.parse().ok()?;
            let body: Vec<&str> = l
                .split(", ")
                .filter(|p| {
                    !p.trim_start().starts_with("duration=")
                        && !p.contains("n_packets")
                        && !p.contains("n_bytes")
                        && !p.contains("idle_age")
                })
                .collect();
            Some((body.join(", "), dur))
        })
        .collect()
}

async fn started_at(cloud: &Cloud, host: &str) -> Value {
    let a = cloud
        .admin
        .req("GET", &format!("agents?host={host}&agent_type=Open vSwitch agent"), None, &[])
        .await
        .expect(200);
    a["agents"][0]["started_at"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbit_networks_across_hosts() {
    require_dataplane!();
    let Some(cloud) = Cloud::start_on_rabbit(2).await else { return };
    let ini = std::fs::read_to_string(cloud.state_dir.join("sim/compute1/openvswitch_agent.ini")).unwrap();
    assert!(ini.contains("bridge_mappings = physnet1:br-physnet1"), "{ini}");
    for (t, extra, cidr) in [
        ("vxlan", json!({"provider:network_type": "vxlan"}), "10.11.0.0/24"),
        ("geneve", json!({"provider:network_type": "geneve"}), "10.12.0.0/24"),
        ("vlan", json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1"}), "10.13.0.0/24"),
    ] {
        let (net, _) = cloud.network("demo", t, extra, cidr).await;
        let a = cloud.boot(&format!("{t}a"), &["--network", &net, "--host", "compute1"]).await;
        let b = cloud.boot(&format!("{t}b"), &["--network", &net, "--host", "compute2"]).await;
        assert!(cloud.ping(&a, &b.ip, 2).await, "{t} over RabbitMQ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_loses_no_ping() {
    require_dataplane!();
    let Some(cloud) = Cloud::start_on_rabbit(2).await else { return };
    let (net, _) = cloud.network("demo", "r", json!({}), "10.14.0.0/24").await;
    let (vnet, _) = cloud
        .network(
            "demo",
            "rv",
            json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1"}),
            "10.15.0.0/24",
        )
        .await;
    let a = cloud.boot("a", &["--network", &net, "--host", "compute1"]).await;
    let b = cloud.boot("b", &["--network", &net, "--host", "compute2"]).await;
    let va = cloud.boot("va", &["--network", &vnet, "--host", "compute1"]).await;
    let vb = cloud.boot("vb", &["--network", &vnet, "--host", "compute2"]).await;
    assert!(cloud.ping(&a, &b.ip, 2).await && cloud.ping(&va, &vb.ip, 2).await);
    let tags_before = cloud.vsctl("compute1", &["--columns=name,tag", "list", "Port"]).await;

    for (signal, host) in [("TERM", "compute1"), ("KILL", "compute2"), ("TERM", "compute2")] {
        let before = started_at(&cloud, host).await;
        let pid = cloud.host(host).agent_pid.expect("agents run as processes on RabbitMQ");
        let tunnel_ping = cloud.continuous_ping(&a, &b.ip, 6);
        let vlan_ping = cloud.continuous_ping(&va, &vb.ip, 6);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let restart = Instant::now();
        let _ = std::process::Command::new("kill").args([format!("-{signal}"), pid.to_string()]).status();
        // The supervisor in `up` starts it again; it reports with start_flag and resyncs.
        let ok = dataplane::common_eventually(Duration::from_secs(20), || async {
            started_at(&cloud, host).await != before && cloud.host(host).agent_pid != Some(pid)
        })
        .await;
        assert!(ok, "the agent of {host} came back");
        let back = restart.elapsed();
        let (tx, rx) = tunnel_ping.finish().await;
        let (vtx, vrx) = vlan_ping.finish().await;
        eprintln!("FIGURE agent SIG{signal} on {host}: back in {back:?}; VXLAN ping {rx}/{tx}, VLAN ping {vrx}/{vtx} received");
        assert!(tx > 80 && vtx > 80, "the pings ran ({tx}, {vtx})");
        assert_eq!(tx, rx, "no VXLAN ping lost across the agent restart on {host}");
        assert_eq!(vtx, vrx, "no VLAN ping lost across the agent restart on {host}");
        // The restarted agent converged without rewriting anything: its flows
        // are older than the restart, and the local VLANs were recovered.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let since = restart.elapsed().as_secs_f64();
        for bridge in ["br-int", "br-tun", "br-physnet1"] {
            let flows = agent_flows(&cloud.flows(host, bridge).await);
            assert!(!flows.is_empty(), "{host} {bridge} has agent flows");
            let young: Vec<&(String, f64)> = flows.iter().filter(|(_, d)| *d < since).collect();
            assert!(young.is_empty(), "{host} {bridge}: flows rewritten by the resync: {young:#?}");
        }
    }
    assert_eq!(cloud.vsctl("compute1", &["--columns=name,tag", "list", "Port"]).await, tags_before, "tags kept");
    // The restarted agents still do their job.
    let c = cloud.boot("c", &["--network", &net, "--host", "compute2"]).await;
    assert!(cloud.ping(&a, &c.ip, 2).await);
    cloud.delete_vm("b").await;
    assert!(!cloud.ping(&a, &b.ip, 1).await);
}

/// Starts the broker's application again when dropped (test failure included).
struct StartAppGuard;

impl Drop for StartAppGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}

/// One broker restart at a time on this machine (other test binaries too):
/// a lock directory holding the owner's PID, removed on drop.
struct BrokerLock(std::path::PathBuf);

impl BrokerLock {
    fn take() -> BrokerLock {
        let dir = std::env::temp_dir().join("neutrino-broker-restart.lock");
        loop {
            if std::fs::create_dir(&dir).is_ok() {
                let _ = std::fs::write(dir.join("pid"), std::process::id().to_string());
                return BrokerLock(dir);
            }
            let owner = std::fs::read_to_string(dir.join("pid")).ok().and_then(|p| p.trim().parse::<u32>().ok());
            if owner.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(&dir);
                continue;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for BrokerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared RabbitMQ (stop_app/start_app); run with --ignored, alone"]
async fn broker_restart_keeps_forwarding_and_resyncs() {
    require_dataplane!();
    let _lock = BrokerLock::take();
    let Some(cloud) = Cloud::start_on_rabbit(2).await else { return };
    let (net, _) = cloud.network("demo", "br", json!({}), "10.16.0.0/24").await;
    let a = cloud.boot("a", &["--network", &net, "--host", "compute1"]).await;
    let b = cloud.boot("b", &["--network", &net, "--host", "compute2"]).await;
    assert!(cloud.ping(&a, &b.ip, 2).await);
    let ping = cloud.continuous_ping(&a, &b.ip, 12);
    let _guard = StartAppGuard;
    let out = tokio::process::Command::new("rabbitmqctl").arg("stop_app").output().await.unwrap();
    assert!(out.status.success(), "stop_app: {out:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = tokio::process::Command::new("rabbitmqctl").arg("start_app").output().await.unwrap();
    assert!(out.status.success(), "start_app: {out:?}");
    let (tx, rx) = ping.finish().await;
    eprintln!("FIGURE broker restart: ping {rx}/{tx} received");
    assert_eq!(tx, rx, "the dataplane does not depend on the broker");
    // After the reconnection the agents resync; a port created after the
    // outage is wired and peers learn it.
    cloud.wait_agents(2).await;
    let started = Instant::now();
    let c = loop {
        let out =
            cloud.neutrino(&["vm", "boot", "c", "--network", &net, "--host", "compute2", "--timeout", "20"]).await;
        if out.status.success() {
            break cloud.boot_output("c", &out.stdout);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no VM boots after the broker restart: {out:?}");
        let _ = cloud.neutrino(&["vm", "delete", "c"]).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert!(cloud.ping(&a, &c.ip, 3).await, "a new port is reachable after the broker restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_gets_its_address_by_dhcp_when_a_dhcp_agent_serves_the_network() {
    require_dataplane!();
    for tool in ["dnsmasq", "udhcpc"] {
        if !neutrino_agent::cmd::which(tool) {
            common::cannot_run(&format!("{tool} missing"));
            return;
        }
    }
    // `up` runs the network node's (compute1's) DHCP agent as a process on
    // the broker, plugging its ports into that host's br-int (wired by the
    // L2 agent like any port).
    let Some(cloud) = Cloud::start_on_rabbit(2).await else { return };
    let alive = dataplane::common_eventually(Duration::from_secs(30), || async {
        let a = cloud.admin.req("GET", "agents?agent_type=DHCP agent", None, &[]).await;
        a.body["agents"].as_array().is_some_and(|l| l.iter().any(|x| x["alive"] == true))
    })
    .await;
    assert!(alive, "the network node's DHCP agent reports over RabbitMQ");
    let (net, _) = cloud.network("demo", "dhcpnet", json!({}), "10.17.0.0/24").await;
    let served = dataplane::common_eventually(Duration::from_secs(30), || async {
        let r = cloud.admin.req("GET", &format!("networks/{net}/dhcp-agents"), None, &[]).await;
        r.body["agents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(served, "the network is scheduled to the DHCP agent");
    let a = cloud.boot("d1", &["--network", &net, "--host", "compute2"]).await;
    let b = cloud.boot("d2", &["--network", &net, "--host", "compute1"]).await;
    assert_eq!(a.boot["addressing"], "dhcp", "d1 asked DHCP: {}", a.boot);
    assert_eq!(b.boot["addressing"], "dhcp", "d2 asked DHCP: {}", b.boot);
    let addr = dataplane::ns_output(&a.netns, &["ip", "-4", "addr", "show", "eth0"]).await;
    assert!(String::from_utf8_lossy(&addr.stdout).contains(&format!("{}/24", a.ip)), "the lease is the port's address");
    assert!(cloud.ping(&a, &b.ip, 2).await, "DHCP-configured VMs reach each other");
}
