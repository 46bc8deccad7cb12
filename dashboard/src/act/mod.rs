//! Actions on workflows (the CLI's `cancel`, `pause`, `resume` and
//! `send-event`): requests go through the store calls a `WorkflowClient`
//! uses (`store_signal`, `unpause`, `clear_signal`, `send_event`), so they
//! are checked and applied exactly as for any other client. What the
//! workflow's state refuses is an [`Outcome`], not an error.

mod send_event;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::snapshot::{SignalKind, SignalRequest};
use sayiir_diesel::Status;
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_persistence::{BackendError, SignalStore};
use serde::Serialize;

pub use send_event::{Sent, send_event};

use crate::Error;
use crate::format::capped;
use crate::inspect::{COUNT_CAP, ListFilter, list};

/// The backend actions go through (the codec workers use).
pub type Backend = sayiir_diesel::DieselBackend<sayiir_runtime::serialization::JsonCodec>;

/// What an action did. Serialized as its document alone: [`Done`] or
/// [`Sent`] as an object, a refusal or a missing workflow as its message.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// A cancel, pause or resume happened.
    Done(Done),
    /// An event was sent.
    Sent(Sent),
    /// The workflow's state does not allow it (the message says why).
    Refused(String),
    /// No such workflow (the message names it).
    NotFound(String),
}

/// What a cancel, pause or resume did.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    /// The workflow.
    pub instance_id: String,
    /// `cancel`, `pause` or `resume`.
    pub action: &'static str,
    /// `requested`, `already_cancelled`, `already_paused`, `resumed` or
    /// `pause_withdrawn`.
    pub result: &'static str,
    /// The workflow's status after the call.
    pub status: &'static str,
}

/// Requests cancellation of `id` (applied at the workflow's next task
/// boundary, or by a worker's finder when no worker holds it), with
/// `reason`, asked by `by`.
///
/// # Errors
/// [`Error::Store`] or [`Error::Database`] when a call fails.
pub async fn cancel(
    b: &Backend,
    conn: &mut AsyncPgConnection,
    id: &str,
    reason: Option<String>,
    by: &str,
) -> Result<Outcome, Error> {
    request(b, conn, id, SignalKind::Cancel, reason, by).await
}

/// Requests a pause of `id` (applied like a cancel; [`resume`] lifts it).
///
/// # Errors
/// [`Error::Store`] or [`Error::Database`] when a call fails.
pub async fn pause(
    b: &Backend,
    conn: &mut AsyncPgConnection,
    id: &str,
    reason: Option<String>,
    by: &str,
) -> Result<Outcome, Error> {
    request(b, conn, id, SignalKind::Pause, reason, by).await
}

async fn request(
    b: &Backend,
    conn: &mut AsyncPgConnection,
    id: &str,
    kind: SignalKind,
    reason: Option<String>,
    by: &str,
) -> Result<Outcome, Error> {
    let request = SignalRequest::new(reason, Some(by.to_owned()));
    if let Err(e) = b.store_signal(id, kind, request).await {
        return refusal(e);
    }
    let Some(status) = status_of(conn, id).await? else {
        return Ok(Outcome::NotFound(no_workflow(id)));
    };
    let (action, result) = match (kind, status) {
        (SignalKind::Cancel, Status::Cancelled) => ("cancel", "already_cancelled"),
        (SignalKind::Cancel, _) => ("cancel", "requested"),
        (SignalKind::Pause, Status::Paused) => ("pause", "already_paused"),
        (SignalKind::Pause, _) => ("pause", "requested"),
    };
    Ok(Outcome::Done(Done {
        instance_id: id.to_owned(),
        action,
        result,
        status: status.as_str(),
    }))
}

/// Resumes a Paused workflow; on an InProgress one with a pause request
/// not applied yet, withdraws the request instead.
///
/// # Errors
/// [`Error::Store`] or [`Error::Database`] when a call fails.
pub async fn resume(b: &Backend, conn: &mut AsyncPgConnection, id: &str) -> Result<Outcome, Error> {
    let result = match b.unpause(id).await {
        Ok(_) => "resumed",
        Err(BackendError::CannotPause(why)) => {
            if b.get_signal(id, SignalKind::Pause).await?.is_none() {
                return Ok(Outcome::Refused(format!("cannot resume {id:?}: {why}")));
            }
            b.clear_signal(id, SignalKind::Pause).await?;
            "pause_withdrawn"
        }
        Err(other) => return refusal(other),
    };
    let Some(status) = status_of(conn, id).await? else {
        return Ok(Outcome::NotFound(no_workflow(id)));
    };
    Ok(Outcome::Done(Done {
        instance_id: id.to_owned(),
        action: "resume",
        result,
        status: status.as_str(),
    }))
}

/// Bulk: how many workflows `filter` matches from its cursor (its limit
/// aside), capped at [`COUNT_CAP`] (for "type the count back"). It reads
/// at most [`COUNT_CAP`] + 1 matching entries of the filter's index range;
/// a definition, tag or age condition that matches few rows reads the
/// range until then.
///
/// # Errors
/// [`Error::Input`] for a bad filter; [`Error::Database`] when the
/// statement fails.
pub async fn count_matching(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
) -> Result<i64, Error> {
    Ok(capped(list::count(conn, filter).await?, COUNT_CAP).0)
}

/// A store error the workflow's state explains, as its [`Outcome`].
fn refusal(err: BackendError) -> Result<Outcome, Error> {
    match err {
        BackendError::NotFound(id) => Ok(Outcome::NotFound(no_workflow(&id))),
        BackendError::CannotCancel(status) => Ok(Outcome::Refused(format!(
            "cannot cancel a workflow that is {status}"
        ))),
        BackendError::CannotPause(why) => Ok(Outcome::Refused(format!("cannot pause: {why}"))),
        other => Err(Error::Store(other)),
    }
}

fn no_workflow(id: &str) -> String {
    format!("no workflow {id:?}")
}

/// A workflow's status, or `None` when there is no such workflow.
async fn status_of(conn: &mut AsyncPgConnection, id: &str) -> Result<Option<Status>, Error> {
    Ok(workflows::table
        .find(id)
        .select(workflows::status)
        .first(conn)
        .await
        .optional()?)
}
