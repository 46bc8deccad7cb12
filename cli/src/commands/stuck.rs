//! `stuck`: what is not moving, kind by kind.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::models::Claim;
use sayiir_diesel::reports;
use sayiir_diesel::schema::sayiir::{claims, tasks};
use serde::Serialize;

use super::{Out, before, millis_since, server_now};
use crate::args::StuckArgs;
use crate::duration::format_millis;
use crate::error::CliError;
use crate::hex;
use crate::output::{Table, or_dash, time};

/// The `stuck` answer: one list per kind, each at most `--limit` long.
#[derive(Debug, Serialize)]
struct Stuck {
    /// Claims whose lease ran out and that no worker released.
    expired_claims: Vec<ClaimItem>,
    /// Live claims taken longer ago than `--held-longer-than`.
    long_held_claims: Vec<ClaimItem>,
    /// Rows the finder skips: their snapshot cannot be decoded.
    quarantined: Vec<TaskItem>,
    /// Output saved, next state never saved, no live claim, for `--idle-for`.
    output_saved_not_moving: Vec<TaskItem>,
    /// Parked at a delay or signal wait whose wake-up time passed more than
    /// `--idle-for` ago, still parked.
    overdue_parks: Vec<TaskItem>,
    /// Tasks whose input cannot be resolved: no worker is ever offered them.
    input_not_ready: Vec<TaskItem>,
    /// Tasks released `--released-times` or more in a row with nothing saved.
    repeatedly_released: Vec<TaskItem>,
}

#[derive(Debug, Serialize)]
struct ClaimItem {
    instance_id: String,
    task: String,
    worker: String,
    claimed_at: String,
    expires_at: Option<String>,
    held_ms: i64,
}

#[derive(Debug, Serialize)]
struct TaskItem {
    instance_id: String,
    task: Option<String>,
    queued_at: String,
    /// Milliseconds since the row was last written.
    idle_ms: i64,
    stalls: i32,
    wake_at: Option<String>,
    retry_at: Option<String>,
    failed_worker: Option<String>,
    quarantined: Option<String>,
}

type TaskRow = (
    String,
    Option<Vec<u8>>,
    DateTime<Utc>,
    i32,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
);

/// Runs `stuck`.
pub async fn run(out: &Out<'_>, args: &StuckArgs) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let now = server_now(&mut conn).await?;
    let limit = i64::from(args.limit);
    let expired: Vec<Claim> = reports::expired_claims()
        .order(claims::expires_at.asc())
        .limit(limit)
        .select(Claim::as_select())
        .load(&mut conn)
        .await?;
    let held: Vec<Claim> = reports::claims_held_since(before(now, args.held_longer_than)?)
        .filter(
            claims::expires_at
                .is_null()
                .or(claims::expires_at.gt(diesel::dsl::now)),
        )
        .order(claims::claimed_at.asc())
        .limit(limit)
        .select(Claim::as_select())
        .load(&mut conn)
        .await?;
    let idle_cutoff = before(now, args.idle_for)?;
    let report = Stuck {
        expired_claims: expired.into_iter().map(|c| claim_item(c, now)).collect(),
        long_held_claims: held.into_iter().map(|c| claim_item(c, now)).collect(),
        quarantined: task_items(reports::quarantined_tasks(), limit, &mut conn, now).await?,
        output_saved_not_moving: task_items(
            reports::done_tasks_not_moving(idle_cutoff),
            limit,
            &mut conn,
            now,
        )
        .await?,
        overdue_parks: task_items(reports::overdue_parks(idle_cutoff), limit, &mut conn, now)
            .await?,
        input_not_ready: task_items(reports::tasks_without_input(), limit, &mut conn, now).await?,
        repeatedly_released: task_items(
            reports::repeatedly_released(args.released_times),
            limit,
            &mut conn,
            now,
        )
        .await?,
    };
    crate::output::emit(out.json, &report, render)
}

fn claim_item(c: Claim, now: DateTime<Utc>) -> ClaimItem {
    ClaimItem {
        instance_id: c.instance_id,
        task: hex::encode(&c.task_id),
        worker: c.worker_id,
        claimed_at: time(c.claimed_at),
        expires_at: c.expires_at.map(time),
        held_ms: millis_since(now, c.claimed_at),
    }
}

async fn task_items(
    query: tasks::BoxedQuery<'static, diesel::pg::Pg>,
    limit: i64,
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<TaskItem>, CliError> {
    let rows: Vec<TaskRow> = query
        .order(tasks::queued_at.asc())
        .limit(limit)
        .select((
            tasks::instance_id,
            tasks::task_id,
            tasks::queued_at,
            tasks::stalls,
            tasks::wake_at,
            tasks::retry_at,
            tasks::failed_worker,
            tasks::quarantined,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                instance_id,
                task,
                queued_at,
                stalls,
                wake_at,
                retry_at,
                failed_worker,
                quarantined,
            )| {
                TaskItem {
                    instance_id,
                    task: task.as_deref().map(hex::encode),
                    queued_at: time(queued_at),
                    idle_ms: millis_since(now, queued_at),
                    stalls,
                    wake_at: wake_at.map(time),
                    retry_at: retry_at.map(time),
                    failed_worker,
                    quarantined,
                }
            },
        )
        .collect())
}

fn render(s: &Stuck) -> String {
    let mut text = String::new();
    for (title, items) in [
        ("expired claims", &s.expired_claims),
        ("claims held longer than the threshold", &s.long_held_claims),
    ] {
        let _ = writeln!(text, "{title}: {}", items.len());
        let mut t = Table::new(&["  INSTANCE", "TASK", "WORKER", "HELD", "EXPIRES"]);
        for c in items {
            t.row(vec![
                format!("  {}", c.instance_id),
                hex::short_text(&c.task).to_owned(),
                c.worker.clone(),
                format_millis(c.held_ms),
                or_dash(c.expires_at.as_deref()),
            ]);
        }
        if !t.is_empty() {
            text.push_str(&t.render());
        }
    }
    for (title, items) in [
        ("quarantined rows", &s.quarantined),
        ("output saved, not moving on", &s.output_saved_not_moving),
        ("parked past their wake-up time", &s.overdue_parks),
        ("input not ready", &s.input_not_ready),
        (
            "released repeatedly with nothing saved",
            &s.repeatedly_released,
        ),
    ] {
        let _ = writeln!(text, "{title}: {}", items.len());
        let mut t = Table::new(&[
            "  INSTANCE",
            "TASK",
            "IDLE",
            "RELEASES",
            "WAKE AT",
            "RETRY AT",
            "WHY",
        ]);
        for i in items {
            t.row(vec![
                format!("  {}", i.instance_id),
                i.task
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |h| hex::short_text(h).to_owned()),
                format_millis(i.idle_ms),
                i.stalls.to_string(),
                or_dash(i.wake_at.as_deref()),
                or_dash(i.retry_at.as_deref()),
                or_dash(i.quarantined.as_deref()),
            ]);
        }
        if !t.is_empty() {
            text.push_str(&t.render());
        }
    }
    text
}
