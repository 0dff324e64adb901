//! Security groups and port security in the L2 agent (OVS conntrack
//! firewall on the userspace datapath): rules by protocol and port, their
//! removal taking effect within a second, anti-spoofing of IP and MAC with
//! allowed address pairs, remote-group rules following membership, and
//! stateless groups. Two simulated hosts, in-process bus. Needs root and
//! Open vSwitch (skips otherwise); `socat` for the TCP checks.

mod common;
mod dataplane;

use std::time::{Duration, Instant};

use dataplane::{Cloud, Vm};
use serde_json::{json, Value};

async fn group(cloud: &Cloud, project: &str, name: &str, stateful: bool) -> String {
    let c = cloud.client(project);
    let g = c
        .req("POST", "security-groups", Some(json!({"security_group": {"name": name, "stateful": stateful}})), &[])
        .await
        .expect(201);
    g["security_group"]["id"].as_str().unwrap().to_string()
}

async fn rule(cloud: &Cloud, project: &str, sg: &str, r: Value) -> String {
    let mut body = json!({"security_group_id": sg, "ethertype": "IPv4"});
    if let (Some(o), Some(x)) = (body.as_object_mut(), r.as_object()) {
        o.extend(x.clone());
    }
    let c = cloud.client(project);
    let r = c.req("POST", "security-group-rules", Some(json!({"security_group_rule": body})), &[]).await.expect(201);
    r["security_group_rule"]["id"].as_str().unwrap().to_string()
}

async fn delete_rule(cloud: &Cloud, id: &str) {
    cloud.admin.req("DELETE", &format!("security-group-rules/{id}"), None, &[]).await.expect(204);
}

