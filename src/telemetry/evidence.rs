//! `tracing` events that explain a step run twice: each failed store call
//! of a claimed step (claim, save, release, heartbeat; and the transient
//! failures of the loads, cancel and pause checks and event draining
//! around it), and each claim that
//! replaced another worker's expired one, naming that worker; each
//! expired claim that maintenance ended by applying a cancel or pause
//! request, naming its worker; and each failed write the backend made
//! again (`store::retry`). All carry
//! their ids as fields of the event itself, so a subscriber needs no span
//! state, and never a payload.
//!
//! The chaos soak (`examples/soak`) writes them to each worker's log and
//! accepts a repeated step only when such an event (or the death of the
//! first run's process) shows that the first run lost its claim.

use sayiir_core::TaskId;
use sayiir_persistence::BackendError;

use super::Op;
use crate::error::Error;

/// The `tracing` target of these events, to enable or route them
/// (`sayiir_diesel::store=info`): a `WARN` event `store call failed` and
/// `INFO` events `claim taken over`, `expired claim ended` and `store call
/// retried`.
pub const EVIDENCE_TARGET: &str = "sayiir_diesel::store";

/// Which claimed step a store call was for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step<'a> {
    /// The workflow.
    pub instance: &'a str,
    /// The task, where the call names one.
    pub task: Option<TaskId>,
    /// The worker, where the call names one.
    pub worker: Option<&'a str>,
}

impl<'a> Step<'a> {
    /// A call that names only the workflow.
    pub(crate) fn instance(instance: &'a str) -> Self {
        Step {
            instance,
            task: None,
            worker: None,
        }
    }
}

/// `result` at the trait boundary; a transient failure (a lost
/// connection, a timeout, no pooled connection) is reported first. For the
/// calls around a step that are not its claim, save or release (loads, the
/// cancel and pause checks, draining an event): the runtime gives the step
/// up when one fails, while an absent workflow or a bad id is an answer.
pub(crate) fn reported_if_transient<T>(
    op: Op,
    step: Step<'_>,
    result: Result<T, Error>,
) -> Result<T, BackendError> {
    match result {
        Err(error) if error.is_transient() => reported(op, step, Err(error)),
        other => other.map_err(BackendError::from),
    }
}

/// `result` at the trait boundary; a failure is reported first.
pub(crate) fn reported<T>(
    op: Op,
    step: Step<'_>,
    result: Result<T, Error>,
) -> Result<T, BackendError> {
    result.map_err(|error| {
        tracing::warn!(
            target: EVIDENCE_TARGET,
            op = op.name(),
            instance_id = step.instance,
            task_id = step.task.map(tracing::field::display),
            worker_id = step.worker,
            transient = error.is_transient(),
            error = %error,
            "store call failed"
        );
        BackendError::from(error)
    })
}

/// A failed write of `op` for `step` tried again (`landed`: a read back
/// found that it had committed after all).
pub(crate) fn retried(op: Op, step: Step<'_>, error: &Error, landed: bool) {
    tracing::info!(
        target: EVIDENCE_TARGET,
        op = op.name(),
        instance_id = step.instance,
        task_id = step.task.map(tracing::field::display),
        worker_id = step.worker,
        landed,
        error = %error,
        "store call retried"
    );
}

/// A claim taken from `previous_worker`, whose claim on `previous_task`
/// had expired.
pub(crate) fn taken_over(step: Step<'_>, previous_worker: &str, previous_task: &[u8]) {
    let previous_task =
        crate::codec::task_id(previous_task).map_or_else(|_| String::from("?"), |t| t.to_string());
    tracing::info!(
        target: EVIDENCE_TARGET,
        instance_id = step.instance,
        task_id = step.task.map(tracing::field::display),
        worker_id = step.worker,
        previous_worker,
        previous_task,
        "claim taken over"
    );
}

/// Maintenance applied a pending `request` ("Cancel" or "Pause") to a
/// workflow whose claim by `previous_worker` on `previous_task` had
/// expired: that worker's result, if it still comes, is refused, and the
/// step runs again once the workflow goes on.
pub(crate) fn claim_ended(
    instance_id: &str,
    previous_worker: &str,
    previous_task: TaskId,
    request: &str,
) {
    tracing::info!(
        target: EVIDENCE_TARGET,
        instance_id,
        previous_worker,
        previous_task = %previous_task,
        request,
        "expired claim ended"
    );
}
