//! `send-event`: delivers an external event through `send_event`, which
//! resumes a workflow parked at that signal name or buffers the event.

use std::io::Read as _;

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::schema::sayiir::tasks;
use sayiir_diesel::{QueuedPosition, Status};
use sayiir_persistence::SignalStore;
use serde::Serialize;

use super::{Out, status_of};
use crate::args::SendEventArgs;
use crate::error::CliError;

/// What `send-event` did.
#[derive(Debug, Serialize)]
struct Sent {
    instance_id: String,
    signal_name: String,
    bytes: usize,
    /// `resumed`: the workflow was waiting for it and moved on; `buffered`:
    /// it waits for a later wait on that name.
    delivery: &'static str,
    /// The workflow's status after the call (`null`: not submitted yet).
    status: Option<&'static str>,
}

/// Runs `send-event`.
pub async fn run(out: &Out<'_>, args: &SendEventArgs) -> Result<(), CliError> {
    let payload = payload(args)?;
    let mut conn = out.connect().await?;
    let before = status_of(&mut conn, &args.id).await?;
    match before {
        None if !args.allow_unknown => {
            return Err(CliError::NotFound(format!(
                "no workflow {:?} (pass --allow-unknown to buffer the event for it anyway)",
                args.id
            )));
        }
        Some(status) if status.is_finished() => {
            return Err(CliError::Refused(format!(
                "workflow {:?} is {status}: nothing will consume the event",
                args.id
            )));
        }
        _ => {}
    }
    let waiting = waits_for(&mut conn, &args.id, &args.name).await?;
    let backend = out.backend().await?;
    let size = payload.len();
    backend.send_event(&args.id, &args.name, payload).await?;
    let still_waiting = waits_for(&mut conn, &args.id, &args.name).await?;
    let sent = Sent {
        instance_id: args.id.clone(),
        signal_name: args.name.clone(),
        bytes: size,
        delivery: if waiting && !still_waiting {
            "resumed"
        } else {
            "buffered"
        },
        status: status_of(&mut conn, &args.id).await?.map(Status::as_str),
    };
    crate::output::emit(out.json, &sent, |s| {
        format!(
            "event {:?} ({} bytes) {} for {:?}; status now {}\n",
            s.signal_name,
            s.bytes,
            s.delivery,
            s.instance_id,
            s.status.unwrap_or("-")
        )
    })
}

/// Whether the workflow is parked waiting for `name` right now.
async fn waits_for(
    conn: &mut diesel_async::AsyncPgConnection,
    id: &str,
    name: &str,
) -> Result<bool, CliError> {
    let n: i64 = tasks::table
        .filter(tasks::instance_id.eq(id))
        .filter(tasks::position_kind.eq(QueuedPosition::AtSignal))
        .filter(tasks::signal_name.eq(name))
        .count()
        .get_result(conn)
        .await?;
    Ok(n > 0)
}

/// The payload from the argument, the file, or stdin (`-`).
fn payload(args: &SendEventArgs) -> Result<Bytes, CliError> {
    match (&args.payload, &args.payload_file) {
        (Some(text), None) => Ok(Bytes::from(text.clone().into_bytes())),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| CliError::Failed(format!("cannot read stdin: {e}")))?;
            Ok(Bytes::from(buf))
        }
        (None, Some(path)) => std::fs::read(path)
            .map(Bytes::from)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display()))),
        _ => Err(CliError::Usage(
            "give the payload either as an argument or with --payload-file".to_owned(),
        )),
    }
}