/// Rules of a group in a direction.
async fn rules_of(cloud: &Cloud, sg: &str, direction: &str) -> Vec<String> {
    let r = cloud
        .admin
        .req("GET", &format!("security-group-rules?security_group_id={sg}&direction={direction}"), None, &[])
        .await
        .expect(200);
    r["security_group_rules"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

/// A TCP listener answering "hi" in a VM.
fn listen(vm: &Vm, port: u16) -> tokio::process::Child {
    tokio::process::Command::new("ip")
        .args(["netns", "exec", &vm.netns, "socat", &format!("TCP-LISTEN:{port},fork,reuseaddr"), "SYSTEM:echo hi"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("socat")
}

/// Whether a TCP connection from `vm` to `ip:port` gets the greeting.
async fn tcp_ok(vm: &Vm, ip: &str, port: u16) -> bool {
    let target = format!("TCP:{ip}:{port},connect-timeout=0.25");
    let out = dataplane::ns_output(&vm.netns, &["socat", "-T0.5", "-", &target]).await;
    String::from_utf8_lossy(&out.stdout).contains("hi")
}

/// Polls `f` (every 50 ms) until it returns `want`; how long it took.
async fn until<F, Fut>(want: bool, t: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < t {
        if f().await == want {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// One quick ping (300 ms timeout).
async fn pong(vm: &Vm, ip: &str) -> bool {
    dataplane::ns_ok(&vm.netns, &["ping", "-n", "-q", "-c", "1", "-W", "0.3", ip]).await
}

/// ICMP echo requests the VM's kernel received so far.
async fn in_echos(vm: &Vm) -> u64 {
    let out = dataplane::ns_output(&vm.netns, &["cat", "/proc/net/snmp"]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(h), Some(v)) = (icmp.next(), icmp.next()) else { return 0 };
    let i = h.split_whitespace().position(|w| w == "InEchos").unwrap_or(0);
    v.split_whitespace().nth(i).and_then(|x| x.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_allow_and_their_removal_blocks_within_a_second() {
    require_dataplane!();
    if !neutrino_agent::cmd::which("socat") {
        common::cannot_run("socat missing");
        return;
    }
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "sg", json!({}), "10.20.0.0/24").await;
    let web = group(&cloud, "demo", "web", true).await;
    let open = group(&cloud, "demo", "open", true).await;
    rule(&cloud, "demo", &open, json!({"direction": "ingress", "protocol": "icmp"})).await;
    let srv = cloud.boot("srv", &["--network", &net, "--host", "compute1", "--security-group", "web"]).await;
    let cli = cloud.boot("cli", &["--network", &net, "--host", "compute2", "--security-group", "open"]).await;
    let _l = listen(&srv, 22);
    let _l2 = listen(&srv, 8080);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Default deny ingress.
    assert!(!cloud.ping(&cli, &srv.ip, 2).await, "no ingress rule: ICMP dropped");
    assert!(!tcp_ok(&cli, &srv.ip, 22).await, "no ingress rule: SSH port dropped");
    // Egress allowed (the group's default egress rules), replies come back (stateful).
    assert!(cloud.ping(&srv, &cli.ip, 2).await, "egress allowed, replies accepted");

    let icmp = rule(&cloud, "demo", &web, json!({"direction": "ingress", "protocol": "icmp"})).await;
    let t = until(true, Duration::from_secs(5), || pong(&cli, &srv.ip)).await.expect("ICMP allowed by the new rule");
    eprintln!("FIGURE ICMP rule added: ping answers after {} ms", t.as_millis());
    let ssh = rule(
        &cloud,
        "demo",
        &web,
        json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.20.0.0/24"}),
    )
    .await;
    let t = until(true, Duration::from_secs(5), || tcp_ok(&cli, &srv.ip, 22)).await.expect("SSH port allowed");
    eprintln!("FIGURE TCP/22 rule added: connects after {} ms", t.as_millis());
    assert!(t < Duration::from_secs(1), "rule effective within a second ({t:?})");
    assert!(!tcp_ok(&cli, &srv.ip, 8080).await, "only port 22 is open");

    // Removal stops traffic within a second, also a flow running all along.
    let running = cloud.continuous_ping(&cli, &srv.ip, 4);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let removed = Instant::now();
    delete_rule(&cloud, &icmp).await;
    let t = until(false, Duration::from_secs(5), || pong(&cli, &srv.ip)).await.expect("ICMP blocked again");
    eprintln!("FIGURE ICMP rule removed: pings fail after {} ms", (removed.elapsed()).as_millis());
    assert!(t < Duration::from_secs(1), "removal effective within a second ({t:?})");
    let (tx, rx) = running.finish().await;
    assert!(rx < tx && rx > 0, "the running ping was cut ({rx}/{tx})");
    delete_rule(&cloud, &ssh).await;
    let t = until(false, Duration::from_secs(5), || tcp_ok(&cli, &srv.ip, 22)).await.expect("SSH blocked again");
    assert!(t < Duration::from_secs(1), "removal effective within a second ({t:?})");

    // Egress rules too: without them the server cannot reach out.
    for r in rules_of(&cloud, &web, "egress").await {
        delete_rule(&cloud, &r).await;
    }
    assert!(until(false, Duration::from_secs(3), || pong(&srv, &cli.ip)).await.is_some(), "egress denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_ip_and_mac_are_dropped_unless_an_allowed_pair_permits() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "spoof", json!({}), "10.21.0.0/24").await;
    // The target accepts any ICMP: only the sender's port security can drop.
    let open = group(&cloud, "demo", "open", true).await;
    rule(&cloud, "demo", &open, json!({"direction": "ingress", "protocol": "icmp"})).await;
    let a = cloud.boot("a", &["--network", &net, "--host", "compute1"]).await;
    let b = cloud.boot("b", &["--network", &net, "--host", "compute2", "--security-group", "open"]).await;
    assert!(cloud.ping(&a, &b.ip, 2).await);
    // Static neighbours: nothing depends on (spoofed) ARP.
    let forged = "10.21.0.99";
    dataplane::ns_ok(&a.netns, &["ip", "addr", "add", &format!("{forged}/24"), "dev", "eth0"]).await;
    dataplane::ns_ok(&a.netns, &["ip", "neigh", "replace", &b.ip, "lladdr", &b.mac, "dev", "eth0", "nud", "permanent"])
        .await;
    dataplane::ns_ok(
        &b.netns,
        &["ip", "neigh", "replace", forged, "lladdr", &a.mac, "dev", "eth0", "nud", "permanent"],
    )
    .await;
    let spoof_argv = ["ping", "-n", "-q", "-c", "1", "-W", "0.3", "-I", forged, b.ip.as_str()];
    let spoof_ip = || dataplane::ns_ok(&a.netns, &spoof_argv);
    let before = in_echos(&b).await;
    assert!(!spoof_ip().await, "a forged source IP is dropped");
    assert_eq!(in_echos(&b).await, before, "nothing from the forged IP reached b");
    // ARP claiming the forged address never reaches b (which would learn any).
    if neutrino_agent::cmd::which("arping") {
        dataplane::ns_ok(&b.netns, &["sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1"]).await;
        dataplane::ns_ok(&b.netns, &["ip", "neigh", "del", forged, "dev", "eth0"]).await;
        dataplane::ns_ok(&a.netns, &["arping", "-c", "2", "-w", "2", "-s", forged, "-I", "eth0", &b.ip]).await;
        let neigh = dataplane::ns_output(&b.netns, &["ip", "neigh", "show", forged]).await;
        assert!(!String::from_utf8_lossy(&neigh.stdout).contains("lladdr"), "spoofed ARP learned by b");
        assert!(
            dataplane::ns_ok(&a.netns, &["arping", "-c", "1", "-w", "2", "-I", "eth0", &b.ip]).await,
            "ARP with a's own address is answered"
        );
        dataplane::ns_ok(
            &b.netns,
            &["ip", "neigh", "replace", forged, "lladdr", &a.mac, "dev", "eth0", "nud", "permanent"],
        )
        .await;
    }
    // A DHCP server answer (UDP 67 → 68) from a VM is dropped; b would take one (DHCP replies are allowed in).
    let dhcp_offer = || async {
        if !neutrino_agent::cmd::which("socat") {
            return None;
        }
        let rx = tokio::process::Command::new("ip")
            .args(["netns", "exec", &b.netns, "timeout", "2", "socat", "-u", "UDP4-RECV:68,reuseaddr", "STDOUT"])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let send = format!("echo offer | socat -u STDIN UDP4-SENDTO:{}:68,sourceport=67", b.ip);
        dataplane::ns_ok(&a.netns, &["sh", "-c", &send]).await;
        let out = rx.wait_with_output().await.ok()?;
        Some(String::from_utf8_lossy(&out.stdout).contains("offer"))
    };
    if let Some(got) = dhcp_offer().await {
        assert!(!got, "a spoofed DHCP server reply reached b");
    }
    // An allowed address pair permits it.
    cloud
        .admin
        .req(
            "PUT",
            &format!("ports/{}", a.port_id),
            Some(json!({"port": {"allowed_address_pairs": [{"ip_address": forged}]}})),
            &[],
        )
        .await
        .expect(200);
    let t = until(true, Duration::from_secs(5), spoof_ip).await.expect("the pair's address is allowed");
    eprintln!("FIGURE allowed address pair effective after {} ms", t.as_millis());
    // A forged MAC is dropped, whatever the IP.
    let forged_mac = "fa:16:3e:99:99:99";
    dataplane::ns_ok(&a.netns, &["ip", "link", "set", "eth0", "address", forged_mac]).await;
    let before = in_echos(&b).await;
    assert!(!cloud.ping(&a, &b.ip, 2).await, "a forged MAC is dropped");
    assert_eq!(in_echos(&b).await, before, "nothing from the forged MAC reached b");
    // ... unless a pair allows that MAC with the port's address.
    dataplane::ns_ok(
        &b.netns,
        &["ip", "neigh", "replace", &a.ip, "lladdr", forged_mac, "dev", "eth0", "nud", "permanent"],
    )
    .await;
    cloud
        .admin
        .req(
            "PUT",
            &format!("ports/{}", a.port_id),
            Some(json!({"port": {"allowed_address_pairs": [{"ip_address": a.ip, "mac_address": forged_mac}]}})),
            &[],
        )
        .await
        .expect(200);
    assert!(cloud.ping_within(&a, &b.ip, Duration::from_secs(5)).await.is_some(), "the pair's MAC is allowed");
    // Port security off: anything goes.
    dataplane::ns_ok(&a.netns, &["ip", "link", "set", "eth0", "address", "fa:16:3e:77:77:77"]).await;
    dataplane::ns_ok(
        &b.netns,
        &["ip", "neigh", "replace", &a.ip, "lladdr", "fa:16:3e:77:77:77", "dev", "eth0", "nud", "permanent"],
    )
    .await;
    assert!(!cloud.ping(&a, &b.ip, 1).await);
    cloud
        .admin
        .req(
            "PUT",
            &format!("ports/{}", a.port_id),
            Some(json!({"port": {"allowed_address_pairs": [], "security_groups": [], "port_security_enabled": false}})),
            &[],
        )
        .await
        .expect(200);
    assert!(cloud.ping_within(&a, &b.ip, Duration::from_secs(5)).await.is_some(), "no port security, no filtering");
    if let Some(got) = dhcp_offer().await {
        assert!(got, "without port security the DHCP-server packet gets through (the check above is meaningful)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_group_rules_follow_membership() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "rg", json!({}), "10.22.0.0/24").await;
    let srv = group(&cloud, "demo", "srv", true).await;
    let cli = group(&cloud, "demo", "cli", true).await;
    rule(&cloud, "demo", &srv, json!({"direction": "ingress", "protocol": "icmp", "remote_group_id": cli})).await;
    let s = cloud.boot("s", &["--network", &net, "--host", "compute1", "--security-group", "srv"]).await;
    let c1 = cloud.boot("c1", &["--network", &net, "--host", "compute2", "--security-group", "cli"]).await;
    let c2 = cloud.boot("c2", &["--network", &net, "--host", "compute2"]).await;
    // A member on the same host as the server too.
    let c3 = cloud.boot("c3", &["--network", &net, "--host", "compute1", "--security-group", "cli"]).await;
    assert!(cloud.ping(&c1, &s.ip, 2).await, "a member of cli reaches srv");
    assert!(cloud.ping(&c3, &s.ip, 2).await, "a member of cli on the same host reaches srv");
    assert!(!cloud.ping(&c2, &s.ip, 2).await, "a non-member does not");
    // c2 joins cli: allowed within a second.
    let joined = Instant::now();
    cloud
        .admin
        .req("PUT", &format!("ports/{}", c2.port_id), Some(json!({"port": {"security_groups": [cli]}})), &[])
        .await
        .expect(200);
    let t = until(true, Duration::from_secs(5), || pong(&c2, &s.ip)).await.expect("new member allowed");
    eprintln!("FIGURE remote group join effective after {} ms", joined.elapsed().as_millis());
    assert!(t < Duration::from_secs(1), "{t:?}");
    // c1 leaves cli: blocked within a second.
    let default: Value =
        cloud.admin.req("GET", "security-groups?name=default&project_id=demo", None, &[]).await.expect(200);
    let default = default["security_groups"][0]["id"].clone();
    let left = Instant::now();
    cloud
        .admin
        .req("PUT", &format!("ports/{}", c1.port_id), Some(json!({"port": {"security_groups": [default]}})), &[])
        .await
        .expect(200);
    let t = until(false, Duration::from_secs(5), || pong(&c1, &s.ip)).await.expect("former member blocked");
    eprintln!("FIGURE remote group leave effective after {} ms", left.elapsed().as_millis());
    assert!(t < Duration::from_secs(1), "{t:?}");
    // The flows use conjunctions, not per-port copies of the members.
    let flows = cloud.flows("compute1", "br-int").await;
    assert!(flows.contains("conjunction(") && flows.contains("conj_id="), "{flows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_groups_do_not_track_connections() {
    require_dataplane!();
    let cloud = Cloud::start(2).await;
    let (net, _) = cloud.network("demo", "sl", json!({}), "10.23.0.0/24").await;
    let sl = group(&cloud, "demo", "sl", false).await;
    rule(&cloud, "demo", &sl, json!({"direction": "ingress", "protocol": "icmp"})).await;
    let s = cloud.boot("s", &["--network", &net, "--host", "compute1", "--security-group", "sl"]).await;
    let c = cloud.boot("c", &["--network", &net, "--host", "compute2"]).await;
    // Ingress ICMP in, the reply out through the group's egress rules.
    assert!(cloud.ping(&c, &s.ip, 2).await, "stateless: rules both ways");
    let flows = cloud.flows("compute1", "br-int").await;
    let port_flows: Vec<&str> = flows.lines().filter(|l| l.contains("table=82") && l.contains("icmp")).collect();
    assert!(port_flows.iter().all(|l| !l.contains("ct(")), "no conntrack for a stateless group: {port_flows:?}");
    // Without egress rules the replies are not allowed: nothing remembers the request.
    for r in rules_of(&cloud, &sl, "egress").await {
        delete_rule(&cloud, &r).await;
    }
    assert!(until(false, Duration::from_secs(3), || pong(&c, &s.ip)).await.is_some(), "replies need an egress rule");
}
