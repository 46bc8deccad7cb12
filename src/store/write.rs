//! The one statement every snapshot write goes through.
//!
//! [`write_snapshot`] derives every column from the snapshot itself, so the
//! workflow row, the dispatch queue row (`sayiir.tasks`), the outputs, the
//! history entry and the wakeup can never disagree. It is a single
//! statement (data-modifying CTEs), hence atomic and **one round trip**:
//!
//! 1. upsert `workflows`, refused when the stored row is terminal (the
//!    terminal guard) or Paused and the write is not `unpause`'s; nothing
//!    below runs when it is refused;
//! 2. upsert the given outputs into `task_outputs` (unchanged bytes are not
//!    rewritten);
//! 3. append to `history` (when history is kept);
//! 4. upsert or delete the instance's `tasks` row;
//! 5. `pg_notify` when the result is dispatchable (delivered at commit); the
//!    hint is also kept on the queue row for claim releases and recovery.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot, WorkflowSnapshotState};
use sayiir_persistence::TaskWakeupHint;

use crate::error::{Result, check_key, check_text};
use crate::kinds::QueuedPosition;
use crate::queries::{Raw, WRITE_SNAPSHOT};

/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; larger hints
/// are sent empty (a wakeup without a hint).
pub(crate) const MAX_NOTIFY_PAYLOAD: usize = 7999;

/// What a write changes besides the blob.
pub(crate) struct Write<'a> {
    /// The framed blob of `snapshot` with outputs stripped.
    pub blob: Vec<u8>,
    /// Outputs to upsert (a `save_snapshot` sends every member's).
    pub outputs: &'a [(TaskId, bytes::Bytes)],
    /// Send a wakeup when the result is dispatchable.
    pub may_notify: bool,
    /// Append to `sayiir.history`.
    pub keep_history: bool,
    /// Allow Paused → InProgress (only `unpause` does).
    pub leave_paused: bool,
}

#[derive(diesel::QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    written: i64,
}

/// The queue columns of an InProgress instance at a task or a park.
struct QueueRow {
    kind: QueuedPosition,
    task_id: Option<TaskId>,
    park_id: Option<TaskId>,
    signal_name: Option<String>,
    wake_at: Option<DateTime<Utc>>,
    completed: bool,
    retry_at: Option<DateTime<Utc>>,
    failed_worker: Option<String>,
}

fn queue_row(snapshot: &WorkflowSnapshot) -> Option<QueueRow> {
    let WorkflowSnapshotState::InProgress {
        position,
        completed_tasks,
        ..
    } = &snapshot.state
    else {
        return None;
    };
    let (kind, task_id, park_id, signal_name, wake_at) = match position {
        ExecutionPosition::AtTask { task_id } => {
            (QueuedPosition::AtTask, Some(*task_id), None, None, None)
        }
        ExecutionPosition::AtDelay {
            delay_id,
            wake_at,
            next_task_id,
            ..
        } => (
            QueuedPosition::AtDelay,
            *next_task_id,
            Some(*delay_id),
            None,
            Some(*wake_at),
        ),
        ExecutionPosition::AtSignal {
            signal_id,
            signal_name,
            wake_at,
            next_task_id,
        } => (
            QueuedPosition::AtSignal,
            *next_task_id,
            Some(*signal_id),
            Some(signal_name.clone()),
            *wake_at,
        ),
        _ => return None,
    };
    let retry = task_id.and_then(|t| snapshot.task_retries.get(&t));
    Some(QueueRow {
        kind,
        task_id,
        park_id,
        signal_name,
        wake_at,
        completed: kind == QueuedPosition::AtTask
            && task_id.is_some_and(|t| completed_tasks.contains_key(&t)),
        retry_at: retry.map(|r| r.next_retry_at),
        failed_worker: retry.and_then(|r| r.last_failed_worker.clone()),
    })
}

/// The wakeup payload for a committed dispatchable state, if any.
fn wakeup_payload(snapshot: &WorkflowSnapshot, queue: Option<&QueueRow>) -> Option<String> {
    let queue = queue.filter(|q| q.kind == QueuedPosition::AtTask && !q.completed)?;
    let task_id = queue.task_id?;
    let hint = TaskWakeupHint {
        instance_id: snapshot.instance_id.to_string(),
        task_id: *task_id.as_bytes(),
        definition_hash: *snapshot.definition_hash.as_bytes(),
        tags: snapshot.task_tags.clone(),
    };
    let payload = hint.encode();
    Some(if payload.len() > MAX_NOTIFY_PAYLOAD {
        String::new()
    } else {
        payload
    })
}

/// Checks every text the write stores for NUL bytes before any write.
pub(crate) fn check_snapshot_text(snapshot: &WorkflowSnapshot) -> Result<()> {
    crate::error::check_id("instance id", &snapshot.instance_id)?;
    if let Some(tp) = &snapshot.trace_parent {
        check_text("trace_parent", tp)?;
    }
    for tag in &snapshot.task_tags {
        check_text("task tag", tag)?;
    }
    if let Some(name) = snapshot.awaited_signal_name() {
        check_key("signal name", name)?;
    }
    if let Some(err) = snapshot.error_message() {
        check_text("error message", err)?;
    }
    for retry in snapshot.task_retries.values() {
        if let Some(worker) = &retry.last_failed_worker {
            check_key("worker id", worker)?;
        }
    }
    Ok(())
}

