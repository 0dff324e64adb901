//! The DHCP agent in the dataplane: a real server over RabbitMQ, the agent
//! as its own process (`neutrino agent dhcp`) for a simulated hypervisor
//! whose Open vSwitch L2 agent wires the DHCP device and the VMs, real
//! dnsmasq in qdhcp namespaces, real OVS (netdev datapath), VMs asking with
//! busybox udhcpc and ISC dhclient.
//!
//! Figures are printed as `FIGURE ...` lines (`-- --nocapture`).

mod common;
mod dhcp_env;

use std::time::{Duration, Instant};

use dhcp_env::{Env, L2Kind, HOST};
use serde_json::{json, Value};

macro_rules! require_dataplane {
    () => {
        if let Some(r) = dhcp_env::skip_reason() {
            common::cannot_run(&format!("{r}"));
            return;
        }
    };
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn first_ip(p: &Value) -> String {
    p["fixed_ips"][0]["ip_address"].as_str().expect("an address").to_string()
}

/// VMs get their fixed IP, gateway, DNS, MTU and routes; unknown MACs get
/// nothing; a port created later is served within a second by the same
/// dnsmasq; extra_dhcp_opts reach the client; ports go ACTIVE only once
/// DHCP is ready; removing the network removes its DHCP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_serves_vms_end_to_end() {
    require_dataplane!();
    let mut env = Env::new(L2Kind::Real).await;
    env.start_agent();
    let project = common::project();
    let (net, sub) = env
        .network(
            &project,
            "n1",
            json!({"cidr": "10.10.0.0/24", "host_routes": [{"destination": "172.16.0.0/16", "nexthop": "10.10.0.254"}]}),
        )
        .await;
    let net_id = id(&net);
    let gateway = sub["gateway_ip"].as_str().unwrap().to_string();
    let mtu = net["mtu"].as_i64().unwrap();

    // The agent registers, gets the network, serves it.
    env.wait_for("dnsmasq of the network", Duration::from_secs(30), || env.dnsmasq_pid(&net_id).is_some()).await;
    let pid = env.dnsmasq_pid(&net_id).unwrap();
    let dport = env.dhcp_port(&net_id).await.expect("a DHCP port");
    assert_eq!(dport["binding:host_id"], HOST);
    assert!(dport["device_id"].as_str().unwrap().starts_with("dhcp"), "{dport}");
    assert_eq!(dport["binding:vif_type"], "ovs");
    let dhcp_ip = first_ip(&dport);
    // Plugged os-vif style into the host's br-int, wired by the L2 agent: ACTIVE.
    let tap = format!("tap{}", &id(&dport)[..11]);
    let iface = env.host.ovsdb().find_interface(&tap).await.unwrap().expect("DHCP device on br-int");
    assert_eq!(iface.iface_id(), Some(id(&dport).as_str()));
    assert_eq!(iface.external_ids.get("attached-mac").map(String::as_str), dport["mac_address"].as_str());
    env.wait_port_status(&id(&dport), "ACTIVE", Duration::from_secs(20)).await;

    // A VM port: DOWN until both the L2 agent and DHCP are done with it.
    let p1 = env.port(&project, &net, json!({})).await;
    assert_eq!(p1["status"], "DOWN");
    let vm1 = env.vm("vm1", &p1).await;
    env.wait_port_status(&id(&p1), "ACTIVE", Duration::from_secs(20)).await;
    let lease = env.udhcpc(&vm1, 5).await.unwrap_or_else(|| panic!("vm1 got no lease\n{}", env.agent_log()));
    println!("FIGURE dhcp lease (udhcpc start to lease): {} ms", lease.took.as_millis());
    assert_eq!(lease.get("ip"), first_ip(&p1));
    assert_eq!(lease.get("router"), gateway);
    assert_eq!(lease.get("dns").trim(), dhcp_ip, "DNS is the DHCP port without dns_nameservers");
    assert_eq!(lease.get("mtu"), mtu.to_string());
    assert_eq!(lease.get("domain"), "openstacklocal");
    assert_eq!(lease.get("lease"), "86400");
    assert_eq!(lease.get("serverid"), dhcp_ip);
    let routes = lease.get("staticroutes");
    assert!(routes.contains("172.16.0.0/16 10.10.0.254"), "option 121: {routes}");
    assert!(routes.contains(&format!("0.0.0.0/0 {gateway}")), "option 121 keeps the default route: {routes}");
    // The guest configured itself from it and reaches the DHCP port.
    let addr = vm1.exec(&["ip", "-4", "addr", "show", "dev", "eth0"]).await.unwrap().stdout;
    assert!(addr.contains(&format!("{}/24", first_ip(&p1))) && addr.contains(&format!("mtu {mtu}")), "{addr}");
    assert!(vm1.ping(&dhcp_ip, 3).await.unwrap(), "vm1 cannot reach the DHCP port");
    // dnsmasq answers DNS for the network's names.
    let name = format!("host-{}.openstacklocal", first_ip(&dport).replace('.', "-"));
    let ns = vm1.output(&["busybox", "nslookup", &name, &dhcp_ip]).await.unwrap();
    assert!(ns.stdout.contains(&dhcp_ip), "nslookup {name}: {} {}", ns.stdout, ns.stderr);

    // A MAC the server does not know gets nothing: a VM on a port without
    // port security (so L2 lets any MAC through) using another MAC.
    let stranger_mac = "fa:16:3e:de:ad:01";
    let open = env.port(&project, &net, json!({"port_security_enabled": false})).await;
    let vm2 = env.vm_with_mac("vm2", &open, stranger_mac).await;
    env.wait_port_status(&id(&open), "ACTIVE", Duration::from_secs(20)).await;
    assert!(env.udhcpc(&vm2, 2).await.is_none(), "an unknown MAC got a lease");

    // A port with that MAC appears: served within a second, by the same dnsmasq.
    let t0 = Instant::now();
    let p2 = env.port(&project, &net, json!({"mac_address": stranger_mac})).await;
    let api = t0.elapsed();
    let hosts_written = env
        .wait_for("the new host entry", Duration::from_secs(5), || {
            env.conf_file(&net_id, "host").contains(stranger_mac)
        })
        .await;
    let served = t0.elapsed();
    let lease2 = env.udhcpc(&vm2, 3).await.unwrap_or_else(|| panic!("vm2 got no lease\n{}", env.agent_log()));
    let leased = t0.elapsed();
    println!(
        "FIGURE new port: API {} ms, host entry live {} ms after the API answered, lease {} ms after the API call",
        api.as_millis(),
        hosts_written.as_millis(),
        leased.as_millis()
    );
    assert!(served - api < Duration::from_secs(1), "host entry took {hosts_written:?}");
    assert_eq!(lease2.get("ip"), first_ip(&p2));
    assert_eq!(env.dnsmasq_pid(&net_id), Some(pid), "dnsmasq was restarted for a port change");

    // extra_dhcp_opts, per port.
    let admin = env.srv.admin();
    admin
        .put(
            &format!("ports/{}", id(&p1)),
            json!({"port": {"extra_dhcp_opts": [{"opt_name": "ntp-server", "opt_value": "10.10.0.77"}]}}),
        )
        .await
        .expect(200);
    let want = format!("tag:port-{},option:ntp-server,10.10.0.77", id(&p1));
    env.wait_for("the extra DHCP option", Duration::from_secs(5), || env.conf_file(&net_id, "opts").contains(&want))
        .await;
    assert!(env.conf_file(&net_id, "host").contains(&format!("set:port-{}", id(&p1))));
    let lease3 = env.udhcpc(&vm1, 3).await.expect("vm1 renews");
    assert_eq!(lease3.get("ntpsrv"), "10.10.0.77");
    assert_eq!(env.udhcpc(&vm2, 3).await.expect("vm2 renews").get("ntpsrv"), "", "options are per port");
    assert_eq!(env.dnsmasq_pid(&net_id), Some(pid));

    // A deleted port's address goes to the next port at once: the agent
    // releases the old lease (vm2 still holds it).
    let reused = first_ip(&p2);
    admin.delete(&format!("ports/{}", id(&p2))).await.expect(204);
    let p3 = env.port(&project, &net, json!({"fixed_ips": [{"subnet_id": sub["id"], "ip_address": reused}]})).await;
    let vm3 = env.vm("vm3", &p3).await;
    env.wait_port_status(&id(&p3), "ACTIVE", Duration::from_secs(20)).await;
    let lease4 = env
        .udhcpc(&vm3, 3)
        .await
        .unwrap_or_else(|| panic!("the reused address was not offered\ndnsmasq log:\n{}", env.dnsmasq_logs()));
    assert_eq!(lease4.get("ip"), reused);

    // The network's MTU changes (fanout network_update): dnsmasq is
    // restarted with the new option 26.
    let r = admin.put(&format!("networks/{net_id}"), json!({"network": {"mtu": mtu - 50}})).await;
    if r.status == 200 {
        let want = format!("--dhcp-option-force=option:mtu,{}", mtu - 50);
        env.wait_for("dnsmasq with the new MTU", Duration::from_secs(10), || {
            env.dnsmasq_pid(&net_id).is_some_and(|p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).split('\0').any(|a| a == want))
            })
        })
        .await;
        assert_eq!(env.udhcpc(&vm1, 3).await.expect("lease with the new MTU").get("mtu"), (mtu - 50).to_string());
    } else {
        println!("network MTU is not writable here ({}): skipped", r.status);
    }

    // The agent's report.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let agent = env.dhcp_agent_row().await.expect("the DHCP agent is registered");
    assert_eq!(agent["host"], HOST);
    assert_eq!(agent["alive"], true);
    assert_eq!(agent["binary"], "neutrino-dhcp-agent");
    assert_eq!(agent["topic"], "dhcp_agent");
    assert_eq!(agent["availability_zone"], "nova");
    let c = &agent["configurations"];
    assert_eq!(c["dhcp_driver"], "dnsmasq");
    assert_eq!(c["networks"], 1);
    assert_eq!(c["subnets"], 1);
    assert_eq!(c["ports"], 4, "{c}");

    // No dnsmasq died on the way (dnsmasq 2.90 crashes on SIGHUP once it has
    // served a tagged host entry: the agent restarts such networks instead).
    assert!(!env.agent_log().contains("dnsmasq exited: restarting it"), "dnsmasq crashed:\n{}", env.agent_log());

    // dnsmasq dies: the agent starts another one.
    let pid = env.dnsmasq_pid(&net_id).expect("dnsmasq runs");
    assert!(std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    let respawn = env
        .wait_for("a new dnsmasq", Duration::from_secs(10), || env.dnsmasq_pid(&net_id).is_some_and(|p| p != pid))
        .await;
    println!("FIGURE dnsmasq killed: serving again after {} ms", respawn.as_millis());
    assert_eq!(env.udhcpc(&vm1, 3).await.expect("lease from the new dnsmasq").get("ip"), first_ip(&p1));

    // Removing the network removes its DHCP server.
    for p in [&p1, &p3, &open] {
        admin.delete(&format!("ports/{}", id(p))).await.expect(204);
    }
    admin.delete(&format!("networks/{net_id}")).await.expect(204);
    let qdhcp = env.qdhcp(&net_id);
    env.wait_for("the namespace to go", Duration::from_secs(10), || {
        !std::path::Path::new("/run/netns").join(&qdhcp).exists()
    })
    .await;
    env.wait_for("dnsmasq to exit", Duration::from_secs(5), || env.dnsmasq_pid(&net_id).is_none()).await;
    assert!(env.host.ovsdb().find_interface(&tap).await.unwrap().is_none(), "DHCP device left on br-int");
}

