//! What the backend reads from a snapshot and the state changes it makes
//! to one itself, outside a worker: pure functions, no database.

use bytes::Bytes;
use sayiir_core::TaskId;
use sayiir_core::snapshot::{
    ExecutionPosition, PauseRequest, SignalKind, SignalRequest, WorkflowSnapshot,
    WorkflowSnapshotState,
};

use crate::error::Error;
use crate::kinds::Status;

/// Every member of the snapshot with its output, in no particular order.
pub(crate) fn member_outputs(snapshot: &WorkflowSnapshot) -> Vec<(TaskId, Bytes)> {
    snapshot
        .get_all_task_results()
        .map(|members| {
            members
                .values()
                .map(|r| (r.task_id, r.output.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The input of the task a snapshot is at (SPEC 1.5): the initial input
/// while nothing is completed, else the last completed task's output.
/// `None` means the task cannot be dispatched.
pub(crate) fn task_input(snapshot: &WorkflowSnapshot) -> Option<Bytes> {
    match snapshot.get_all_task_results() {
        Some(members) if !members.is_empty() => snapshot.get_last_task_output(),
        _ => snapshot.initial_input.clone(),
    }
}

/// Whether the snapshot belongs in the dispatch queue (InProgress at a task,
/// a delay or a signal).
pub(crate) fn is_queued(snapshot: &WorkflowSnapshot) -> bool {
    matches!(
        &snapshot.state,
        WorkflowSnapshotState::InProgress {
            position: ExecutionPosition::AtTask { .. }
                | ExecutionPosition::AtDelay { .. }
                | ExecutionPosition::AtSignal { .. },
            ..
        }
    )
}

/// What `store_signal` does for a stored status (SPEC 3.1).
pub(crate) enum Admission {
    /// Store (or replace) the request.
    Store,
    /// The workflow is already in the requested state: nothing to do.
    AlreadyThere,
    /// Refused: the workflow finished.
    Refuse(Error),
}

/// Whether a request of `kind` is accepted for a workflow in `status`.
pub(crate) fn admit(status: Status, kind: SignalKind) -> Admission {
    use Status::{Cancelled, Completed, Failed, Paused};
    match (kind, status) {
        (SignalKind::Cancel, Cancelled) | (SignalKind::Pause, Paused) => Admission::AlreadyThere,
        (SignalKind::Cancel, Completed | Failed) => {
            Admission::Refuse(Error::CannotCancel { status })
        }
        (SignalKind::Pause, Completed | Failed | Cancelled) => {
            Admission::Refuse(Error::CannotPause { status })
        }
        _ => Admission::Store,
    }
}

/// Whether a request of `kind` may apply to the stored state now. A pause
/// waits while the recorded position is a task whose output is already
/// saved: the workflow is between its worker's commit and that worker's
/// next save (the move past the task, or Completed), and a pause there would
/// leave a state nothing moves on after unpause. The worker's next save
/// either reaches a boundary where the pause applies or finishes the
/// workflow, which makes the pause moot as for any finished workflow.
pub(crate) fn applies_here(snapshot: &WorkflowSnapshot, kind: SignalKind) -> bool {
    let WorkflowSnapshotState::InProgress {
        position: ExecutionPosition::AtTask { task_id },
        completed_tasks,
        ..
    } = &snapshot.state
    else {
        return true;
    };
    !(kind == SignalKind::Pause && completed_tasks.contains_key(task_id))
}

/// The state change a cancel or pause request makes at a task boundary.
pub(crate) fn apply_request(
    snapshot: &mut WorkflowSnapshot,
    kind: SignalKind,
    request: SignalRequest,
    interrupted_at_task: Option<TaskId>,
) {
    match kind {
        SignalKind::Cancel => {
            snapshot.mark_cancelled(request.reason, request.requested_by, interrupted_at_task);
        }
        SignalKind::Pause => snapshot.mark_paused(&PauseRequest::from(request)),
    }
}

/// Resumes a snapshot parked at `AtSignal` with `payload`: records it under
/// the signal node's id, then moves to the next task or completes with the
/// payload as final output. Returns the outputs the write must persist.
pub(crate) fn resume_at_signal(
    snapshot: &mut WorkflowSnapshot,
    payload: Bytes,
) -> Vec<(TaskId, Bytes)> {
    let WorkflowSnapshotState::InProgress {
        position:
            ExecutionPosition::AtSignal {
                signal_id,
                next_task_id,
                ..
            },
        ..
    } = &snapshot.state
    else {
        return Vec::new();
    };
    let (signal_id, next) = (*signal_id, *next_task_id);
    snapshot.mark_task_completed(signal_id, payload.clone());
    match next {
        Some(task_id) => snapshot.update_position(ExecutionPosition::AtTask { task_id }),
        None => snapshot.mark_completed(payload.clone()),
    }
    vec![(signal_id, payload)]
}

#[cfg(test)]
mod tests {
    use sayiir_core::DefinitionHash;

    use super::*;

    fn at_signal(next: Option<&str>) -> WorkflowSnapshot {
        let mut s = WorkflowSnapshot::with_initial_input(
            "wf",
            DefinitionHash::sha256("def"),
            Bytes::from_static(b"in"),
        );
        s.update_position(ExecutionPosition::AtSignal {
            signal_id: TaskId::from("wait"),
            signal_name: "go".to_owned(),
            wake_at: None,
            next_task_id: next.map(TaskId::from),
        });
        s
    }

    #[test]
    fn a_resumed_signal_records_its_payload_and_moves_on() {
        let mut s = at_signal(Some("after"));
        let outputs = resume_at_signal(&mut s, Bytes::from_static(b"p"));
        assert_eq!(
            outputs,
            vec![(TaskId::from("wait"), Bytes::from_static(b"p"))]
        );
        assert_eq!(s.current_task_id(), Some(TaskId::from("after")));
        assert_eq!(task_input(&s), Some(Bytes::from_static(b"p")));
    }

    #[test]
    fn a_last_signal_completes_with_its_payload() {
        let mut s = at_signal(None);
        resume_at_signal(&mut s, Bytes::from_static(b"p"));
        assert!(matches!(s.state, WorkflowSnapshotState::Completed { .. }));
        assert!(!is_queued(&s));
    }

    #[test]
    fn requests_to_a_finished_workflow_are_refused_and_repeats_are_no_ops() {
        assert!(matches!(
            admit(Status::Completed, SignalKind::Cancel),
            Admission::Refuse(Error::CannotCancel { .. })
        ));
        assert!(matches!(
            admit(Status::Cancelled, SignalKind::Pause),
            Admission::Refuse(Error::CannotPause { .. })
        ));
        assert!(matches!(
            admit(Status::Paused, SignalKind::Pause),
            Admission::AlreadyThere
        ));
        assert!(matches!(
            admit(Status::InProgress, SignalKind::Cancel),
            Admission::Store
        ));
    }
}
