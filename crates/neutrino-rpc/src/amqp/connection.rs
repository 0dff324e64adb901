//! The connection supervisor: connect, declare, watch, reconnect.

use super::{client, lock, server, Cmd, Shared};
use crate::url::BrokerHost;
use crate::{ConnectionState, RpcError};
use futures::StreamExt;
use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{Channel, ChannelState, Connection, ConnectionProperties, ExchangeKind};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the supervisor double-checks the connection status.
const POLL: Duration = Duration::from_millis(250);

/// One established connection and what hangs off it.
pub(crate) struct Link {
    pub(crate) epoch: u64,
    pub(crate) conn: Connection,
    /// The channel used for every publish, in confirm mode.
    publisher: Mutex<Channel>,
    reopen: tokio::sync::Mutex<()>,
    /// This connection's exclusive reply queue.
    pub(crate) reply_queue: String,
    /// Fanout exchanges already declared on this connection.
    pub(crate) fanouts: Mutex<HashSet<String>>,
}

impl Link {
    /// The publishing channel, reopened if a channel error closed it.
    pub(crate) async fn publisher(&self) -> Result<Channel, RpcError> {
        let ch = lock(&self.publisher).clone();
        if ch.status().connected() {
            return Ok(ch);
        }
        let _one_at_a_time = self.reopen.lock().await;
        let old = lock(&self.publisher).clone();
        if old.status().connected() {
            return Ok(old);
        }
        // Let the client library finish closing the old channel first: opening
        // a channel while the broker-initiated close is still being
        // acknowledged can reuse its id and break the whole connection.
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(old.status().state(), ChannelState::Closing | ChannelState::Initial) && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ch = confirm_channel(&self.conn).await?;
        tracing::info!(epoch = self.epoch, "reopened the publishing channel");
        *lock(&self.publisher) = ch.clone();
        Ok(ch)
    }
}

async fn confirm_channel(conn: &Connection) -> Result<Channel, RpcError> {
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(ch)
}

/// Declares the control exchange (topic, transient, as oslo.messaging).
pub(crate) async fn declare_control_exchange(ch: &Channel, name: &str) -> Result<(), RpcError> {
    ch.exchange_declare(name, ExchangeKind::Topic, ExchangeDeclareOptions::default(), FieldTable::default()).await?;
    Ok(())
}

async fn connect(shared: &Shared, host: &BrokerHost) -> Result<Connection, RpcError> {
    let timeout = shared.url.connection_timeout.unwrap_or(shared.opts.connection_timeout);
    let uri = AMQPUri {
        scheme: AMQPScheme::AMQP,
        authority: AMQPAuthority {
            userinfo: AMQPUserInfo { username: host.username.clone(), password: host.password.clone() },
            host: host.host.clone(),
            port: host.port,
        },
        vhost: shared.url.virtual_host.clone(),
        query: AMQPQueryString {
            heartbeat: Some(shared.url.heartbeat.unwrap_or(shared.opts.heartbeat)),
            connection_timeout: Some(timeout.as_millis() as u64),
            ..Default::default()
        },
    };
    let props = ConnectionProperties::default()
        .with_connection_name(shared.opts.connection_name.clone().into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    match tokio::time::timeout(timeout, Connection::connect_uri(uri, props)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(RpcError::Amqp(format!("connection timed out after {timeout:?}"))),
    }
}

/// Opens the publisher, declares the control exchange, starts the reply consumer.
/// On failure the connection is closed.
async fn open_link(shared: &Arc<Shared>, conn: Connection, epoch: u64) -> Result<Arc<Link>, RpcError> {
    let reply_queue = format!("reply_{}", uuid::Uuid::new_v4().simple());
    let prepared = async {
        let publisher = confirm_channel(&conn).await?;
        declare_control_exchange(&publisher, &shared.opts.control_exchange).await?;
        let consumer = client::start_reply_consumer(shared, &conn, &reply_queue, epoch).await?;
        Ok::<_, RpcError>((publisher, consumer))
    }
    .await;
    let (publisher, consumer) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(320, "setup failed")).await;
            return Err(e);
        }
    };
    let link = Arc::new(Link {
        epoch,
        conn,
        publisher: Mutex::new(publisher),
        reopen: tokio::sync::Mutex::new(()),
        reply_queue,
        fanouts: Mutex::new(HashSet::new()),
    });
    tokio::spawn(client::run_reply_consumer(shared.clone(), consumer, epoch));
    Ok(link)
}

/// Waits `delay` while answering commands; false if asked to shut down.
async fn pause(shared: &Arc<Shared>, cmds: &mut mpsc::UnboundedReceiver<Cmd>, delay: Duration) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            cmd = cmds.recv() => match cmd {
                None => return false,
                Some(Cmd::Shutdown { done }) => {
                    finish(shared, None).await;
                    if let Some(done) = done { let _ = done.send(()); }
                    return false;
                }
                // Registered; it will start when the connection is up.
                Some(Cmd::Setup { done, .. }) => { let _ = done.send(Ok(())); }
                Some(_) => {}
            },
        }
    }
}

/// Closes the transport for good.
async fn finish(shared: &Arc<Shared>, link: Option<&Arc<Link>>) {
    shared.closed.store(true, Ordering::SeqCst);
    for entry in lock(&shared.servers).values() {
        entry.mark_stopped();
    }
    shared.set_link(None);
    if let Some(link) = link {
        let _ = tokio::time::timeout(Duration::from_secs(2), link.conn.close(200, "shutdown")).await;
    }
    let epoch = shared.state.borrow().epoch;
    shared.state.send_replace(ConnectionState { connected: false, epoch });
    shared.fail_pending(|_| RpcError::Closed);
    tracing::info!(connection = %shared.opts.connection_name, "rpc transport closed");
}

