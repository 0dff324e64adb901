//! The receiving side: declare a server's queues, consume, dispatch, reply.

use super::connection::declare_control_exchange;
use super::{lock, Cmd, Link, Shared};
use crate::dispatch::Dispatcher;
use crate::envelope::decode_request;
use crate::{topics, Handler, RpcError, ServerControl, ServerHandle, ServerOptions, Target};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer, ExchangeKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A registered RPC server; survives reconnections.
pub(crate) struct ServerEntry {
    pub(crate) id: u64,
    pub(crate) topic: String,
    pub(crate) server: String,
    dispatcher: Dispatcher,
    prefetch: u16,
    stopped: AtomicBool,
    /// A restart is scheduled (each of the three consumers reports its end).
    retrying: AtomicBool,
    run: tokio::sync::Mutex<Run>,
}

/// What the server has on the current connection.
#[derive(Default)]
struct Run {
    epoch: u64,
    generation: u64,
    channel: Option<Channel>,
    tags: Vec<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl ServerEntry {
    pub(crate) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

/// Registers a server and asks the supervisor to start it.
pub(super) async fn serve(
    shared: &Arc<Shared>,
    topic: &str,
    server: &str,
    handler: Arc<dyn Handler>,
    options: ServerOptions,
) -> Result<ServerHandle, RpcError> {
    if shared.closed.load(Ordering::SeqCst) {
        return Err(RpcError::Closed);
    }
    Target::topic(topic).server(server).validate()?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let entry = Arc::new(ServerEntry {
        id,
        topic: topic.to_string(),
        server: server.to_string(),
        dispatcher: Dispatcher::new(handler, &options, topic, server),
        prefetch: options.max_concurrency.clamp(1, u16::MAX as usize) as u16,
        stopped: AtomicBool::new(false),
        retrying: AtomicBool::new(false),
        run: tokio::sync::Mutex::new(Run::default()),
    });
    lock(&shared.servers).insert(id, entry.clone());
    let (done, result) = oneshot::channel();
    let outcome = match shared.cmd.send(Cmd::Setup { id, done }) {
        Ok(()) => result.await.unwrap_or(Err(RpcError::Closed)),
        Err(_) => Err(RpcError::Closed),
    };
    if let Err(e) = outcome {
        entry.mark_stopped();
        lock(&shared.servers).remove(&id);
        return Err(e);
    }
    let control = AmqpServer { shared: shared.clone(), entry };
    Ok(ServerHandle::new(topic, server, Box::new(control)))
}

fn queue_args(expiry: Option<Duration>) -> FieldTable {
    let mut args = FieldTable::default();
    if let Some(e) = expiry {
        let ms = e.as_millis().clamp(1, i32::MAX as u128) as i32;
        args.insert("x-expires".into(), AMQPValue::LongInt(ms));
    }
    args
}

/// Declares the server's queues and starts its consumers on `link`
/// (idempotent: nothing happens if they already run on this connection).
/// Errors that are only due to the connection dying are reported as success:
/// the server starts again on reconnection.
pub(super) async fn setup(shared: &Arc<Shared>, link: &Arc<Link>, entry: &Arc<ServerEntry>) -> Result<(), RpcError> {
    match try_setup(shared, link, entry).await {
        Err(e) if !link.conn.status().connected() => {
            tracing::debug!(topic = %entry.topic, error = %e, "server setup interrupted by a connection loss");
            Ok(())
        }
        other => other,
    }
}

async fn try_setup(shared: &Arc<Shared>, link: &Arc<Link>, entry: &Arc<ServerEntry>) -> Result<(), RpcError> {
    let mut run = entry.run.lock().await;
    if entry.is_stopped() {
        return Ok(());
    }
    let healthy = run.epoch == link.epoch
        && run.channel.as_ref().is_some_and(|c| c.status().connected())
        && run.tasks.iter().all(|t| !t.is_finished());
    if healthy {
        return Ok(());
    }
    for task in run.tasks.drain(..) {
        task.abort();
    }
    if let Some(old) = run.channel.take() {
        if old.status().connected() {
            let _ = old.close(200, "restarting consumers").await;
        }
    }

    let opts = &shared.opts;
    let (topic, server) = (entry.topic.as_str(), entry.server.as_str());
    let ch = link.conn.create_channel().await?;
    ch.basic_qos(entry.prefetch, BasicQosOptions { global: false }).await?;
    declare_control_exchange(&ch, &opts.control_exchange).await?;
    let direct = topics::server_queue(topic, server);
    for queue in [topic, direct.as_str()] {
        ch.queue_declare(queue, QueueDeclareOptions::default(), queue_args(opts.queue_expiry)).await?;
        ch.queue_bind(queue, &opts.control_exchange, queue, QueueBindOptions::default(), FieldTable::default()).await?;
    }
    let fanout = topics::fanout_exchange(topic);
    ch.exchange_declare(&fanout, ExchangeKind::Fanout, ExchangeDeclareOptions::default(), FieldTable::default())
        .await?;
    let fanout_queue = format!("{fanout}_{}", uuid::Uuid::new_v4().simple());
    ch.queue_declare(
        &fanout_queue,
        QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(&fanout_queue, &fanout, "", QueueBindOptions::default(), FieldTable::default()).await?;

    run.generation += 1;
    let mut tags = Vec::new();
    let mut tasks = Vec::new();
    for (i, queue) in [topic, direct.as_str(), fanout_queue.as_str()].into_iter().enumerate() {
        let tag = format!("{}-{}-{}-{i}", shared.instance, entry.id, run.generation);
        let consumer = ch.basic_consume(queue, &tag, BasicConsumeOptions::default(), FieldTable::default()).await?;
        tags.push(tag);
        tasks.push(tokio::spawn(consume(shared.clone(), entry.clone(), link.epoch, consumer, queue.to_string())));
    }
    run.channel = Some(ch);
    run.tags = tags;
    run.tasks = tasks;
    run.epoch = link.epoch;
    tracing::info!(%topic, %server, epoch = link.epoch, "rpc server consuming");
    Ok(())
}

/// One consumer loop: deliveries of one queue, in order.
async fn consume(shared: Arc<Shared>, entry: Arc<ServerEntry>, epoch: u64, mut consumer: Consumer, queue: String) {
    while let Some(item) = consumer.next().await {
        let delivery = match item {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(%queue, error = %e, "consumer failed");
                break;
            }
        };
        let Some(slot) = entry.dispatcher.slot().await else {
            break;
        };
        if entry.is_stopped() {
            // Not acknowledged: the broker requeues it when the channel closes.
            break;
        }
        if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!(%queue, error = %e, "cannot acknowledge a message; the broker will redeliver it");
            break;
        }
        match decode_request(&delivery.data) {
            Err(e) => tracing::warn!(%queue, error = %e, "dropping a malformed message"),
            Ok(incoming) => {
                let reply_to = incoming.reply_to;
                let msg_id = incoming.request.context.msg_id.clone();
                let shared = shared.clone();
                entry.dispatcher.spawn(slot, incoming.request, move |outcome| async move {
                    match (reply_to, msg_id) {
                        (Some(reply_to), Some(msg_id)) => shared.send_reply(&reply_to, &msg_id, outcome).await,
                        _ => tracing::warn!("call without reply_to: reply dropped"),
                    }
                });
            }
        }
    }
    if !entry.is_stopped() && !shared.closed.load(Ordering::SeqCst) {
        tracing::debug!(%queue, epoch, "consumer ended");
        let _ = shared.cmd.send(Cmd::ServerLost { id: entry.id, epoch });
    }
}

/// Restarts a server whose consumers died while the connection stayed up
/// (e.g. its queue was deleted), with backoff, for as long as the
/// connection lasts.
pub(super) fn schedule_retry(shared: &Arc<Shared>, entry: Arc<ServerEntry>, epoch: u64) {
    if entry.retrying.swap(true, Ordering::SeqCst) {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        retry(&shared, &entry, epoch).await;
        entry.retrying.store(false, Ordering::SeqCst);
    });
}

