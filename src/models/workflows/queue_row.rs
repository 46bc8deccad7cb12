//! What a write puts in the dispatch queue (`sayiir.tasks`) for a snapshot,
//! and the wakeup it sends: derived from the snapshot alone, so the queue
//! row and the workflow row never disagree.

use chrono::{DateTime, Utc};
use sayiir_core::TaskId;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot, WorkflowSnapshotState};
use sayiir_persistence::TaskWakeupHint;

use crate::kinds::QueuedPosition;

/// PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; larger hints
/// are sent empty (a wakeup without a hint).
pub(crate) const MAX_NOTIFY_PAYLOAD: usize = 7999;

/// The queue columns of an InProgress instance at a task or a park.
pub(super) struct QueueRow {
    pub(super) kind: QueuedPosition,
    pub(super) task_id: Option<TaskId>,
    pub(super) park_id: Option<TaskId>,
    pub(super) signal_name: Option<String>,
    pub(super) wake_at: Option<DateTime<Utc>>,
    pub(super) completed: bool,
    pub(super) retry_at: Option<DateTime<Utc>>,
    pub(super) failed_worker: Option<String>,
}

/// The queue row of a snapshot, `None` when it does not belong in the
/// queue (not InProgress at a task, a delay or a signal).
pub(super) fn queue_row(snapshot: &WorkflowSnapshot) -> Option<QueueRow> {
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
pub(super) fn wakeup_payload(
    snapshot: &WorkflowSnapshot,
    queue: Option<&QueueRow>,
) -> Option<String> {
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
