//! [`DieselBackend`]: the pool, the codec and shared state behind every store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use sayiir_core::codec::SnapshotCodec;

use crate::config::Config;
use crate::dispatch::MAINTENANCE_EVERY;
use crate::error::{Error, Result};
use crate::pool::{ConnectFn, PgPool};
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
    /// [`Builder::read_url`](crate::Builder::read_url)'s pool, if any.
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
    /// The claims this backend granted, under which a save or a release
    /// may be made again (`store::retry`).
    pub(crate) held: crate::dispatch::HeldClaims,
    /// The background pruner, when
    /// [`Builder::retention`](crate::Builder::retention) set one; dropping it
    /// stops the task.
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
    /// The backend on a built pool: starts the wakeup listener and, when
    /// the config asks for one, the background pruner.
    pub(crate) async fn assemble(
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
                held: crate::dispatch::HeldClaims::default(),
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

    /// The pool for report-style reads:
    /// [`Builder::read_url`](crate::Builder::read_url)'s (a standby, whose
    /// data lags the primary), or else the main pool. Run
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

    /// [`crate::retention::prune`] on a connection from the backend's pool.
    ///
    /// # Errors
    /// No pooled connection, or a statement failed.
    #[tracing::instrument(level = "debug", skip(self), err)]
    pub async fn prune(
        &self,
        policy: &crate::retention::RetentionPolicy,
    ) -> Result<crate::retention::PruneReport> {
        let mut conn = self.conn().await?;
        crate::retention::prune(&mut conn, policy).await
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
