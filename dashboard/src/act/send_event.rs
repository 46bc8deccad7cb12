//! `send_event`: delivers an external event through the store's
//! `send_event`, which resumes a workflow parked at that signal name or
//! buffers the event.

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::schema::sayiir::tasks;
use sayiir_diesel::{QueuedPosition, Status};
use sayiir_persistence::SignalStore;
use serde::Serialize;

use super::{Backend, Outcome, status_of};
use crate::Error;

/// What [`send_event`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    /// The workflow.
    pub instance_id: String,
    /// The signal name.
    pub signal_name: String,
    /// The payload's size.
    pub bytes: usize,
    /// `resumed`: the workflow was waiting for it and moved on;
    /// `buffered`: it waits for a later wait on that name.
    pub delivery: &'static str,
    /// The workflow's status after the call (`None`: not submitted yet).
    pub status: Option<&'static str>,
}

/// Sends event `name` with `payload` to workflow `id`. An unknown workflow
/// is [`Outcome::NotFound`] unless `allow_unknown` (the event is then
/// buffered for it); a finished one is [`Outcome::Refused`].
///
/// # Errors
/// [`Error::Store`] or [`Error::Database`] when a call fails.
pub async fn send_event(
    b: &Backend,
    conn: &mut AsyncPgConnection,
    id: &str,
    name: &str,
    payload: Bytes,
    allow_unknown: bool,
) -> Result<Outcome, Error> {
    match status_of(conn, id).await? {
        None if !allow_unknown => {
            return Ok(Outcome::NotFound(format!(
                "no workflow {id:?} (pass --allow-unknown to buffer the event for it anyway)"
            )));
        }
        Some(status) if status.is_finished() => {
            return Ok(Outcome::Refused(format!(
                "workflow {id:?} is {status}: nothing will consume the event"
            )));
        }
        _ => {}
    }
    let waiting = waits_for(conn, id, name).await?;
    let size = payload.len();
    b.send_event(id, name, payload).await?;
    let still_waiting = waits_for(conn, id, name).await?;
    Ok(Outcome::Sent(Sent {
        instance_id: id.to_owned(),
        signal_name: name.to_owned(),
        bytes: size,
        delivery: if waiting && !still_waiting {
            "resumed"
        } else {
            "buffered"
        },
        status: status_of(conn, id).await?.map(Status::as_str),
    }))
}

/// Whether the workflow is parked waiting for `name` right now (its queue
/// row, by primary key).
async fn waits_for(conn: &mut AsyncPgConnection, id: &str, name: &str) -> Result<bool, Error> {
    Ok(diesel::select(diesel::dsl::exists(
        tasks::table
            .filter(tasks::instance_id.eq(id))
            .filter(tasks::position_kind.eq(QueuedPosition::AtSignal))
            .filter(tasks::signal_name.eq(name)),
    ))
    .get_result(conn)
    .await?)
}
