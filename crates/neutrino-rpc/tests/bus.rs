//! The bus contract, run against both transports: every scenario below runs
//! once on the in-process bus (`…::in_process`) and once on RabbitMQ
//! (`…::amqp`).

mod common;

use common::{collect, drain_for, Fixture, Kind};
use futures::future::join_all;
use neutrino_rpc::{CallContext, RpcClient, RpcError, ServerOptions, Target};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn in_process() {
                scenarios::$name(Fixture::new(Kind::InProc)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn amqp() {
                scenarios::$name(Fixture::new(Kind::Amqp)).await
            }
        }
    )*};
}

on_both_transports!(
    call_round_trip,
    concurrent_calls_get_their_own_replies,
    cast_to_topic_reaches_exactly_one_server,
    cast_and_call_to_a_named_server,
    fanout_reaches_every_server,
    timeout_when_nobody_answers,
    no_listener,
    remote_errors_propagate,
    messages_of_a_queue_are_handled_in_order,
    ten_kilobyte_payloads,
    stopped_server_receives_nothing,
);

mod scenarios {
    use super::*;

    pub async fn call_round_trip(fx: Fixture) {
        let topic = fx.topic("q-plugin");
        let server = fx.transport("server").await;
        let agent = fx.transport("agent").await;
        let (_h, mut seen) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;

        let ctx = CallContext::admin();
        let client = RpcClient::new(agent.clone(), Target::topic(&topic).version("1.3"));
        let args = json!({"device": "tap1", "host": "compute-1", "nested": {"list": [1, 2, 3]}});
        let reply = client.call(&ctx, "echo", args.clone()).await.unwrap();
        assert_eq!(reply["server"], "controller");
        assert_eq!(reply["args"], args);
        assert_eq!(reply["request_id"], ctx.request_id.as_str());
        assert_eq!(reply["version"], "1.3");
        assert_eq!(reply["is_call"], true);

        let got = collect(&mut seen, 1, WAIT).await;
        assert_eq!(got[0].method, "echo");
        assert!(got[0].ctx.is_admin);

        // A method the server does not know.
        let err = client.call(&ctx, "nope", json!({})).await.unwrap_err();
        assert!(matches!(&err, RpcError::Remote { kind, .. } if kind == "NoSuchMethod"), "{err:?}");

        // A typed result.
        let sq: BTreeMap<String, i64> = client.call_as(&ctx, "square", json!({"n": 12})).await.unwrap();
        assert_eq!(sq["sq"], 144);
        // "Wait forever" is accepted (no overflow, a valid AMQP expiration).
        let r = client.clone().with_timeout(Duration::MAX).call(&ctx, "echo", json!("forever")).await.unwrap();
        assert_eq!(r["args"], "forever");
        assert!(agent.is_connected() && server.is_connected());
    }

    pub async fn concurrent_calls_get_their_own_replies(fx: Fixture) {
        let topic = fx.topic("q-plugin");
        let server = fx.transport("server").await;
        let agent = fx.transport("agent").await;
        let (_h1, _s1) = fx.serve(&server, &topic, "c1", ServerOptions::default()).await;
        let (_h2, _s2) = fx.serve(&server, &topic, "c2", ServerOptions::default()).await;
        let client = RpcClient::new(agent, Target::topic(&topic)).with_timeout(Duration::from_secs(30));
        let ctx = CallContext::new();
        let started = Instant::now();
        let replies = join_all((0..200i64).map(|n| {
            let client = client.clone();
            let ctx = ctx.clone();
            async move { (n, client.call(&ctx, "square", json!({"n": n})).await) }
        }))
        .await;
        for (n, r) in replies {
            let r = r.unwrap_or_else(|e| panic!("call {n}: {e}"));
            assert_eq!(r, json!({"n": n, "sq": n * n}), "call {n} got someone else's reply");
        }
        eprintln!("{:?}: 200 concurrent calls in {:?}", fx.kind, started.elapsed());
    }

