//! AMQP only, opt-in: a real broker restart (`rabbitmqctl stop_app` then
//! `start_app`). It disturbs every user of the broker, so it is ignored by
//! default:
//!
//! ```sh
//! cargo test -p neutrino-rpc --test broker_restart -- --ignored --nocapture
//! ```
//!
//! The broker is started again even if the test fails.

mod common;

use common::{collect, Fixture, Kind};
use neutrino_rpc::{CallContext, RpcClient, RpcError, ServerOptions, Target, Transport};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts the broker's application again when dropped (test failure included).
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}

async fn rabbitmqctl(arg: &str) {
    let out = tokio::process::Command::new("rabbitmqctl").arg(arg).output().await.expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {arg}: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the shared RabbitMQ; run with --ignored"]
async fn survives_a_broker_restart() {
    let fx = Fixture::new(Kind::Amqp);
    let topic = fx.topic("q-plugin");
    let notify_topic = fx.topic("q-agent-notifier-port-update");
    let long_send =
        |label: &str| neutrino_rpc::AmqpOptions { send_timeout: Duration::from_secs(60), ..fx.amqp_options(label) };
    let server: Arc<dyn Transport> = Arc::new(fx.amqp_with(long_send("server")).await);
    let agent: Arc<dyn Transport> = Arc::new(fx.amqp_with(long_send("agent")).await);
    let (_h, _rx) = fx.serve(&server, &topic, "controller", ServerOptions::default()).await;
    let (_n, mut notify_rx) = fx.serve(&agent, &notify_topic, "compute-1", ServerOptions::default()).await;
    let mut server_reconnects = server.reconnects();
    let mut agent_reconnects = agent.reconnects();
    let ctx = CallContext::admin();
    let plugin = RpcClient::new(agent.clone(), Target::topic(&topic)).with_timeout(Duration::from_secs(60));
    let notifier = RpcClient::new(server.clone(), Target::topic(&notify_topic).fanout());
    plugin.call(&ctx, "echo", json!("before")).await.unwrap();

    let in_flight = {
        let plugin = plugin.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move { plugin.call(&ctx, "sleep", json!({"ms": 20000})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let _guard = RestartGuard;
    let t_stop = Instant::now();
    rabbitmqctl("stop_app").await;
    let stop_took = t_stop.elapsed();
    let r = tokio::time::timeout(Duration::from_secs(5), in_flight).await.expect("pending call must fail").unwrap();
    assert!(matches!(r, Err(RpcError::ConnectionLost { .. })), "{r:?}");
    let mut state = agent.watch_state();
    tokio::time::timeout(Duration::from_secs(5), state.wait_for(|s| !s.connected)).await.unwrap().unwrap();
    assert!(!agent.is_connected() && !server.is_connected());

    // A cast during the outage waits for the connection (send_timeout).
    let during = {
        let notifier = notifier.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move { notifier.cast(&ctx, "record", json!({"during": true})).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let t_start = Instant::now();
    rabbitmqctl("start_app").await;
    let start_took = t_start.elapsed();
    let app_up = Instant::now();
    let s = tokio::time::timeout(Duration::from_secs(30), server_reconnects.next()).await.expect("server reconnect");
    let server_back = app_up.elapsed();
    let a = tokio::time::timeout(Duration::from_secs(30), agent_reconnects.next()).await.expect("agent reconnect");
    let agent_back = app_up.elapsed();
    assert!(s.is_some() && a.is_some());
    assert!(server.is_connected() && agent.is_connected());

    during.await.unwrap().expect("the cast made during the outage is sent after reconnection");
    let r = plugin.call(&ctx, "echo", json!("after")).await.unwrap();
    assert_eq!(r["args"], "after");
    let first_call_ok = app_up.elapsed();
    notifier.cast(&ctx, "record", json!({"after": true})).await.unwrap();
    let got = collect(&mut notify_rx, 2, Duration::from_secs(5)).await;
    assert!(got.iter().any(|s| s.args["after"] == true), "fanout after restart: {got:?}");
    eprintln!(
        "broker restart: stop_app took {stop_took:?}, start_app took {start_took:?}; after start_app returned: \
         server reconnected in {server_back:?}, agent in {agent_back:?}, first call answered at {first_call_ok:?}; \
         total outage seen by the agent ≈ {:?}",
        t_stop.elapsed() - (app_up.elapsed() - agent_back)
    );
}
