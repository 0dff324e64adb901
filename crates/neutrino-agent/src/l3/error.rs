//! The L3 agent's typed error.

/// What can go wrong in the L3 agent.
#[derive(Debug, thiserror::Error)]
pub enum L3Error {
    /// A building block failed (a command, OVSDB, a namespace).
    #[error(transparent)]
    Agent(#[from] crate::Error),

    /// A call to the server failed (bus down, timeout, remote error).
    #[error("rpc: {0}")]
    Rpc(#[from] neutrino_rpc::RpcError),

    /// The configuration is invalid or asks for something unsupported.
    #[error("configuration: {0}")]
    Config(String),

    /// The server sent router data the agent cannot use.
    #[error("router {router}: {reason}")]
    BadRouter {
        /// The router id.
        router: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An nftables transaction was rejected.
    #[error("nft in {netns}: {stderr}")]
    Nft {
        /// The namespace.
        netns: String,
        /// What nft printed.
        stderr: String,
    },
}

impl From<neutrino_lib::ini::BadOption> for L3Error {
    fn from(e: neutrino_lib::ini::BadOption) -> Self {
        L3Error::Config(e.to_string())
    }
}

/// Result alias of the L3 agent.
pub type Result<T, E = L3Error> = std::result::Result<T, E>;
