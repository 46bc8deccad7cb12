//! `TaskClaimStore`: claims, the finder, hinted lookups and wakeups.
//!
//! | call | round trips |
//! |---|---|
//! | `claim_task` | 1 (locks the workflow row, checks position and recorded output, upserts the claim) |
//! | `release_task_claim` | 0 after a save that recorded the claimed task's output (the save ended the claim: `store::snapshot`); else 1 (delete, owner check, wakeup when runnable), and after a failure at most two more, plus one read back when the commit is in doubt (`store::retry`) |
//! | `extend_task_claim` | 1 |
//! | `find_available_tasks` | 1 (every rule decided on the queue row before `LIMIT`, one index walk per priority level, picks offered to the worker and hydrated); plus, at most every 500 ms (`dispatch::MAINTENANCE_EVERY`), one query for due parks and stuck rows, one delete of the dead claims of paused or finished workflows, one for the queue sample (metrics: claimable tasks up to a cap and the oldest one's age, through `tasks_runnable_idx`), and one short transaction (4 round trips) per row it advances |
//! | `find_hinted_task` | 1 |
//! | `wait_for_wakeup` | 0 (the listener connection delivers) |
//!
//! **Each step runs once.** `claim_task` locks the workflow row in the claim
//! statement and refuses a task whose output is already recorded, so a
//! worker holding a stale `AvailableTask` cannot claim a task another worker
//! has just finished (see SPEC 4.7), nor one whose copy was read at an
//! older workflow revision than the row's (a loop body's next iteration
//! looks the same otherwise: see `dispatch/seen.rs`). The crash window this closes (output
//! saved, workflow not moved on) is recovered by the finder's maintenance:
//! such a row with no live claim for [`Config::recovery_grace`] gets the
//! task's membership removed, so a worker runs it once more.
//!
//! [`Config::recovery_grace`]: crate::Config::recovery_grace

use std::sync::Arc;
use std::time::{Duration, Instant};

use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::task_claim::{AvailableTask, TaskClaim};
use sayiir_persistence::{BackendError, TaskClaimStore, TaskWakeupHint};

use crate::backend::DieselBackend;
use crate::dispatch::{Poll, retry_transient};
use crate::error::Error;
use crate::input::{check_id, check_key, check_text};
use crate::models::claims::{self, ClaimChange};
use crate::telemetry::{self, Op, Refusal, Step, reported, store_call};

use super::retry::Next;

fn epoch(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0)
}

/// The outcome of a release or an extension: `Ok` when the worker's claim
/// matched, else who holds the instance instead (or `NotFound`).
fn claim_changed(
    change: &ClaimChange,
    instance_id: &str,
    task_id: TaskId,
    worker_id: &str,
) -> Result<(), Error> {
    telemetry::wakeups_sent(change.woke);
    if change.matched > 0 {
        return Ok(());
    }
    match &change.owner {
        Some(owner) if owner != worker_id => Err(Error::ClaimedByOther {
            owner: owner.clone(),
        }),
        _ => Err(Error::NotFound(format!("{instance_id}:{task_id}"))),
    }
}

