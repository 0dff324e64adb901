//! Runs handlers for one RPC server: with bounded concurrency, catching
//! panics, logging topic/method/msg id/elapsed.
//!
//! Ordering: handlers run in parallel tasks, but each handler's first poll
//! (everything it does before its first `.await` that waits) happens after
//! the first poll of the handler of the previous message. Tokio does not
//! start spawned tasks in spawn order, so every task waits for its
//! predecessor's "started" signal before polling its own handler.

use crate::{Handler, RemoteError, Request, ServerOptions};
use futures::FutureExt;
use serde_json::Value;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// Shared by the transports: one per RPC server.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    handler: Arc<dyn Handler>,
    permits: Arc<Semaphore>,
    max: u32,
    /// Fires when the handler of the latest dispatched message was first polled.
    last_started: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    pub(crate) topic: Arc<str>,
    pub(crate) server: Arc<str>,
}

/// Polls `inner`, and signals `started` right after its first poll.
struct SignalFirstPoll<F> {
    inner: Pin<Box<F>>,
    started: Option<oneshot::Sender<()>>,
}

impl<F: Future> Future for SignalFirstPoll<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.inner.as_mut().poll(cx);
        if let Some(tx) = self.started.take() {
            let _ = tx.send(());
        }
        r
    }
}

impl Dispatcher {
    pub(crate) fn new(handler: Arc<dyn Handler>, options: &ServerOptions, topic: &str, server: &str) -> Self {
        let max = options.max_concurrency.clamp(1, u16::MAX as usize) as u32;
        Dispatcher {
            handler,
            permits: Arc::new(Semaphore::new(max as usize)),
            max,
            last_started: Arc::new(Mutex::new(None)),
            topic: topic.into(),
            server: server.into(),
        }
    }

    /// Waits for a free execution slot. The semaphore is fair, so slots are
    /// granted in the order the consumer loops ask for them (delivery order).
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Runs the handler for `req` in its own task, holding `slot` until the
    /// handler and the reply (for calls) are done.
    pub(crate) fn spawn<F, Fut>(&self, slot: OwnedSemaphorePermit, req: Request, reply: F)
    where
        F: FnOnce(Result<Value, RemoteError>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = self.handler.clone();
        let topic = self.topic.clone();
        let server = self.server.clone();
        let (started_tx, started_rx) = oneshot::channel();
        let previous = self.last_started.lock().unwrap_or_else(|p| p.into_inner()).replace(started_rx);
        tokio::spawn(async move {
            if let Some(previous) = previous {
                // Err means the previous task ended without polling: go on.
                let _ = previous.await;
            }
            let started = Instant::now();
            let Request { method, args, context, .. } = req;
            let msg_id = context.msg_id.clone();
            let is_call = msg_id.is_some();
            let request_id = context.request_id.clone();
            let running = SignalFirstPoll {
                inner: Box::pin(AssertUnwindSafe(handler.handle(context, &method, args)).catch_unwind()),
                started: Some(started_tx),
            };
            let outcome = match running.await {
                Ok(r) => r,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "handler panicked".into());
                    tracing::error!(%topic, %server, %method, ?msg_id, panic = %what, "rpc handler panicked");
                    Err(RemoteError::new("HandlerPanicked", what))
                }
            };
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            match &outcome {
                Ok(_) => {
                    tracing::debug!(%topic, %server, %method, ?msg_id, %request_id, elapsed_ms, is_call, "rpc handled")
                }
                Err(e) => {
                    tracing::warn!(%topic, %server, %method, ?msg_id, %request_id, elapsed_ms, is_call, kind = %e.kind, error = %e.message, "rpc handler failed")
                }
            }
            if is_call {
                reply(outcome).await;
            }
            drop(slot);
        });
    }

    /// Waits until every running handler has finished.
    pub(crate) async fn drain(&self) {
        if let Ok(all) = self.permits.acquire_many(self.max).await {
            drop(all);
        }
    }
}