async fn retry(shared: &Arc<Shared>, entry: &Arc<ServerEntry>, epoch: u64) {
    let mut attempt = 0;
    loop {
        let delay = shared.opts.backoff.delay(attempt).max(Duration::from_millis(500));
        tokio::time::sleep(delay).await;
        if entry.is_stopped() || shared.closed.load(Ordering::SeqCst) || shared.state.borrow().epoch != epoch {
            return;
        }
        tracing::info!(topic = %entry.topic, server = %entry.server, attempt, "restarting rpc server consumers");
        let (done, result) = oneshot::channel();
        if shared.cmd.send(Cmd::Setup { id: entry.id, done }).is_err() {
            return;
        }
        match result.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                tracing::warn!(topic = %entry.topic, server = %entry.server, error = %e,
                    "cannot restart rpc server consumers");
                attempt += 1;
            }
            Err(_) => return,
        }
    }
}

#[derive(Clone)]
struct AmqpServer {
    shared: Arc<Shared>,
    entry: Arc<ServerEntry>,
}

#[async_trait]
impl ServerControl for AmqpServer {
    async fn stop(&self) {
        self.entry.mark_stopped();
        lock(&self.shared.servers).remove(&self.entry.id);
        let mut run = self.entry.run.lock().await;
        if let Some(ch) = run.channel.take() {
            for tag in run.tags.drain(..) {
                let _ = ch.basic_cancel(&tag, BasicCancelOptions::default()).await;
            }
            let _ = ch.close(200, "rpc server stopped").await;
        }
        let tasks = std::mem::take(&mut run.tasks);
        drop(run);
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
        self.entry.dispatcher.drain().await;
        tracing::info!(topic = %self.entry.topic, server = %self.entry.server, "rpc server stopped");
    }

    fn stop_in_background(&self) {
        self.entry.mark_stopped();
        lock(&self.shared.servers).remove(&self.entry.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            rt.spawn(async move { this.stop().await });
        }
    }
}
