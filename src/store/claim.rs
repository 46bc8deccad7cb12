//! `TaskClaimStore`: claims, the finder, hinted lookups and wakeups.
//!
//! | call | round trips |
//! |---|---|
//! | `claim_task` | 1 (locks the workflow row, checks position and recorded output, upserts the claim) |
//! | `release_task_claim` | 1 (delete, owner check, wakeup when runnable) |
//! | `extend_task_claim` | 1 |
//! | `find_available_tasks` | 1 (every rule decided on the queue row before `LIMIT`, one index walk per priority level, picks offered to the worker and hydrated); plus, at most every [`MAINTENANCE_EVERY`], one query for due parks and stuck rows, one for the queue sample (metrics: claimable tasks up to a cap and the oldest one's age, through `tasks_runnable_idx`), and one short transaction (4 round trips) per row it advances |
//! | `find_hinted_task` | 1 |
//! | `wait_for_wakeup` | 0 (the listener connection delivers) |
//!
//! **Each step runs once.** `claim_task` locks the workflow row in the claim
//! statement and refuses a task whose output is already recorded, so a
//! worker holding a stale `AvailableTask` cannot claim a task another worker
//! has just finished (see SPEC 4.7), nor one whose copy was read at an
//! older workflow revision than the row's (a loop body's next iteration
//! looks the same otherwise: see `seen.rs`). The crash window this closes (output
//! saved, workflow not moved on) is recovered by the finder's maintenance:
//! such a row with no live claim for [`Config::recovery_grace`] gets the
//! task's membership removed, so a worker runs it once more.
//!
//! [`Config::recovery_grace`]: crate::Config::recovery_grace

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Double, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_core::task_claim::{AvailableTask, TaskClaim};
use sayiir_persistence::{BackendError, TaskClaimStore, TaskWakeupHint};

use super::{StoredSnapshot, task_input};
use crate::DieselBackend;
use crate::error::{Error, Result, check_id, check_key, check_text};
use crate::queries::{CLAIM_TASK, EXTEND_CLAIM, FIND_HINTED, FIND_TASKS, RELEASE_CLAIM, Raw};
use crate::schema::sayiir::tasks;
use crate::telemetry::{self, Counters, Op, Refusal, store_call};

/// How long a row that cannot be decoded is set aside the first time.
pub const QUARANTINE_BACKOFF: Duration = Duration::from_mins(1);

/// Due parks and stuck rows are looked for at most this often per backend.
pub const MAINTENANCE_EVERY: Duration = Duration::from_millis(500);

#[derive(diesel::QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
    /// The workflow is at that task and may be claimed (a refusal then
    /// means another live claim holds it).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    runnable: bool,
    /// An expired claim was on record (a claim taken replaced it).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    expired_claim: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    claimed_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    expires_at: Option<i64>,
}

/// A finder pick: its hydrated workflow, the workflow revision it was read
/// at, and whether the workflow row still matches the queue row.
#[derive(diesel::QueryableByName)]
struct FoundRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    current: bool,
    #[diesel(sql_type = BigInt)]
    revision: i64,
    #[diesel(embed)]
    stored: StoredSnapshot,
}

/// A hinted pick and the workflow revision it was read at.
#[derive(diesel::QueryableByName)]
struct HintedRow {
    #[diesel(sql_type = BigInt)]
    revision: i64,
    #[diesel(embed)]
    stored: StoredSnapshot,
}

#[derive(diesel::QueryableByName)]
struct ClaimChange {
    #[diesel(sql_type = BigInt)]
    matched: i64,
    /// Wakeups the statement issued (`release` only).
    #[diesel(sql_type = BigInt)]
    woke: i64,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
}

fn millis(d: chrono::Duration) -> i64 {
    d.num_milliseconds()
}

fn epoch(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0)
}