/// A killed agent leaves dnsmasq serving; restarted, it adopts it (same
/// pid), removes what is no longer scheduled, reports the ports that
/// waited for it, and resyncs again after a bus reconnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_agent_restart_resyncs() {
    require_dataplane!();
    let mut env = Env::new(L2Kind::Real).await;
    env.start_agent();
    let project = common::project();
    let (n1, _) = env.network(&project, "n1", json!({"cidr": "10.20.0.0/24"})).await;
    let (n2, _) = env.network(&project, "n2", json!({"cidr": "10.21.0.0/24"})).await;
    let (id1, id2) = (id(&n1), id(&n2));
    env.wait_for("both dnsmasq", Duration::from_secs(30), || {
        env.dnsmasq_pid(&id1).is_some() && env.dnsmasq_pid(&id2).is_some()
    })
    .await;
    let pid1 = env.dnsmasq_pid(&id1).unwrap();
    let pid2 = env.dnsmasq_pid(&id2).unwrap();

    // The agent dies; DHCP goes on. Meanwhile n2 is deleted and a VM is
    // booted on n1.
    env.agent.as_mut().unwrap().kill9();
    env.srv.admin().delete(&format!("networks/{id2}")).await.expect(204);
    let p = env.port(&project, &n1, json!({})).await;
    let vm = env.vm("vm1", &p).await;
    let lease = env.udhcpc(&vm, 3).await;
    assert!(lease.is_none(), "the stopped agent cannot know the new port yet");
    // Wired by L2 (tagged) but not ACTIVE: DHCP has not reported it.
    let t = Instant::now();
    while env.host.ovsdb().find_port(&vm.device).await.unwrap().and_then(|p| p.tag).is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "the L2 stand-in did not wire the VM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = env.srv.admin().get(&format!("ports/{}", id(&p))).await.expect(200)["port"]["status"].clone();
    assert_eq!(status, "DOWN", "ACTIVE before DHCP was ready");
    assert!(std::path::Path::new("/run/netns").join(env.qdhcp(&id2)).exists(), "stale namespace expected");

    // Restart: converge.
    let t0 = Instant::now();
    env.start_agent();
    env.wait_port_status(&id(&p), "ACTIVE", Duration::from_secs(30)).await;
    let qdhcp2 = env.qdhcp(&id2);
    env.wait_for("the stale namespace to go", Duration::from_secs(15), || {
        !std::path::Path::new("/run/netns").join(&qdhcp2).exists()
    })
    .await;
    env.wait_for("the agent's resync", Duration::from_secs(15), || {
        env.agent.as_ref().is_some_and(|a| a.last_resync_ms().is_some())
    })
    .await;
    println!(
        "FIGURE restart: VM port ACTIVE {} ms after the agent started; resync {:.0} ms (agent log)",
        t0.elapsed().as_millis(),
        env.agent.as_ref().unwrap().last_resync_ms().unwrap()
    );
    assert!(!dhcp_env_alive(pid2), "the stale dnsmasq still runs");
    assert_eq!(env.dnsmasq_pid(&id1), Some(pid1), "the running dnsmasq was not adopted");
    let lease = env.udhcpc(&vm, 3).await.unwrap_or_else(|| panic!("no lease after restart\n{}", env.agent_log()));
    assert_eq!(lease.get("ip"), first_ip(&p));

    // Bus connection lost: reconnect, full resync, notifications flow again.
    let before = env.agent.as_ref().unwrap().resyncs();
    let ok = std::process::Command::new("rabbitmqctl")
        .args(["-q", "close_all_connections", "-p", &env.vhost.name, "dhcp agent test"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "rabbitmqctl close_all_connections");
    env.wait_for("a resync after the reconnection", Duration::from_secs(30), || {
        env.agent.as_ref().unwrap().resyncs() > before
    })
    .await;
    // The server's own connection comes back too; retry the create until then.
    let mut p2 = Value::Null;
    for _ in 0..50 {
        let r = env
            .srv
            .admin()
            .post(
                "ports",
                json!({"port": {"network_id": id1, "binding:host_id": HOST, "device_owner": "compute:nova",
                    "device_id": "vm2", "project_id": project}}),
            )
            .await;
        if r.status == 201 {
            p2 = r.body["port"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!p2.is_null(), "port create after reconnection");
    let mac = p2["mac_address"].as_str().unwrap().to_string();
    let vm2 = env.vm("vm2", &p2).await;
    env.wait_for("the new host entry", Duration::from_secs(10), || env.conf_file(&id1, "host").contains(&mac)).await;
    env.wait_port_status(&id(&p2), "ACTIVE", Duration::from_secs(20)).await;
    assert_eq!(env.udhcpc(&vm2, 3).await.expect("lease after reconnection").get("ip"), first_ip(&p2));
    assert_eq!(env.dnsmasq_pid(&id1), Some(pid1));
}

/// IPv6 as Neutron's dnsmasq driver does it: addresses by DHCPv6 on a
/// `dhcpv6-stateful` subnet (static range, host entries tagged dhcpv6),
/// options only on `dhcpv6-stateless`, nothing on `slaac`; no router
/// advertisements from dnsmasq (the router sends them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcpv6_modes() {
    require_dataplane!();
    if !neutrino_agent::cmd::which("dhclient") {
        common::cannot_run("dhclient not installed");
        return;
    }
    let mut env = Env::new(L2Kind::Real).await;
    env.start_agent();
    let project = common::project();
    let (net, _) = env.network(&project, "v6", json!({"cidr": "10.30.0.0/24"})).await;
    let net_id = id(&net);
    let s6 = env
        .subnet(
            &project,
            &net,
            json!({"cidr": "fd00:30::/64", "ipv6_address_mode": "dhcpv6-stateful", "ipv6_ra_mode": "dhcpv6-stateful"}),
        )
        .await;
    let sl = env
        .subnet(
            &project,
            &net,
            json!({"cidr": "fd00:31::/64", "ipv6_address_mode": "dhcpv6-stateless", "ipv6_ra_mode": "dhcpv6-stateless"}),
        )
        .await;
    let sa = env
        .subnet(&project, &net, json!({"cidr": "fd00:32::/64", "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"}))
        .await;
    let p = env.port(&project, &net, json!({})).await;
    let v6 = |sid: &Value| {
        p["fixed_ips"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["subnet_id"] == *sid)
            .map(|f| f["ip_address"].as_str().unwrap().to_string())
    };
    let stateful_ip = v6(&s6["id"]).expect("a stateful DHCPv6 address");
    let vm = env.vm("vm6", &p).await;
    env.wait_for("the host entry", Duration::from_secs(30), || env.conf_file(&net_id, "host").contains(&stateful_ip))
        .await;
    env.wait_port_status(&id(&p), "ACTIVE", Duration::from_secs(20)).await;

    // The command line: static ranges for DHCPv4 and both DHCPv6 modes, none
    // for SLAAC, no RA. (New subnets change it: dnsmasq is restarted for them.)
    let cmdline_of = |env: &Env| {
        let pid = env.dnsmasq_pid(&net_id)?;
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some(String::from_utf8_lossy(&raw).replace('\0', " "))
    };
    env.wait_for("dnsmasq with every range", Duration::from_secs(20), || {
        cmdline_of(&env).is_some_and(|c| c.contains("fd00:31::") && c.contains("fd00:30::"))
    })
    .await;
    let cmdline = cmdline_of(&env).unwrap();
    assert!(cmdline.contains(&format!("--dhcp-range=set:subnet-{},fd00:30::,static,64,86400s", id(&s6))), "{cmdline}");
    assert!(cmdline.contains(&format!("--dhcp-range=set:subnet-{},fd00:31::,static,64,86400s", id(&sl))), "{cmdline}");
    assert!(!cmdline.contains(&format!("subnet-{}", id(&sa))), "no range for SLAAC: {cmdline}");
    assert!(!cmdline.contains("enable-ra"), "dnsmasq must not send RAs: {cmdline}");
    let hosts = env.conf_file(&net_id, "host");
    assert!(hosts.contains(&format!("{},tag:dhcpv6,", p["mac_address"].as_str().unwrap())), "{hosts}");
    let slaac_ip = v6(&sa["id"]).expect("a SLAAC address");
    assert!(!hosts.contains(&slaac_ip), "no DHCP entry for SLAAC addresses: {hosts}");
    let opts = env.conf_file(&net_id, "opts");
    assert!(opts.contains(&format!("tag:subnet-{},option6:domain-search,openstacklocal", id(&sl))), "{opts}");

    // A DHCPv6 client gets the stateful address.
    let lease = env.dhcp_v6_or_panic(&vm, false).await;
    assert_eq!(lease.get("new_ip6_address").map(String::as_str), Some(stateful_ip.as_str()), "{lease:?}");
    assert!(lease.get("new_dhcp6_domain_search").is_some_and(|d| d.contains("openstacklocal")), "{lease:?}");
    // And IPv4 still works on the same network.
    assert_eq!(env.udhcpc(&vm, 3).await.expect("DHCPv4 lease").get("ip"), first_ip(&p));
}

fn dhcp_env_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()))
        .is_some_and(|c| c != 'Z' && c != 'X')
}

