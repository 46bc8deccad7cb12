//! [`DieselBackend`]: the pool, the codec and shared state behind every store.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use sayiir_core::codec::SnapshotCodec;

use crate::config::Config;
use crate::dispatch::MAINTENANCE_EVERY;
use crate::error::{Error, Result};
use crate::pool::{self, ConnectFn, PgPool};
use crate::telemetry::{self, Counters, WakeupCounters};
use crate::wakeup::Wakeup;

/// A Sayiir persistence backend on PostgreSQL through Diesel.
///
/// Cheap to clone: clones share the pool and all state. Implements the
/// `sayiir-persistence` 1.0 store traits, so `sayiir-runtime`'s
/// `CheckpointingRunner`, `PooledWorker` and `WorkflowClient` run on it.
/// `C` is the snapshot codec (`JsonCodec` today).
pub struct DieselBackend<C> {
    pub(crate) inner: Arc<Inner<C>>,
}

pub(crate) struct Inner<C> {
    pub(crate) pool: PgPool,
    /// [`Builder::read_url`]'s pool, if any.
    read_pool: Option<PgPool>,
    pub(crate) codec: C,
    pub(crate) keep_history: bool,
    pub(crate) recovery_grace: Duration,
    pub(crate) offer_lease: Duration,
    pub(crate) wakeup: Wakeup,
    pub(crate) metrics: Counters,
    pub(crate) wakeup_counters: Arc<WakeupCounters>,
    /// The workflow revision each finder answer was read at.
    pub(crate) seen: crate::dispatch::SeenRevisions,
    /// The background pruner, when [`Builder::retention`] set one; dropping
    /// it stops the task.
    _pruner: Option<crate::retention::Pruner>,
    /// Milliseconds since `started` of the last maintenance pass.
    last_maintenance: AtomicU64,
    started: Instant,
}

impl<C> Inner<C> {
    /// True at most once per [`MAINTENANCE_EVERY`] (the first call included).
    pub(crate) fn maintenance_due(&self) -> bool {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let every = u64::try_from(MAINTENANCE_EVERY.as_millis()).unwrap_or(u64::MAX);
        let last = self.last_maintenance.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_maintenance
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Makes the next [`Inner::maintenance_due`] true: a pass that found a
    /// full batch of due rows lets the next finder call run another, so a
    /// burst (10 k delays expiring together) is not held to one batch per
    /// [`MAINTENANCE_EVERY`].
    pub(crate) fn maintenance_again(&self) {
        self.last_maintenance.store(0, Ordering::Relaxed);
    }
}

/// A point-in-time copy of the backend's counters. The same numbers, and
/// more, are emitted through the `metrics` facade (see [`crate::telemetry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Metrics {
    /// Rows the finder skipped because their snapshot could not be decoded
    /// (see `sayiir.tasks.quarantined`).
    pub quarantined: u64,
    /// Workflows recovered after a crash between an output save and the
    /// next state save (the task ran once more).
    pub recovered: u64,
    /// Parks advanced by the finder (delays, events, signal timeouts) and recoveries.
    pub advanced: u64,
    /// Transient failures the finder retried.
    pub retries: u64,
    /// Wakeup notifications handed to the waiters' queue.
    pub wakeups_delivered: u64,
    /// Wakeups dropped because the queue was full.
    pub wakeups_dropped: u64,
    /// Times the listener reconnected.
    pub listener_reconnects: u64,
}

