//! The Interface table as a stream of typed events: how an agent learns
//! that a VM port was plugged (and got its ofport) without polling.

use std::time::Duration;

use super::datum::Row;
use super::jsonrpc::Endpoint;
use super::monitor::{MonitorEvent, MonitorMethod, MonitorSpec, RowChange, TableMonitor};
use super::ops::Condition;
use super::vswitch::{Interface, INTERFACE_COLUMNS};
use crate::error::{Error, Result};

/// An event of an [`InterfaceMonitor`].
#[derive(Debug, Clone)]
pub enum InterfaceEvent {
    /// An interface appeared (its `ofport` may still be unset).
    Added(Interface),
    /// An interface changed (e.g. got its `ofport`, or external_ids changed).
    Modified {
        /// Before.
        old: Interface,
        /// After.
        new: Interface,
    },
    /// An interface disappeared.
    Deleted(Interface),
    /// The initial snapshot (or a post-reconnect resync) has been delivered.
    Synced {
        /// True after a reconnection.
        reconnect: bool,
    },
    /// The connection to ovsdb-server was lost; reconnecting.
    Disconnected {
        /// Why.
        reason: String,
    },
}

/// Follows the `Interface` table: the event source that wires VM ports.
#[derive(Debug)]
pub struct InterfaceMonitor {
    inner: TableMonitor,
}

impl InterfaceMonitor {
    /// Monitors all interfaces with `monitor_cond`.
    pub async fn start(endpoint: Endpoint) -> Result<InterfaceMonitor> {
        Self::start_with(endpoint, MonitorMethod::MonitorCond, None).await
    }

    /// Monitors with a chosen method and optional server-side condition
    /// (e.g. only interfaces with an `iface-id`).
    pub async fn start_with(
        endpoint: Endpoint,
        method: MonitorMethod,
        conditions: Option<Vec<Condition>>,
    ) -> Result<InterfaceMonitor> {
        let mut spec = MonitorSpec::new("Interface", INTERFACE_COLUMNS).method(method);
        if let Some(c) = conditions {
            spec = spec.conditions(c);
        }
        Ok(InterfaceMonitor { inner: TableMonitor::start(endpoint, spec).await? })
    }

    fn convert(e: MonitorEvent) -> InterfaceEvent {
        match e {
            MonitorEvent::Row(r) => {
                let old = r.old.as_ref().map(|o| Interface::from_row(&r.uuid, o));
                let new = r.new.as_ref().map(|n| Interface::from_row(&r.uuid, n));
                match (r.change, old, new) {
                    (RowChange::Insert, _, Some(n)) => InterfaceEvent::Added(n),
                    (RowChange::Modify, Some(o), Some(n)) => InterfaceEvent::Modified { old: o, new: n },
                    (_, Some(o), _) => InterfaceEvent::Deleted(o),
                    (_, None, n) => {
                        InterfaceEvent::Added(n.unwrap_or_else(|| Interface::from_row(&r.uuid, &Row::new())))
                    }
                }
            }
            MonitorEvent::Synced { reconnect } => InterfaceEvent::Synced { reconnect },
            MonitorEvent::Disconnected { reason } => InterfaceEvent::Disconnected { reason },
        }
    }

    /// The next event.
    pub async fn next(&mut self) -> Option<InterfaceEvent> {
        self.inner.next().await.map(Self::convert)
    }

    /// The next event, waiting at most `t`.
    pub async fn next_timeout(&mut self, t: Duration) -> Option<InterfaceEvent> {
        self.inner.next_timeout(t).await.map(Self::convert)
    }

    /// Waits (at most `t`) for an event satisfying `pred`, skipping others.
    pub async fn wait_for<F>(&mut self, t: Duration, mut pred: F) -> Result<InterfaceEvent>
    where
        F: FnMut(&InterfaceEvent) -> bool,
    {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Ok(Some(e)) => {
                    let e = Self::convert(e);
                    if pred(&e) {
                        return Ok(e);
                    }
                }
                Ok(None) => return Err(Error::Protocol("interface monitor ended".into())),
                Err(_) => return Err(Error::Timeout { what: "interface event".into(), after: t }),
            }
        }
    }

    /// The interfaces currently known.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.inner.rows().iter().map(|(u, r)| Interface::from_row(u, r)).collect()
    }
}
