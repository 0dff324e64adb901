//! The DHCP agent as a task of another process, on the in-process bus (the
//! way `neutrino up` runs it), for a simulated host: a scripted server
//! answers the DHCP RPCs; real dnsmasq, real OVS, a VM with udhcpc. The
//! DHCP device and the VM are put on one local VLAN by the test (no L2
//! agent here).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neutrino_agent::dhcp::{DhcpAgent, DhcpAgentConfig};
use neutrino_agent::netns::Netns;
use neutrino_agent::openflow::flow::{parse_actions, Flow};
use neutrino_agent::simhost::VmSpec;
use neutrino_lib::southbound::DhcpNetwork;
use neutrino_rpc::{topics, CallContext, MethodRouter, RemoteError, RpcClient, ServerOptions, Target, Transport};
use serde_json::{json, Value};

const NET: &str = "5d3c1b8e-0000-4000-8000-00000000a001";
const SUBNET: &str = "5d3c1b8e-0000-4000-8000-00000000b001";

/// What the scripted server knows and saw.
#[derive(Default)]
struct Fake {
    networks: BTreeMap<String, DhcpNetwork>,
    ready: Vec<String>,
    released: Vec<String>,
    reports: u32,
}

fn port(id: &str, mac: &str, ip: &str, owner: &str, device_id: &str) -> Value {
    json!({"id": id, "mac_address": mac, "device_owner": owner, "device_id": device_id, "binding:host_id": "hostA",
        "status": "DOWN", "revision_number": 1, "fixed_ips": [{"subnet_id": SUBNET, "ip_address": ip}],
        "extra_dhcp_opts": [], "dns_assignment": []})
}

