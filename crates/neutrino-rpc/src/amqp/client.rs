//! The sending side: casts, calls, replies, and the reply consumer.

use super::{lock, Cmd, Link, Pending, Shared};
use crate::envelope::{decode_reply, encode_reply, encode_request};
use crate::{topics, RemoteError, Request, RpcError, Target};
use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, Consumer, ExchangeKind};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const JSON: &str = "application/json";

/// Declares this connection's exclusive reply queue and consumes it.
pub(super) async fn start_reply_consumer(
    shared: &Shared,
    conn: &Connection,
    queue: &str,
    epoch: u64,
) -> Result<Consumer, RpcError> {
    let ch = conn.create_channel().await?;
    ch.queue_declare(
        queue,
        QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
        FieldTable::default(),
    )
    .await?;
    let tag = format!("{}-reply-{epoch}", shared.instance);
    let consumer = ch
        .basic_consume(queue, &tag, BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default())
        .await?;
    Ok(consumer)
}

/// Hands replies to the calls waiting for them; when the consumer ends, the
/// connection is treated as lost.
pub(super) async fn run_reply_consumer(shared: Arc<Shared>, mut consumer: Consumer, epoch: u64) {
    let reason = loop {
        match consumer.next().await {
            Some(Ok(delivery)) => match decode_reply(&delivery.data) {
                Ok((msg_id, outcome)) => {
                    let waiting = lock(&shared.pending).remove(&msg_id);
                    match waiting {
                        Some(p) => {
                            let _ = p.tx.send(outcome.map_err(RpcError::from));
                        }
                        None => tracing::debug!(%msg_id, "reply for a call nobody waits for (timed out?)"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "dropping a malformed reply"),
            },
            Some(Err(e)) => break e.to_string(),
            None => break "reply consumer cancelled".to_string(),
        }
    };
    if !shared.closed.load(Ordering::SeqCst) {
        tracing::debug!(epoch, %reason, "reply consumer ended");
        let _ = shared.cmd.send(Cmd::Lost { epoch, reason });
    }
}

/// Removes a pending call when the caller stops waiting (timeout, error,
/// cancellation).
struct PendingGuard<'a> {
    shared: &'a Shared,
    msg_id: &'a str,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(self.msg_id);
    }
}

impl Shared {
    /// Publishes and waits (at most `wait`) for the publisher confirm;
    /// `Ok(false)` if the broker returned a mandatory message (no queue bound).
    #[allow(clippy::too_many_arguments)]
    async fn publish(
        &self,
        link: &Link,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
        mandatory: bool,
        wait: Duration,
    ) -> Result<bool, RpcError> {
        let address =
            || if exchange.is_empty() { routing_key.to_string() } else { format!("{exchange}/{routing_key}") };
        let confirmed = async {
            let ch = link.publisher().await?;
            let confirm = ch
                .basic_publish(
                    exchange,
                    routing_key,
                    BasicPublishOptions { mandatory, ..Default::default() },
                    payload,
                    properties,
                )
                .await?
                .await?;
            Ok::<_, RpcError>(confirm)
        };
        // A broker under a resource alarm blocks publishers: do not wait forever.
        let confirm = tokio::time::timeout(wait, confirmed)
            .await
            .map_err(|_| RpcError::Unconfirmed { target: address(), waited: wait })??;
        match confirm {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(true),
            Confirmation::Ack(Some(_returned)) => Ok(false),
            Confirmation::Nack(_) => Err(RpcError::Refused { target: address() }),
        }
    }