impl<C> Clone for DieselBackend<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> std::fmt::Debug for DieselBackend<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DieselBackend")
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Default + Send + Sync + 'static,
{
    /// Connects with default settings: builds the pool and applies pending
    /// migrations (under an advisory lock, safe when many processes boot at
    /// once).
    ///
    /// # Errors
    /// Connection, migration or unsupported-server errors.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).build().await
    }

    /// A builder for pool size, timeouts, `application_name` and a custom
    /// connector (TLS).
    #[must_use]
    pub fn builder(url: &str) -> Builder<C> {
        Builder {
            config: Config::new(url),
            connect: pool::default_connector(),
            pool: None,
            _codec: PhantomData,
        }
    }

    /// Uses the application's own pool. `url` is used to apply pending
    /// migrations on a dedicated connection (pass the same database) and for
    /// the wakeup listener. The same as `builder(url).pool(pool).build()`,
    /// which also takes the other options.
    ///
    /// # Errors
    /// Connection, migration or unsupported-server errors.
    pub async fn from_pool(pool: PgPool, url: &str) -> Result<Self> {
        Self::builder(url).pool(pool).build().await
    }

    async fn assemble(
        pool: PgPool,
        read_pool: Option<PgPool>,
        config: &Config,
        connect: ConnectFn,
    ) -> Result<Self> {
        telemetry::describe();
        let wakeup_counters = Arc::new(WakeupCounters::default());
        let wakeup =
            Wakeup::start(config.url.clone(), connect, Arc::clone(&wakeup_counters)).await?;
        let pruner = config
            .retention
            .clone()
            .map(|(policy, every)| crate::retention::Pruner::start(pool.clone(), policy, every));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                read_pool,
                codec: C::default(),
                keep_history: config.keep_history,
                recovery_grace: config.recovery_grace,
                offer_lease: config.offer_lease,
                wakeup,
                metrics: Counters::default(),
                wakeup_counters,
                seen: crate::dispatch::SeenRevisions::default(),
                _pruner: pruner,
                last_maintenance: AtomicU64::new(0),
                started: Instant::now(),
            }),
        })
    }
}

impl<C> DieselBackend<C> {
    /// The pool the backend queries through (share it with your own code).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The pool for report-style reads: [`Builder::read_url`]'s (a standby,
    /// whose data lags the primary), or else the main pool. Run
    /// [`crate::reports`] fragments on it; the store never uses it.
    #[must_use]
    pub fn read_pool(&self) -> &PgPool {
        self.inner.read_pool.as_ref().unwrap_or(&self.inner.pool)
    }

    /// The backend's counters (shared by every clone).
    #[must_use]
    pub fn metrics(&self) -> Metrics {
        let m = &self.inner.metrics;
        let w = &self.inner.wakeup_counters;
        Metrics {
            quarantined: m.quarantined.load(Ordering::Relaxed),
            recovered: m.recovered.load(Ordering::Relaxed),
            advanced: m.advanced.load(Ordering::Relaxed),
            retries: m.retries.load(Ordering::Relaxed),
            wakeups_delivered: w.delivered.load(Ordering::Relaxed),
            wakeups_dropped: w.dropped.load(Ordering::Relaxed),
            listener_reconnects: w.reconnects.load(Ordering::Relaxed),
        }
    }

    /// A pooled connection, or [`Error::Pool`] after the acquire timeout.
    /// The wait and the pool's state are recorded as metrics.
    pub(crate) async fn conn(&self) -> Result<Object<AsyncPgConnection>> {
        let started = Instant::now();
        let conn = self.inner.pool.get().await;
        telemetry::pool_checkout(started.elapsed(), self.inner.pool.status());
        conn.map_err(Error::from)
    }
}

/// Builder returned by [`DieselBackend::builder`].
pub struct Builder<C> {
    config: Config,
    connect: ConnectFn,
    pool: Option<PgPool>,
    _codec: PhantomData<fn() -> C>,
}

