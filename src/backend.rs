//! [`DieselBackend`]: the pool, the codec and shared state behind every store.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use sayiir_core::codec::SnapshotCodec;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::pool::{self, ConnectFn, PgPool};

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
    pub(crate) codec: C,
    pub(crate) keep_history: bool,
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
            _codec: PhantomData,
        }
    }

    /// Uses the application's own pool. `url` is used once, to apply pending
    /// migrations on a dedicated connection (pass the same database).
    ///
    /// # Errors
    /// Connection, migration or unsupported-server errors.
    pub async fn from_pool(pool: PgPool, url: &str) -> Result<Self> {
        crate::migrations::run(url).await?;
        Ok(Self::assemble(pool, &Config::new(url)))
    }

    fn assemble(pool: PgPool, config: &Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                codec: C::default(),
                keep_history: config.keep_history,
            }),
        }
    }
}

impl<C> DieselBackend<C> {
    /// The pool the backend queries through (share it with your own code).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// A pooled connection, or [`Error::Pool`] after the acquire timeout.
    pub(crate) async fn conn(&self) -> Result<Object<AsyncPgConnection>> {
        self.inner.pool.get().await.map_err(Error::from)
    }
}

/// Builder returned by [`DieselBackend::builder`].
pub struct Builder<C> {
    config: Config,
    connect: ConnectFn,
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

    /// Builds the pool and, unless disabled, applies pending migrations.
    ///
    /// # Errors
    /// Connection, pool, migration or unsupported-server errors.
    pub async fn build(self) -> Result<DieselBackend<C>> {
        if self.config.run_migrations {
            let conn = (self.connect)(&self.config.url).await?;
            crate::migrations::run_on(conn).await?;
        }
        let pool = pool::build(&self.config, Arc::clone(&self.connect))?;
        Ok(DieselBackend::assemble(pool, &self.config))
    }
}