    /// Exchange and routing key of a target; declares fanout exchanges once
    /// per connection.
    async fn route(&self, link: &Link, target: &Target) -> Result<(String, String), RpcError> {
        if !target.fanout {
            return Ok((self.opts.control_exchange.clone(), target.address()));
        }
        let exchange = topics::fanout_exchange(&target.topic);
        if !lock(&link.fanouts).contains(&exchange) {
            let ch = link.publisher().await?;
            ch.exchange_declare(
                &exchange,
                ExchangeKind::Fanout,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await?;
            lock(&link.fanouts).insert(exchange.clone());
        }
        Ok((exchange, String::new()))
    }

    /// Fire and forget; retried across a reconnection within `send_timeout`.
    pub(super) async fn cast(&self, target: &Target, request: &Request) -> Result<(), RpcError> {
        let started = Instant::now();
        let payload = encode_request(request, None, self.opts.max_message_bytes)?;
        let deadline = super::deadline_after(started, self.opts.send_timeout);
        let mut redeclared = false;
        loop {
            let link = self.wait_link(deadline.saturating_duration_since(Instant::now())).await?;
            let props = BasicProperties::default().with_content_type(JSON.into());
            let sent = match self.route(&link, target).await {
                Ok((exchange, key)) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.publish(&link, &exchange, &key, &payload, props, false, wait).await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(_) => {
                    tracing::debug!(target = %target, method = %request.method, bytes = payload.len(),
                        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "cast sent");
                    return Ok(());
                }
                Err(e) if !link.conn.status().connected() && Instant::now() < deadline => {
                    tracing::warn!(target = %target, method = %request.method, error = %e,
                        "cast interrupted by a connection loss; retrying after reconnection");
                }
                Err(e) if target.fanout && !redeclared => {
                    // Most likely the fanout exchange was deleted behind our
                    // back (the channel error reopens the publisher): declare
                    // it again and retry once.
                    tracing::info!(target = %target, error = %e, "fanout cast failed; redeclaring the exchange");
                    lock(&link.fanouts).remove(&topics::fanout_exchange(&target.topic));
                    redeclared = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Request/reply.
    pub(super) async fn call(&self, target: &Target, request: &Request, timeout: Duration) -> Result<Value, RpcError> {
        let started = Instant::now();
        let link = self.wait_link(timeout).await?;
        let msg_id = uuid::Uuid::new_v4().simple().to_string();
        let payload = encode_request(request, Some((&msg_id, &link.reply_queue)), self.opts.max_message_bytes)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(msg_id.clone(), Pending { tx, method: request.method.clone() });
        let _guard = PendingGuard { shared: self, msg_id: &msg_id };
        let props = BasicProperties::default()
            .with_content_type(JSON.into())
            .with_correlation_id(msg_id.as_str().into())
            .with_reply_to(link.reply_queue.as_str().into())
            .with_expiration(timeout.as_millis().clamp(1, i32::MAX as u128).to_string().into());
        let address = target.address();
        let wait = timeout.saturating_sub(started.elapsed());
        let routed = self
            .publish(&link, &self.opts.control_exchange, &address, &payload, props, true, wait)
            .await
            .map_err(|e| match e {
                _ if !link.conn.status().connected() => RpcError::ConnectionLost { method: request.method.clone() },
                RpcError::Unconfirmed { .. } => {
                    RpcError::Timeout { topic: target.topic.clone(), method: request.method.clone(), timeout }
                }
                e => e,
            })?;
        if !routed {
            return Err(RpcError::NoListener { target: address });
        }
        let outcome = match tokio::time::timeout(timeout.saturating_sub(started.elapsed()), rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(RpcError::ConnectionLost { method: request.method.clone() }),
            Err(_) => Err(RpcError::Timeout { topic: target.topic.clone(), method: request.method.clone(), timeout }),
        };
        tracing::debug!(target = %target, method = %request.method, %msg_id, bytes = payload.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, ok = outcome.is_ok(), "call done");
        outcome
    }

    /// Sends a handler's outcome back to the caller; retried across a
    /// reconnection within `send_timeout`, then dropped with a warning.
    pub(super) async fn send_reply(&self, reply_to: &str, msg_id: &str, outcome: Result<Value, RemoteError>) {
        let limit = self.opts.max_message_bytes;
        let payload = match encode_reply(msg_id, &outcome, limit) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%msg_id, error = %e, "cannot encode reply; sending an error instead");
                let err = Err(RemoteError::new("ReplyError", e.to_string()));
                match encode_reply(msg_id, &err, limit) {
                    Ok(p) => p,
                    Err(_) => return,
                }
            }
        };
        let deadline = super::deadline_after(Instant::now(), self.opts.send_timeout);
        loop {
            let link = match self.wait_link(deadline.saturating_duration_since(Instant::now())).await {
                Ok(link) => link,
                Err(e) => {
                    tracing::warn!(%msg_id, %reply_to, error = %e, "dropping reply: no connection");
                    return;
                }
            };
            let props = BasicProperties::default().with_content_type(JSON.into()).with_correlation_id(msg_id.into());
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.publish(&link, "", reply_to, &payload, props, false, wait).await {
                Ok(_) => return,
                Err(e) if !link.conn.status().connected() && Instant::now() < deadline => {
                    tracing::debug!(%msg_id, error = %e, "reply interrupted by a connection loss; retrying");
                }
                Err(e) => {
                    tracing::warn!(%msg_id, %reply_to, error = %e, "dropping reply");
                    return;
                }
            }
        }
    }
}