impl<C> Builder<C>
where
    C: SnapshotCodec + Default + Send + Sync + 'static,
{
    /// Maximum pooled connections (default 16).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }

    /// How long to wait for a free connection before failing (default 10 s).
    #[must_use]
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.config.acquire_timeout = d;
        self
    }

    /// How long opening a connection may take (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Server-side `statement_timeout` (default 30 s; `None`: server default).
    #[must_use]
    pub fn statement_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.statement_timeout = d.into();
        self
    }

    /// Server-side `idle_in_transaction_session_timeout` (default 60 s).
    #[must_use]
    pub fn idle_in_transaction_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.idle_in_transaction_timeout = d.into();
        self
    }

    /// `application_name` of every connection (default `sayiir-diesel`).
    #[must_use]
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.config.application_name = name.into();
        self
    }

    /// Apply pending migrations in `build` (default `true`). Turn it off when
    /// your deployment runs [`crate::migrations::run`] itself.
    #[must_use]
    pub fn run_migrations(mut self, yes: bool) -> Self {
        self.config.run_migrations = yes;
        self
    }

    /// Append every accepted snapshot write to `sayiir.history` (default `true`).
    #[must_use]
    pub fn keep_history(mut self, yes: bool) -> Self {
        self.config.keep_history = yes;
        self
    }

    /// Crash-recovery grace period (default 30 s; see [`Config::recovery_grace`]).
    #[must_use]
    pub fn recovery_grace(mut self, d: Duration) -> Self {
        self.config.recovery_grace = d;
        self
    }

    /// How long a finder's picks stay reserved for the polling worker
    /// (default 2 s; `Duration::ZERO` turns it off; see [`Config::offer_lease`]).
    #[must_use]
    pub fn offer_lease(mut self, d: Duration) -> Self {
        self.config.offer_lease = d;
        self
    }

    /// Runs [`crate::retention::prune`] with `policy` in a background task,
    /// right after `build` and then every `every` (at least
    /// [`crate::retention::MIN_PERIOD`]), on a pooled connection; it stops
    /// when the last clone of the backend drops. Off by default. Failures
    /// are logged and tried again next period.
    #[must_use]
    pub fn retention(mut self, policy: crate::retention::RetentionPolicy, every: Duration) -> Self {
        self.config.retention = Some((policy, every));
        self
    }

    /// Queries through the application's own pool instead of building one
    /// (the pool options of this builder then do not apply: the pool's own
    /// settings do). Migrations and the wakeup listener still connect to the
    /// builder's URL, through [`Builder::connector`].
    #[must_use]
    pub fn pool(mut self, pool: PgPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Serves [`DieselBackend::read_pool`] from `url`, typically a streaming
    /// standby, for reports and dashboards (see [`Config::read_url`]). Its
    /// data lags the primary by the standby's replay delay
    /// (`now() - pg_last_xact_replay_timestamp()` on the standby: usually
    /// milliseconds, unbounded while replication is stalled), so it never
    /// serves the store's own reads. Connections open through
    /// [`Builder::connector`] with this builder's pool settings, at most
    /// [`crate::config::READ_POOL_MAX`] of them, lazily.
    #[must_use]
    pub fn read_url(mut self, url: impl Into<String>) -> Self {
        self.config.read_url = Some(url.into());
        self
    }

    /// Opens every connection with `connect` (for TLS or other setup).
    #[must_use]
    pub fn connector(mut self, connect: ConnectFn) -> Self {
        self.connect = connect;
        self
    }

    /// The settings so far.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Builds the pool and, unless disabled, applies pending migrations;
    /// checks that the pool (and, with an application's pool, the URL) gives
    /// real sessions on a server that accepts writes (see [`crate::boot_check`]).
    ///
    /// # Errors
    /// Connection, pool, migration or unsupported-server errors, or
    /// [`Error::TransactionPooler`](crate::Error::TransactionPooler) or
    /// [`Error::ReadOnlyServer`](crate::Error::ReadOnlyServer).
    pub async fn build(self) -> Result<DieselBackend<C>> {
        if self.config.run_migrations {
            let mut conn = (self.connect)(&self.config.url).await?;
            crate::boot_check::check_writable("the builder's URL", &mut conn).await?;
            crate::migrations::run_on(conn).await?;
        }
        let limit = self.config.connect_timeout;
        let pool = match self.pool {
            Some(pool) => {
                // The application's pool and the URL may reach the server
                // differently: check both.
                crate::boot_check::check_url(&self.connect, &self.config.url, limit).await?;
                pool
            }
            None => pool::build(&self.config, Arc::clone(&self.connect))?,
        };
        crate::boot_check::check_pool(&pool, limit).await?;
        let read_pool = match &self.config.read_url {
            Some(url) => {
                let mut config = self.config.clone();
                config.url.clone_from(url);
                config.max_connections = config.max_connections.min(crate::config::READ_POOL_MAX);
                Some(pool::build(&config, Arc::clone(&self.connect))?)
            }
            None => None,
        };
        DieselBackend::assemble(pool, read_pool, &self.config, self.connect).await
    }
}
