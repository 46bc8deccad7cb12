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
//! Cost: one query for due rows, then 4–6 round trips per advanced row.
//!
//! [`MAINTENANCE_EVERY`]: super::MAINTENANCE_EVERY

use std::sync::atomic::Ordering;

use bytes::Bytes;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind, WorkflowSnapshotState};

use super::signal::{
    apply_request, delete_signal, pop_event, read_signal, resume_at_signal, to_request,
};
use super::write::{Write, write_snapshot};
use crate::DieselBackend;
use crate::error::{Error, Result};
use crate::queries::{DUE_WORK, Raw};
use crate::schema::sayiir::{claims, history, task_outputs, workflows};

/// Rows advanced per maintenance pass, at most.
const MAINTENANCE_BATCH: i64 = 64;
/// History rows inspected to find a recovered task's input.
const HISTORY_LOOKBACK: i64 = 8;

#[derive(diesel::QueryableByName)]
struct DueRow {
    #[diesel(sql_type = Text)]
    instance_id: String,
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// Advances due parks and recovers rows stuck at a completed task.
    pub(super) async fn maintain(&self, conn: &mut AsyncPgConnection) -> Result<()> {
        let grace = self.inner.recovery_grace.as_secs_f64() * 1000.0;
        let due: Vec<DueRow> = Raw::new(DUE_WORK)
            .bind::<Double, _>(grace)
            .bind::<BigInt, _>(MAINTENANCE_BATCH)
            .load(conn)
            .await?;
        for row in due {
            match self.advance(conn, &row.instance_id).await {
                Ok(()) => {}
                Err(Error::Codec(msg)) => {
                    let err = Error::Codec(msg);
                    self.quarantine(conn, &row.instance_id, &err).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One short transaction: lock the row (skipping it when another
    /// session holds it), re-check under the lock, move it on, notify.
    async fn advance(&self, conn: &mut AsyncPgConnection, instance_id: &str) -> Result<()> {
        let codec = &self.inner.codec;
        let keep_history = self.inner.keep_history;
        let metrics = &self.inner.metrics;
        conn.transaction(async |conn| {
            let locked: Option<(String, Vec<u8>, Option<String>)> = workflows::table
                .find(instance_id)
                .select((workflows::status, workflows::snapshot, workflows::trace_parent))
                .for_no_key_update()
                .skip_locked()
                .get_result(conn)
                .await
                .optional()?;
            let Some((status, blob, trace_parent)) = locked else {
                return Ok(());
            };
            if status != "InProgress" {
                return Ok(());
            }
            let mut snapshot = crate::codec::decode(codec, &blob)?;
            snapshot.trace_parent = trace_parent;
            // A pending request nobody applies (no worker holds the instance):
            // apply it here, cancel first, as a worker would at a task boundary.
            for kind in [SignalKind::Cancel, SignalKind::Pause] {
                if let Some(fields) = read_signal(conn, instance_id, kind).await? {
                    let at = snapshot.current_task_id();
                    apply_request(&mut snapshot, kind, to_request(fields), at);
                    snapshot.strip_task_outputs();
                    let blob = crate::codec::encode(codec, &snapshot)?;
                    let write = Write { blob, outputs: &[], may_notify: false, keep_history };
                    write_snapshot(conn, &snapshot, write).await?;
                    delete_signal(conn, instance_id, kind).await?;
                    metrics.advanced.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(instance_id, kind = kind.as_ref(), "applied a pending request to an unclaimed workflow");
                    return Ok(());
                }
            }
            let now = chrono::Utc::now();
            let WorkflowSnapshotState::InProgress { position, completed_tasks, .. } = &snapshot.state else {
                return Ok(());
            };
            let outputs: Vec<(TaskId, Bytes)> = match position.clone() {
                ExecutionPosition::AtDelay { delay_id, wake_at, next_task_id, .. } if wake_at <= now => {
                    if let Some(task_id) = next_task_id {
                        snapshot.update_position(ExecutionPosition::AtTask { task_id });
                    } else {
                        // Outputs are stripped in the blob: read the stored one.
                        let out = if completed_tasks.contains_key(&delay_id) {
                            stored_output(conn, instance_id, delay_id).await?
                        } else {
                            None
                        };
                        snapshot.mark_completed(out.unwrap_or_default());
                    }
                    Vec::new()
                }
                ExecutionPosition::AtSignal { signal_name, wake_at, .. } => {
                    match pop_event(conn, instance_id, &signal_name).await? {
                        Some(payload) => resume_at_signal(&mut snapshot, Bytes::from(payload)),
                        None if wake_at.is_some_and(|w| w <= now) => {
                            resume_at_signal(&mut snapshot, Bytes::new())
                        }
                        None => return Ok(()),
                    }
                }
                ExecutionPosition::AtTask { task_id } if completed_tasks.contains_key(&task_id) => {
                    let live: i64 = claims::table
                        .filter(claims::instance_id.eq(instance_id))
                        .filter(claims::expires_at.is_null().or(claims::expires_at.gt(diesel::dsl::now)))
                        .count()
                        .get_result(conn)
                        .await?;
                    if live > 0 {
                        return Ok(());
                    }
                    // Its input: the last output recorded before it was completed.
                    let Some(input_from) = input_before(conn, codec, instance_id, task_id).await? else {
                        tracing::error!(instance_id, %task_id, "cannot recover: no earlier snapshot tells this task's input (history pruned or disabled)");
                        return Ok(());
                    };
                    snapshot.remove_task_result(&task_id);
                    if let WorkflowSnapshotState::InProgress { last_completed_task_id, .. } = &mut snapshot.state {
                        *last_completed_task_id = input_from;
                    }
                    metrics.recovered.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(instance_id, %task_id, "recovering a workflow left at a completed task (crash after the output was saved); the task runs once more");
                    Vec::new()
                }
                _ => return Ok(()),
            };
            metrics.advanced.fetch_add(1, Ordering::Relaxed);
            snapshot.strip_task_outputs();
            let blob = crate::codec::encode(codec, &snapshot)?;
            let write = Write { blob, outputs: &outputs, may_notify: true, keep_history };
            write_snapshot(conn, &snapshot, write).await.map(drop)
        })
        .await
    }
}

async fn stored_output(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
) -> Result<Option<Bytes>> {
    Ok(task_outputs::table
        .find((instance_id, task_id.as_bytes().to_vec()))
        .select(task_outputs::output)
        .first::<Vec<u8>>(conn)
        .await
        .optional()?
        .map(Bytes::from))
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
    let blobs: Vec<Vec<u8>> = history::table
        .filter(history::instance_id.eq(instance_id))
        .filter(history::current_task_id.eq(task_id.as_bytes().to_vec()))
        .order(history::revision.desc())
        .select(history::snapshot)
        .limit(HISTORY_LOOKBACK)
        .load(conn)
        .await?;
    for blob in blobs {
        let earlier = crate::codec::decode(codec, &blob)?;
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
