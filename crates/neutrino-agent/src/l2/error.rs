//! The L2 agent's typed error.

use neutrino_rpc::RpcError;

/// What can go wrong in the L2 agent.
#[derive(Debug, thiserror::Error)]
pub enum L2Error {
    /// The configuration cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// Open vSwitch (OVSDB, ovs-ofctl) failed.
    #[error("open vswitch: {0}")]
    Ovs(#[from] crate::Error),
    /// A call to the server failed.
    #[error("rpc {method}: {source}")]
    Rpc {
        /// The method called.
        method: &'static str,
        /// Why.
        #[source]
        source: RpcError,
    },
    /// The server's reply did not have the expected shape.
    #[error("rpc {method}: unexpected reply: {reason}")]
    Reply {
        /// The method called.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The agent was stopped.
    #[error("the agent is stopping")]
    Stopped,
}

impl L2Error {
    /// True if the error comes from the message bus (a reconnect will resync).
    pub fn is_rpc(&self) -> bool {
        matches!(self, L2Error::Rpc { .. })
    }
}

/// Result alias of the L2 agent.
pub type L2Result<T> = Result<T, L2Error>;
