//! The server's notifications to L2 agents (docs/southbound.md, "Server →
//! agents"): the agent serves the fanout topics as server `<host>` and turns
//! each message into a [`Notification`] for its main loop. Notifications only
//! say *what* changed; the loop fetches the current state with calls.

use std::sync::Arc;

use neutrino_lib::southbound::{methods, topics, PortRef};
use neutrino_rpc::{CallContext, MethodRouter, RemoteError, ServerHandle, ServerOptions, Transport};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::{L2Error, L2Result};

/// A change announced by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// A port changed (possibly its binding).
    PortUpdate(PortRef),
    /// A port was deleted.
    PortDelete {
        /// Port id.
        port_id: String,
    },
    /// A network changed.
    NetworkUpdate {
        /// Network id.
        network_id: String,
    },
    /// A network was deleted.
    NetworkDelete {
        /// Network id.
        network_id: String,
    },
    /// Rules of these security groups changed.
    SecurityGroupRules(Vec<String>),
    /// Membership of these security groups changed.
    SecurityGroupMembers(Vec<String>),
    /// The remote endpoints of a network changed (l2population).
    PeersChanged {
        /// Network id.
        network_id: String,
    },
    /// A tunnel endpoint (re)appeared.
    TunnelUpdate {
        /// Its address.
        tunnel_ip: String,
        /// Its host.
        host: String,
    },
}

#[derive(Deserialize)]
struct PortUpdateArgs {
    port: PortRef,
}

#[derive(Deserialize)]
struct PortDeleteArgs {
    port_id: String,
}

#[derive(Deserialize)]
struct NetworkArgs {
    network_id: String,
}

#[derive(Deserialize)]
struct GroupsArgs {
    #[serde(default)]
    security_groups: Vec<Value>,
}

#[derive(Deserialize)]
struct TunnelArgs {
    #[serde(default)]
    tunnel_ip: String,
    #[serde(default)]
    host: Value,
}

fn groups(a: GroupsArgs) -> Vec<String> {
    a.security_groups.into_iter().filter_map(|v| v.as_str().map(String::from)).collect()
}

/// Serves the L2 notification topics on `bus` as `host`, forwarding every
/// notification to `tx`. Keep the handles: dropping them stops serving.
pub async fn serve(
    bus: &Arc<dyn Transport>,
    host: &str,
    tx: mpsc::UnboundedSender<Notification>,
) -> L2Result<Vec<ServerHandle>> {
    let send = move |tx: &mpsc::UnboundedSender<Notification>, n: Notification| {
        tracing::debug!(notification = ?n, "notification");
        // A closed channel means the agent is stopping: nothing to do.
        let _ = tx.send(n);
        Ok::<_, RemoteError>(Value::Null)
    };
    let t = tx.clone();
    let port_update = MethodRouter::new().typed(methods::PORT_UPDATE, move |_c: CallContext, a: PortUpdateArgs| {
        let r = send(&t, Notification::PortUpdate(a.port));
        async move { r }
    });
    let t = tx.clone();
    let port_delete = MethodRouter::new().typed(methods::PORT_DELETE, move |_c: CallContext, a: PortDeleteArgs| {
        let r = send(&t, Notification::PortDelete { port_id: a.port_id });
        async move { r }
    });
    let t = tx.clone();
    let net_update = MethodRouter::new().typed(methods::NETWORK_UPDATE, move |_c: CallContext, a: NetworkArgs| {
        let r = send(&t, Notification::NetworkUpdate { network_id: a.network_id });
        async move { r }
    });
    let t = tx.clone();
    let net_delete = MethodRouter::new().typed(methods::NETWORK_DELETE, move |_c: CallContext, a: NetworkArgs| {
        let r = send(&t, Notification::NetworkDelete { network_id: a.network_id });
        async move { r }
    });
    let (t1, t2) = (tx.clone(), tx.clone());
    let sg = MethodRouter::new()
        .typed(methods::SG_RULE_UPDATED, move |_c: CallContext, a: GroupsArgs| {
            let r = send(&t1, Notification::SecurityGroupRules(groups(a)));
            async move { r }
        })
        .typed(methods::SG_MEMBER_UPDATED, move |_c: CallContext, a: GroupsArgs| {
            let r = send(&t2, Notification::SecurityGroupMembers(groups(a)));
            async move { r }
        });
    let t = tx.clone();
    let l2pop = MethodRouter::new().typed(methods::PEERS_CHANGED, move |_c: CallContext, a: NetworkArgs| {
        let r = send(&t, Notification::PeersChanged { network_id: a.network_id });
        async move { r }
    });
    let t = tx;
    let tunnel = MethodRouter::new().typed(methods::TUNNEL_UPDATE, move |_c: CallContext, a: TunnelArgs| {
        let host = a.host.as_str().unwrap_or_default().to_string();
        let r = send(&t, Notification::TunnelUpdate { tunnel_ip: a.tunnel_ip, host });
        async move { r }
    });
    let routes: [(&str, MethodRouter); 7] = [
        (topics::PORT_UPDATE, port_update),
        (topics::PORT_DELETE, port_delete),
        (topics::NETWORK_UPDATE, net_update),
        (topics::NETWORK_DELETE, net_delete),
        (topics::SECURITY_GROUP, sg),
        (topics::L2POP, l2pop),
        (topics::TUNNEL, tunnel),
    ];
    let mut handles = Vec::with_capacity(routes.len());
    for (topic, router) in routes {
        // One at a time per topic: notifications of a topic keep their order.
        let h = bus
            .serve(topic, host, Arc::new(router), ServerOptions { max_concurrency: 1 })
            .await
            .map_err(|source| L2Error::Rpc { method: "serve", source })?;
        handles.push(h);
    }
    Ok(handles)
}
