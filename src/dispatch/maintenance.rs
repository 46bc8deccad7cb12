//! The finder's periodic maintenance (at most every [`MAINTENANCE_EVERY`]
//! per backend): advancing due parks and recovering crashed workflows.
//!
//! * `AtDelay` past `wake_at`: move to the next task, or complete with the
//!   delay's output when it was the last node.
//! * `AtSignal` with a buffered event (oldest first) or past its timeout:
//!   record the payload (empty on timeout) under the signal node and move on.
//! * Recovery (SPEC 4.7): InProgress at `AtTask(t)` with `t`'s output
//!   recorded and no live claim for the recovery grace period. That is what
//!   a worker leaves when it dies between its commit save and the next save
//!   (after a final task, a loop body's last task, a fork without join).
//!   `t` leaves the membership and the input pointer goes back to what it
//!   was before `t` completed (read from `history`), so a worker runs `t`
//!   once more and the runtime's normal path finishes the workflow.
//!
//! * A cancel or pause request pending on an instance no worker holds
//!   (SPEC 3.10: workers only apply requests after claiming, and the finder
//!   never offers an instance with a pending request, so neither reference
//!   backend ever applies it): applied here, cancel first, exactly as
//!   `check_and_cancel` / `check_and_pause` would.
//!
//! Each row is one short transaction: lock it with `SKIP LOCKED`, re-check
//! under the lock, write through the shared write path (which notifies).
//! Cost: one query for due rows, one for the queue sample (metrics), then
//! 4–6 round trips per advanced row, one more for a delay, whose commit
//! does not wait for the WAL flush (see [`Self::advance`]). A pass that finds a full batch
//! ([`MAINTENANCE_BATCH`] rows) makes the next finder call run another pass
//! at once.
//!
//! [`MAINTENANCE_EVERY`]: super::MAINTENANCE_EVERY
//! [`MAINTENANCE_BATCH`]: MAINTENANCE_BATCH

use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::{
    ExecutionPosition, SignalKind, WorkflowSnapshot, WorkflowSnapshotState,
};

use crate::backend::DieselBackend;
use crate::error::{Error, Result};
use crate::kinds::Status;
use crate::models::{claims, events, history, signals, task_outputs, tasks, workflows};
use crate::persist::Persist;
use crate::session::commit_without_waiting;
use crate::snapshots::{applies_here, apply_request, is_queued, resume_at_signal};
use crate::telemetry;

