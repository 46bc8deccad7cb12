//! The crate's one error type and its mapping to the persistence crate's
//! [`BackendError`] at the trait boundary.

use sayiir_persistence::BackendError;

/// Everything that can go wrong in `sayiir-diesel`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection could not be opened.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// The pool gave no connection (timed out, closed or failed to create one).
    #[error("connection pool: {0}")]
    Pool(String),
    /// The pool could not be built from the given settings.
    #[error("cannot build the connection pool: {0}")]
    PoolBuild(String),
    /// Applying or reverting migrations failed.
    #[error("migrations: {0}")]
    Migration(String),
    /// The server is older than the oldest supported PostgreSQL.
    #[error("PostgreSQL {found} is not supported: sayiir-diesel needs PostgreSQL 13 or newer")]
    UnsupportedServer {
        /// The version string the server reported.
        found: String,
    },
    /// A statement failed on the server or the connection broke.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// A snapshot could not be encoded or a stored blob could not be decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// A caller passed a value that cannot be stored (empty id, NUL byte…).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The named instance (or claim) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation is not allowed in the workflow's current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Stored data broke an invariant of ours (e.g. a hash of the wrong length).
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for BackendError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotFound(what) => BackendError::NotFound(what),
            Error::Codec(msg) => BackendError::Serialization(msg),
            other => BackendError::Backend(other.to_string()),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Error::Pool(err.to_string())
    }
}

/// Rejects values PostgreSQL cannot store in `TEXT` (NUL bytes) and empty ids.
pub(crate) fn check_id(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidInput(format!("{what} must not be empty")));
    }
    check_text(what, value)
}

/// Rejects text containing a NUL byte, which PostgreSQL `TEXT` cannot hold.
pub(crate) fn check_text(what: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "{what} contains a NUL byte, which PostgreSQL text cannot store"
        )));
    }
    Ok(())
}

impl Error {
    /// Whether retrying can help: the connection or pool failed, the server
    /// is restarting or terminated the session, a statement was cancelled
    /// (statement timeout, conflict with recovery), or a transaction lost a
    /// serialization or deadlock race.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match self {
            Error::Pool(_)
            | Error::Connection(_)
            | Error::Database(D::BrokenTransactionManager) => true,
            Error::Database(D::DatabaseError(kind, info)) => match kind {
                DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::ClosedConnection => true,
                _ => {
                    let m = info.message();
                    [
                        "terminating connection",
                        "the database system is",
                        "deadlock detected",
                        "connection",
                        "too many clients",
                        "canceling statement due to",
                    ]
                    .iter()
                    .any(|needle| m.contains(needle))
                }
            },
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_backend_error_keeping_the_cause() {
        let e: BackendError = Error::Codec("bad magic".into()).into();
        assert!(matches!(e, BackendError::Serialization(m) if m == "bad magic"));
        let e: BackendError = Error::NotFound("wf".into()).into();
        assert!(matches!(e, BackendError::NotFound(m) if m == "wf"));
        let e: BackendError = Error::Pool("timed out".into()).into();
        assert!(matches!(e, BackendError::Backend(m) if m.contains("timed out")));
    }

    #[test]
    fn rejects_nul_and_empty() {
        assert!(check_id("instance id", "").is_err());
        assert!(check_id("instance id", "a\0b").is_err());
        assert!(check_id("instance id", "ok").is_ok());
        assert!(check_text("tag", "").is_ok());
    }
}
