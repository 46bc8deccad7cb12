//! The crate's one error type and its mapping to the persistence crate's
//! [`BackendError`] at the trait boundary.

use sayiir_persistence::BackendError;

use crate::kinds::Status;

mod transient;

pub use transient::{Recognised, TRANSIENT, Transient};

/// Everything that can go wrong in `sayiir-diesel`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection could not be opened.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// The pool gave no connection (timed out, closed or failed to create
    /// one).
    #[error("connection pool: {0}")]
    Pool(#[source] BoxError),
    /// The wakeup listener's dedicated connection (connect, then `LISTEN`)
    /// was not ready in time. Transient: the listener tries again.
    #[error("LISTEN connection not ready within {waited:?}")]
    ListenerTimeout {
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// The pool could not be built from the given settings.
    #[error("cannot build the connection pool: {0}")]
    PoolBuild(#[source] BoxError),
    /// Applying or reverting migrations failed.
    #[error("migrations: {0}")]
    Migration(#[source] BoxError),
    /// The server is older than the oldest supported PostgreSQL.
    #[error("PostgreSQL {found} is not supported: sayiir-diesel needs PostgreSQL 13 or newer")]
    UnsupportedServer {
        /// The version string the server reported.
        found: String,
    },
    /// A statement failed on the server or the connection broke.
    #[error("database: {message}")]
    Database {
        /// The SQLSTATE, where the driver keeps it: diesel-async turns
        /// eight conditions into an error kind (unique, foreign key,
        /// restrict, exclusion, not-null and check violations,
        /// serialization failure, read-only transaction) and drops the code
        /// of every other, which are `None` here.
        code: Option<&'static str>,
        /// The server's (or the driver's) message.
        message: String,
        /// The driver's error.
        #[source]
        source: diesel::result::Error,
    },
    /// A snapshot could not be encoded or a stored blob could not be decoded
    /// (the envelope's or the codec's error).
    #[error("codec: {0}")]
    Codec(#[source] BoxError),
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
        status: Status,
    },
    /// A pause was requested for a workflow that already finished.
    #[error("cannot pause a workflow that is {status}")]
    CannotPause {
        /// The workflow's stored status.
        status: Status,
    },
    /// `unpause` was called on a workflow that is not paused.
    #[error("workflow is not paused (current state: \"{status}\")")]
    NotPaused {
        /// The workflow's stored status.
        status: Status,
    },
    /// The claim is held by another worker.
    #[error("claim owned by different worker: {owner}")]
    ClaimedByOther {
        /// The worker holding it.
        owner: String,
    },
    /// A write made again after a failure found that the claim it was made
    /// under is no longer its worker's (taken over, or gone): it was not
    /// made, since it could land over the work of whoever took the step
    /// over (`store::retry`).
    #[error("the claim on {instance_id} is no longer {worker_id}'s (now {now}): not written again")]
    ClaimLost {
        /// The workflow.
        instance_id: String,
        /// The worker the write was made for.
        worker_id: String,
        /// What holds the workflow now ("no claim", or a worker's claim).
        now: String,
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

/// The cause an error variant carries when it comes from a library whose
/// error type is itself a boxed error (the codec, the migration harness,
/// the pool).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Short alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The trait boundary: each variant maps to the persistence crate's error
/// the runtime expects (the texts are the ones SPEC 1.8 gives).
impl From<Error> for BackendError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotFound(what) => BackendError::NotFound(what),
            Error::Codec(cause) => BackendError::Serialization(cause.to_string()),
            Error::CannotCancel { status } => BackendError::CannotCancel(status.to_string()),
            Error::CannotPause { status } => BackendError::CannotPause(status.to_string()),
            Error::NotPaused { status } => BackendError::CannotPause(format!(
                "Workflow is not paused (current state: {:?})",
                status.as_str()
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
        Error::Pool(Box::new(err))
    }
}

impl From<diesel::result::Error> for Error {
    fn from(source: diesel::result::Error) -> Self {
        Error::Database {
            code: sqlstate(&source),
            message: source.to_string(),
            source,
        }
    }
}

/// The SQLSTATE of the error kinds diesel keeps.
fn sqlstate(err: &diesel::result::Error) -> Option<&'static str> {
    use diesel::result::DatabaseErrorKind as K;
    let diesel::result::Error::DatabaseError(kind, _) = err else {
        return None;
    };
    Some(match kind {
        K::UniqueViolation => "23505",
        K::ForeignKeyViolation => "23503",
        K::RestrictViolation => "23001",
        K::ExclusionViolation => "23P01",
        K::NotNullViolation => "23502",
        K::CheckViolation => "23514",
        K::SerializationFailure => "40001",
        K::ReadOnlyTransaction => "25006",
        _ => return None,
    })
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
            status: Status::Completed,
        }
        .into();
        assert!(matches!(e, BackendError::CannotCancel(s) if s == "Completed"));
        let e: BackendError = Error::ClaimedByOther { owner: "w2".into() }.into();
        assert!(
            matches!(e, BackendError::Backend(m) if m == "Claim owned by different worker: w2")
        );
        let e: BackendError = Error::NotPaused {
            status: Status::InProgress,
        }
        .into();
        assert!(
            matches!(e, BackendError::CannotPause(m) if m == "Workflow is not paused (current state: \"InProgress\")")
        );
    }

    #[test]
    fn database_errors_keep_their_cause_and_the_sqlstate_diesel_keeps() {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        use std::error::Error as _;
        let unique = Error::from(D::DatabaseError(
            K::UniqueViolation,
            Box::new(String::from("duplicate key")),
        ));
        assert!(
            matches!(&unique, Error::Database { code: Some("23505"), message, .. } if message == "duplicate key")
        );
        assert!(unique.source().is_some());
        assert!(!unique.is_transient());
        let other = Error::from(D::NotFound);
        assert!(matches!(other, Error::Database { code: None, .. }));
    }
}
