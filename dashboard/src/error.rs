//! What a read or an action failed with.

/// Why an [`inspect`](crate::inspect) read or an [`act`](crate::act)
/// action failed. What a workflow's state refuses is not an error but an
/// [`Outcome`](crate::act::Outcome).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement failed (the schema is not migrated, the role may not
    /// read or write it, the server went away…).
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// No connection could be opened.
    #[error("cannot connect: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// A store call of an action failed.
    #[error("store: {0}")]
    Store(#[from] sayiir_persistence::BackendError),
    /// The request cannot be answered as given, e.g. an age too large or a
    /// page size out of range.
    #[error("{0}")]
    Input(String),
}
