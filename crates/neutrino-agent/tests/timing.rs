//! How long wiring VM ports takes: the os-vif plug (OVSDB port with
//! external_ids), the agent noticing it (monitor event with an ofport), and the
//! agent programming it (local VLAN tag + per-port flows in one bundle).
//! Run with `--nocapture` to see the numbers (lines starting with `TIMING`).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neutrino_agent::openflow::{Flow, SyncScope};
use neutrino_agent::ovsdb::{
    Client, Commit, Condition, Datum, InterfaceEvent, InterfaceMonitor, InterfaceSpec, InterfaceType, Operation,
    PortSpec, Row,
};
use neutrino_agent::pipeline::{self, LocalNet, Segment, VmPort};
use neutrino_agent::simhost::VmSpec;

const COOKIE: u64 = 0x71;
const LVID: u16 = 1;

fn mac(i: usize) -> String {
    format!("fa:16:3e:77:{:02x}:{:02x}", i >> 8, i & 0xff)
}

fn plug_spec(i: usize) -> PortSpec {
    PortSpec::single(InterfaceSpec::vm_port(
        format!("tapw{i}"),
        InterfaceType::System,
        &format!("00000000-0000-0000-0000-{i:012}"),
        &mac(i),
        &format!("11111111-0000-0000-0000-{i:012}"),
    ))
}

fn tag_op(name: &str) -> Operation {
    let mut r = Row::new();
    r.insert("tag".into(), Datum::scalar(i64::from(LVID)));
    Operation::update("Port", vec![Condition::eq("name", name)], r)
}

/// Waits until every name in `names` was reported with a valid ofport; returns name → ofport.
async fn await_ofports(mon: &mut InterfaceMonitor, names: &[String]) -> BTreeMap<String, u32> {
    let mut got = BTreeMap::new();
    while got.len() < names.len() {
        let ev = mon.next_timeout(Duration::from_secs(10)).await.expect("interface events");
        let iface = match ev {
            InterfaceEvent::Added(i) => i,
            InterfaceEvent::Modified { new, .. } => new,
            _ => continue,
        };
        if let (true, Some(p)) = (names.contains(&iface.name), iface.valid_ofport()) {
            got.insert(iface.name, p);
        }
    }
    got
}

struct Phases {
    plug: Duration,
    event: Duration,
    tag: Duration,
    program: Duration,
}

