//! Store errors.

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A stored document is not valid JSON (a bug or a corrupted row).
    #[error("corrupt document in {table}: {source}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Parse error.
        source: serde_json::Error,
    },
    /// The database URL is not one we support.
    #[error("unsupported database URL '{0}' (use sqlite://PATH or postgresql://...)")]
    BadUrl(String),
    /// A listing's marker names no row the caller may see.
    #[error("marker {0} not found")]
    MarkerNotFound(String),
    /// A listing asked for something that cannot be expressed.
    #[error("bad query: {0}")]
    BadQuery(String),
    /// A migration failed.
    #[error("migration {component}/{version} failed: {source}")]
    Migration {
        /// Component name.
        component: String,
        /// Version number.
        version: i64,
        /// Cause.
        source: sqlx::Error,
    },
}

impl StoreError {
    /// Is this a unique-constraint violation?
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// Is this a serialization failure or deadlock that a retry would cure?
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40001") | Some("40P01"))
            }
            _ => false,
        }
    }
}

impl From<StoreError> for neutrino_lib::Fault {
    fn from(e: StoreError) -> Self {
        use neutrino_lib::Fault;
        // A race that the database settled is the caller's conflict, not a
        // server failure: the same request may be retried.
        if e.is_unique_violation() {
            tracing::info!(error = %e, "concurrent change refused by a unique constraint");
            return Fault::conflict("Conflict", "The request conflicts with a concurrent change; retry it.");
        }
        if e.is_retryable() {
            tracing::info!(error = %e, "transaction lost a race (serialization failure or deadlock)");
            return Fault::conflict("Conflict", "The request conflicts with a concurrent change; retry it.");
        }
        match e {
            StoreError::MarkerNotFound(m) => Fault::not_found("NotFound", format!("Marker {m} could not be found.")),
            StoreError::BadQuery(q) => Fault::bad_request(format!("Invalid query: {q}")),
            e => {
                tracing::error!(error = %e, "store failure");
                Fault::internal()
            }
        }
    }
}
