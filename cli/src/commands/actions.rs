//! `cancel`, `pause` and `resume`: through the dashboard crate's `act`,
//! which goes through the store calls a `WorkflowClient` uses; what the
//! workflow's state refuses exits 4, a missing workflow 3.

use sayiir_diesel_dashboard::act::{self, Done, Outcome};

use super::Out;
use crate::args::RequestArgs;
use crate::error::CliError;

/// Runs `cancel`.
pub async fn cancel(out: &Out<'_>, args: &RequestArgs) -> Result<(), CliError> {
    let backend = out.backend().await?;
    let mut conn = out.connect().await?;
    let outcome = act::cancel(&backend, &mut conn, &args.id, args.reason.clone(), &args.by).await?;
    answer(out, outcome)
}

/// Runs `pause`.
pub async fn pause(out: &Out<'_>, args: &RequestArgs) -> Result<(), CliError> {
    let backend = out.backend().await?;
    let mut conn = out.connect().await?;
    let outcome = act::pause(&backend, &mut conn, &args.id, args.reason.clone(), &args.by).await?;
    answer(out, outcome)
}

/// Runs `resume`: unpauses a Paused workflow; on an InProgress one with a
/// pause request not applied yet, withdraws the request instead.
pub async fn resume(out: &Out<'_>, id: &str) -> Result<(), CliError> {
    let backend = out.backend().await?;
    let mut conn = out.connect().await?;
    let outcome = act::resume(&backend, &mut conn, id).await?;
    answer(out, outcome)
}

/// Prints what an action did, or fails with the exit code of a refusal
/// or a missing workflow.
pub fn answer(out: &Out<'_>, outcome: Outcome) -> Result<(), CliError> {
    match outcome {
        Outcome::Done(done) => crate::output::emit(out.json, &done, render),
        Outcome::Sent(sent) => crate::output::emit(out.json, &sent, |s| {
            format!(
                "event {:?} ({} bytes) {} for {:?}; status now {}\n",
                s.signal_name,
                s.bytes,
                s.delivery,
                s.instance_id,
                s.status.unwrap_or("-")
            )
        }),
        Outcome::Refused(why) => Err(CliError::Refused(why)),
        Outcome::NotFound(what) => Err(CliError::NotFound(what)),
    }
}

fn render(o: &Done) -> String {
    let what = match o.result {
        "requested" => format!(
            "{} requested for {:?}: it applies at the workflow's next task boundary \
             (or when the finder sees no worker holding it)",
            o.action, o.instance_id
        ),
        "already_cancelled" => format!("{:?} is already cancelled", o.instance_id),
        "already_paused" => format!("{:?} is already paused", o.instance_id),
        "resumed" => format!("{:?} resumed", o.instance_id),
        "pause_withdrawn" => format!(
            "{:?} was not paused yet: its pending pause request was withdrawn",
            o.instance_id
        ),
        other => format!("{}: {other}", o.instance_id),
    };
    format!("{what}; status now {}\n", o.status)
}