fn claim_error(
    instance_id: &str,
    task_id: TaskId,
    worker_id: &str,
    owner: Option<String>,
) -> Error {
    match owner {
        Some(owner) if owner != worker_id => Error::ClaimedByOther { owner },
        _ => Error::NotFound(format!("{instance_id}:{task_id}")),
    }
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    async fn take_claim(
        &self,
        instance_id: &str,
        task_id: TaskId,
        worker_id: &str,
        ttl: Option<chrono::Duration>,
    ) -> Result<Option<TaskClaim>> {
        check_id("instance id", instance_id)?;
        check_key("worker id", worker_id)?;
        let seen = self.inner.seen.take(worker_id, instance_id, task_id);
        let mut conn = self.conn().await?;
        let row: ClaimRow = Raw::new(CLAIM_TASK)
            .bind::<Text, _>(instance_id)
            .bind::<Bytea, _>(task_id.as_bytes().as_slice())
            .bind::<Text, _>(worker_id)
            .bind::<Nullable<BigInt>, _>(ttl.map(millis))
            .bind::<Nullable<BigInt>, _>(seen)
            .get_result(&mut conn)
            .await?;
        if !row.found {
            telemetry::claim_refused(Refusal::NotFound);
            return Err(Error::NotFound(format!("{instance_id}:{task_id}")));
        }
        match (row.claimed_at.is_some(), row.runnable) {
            (true, _) => telemetry::claim_taken(row.expired_claim),
            (false, true) => telemetry::claim_refused(Refusal::Claimed),
            (false, false) => telemetry::claim_refused(Refusal::NotRunnable),
        }
        Ok(row.claimed_at.map(|claimed_at| TaskClaim {
            instance_id: Arc::from(instance_id),
            task_id,
            worker_id: worker_id.to_owned(),
            claimed_at: epoch(claimed_at),
            expires_at: row.expires_at.map(epoch),
        }))
    }

    async fn change_claim(
        &self,
        sql: &'static str,
        instance_id: &str,
        task_id: TaskId,
        worker_id: &str,
        additional: Option<chrono::Duration>,
    ) -> Result<()> {
        check_id("instance id", instance_id)?;
        check_key("worker id", worker_id)?;
        let mut conn = self.conn().await?;
        let mut query = Raw::new(sql)
            .bind::<Text, _>(instance_id)
            .bind::<Bytea, _>(task_id.as_bytes().as_slice())
            .bind::<Text, _>(worker_id);
        if let Some(additional) = additional {
            query = query.bind::<BigInt, _>(millis(additional));
        }
        let row: ClaimChange = query.get_result(&mut conn).await?;
        telemetry::wakeups_sent(row.woke);
        if row.matched > 0 {
            Ok(())
        } else {
            Err(claim_error(instance_id, task_id, worker_id, row.owner))
        }
    }

    /// One finder query, then hydration; rows that cannot be decoded are
    /// quarantined and skipped.
    async fn find_once(
        &self,
        worker_id: &str,
        limit: i64,
        aging_secs: f64,
        worker_tags: &[String],
    ) -> Result<Vec<AvailableTask>> {
        let mut conn = self.conn().await?;
        if self.inner.maintenance_due() {
            self.maintain(&mut conn).await?;
        }
        let rows: Vec<FoundRow> = Raw::new(FIND_TASKS)
            .bind::<Text, _>(worker_id)
            .bind::<Double, _>(aging_secs)
            .bind::<Array<Text>, _>(worker_tags)
            .bind::<BigInt, _>(limit)
            .bind::<Double, _>(self.inner.offer_lease.as_secs_f64() * 1000.0)
            .load(&mut conn)
            .await?;
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
                self.inner
                    .seen
                    .found(worker_id, &task.instance_id, task.task_id, row.revision);
                found.push(task);
            }
        }
        Ok(found)
    }

    /// Decodes a finder row into an `AvailableTask`, quarantining it when
    /// its blob cannot be decoded.
    async fn available(
        &self,
        conn: &mut AsyncPgConnection,
        row: StoredSnapshot,
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

    /// Marks a queue row the finder must skip (its snapshot cannot be
    /// decoded), logs and counts it. The next write of the workflow clears
    /// it; otherwise maintenance puts it back after a back-off that starts
    /// at [`QUARANTINE_BACKOFF`] and doubles each time, up to 1024 times that.
    pub(super) async fn quarantine(
        &self,
        conn: &mut AsyncPgConnection,
        instance_id: &str,
        err: &Error,
    ) -> Result<()> {
        self.inner.metrics.count_quarantined();
        tracing::error!(instance_id, error = %err, "skipping a workflow whose snapshot cannot be decoded");
        diesel::update(tasks::table.find(instance_id))
            .set((
                tasks::quarantined.eq(err.to_string()),
                tasks::stalls.eq(tasks::stalls + 1),
                // now() + QUARANTINE_BACKOFF · 2^min(stalls, 10), on the
                // database clock.
                tasks::retry_at.eq(
                    diesel::dsl::sql::<Nullable<diesel::sql_types::Timestamptz>>("now() + ")
                        .bind::<Double, _>(QUARANTINE_BACKOFF.as_secs_f64())
                        .sql(" * interval '1 second' * power(2, least(stalls, 10))"),
                ),
            ))
            .execute(conn)
            .await?;
        Ok(())
    }

    /// `find_available_tasks` with transient failures retried (capped
    /// back-off, logged) so that a database hiccup never ends a worker.
    async fn find_tasks(
        &self,
        worker_id: &str,
        limit: usize,
        aging: chrono::Duration,
        worker_tags: &[String],
    ) -> Result<Vec<AvailableTask>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        check_key("worker id", worker_id)?;
        for tag in worker_tags {
            check_text("worker tag", tag)?;
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        #[allow(clippy::cast_precision_loss)]
        let aging_secs = (aging.num_milliseconds() as f64 / 1000.0).max(1.0);
        Ok(
            retry_transient("find_available_tasks", &self.inner.metrics, || {
                self.find_once(worker_id, limit, aging_secs, worker_tags)
            })
            .await?
            .unwrap_or_default(),
        )
    }

    async fn find_hinted(&self, hint: &TaskWakeupHint) -> Result<Option<AvailableTask>> {
        if check_id("instance id", &hint.instance_id).is_err() {
            return Ok(None);
        }
        let mut conn = self.conn().await?;
        let row: Option<HintedRow> = Raw::new(FIND_HINTED)
            .bind::<Text, _>(hint.instance_id.as_str())
            .bind::<Bytea, _>(hint.task_id.as_slice())
            .get_result(&mut conn)
            .await
            .optional()?;
        let Some(row) = row else {
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
}

/// How long the finders keep retrying transient failures before answering
/// "nothing found" so the worker's loop can see its shutdown signal and
/// poll again.
pub const RETRY_BUDGET: Duration = Duration::from_secs(30);

/// Runs `op` until it succeeds, fails with an error retrying cannot fix, or
/// [`RETRY_BUDGET`] has passed (then `Ok(None)`). Transient failures
/// (connection lost, server restarting, pool timeout, statement timeout)
/// are logged, counted and retried with back-off capped at 5 s, because the
/// runtime's `PooledWorker` ends its loop on any error from the finders.
async fn retry_transient<T, F, Fut>(what: &str, metrics: &Counters, mut op: F) -> Result<Option<T>>
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

impl<C> TaskClaimStore for DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id, %worker_id))]
    async fn claim_task(
        &self,
        instance_id: &str,
        task_id: &TaskId,
        worker_id: &str,
        ttl: Option<chrono::Duration>,
    ) -> Result<Option<TaskClaim>, BackendError> {
        let _timer = store_call(Op::ClaimTask);
        Ok(self
            .take_claim(instance_id, *task_id, worker_id, ttl)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id, %worker_id))]
    async fn release_task_claim(
        &self,
        instance_id: &str,
        task_id: &TaskId,
        worker_id: &str,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::ReleaseTaskClaim);
        self.change_claim(RELEASE_CLAIM, instance_id, *task_id, worker_id, None)
            .await
            .map_err(BackendError::from)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id, %worker_id))]
    async fn extend_task_claim(
        &self,
        instance_id: &str,
        task_id: &TaskId,
        worker_id: &str,
        additional_duration: chrono::Duration,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::ExtendTaskClaim);
        self.change_claim(
            EXTEND_CLAIM,
            instance_id,
            *task_id,
            worker_id,
            Some(additional_duration),
        )
        .await
        .map_err(BackendError::from)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%worker_id, limit = limit))]
    async fn find_available_tasks(
        &self,
        worker_id: &str,
        limit: usize,
        aging_interval: chrono::Duration,
        worker_tags: &[String],
    ) -> Result<Vec<AvailableTask>, BackendError> {
        let _timer = store_call(Op::FindAvailableTasks);
        Ok(self
            .find_tasks(worker_id, limit, aging_interval, worker_tags)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn wait_for_wakeup(
        &self,
        timeout: Duration,
    ) -> Result<Option<TaskWakeupHint>, BackendError> {
        let _timer = store_call(Op::WaitForWakeup);
        Ok(self.inner.wakeup.wait(timeout).await)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(instance_id = %hint.instance_id, task_id = %TaskId::from_bytes(hint.task_id))
    )]
    async fn find_hinted_task(
        &self,
        hint: &TaskWakeupHint,
    ) -> Result<Option<AvailableTask>, BackendError> {
        let _timer = store_call(Op::FindHintedTask);
        Ok(
            retry_transient("find_hinted_task", &self.inner.metrics, || {
                self.find_hinted(hint)
            })
            .await?
            .flatten(),
        )
    }
}
