//! Notifications of changes, in the shape of Neutron's callbacks:
//! a resource, what happened to it, and its state. The RPC layer turns them
//! into fan-out messages to agents; without agents they go nowhere.

use neutrino_lib::Map;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Create,
    /// Updated.
    Update,
    /// Deleted.
    Delete,
}

/// One change, sent after its transaction committed.
#[derive(Debug, Clone)]
pub struct Event {
    /// The resource's member name, e.g. `port`.
    pub resource: &'static str,
    /// What happened.
    pub action: Action,
    /// The resource after the change (before it, for deletes).
    pub doc: Map,
}

/// Receives committed changes.
pub trait Notifier: Send + Sync {
    /// Called once per change, after commit.
    fn notify(&self, event: Event);
}

/// A notifier that drops everything (no agents).
pub struct Nobody;

impl Notifier for Nobody {
    fn notify(&self, _: Event) {}
}

/// Changes collected during a transaction, delivered after it commits.
#[derive(Debug, Default)]
pub struct Outbox(Vec<Event>);

impl Outbox {
    /// Queues a change.
    pub fn push(&mut self, resource: &'static str, action: Action, doc: &Map) {
        self.0.push(Event { resource, action, doc: doc.clone() });
    }

    /// Delivers the queued changes.
    pub fn deliver(self, to: &dyn Notifier) {
        for e in self.0 {
            to.notify(e);
        }
    }
}
