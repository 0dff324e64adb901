//! What the server casts to `l3_agent.<host>` (docs/southbound.md): every
//! notification only queues the routers it names; the worker resyncs them
//! (creating, updating or removing each one), so a burst of changes to one
//! router costs one sync.

use std::sync::Arc;

use neutrino_lib::southbound::methods;
use neutrino_rpc::{CallContext, MethodRouter, RemoteError};
use serde::Deserialize;
use serde_json::Value;

use super::queue::Queue;

#[derive(Deserialize)]
struct RoutersArgs {
    #[serde(default)]
    routers: Vec<Value>,
}

#[derive(Deserialize)]
struct RouterArgs {
    router_id: String,
}

#[derive(Deserialize)]
struct PayloadArgs {
    #[serde(default)]
    payload: Vec<Value>,
}

/// Router ids out of a list of ids or of router documents (`{"id": …}`).
fn ids(list: Vec<Value>) -> Vec<String> {
    list.into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// The handler of the agent's notification topic.
pub fn handler(queue: Arc<Queue>) -> MethodRouter {
    let q1 = queue.clone();
    let q2 = queue.clone();
    let q3 = queue;
    MethodRouter::new()
        .typed(methods::ROUTERS_UPDATED, move |_ctx: CallContext, a: RoutersArgs| {
            let q = q1.clone();
            async move {
                let ids = ids(a.routers);
                tracing::debug!(routers = ?ids, "routers_updated");
                q.routers(ids);
                Ok::<_, RemoteError>(Value::Null)
            }
        })
        .typed(methods::ROUTER_REMOVED, move |_ctx: CallContext, a: RouterArgs| {
            let q = q2.clone();
            async move {
                tracing::debug!(router = %a.router_id, "router_removed");
                q.routers([a.router_id]);
                Ok::<_, RemoteError>(Value::Null)
            }
        })
        // Neutron's scheduler notification (same effect).
        .typed("router_added_to_agent", move |_ctx: CallContext, a: PayloadArgs| {
            let q = q3.clone();
            async move {
                q.routers(ids(a.payload));
                Ok::<_, RemoteError>(Value::Null)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_rpc::Handler;
    use serde_json::json;

    #[tokio::test]
    async fn queues_named_routers() {
        let q = Arc::new(Queue::default());
        let h = handler(q.clone());
        h.handle(CallContext::admin(), "routers_updated", json!({"routers": ["r1", {"id": "r2"}]})).await.unwrap();
        h.handle(CallContext::admin(), "router_removed", json!({"router_id": "r3"})).await.unwrap();
        let w = q.take();
        assert_eq!(w.routers.into_iter().collect::<Vec<_>>(), vec!["r1", "r2", "r3"]);
        assert!(h.handle(CallContext::admin(), "router_removed", json!({})).await.is_err());
    }
}