/// Wires ports `range` as one batch: one OVSDB transaction (os-vif), events, one
/// transaction for the tags and one flow bundle (agent).
async fn wire(
    db: &Client,
    mon: &mut InterfaceMonitor,
    of: &neutrino_agent::openflow::Ofctl,
    range: std::ops::Range<usize>,
) -> Phases {
    let names: Vec<String> = range.clone().map(|i| format!("tapw{i}")).collect();
    let specs: Vec<PortSpec> = range.clone().map(plug_spec).collect();
    let t0 = Instant::now();
    db.add_ports("br-int", &specs, Commit::NoWait).await.unwrap();
    let plug = t0.elapsed();
    let ofports = await_ofports(mon, &names).await;
    let event = t0.elapsed() - plug;
    let t1 = Instant::now();
    db.transact(&names.iter().map(|n| tag_op(n)).collect::<Vec<_>>()).await.unwrap();
    let tag = t1.elapsed();
    let mut flows: Vec<Flow> = Vec::new();
    for i in range {
        let port = VmPort {
            ofport: ofports[&format!("tapw{i}")],
            mac: mac(i),
            ips: vec![format!("10.50.{}.{}", i / 250, i % 250 + 2)],
        };
        flows.extend(pipeline::vm_port_flows(COOKIE, &port));
    }
    of.add_flows(&flows).await.unwrap();
    Phases { plug, event, tag, program: t1.elapsed() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_wiring_timing() {
    require_sim!();
    let n: usize = std::env::var("NEUTRINO_TIMING_PORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let sim = common::sim().await;
    let prefix = sim.prefix().to_string();
    let t = Instant::now();
    let h = sim.add_host("h1").await.unwrap();
    eprintln!(
        "TIMING simulated host (namespace + veth + private ovsdb-server/ovs-vswitchd + underlay bridge): {:?}",
        t.elapsed()
    );
    let db = h.ovsdb();
    h.layout().ensure_int_bridge(db).await.unwrap();
    let of = h.ofctl("br-int");
    let nets = [LocalNet { lvid: LVID, segment: Segment::Flat { physnet: "unused".into() } }];
    of.sync(&pipeline::int_bridge_flows(COOKIE, &nets, &BTreeMap::new()), SyncScope::Cookie(COOKIE)).await.unwrap();
    let mut mon = InterfaceMonitor::start(h.endpoint()).await.unwrap();
    mon.wait_for(Duration::from_secs(5), |e| matches!(e, InterfaceEvent::Synced { .. })).await.unwrap();

    // The devices libvirt would have created (taps): veth pairs, one batch.
    let total = 5 + 2 * n;
    let t = Instant::now();
    let mut b = h.ip();
    for i in 0..total {
        b.veth(&format!("tapw{i}"), &format!("vmw{i}"), None, None, None).link_up(&format!("tapw{i}"));
    }
    b.run().await.unwrap();
    eprintln!("TIMING {total} veth pairs created in one ip -batch: {:?}", t.elapsed());

    // One port at a time (5 samples).
    let mut singles = Vec::new();
    for i in 0..5 {
        let p = wire(db, &mut mon, &of, i..i + 1).await;
        singles.push(p.plug + p.event + p.program);
        eprintln!(
            "TIMING wire 1 port: {:>7.2} ms  (OVSDB plug {:.2} ms, ofport event {:.2} ms, tag txn {:.2} ms, 4-flow bundle {:.2} ms)",
            ms(p.plug + p.event + p.program),
            ms(p.plug),
            ms(p.event),
            ms(p.tag),
            ms(p.program - p.tag)
        );
    }
    singles.sort();
    let median = singles[2];

    // N ports one after the other.
    let t = Instant::now();
    let mut sum = [Duration::ZERO; 4];
    for i in 5..5 + n {
        let p = wire(db, &mut mon, &of, i..i + 1).await;
        sum[0] += p.plug;
        sum[1] += p.event;
        sum[2] += p.tag;
        sum[3] += p.program - p.tag;
    }
    let seq = t.elapsed();
    let per = |d: Duration| ms(d) / n as f64;
    eprintln!(
        "TIMING wire {n} ports sequentially: {:.1} ms ({:.2} ms/port; per port: plug {:.2}, event {:.2}, tag {:.2}, flows {:.2} ms)",
        ms(seq),
        per(seq),
        per(sum[0]),
        per(sum[1]),
        per(sum[2]),
        per(sum[3])
    );

    // N ports as one batch.
    let p = wire(db, &mut mon, &of, 5 + n..5 + 2 * n).await;
    let batch = p.plug + p.event + p.program;
    eprintln!(
        "TIMING wire {n} ports batched: {:.1} ms ({:.2} ms/port; OVSDB plug {:.1} ms, all ofport events {:.1} ms, tags + {} flows {:.1} ms)",
        ms(batch),
        ms(batch) / n as f64,
        ms(p.plug),
        ms(p.event),
        4 * n,
        ms(p.program)
    );

    // Everything is there.
    let flows = of.dump_flows(Some(&format!("cookie={COOKIE:#x}/-1"))).await.unwrap();
    let base = pipeline::int_bridge_flows(COOKIE, &nets, &BTreeMap::new()).len();
    assert_eq!(flows.len(), base + 4 * total);
    let tagged = db.list_ports("br-int").await.unwrap().iter().filter(|p| p.tag == Some(LVID)).count();
    assert_eq!(tagged, total);
    assert!(median < Duration::from_millis(500), "single port wiring took {median:?}");

    // Full simulated VMs (namespace, veth, MAC/MTU/address, ethtool, OVSDB) in bulk.
    let specs: Vec<VmSpec> = (0..n)
        .map(|i| {
            VmSpec::new(&format!("v{i}"), &mac(1000 + i)).cidr(&format!("10.60.{}.{}/16", i / 250, i % 250 + 2)).tag(2)
        })
        .collect();
    let t = Instant::now();
    let vms = h.add_vms(&specs).await.unwrap();
    eprintln!(
        "TIMING create + plug {n} simulated VMs (add_vms): {:.1} ms ({:.2} ms/VM)",
        ms(t.elapsed()),
        ms(t.elapsed()) / n as f64
    );
    assert_eq!(vms.len(), n);
    assert!(vms[0].ping(vms[n - 1].ip().unwrap(), 1).await.unwrap(), "first VM reaches the last");

    drop(vms);
    drop(mon);
    drop(h);
    let t = Instant::now();
    drop(sim);
    eprintln!("TIMING sweep of the whole simulation ({} namespaces): {:?}", n + 2, t.elapsed());
    common::assert_swept(&prefix);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
