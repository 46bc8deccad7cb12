//! `cancel`, `pause` and `resume`: requests go through the store calls a
//! `WorkflowClient` uses (`store_signal`, `unpause`, `clear_signal`), so
//! they are checked and applied exactly as for any other client.

use sayiir_core::snapshot::{SignalKind, SignalRequest};
use sayiir_persistence::{BackendError, SignalStore};
use serde::Serialize;

use super::{Out, status_of};
use crate::args::RequestArgs;
use crate::error::CliError;

/// What an action did.
#[derive(Debug, Serialize)]
struct Outcome {
    instance_id: String,
    /// `cancel`, `pause` or `resume`.
    action: &'static str,
    /// `requested`, `already_cancelled`, `already_paused`, `resumed` or
    /// `pause_withdrawn`.
    result: &'static str,
    /// The workflow's status after the call.
    status: &'static str,
}

/// Runs `cancel`.
pub async fn cancel(out: &Out<'_>, args: &RequestArgs) -> Result<(), CliError> {
    request(out, args, SignalKind::Cancel).await
}

/// Runs `pause`.
pub async fn pause(out: &Out<'_>, args: &RequestArgs) -> Result<(), CliError> {
    request(out, args, SignalKind::Pause).await
}

async fn request(out: &Out<'_>, args: &RequestArgs, kind: SignalKind) -> Result<(), CliError> {
    let backend = out.backend().await?;
    let request = SignalRequest::new(args.reason.clone(), Some(args.by.clone()));
    backend.store_signal(&args.id, kind, request).await?;
    let mut conn = out.connect().await?;
    let status = status_of(&mut conn, &args.id)
        .await?
        .ok_or_else(|| CliError::no_workflow(&args.id))?;
    let (action, result) = match (kind, status) {
        (SignalKind::Cancel, sayiir_diesel::Status::Cancelled) => ("cancel", "already_cancelled"),
        (SignalKind::Cancel, _) => ("cancel", "requested"),
        (SignalKind::Pause, sayiir_diesel::Status::Paused) => ("pause", "already_paused"),
        (SignalKind::Pause, _) => ("pause", "requested"),
    };
    let outcome = Outcome {
        instance_id: args.id.clone(),
        action,
        result,
        status: status.as_str(),
    };
    crate::output::emit(out.json, &outcome, render)
}

/// Runs `resume`: unpauses a Paused workflow; on an InProgress one with a
/// pause request not applied yet, withdraws the request instead.
pub async fn resume(out: &Out<'_>, id: &str) -> Result<(), CliError> {
    let backend = out.backend().await?;
    let result = match backend.unpause(id).await {
        Ok(_) => "resumed",
        Err(BackendError::CannotPause(why)) => {
            if backend.get_signal(id, SignalKind::Pause).await?.is_none() {
                return Err(CliError::Refused(format!("cannot resume {id:?}: {why}")));
            }
            backend.clear_signal(id, SignalKind::Pause).await?;
            "pause_withdrawn"
        }
        Err(other) => return Err(other.into()),
    };
    let mut conn = out.connect().await?;
    let status = status_of(&mut conn, id)
        .await?
        .ok_or_else(|| CliError::no_workflow(id))?;
    let outcome = Outcome {
        instance_id: id.to_owned(),
        action: "resume",
        result,
        status: status.as_str(),
    };
    crate::output::emit(out.json, &outcome, render)
}

fn render(o: &Outcome) -> String {
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
