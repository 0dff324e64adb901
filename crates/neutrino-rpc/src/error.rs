//! Errors: [`RpcError`] for the caller of the bus, [`RemoteError`] for handlers.

use std::time::Duration;

/// The error a handler returns; it travels back to the caller of a `call` and
/// surfaces there as [`RpcError::Remote`] with the same `kind` and `message`.
///
/// `kind` plays the role of the exception class name in oslo.messaging
/// (e.g. `PortNotFound`); `message` is human readable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    /// Machine-readable error kind, e.g. `PortNotFound`.
    pub kind: String,
    /// Human-readable message.
    pub message: String,
}

impl RemoteError {
    /// A remote error of the given kind and message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RemoteError { kind: kind.into(), message: message.into() }
    }

    /// The error returned when a server has no handler for the method
    /// (oslo.messaging's `NoSuchMethod`).
    pub fn no_such_method(method: &str) -> Self {
        Self::new("NoSuchMethod", format!("Endpoint does not support RPC method {method}"))
    }

    /// The error returned when the arguments of a call could not be decoded.
    pub fn invalid_args(method: &str, reason: impl std::fmt::Display) -> Self {
        Self::new("InvalidArguments", format!("invalid arguments for {method}: {reason}"))
    }
}

impl From<neutrino_lib::Fault> for RemoteError {
    /// A Neutron fault raised in a handler keeps its exception name as `kind`.
    fn from(f: neutrino_lib::Fault) -> Self {
        RemoteError::new(f.kind.into_owned(), f.message)
    }
}

/// Everything that can go wrong when using the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// No reply arrived within the call's timeout (oslo.messaging's `MessagingTimeout`).
    #[error("timed out after {timeout:?} waiting for a reply to {method} on topic {topic}")]
    Timeout {
        /// The topic the call was sent to.
        topic: String,
        /// The method called.
        method: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The remote handler returned an error.
    #[error("remote error {kind}: {message}")]
    Remote {
        /// The error kind chosen by the handler (e.g. `PortNotFound`).
        kind: String,
        /// The handler's message.
        message: String,
    },
    /// Nobody could receive the message: no server queue is bound for the
    /// target (AMQP: the broker returned the mandatory message; in-process:
    /// no server registered).
    #[error("no server is listening on {target}")]
    NoListener {
        /// The target, as `topic`, `topic.server` or `topic_fanout`.
        target: String,
    },
    /// The connection to the broker was lost while the call waited for its
    /// reply; whether the remote side executed it is unknown.
    #[error("connection to the message broker lost while waiting for a reply to {method}")]
    ConnectionLost {
        /// The method that was in flight.
        method: String,
    },
    /// The transport has no connection to the broker and none came back in time.
    #[error("not connected to the message broker (waited {waited:?})")]
    NotConnected {
        /// How long the operation waited for a connection.
        waited: Duration,
    },
    /// The broker refused the message (negative publisher confirm).
    #[error("the message broker refused the message for {target}")]
    Refused {
        /// The target the message was published to.
        target: String,
    },
    /// The broker did not confirm the message in time (e.g. it blocks
    /// publishers under a memory or disk alarm); it may or may not be delivered.
    #[error("the message broker did not confirm the message for {target} within {waited:?}")]
    Unconfirmed {
        /// The target the message was published to.
        target: String,
        /// How long the publisher waited.
        waited: Duration,
    },
    /// The transport URL could not be parsed.
    #[error("invalid transport URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with its password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target is not usable (e.g. an empty topic).
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    /// The encoded message is bigger than the configured limit.
    #[error("message too large: {size} bytes (limit {limit}); send references, not blobs")]
    MessageTooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// Configured limit in bytes.
        limit: usize,
    },
    /// A message could not be encoded or decoded.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// An error reported by the AMQP client library or the broker.
    #[error("AMQP error: {0}")]
    Amqp(String),
    /// The transport was closed by its owner.
    #[error("the transport is closed")]
    Closed,
}

impl RpcError {
    /// True for errors after which retrying the same operation may succeed
    /// (timeouts, lost or missing connections).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RpcError::Timeout { .. }
                | RpcError::ConnectionLost { .. }
                | RpcError::NotConnected { .. }
                | RpcError::NoListener { .. }
                | RpcError::Unconfirmed { .. }
                | RpcError::Amqp(_)
        )
    }
}

impl From<RemoteError> for RpcError {
    fn from(e: RemoteError) -> Self {
        RpcError::Remote { kind: e.kind, message: e.message }
    }
}

impl From<lapin::Error> for RpcError {
    fn from(e: lapin::Error) -> Self {
        RpcError::Amqp(e.to_string())
    }
}
