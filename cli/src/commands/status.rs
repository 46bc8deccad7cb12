//! `status`: an overview of the whole store.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::schema::sayiir::{events, signals, tasks};
use sayiir_diesel::{QueuedPosition, Status, reports};
use serde::Serialize;

use super::{Out, millis_since, server_now};
use crate::duration::format_millis;
use crate::error::CliError;
use crate::output::{Table, time_or_dash};

const STATUSES: [Status; 5] = [
    Status::InProgress,
    Status::Paused,
    Status::Completed,
    Status::Failed,
    Status::Cancelled,
];

/// The `status` answer.
#[derive(Debug, Serialize)]
struct Overview {
    /// Workflows per status (every status present, 0 when none).
    workflows: BTreeMap<&'static str, i64>,
    /// All workflows.
    total: i64,
    /// The dispatch queue.
    queue: Queue,
    /// Claims whose lease ran out, not released.
    expired_claims: i64,
    /// Cancel and pause requests not applied yet.
    pending_requests: i64,
    /// External events buffered, not consumed yet.
    buffered_events: i64,
}

/// The dispatch queue part of [`Overview`].
#[derive(Debug, Serialize)]
struct Queue {
    /// Queue rows at a task not done yet (running or waiting).
    runnable: i64,
    /// Of those, rows no worker holds: waiting for a worker.
    waiting: i64,
    /// Of those, rows a worker holds a live claim on.
    running: i64,
    /// Workflows parked at a durable delay.
    parked_at_delay: i64,
    /// Workflows parked waiting for an event.
    parked_at_signal: i64,
    /// Rows set aside because their snapshot cannot be decoded.
    quarantined: i64,
    /// When the oldest waiting row was queued.
    oldest_waiting_since: Option<String>,
    /// Its age in milliseconds, on the server's clock.
    oldest_waiting_ms: Option<i64>,
}

/// Runs `status`.
pub async fn run(out: &Out<'_>) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let now = server_now(&mut conn).await?;
    let counts: Vec<(Status, i64)> = reports::status_counts().load(&mut conn).await?;
    let mut workflows: BTreeMap<&'static str, i64> =
        STATUSES.iter().map(|s| (s.as_str(), 0)).collect();
    for (status, n) in &counts {
        workflows.insert(status.as_str(), *n);
    }
    let runnable: i64 = reports::runnable_tasks()
        .count()
        .get_result(&mut conn)
        .await?;
    let waiting: i64 = reports::waiting_tasks()
        .count()
        .get_result(&mut conn)
        .await?;
    let oldest: Option<chrono::DateTime<chrono::Utc>> = reports::waiting_tasks()
        .select(diesel::dsl::min(tasks::queued_at))
        .get_result(&mut conn)
        .await?;
    let parked = |kind: QueuedPosition| tasks::table.filter(tasks::position_kind.eq(kind)).count();
    let overview = Overview {
        total: counts.iter().map(|(_, n)| n).sum(),
        workflows,
        queue: Queue {
            runnable,
            waiting,
            // Two statements: a claim taken between them must not go negative.
            running: (runnable - waiting).max(0),
            parked_at_delay: parked(QueuedPosition::AtDelay)
                .get_result(&mut conn)
                .await?,
            parked_at_signal: parked(QueuedPosition::AtSignal)
                .get_result(&mut conn)
                .await?,
            quarantined: reports::quarantined_tasks()
                .count()
                .get_result(&mut conn)
                .await?,
            oldest_waiting_since: oldest.map(crate::output::time),
            oldest_waiting_ms: oldest.map(|t| millis_since(now, t)),
        },
        expired_claims: reports::expired_claims()
            .count()
            .get_result(&mut conn)
            .await?,
        pending_requests: signals::table.count().get_result(&mut conn).await?,
        buffered_events: events::table.count().get_result(&mut conn).await?,
    };
    crate::output::emit(out.json, &overview, render)
}

fn render(o: &Overview) -> String {
    let mut t = Table::new(&["WORKFLOWS", "COUNT"]);
    for s in STATUSES {
        t.row(vec![
            s.as_str().to_owned(),
            o.workflows
                .get(s.as_str())
                .copied()
                .unwrap_or(0)
                .to_string(),
        ]);
    }
    t.row(vec!["total".to_owned(), o.total.to_string()]);
    let q = &o.queue;
    let mut queue = Table::new(&["QUEUE", "COUNT"]);
    for (name, n) in [
        ("runnable", q.runnable),
        ("  waiting", q.waiting),
        ("  running", q.running),
        ("parked at delay", q.parked_at_delay),
        ("parked at signal", q.parked_at_signal),
        ("quarantined", q.quarantined),
        ("expired claims", o.expired_claims),
        ("pending requests", o.pending_requests),
        ("buffered events", o.buffered_events),
    ] {
        queue.row(vec![name.to_owned(), n.to_string()]);
    }
    let oldest = match (&q.oldest_waiting_since, q.oldest_waiting_ms) {
        (Some(since), Some(ms)) => format!("{} (since {since})", format_millis(ms)),
        _ => time_or_dash(None),
    };
    format!(
        "{}\n{}\noldest waiting task: {oldest}\n",
        t.render(),
        queue.render()
    )
}