async fn serve_fake(bus: &Arc<dyn Transport>, fake: Arc<Mutex<Fake>>) -> Vec<neutrino_rpc::ServerHandle> {
    let (f1, f2, f3, f4, f5, f6) = (fake.clone(), fake.clone(), fake.clone(), fake.clone(), fake.clone(), fake);
    let dhcp = MethodRouter::new()
        .method("get_active_networks", move |_c, _a| {
            let ids: Vec<String> = f1.lock().unwrap().networks.keys().cloned().collect();
            async move { Ok(json!({ "networks": ids })) }
        })
        .method("get_network_info", move |_c, a| {
            let n = f2.lock().unwrap().networks.get(a["network_id"].as_str().unwrap_or("")).cloned();
            async move { Ok(json!(n)) }
        })
        .method("create_dhcp_port", move |_c, a| {
            let mut f = f3.lock().unwrap();
            let net = a["network_id"].as_str().unwrap_or("").to_string();
            let p = port(
                "5d3c1b8e-0000-4000-8000-0000000dc001",
                "fa:16:3e:00:0d:01",
                "10.40.0.2",
                "network:dhcp",
                a["device_id"].as_str().unwrap_or(""),
            );
            if let Some(n) = f.networks.get_mut(&net) {
                n.ports.retain(|x| x["id"] != p["id"]);
                n.ports.push(p.clone());
            }
            async move { Ok::<_, RemoteError>(p) }
        })
        .method("release_dhcp_port", move |_c, a| {
            f4.lock().unwrap().released.push(a["network_id"].as_str().unwrap_or("").to_string());
            async move { Ok(Value::Null) }
        })
        .method("dhcp_ready_on_ports", move |_c, a| {
            let ids: Vec<String> =
                a["port_ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
            f5.lock().unwrap().ready.extend(ids);
            async move { Ok(Value::Null) }
        });
    let reports = MethodRouter::new().method("report_state", move |_c, _a| {
        let mut f = f6.lock().unwrap();
        f.reports += 1;
        let status = if f.reports == 1 { "new" } else { "alive" };
        async move { Ok(json!({ "status": status })) }
    });
    vec![
        bus.serve(topics::DHCP_PLUGIN, "server", Arc::new(dhcp), ServerOptions::default()).await.unwrap(),
        bus.serve(topics::REPORTS, "server", Arc::new(reports), ServerOptions::default()).await.unwrap(),
    ]
}

const UDHCPC_SCRIPT: &str = "#!/bin/sh\ncase \"$1\" in\n  bound|renew) ip addr replace \"$ip/$mask\" dev \"$interface\"; echo \"ip=$ip router=$router dns=$dns mtu=$mtu\" > \"$OUTFILE\" ;;\nesac\nexit 0\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_agent_in_process_for_a_sim_host() {
    require_sim!();
    for t in ["dnsmasq", "udhcpc"] {
        if !neutrino_agent::cmd::which(t) {
            common::cannot_run(&format!("{t} not installed"));
            return;
        }
    }
    let sim = common::sim().await;
    let host = sim.add_host("hostA").await.unwrap();
    host.layout().ensure_int_bridge(host.ovsdb()).await.unwrap();
    host.ofctl("br-int").add_flows(&[Flow::new(0, 0).actions(parse_actions("normal"))]).await.unwrap();
    let work = sim.config().workdir.clone();

    let bus: Arc<dyn Transport> = neutrino_rpc::connect("in-process://dhcp-inproc-test").unwrap();
    let fake = Arc::new(Mutex::new(Fake::default()));
    fake.lock().unwrap().networks.insert(
        NET.into(),
        DhcpNetwork {
            id: NET.into(),
            mtu: 1400,
            dns_domain: "example.org.".into(),
            subnets: vec![json!({"id": SUBNET, "cidr": "10.40.0.0/24", "enable_dhcp": true, "gateway_ip": "10.40.0.1",
                "dns_nameservers": ["192.0.2.53"], "host_routes": [], "ipv6_ra_mode": null, "ipv6_address_mode": null})],
            ports: vec![port("5d3c1b8e-0000-4000-8000-0000000vm001", "fa:16:3e:00:01:01", "10.40.0.11", "compute:nova", "vm1")],
        },
    );
    let _servers = serve_fake(&bus, fake.clone()).await;

    let cfg = DhcpAgentConfig::for_sim_host(&host, work.join("dhcp"));
    let prefix = cfg.netns_prefix.clone();
    let agent = DhcpAgent::start(cfg, bus.clone()).await.expect("agent starts");
    let st = agent.wait_synced(Duration::from_secs(20)).await.expect("first resync");
    assert_eq!((st.networks, st.subnets, st.ports), (1, 1, 2), "{st:?}");
    let qdhcp = Netns::new(format!("{prefix}{NET}"));
    assert!(qdhcp.exists());
    assert!(qdhcp.name().starts_with(sim.prefix()), "qdhcp namespaces are swept with the simulation");
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            fake.lock().unwrap().ready.contains(&"5d3c1b8e-0000-4000-8000-0000000vm001".to_string())
        })
        .await
    );

    // The test is the L2 agent: DHCP device and VM on local VLAN 7.
    let tap = "tap5d3c1b8e-00";
    host.ovsdb().set_port_tag(tap, Some(7)).await.unwrap();
    let vm = host.add_vm(&VmSpec::new("vm1", "fa:16:3e:00:01:01").tag(7)).await.unwrap();
    let script = work.join("udhcpc.sh");
    std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();
    let out = work.join("vm1.lease");
    let r = vm
        .netns
        .cmd(&[
            "udhcpc",
            "-i",
            "eth0",
            "-f",
            "-q",
            "-n",
            "-t",
            "5",
            "-T",
            "1",
            "-O",
            "mtu",
            "-s",
            script.to_str().unwrap(),
        ])
        .env("OUTFILE", &out)
        .output()
        .await
        .unwrap();
    let lease = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(r.success, "udhcpc: {} {}", r.stdout, r.stderr);
    assert_eq!(lease.trim(), "ip=10.40.0.11 router=10.40.0.1 dns=192.0.2.53 mtu=1400");

    // A port appears; the server casts network_changed to dhcp_agent.hostA.
    fake.lock().unwrap().networks.get_mut(NET).unwrap().ports.push(port(
        "5d3c1b8e-0000-4000-8000-0000000vm002",
        "fa:16:3e:00:01:02",
        "10.40.0.12",
        "compute:nova",
        "vm2",
    ));
    let notify = RpcClient::new(bus.clone(), Target::topic(topics::DHCP_AGENT).server("hostA"));
    notify.cast(&CallContext::admin(), "network_changed", json!({"network_id": NET})).await.unwrap();
    let hosts = work.join("dhcp").join(NET).join("host");
    assert!(
        common::eventually(Duration::from_secs(1), || async {
            std::fs::read_to_string(&hosts).unwrap_or_default().contains("fa:16:3e:00:01:02")
        })
        .await,
        "the new port did not reach dnsmasq within a second"
    );
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            fake.lock().unwrap().ready.contains(&"5d3c1b8e-0000-4000-8000-0000000vm002".to_string())
        })
        .await
    );

    // network_removed: torn down and released.
    notify.cast(&CallContext::admin(), "network_removed", json!({"network_id": NET})).await.unwrap();
    assert!(common::eventually(Duration::from_secs(10), || async { !qdhcp.exists() }).await, "namespace left");
    assert!(
        common::eventually(Duration::from_secs(5), || async { fake.lock().unwrap().released == vec![NET.to_string()] })
            .await
    );
    assert!(host.ovsdb().find_interface(tap).await.unwrap().is_none(), "DHCP device left on br-int");
    assert_eq!(agent.status().networks, 0);

    // Served again, then stop_and_teardown leaves nothing on the host.
    notify.cast(&CallContext::admin(), "network_changed", json!({"network_id": NET})).await.unwrap();
    assert!(common::eventually(Duration::from_secs(10), || async { qdhcp.exists() }).await);
    assert!(common::eventually(Duration::from_secs(10), || async { agent.status().networks == 1 }).await);
    agent.stop_and_teardown().await;
    assert!(!qdhcp.exists(), "stop_and_teardown left the namespace");
    assert!(host.ovsdb().find_interface(tap).await.unwrap().is_none());
    assert!(!work.join("dhcp").join(NET).exists());
}
