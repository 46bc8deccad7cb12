//! Each workflow the driver tracked, against what happened to it: its
//! final state given the user actions accepted, its output, the event its
//! first wait got, and how many times each of its steps ran (a repeat is
//! explained by evidence, or reported).

use std::collections::BTreeMap;

use sayiir_core::workflow::WorkflowStatus;
use sayiir_persistence::{SnapshotStore, TaskResultStore};

use super::Run;
use super::logs::{Logs, window};
use crate::driver::Track;
use crate::workflows::{Shape, event_payload, json, output_ok};

/// What the per-workflow checks counted, for the figures.
#[derive(Default)]
pub struct Tally {
    /// Workflows by shape and final state.
    pub table: BTreeMap<(Shape, &'static str), u32>,
    /// Step repeats by their evidence, and the fault whose window they
    /// fall in (a figure only).
    pub repeats: BTreeMap<(&'static str, &'static str), u32>,
    /// User actions that came too late to matter.
    pub moot: u32,
    /// Planned failures of Completed retry workflows, and failed attempts
    /// logged for them.
    pub planned_failures: (u64, u64),
}

/// Checks every tracked workflow; each violation is one line of `bad`.
pub async fn check(run: &Run<'_>, logs: &Logs, bad: &mut Vec<String>) -> Tally {
    let mut tally = Tally::default();
    for t in run.tracks {
        let status = match run.backend.load_snapshot(&t.id).await {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{}: cannot load: {e}", t.id));
                continue;
            }
        };
        let st = status.state.as_status();
        let name = state_name(&st);
        *tally.table.entry((t.shape, name)).or_default() += 1;
        final_state(t, &st, name, &mut tally, bad);
        let completed = matches!(st, WorkflowStatus::Completed);
        if completed {
            let out = status.final_output_bytes().unwrap_or_default();
            completed_output(run, t, &out, logs, &mut tally, bad).await;
        }
        steps(run, t, completed, logs, &mut tally, bad);
    }
    tally
}

fn state_name(s: &WorkflowStatus) -> &'static str {
    match s {
        WorkflowStatus::Completed => "Completed",
        WorkflowStatus::Failed(_) => "Failed",
        WorkflowStatus::Cancelled { .. } => "Cancelled",
        WorkflowStatus::Paused { .. } => "Paused",
        WorkflowStatus::InProgress => "InProgress",
        WorkflowStatus::Waiting { .. } => "Waiting",
        WorkflowStatus::AwaitingSignal { .. } => "AwaitingSignal",
    }
}

/// The final state is one the accepted cancel and pause allow.
fn final_state(
    t: &Track,
    st: &WorkflowStatus,
    name: &str,
    tally: &mut Tally,
    bad: &mut Vec<String>,
) {
    let ok_state = match (st, t.cancelled, t.paused) {
        (WorkflowStatus::Failed(e), _, _) => {
            bad.push(format!("{}: Failed: {e}", t.id));
            true
        }
        (WorkflowStatus::Cancelled { .. }, Some(_), _) => true,
        (WorkflowStatus::Completed, Some((_, false)), _) => {
            tally.moot += 1;
            true
        }
        (WorkflowStatus::Paused { .. }, None, Some(_)) => true,
        (WorkflowStatus::Completed | WorkflowStatus::Cancelled { .. }, None, Some((_, false))) => {
            tally.moot += 1;
            true
        }
        (WorkflowStatus::Completed, None, None) => true,
        _ => false,
    };
    if !ok_state {
        bad.push(format!(
            "{}: ends {name} (cancel accepted: {:?}, pause left: {:?}, events sent: {:?})",
            t.id, t.cancelled, t.paused, t.sent
        ));
    }
}

/// A Completed workflow's output, the event its first wait got, and its
/// planned failures.
async fn completed_output(
    run: &Run<'_>,
    t: &Track,
    out: &[u8],
    logs: &Logs,
    tally: &mut Tally,
    bad: &mut Vec<String>,
) {
    if !output_ok(t.shape, t.n, out) {
        bad.push(format!(
            "{}: Completed with a wrong output {:?}",
            t.id,
            String::from_utf8_lossy(out)
        ));
    }
    if t.shape == Shape::Event && !t.ambiguous {
        let e2 = run
            .backend
            .load_task_result(&t.id, &sayiir_core::TaskId::from("e2"))
            .await
            .ok()
            .flatten();
        if e2 != Some(json(event_payload(t.n, "a") + 1)) {
            bad.push(format!(
                "{}: the first wait did not get event a exactly (e2 = {e2:?})",
                t.id
            ));
        }
    }
    if t.shape == Shape::Retry {
        tally.planned_failures.0 += t.n % 3;
        tally.planned_failures.1 += u64::from(logs.failures.get(&t.id).copied().unwrap_or(0));
    }
}

/// Every step ran as often as it should; each repeat is explained by
/// evidence that the run before it lost its claim.
fn steps(
    run: &Run<'_>,
    t: &Track,
    completed: bool,
    logs: &Logs,
    tally: &mut Tally,
    bad: &mut Vec<String>,
) {
    for &(task, want) in t.shape.steps() {
        let r = logs.runs_of(&t.id, task);
        let got = u32::try_from(r.len()).unwrap_or(u32::MAX);
        if completed && got < want {
            bad.push(format!(
                "{}: Completed but step {task} ran {got} time(s), expected {want}",
                t.id
            ));
        }
        // A repeat is one more run than wanted; each needs a pair of
        // consecutive runs whose first lost its claim (for a loop body,
        // the re-run iteration is not necessarily the last run).
        let extra = r.len().saturating_sub(want as usize);
        let mut causes: Vec<(&'static str, &'static str)> = r
            .windows(2)
            .filter_map(|p| {
                let cause = logs.explain(run.faults, &t.id, task, p[0], p[1])?;
                let fault = window(run.faults, p[0], p[1]).map_or("no fault", |f| f.kind.name());
                Some((cause, fault))
            })
            .take(extra)
            .collect();
        let unexplained = extra - causes.len();
        if unexplained > 0 {
            bad.push(format!(
                "{}: step {task} ran {unexplained} more time(s) with no evidence that a run \
                 lost its claim (runs at [(ms into the run, process, fault window)]: {:?})",
                t.id,
                r.iter()
                    .zip(
                        std::iter::once(None)
                            .chain(r.windows(2).map(|p| window(run.faults, p[0], p[1])))
                    )
                    .map(|(x, f)| (
                        x.ms.saturating_sub(run.start_ms),
                        x.process,
                        f.map_or("-", |f| f.kind.name())
                    ))
                    .collect::<Vec<_>>()
            ));
            causes.extend(std::iter::repeat_n(("unexplained", "-"), unexplained));
        }
        for c in causes {
            *tally.repeats.entry(c).or_default() += 1;
        }
    }
}
