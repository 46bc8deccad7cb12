//! One workflow in full (the CLI's `show`), from its columns: every
//! statement reads the rows of one instance through a primary key or
//! `events_queue_idx`, and counts stop at [`COUNT_CAP`]. Blobs are
//! measured, never read (except the previews asked for).

mod details;
mod statements;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Nullable, SmallInt, Text, Timestamptz,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::reports;
use sayiir_diesel::{QueuedPosition, Status};

pub use details::{ClaimInfo, Details, EventCount, HistoryItem, Output, QueueRow, Request};

use super::{COUNT_CAP, server_now};
use crate::Error;
use crate::format::{capped, hex, millis_since, time};
use crate::plans::Planner;
use crate::sql::steer;

/// At most this many signal names in [`Details::buffered_events`].
pub const MAX_EVENT_NAMES: i64 = 100;

/// Buffered events per signal name, capped (see the statement).
const BUFFERED: &str = include_str!("buffered.sql");

type WorkflowRow = (
    Status,
    Option<String>,
    Option<Vec<u8>>,
    Vec<u8>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    i32,
);

type WorkflowSql = (
    Text,
    Nullable<Text>,
    Nullable<Bytea>,
    Bytea,
    BigInt,
    Timestamptz,
    Timestamptz,
    Nullable<Timestamptz>,
    Nullable<Text>,
    Nullable<Text>,
    Integer,
);

type HistoryRow = (i64, Status, Option<String>, DateTime<Utc>, i32);

type TaskRow = (
    QueuedPosition,
    Option<Vec<u8>>,
    Option<String>,
    Option<DateTime<Utc>>,
    bool,
    bool,
    i16,
    Vec<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    i32,
    Option<String>,
    DateTime<Utc>,
);

type TaskSql = (
    Text,
    Nullable<Bytea>,
    Nullable<Text>,
    Nullable<Timestamptz>,
    Bool,
    Bool,
    SmallInt,
    Array<Text>,
    Nullable<Timestamptz>,
    Nullable<Text>,
    Integer,
    Nullable<Text>,
    Timestamptz,
);

/// A claim: task, worker, claimed at, expires at.
type ClaimRow = (Vec<u8>, String, DateTime<Utc>, Option<DateTime<Utc>>);
type ClaimSql = (Bytea, Text, Timestamptz, Nullable<Timestamptz>);

/// A request: kind, reason, requested by, requested at.
type RequestRow = (String, Option<String>, Option<String>, DateTime<Utc>);
type RequestSql = (Text, Nullable<Text>, Nullable<Text>, Timestamptz);