/// The claimed step a claim call is about, for its evidence event.
fn step<'a>(instance_id: &'a str, task_id: TaskId, worker_id: &'a str) -> Step<'a> {
    Step {
        instance: instance_id,
        task: Some(task_id),
        worker: Some(worker_id),
    }
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
        let started = Instant::now();
        let step = step(instance_id, *task_id, worker_id);
        let claimed = async {
            check_id("instance id", instance_id)?;
            check_key("worker id", worker_id)?;
            let seen = self.inner.seen.take(worker_id, instance_id, *task_id);
            let mut conn = self.conn().await?;
            let ttl_ms = ttl.map(|t| t.num_milliseconds());
            let row =
                claims::claim(&mut conn, instance_id, *task_id, worker_id, ttl_ms, seen).await?;
            if !row.found {
                telemetry::claim_refused(Refusal::NotFound);
                return Err(Error::NotFound(format!("{instance_id}:{task_id}")));
            }
            match (row.claimed_at.is_some(), row.runnable) {
                (true, _) => {
                    let ttl = ttl.map(|t| t.to_std().unwrap_or(Duration::ZERO));
                    self.inner
                        .held
                        .granted(instance_id, *task_id, worker_id, started, ttl);
                    telemetry::claim_taken(row.expired_holder.is_some());
                    if let (Some(worker), Some(task)) = (&row.expired_holder, &row.expired_task) {
                        telemetry::taken_over(step, worker, task);
                    }
                }
                (false, true) => telemetry::claim_refused(Refusal::Claimed),
                (false, false) => telemetry::claim_refused(Refusal::NotRunnable),
            }
            Ok(row.claimed_at.map(|claimed_at| TaskClaim {
                instance_id: Arc::from(instance_id),
                task_id: *task_id,
                worker_id: worker_id.to_owned(),
                claimed_at: epoch(claimed_at),
                expires_at: row.expires_at.map(epoch),
            }))
        }
        .await;
        reported(Op::ClaimTask, step, claimed)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id, %worker_id))]
    async fn release_task_claim(
        &self,
        instance_id: &str,
        task_id: &TaskId,
        worker_id: &str,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::ReleaseTaskClaim);
        let step = step(instance_id, *task_id, worker_id);
        let released = async {
            check_id("instance id", instance_id)?;
            check_key("worker id", worker_id)?;
            if self.inner.held.take_ended(instance_id, *task_id, worker_id) {
                // The save that recorded the task's output deleted this
                // claim and sent the wakeup: nothing is left to write.
                return Ok(());
            }
            let under = self.under(instance_id);
            let mut tries = 0;
            loop {
                // A release deletes only its own worker's claim on its
                // task: made again, it needs no fence.
                let attempt = async {
                    let mut conn = self.conn().await?;
                    claims::release(&mut conn, instance_id, *task_id, worker_id).await
                }
                .await;
                let error = match attempt {
                    Ok(change) => return claim_changed(&change, instance_id, *task_id, worker_id),
                    Err(error) => error,
                };
                tries += 1;
                let landed = move || async move {
                    let mut conn = self.conn().await?;
                    Ok(!claims::held_by(&mut conn, instance_id, worker_id).await?)
                };
                match self
                    .after_failure(
                        Op::ReleaseTaskClaim,
                        step,
                        tries,
                        &error,
                        under.as_ref(),
                        landed,
                    )
                    .await
                {
                    Next::Again => {}
                    Next::Done => return Ok(()),
                    Next::GiveUp => return Err(error),
                }
            }
        }
        .await;
        self.inner.held.released(instance_id, *task_id, worker_id);
        reported(Op::ReleaseTaskClaim, step, released)
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
        let extended = async {
            check_id("instance id", instance_id)?;
            check_key("worker id", worker_id)?;
            let mut conn = self.conn().await?;
            let additional_ms = additional_duration.num_milliseconds();
            let change =
                claims::extend(&mut conn, instance_id, *task_id, worker_id, additional_ms).await?;
            claim_changed(&change, instance_id, *task_id, worker_id)?;
            let by = additional_duration.to_std().unwrap_or(Duration::ZERO);
            self.inner.held.extended(instance_id, by);
            Ok(())
        }
        .await;
        let step = step(instance_id, *task_id, worker_id);
        reported(Op::ExtendTaskClaim, step, extended)
    }

    /// Transient failures (a lost connection, a restarting server, a pool
    /// timeout) are retried for up to 30 s, then answered with nothing
    /// found: a database hiccup never ends a worker's loop.
    #[tracing::instrument(level = "debug", skip_all, fields(%worker_id, limit = limit))]
    async fn find_available_tasks(
        &self,
        worker_id: &str,
        limit: usize,
        aging_interval: chrono::Duration,
        worker_tags: &[String],
    ) -> Result<Vec<AvailableTask>, BackendError> {
        let _timer = store_call(Op::FindAvailableTasks);
        if limit == 0 {
            return Ok(Vec::new());
        }
        check_key("worker id", worker_id)?;
        for tag in worker_tags {
            check_text("worker tag", tag)?;
        }
        #[allow(clippy::cast_precision_loss)]
        let poll = Poll {
            worker_id,
            aging_secs: (aging_interval.num_milliseconds() as f64 / 1000.0).max(1.0),
            worker_tags,
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            offer_ms: self.inner.offer_lease.as_secs_f64() * 1000.0,
        };
        Ok(
            retry_transient("find_available_tasks", &self.inner.metrics, || {
                self.find_once(&poll)
            })
            .await?
            .unwrap_or_default(),
        )
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
