//! `show <id>`: one workflow in full, from its columns (no blob decoded).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::models::{Claim, Signal};
use sayiir_diesel::reports::{self, octet_length};
use sayiir_diesel::schema::sayiir::{claims, events, history, signals, tasks, workflows};
use sayiir_diesel::{QueuedPosition, Status};
use serde::Serialize;

use super::{Out, millis_since, server_now};
use crate::args::ShowArgs;
use crate::duration::format_millis;
use crate::error::CliError;
use crate::hex;
use crate::output::{Table, bytes, or_dash, time};

/// The `show` answer.
#[derive(Debug, Serialize)]
struct Details {
    instance_id: String,
    status: &'static str,
    position: Option<String>,
    current_task: Option<String>,
    definition: String,
    revision: i64,
    created_at: String,
    updated_at: String,
    finished_at: Option<String>,
    error: Option<String>,
    trace_parent: Option<String>,
    /// Size of the stored snapshot (outputs stripped).
    snapshot_bytes: i32,
    queue: Option<QueueRow>,
    claim: Option<ClaimInfo>,
    pending_requests: Vec<Request>,
    /// Buffered events per signal name.
    buffered_events: Vec<EventCount>,
    /// Task outputs, largest first.
    outputs: Vec<Output>,
    /// All history entries kept.
    history_entries: i64,
    /// The newest ones, newest first.
    history: Vec<HistoryItem>,
}

#[derive(Debug, Serialize)]
struct QueueRow {
    kind: &'static str,
    task: Option<String>,
    signal_name: Option<String>,
    wake_at: Option<String>,
    completed: bool,
    input_ready: bool,
    priority: i16,
    tags: Vec<String>,
    retry_at: Option<String>,
    failed_worker: Option<String>,
    stalls: i32,
    quarantined: Option<String>,
    queued_at: String,
}

#[derive(Debug, Serialize)]
struct ClaimInfo {
    task: String,
    worker: String,
    claimed_at: String,
    expires_at: Option<String>,
    expired: bool,
    held_ms: i64,
}

#[derive(Debug, Serialize)]
struct Request {
    kind: String,
    reason: Option<String>,
    requested_by: Option<String>,
    requested_at: String,
}

#[derive(Debug, Serialize)]
struct EventCount {
    signal_name: String,
    count: i64,
}

#[derive(Debug, Serialize)]
struct Output {
    task: String,
    bytes: i32,
    recorded_at: String,
}

#[derive(Debug, Serialize)]
struct HistoryItem {
    revision: i64,
    status: &'static str,
    position: Option<String>,
    recorded_at: String,
    bytes: i32,
}

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
    Vec<Option<String>>,
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
    crate::output::emit(out.json, &details, render)
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
            tags: tags.into_iter().flatten().collect(),
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

fn render(d: &Details) -> String {
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let mut field = |name: &str, value: String| t.row(vec![name.to_owned(), value]);
    field("instance", d.instance_id.clone());
    field("status", d.status.to_owned());
    field("position", or_dash(d.position.as_deref()));
    field("current task", or_dash(d.current_task.as_deref()));
    field("definition", d.definition.clone());
    field("revision", d.revision.to_string());
    field("created", d.created_at.clone());
    field("updated", d.updated_at.clone());
    field("finished", or_dash(d.finished_at.as_deref()));
    field("snapshot", bytes(i64::from(d.snapshot_bytes)));
    if let Some(e) = &d.error {
        field("error", e.clone());
    }
    if let Some(q) = &d.queue {
        field("queue", queue_summary(q));
    }
    match &d.claim {
        Some(c) => field(
            "claim",
            format!(
                "{} by {} for {}{}",
                hex::short_text(&c.task),
                c.worker,
                format_millis(c.held_ms),
                if c.expired { " (expired)" } else { "" }
            ),
        ),
        None => field("claim", "-".to_owned()),
    }
    for r in &d.pending_requests {
        field(
            "requested",
            format!(
                "{} by {} at {}: {}",
                r.kind,
                or_dash(r.requested_by.as_deref()),
                r.requested_at,
                or_dash(r.reason.as_deref())
            ),
        );
    }
    for e in &d.buffered_events {
        field("events", format!("{} × {:?}", e.count, e.signal_name));
    }
    let mut text = t.render();
    let mut outputs = Table::new(&["OUTPUT OF TASK", "SIZE", "RECORDED"]);
    for o in &d.outputs {
        outputs.row(vec![
            o.task.clone(),
            bytes(i64::from(o.bytes)),
            o.recorded_at.clone(),
        ]);
    }
    if !outputs.is_empty() {
        text.push('\n');
        text.push_str(&outputs.render());
    }
    let mut history = Table::new(&["REV", "STATUS", "POSITION", "RECORDED", "SIZE"]);
    for h in &d.history {
        history.row(vec![
            h.revision.to_string(),
            h.status.to_owned(),
            or_dash(h.position.as_deref()),
            h.recorded_at.clone(),
            bytes(i64::from(h.bytes)),
        ]);
    }
    let _ = writeln!(
        text,
        "\nhistory: {} entries kept, newest {} shown",
        d.history_entries,
        d.history.len()
    );
    if !history.is_empty() {
        text.push_str(&history.render());
    }
    text
}

fn queue_summary(q: &QueueRow) -> String {
    let mut parts = vec![q.kind.to_owned()];
    if let Some(task) = &q.task {
        parts.push(format!("task {}", hex::short_text(task)));
    }
    if let Some(name) = &q.signal_name {
        parts.push(format!("signal {name:?}"));
    }
    if let Some(at) = &q.wake_at {
        parts.push(format!("wakes {at}"));
    }
    if q.completed {
        parts.push("output recorded".to_owned());
    }
    if !q.input_ready {
        parts.push("input not ready".to_owned());
    }
    parts.push(format!("priority {}", q.priority));
    if !q.tags.is_empty() {
        parts.push(format!("tags {}", q.tags.join(",")));
    }
    if let Some(at) = &q.retry_at {
        parts.push(format!("retry at {at}"));
    }
    if q.stalls > 0 {
        parts.push(format!("released {} times with nothing saved", q.stalls));
    }
    if let Some(why) = &q.quarantined {
        parts.push(format!("quarantined: {why}"));
    }
    parts.join(", ")
}
