//! The finders: one statement each (see [`crate::models::tasks`]), then
//! hydration; rows that cannot be decoded are quarantined and skipped, and
//! transient failures are retried so that a database hiccup never ends a
//! worker's loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel_async::AsyncPgConnection;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_core::task_claim::AvailableTask;
use sayiir_persistence::TaskWakeupHint;

use crate::backend::DieselBackend;
use crate::error::{Error, Result};
use crate::models::tasks;
use crate::models::workflows::Stored;
use crate::snapshots::task_input;
use crate::telemetry::Counters;

pub(crate) use crate::models::tasks::Poll;

/// How long a row that cannot be decoded is set aside the first time.
pub const QUARANTINE_BACKOFF: Duration = Duration::from_mins(1);

/// Due parks and stuck rows are looked for at most this often per backend.
pub const MAINTENANCE_EVERY: Duration = Duration::from_millis(500);

/// How long the finders keep retrying transient failures before answering
/// "nothing found" so the worker's loop can see its shutdown signal and
/// poll again.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// One finder query (after a maintenance pass when one is due), then
    /// hydration. Each pick's revision is remembered for `claim_task`.
    pub(crate) async fn find_once(&self, poll: &Poll<'_>) -> Result<Vec<AvailableTask>> {
        let mut conn = self.conn().await?;
        if self.inner.maintenance_due() {
            self.maintain(&mut conn).await?;
        }
        let rows = tasks::find(&mut conn, poll).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            if !row.current {
                // Left behind by a racing write, or moved on while the
                // finder ran: maintenance decides under the workflow lock.
                self.maintain_row(&mut conn, &row.stored.instance_id)
                    .await?;
                continue;
            }
            if let Some(task) = self.available(&mut conn, row.stored).await? {
                self.inner.seen.found(
                    poll.worker_id,
                    &task.instance_id,
                    task.task_id,
                    row.revision,
                );
                found.push(task);
            }
        }
        Ok(found)
    }

    /// The hinted task when the finder's rules would hand it out now.
    pub(crate) async fn find_hinted(&self, hint: &TaskWakeupHint) -> Result<Option<AvailableTask>> {
        if crate::input::check_id("instance id", &hint.instance_id).is_err() {
            return Ok(None);
        }
        let mut conn = self.conn().await?;
        let Some(row) = tasks::find_hinted(
            &mut conn,
            hint.instance_id.as_str(),
            hint.task_id.as_slice(),
        )
        .await?
        else {
            return Ok(None);
        };
        let task = self.available(&mut conn, row.stored).await?;
        if let Some(task) = &task {
            self.inner
                .seen
                .hinted(&task.instance_id, task.task_id, row.revision);
        }
        Ok(task)
    }

    /// Decodes a finder row into an `AvailableTask`, quarantining it when
    /// its blob cannot be decoded.
    async fn available(
        &self,
        conn: &mut AsyncPgConnection,
        row: Stored,
    ) -> Result<Option<AvailableTask>> {
        let instance_id = row.instance_id.clone();
        match row.into_snapshot(&self.inner.codec) {
            Ok(snapshot) => Ok(to_available(snapshot)),
            Err(err) => {
                self.quarantine(conn, &instance_id, &err).await?;
                Ok(None)
            }
        }
    }

    /// Sets aside a queue row the finder must skip (its snapshot cannot be
    /// decoded), logs and counts it. The next write of the workflow clears
    /// it; otherwise maintenance puts it back after a back-off that starts
    /// at [`QUARANTINE_BACKOFF`] and doubles each time, up to 1024 times that.
    pub(crate) async fn quarantine(
        &self,
        conn: &mut AsyncPgConnection,
        instance_id: &str,
        err: &Error,
    ) -> Result<()> {
        self.inner.metrics.count_quarantined();
        tracing::error!(instance_id, error = %err, "skipping a workflow whose snapshot cannot be decoded");
        tasks::quarantine(
            conn,
            instance_id,
            &err.to_string(),
            QUARANTINE_BACKOFF.as_secs_f64(),
        )
        .await
    }
}

/// Runs `op` until it succeeds, fails with an error retrying cannot fix, or
/// [`RETRY_BUDGET`] has passed (then `Ok(None)`). Transient failures
/// (connection lost, server restarting, pool timeout, statement timeout)
/// are logged, counted and retried with back-off capped at 5 s, because the
/// runtime's `PooledWorker` ends its loop on any error from the finders.
pub(crate) async fn retry_transient<T, F, Fut>(
    what: &str,
    metrics: &Counters,
    mut op: F,
) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(50);
    let started = Instant::now();
    loop {
        match op().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_transient() => {
                metrics.count_retry();
                if started.elapsed() >= RETRY_BUDGET {
                    tracing::error!(error = %e, "{what}: still failing after {RETRY_BUDGET:?}; reporting nothing found");
                    return Ok(None);
                }
                tracing::warn!(error = %e, ?delay, elapsed = ?started.elapsed(), "{what}: transient failure, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

fn to_available(snapshot: WorkflowSnapshot) -> Option<AvailableTask> {
    let task_id = snapshot.current_task_id()?;
    let input = task_input(&snapshot)?;
    Some(AvailableTask {
        instance_id: Arc::clone(&snapshot.instance_id),
        task_id,
        input,
        workflow_definition_hash: snapshot.definition_hash,
        trace_parent: snapshot.trace_parent.clone(),
        snapshot: Arc::new(snapshot),
    })
}
