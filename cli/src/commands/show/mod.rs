//! `show <id>`: one workflow in full, from its columns (no blob decoded).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::models::{Claim, Signal};
use sayiir_diesel::reports::{self, octet_length};
use sayiir_diesel::schema::sayiir::{claims, events, history, signals, tasks, workflows};
use sayiir_diesel::{QueuedPosition, Status};

use super::{Out, millis_since, server_now};
use crate::args::ShowArgs;
use crate::error::CliError;
use crate::hex;
use crate::output::time;

use view::{ClaimInfo, Details, EventCount, HistoryItem, Output, QueueRow, Request};

mod view;

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

/// Runs `show`.
pub async fn run(out: &Out<'_>, args: &ShowArgs) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let now = server_now(&mut conn).await?;
    let id = args.id.as_str();
    let Some(w) = workflow(&mut conn, id).await? else {
        return Err(CliError::no_workflow(id));
    };
    let (status, position, current, hash, revision, created, updated, finished, error, trace, size) =
        w;
    let details = Details {
        instance_id: id.to_owned(),
        status: status.as_str(),
        position,
        current_task: current.as_deref().map(hex::encode),
        definition: hex::encode(&hash),
        revision,
        created_at: time(created),
        updated_at: time(updated),
        finished_at: finished.map(time),
        error,
        trace_parent: trace,
        snapshot_bytes: size,
        queue: queue_row(&mut conn, id).await?,
        claim: claim(&mut conn, id, now).await?,
        pending_requests: requests(&mut conn, id).await?,
        buffered_events: buffered(&mut conn, id).await?,
        outputs: outputs(&mut conn, id).await?,
        history_entries: history::table
            .filter(history::instance_id.eq(id))
            .count()
            .get_result(&mut conn)
            .await?,
        history: recent_history(&mut conn, id, args.history).await?,
    };
    crate::output::emit(out.json, &details, view::render)
}

async fn workflow(conn: &mut AsyncPgConnection, id: &str) -> Result<Option<WorkflowRow>, CliError> {
    Ok(workflows::table
        .find(id)
        .select((
            workflows::status,
            workflows::position_kind,
            workflows::current_task_id,
            workflows::definition_hash,
            workflows::revision,
            workflows::created_at,
            workflows::updated_at,
            workflows::finished_at,
            workflows::error,
            workflows::trace_parent,
            octet_length(workflows::snapshot),
        ))
        .first(conn)
        .await
        .optional()?)
}

async fn queue_row(conn: &mut AsyncPgConnection, id: &str) -> Result<Option<QueueRow>, CliError> {
    let row: Option<TaskRow> = tasks::table
        .find(id)
        .select((
            tasks::position_kind,
            tasks::task_id,
            tasks::signal_name,
            tasks::wake_at,
            tasks::completed,
            tasks::input_ready,
            tasks::priority,
            tasks::tags,
            tasks::retry_at,
            tasks::failed_worker,
            tasks::stalls,
            tasks::quarantined,
            tasks::queued_at,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(
        |(
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
        )| QueueRow {
            kind: kind.as_str(),
            task: task.as_deref().map(hex::encode),
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
        },
    ))
}

async fn claim(
    conn: &mut AsyncPgConnection,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<ClaimInfo>, CliError> {
    let claim: Option<Claim> = claims::table
        .find(id)
        .select(Claim::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(claim.map(|c| ClaimInfo {
        task: hex::encode(&c.task_id),
        worker: c.worker_id,
        claimed_at: time(c.claimed_at),
        expires_at: c.expires_at.map(time),
        expired: c.expires_at.is_some_and(|e| e <= now),
        held_ms: millis_since(now, c.claimed_at),
    }))
}

async fn requests(conn: &mut AsyncPgConnection, id: &str) -> Result<Vec<Request>, CliError> {
    let rows: Vec<Signal> = signals::table
        .filter(signals::instance_id.eq(id))
        .order(signals::requested_at.asc())
        .select(Signal::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| Request {
            kind: s.kind,
            reason: s.reason,
            requested_by: s.requested_by,
            requested_at: time(s.requested_at),
        })
        .collect())
}

async fn buffered(conn: &mut AsyncPgConnection, id: &str) -> Result<Vec<EventCount>, CliError> {
    let rows: Vec<(String, i64)> = events::table
        .filter(events::instance_id.eq(id))
        .group_by(events::signal_name)
        .select((events::signal_name, diesel::dsl::count_star()))
        .order(events::signal_name.asc())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(signal_name, count)| EventCount { signal_name, count })
        .collect())
}

async fn outputs(conn: &mut AsyncPgConnection, id: &str) -> Result<Vec<Output>, CliError> {
    let rows: Vec<(Vec<u8>, i32, DateTime<Utc>)> = reports::output_sizes(id).load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(task, size, at)| Output {
            task: hex::encode(&task),
            bytes: size,
            recorded_at: time(at),
        })
        .collect())
}

async fn recent_history(
    conn: &mut AsyncPgConnection,
    id: &str,
    limit: u32,
) -> Result<Vec<HistoryItem>, CliError> {
    let rows: Vec<HistoryRow> = reports::history_summary(id)
        .limit(i64::from(limit))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(revision, status, position, at, size)| HistoryItem {
            revision,
            status: status.as_str(),
            position,
            recorded_at: time(at),
            bytes: size,
        })
        .collect())
}
