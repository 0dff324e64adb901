//! Flow programming through ovs-ofctl: bundles, dumps, and non-disruptive sync.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use neutrino_agent::openflow::{Action, Flow, FlowKey, FlowStats, Match, Ofctl, SyncScope};
use neutrino_agent::ovsdb::{BridgeSpec, Commit, DatapathType, FailMode};
use neutrino_agent::simhost::VmSpec;

const COOKIE: u64 = 0xabc;

fn desired1(pa: u32, pb: u32) -> Vec<Flow> {
    let f = |t, p| Flow::new(t, p).cookie(COOKIE);
    vec![
        f(0, 100).matching(Match::any().in_port(pa)).action(Action::GotoTable(10)),
        f(0, 100).matching(Match::any().in_port(pb)).action(Action::Resubmit(10)),
        f(0, 0),
        f(10, 1).action(Action::Normal),
        f(20, 5).matching(Match::any().dl_vlan(5)),
        f(20, 6).matching(Match::any().dl_vlan(6)),
        f(30, 1).matching(Match::any().proto("tcp").field("tp_dst", 80)),
        // written non-canonically on purpose: OVS prints "ip,nw_src=10.0.0.0/8"
        f(30, 2)
            .matching(Match::any().field("dl_type", "0x0800").field("nw_src", "10.0.0.0/8"))
            .action(Action::Resubmit(10)),
        // OVS prints pop_vlan and set_field:0x1389->tun_id under OpenFlow 1.3
        f(40, 1)
            .matching(Match::any().dl_vlan(7))
            .action(Action::StripVlan)
            .action(Action::SetTunnel(5001))
            .action(Action::Output(pa)),
        // push_vlan:0x8100,set_field:4105->vlan_vid
        f(41, 1).matching(Match::any().untagged()).action(Action::ModVlanVid(9)).action(Action::Resubmit(10)),
    ]
}

