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
    /// A caller passed a value that cannot be stored (empty id, NUL byte,
    /// too long…).
    #[error("invalid input: {what} {why}")]
    InvalidInput {
        /// What was refused ("instance id", "worker tag"…).
        what: &'static str,
        /// Why, as a phrase that follows `what`.
        why: String,
    },
    /// The named instance (or claim) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A cancel was requested for a workflow that already finished.
    #[error("cannot cancel a workflow that is {status}")]
    CannotCancel {
        /// The workflow's stored status.
        status: String,
    },
    /// A pause was requested for a workflow that already finished.
    #[error("cannot pause a workflow that is {status}")]
    CannotPause {
        /// The workflow's stored status.
        status: String,
    },
    /// `unpause` was called on a workflow that is not paused.
    #[error("workflow is not paused (current state: {status:?})")]
    NotPaused {
        /// The workflow's stored state.
        status: String,
    },
    /// The claim is held by another worker.
    #[error("claim owned by different worker: {owner}")]
    ClaimedByOther {
        /// The worker holding it.
        owner: String,
    },
    /// Stored data broke an invariant of ours (e.g. a hash of the wrong length).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Connections reach the server through a pooler that does not keep a
    /// session on one server connection (PgBouncer in transaction or
    /// statement mode): see [`crate::boot_check`].
    #[error(
        "{what} goes through a pooler in transaction or statement mode ({evidence}); \
         sayiir-diesel needs session-level connections (named prepared statements, \
         LISTEN, session settings): use PgBouncer's session mode, or connect to the \
         server directly"
    )]
    TransactionPooler {
        /// Which connections ("the pool", "the builder's URL").
        what: &'static str,
        /// What the boot-time check saw.
        evidence: String,
    },
    /// Connections reach a server that accepts no writes (a standby in
    /// recovery, or `default_transaction_read_only`): see
    /// [`crate::boot_check`].
    #[error(
        "{what} reaches a server that accepts no writes ({evidence}); give the backend \
         the primary's URL, or list every server with target_session_attrs=read-write"
    )]
    ReadOnlyServer {
        /// Which connections ("the pool", "the builder's URL").
        what: &'static str,
        /// What the server said about itself.
        evidence: String,
    },
}

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The trait boundary: each variant maps to the persistence crate's error
/// the runtime expects (the texts are the ones SPEC 1.8 gives).
impl From<Error> for BackendError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotFound(what) => BackendError::NotFound(what),
            Error::Codec(msg) => BackendError::Serialization(msg),
            Error::CannotCancel { status } => BackendError::CannotCancel(status),
            Error::CannotPause { status } => BackendError::CannotPause(status),
            Error::NotPaused { status } => BackendError::CannotPause(format!(
                "Workflow is not paused (current state: {status:?})"
            )),
            Error::ClaimedByOther { owner } => {
                BackendError::Backend(format!("Claim owned by different worker: {owner}"))
            }
            other => BackendError::Backend(other.to_string()),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Error::Pool(err.to_string())
    }
}

/// The longest instance id, signal name or worker id we store, in bytes.
/// They are keys of btree indexes, whose entries PostgreSQL caps at about
/// 2.7 kB; the runtime itself caps instance ids at 256 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Rejects ids that cannot be stored: empty, with a NUL byte (PostgreSQL
/// `TEXT` cannot hold one) or longer than [`MAX_KEY_BYTES`].
pub(crate) fn check_id(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidInput {
            what,
            why: "must not be empty".to_owned(),
        });
    }
    check_key(what, value)
}

/// Rejects index keys (signal names, worker ids) with a NUL byte or longer
/// than [`MAX_KEY_BYTES`].
pub(crate) fn check_key(what: &'static str, value: &str) -> Result<()> {
    if value.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidInput {
            what,
            why: format!(
                "is {} bytes long; at most {MAX_KEY_BYTES} are allowed",
                value.len()
            ),
        });
    }
    check_text(what, value)
}

/// For lookups: an id that [`check_id`] refuses was never stored, so the
/// answer is `NotFound`, as for any absent instance.
pub(crate) fn check_lookup_id(value: &str) -> Result<()> {
    check_id("instance id", value).map_err(|_| Error::NotFound(value.to_owned()))
}

/// Rejects text containing a NUL byte, which PostgreSQL `TEXT` cannot hold.
pub(crate) fn check_text(what: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidInput {
            what,
            why: "contains a NUL byte, which PostgreSQL text cannot store".to_owned(),
        });
    }
    Ok(())
}

/// Server messages of transient conditions (see [`Error::is_transient`]).
const TRANSIENT_MESSAGES: &[&str] = &[
    "terminating connection",
    "the database system is",
    "deadlock detected",
    "connection",
    "too many clients",
    "too many connections",
    "canceling statement due to",
    "in a read-only transaction",
    "could not extend",
    "No space left",
    "out of memory",
];

impl Error {
    /// Whether retrying can help: a condition of the server or the network,
    /// not of the data or the statement. The table (diesel keeps no
    /// SQLSTATE, so the server's messages are matched where it gives no
    /// error kind):
    ///
    /// | condition | SQLSTATE | recognised by |
    /// |---|---|---|
    /// | pool timed out or closed, connect failed | | `Pool`, `Connection` |
    /// | connection lost, cannot send | 08xxx | error kind |
    /// | serialization failure | 40001 | error kind |
    /// | deadlock | 40P01 | "deadlock detected" |
    /// | read-only server (a standby, a failover in progress) | 25006 | error kind |
    /// | admin shutdown, crash shutdown, cannot connect now | 57P01–57P03 | "terminating connection", "the database system is" |
    /// | statement timeout, conflict with recovery, cancel | 57014, 40001 | "canceling statement due to" |
    /// | too many connections | 53300 | "too many clients", "too many connections" |
    /// | disk full, out of memory | 53100, 53200 | "could not extend", "No space left", "out of memory" |
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
                | DatabaseErrorKind::ReadOnlyTransaction
                | DatabaseErrorKind::ClosedConnection => true,
                _ => TRANSIENT_MESSAGES
                    .iter()
                    .any(|needle| info.message().contains(needle)),
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
        let e: BackendError = Error::CannotCancel {
            status: "Completed".into(),
        }
        .into();
        assert!(matches!(e, BackendError::CannotCancel(s) if s == "Completed"));
        let e: BackendError = Error::ClaimedByOther { owner: "w2".into() }.into();
        assert!(
            matches!(e, BackendError::Backend(m) if m == "Claim owned by different worker: w2")
        );
        let e: BackendError = Error::NotPaused {
            status: "InProgress".into(),
        }
        .into();
        assert!(
            matches!(e, BackendError::CannotPause(m) if m == "Workflow is not paused (current state: \"InProgress\")")
        );
    }

    #[test]
    fn rejects_nul_empty_and_too_long() {
        assert!(check_id("instance id", &"x".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(matches!(
            check_id("instance id", &"x".repeat(MAX_KEY_BYTES + 1)),
            Err(Error::InvalidInput { what: "instance id", why }) if why.contains("1025 bytes")
        ));
        assert!(check_key("worker id", &"w".repeat(5000)).is_err());
        assert!(matches!(check_lookup_id(""), Err(Error::NotFound(_))));
        assert!(check_id("instance id", "").is_err());
        assert!(check_id("instance id", "a\0b").is_err());
        assert!(check_id("instance id", "ok").is_ok());
        assert!(check_text("tag", "").is_ok());
    }
}
