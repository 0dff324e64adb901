//! The DHCP agent's typed error.

/// What can go wrong in the DHCP agent.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// A building block failed (`ip`, OVSDB, a spawned command, ...).
    #[error(transparent)]
    Agent(#[from] crate::Error),
    /// A call to the server failed.
    #[error("rpc: {0}")]
    Rpc(#[from] neutrino_rpc::RpcError),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The server sent data the agent cannot use.
    #[error("bad data from the server: {0}")]
    Model(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// dnsmasq could not be started or controlled.
    #[error("dnsmasq: {0}")]
    Dnsmasq(String),
    /// The agent was stopped.
    #[error("the DHCP agent is stopped")]
    Stopped,
}

impl DhcpError {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DhcpError::Io { context: context.into(), source }
    }
}

/// Result alias of the DHCP agent.
pub type Result<T, E = DhcpError> = std::result::Result<T, E>;
