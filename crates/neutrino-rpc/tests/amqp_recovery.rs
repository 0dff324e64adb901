//! AMQP only: connection loss, reconnection, resynchronization signals,
//! channel-level failures and limits. Needs RabbitMQ and `rabbitmqctl`
//! (see tests/common). Only this test's own connections are closed, by
//! their client-provided names.

mod common;

use common::{collect, drain_for, rabbit_url, Fixture, Kind};
use neutrino_rpc::{
    AmqpOptions, AmqpTransport, CallContext, ConnectionState, RpcClient, RpcError, ServerOptions, Target, Transport,
};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn dyn_t(t: &AmqpTransport) -> Arc<dyn Transport> {
    Arc::new(t.clone())
}

/// Records every state the transport goes through.
fn record_states(t: &Arc<dyn Transport>) -> Arc<Mutex<Vec<ConnectionState>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rx = t.watch_state();
    let out = seen.clone();
    tokio::spawn(async move {
        out.lock().unwrap().push(*rx.borrow_and_update());
        while rx.changed().await.is_ok() {
            out.lock().unwrap().push(*rx.borrow_and_update());
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_closes_the_connection() {
    let fx = Fixture::new(Kind::Amqp);
    let topic = fx.topic("q-plugin");
    let notify_topic = fx.topic("q-agent-notifier-port-update");
    let server_t = fx.amqp("server").await;
    let agent_t = fx.amqp("agent").await;
    let (server, agent) = (dyn_t(&server_t), dyn_t(&agent_t));
    let (_h, mut plugin_rx) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;
    let (_n, mut notify_rx) = fx.serve(&agent, &notify_topic, "compute-1", ServerOptions::default()).await;
    let mut server_reconnects = server.reconnects();
    let mut agent_reconnects = agent.reconnects();
    let agent_states = record_states(&agent);

    let ctx = CallContext::admin();
    let plugin = RpcClient::new(agent.clone(), Target::topic(&topic)).with_timeout(Duration::from_secs(30));
    let notifier = RpcClient::new(server.clone(), Target::topic(&notify_topic).fanout());
    plugin.call(&ctx, "echo", json!("before")).await.unwrap();

    // A call in flight when the connection dies must fail fast, not time out.
    let in_flight = {
        let plugin = plugin.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let r = plugin.call(&ctx, "sleep", json!({"ms": 8000})).await;
            (r, Instant::now())
        })
    };
    let got = collect(&mut plugin_rx, 2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2, "the slow call must be running");

    let killed_at = Instant::now();
    assert_eq!(common::close_connections_named(server_t.connection_name()), 1);
    assert_eq!(common::close_connections_named(agent_t.connection_name()), 1);

    let (r, failed_at) = in_flight.await.unwrap();
    assert!(matches!(&r, Err(RpcError::ConnectionLost { method }) if method == "sleep"), "{r:?}");
    assert!(failed_at.duration_since(killed_at) < Duration::from_secs(5), "pending call must fail fast");

    let s_epoch =
        tokio::time::timeout(Duration::from_secs(10), server_reconnects.next()).await.expect("server reconnect");
    let a_epoch =
        tokio::time::timeout(Duration::from_secs(10), agent_reconnects.next()).await.expect("agent reconnect");
    let recovered = killed_at.elapsed();
    assert_eq!((s_epoch, a_epoch), (Some(2), Some(2)));
    assert!(server.is_connected() && agent.is_connected());
    assert!(
        agent_states.lock().unwrap().iter().any(|s| !s.connected && s.epoch == 1),
        "the agent must have reported the outage: {:?}",
        agent_states.lock().unwrap()
    );
    eprintln!("reconnected {recovered:?} after the broker closed both connections");

    // Everything works again: calls (shared queue + reply queue), fanouts
    // (new exclusive queue), direct casts.
    let r = plugin.call(&ctx, "echo", json!("after")).await.unwrap();
    assert_eq!(r["args"], "after");
    notifier.cast(&ctx, "port_update", json!({"seq": 1})).await.unwrap();
    let got = collect(&mut notify_rx, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "fanout after reconnect");
    RpcClient::new(server.clone(), Target::topic(&notify_topic).server("compute-1"))
        .cast(&ctx, "record", json!({"seq": 2}))
        .await
        .unwrap();
    let got = collect(&mut notify_rx, 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].args["seq"], 2);
    assert_eq!(agent_t.pending_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_come_back_when_their_queue_is_deleted() {
    let fx = Fixture::new(Kind::Amqp);
    let topic = fx.topic("q-plugin");
    let server_t = fx.amqp("server").await;
    let agent_t = fx.amqp("agent").await;
    let (server, agent) = (dyn_t(&server_t), dyn_t(&agent_t));
    let (_h, _rx) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;
    let plugin = RpcClient::new(agent, Target::topic(&topic)).with_timeout(Duration::from_secs(1));
    let ctx = CallContext::new();
    plugin.call(&ctx, "echo", json!(1)).await.unwrap();
    agent_t.delete_queue(&topic).await.unwrap();
    let deleted_at = Instant::now();
    // The broker cancels the consumer; the server re-declares its queues.
    let mut last = None;
    while deleted_at.elapsed() < Duration::from_secs(10) {
        match plugin.call(&ctx, "echo", json!(2)).await {
            Ok(r) => {
                last = Some(r);
                break;
            }
            Err(e) => {
                assert!(matches!(e, RpcError::NoListener { .. } | RpcError::Timeout { .. }), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(last.expect("server did not come back")["args"], 2);
    eprintln!("queue re-declared and consumed again after {:?}", deleted_at.elapsed());
    assert!(server.is_connected(), "no reconnection was needed");
    assert_eq!(server.watch_state().borrow().epoch, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_recovers_from_a_channel_error() {
    let fx = Fixture::new(Kind::Amqp);
    let topic = fx.topic("q-agent-notifier-network-delete");
    let server_t = fx.amqp("server").await;
    let agent_t = fx.amqp("agent").await;
    let server = dyn_t(&server_t);
    let notifier = RpcClient::new(server.clone(), Target::topic(&topic).fanout());
    let ctx = CallContext::new();
    notifier.cast(&ctx, "network_delete", json!({"seq": 0})).await.unwrap();
    fx.note_server(&topic, "x");
    // Delete the fanout exchange the publisher believes exists: the next
    // publish hits a channel error (404), the publisher channel is reopened,
    // the exchange declared again.
    server_t.delete_exchange(&format!("{topic}_fanout")).await.unwrap();
    notifier.cast(&ctx, "network_delete", json!({"seq": 1})).await.unwrap();
    let (_h, mut rx) = fx.serve(&dyn_t(&agent_t), &topic, "compute-1", ServerOptions::default()).await;
    notifier.cast(&ctx, "network_delete", json!({"seq": 2})).await.unwrap();
    let got = collect(&mut rx, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].args["seq"], 2);
    assert!(server.is_connected());
    assert_eq!(server.watch_state().borrow().epoch, 1, "a channel error is not a reconnection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_size_limit_are_refused() {
    let fx = Fixture::new(Kind::Amqp);
    let topic = fx.topic("q-plugin");
    let opts = AmqpOptions { max_message_bytes: 64 * 1024, ..fx.amqp_options("small") };
    let t = AmqpTransport::start(rabbit_url(), opts).unwrap();
    t.wait_connected(Duration::from_secs(10)).await.unwrap();
    let t: Arc<dyn Transport> = Arc::new(t);
    let (_h, mut rx) = fx.serve(&t, &topic, "controller", ServerOptions::default()).await;
    let client = RpcClient::new(t.clone(), Target::topic(&topic)).with_timeout(Duration::from_secs(5));
    let ctx = CallContext::new();
    let big = json!({"blob": "x".repeat(100 * 1024)});
    let err = client.call(&ctx, "echo", big.clone()).await.unwrap_err();
    assert!(matches!(err, RpcError::MessageTooLarge { limit: 65536, .. }), "{err:?}");
    let err = client.cast(&ctx, "record", big).await.unwrap_err();
    assert!(matches!(err, RpcError::MessageTooLarge { .. }), "{err:?}");
    assert!(drain_for(&mut rx, Duration::from_millis(200)).await.is_empty());
    // A reply over the limit comes back as a remote error, not a timeout.
    let err = client.call(&ctx, "blob", json!({"bytes": 100 * 1024})).await.unwrap_err();
    assert!(matches!(&err, RpcError::Remote { kind, .. } if kind == "ReplyError"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_operations_fail_cleanly() {
    // Nothing listens on port 1.
    let url = match neutrino_rpc::TransportUrl::parse("rabbit://guest:guest@127.0.0.1:1/").unwrap() {
        neutrino_rpc::TransportUrl::Rabbit(r) => r,
        _ => unreachable!(),
    };
    let opts = AmqpOptions { send_timeout: Duration::from_millis(300), ..AmqpOptions::default() };
    let t: Arc<dyn Transport> = Arc::new(AmqpTransport::start(url, opts).unwrap());
    assert!(!t.is_connected());
    let err = t.wait_connected(Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, RpcError::NotConnected { .. }), "{err:?}");
    let client = RpcClient::new(t.clone(), Target::topic("q-plugin")).with_timeout(Duration::from_millis(300));
    let ctx = CallContext::new();
    let started = Instant::now();
    let err = client.call(&ctx, "echo", json!({})).await.unwrap_err();
    assert!(matches!(err, RpcError::NotConnected { .. }), "{err:?}");
    let err = client.cast(&ctx, "echo", json!({})).await.unwrap_err();
    assert!(matches!(err, RpcError::NotConnected { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Serving while disconnected registers the server for later.
    let (handler, _rx) = common::TestHandler::new("h");
    let h = t.serve("q-plugin", "h", Arc::new(handler), ServerOptions::default()).await.unwrap();
    h.stop().await;
    t.close().await;
    let err = client.call(&ctx, "echo", json!({})).await.unwrap_err();
    assert_eq!(err, RpcError::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_from_url() {
    let t = neutrino_rpc::connect(&common::broker_url()).unwrap();
    assert_eq!(t.kind(), "rabbit");
    t.wait_connected(Duration::from_secs(10)).await.unwrap();
    assert!(t.is_connected());
    t.close().await;
    assert!(!t.is_connected());
    let t = neutrino_rpc::connect("in-process://").unwrap();
    assert_eq!(t.kind(), "in-process");
    assert!(t.is_connected());
    assert!(neutrino_rpc::connect("rabbit://guest:guest@127.0.0.1:notaport/").is_err());
}