/// The supervisor task of one [`super::AmqpTransport`].
pub(crate) async fn supervise(shared: Arc<Shared>, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
    let hosts = shared.url.hosts.clone();
    let mut attempt: u32 = 0;
    let mut host_index = 0usize;
    let mut epoch = 0u64;
    let mut lost_at: Option<Instant> = None;
    loop {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let host = &hosts[host_index % hosts.len()];
        let conn = match connect(&shared, host).await {
            Ok(conn) => conn,
            Err(e) => {
                let delay = shared.opts.backoff.delay(attempt);
                tracing::warn!(broker = %host, attempt, delay_ms = delay.as_millis() as u64, error = %e,
                    "cannot connect to the message broker; retrying");
                attempt = attempt.saturating_add(1);
                host_index += 1;
                if !pause(&shared, &mut cmds, delay).await {
                    return;
                }
                continue;
            }
        };
        let link = match open_link(&shared, conn, epoch + 1).await {
            Ok(link) => {
                epoch += 1;
                link
            }
            Err(e) => {
                let delay = shared.opts.backoff.delay(attempt);
                tracing::warn!(broker = %host, error = %e, "message broker setup failed; retrying");
                attempt = attempt.saturating_add(1);
                if !pause(&shared, &mut cmds, delay).await {
                    return;
                }
                continue;
            }
        };
        let entries: Vec<_> = lock(&shared.servers).values().cloned().collect();
        for entry in entries {
            if let Err(e) = server::setup(&shared, &link, &entry).await {
                tracing::warn!(topic = %entry.topic, server = %entry.server, error = %e,
                    "cannot start rpc server consumers; will retry");
                let _ = shared.cmd.send(Cmd::ServerLost { id: entry.id, epoch });
            }
        }
        attempt = 0;
        shared.set_link(Some(link.clone()));
        shared.state.send_replace(ConnectionState { connected: true, epoch });
        match lost_at.take() {
            Some(t) => tracing::info!(broker = %host, epoch, downtime_ms = t.elapsed().as_millis() as u64,
                connection = %shared.opts.connection_name, "reconnected to the message broker"),
            None => tracing::info!(broker = %host, epoch,
                connection = %shared.opts.connection_name, "connected to the message broker"),
        }
        watch_events(&shared, &link);

        let mut poll = tokio::time::interval(POLL);
        let reason = loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => { finish(&shared, Some(&link)).await; return; }
                    Some(Cmd::Shutdown { done }) => {
                        finish(&shared, Some(&link)).await;
                        if let Some(done) = done { let _ = done.send(()); }
                        return;
                    }
                    Some(Cmd::Setup { id, done }) => {
                        let entry = lock(&shared.servers).get(&id).cloned();
                        let r = match entry {
                            Some(entry) => server::setup(&shared, &link, &entry).await,
                            None => Ok(()),
                        };
                        let _ = done.send(r);
                    }
                    Some(Cmd::ServerLost { id, epoch: e }) if e == epoch => {
                        let entry = lock(&shared.servers).get(&id).cloned();
                        if let Some(entry) = entry {
                            if link.conn.status().connected() {
                                server::schedule_retry(&shared, entry, epoch);
                            }
                        }
                    }
                    Some(Cmd::Lost { epoch: e, reason }) if e == epoch => break reason,
                    Some(_) => {}
                },
                _ = poll.tick() => {
                    if !link.conn.status().connected() {
                        break format!("connection state {:?}", link.conn.status().state());
                    }
                }
            }
        };
        lost_at = Some(Instant::now());
        shared.set_link(None);
        shared.state.send_replace(ConnectionState { connected: false, epoch });
        let failed = shared.fail_pending(|method| RpcError::ConnectionLost { method: method.to_string() });
        tracing::warn!(epoch, %reason, failed_calls = failed, connection = %shared.opts.connection_name,
            "lost the connection to the message broker; reconnecting");
        let _ = tokio::time::timeout(Duration::from_secs(1), link.conn.close(320, "connection lost")).await;
    }
}

/// Forwards the client library's connection errors to the supervisor.
fn watch_events(shared: &Arc<Shared>, link: &Arc<Link>) {
    let mut events = link.conn.events_listener();
    let cmd = shared.cmd.clone();
    let epoch = link.epoch;
    let mut state = shared.state.subscribe();
    tokio::spawn(async move {
        let this_link_gone = state.wait_for(|s| !s.connected || s.epoch != epoch);
        tokio::pin!(this_link_gone);
        loop {
            tokio::select! {
                _ = &mut this_link_gone => return,
                event = events.next() => match event {
                    // Channel-level (soft) errors close one channel, not the
                    // connection: the publisher and servers reopen theirs.
                    Some(lapin::Event::Error(e)) if e.is_amqp_soft_error() => {
                        tracing::debug!(epoch, error = %e, "channel error");
                    }
                    Some(lapin::Event::Error(e)) => {
                        let _ = cmd.send(Cmd::Lost { epoch, reason: e.to_string() });
                        return;
                    }
                    Some(lapin::Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(epoch, %reason, "the message broker blocks our publishing (resource alarm)");
                    }
                    Some(lapin::Event::ConnectionUnblocked) => {
                        tracing::info!(epoch, "the message broker unblocked our publishing");
                    }
                    Some(_) => {}
                    None => return,
                },
            }
        }
    });
}
