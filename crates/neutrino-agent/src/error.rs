//! The agent crate's typed error.

use std::time::Duration;

/// Everything that can go wrong in the agent building blocks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error (socket, file, process spawn) with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being attempted.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An external command (`ip`, `ovs-ofctl`, ...) exited unsuccessfully.
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for diagnostics.
        command: String,
        /// Exit status as text (`exit status: 1`, `signal: 9`).
        status: String,
        /// What the command wrote to stderr (trimmed).
        stderr: String,
    },

    /// The OVSDB server answered a request with a JSON-RPC error.
    #[error("ovsdb rpc error in {method}: {error}")]
    Rpc {
        /// The JSON-RPC method.
        method: String,
        /// The error object as text.
        error: String,
    },

    /// An OVSDB transaction failed (an operation returned `{"error": ...}`).
    #[error("ovsdb transaction failed at operation {index}: {error}{}", details_suffix(.details))]
    Transaction {
        /// Index of the failing operation (or of the commit, past the last op).
        index: usize,
        /// The OVSDB error tag, e.g. `constraint violation`.
        error: String,
        /// The server's details, if any.
        details: Option<String>,
    },

    /// Connection to the OVSDB server was lost (or never established).
    #[error("ovsdb connection to {endpoint} lost: {reason}")]
    Disconnected {
        /// The endpoint, e.g. `unix:/tmp/x/db.sock`.
        endpoint: String,
        /// Why.
        reason: String,
    },

    /// The peer sent something that violates the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// Text produced by a tool could not be parsed.
    #[error("cannot parse {what}: {input:?}")]
    Parse {
        /// What kind of text.
        what: &'static str,
        /// The offending input (possibly abbreviated).
        input: String,
    },

    /// A JSON (de)serialisation error.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),

    /// A requested object does not exist.
    #[error("{kind} {name} not found")]
    NotFound {
        /// Kind of object (`bridge`, `interface`, `namespace`, ...).
        kind: &'static str,
        /// Its name.
        name: String,
    },

    /// Something that must not exist already does.
    #[error("{kind} {name} already exists")]
    AlreadyExists {
        /// Kind of object.
        kind: &'static str,
        /// Its name.
        name: String,
    },

    /// An operation did not complete in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long we waited.
        after: Duration,
    },

    /// An argument was invalid (bad name, out-of-range value, ...).
    #[error("invalid argument: {0}")]
    Invalid(String),
}

fn details_suffix(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    }
}

impl Error {
    /// Wraps an I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// A parse error, abbreviating long input.
    pub fn parse(what: &'static str, input: impl AsRef<str>) -> Self {
        let input = input.as_ref();
        let input = if input.len() > 200 {
            let mut end = 200;
            while !input.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}...", &input[..end])
        } else {
            input.to_string()
        };
        Error::Parse { what, input }
    }

    /// True if this error means the OVSDB connection is gone (the caller may retry).
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected { .. })
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
