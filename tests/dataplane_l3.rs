//! The L3 agent end to end: a real server (`neutrino up` on a RabbitMQ
//! vhost), the agent as its own process (`neutrino agent l3`), a simulated
//! network node with its own OVS (userspace datapath), VMs in namespaces,
//! the outside world on the external flat network's physnet, real nftables.
//! Each host runs the real L2 agent (a task of the test on the same bus).

mod common;
mod l3;

use std::time::{Duration, Instant};

use l3::{ping1, seen_as, seen_as_eventually, whoami_server, Lab};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn fip_status(lab: &Lab, fip: &str) -> String {
    lab.demo.get(&format!("floatingips/{fip}")).await.expect(200)["floatingip"]["status"].as_str().unwrap().to_string()
}

async fn wait_fip_status(lab: &Lab, fip: &str, want: &str) -> bool {
    l3::common_eventually(T, || async { fip_status(lab, fip).await == want }).await
}

async fn nft_table(lab: &Lab, router: &str) -> String {
    let ns = lab.router_ns(router);
    ns.output(&["nft", "list", "table", "ip", "neutrino-l3"]).await.map(|o| o.stdout).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_routing_snat_floating_ips_hairpin_extra_routes() {
    require_lab!();
    // compute1: network node (L3 agent); compute2: the VMs (VXLAN between them).
    let lab = Lab::start(2).await;
    let agent = lab.start_agent();
    assert!(lab.wait_agent_alive(T).await, "the L3 agent registers:\n{}", agent.log());

    let (net1, sub1) = lab.tenant_net("net1", "10.1.0.0/24").await;
    let (net2, sub2) = lab.tenant_net("net2", "10.2.0.0/24").await;
    let started = Instant::now();
    let router = lab.router("r1", &[&sub1, &sub2]).await;
    let rid = id(&router);
    let gw_ip = Lab::gateway_ip(&router);
    let ns = lab.router_ns(&rid);
    assert!(l3::common_eventually(T, || async { ns.exists() }).await, "qrouter namespace created:\n{}", agent.log());
    assert!(lab.router_active(&rid).await, "router ports plugged and wired (ACTIVE):\n{}", agent.log());
    let router_ready = started.elapsed();

    let (vm1, p1) = lab.vm("vm1", 2, &net1, &sub1).await;
    let (vm2, _p2) = lab.vm("vm2", 2, &net2, &sub2).await;
    let (vm3, p3) = lab.vm("vm3", 2, &net1, &sub1).await;
    let vm1_ip = vm1.ip().unwrap().to_string();
    let vm2_ip = vm2.ip().unwrap().to_string();
    let _srv_vm1 = whoami_server(&vm1.netns, 8080);
    let _srv_out = whoami_server(lab.outside.netns(), 8080);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The namespace looks like Neutron's.
    let links = ns.exec(&["ip", "-br", "link"]).await.unwrap().stdout;
    for p in lab.admin.get(&format!("ports?device_id={rid}")).await.expect(200)["ports"].as_array().unwrap() {
        let pid = p["id"].as_str().unwrap();
        let prefix = if p["device_owner"] == "network:router_gateway" { "qg-" } else { "qr-" };
        let dev = format!("{prefix}{}", &pid[..11]);
        assert!(links.contains(&dev), "{dev} in {links}");
        assert!(links.contains(p["mac_address"].as_str().unwrap()), "MAC of {dev} in {links}");
        let iface =
            lab.host().ovsdb().find_interface(&format!("tap{}", &pid[..11])).await.unwrap().expect("tap on br-int");
        assert_eq!(iface.iface_id(), Some(pid));
    }
    let routes = ns.exec(&["ip", "route"]).await.unwrap().stdout;
    assert!(routes.contains("default via 203.0.113.1"), "default route: {routes}");

    // East-west through the router, without NAT.
    assert!(vm1.ping(&vm2_ip, 3).await.unwrap(), "vm1 (net1) -> vm2 (net2)");
    assert!(vm2.ping(&vm1_ip, 2).await.unwrap(), "vm2 -> vm1");
    assert_eq!(seen_as(&vm2.netns, &vm1_ip, 8080).await, vm2_ip, "no NAT between internal subnets");

    // SNAT: the outside sees the gateway address.
    assert!(vm2.ping("203.0.113.1", 3).await.unwrap(), "vm2 -> outside through SNAT");
    assert_eq!(seen_as(&vm2.netns, "203.0.113.1", 8080).await, gw_ip, "the outside sees the gateway IP");

    // Floating IP: association to reachability.
    let fip = lab
        .demo
        .post("floatingips", json!({"floatingip": {"floating_network_id": lab.public["id"]}}))
        .await
        .expect(201)["floatingip"]
        .clone();
    let fip_id = id(&fip);
    let fip_ip = fip["floating_ip_address"].as_str().unwrap().to_string();
    assert!(!lab.outside.ping(&fip_ip, 1).await.unwrap(), "an unassociated floating IP does not answer");
    let t0 = Instant::now();
    let a =
        lab.demo.put(&format!("floatingips/{fip_id}"), json!({"floatingip": {"port_id": p1["id"]}})).await.expect(200);
    assert_eq!(a["floatingip"]["status"], "DOWN", "DOWN until the agent configured it");
    let reachable = l3::common_eventually(T, || async {
        l3::seen_as_within(lab.outside.netns(), &fip_ip, 8080, "0.3").await == "203.0.113.1"
    })
    .await;
    let fip_reach = t0.elapsed();
    assert!(reachable, "the outside reaches vm1 through its floating IP:\n{}", agent.log());
    assert!(ping1(lab.outside.netns(), &fip_ip).await, "and pings it");
    assert!(wait_fip_status(&lab, &fip_id, "ACTIVE").await, "floating IP ACTIVE once configured");
    let fip_active = t0.elapsed();
    assert_eq!(seen_as(lab.outside.netns(), &fip_ip, 8080).await, "203.0.113.1", "DNAT keeps the outside's address");
    assert_eq!(seen_as(&vm1.netns, "203.0.113.1", 8080).await, fip_ip, "vm1 goes out as its floating IP");
    // Hairpin: VMs of the same and of another subnet reach vm1 through its floating IP.
    assert_eq!(seen_as(&vm3.netns, &fip_ip, 8080).await, gw_ip, "same-subnet hairpin (SNAT to the gateway)");
    assert!(!seen_as(&vm2.netns, &fip_ip, 8080).await.is_empty(), "vm2 reaches vm1's floating IP");
    // Traffic from the router itself (OUTPUT DNAT).
    assert!(!seen_as(&ns, &fip_ip, 8080).await.is_empty(), "the router reaches the floating IP");
    let table = nft_table(&lab, &rid).await;
    assert!(table.contains(&format!("{fip_ip} : {vm1_ip}")), "DNAT map: {table}");

    // Disassociation: unreachable again, DOWN.
    lab.demo.put(&format!("floatingips/{fip_id}"), json!({"floatingip": {"port_id": null}})).await.expect(200);
    assert!(
        l3::common_eventually(T, || async { !ping1(lab.outside.netns(), &fip_ip).await }).await,
        "the floating IP stops answering after disassociation"
    );
    assert!(wait_fip_status(&lab, &fip_id, "DOWN").await);
    assert_eq!(seen_as(&vm1.netns, "203.0.113.1", 8080).await, gw_ip, "vm1 falls back to SNAT");

    // Extra routes: 10.99.0.0/24 lives behind vm3.
    let vm3_ip = vm3.ip().unwrap().to_string();
    vm3.exec(&["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"]).await.unwrap();
    // vm3 answers for 10.99.0.0/24: its port security must allow that source.
    let pairs = json!({"port": {"allowed_address_pairs": [{"ip_address": "10.99.0.0/24"}]}});
    lab.admin.put(&format!("ports/{}", id(&p3)), pairs).await.expect(200);
    assert!(!vm2.ping("10.99.0.1", 1).await.unwrap());
    let routes = json!({"router": {"routes": [{"destination": "10.99.0.0/24", "nexthop": vm3_ip}]}});
    lab.demo.put(&format!("routers/{rid}/add_extraroutes"), routes.clone()).await.expect(200);
    assert!(
        l3::common_eventually(T, || async { vm2.ping("10.99.0.1", 1).await.unwrap_or(false) }).await,
        "extra route used:\n{}",
        ns.exec(&["ip", "route"]).await.unwrap().stdout
    );
    lab.demo.put(&format!("routers/{rid}/remove_extraroutes"), routes).await.expect(200);
    assert!(
        l3::common_eventually(T, || async {
            !ns.exec(&["ip", "route"]).await.unwrap().stdout.contains("10.99.0.0/24")
        })
        .await,
        "extra route removed"
    );

    // SNAT off: outbound traffic without a floating IP stops; back on: works.
    let ext = json!({"network_id": lab.public["id"], "enable_snat": false});
    lab.admin.put(&format!("routers/{rid}"), json!({"router": {"external_gateway_info": ext}})).await.expect(200);
    assert!(
        l3::common_eventually(T, || async { seen_as(&vm2.netns, "203.0.113.1", 8080).await.is_empty() }).await,
        "no SNAT when disabled"
    );
    let ext = json!({"network_id": lab.public["id"], "enable_snat": true});
    lab.admin.put(&format!("routers/{rid}"), json!({"router": {"external_gateway_info": ext}})).await.expect(200);
    assert_eq!(seen_as_eventually(&vm2.netns, "203.0.113.1", 8080, T).await, gw_ip, "SNAT again");

    // Administratively down: the router stops forwarding (its links go down,
    // its floating IPs go DOWN and stop answering) while its ports stay
    // plugged and ACTIVE; up: back.
    lab.demo.put(&format!("floatingips/{fip_id}"), json!({"floatingip": {"port_id": p1["id"]}})).await.expect(200);
    assert!(wait_fip_status(&lab, &fip_id, "ACTIVE").await);
    lab.demo.put(&format!("routers/{rid}"), json!({"router": {"admin_state_up": false}})).await.expect(200);
    assert!(wait_fip_status(&lab, &fip_id, "DOWN").await, "its floating IPs go DOWN");
    assert!(
        l3::common_eventually(T, || async { !ping1(lab.outside.netns(), &fip_ip).await }).await,
        "a down router's floating IP stops answering"
    );
    let links = ns.output(&["ip", "-br", "link"]).await.unwrap().stdout;
    assert!(
        links.lines().filter(|l| l.starts_with("qr-") || l.starts_with("qg-")).all(|l| l.contains("DOWN")),
        "a down router's links are down:\n{links}"
    );
    let ports = lab.admin.get(&format!("ports?device_id={rid}")).await.expect(200)["ports"].clone();
    assert!(
        ports.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(|p| p["status"] == "ACTIVE")),
        "a down router's ports stay bound and ACTIVE: {ports}"
    );
    lab.demo.put(&format!("routers/{rid}"), json!({"router": {"admin_state_up": true}})).await.expect(200);
    assert!(lab.router_active(&rid).await, "router back:\n{}", agent.log());
    assert!(wait_fip_status(&lab, &fip_id, "ACTIVE").await);
    assert!(l3::common_eventually(T, || ping1(lab.outside.netns(), &fip_ip)).await, "floating IP answers again");

    // The agent reports what it hosts.
    assert!(
        l3::common_eventually(T, || async {
            let a = lab.admin.get("agents?agent_type=L3%20agent").await.expect(200)["agents"][0].clone();
            a["configurations"]["routers"] == 1 && a["configurations"]["interfaces"] == 2
        })
        .await,
        "report_state counts"
    );

    // Router deletion removes its namespace and its ports.
    lab.demo.delete(&format!("floatingips/{fip_id}")).await.expect(204);
    for s in [&sub1, &sub2] {
        lab.demo
            .put(&format!("routers/{rid}/remove_router_interface"), json!({"subnet_id": s["id"]}))
            .await
            .expect(200);
    }
    lab.demo.delete(&format!("routers/{rid}")).await.expect(204);
    assert!(l3::common_eventually(T, || async { !ns.exists() }).await, "namespace removed:\n{}", agent.log());
    let left: Vec<String> = lab
        .host()
        .ovsdb()
        .list_interfaces()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.external_ids.contains_key("neutrino-l3-router"))
        .map(|i| i.name)
        .collect();
    assert!(left.is_empty(), "router ports left on br-int: {left:?}");

    eprintln!(
        "FIGURES: router (gateway + 2 interfaces) created to namespace plugged: {:?}; floating IP association to \
         reachability from outside: {:?} (status ACTIVE after {:?})",
        router_ready, fip_reach, fip_active
    );
    drop(agent);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_converges_and_keeps_established_connections() {
    require_lab!();
    let lab = Lab::start(1).await;
    let agent = lab.start_agent();
    assert!(lab.wait_agent_alive(T).await, "agent alive:\n{}", agent.log());
    let (net1, sub1) = lab.tenant_net("net1", "10.1.0.0/24").await;
    let (_net2, sub2) = lab.tenant_net("net2", "10.2.0.0/24").await;
    let r1 = lab.router("r1", &[&sub1]).await;
    let r2 = lab.router("r2", &[&sub2]).await;
    let (r1_id, r2_id) = (id(&r1), id(&r2));
    for r in [&r1_id, &r2_id] {
        assert!(lab.router_active(r).await, "router {r} plugged:\n{}", agent.log());
    }
    let (vm1, p1) = lab.vm("vm1", 1, &net1, &sub1).await;
    // The outside learns floating IPs from gratuitous ARP (it accepts them).
    lab.outside.netns().exec(&["sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1"]).await.unwrap();
    let fip = lab
        .demo
        .post("floatingips", json!({"floatingip": {"floating_network_id": lab.public["id"], "port_id": p1["id"]}}))
        .await
        .expect(201)["floatingip"]
        .clone();
    let fip_ip = fip["floating_ip_address"].as_str().unwrap().to_string();
    assert!(wait_fip_status(&lab, &id(&fip), "ACTIVE").await, "floating IP active:\n{}", agent.log());
    let gw_port =
        lab.admin.get(&format!("ports?device_id={r1_id}&device_owner=network:router_gateway")).await.expect(200)
            ["ports"][0]
            .clone();
    let qg_mac_addr = gw_port["mac_address"].as_str().unwrap().to_string();
    assert!(
        l3::common_eventually(Duration::from_secs(5), || async {
            let n = lab.outside.netns().exec(&["ip", "neigh", "show", &fip_ip]).await.unwrap().stdout;
            n.contains(&qg_mac_addr)
        })
        .await,
        "gratuitous ARP announced {fip_ip} at the gateway's MAC {qg_mac_addr} before any traffic"
    );
    let _echo = l3::echo_server(&vm1.netns, 9000);
    let _srv_out = whoami_server(lab.outside.netns(), 8080);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Established connections: outside -> vm1 (DNAT) and vm1 -> outside (SNAT of the floating IP).
    let mut inbound = l3::Conversation::open(lab.outside.netns(), &fip_ip, 9000);
    assert!(inbound.echo("before", Duration::from_secs(5)).await, "conversation through the floating IP");
    let _echo_out = l3::echo_server(lab.outside.netns(), 9001);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut outbound = l3::Conversation::open(&vm1.netns, "203.0.113.1", 9001);
    assert!(outbound.echo("before", Duration::from_secs(5)).await, "conversation to the outside");
    let r1_table = nft_table(&lab, &r1_id).await;

    // The agent stops; routers stay; the world changes meanwhile.
    agent.stop();
    assert!(lab.router_ns(&r1_id).exists() && lab.router_ns(&r2_id).exists(), "routers stay when the agent stops");
    assert!(inbound.echo("agent-down", Duration::from_secs(5)).await, "dataplane works without the agent");
    lab.demo
        .put(&format!("routers/{r2_id}/remove_router_interface"), json!({"subnet_id": sub2["id"]}))
        .await
        .expect(200);
    lab.demo.delete(&format!("routers/{r2_id}")).await.expect(204);
    let routes = json!({"router": {"routes": [{"destination": "10.98.0.0/24", "nexthop": "10.1.0.250"}]}});
    lab.demo.put(&format!("routers/{r1_id}/add_extraroutes"), routes).await.expect(200);
    // A namespace a previous run left behind for a router that no longer exists.
    let ghost = lab.router_ns("00000000-0000-4000-8000-000000000000");
    neutrino_agent::netns::Netns::create(ghost.name()).await.unwrap();

    // Restart: converges.
    let t0 = Instant::now();
    let agent = lab.start_agent();
    let converged = l3::common_eventually(T, || async {
        !lab.router_ns(&r2_id).exists()
            && !ghost.exists()
            && lab.router_ns(&r1_id).exec(&["ip", "route"]).await.is_ok_and(|o| o.stdout.contains("10.98.0.0/24"))
    })
    .await;
    let converge_time = t0.elapsed();
    assert!(converged, "restart converges (stale router and namespace removed, new route added):\n{}", agent.log());
    assert!(inbound.echo("after-restart", Duration::from_secs(5)).await, "inbound connection survives the restart");
    assert!(outbound.echo("after-restart", Duration::from_secs(5)).await, "outbound connection survives the restart");
    assert_eq!(nft_table(&lab, &r1_id).await, r1_table, "same NAT after the restart");
    assert_eq!(fip_status(&lab, &id(&fip)).await, "ACTIVE");
    assert!(ping1(lab.outside.netns(), &fip_ip).await);

    // Drift repaired by the full resync that follows a bus reconnection.
    let ns1 = lab.router_ns(&r1_id);
    ns1.exec(&["nft", "delete", "table", "ip", "neutrino-l3"]).await.unwrap();
    ns1.exec(&["conntrack", "-F"]).await.unwrap();
    assert!(!l3::tcp_connects(lab.outside.netns(), &fip_ip, 9000).await, "no floating IP without its NAT");
    lab.break_bus();
    assert!(
        l3::common_eventually(T, || l3::tcp_connects(lab.outside.netns(), &fip_ip, 9000)).await,
        "the resync after the reconnection restores the NAT:\n{}",
        agent.log()
    );
    assert!(agent.log().contains("reconnected to the bus"), "{}", agent.log());
    inbound.close().await;
    outbound.close().await;

    // Deleting the VM's port disassociates its floating IP: the router drops it.
    lab.admin.delete(&format!("ports/{}", id(&p1))).await.expect(204);
    assert!(
        l3::common_eventually(T, || async {
            let a = ns1.exec(&["ip", "-o", "addr"]).await.unwrap().stdout;
            !a.contains(&format!("{fip_ip}/32"))
        })
        .await,
        "the floating IP of a deleted port is removed from the router:\n{}",
        agent.log()
    );
    assert_eq!(fip_status(&lab, &id(&fip)).await, "DOWN");
    eprintln!(
        "FIGURES: agent restart to converged (1 router kept, 1 stale router, 1 orphan namespace): {converge_time:?}"
    );
    drop(agent);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_of_many_routers_in_process() {
    require_lab!();
    let n: usize = std::env::var("NEUTRINO_L3_ROUTERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let lab = Lab::start(1).await;
    let bus = lab.bus.clone();
    // The agent registers first so routers are scheduled at creation...
    let agent = neutrino_agent::l3::L3Agent::start(lab.agent_config(), bus.clone()).await.expect("agent starts");
    assert!(lab.wait_agent_alive(T).await);
    agent.stop().await;
    // ...then stops while N routers (gateway + one interface each) are created.
    let unlimited = json!({"quota": {"router": -1, "network": -1, "subnet": -1, "port": -1}});
    lab.admin.put("quotas/demo", unlimited).await.expect(200);
    let mut ids = Vec::new();
    for i in 0..n {
        let (_net, sub) = lab.tenant_net(&format!("n{i}"), &format!("10.{}.{}.0/24", 100 + i / 200, i % 200)).await;
        ids.push(id(&lab.router(&format!("r{i}"), &[&sub]).await));
    }
    let t0 = Instant::now();
    let agent = neutrino_agent::l3::L3Agent::start(lab.agent_config(), bus.clone()).await.expect("agent restarts");
    assert!(agent.wait_full_syncs(1, Duration::from_secs(120)).await, "first full sync");
    let first = agent.stats();
    let wall = t0.elapsed();
    assert_eq!(first.routers, n);
    assert_eq!(first.interfaces, n);
    for r in &ids {
        assert!(lab.router_ns(r).exists());
    }
    // A second full sync finds nothing to change.
    agent.resync();
    assert!(agent.wait_full_syncs(2, Duration::from_secs(60)).await);
    let second = agent.stats();
    for r in &ids {
        assert!(lab.router_active(r).await, "every router port wired");
    }
    eprintln!(
        "FIGURES: full sync of {n} routers (gateway + 1 interface each) from scratch: {:?} (agent start to done: \
         {wall:?}); no-op full resync: {:?}",
        first.last_full_sync.unwrap(),
        second.last_full_sync.unwrap()
    );
    agent.stop().await;
    drop(bus);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_router_advertisements_follow_the_ra_mode() {
    require_lab!();
    if !neutrino_agent::cmd::which("radvd") {
        common::cannot_run("radvd not installed");
        return;
    }
    let lab = Lab::start(2).await;
    let agent = lab.start_agent();
    assert!(lab.wait_agent_alive(T).await, "the L3 agent registers:\n{}", agent.log());
    let (net, sub4) = lab.tenant_net("v6net", "10.6.0.0/24").await;
    let sub6 = lab
        .demo
        .post(
            "subnets",
            json!({"subnet": {"network_id": net["id"], "ip_version": 6, "cidr": "fd00:66::/64",
                "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    let router = lab.router("r6", &[&sub4, &sub6]).await;
    let rid = id(&router);
    assert!(lab.router_active(&rid).await, "router ports ACTIVE:\n{}", agent.log());
    let ns = lab.router_ns(&rid);
    let radvd = || async {
        let mut n = 0;
        for pid in ns.pids() {
            if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "radvd") {
                n += 1;
            }
        }
        n
    };
    assert!(
        l3::common_eventually(T, || async { radvd().await > 0 }).await,
        "radvd runs in the router:\n{}",
        agent.log()
    );
    let conf = std::fs::read_to_string(lab.agent_config().ra_dir().join(format!("{rid}.radvd.conf"))).unwrap();
    assert!(conf.contains("prefix fd00:66::/64") && conf.contains("AdvAutonomous on;"), "{conf}");

    // A VM gets its SLAAC address (the port's EUI-64 fixed IP) and a default
    // route to the router's link-local address from the advertisements.
    let (vm, port) = lab.vm("v6vm", 2, &net, &sub4).await;
    let v6 = port["fixed_ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subnet_id"] == sub6["id"])
        .map(|f| f["ip_address"].as_str().unwrap().to_string())
        .expect("a SLAAC fixed IP");
    let show = |argv: &'static [&'static str]| {
        let vm = &vm;
        async move { vm.netns.output(argv).await.map(|o| o.stdout).unwrap_or_default() }
    };
    assert!(
        l3::common_eventually(T, || async { show(&["ip", "-6", "addr", "show", "dev", "eth0"]).await.contains(&v6) })
            .await,
        "the VM configured {v6} from the router advertisement: {}",
        show(&["ip", "-6", "addr", "show", "dev", "eth0"]).await
    );
    assert!(
        l3::common_eventually(T, || async {
            show(&["ip", "-6", "route", "show", "default"]).await.contains("via fe80::")
        })
        .await,
        "default route via the router: {}",
        show(&["ip", "-6", "route"]).await
    );
    let gw6 = sub6["gateway_ip"].as_str().unwrap().to_string();
    assert!(
        l3::common_eventually(T, || async {
            vm.netns.output(&["ping", "-6", "-c1", "-W1", &gw6]).await.is_ok_and(|o| o.success)
        })
        .await,
        "the VM reaches the router's {gw6}"
    );

    // No prefix with an RA mode left: radvd stops.
    lab.demo.put(&format!("routers/{rid}/remove_router_interface"), json!({"subnet_id": sub6["id"]})).await.expect(200);
    assert!(l3::common_eventually(T, || async { radvd().await == 0 }).await, "radvd stopped:\n{}", agent.log());
    drop(vm);
    agent.stop();
    lab.shutdown().await;
}
