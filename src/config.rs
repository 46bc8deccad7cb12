//! Connection and pool settings, with their defaults.

use std::time::Duration;

/// Default maximum number of pooled connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16;
/// Default time `get` waits for a free pooled connection before failing.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed to open a new connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default server-side `statement_timeout` for pooled connections.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default server-side `idle_in_transaction_session_timeout`.
pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_mins(1);
/// Default crash-recovery grace period (see [`Config::recovery_grace`]).
pub const DEFAULT_RECOVERY_GRACE: Duration = Duration::from_secs(30);
/// Default `application_name`, visible in `pg_stat_activity`.
pub const DEFAULT_APPLICATION_NAME: &str = "sayiir-diesel";

/// Settings for a [`DieselBackend`](crate::DieselBackend); build it with
/// [`DieselBackend::builder`](crate::DieselBackend::builder).
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL URL (`postgres://user:pass@host:port/db`).
    pub url: String,
    /// Maximum pooled connections. Default [`DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// How long to wait for a pooled connection; `get` never waits forever.
    /// Default [`DEFAULT_ACQUIRE_TIMEOUT`].
    pub acquire_timeout: Duration,
    /// How long opening a connection may take. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// `statement_timeout` set on every pooled connection (`None`: server
    /// default). Default [`DEFAULT_STATEMENT_TIMEOUT`].
    pub statement_timeout: Option<Duration>,
    /// `idle_in_transaction_session_timeout` set on every pooled connection
    /// (`None`: server default). Default [`DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT`].
    pub idle_in_transaction_timeout: Option<Duration>,
    /// `application_name` of every connection. Default [`DEFAULT_APPLICATION_NAME`].
    pub application_name: String,
    /// Apply pending migrations at start-up. Default `true`.
    pub run_migrations: bool,
    /// Append every accepted snapshot write to `sayiir.history`. Default `true`.
    pub keep_history: bool,
    /// How long a workflow may sit at a task whose output is recorded, with
    /// no live claim, before the finder makes that task runnable again
    /// (crash recovery, SPEC 4.7). Default [`DEFAULT_RECOVERY_GRACE`].
    pub recovery_grace: Duration,
}

impl Config {
    /// Defaults for `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            idle_in_transaction_timeout: Some(DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT),
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
            run_migrations: true,
            keep_history: true,
            recovery_grace: DEFAULT_RECOVERY_GRACE,
        }
    }
}
