//! Notifications of changes, in the shape of Neutron's callbacks:
//! a resource, what happened to it, and its state. The RPC layer turns them
//! into fan-out messages to agents; without agents they go nowhere.

use neutrino_lib::Map;
use serde_json::{json, Value};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Create,
    /// Updated.
    Update,
    /// Deleted.
    Delete,
    /// Only the status (and provisioning) changed: agents that reported it
    /// need not hear about it again.
    Status,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Status => "status",
        }
    }

    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            "status" => Action::Status,
            _ => return None,
        })
    }
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
    /// Its row in the durable outbox, deleted once delivered.
    pub outbox_id: Option<String>,
}

/// The resource names events carry (an event read back from the outbox
/// names one of these).
const RESOURCES: &[&str] = &[
    "port",
    "network",
    "subnet",
    "segment",
    "security_group",
    "security_group_rule",
    "router",
    "floatingip",
    "floatingip_status",
    "agent",
    "dhcp_network_hosted",
    "l3_router_hosted",
    "metering_label",
    "metering_label_rule",
    "subnetpool",
    "address_scope",
];

impl Event {
    /// The event as an outbox row's body.
    pub fn to_body(&self) -> String {
        json!({"resource": self.resource, "action": self.action.name(), "doc": self.doc}).to_string()
    }

    /// An event read back from an outbox row.
    pub fn from_body(id: &str, body: &str) -> Option<Event> {
        let v: Value = serde_json::from_str(body).ok()?;
        let r = v.get("resource")?.as_str()?;
        let resource = RESOURCES.iter().copied().find(|x| *x == r)?;
        Some(Event {
            resource,
            action: Action::parse(v.get("action")?.as_str()?)?,
            doc: v.get("doc")?.as_object()?.clone(),
            outbox_id: Some(id.to_string()),
        })
    }
}

/// Receives committed changes.
pub trait Notifier: Send + Sync {
    /// Called once per change, after commit.
    fn notify(&self, event: Event);

    /// Should changes be written to the durable outbox first (someone
    /// delivers them, and deletes their rows once delivered)?
    fn durable(&self) -> bool {
        false
    }
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
        self.0.push(Event { resource, action, doc: doc.clone(), outbox_id: None });
    }

    /// Nothing queued?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Writes the queued changes to the outbox inside the change's transaction.
    pub async fn persist(&mut self, tx: &mut neutrino_store::Tx) -> neutrino_store::Result<()> {
        let mut rows = vec![];
        for e in &mut self.0 {
            let id = neutrino_lib::new_id();
            rows.push(neutrino_store::outbox::OutboxRow { id: id.clone(), body: e.to_body() });
            e.outbox_id = Some(id);
        }
        tx.outbox_put(&rows).await
    }

    /// The queued resources' names (for the crash hook of the fault tests).
    pub fn resources(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|e| e.resource)
    }

    /// Delivers the queued changes.
    pub fn deliver(self, to: &dyn Notifier) {
        for e in self.0 {
            to.notify(e);
        }
    }
}