/// Resync figures at scale: 100 networks scheduled to a fresh agent, then
/// the same agent restarted (everything running is adopted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dhcp_resync_100_networks() {
    require_dataplane!();
    const N: usize = 100;
    let mut env = Env::new(L2Kind::RegisterOnly).await;
    let project = common::project();
    let t0 = Instant::now();
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        let (n, _) = env
            .network(&project, &format!("scale{i}"), json!({"cidr": format!("10.{}.{}.0/24", 100 + i / 256, i % 256)}))
            .await;
        ids.push(id(&n));
    }
    println!("FIGURE {N} networks with subnets created through the API in {} ms", t0.elapsed().as_millis());

    // A fresh agent: registered, scheduled everything, serves it.
    let t0 = Instant::now();
    env.start_agent();
    env.wait_for("100 dnsmasq", Duration::from_secs(180), || ids.iter().all(|i| env.dnsmasq_pid(i).is_some())).await;
    let all_up = t0.elapsed();
    env.wait_for("the resync to finish", Duration::from_secs(60), || {
        env.agent.as_ref().is_some_and(|a| a.last_resync_ms().is_some())
    })
    .await;
    let first = env.agent.as_ref().unwrap().last_resync_ms().unwrap();
    println!(
        "FIGURE fresh agent, {N} networks: all dnsmasq serving {} ms after the agent process started; full resync {first:.0} ms (agent log)",
        all_up.as_millis()
    );
    let pids: Vec<i32> = ids.iter().map(|i| env.dnsmasq_pid(i).unwrap()).collect();

    // Restart: adopt, do not restart.
    env.agent.as_mut().unwrap().kill9();
    let t0 = Instant::now();
    env.start_agent();
    env.wait_for("the resync after restart", Duration::from_secs(120), || {
        env.agent.as_ref().is_some_and(|a| a.resyncs() >= 2)
    })
    .await;
    let second = env.agent.as_ref().unwrap().last_resync_ms().unwrap();
    println!(
        "FIGURE restarted agent, {N} networks: full resync {second:.0} ms (agent log), {} ms after the process started",
        t0.elapsed().as_millis()
    );
    let now: Vec<i32> = ids.iter().map(|i| env.dnsmasq_pid(i).unwrap_or(0)).collect();
    assert_eq!(now, pids, "dnsmasq processes were restarted instead of adopted");
    let agent = env.dhcp_agent_row().await.expect("agent row");
    assert_eq!(agent["alive"], true);
}
