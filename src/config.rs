//! Connection and pool settings, with their defaults.

use std::time::Duration;

use crate::pool::Settings;

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
/// Default time a finder's pick stays offered to the worker it was handed
/// to, ahead of other workers' finders (see [`Config::offer_lease`]).
pub const DEFAULT_OFFER_LEASE: Duration = Duration::from_secs(2);
/// Default `application_name`, visible in `pg_stat_activity`.
pub const DEFAULT_APPLICATION_NAME: &str = "sayiir-diesel";

/// Settings for a [`DieselBackend`](crate::DieselBackend), as its
/// [`Builder`](crate::Builder) sets them: the builder is the one way to set
/// them ([`DieselBackend::builder`](crate::DieselBackend::builder)), and
/// [`Builder::config`](crate::Builder::config) shows them. Read-only for
/// you: new settings may be added in any release.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// How long the tasks a finder hands to a worker stay offered to it.
    /// Other workers' finders return tasks offered to no one first, and
    /// fill the rest of their limit with tasks offered to others, oldest
    /// offer first: workers polling at once get different batches, yet a
    /// claimable task is never hidden from anyone. It only steers finders:
    /// a claim is what decides. `Duration::ZERO` turns it off. Default
    /// [`DEFAULT_OFFER_LEASE`].
    pub offer_lease: Duration,
    /// A background pruner: the retention policy and how often it runs
    /// (first pass right after start-up; periods under
    /// [`retention::MIN_PERIOD`](crate::retention::MIN_PERIOD) are raised to
    /// it). Default `None`: no pruning unless you call
    /// [`crate::retention::prune`] yourself.
    pub retention: Option<(crate::retention::RetentionPolicy, Duration)>,
    /// A server for report-style reads (a streaming standby), served by
    /// [`DieselBackend::read_pool`](crate::DieselBackend::read_pool), with
    /// at most [`READ_POOL_MAX`] connections. Never used by the store
    /// itself, whose reads must see its own writes. Default `None`: the
    /// read pool is the main pool.
    pub read_url: Option<String>,
}

/// The most connections the read pool of [`Config::read_url`] opens.
pub const READ_POOL_MAX: usize = 4;

impl Config {
    /// The settings of the pool the backend builds itself, on [`Config::url`].
    pub(crate) fn pool_settings(&self) -> Settings<'_> {
        Settings {
            url: &self.url,
            max_connections: self.max_connections,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            statement_timeout: self.statement_timeout,
            idle_in_transaction_timeout: self.idle_in_transaction_timeout,
            application_name: &self.application_name,
        }
    }

    /// Defaults for `url`.
    #[must_use]
    pub(crate) fn new(url: impl Into<String>) -> Self {
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
            offer_lease: DEFAULT_OFFER_LEASE,
            retention: None,
            read_url: None,
        }
    }
}