fn by_key(d: &[FlowStats]) -> BTreeMap<FlowKey, FlowStats> {
    d.iter().map(|s| (s.flow.key(), s.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_dump_and_sync_only_touches_the_difference() {
    require_sim!();
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let h = sim.add_host("h1").await.unwrap();
    let db = h.ovsdb();
    db.add_bridge(
        &BridgeSpec::new("br-of").datapath(DatapathType::Netdev).fail_mode(FailMode::Secure).protocols(&[
            "OpenFlow10",
            "OpenFlow13",
            "OpenFlow14",
        ]),
        Commit::default(),
    )
    .await
    .unwrap();
    let vms = h
        .add_vms(&[
            VmSpec::new("a", "fa:16:3e:0f:00:01").cidr("10.9.0.1/24").bridge("br-of"),
            VmSpec::new("b", "fa:16:3e:0f:00:02").cidr("10.9.0.2/24").bridge("br-of"),
        ])
        .await
        .unwrap();
    let pa = db.ofport(&vms[0].device).await.unwrap();
    let pb = db.ofport(&vms[1].device).await.unwrap();
    let of: Ofctl = h.ofctl("br-of");

    // 1. Install in one bundle, dump, compare with the canonical form.
    let d1 = desired1(pa, pb);
    of.add_flows(&d1).await.unwrap();
    let dump = of.dump_flows(None).await.unwrap();
    let canon = of.canonicalize(&d1).await.unwrap();
    let dumped: BTreeSet<String> = dump.iter().map(|s| s.flow.render()).collect();
    let wanted: BTreeSet<String> = canon.iter().map(Flow::render).collect();
    assert_eq!(dumped, wanted, "dump equals the installed set");
    assert!(dump.iter().any(|s| s.flow.render().contains("actions=pop_vlan,set_field:0x1389->tun_id")));
    assert!(dump.iter().any(|s| s.flow.matches.to_string() == "ip,nw_src=10.0.0.0/8"));
    // A sync right after is a no-op: canonicalisation matches the dump exactly.
    let r = of.sync(&d1, SyncScope::Cookie(COOKIE)).await.unwrap();
    assert!(r.is_noop(), "{r:?}");
    assert_eq!(r.unchanged, d1.len());

    // A bundle is atomic: one bad flow, nothing applied.
    let bad = vec![
        Flow::new(50, 1).cookie(COOKIE).action(Action::Normal),
        Flow::new(50, 2).cookie(COOKIE).action(Action::Raw("no_such_action:1".into())),
    ];
    assert!(of.add_flows(&bad).await.is_err());
    assert!(of.dump_flows(Some("table=50")).await.unwrap().is_empty(), "nothing of a failed bundle applied");

    // A foreign flow (another cookie) that a cookie-scoped sync must not touch.
    of.add_flows(&[Flow::new(60, 1).cookie(0xf00).action(Action::Normal)]).await.unwrap();

    // 2. Traffic through the unchanged flows while we sync.
    let ping = vms[0].netns.spawn(&["ping", "-n", "-q", "-c", "60", "-i", "0.05", "10.9.0.2"]).unwrap();
    assert!(
        common::eventually(Duration::from_secs(5), || async {
            of.dump_flows(Some("table=10")).await.unwrap().iter().any(|s| s.n_packets > 3)
        })
        .await,
        "traffic flows through br-of"
    );
    let before = by_key(&of.dump_flows(None).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 3. Sync to a changed set: one removed, one added, one changed.
    let mut d2: Vec<Flow> = d1.iter().filter(|f| !(f.table == 20 && f.priority == 5)).cloned().collect();
    d2.push(Flow::new(20, 7).cookie(COOKIE).matching(Match::any().dl_vlan(8)));
    for f in d2.iter_mut() {
        if f.table == 30 && f.priority == 1 {
            f.actions = vec![Action::Normal];
        }
    }
    let (plan, _) = of.plan_sync(&d2, SyncScope::Cookie(COOKIE)).await.unwrap();
    eprintln!("sync plan:\n{}", plan.iter().map(|m| format!("  {}", m.render())).collect::<Vec<_>>().join("\n"));
    let r = of.sync(&d2, SyncScope::Cookie(COOKIE)).await.unwrap();
    assert_eq!((r.added, r.modified, r.deleted, r.unchanged), (1, 1, 1, d1.len() - 2), "{r:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = by_key(&of.dump_flows(None).await.unwrap());

    // Unchanged flows were not reinstalled: durations kept growing, counters not reset.
    let unchanged: Vec<FlowKey> = of
        .canonicalize(&d2)
        .await
        .unwrap()
        .iter()
        .map(Flow::key)
        .filter(|k| ![(20, 5), (20, 7), (30, 1)].contains(&(k.table, k.priority)))
        .collect();
    assert_eq!(unchanged.len(), d1.len() - 2);
    for k in &unchanged {
        let (b, a) = (&before[k], &after[k]);
        assert!(a.duration > b.duration + 0.5, "{k:?} duration reset: {} -> {}", b.duration, a.duration);
        assert!(a.n_packets >= b.n_packets, "{k:?} counters reset: {} -> {}", b.n_packets, a.n_packets);
        eprintln!(
            "unchanged {:>2}/{:<3} {:<28} duration {:.3}s -> {:.3}s, n_packets {} -> {}",
            k.table, k.priority, k.matches, b.duration, a.duration, b.n_packets, a.n_packets
        );
    }
    for k in unchanged.iter().filter(|k| k.table == 10 || (k.table == 0 && k.priority == 100)) {
        assert!(after[k].n_packets > before[k].n_packets, "traffic kept flowing through {k:?}");
    }
    // The foreign flow is untouched, the changes are in.
    let foreign = after.values().find(|s| s.flow.cookie == 0xf00).expect("foreign flow kept");
    assert!(foreign.duration > 0.5);
    assert!(after.values().any(|s| s.flow.table == 20 && s.flow.priority == 7));
    assert!(!after.values().any(|s| s.flow.table == 20 && s.flow.priority == 5));
    assert_eq!(
        after.values().find(|s| s.flow.table == 30 && s.flow.priority == 1).unwrap().flow.actions,
        vec![Action::Normal]
    );

    // Traffic never stopped.
    let out = ping.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 0% packet loss"), "ping during sync: {text}");

    // 4. Converged: a second sync does nothing; a bridge-wide sync removes the foreign flow.
    assert!(of.sync(&d2, SyncScope::Cookie(COOKIE)).await.unwrap().is_noop());
    let r = of.sync(&d2, SyncScope::All).await.unwrap();
    assert_eq!((r.added, r.modified, r.deleted), (0, 0, 1), "{r:?}");
    assert!(of.dump_flows(Some("cookie=0xf00/-1")).await.unwrap().is_empty());

    // A changed cookie is a modification (modify_strict sets the new cookie).
    let mut d3 = d2.clone();
    d3[3] = d3[3].clone().cookie(0xdef);
    let r = of.sync(&d3, SyncScope::All).await.unwrap();
    assert_eq!((r.added, r.modified, r.deleted), (0, 1, 0), "{r:?}");
    assert_eq!(of.dump_flows(Some("cookie=0xdef/-1")).await.unwrap().len(), 1);
    of.sync(&d2, SyncScope::All).await.unwrap();

    // 5. replace-flows (ovs-ofctl's own diff) leaves the table as given.
    of.replace_flows(&d1).await.unwrap();
    assert!(of.sync(&d1, SyncScope::All).await.unwrap().is_noop());

    let ports = of.port_numbers().await.unwrap();
    assert_eq!(ports.get(&vms[0].device), Some(&pa));

    drop(vms);
    drop(h);
    drop(sim);
    common::assert_swept(&prefix);
}
