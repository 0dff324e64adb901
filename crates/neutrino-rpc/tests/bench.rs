//! Throughput of both transports (ignored by default; numbers are printed):
//!
//! ```sh
//! cargo test -p neutrino-rpc --release --test bench -- --ignored --nocapture
//! ```

mod common;

use common::{Fixture, Kind};
use futures::stream::{self, StreamExt};
use neutrino_rpc::{CallContext, MethodRouter, RpcClient, ServerOptions, Target};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const IN_FLIGHT: usize = 64;

async fn run(kind: Kind, calls: usize, casts: usize) {
    let fx = Fixture::new(kind);
    let topic = fx.topic("bench");
    let server = fx.transport("server").await;
    let agent = fx.transport("agent").await;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let router = MethodRouter::new().method("echo", |_c, a| async move { Ok(a) }).method("count", move |_c, _a| {
        counter.fetch_add(1, Ordering::Relaxed);
        async { Ok(Value::Null) }
    });
    fx.note_server(&topic, "s1");
    let _h = server.serve(&topic, "s1", Arc::new(router), ServerOptions::default()).await.unwrap();
    let client = RpcClient::new(agent.clone(), Target::topic(&topic)).with_timeout(Duration::from_secs(60));
    let ctx = CallContext::new();
    let small = json!({"device": "tap0123abcd-ef", "agent_id": "ovs-agent-compute-1", "host": "compute-1"});
    let ten_kb = json!({"devices": (0..250).map(|i| format!("tap{i:08x}-{i:028}")).collect::<Vec<_>>()});

    for (label, payload) in [("small", &small), ("10 KB", &ten_kb)] {
        // Sequential: latency.
        let n_seq = (calls / 10).max(1);
        let t = Instant::now();
        for _ in 0..n_seq {
            client.call(&ctx, "echo", payload.clone()).await.unwrap();
        }
        let seq = t.elapsed();
        // Concurrent: throughput.
        let t = Instant::now();
        let ok = stream::iter(0..calls)
            .map(|_| client.call(&ctx, "echo", payload.clone()))
            .buffer_unordered(IN_FLIGHT)
            .filter(|r| futures::future::ready(r.is_ok()))
            .count()
            .await;
        let conc = t.elapsed();
        assert_eq!(ok, calls);
        eprintln!(
            "{kind:?} {label:>6} calls: {:>8.0} calls/s with {IN_FLIGHT} in flight; sequential latency {:>7.1} µs",
            calls as f64 / conc.as_secs_f64(),
            seq.as_secs_f64() * 1e6 / n_seq as f64
        );

        received.store(0, Ordering::SeqCst);
        let t = Instant::now();
        stream::iter(0..casts)
            .map(|_| client.cast(&ctx, "count", payload.clone()))
            .buffer_unordered(IN_FLIGHT)
            .for_each(|r| {
                r.unwrap();
                futures::future::ready(())
            })
            .await;
        let sent = t.elapsed();
        while received.load(Ordering::SeqCst) < casts as u64 {
            assert!(t.elapsed() < Duration::from_secs(120), "casts not all received");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let handled = t.elapsed();
        eprintln!(
            "{kind:?} {label:>6} casts: {:>8.0} casts/s sent ({}), {:>8.0} casts/s handled end to end",
            casts as f64 / sent.as_secs_f64(),
            if kind == Kind::Amqp { "broker-confirmed" } else { "queued" },
            casts as f64 / handled.as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn throughput_in_process() {
    run(Kind::InProc, 50_000, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run with --ignored --nocapture"]
async fn throughput_amqp() {
    run(Kind::Amqp, 5_000, 10_000).await;
}
