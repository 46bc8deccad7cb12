//! [`Builder`]: the settings of a [`DieselBackend`] and the boot sequence
//! that turns them into one (migrations, pool, boot checks).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use sayiir_core::codec::SnapshotCodec;

use crate::backend::DieselBackend;
use crate::config::{Config, READ_POOL_MAX};
use crate::error::Result;
use crate::pool::{self, ConnectFn, PgPool};

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

    /// How long a finder's picks stay offered to the polling worker, ahead
    /// of other workers' finders (default 2 s; `Duration::ZERO` turns it off; see [`Config::offer_lease`]).
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
            None => pool::build(&self.config.pool_settings(), Arc::clone(&self.connect))?,
        };
        crate::boot_check::check_pool(&pool, limit).await?;
        let read_pool = match &self.config.read_url {
            Some(url) => {
                let settings = pool::Settings {
                    url,
                    max_connections: self.config.max_connections.min(READ_POOL_MAX),
                    ..self.config.pool_settings()
                };
                Some(pool::build(&settings, Arc::clone(&self.connect))?)
            }
            None => None,
        };
        DieselBackend::assemble(pool, read_pool, &self.config, self.connect).await
    }
}