    pub async fn cast_to_topic_reaches_exactly_one_server(fx: Fixture) {
        let topic = fx.topic("q-reports-plugin");
        let s1 = fx.transport("server-1").await;
        let s2 = fx.transport("server-2").await;
        let agent = fx.transport("agent").await;
        let (_h1, mut r1) = fx.serve(&s1, &topic, "c1", ServerOptions::default()).await;
        let (_h2, mut r2) = fx.serve(&s2, &topic, "c2", ServerOptions::default()).await;
        let client = RpcClient::new(agent, Target::topic(&topic));
        let ctx = CallContext::new();
        const N: i64 = 60;
        for seq in 0..N {
            client.cast(&ctx, "record", json!({"seq": seq})).await.unwrap();
        }
        let deadline = Instant::now() + WAIT;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        while (a.len() + b.len()) < N as usize && Instant::now() < deadline {
            a.extend(drain_for(&mut r1, Duration::from_millis(50)).await);
            b.extend(drain_for(&mut r2, Duration::from_millis(50)).await);
        }
        // Nothing more may arrive: each message went to exactly one server.
        a.extend(drain_for(&mut r1, Duration::from_millis(300)).await);
        b.extend(drain_for(&mut r2, Duration::from_millis(300)).await);
        let mut seqs: Vec<i64> = a.iter().chain(&b).map(|s| s.args["seq"].as_i64().unwrap()).collect();
        seqs.sort();
        assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "each cast must be delivered exactly once");
        assert!(!a.is_empty() && !b.is_empty(), "both servers compete: {} / {}", a.len(), b.len());
        assert!(a.iter().chain(&b).all(|s| !s.ctx.is_call()));
    }

    pub async fn cast_and_call_to_a_named_server(fx: Fixture) {
        let topic = fx.topic("dhcp_agent");
        let s1 = fx.transport("host-1").await;
        let s2 = fx.transport("host-2").await;
        let server = fx.transport("server").await;
        let (_h1, mut r1) = fx.serve(&s1, &topic, "host-1", ServerOptions::default()).await;
        let (_h2, mut r2) = fx.serve(&s2, &topic, "host-2", ServerOptions::default()).await;
        let client = RpcClient::new(server, Target::topic(&topic));
        let ctx = CallContext::new();
        for seq in 0..20 {
            client.to_server("host-2").cast(&ctx, "record", json!({"seq": seq})).await.unwrap();
        }
        let got = collect(&mut r2, 20, WAIT).await;
        assert_eq!(got.len(), 20);
        assert!(drain_for(&mut r1, Duration::from_millis(300)).await.is_empty(), "host-1 must not see casts to host-2");
        for _ in 0..5 {
            let r = client.to_server("host-1").call(&ctx, "echo", json!({})).await.unwrap();
            assert_eq!(r["server"], "host-1");
        }
        assert!(drain_for(&mut r2, Duration::from_millis(200)).await.is_empty());
    }

    pub async fn fanout_reaches_every_server(fx: Fixture) {
        let topic = fx.topic("q-agent-notifier-port-update");
        let server = fx.transport("server").await;
        let mut agents = Vec::new();
        for i in 0..3 {
            let t = fx.transport(&format!("agent-{i}")).await;
            let (h, rx) = fx.serve(&t, &topic, &format!("compute-{i}"), ServerOptions::default()).await;
            agents.push((t, h, rx));
        }
        let notifier = RpcClient::new(server, Target::topic(&topic).fanout());
        let ctx = CallContext::admin();
        for seq in 0..10 {
            notifier.cast(&ctx, "port_update", json!({"seq": seq})).await.unwrap();
        }
        for (i, (_, _, rx)) in agents.iter_mut().enumerate() {
            let got = collect(rx, 10, WAIT).await;
            let seqs: Vec<i64> = got.iter().map(|s| s.args["seq"].as_i64().unwrap()).collect();
            assert_eq!(seqs, (0..10).collect::<Vec<_>>(), "agent {i} must get every fanout, in order");
            assert!(drain_for(rx, Duration::from_millis(200)).await.is_empty());
        }
        // A call cannot be fanned out.
        let err = notifier.call(&ctx, "echo", json!({})).await.unwrap_err();
        assert!(matches!(err, RpcError::InvalidTarget(_)), "{err:?}");
    }

    pub async fn timeout_when_nobody_answers(fx: Fixture) {
        let topic = fx.topic("q-plugin");
        let server = fx.transport("server").await;
        let agent = fx.transport("agent").await;
        let (_h, _rx) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;
        let client = RpcClient::new(agent.clone(), Target::topic(&topic)).with_timeout(Duration::from_millis(400));
        let started = Instant::now();
        let err = client.call(&CallContext::new(), "sleep", json!({"ms": 3000})).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(&err, RpcError::Timeout { method, .. } if method == "sleep"), "{err:?}");
        assert!(elapsed >= Duration::from_millis(390) && elapsed < Duration::from_millis(2000), "{elapsed:?}");
        // The transport is still usable afterwards.
        let ok = client.with_timeout(WAIT).call(&CallContext::new(), "echo", json!(1)).await.unwrap();
        assert_eq!(ok["args"], 1);
    }

    pub async fn no_listener(fx: Fixture) {
        let agent = fx.transport("agent").await;
        let client =
            RpcClient::new(agent.clone(), Target::topic(fx.topic("nobody"))).with_timeout(Duration::from_secs(5));
        let started = Instant::now();
        let err = client.call(&CallContext::new(), "echo", json!({})).await.unwrap_err();
        assert!(matches!(err, RpcError::NoListener { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "NoListener must be immediate");
        // A cast nobody listens to is not an error (oslo.messaging drops it too).
        client.cast(&CallContext::new(), "record", json!({})).await.unwrap();
        client.to_all().cast(&CallContext::new(), "record", json!({})).await.unwrap();
        fx.note_server(&fx.topic("nobody"), "x");
    }

    pub async fn remote_errors_propagate(fx: Fixture) {
        let topic = fx.topic("q-plugin");
        let server = fx.transport("server").await;
        let agent = fx.transport("agent").await;
        let (_h, _rx) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;
        let client = RpcClient::new(agent, Target::topic(&topic)).with_timeout(WAIT);
        let ctx = CallContext::new();
        let err = client
            .call(&ctx, "fail", json!({"kind": "PortNotFound", "message": "Port p1 could not be found."}))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            RpcError::Remote { kind: "PortNotFound".into(), message: "Port p1 could not be found.".into() }
        );
        let err = client.call(&ctx, "panic", json!({})).await.unwrap_err();
        assert!(
            matches!(&err, RpcError::Remote { kind, message } if kind == "HandlerPanicked" && message.contains("asked to panic")),
            "{err:?}"
        );
        // The server survived the panic.
        assert_eq!(client.call(&ctx, "echo", json!(7)).await.unwrap()["args"], 7);
    }

    pub async fn messages_of_a_queue_are_handled_in_order(fx: Fixture) {
        let topic = fx.topic("l3_agent");
        let agent = fx.transport("agent").await;
        let server = fx.transport("server").await;
        let (_h, mut rx) = fx.serve(&agent, &topic, "net-1", ServerOptions { max_concurrency: 1 }).await;
        let client = RpcClient::new(server, Target::topic(&topic).server("net-1"));
        let ctx = CallContext::new();
        for seq in 0..50 {
            // Earlier messages sleep longer: with concurrency they would finish out of order.
            client.cast(&ctx, "sleep", json!({"seq": seq, "ms": (50 - seq) / 10})).await.unwrap();
        }
        let got = collect(&mut rx, 50, WAIT).await;
        let seqs: Vec<i64> = got.iter().map(|s| s.args["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    }

    pub async fn ten_kilobyte_payloads(fx: Fixture) {
        let topic = fx.topic("q-plugin");
        let server = fx.transport("server").await;
        let agent = fx.transport("agent").await;
        let (_h, _rx) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;
        let client = RpcClient::new(agent, Target::topic(&topic)).with_timeout(WAIT);
        let devices: Vec<String> = (0..250).map(|i| format!("tap{i:08x}-{i:028}")).collect();
        let args = json!({"devices": devices});
        assert!(serde_json::to_vec(&args).unwrap().len() >= 10_000);
        let ctx = CallContext::new();
        let replies = join_all((0..20).map(|_| client.call(&ctx, "echo", args.clone()))).await;
        for r in replies {
            assert_eq!(r.unwrap()["args"], args);
        }
    }

    pub async fn stopped_server_receives_nothing(fx: Fixture) {
        let topic = fx.topic("dhcp_agent");
        let agent = fx.transport("agent").await;
        let server = fx.transport("server").await;
        let (h, mut rx) = fx.serve(&agent, &topic, "host-1", ServerOptions::default()).await;
        let client = RpcClient::new(server, Target::topic(&topic)).with_timeout(Duration::from_millis(500));
        let ctx = CallContext::new();
        client.call(&ctx, "echo", json!({})).await.unwrap();
        h.stop().await;
        client.to_all().cast(&ctx, "record", json!({})).await.unwrap();
        client.to_server("host-1").cast(&ctx, "record", json!({})).await.unwrap();
        let err = client.call(&ctx, "echo", json!({})).await.unwrap_err();
        match fx.kind {
            // The shared queue outlives its servers on a broker (as with oslo.messaging).
            Kind::Amqp => assert!(matches!(err, RpcError::Timeout { .. }), "{err:?}"),
            Kind::InProc => assert!(matches!(err, RpcError::NoListener { .. }), "{err:?}"),
        }
        let after: BTreeSet<String> = drain_for(&mut rx, Duration::from_millis(300))
            .await
            .into_iter()
            .skip(1) // the call before stop
            .map(|s| s.method)
            .collect();
        assert!(after.is_empty(), "a stopped server got {after:?}");
    }
}
