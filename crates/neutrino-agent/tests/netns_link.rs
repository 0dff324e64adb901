//! Namespaces and links: idempotent creation/deletion, batches, inspection.

mod common;

use neutrino_agent::link::{self, IpBatch};
use neutrino_agent::netns::Netns;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_veths_addresses_idempotent() {
    require_sim!();
    // The SimNet only provides the prefix and the cleanup guard here.
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let a = Netns::create(format!("{prefix}a")).await.unwrap();
    let a2 = Netns::create(format!("{prefix}a")).await.unwrap(); // idempotent
    assert_eq!(a, a2);
    assert!(a.exists());
    let many: Vec<String> = (0..20).map(|i| format!("{prefix}m{i}")).collect();
    Netns::create_many(&many).await.unwrap();
    Netns::create_many(&many).await.unwrap(); // existing ones skipped
    assert_eq!(Netns::list_prefixed(&format!("{prefix}m")).len(), 20);

    // veth with the peer created directly in another namespace
    assert!(link::ensure_veth(Some(a.name()), "va", "vb", Some(many[0].as_str())).await.unwrap());
    assert!(!link::ensure_veth(Some(a.name()), "va", "vb", Some(many[0].as_str())).await.unwrap());
    let mut b = a.ip();
    b.set_mtu("va", 1400).set_mac("va", "fa:16:3e:12:34:56").addr_replace("va", "10.77.0.1/24");
    b.addr_replace("va", "10.77.0.1/24"); // replace is idempotent
    b.route_replace("10.78.0.0/16", Some("10.77.0.2"), None);
    b.run().await.unwrap();
    b.run().await.unwrap(); // the whole batch again: still fine
    let mut b = IpBatch::new(Some(many[0].as_str()));
    b.addr_replace("vb", "10.77.0.2/24").link_up("lo");
    b.run().await.unwrap();

    let va = link::link(Some(a.name()), "va").await.unwrap().expect("va exists");
    assert_eq!(va.mtu, 1400);
    assert_eq!(va.mac.as_deref(), Some("fa:16:3e:12:34:56"));
    assert_eq!(va.kind.as_deref(), Some("veth"));
    assert!(va.is_up());
    let addrs = link::addresses(Some(a.name()), "va").await.unwrap();
    assert_eq!(addrs.iter().filter(|a| a.starts_with("10.77.")).collect::<Vec<_>>(), vec!["10.77.0.1/24"], "{addrs:?}");
    assert!(link::link(Some(a.name()), "vb").await.unwrap().is_none(), "peer is not in a");
    let out = a.exec(&["ping", "-c", "1", "-W", "1", "10.77.0.2"]).await.unwrap();
    assert!(out.stdout.contains("1 received"));
    let routes = a.exec(&["ip", "route", "show", "10.78.0.0/16"]).await.unwrap();
    assert!(routes.stdout.contains("via 10.77.0.2"));

    // a long-running process is seen in the namespace
    let child = a.spawn(&["sleep", "30"]).unwrap();
    let pid = child.id().unwrap() as i32;
    // `ip netns exec` enters the namespace right after it starts: wait for it.
    assert!(common::eventually(std::time::Duration::from_secs(5), || async { a.pids().contains(&pid) }).await);
    drop(child); // kill_on_drop

    assert!(link::delete_link(Some(a.name()), "va").await.unwrap());
    assert!(!link::delete_link(Some(a.name()), "va").await.unwrap(), "second delete is a no-op");
    assert!(link::check_ifname("a-name-far-too-long").is_err());

    Netns::delete_many(&many).await.unwrap();
    Netns::delete_many(&many).await.unwrap();
    a.delete().await.unwrap();
    a.delete().await.unwrap();
    assert!(!a.exists());

    drop(sim);
    common::assert_swept(&prefix);
}
