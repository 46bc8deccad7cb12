//! The optional background pruner (`Builder::retention`): one task per
//! backend that runs [`super::prune`] on a pooled connection right after
//! start-up and then every period, and stops, dropping its pool handle,
//! when the last clone of the backend drops (the same way the wakeup
//! listener stops).

use std::time::Duration;

use tokio::sync::oneshot;

use super::RetentionPolicy;
use crate::pool::PgPool;

/// The shortest period between two passes; shorter ones are raised to it.
pub const MIN_PERIOD: Duration = Duration::from_secs(1);

/// Held by the backend's shared state; dropping it stops the task.
pub(crate) struct Pruner {
    _stop: oneshot::Sender<()>,
}

impl Pruner {
    /// Spawns the task (on the current Tokio runtime).
    pub(crate) fn start(pool: PgPool, policy: RetentionPolicy, every: Duration) -> Self {
        let (stop_tx, stop_rx) = oneshot::channel();
        tokio::spawn(run(pool, policy, every.max(MIN_PERIOD), stop_rx));
        Self { _stop: stop_tx }
    }
}

async fn run(
    pool: PgPool,
    policy: RetentionPolicy,
    every: Duration,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        // A pass cut short by the stop drops its connection mid-statement;
        // the pool discards a connection left inside a transaction.
        tokio::select! {
            _ = &mut stop => return,
            () = pass(&pool, &policy) => {}
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[tracing::instrument(level = "debug", name = "retention_pass", skip_all)]
async fn pass(pool: &PgPool, policy: &RetentionPolicy) {
    let mut conn = match pool.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "background pruner: no connection; trying next period");
            return;
        }
    };
    match super::prune(&mut conn, policy).await {
        Ok(report) if report.total() > 0 => {
            tracing::info!(?report, "background pruner removed rows");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "background pruner failed; trying next period"),
    }
}
