//! neutrino-rpc: the southbound message bus between the Neutron server
//! (plugins) and the agents on the hosts, with oslo.messaging's patterns.
//!
//! * [`Transport`] is the one interface; [`InProcTransport`] (server and
//!   agents in one process, the default of `neutrino up`) and
//!   [`AmqpTransport`] (RabbitMQ, AMQP 0-9-1) implement it. [`connect`] builds
//!   one from a Neutron `transport_url` (see [`url`]).
//! * A [`Target`] names a topic, optionally one server on it, optionally all
//!   of them (fanout). [`RpcClient`] casts and calls methods on a target.
//! * A [`Handler`] (e.g. a [`MethodRouter`]) serves (topic, server) via
//!   [`Transport::serve`]: it receives messages for the topic (competing with
//!   the topic's other servers), for `topic.server`, and the topic's fanouts.
//! * Errors: [`RpcError`] for callers; handlers return [`RemoteError`], which
//!   the caller gets back as [`RpcError::Remote`].
//! * Connection health: [`Transport::is_connected`], [`Transport::watch_state`]
//!   and [`Transport::reconnects`] (resync after a reconnection).
//!
//! ```
//! use neutrino_rpc::{CallContext, MethodRouter, RpcClient, ServerOptions, Target, Transport};
//! use serde_json::json;
//! use std::sync::Arc;
//!
//! # #[tokio::main] async fn main() -> Result<(), neutrino_rpc::RpcError> {
//! let bus = neutrino_rpc::connect("in-process://doc-example")?;
//! let handler = MethodRouter::new().method("ping", |_ctx, args| async move { Ok(json!({"pong": args})) });
//! let _server = bus.serve("q-plugin", "controller-1", Arc::new(handler), ServerOptions::default()).await?;
//! let plugin = RpcClient::new(bus.clone(), Target::topic("q-plugin"));
//! let reply = plugin.call(&CallContext::admin(), "ping", json!(1)).await?;
//! assert_eq!(reply, json!({"pong": 1}));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod amqp;
pub mod backoff;
mod client;
pub mod context;
mod dispatch;
pub mod envelope;
pub mod error;
pub mod handler;
pub mod inproc;
pub mod target;
pub mod topics;
pub mod transport;
pub mod url;

pub use amqp::{AmqpOptions, AmqpTransport};
pub use backoff::Backoff;
pub use client::RpcClient;
pub use context::CallContext;
pub use envelope::Request;
pub use error::{RemoteError, RpcError};
pub use handler::{Handler, MethodRouter};
pub use inproc::InProcTransport;
pub use target::Target;
pub use transport::{
    ConnectionState, Reconnects, ServerControl, ServerHandle, ServerOptions, Transport, DEFAULT_CALL_TIMEOUT,
};
pub use url::TransportUrl;

use std::sync::Arc;

/// Builds a transport from a `transport_url` with default options.
/// Must be called inside a Tokio runtime; an AMQP transport connects in the
/// background (see [`Transport::wait_connected`]).
pub fn connect(url: &str) -> Result<Arc<dyn Transport>, RpcError> {
    connect_with(url, AmqpOptions::default())
}

/// Builds a transport from a `transport_url`; `amqp` applies to `rabbit://`
/// URLs only.
pub fn connect_with(url: &str, amqp: AmqpOptions) -> Result<Arc<dyn Transport>, RpcError> {
    match TransportUrl::parse(url)? {
        TransportUrl::InProcess { name } => Ok(Arc::new(InProcTransport::named(&name))),
        TransportUrl::Rabbit(r) => Ok(Arc::new(AmqpTransport::start(r, amqp)?)),
    }
}