#[derive(diesel::QueryableByName)]
struct Buffered {
    #[diesel(sql_type = Text)]
    signal_name: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Workflow `id` in full, with its newest `history` history entries;
/// `None` when there is no such workflow.
///
/// # Errors
/// [`Error::Database`] when a statement fails.
pub async fn show(
    conn: &mut AsyncPgConnection,
    id: &str,
    history: u32,
) -> Result<Option<Details>, Error> {
    conn.transaction(async |conn| {
        steer(conn).await?;
        let now = server_now(conn).await?;
        let Some(w) = statements::workflow(id).first(conn).await.optional()? else {
            return Ok(None);
        };
        let queue: Option<TaskRow> = statements::queue_row(id).first(conn).await.optional()?;
        let claim: Option<ClaimRow> = statements::claim(id).first(conn).await.optional()?;
        let requests: Vec<RequestRow> = statements::requests(id).load(conn).await?;
        let buffered: Vec<Buffered> = statements::buffered(id).load(conn).await?;
        let outputs: Vec<(Vec<u8>, i32, DateTime<Utc>)> =
            reports::output_sizes(id).load(conn).await?;
        let entries: i64 = statements::history_entries(id).get_result(conn).await?;
        let recent: Vec<HistoryRow> = statements::history(id, history).load(conn).await?;
        let mut details = workflow_details(id, w);
        details.queue = queue.map(queue_row);
        details.claim = claim.map(|c| claim_info(c, now));
        details.pending_requests = requests.into_iter().map(request).collect();
        details.buffered_events = buffered
            .into_iter()
            .map(|b| EventCount {
                signal_name: b.signal_name,
                count: capped(b.count, COUNT_CAP).0,
            })
            .collect();
        details.outputs = outputs.into_iter().map(output).collect();
        details.history_entries = capped(entries, COUNT_CAP).0;
        details.history = recent.into_iter().map(history_item).collect();
        Ok(Some(details))
    })
    .await
}

/// The first `cap` bytes of each recorded output of `id`, by task (hex
/// task id), in the order of [`Details::outputs`] (largest first).
///
/// # Errors
/// [`Error::Input`] for a negative `cap`; [`Error::Database`] when the
/// statement fails.
pub async fn output_previews(
    conn: &mut AsyncPgConnection,
    id: &str,
    cap: i32,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    if cap < 0 {
        return Err(Error::Input(format!("a preview of {cap} bytes")));
    }
    let rows: Vec<(Vec<u8>, Vec<u8>)> = conn
        .transaction(async |conn| {
            steer(conn).await?;
            Ok::<_, Error>(statements::previews(id, cap).load(conn).await?)
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|(task, bytes)| (hex(&task), bytes))
        .collect())
}

/// The plans of [`show`]'s and [`output_previews`]'s statements.
pub(crate) async fn explain(planner: &mut Planner<'_>, id: &str) -> Result<(), Error> {
    planner
        .plan("show: workflow", statements::workflow(id))
        .await?;
    planner
        .plan("show: queue row", statements::queue_row(id))
        .await?;
    planner.plan("show: claim", statements::claim(id)).await?;
    planner
        .plan("show: requests", statements::requests(id))
        .await?;
    planner
        .plan("show: buffered events", statements::buffered(id))
        .await?;
    planner
        .plan("show: outputs", reports::output_sizes(id))
        .await?;
    planner
        .plan("show: history entries", statements::history_entries(id))
        .await?;
    planner
        .plan("show: history", statements::history(id, 10))
        .await?;
    planner
        .plan("show: output previews", statements::previews(id, 64))
        .await
}

fn workflow_details(id: &str, w: WorkflowRow) -> Details {
    let (status, position, current, hash, revision, created, updated, finished, error, trace, size) =
        w;
    Details {
        instance_id: id.to_owned(),
        status: status.as_str(),
        position,
        current_task: current.as_deref().map(hex),
        definition: hex(&hash),
        revision,
        created_at: time(created),
        updated_at: time(updated),
        finished_at: finished.map(time),
        error,
        trace_parent: trace,
        snapshot_bytes: size,
        queue: None,
        claim: None,
        pending_requests: Vec::new(),
        buffered_events: Vec::new(),
        outputs: Vec::new(),
        history_entries: 0,
        history: Vec::new(),
    }
}

fn queue_row(row: TaskRow) -> QueueRow {
    let (
        kind,
        task,
        signal_name,
        wake_at,
        completed,
        input_ready,
        priority,
        tags,
        retry_at,
        failed_worker,
        stalls,
        quarantined,
        queued_at,
    ) = row;
    QueueRow {
        kind: kind.as_str(),
        task: task.as_deref().map(hex),
        signal_name,
        wake_at: wake_at.map(time),
        completed,
        input_ready,
        priority,
        tags,
        retry_at: retry_at.map(time),
        failed_worker,
        stalls,
        quarantined,
        queued_at: time(queued_at),
    }
}

fn claim_info((task, worker, claimed_at, expires_at): ClaimRow, now: DateTime<Utc>) -> ClaimInfo {
    ClaimInfo {
        task: hex(&task),
        worker,
        claimed_at: time(claimed_at),
        expires_at: expires_at.map(time),
        expired: expires_at.is_some_and(|e| e <= now),
        held_ms: millis_since(now, claimed_at),
    }
}

fn request((kind, reason, requested_by, requested_at): RequestRow) -> Request {
    Request {
        kind,
        reason,
        requested_by,
        requested_at: time(requested_at),
    }
}

fn output((task, size, at): (Vec<u8>, i32, DateTime<Utc>)) -> Output {
    Output {
        task: hex(&task),
        bytes: size,
        recorded_at: time(at),
    }
}

fn history_item((revision, status, position, at, size): HistoryRow) -> HistoryItem {
    HistoryItem {
        revision,
        status: status.as_str(),
        position,
        recorded_at: time(at),
        bytes: size,
    }
}