fn timestamp(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Runs the write. Returns `false` when the guard refused it (the stored row
/// is Completed, Failed or Cancelled, or Paused and the write would make it
/// InProgress without `leave_paused`): then nothing was written.
pub(crate) async fn write_snapshot(
    conn: &mut AsyncPgConnection,
    snapshot: &WorkflowSnapshot,
    write: Write<'_>,
) -> Result<bool> {
    let members: Vec<Vec<u8>> = snapshot
        .get_all_task_results()
        .map(|m| m.keys().map(|k| k.as_bytes().to_vec()).collect())
        .unwrap_or_default();
    // Completed and Failed drop `completed_tasks`: keep the last live
    // membership, plus whatever outputs the finishing write itself carries.
    let freeze = matches!(
        snapshot.state,
        WorkflowSnapshotState::Completed { .. } | WorkflowSnapshotState::Failed { .. }
    );
    let members = if freeze {
        write
            .outputs
            .iter()
            .map(|(id, _)| id.as_bytes().to_vec())
            .collect()
    } else {
        members
    };
    let output_ids: Vec<Vec<u8>> = write
        .outputs
        .iter()
        .map(|(id, _)| id.as_bytes().to_vec())
        .collect();
    let output_values: Vec<&[u8]> = write.outputs.iter().map(|(_, o)| o.as_ref()).collect();
    let queue = queue_row(snapshot);
    let hint = wakeup_payload(snapshot, queue.as_ref());
    let notify = if write.may_notify { hint.clone() } else { None };
    let ready = super::task_input(snapshot).is_some();
    let status: &str = snapshot.state.as_ref();
    let q = queue.as_ref();
    let row: Written = Raw::new(WRITE_SNAPSHOT)
        .bind::<Text, _>(snapshot.instance_id.as_ref())
        .bind::<Bytea, _>(snapshot.definition_hash.as_bytes().as_slice())
        .bind::<Text, _>(status)
        .bind::<Nullable<Text>, _>(snapshot.position_kind())
        .bind::<Nullable<Bytea>, _>(snapshot.current_task_id().map(|t| t.as_bytes().to_vec()))
        .bind::<Bytea, _>(write.blob)
        .bind::<Array<Bytea>, _>(members)
        .bind::<Nullable<Text>, _>(snapshot.trace_parent.as_deref())
        .bind::<Nullable<Text>, _>(snapshot.error_message())
        .bind::<Bool, _>(snapshot.state.is_terminal())
        .bind::<Bool, _>(freeze)
        .bind::<Array<Bytea>, _>(output_ids)
        .bind::<Array<Bytea>, _>(output_values)
        .bind::<Bool, _>(write.keep_history)
        .bind::<Bool, _>(q.is_some())
        .bind::<Nullable<Text>, _>(q.map(|q| q.kind))
        .bind::<Nullable<Bytea>, _>(q.and_then(|q| q.task_id).map(|t| t.as_bytes().to_vec()))
        .bind::<Nullable<Bytea>, _>(q.and_then(|q| q.park_id).map(|t| t.as_bytes().to_vec()))
        .bind::<Nullable<Text>, _>(q.and_then(|q| q.signal_name.clone()))
        .bind::<Nullable<Timestamptz>, _>(q.and_then(|q| q.wake_at))
        .bind::<Bool, _>(q.is_some_and(|q| q.completed))
        .bind::<Bool, _>(ready)
        .bind::<SmallInt, _>(i16::from(snapshot.current_task_priority()))
        .bind::<Array<Text>, _>(snapshot.task_tags.clone())
        .bind::<Nullable<Timestamptz>, _>(q.and_then(|q| q.retry_at))
        .bind::<Nullable<Text>, _>(q.and_then(|q| q.failed_worker.clone()))
        .bind::<Timestamptz, _>(timestamp(snapshot.updated_at))
        .bind::<Nullable<Text>, _>(notify)
        .bind::<Nullable<Text>, _>(hint)
        .bind::<Bool, _>(write.leave_paused)
        .bind::<Nullable<Bytea>, _>(
            snapshot
                .last_completed_task_id()
                .map(|t| t.as_bytes().to_vec()),
        )
        .get_result(conn)
        .await?;
    Ok(row.written > 0)
}

impl<C> crate::DieselBackend<C>
where
    C: sayiir_core::codec::SnapshotCodec + Send + Sync + 'static,
{
    pub(crate) fn write_opts<'a>(
        &self,
        blob: Vec<u8>,
        outputs: &'a [(TaskId, bytes::Bytes)],
        notify: bool,
    ) -> Write<'a> {
        Write {
            blob,
            outputs,
            may_notify: notify,
            keep_history: self.inner.keep_history,
            leave_paused: false,
        }
    }

    /// Encodes a snapshot whose outputs are already stripped or absent.
    pub(crate) fn encode_stripped(&self, snapshot: &mut WorkflowSnapshot) -> Result<Vec<u8>> {
        snapshot.strip_task_outputs();
        crate::codec::encode(&self.inner.codec, snapshot)
    }
}