/// Rows advanced per maintenance pass, at most.
const MAINTENANCE_BATCH: i64 = 64;
/// History rows inspected to find a recovered task's input.
const HISTORY_LOOKBACK: i64 = 8;

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// Advances due parks and recovers rows stuck at a completed task.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn maintain(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        let grace = self.inner.recovery_grace.as_secs_f64() * 1000.0;
        let due = tasks::due(conn, grace, MAINTENANCE_BATCH).await?;
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= MAINTENANCE_BATCH;
        for instance_id in due {
            self.maintain_row(conn, &instance_id).await?;
        }
        if full {
            self.inner.maintenance_again();
        }
        drop_dead_claims(conn).await;
        sample_queue(conn).await;
        crate::telemetry::maintenance_pass();
        Ok(())
    }

    /// Moves one queue row on if it is due (see [`Self::advance`]),
    /// removes it if its workflow no longer belongs in the queue, and sets
    /// it aside if it cannot be decoded.
    pub(crate) async fn maintain_row(
        &self,
        conn: &mut AsyncPgConnection,
        instance_id: &str,
    ) -> Result<()> {
        match self.advance(conn, instance_id).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_transient() => Err(e),
            // A row that cannot be decoded must not fail the finder for
            // everyone: set it aside (its next write clears that).
            Err(e @ (Error::Codec(_) | Error::Corrupt(_))) => {
                self.quarantine(conn, instance_id, &e).await
            }
            // Anything else is not the row's fault: leave it for the next
            // pass.
            Err(e) => {
                tracing::error!(instance_id, error = %e, "maintenance could not move a row on; trying again on the next pass");
                Ok(())
            }
        }
    }

    /// One short transaction: lock the row (skipping it when another
    /// session holds it), re-check everything under the lock (on the
    /// database clock), move it on, notify.
    #[tracing::instrument(level = "debug", skip(self, conn))]
    async fn advance(&self, conn: &mut AsyncPgConnection, instance_id: &str) -> Result<()> {
        conn.transaction(async |conn| {
            let Some((locked, now)) = workflows::lock_unless_busy(conn, instance_id).await? else {
                return Ok(());
            };
            // `claim_task` takes the same row lock, so no claim appears
            // while we hold it: a worker that holds the instance decides.
            if claims::is_live(conn, instance_id).await? {
                return Ok(());
            }
            let snapshot = if locked.status == Status::InProgress {
                Some(locked.decode(&self.inner.codec)?)
            } else {
                None
            };
            let Some(mut snapshot) = snapshot.filter(is_queued) else {
                // A queue row a concurrent write left behind.
                return tasks::delete(conn, instance_id).await;
            };
            if self.apply_pending_request(conn, &mut snapshot).await? {
                return Ok(());
            }
            let woken = matches!(
                snapshot.state,
                WorkflowSnapshotState::InProgress {
                    position: ExecutionPosition::AtDelay { .. },
                    ..
                }
            );
            let Some(outputs) = self.move_on(conn, &mut snapshot, now).await? else {
                return Ok(());
            };
            if woken {
                // A delay moved on carries nothing new: it is derived from
                // the stored park and the clock. Lost in a crash, the
                // park is back and the next pass moves it on again, and
                // the claim of the task after it (a durable commit) can
                // only be acknowledged once this commit is on disk too.
                commit_without_waiting(conn).await?;
            }
            self.inner.metrics.count_advanced();
            self.persist(conn, &mut snapshot, &outputs, Persist::Notify)
                .await?;
            Ok(())
        })
        .await
    }

    /// A pending request nobody applies (no worker holds the instance):
    /// applied here, cancel first, as a worker would at a task boundary.
    async fn apply_pending_request(
        &self,
        conn: &mut AsyncPgConnection,
        snapshot: &mut WorkflowSnapshot,
    ) -> Result<bool> {
        let instance_id = snapshot.instance_id.to_string();
        for kind in [SignalKind::Cancel, SignalKind::Pause] {
            if !applies_here(snapshot, kind) {
                continue;
            }
            if let Some(signal) = signals::find(conn, &instance_id, kind).await? {
                // An expired claim (nobody holds a live one here) loses its
                // step: evidence for a step that runs again after unpause.
                if let Some((task, worker)) = claims::holder(conn, &instance_id).await? {
                    telemetry::claim_ended(&instance_id, &worker, task, kind.as_ref());
                }
                let at = snapshot.current_task_id();
                apply_request(snapshot, kind, signal.into_request(), at);
                self.persist(conn, snapshot, &[], Persist::Quiet).await?;
                signals::delete(conn, &instance_id, kind).await?;
                self.inner.metrics.count_advanced();
                tracing::info!(
                    instance_id,
                    kind = kind.as_ref(),
                    "applied a pending request to an unclaimed workflow"
                );
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves a due park on, or recovers a crashed task. `None`: nothing to do.
    async fn move_on(
        &self,
        conn: &mut AsyncPgConnection,
        snapshot: &mut WorkflowSnapshot,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<(TaskId, Bytes)>>> {
        let instance_id = snapshot.instance_id.to_string();
        let WorkflowSnapshotState::InProgress {
            position,
            completed_tasks,
            ..
        } = &snapshot.state
        else {
            return Ok(None);
        };
        match position.clone() {
            ExecutionPosition::AtDelay {
                delay_id,
                wake_at,
                next_task_id,
                ..
            } if wake_at <= now => {
                if let Some(task_id) = next_task_id {
                    snapshot.update_position(ExecutionPosition::AtTask { task_id });
                } else {
                    // Outputs are stripped in the blob: read the stored one.
                    let out = if completed_tasks.contains_key(&delay_id) {
                        task_outputs::find(conn, &instance_id, delay_id)
                            .await?
                            .map(Bytes::from)
                    } else {
                        None
                    };
                    snapshot.mark_completed(out.unwrap_or_default());
                }
                Ok(Some(Vec::new()))
            }
            ExecutionPosition::AtSignal {
                signal_name,
                wake_at,
                ..
            } => match events::pop_oldest(conn, &instance_id, &signal_name).await? {
                Some(payload) => Ok(Some(resume_at_signal(snapshot, Bytes::from(payload)))),
                None if wake_at.is_some_and(|w| w <= now) => {
                    Ok(Some(resume_at_signal(snapshot, Bytes::new())))
                }
                None => {
                    // No event for this wait after all (another name, or
                    // consumed): stop looking until the next park. Under
                    // the workflow lock, so a new event finds the park.
                    tasks::stop_event_wait(conn, &instance_id).await?;
                    Ok(None)
                }
            },
            ExecutionPosition::AtTask { task_id } if completed_tasks.contains_key(&task_id) => {
                // Picked for another reason (a pending request), or a
                // worker is between its commit and its next save: only a
                // row that meets the recovery rule is recovered.
                if !self.recovery_due(conn, &instance_id, now).await? {
                    return Ok(None);
                }
                let Some(input_from) = self.input_of(conn, &instance_id, task_id).await? else {
                    let err = Error::Corrupt(format!(
                        "cannot recover task {task_id}: its input is unknown (no queue record, history pruned or disabled)"
                    ));
                    self.quarantine(conn, &instance_id, &err).await?;
                    return Ok(None);
                };
                snapshot.remove_task_result(&task_id);
                if let WorkflowSnapshotState::InProgress {
                    last_completed_task_id,
                    ..
                } = &mut snapshot.state
                {
                    *last_completed_task_id = input_from;
                }
                self.inner.metrics.count_recovered();
                tracing::warn!(instance_id, %task_id, "recovering a workflow left at a completed task (its worker died after saving the output); the task runs once more");
                Ok(Some(Vec::new()))
            }
            _ => Ok(None),
        }
    }

    /// The recovery rule of the maintenance scan, checked again under the
    /// workflow lock: nothing written for the recovery grace, and a
    /// claim-holding worker was driving it (it released after the last
    /// write, or its claim expired).
    async fn recovery_due(
        &self,
        conn: &mut AsyncPgConnection,
        instance_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let tasks::Activity {
            queued_at,
            released_at,
            claimed_until,
        } = tasks::activity(conn, instance_id).await?;
        let grace =
            chrono::Duration::from_std(self.inner.recovery_grace).unwrap_or(chrono::Duration::MAX);
        let quiet = now.signed_duration_since(queued_at) >= grace;
        let driven = released_at.is_some_and(|r| r >= queued_at) || claimed_until.is_some();
        Ok(quiet && driven)
    }

    /// The task whose output is `task_id`'s input (`Some(None)`: the initial
    /// input), from the queue row, else from history.
    async fn input_of(
        &self,
        conn: &mut AsyncPgConnection,
        instance_id: &str,
        task_id: TaskId,
    ) -> Result<Option<Option<TaskId>>> {
        if let Some(from) = tasks::input_from(conn, instance_id).await? {
            return Ok(Some(from));
        }
        input_before(conn, &self.inner.codec, instance_id, task_id).await
    }
}

/// Deletes the dead claims of Paused and finished workflows (see
/// [`claims::delete_dead_of_stopped_workflows`]); one statement. A failure
/// is logged and left for the next pass.
async fn drop_dead_claims(conn: &mut AsyncPgConnection) {
    match claims::delete_dead_of_stopped_workflows(conn).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            claims = n,
            "dropped expired claims of paused or finished workflows"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not drop dead claims; trying again on the next pass");
        }
    }
}

/// Samples the dispatch queue into the queue metrics (one statement). A
/// failure is logged and skipped: metrics never fail a finder.
async fn sample_queue(conn: &mut AsyncPgConnection) {
    match tasks::sample(conn, crate::telemetry::QUEUE_DEPTH_CAP).await {
        Ok(s) => crate::telemetry::queue_sample(s.depth, s.oldest_age_secs),
        Err(e) => tracing::warn!(error = %e, "could not sample the dispatch queue for metrics"),
    }
}

/// The `last_completed_task_id` of the latest earlier snapshot at
/// `AtTask(task_id)` that did not yet record `task_id`: the task's input.
/// `Some(None)` means the initial input; `None` means no such snapshot.
async fn input_before<C: SnapshotCodec>(
    conn: &mut AsyncPgConnection,
    codec: &C,
    instance_id: &str,
    task_id: TaskId,
) -> Result<Option<Option<TaskId>>> {
    let blobs = history::snapshots_at_task(conn, instance_id, task_id, HISTORY_LOOKBACK).await?;
    for blob in blobs {
        // An old entry this codec cannot read tells nothing; try the next.
        let Ok(earlier) = crate::codec::decode(codec, &blob) else {
            continue;
        };
        if let WorkflowSnapshotState::InProgress {
            completed_tasks,
            last_completed_task_id,
            ..
        } = &earlier.state
            && !completed_tasks.contains_key(&task_id)
        {
            return Ok(Some(*last_completed_task_id));
        }
    }
    Ok(None)
}
