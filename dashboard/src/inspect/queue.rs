//! The dispatch queue row by row (dashboard only): tasks waiting for a
//! worker, in the order the finder takes them, and parked workflows by
//! wake-up time. Each list walks an index in its order and stops after
//! `limit` rows.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use diesel::dsl::not;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::QueuedPosition;
use sayiir_diesel::schema::sayiir::tasks;
use serde::Serialize;

use super::{MAX_LIMIT, server_now};
use crate::Error;
use crate::format::{hex, millis_since, time};
use crate::plans::Planner;
use crate::sql::{Named, steer};

/// A task waiting for a worker.
#[derive(Debug, Clone, Serialize)]
pub struct Waiting {
    /// The queued workflow.
    pub instance_id: String,
    /// The task to run, hex.
    pub task: Option<String>,
    /// Its priority, 1 (highest) to 5.
    pub priority: i16,
    /// Worker tags it needs.
    pub tags: Vec<String>,
    /// When the row was last written (RFC 3339, UTC).
    pub queued_at: String,
    /// Milliseconds since, on the server's clock.
    pub waiting_ms: i64,
}

/// A workflow parked at a delay or a signal wait.
#[derive(Debug, Clone, Serialize)]
pub struct Parked {
    /// The parked workflow.
    pub instance_id: String,
    /// `AtDelay` or `AtSignal`.
    pub kind: &'static str,
    /// The awaited signal's name (`AtSignal`).
    pub signal_name: Option<String>,
    /// When the delay ends or the wait times out (`None`: a wait without a
    /// timeout).
    pub wake_at: Option<String>,
}

type WaitingRow = (String, Option<Vec<u8>>, i16, Vec<String>, DateTime<Utc>);
type WaitingSql = (Text, Nullable<Bytea>, SmallInt, Array<Text>, Timestamptz);

type ParkedRow = (String, Option<String>, Option<DateTime<Utc>>);
type ParkedSql = (Text, Nullable<Text>, Nullable<Timestamptz>);

/// Waiting tasks (runnable, no live claim) by priority, then oldest first,
/// through `tasks_runnable_idx`: at most `limit` (up to [`MAX_LIMIT`]).
///
/// # Errors
/// [`Error::Input`] for a limit out of range; [`Error::Database`] when a
/// statement fails.
pub async fn waiting(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<Waiting>, Error> {
    check(limit)?;
    conn.transaction(async |conn| {
        steer(conn).await?;
        let now = server_now(conn).await?;
        let rows: Vec<WaitingRow> = waiting_query(limit).load(conn).await?;
        Ok(rows
            .into_iter()
            .map(|(instance_id, task, priority, tags, queued_at)| Waiting {
                instance_id,
                task: task.as_deref().map(hex),
                priority,
                tags,
                queued_at: time(queued_at),
                waiting_ms: millis_since(now, queued_at),
            })
            .collect())
    })
    .await
}

/// Parked workflows by wake-up time (waits without a timeout last), then
/// instance id, through `tasks_parked_idx`: at most `limit` (up to
/// [`MAX_LIMIT`]).
///
/// # Errors
/// [`Error::Input`] for a limit out of range; [`Error::Database`] when a
/// statement fails.
pub async fn parked(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<Parked>, Error> {
    check(limit)?;
    let (delays, signals) = conn
        .transaction(async |conn| {
            steer(conn).await?;
            let delays: Vec<ParkedRow> = parked_query(QueuedPosition::AtDelay, limit)
                .load(conn)
                .await?;
            let signals: Vec<ParkedRow> = parked_query(QueuedPosition::AtSignal, limit)
                .load(conn)
                .await?;
            Ok::<_, Error>((delays, signals))
        })
        .await?;
    let mut all: Vec<(QueuedPosition, ParkedRow)> = delays
        .into_iter()
        .map(|r| (QueuedPosition::AtDelay, r))
        .chain(signals.into_iter().map(|r| (QueuedPosition::AtSignal, r)))
        .collect();
    all.sort_by(|(_, a), (_, b)| by_wake_time(a, b));
    Ok(all
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|(kind, (instance_id, signal_name, wake_at))| Parked {
            instance_id,
            kind: kind.as_str(),
            signal_name,
            wake_at: wake_at.map(time),
        })
        .collect())
}

/// The plans of [`waiting`]'s and [`parked`]'s statements.
pub(crate) async fn explain(planner: &mut Planner<'_>, limit: i64) -> Result<(), Error> {
    check(limit)?;
    planner.plan("queue: waiting", waiting_query(limit)).await?;
    planner
        .plan(
            "queue: parked at a delay",
            parked_query(QueuedPosition::AtDelay, limit),
        )
        .await?;
    planner
        .plan(
            "queue: parked at a signal",
            parked_query(QueuedPosition::AtSignal, limit),
        )
        .await
}

fn check(limit: i64) -> Result<(), Error> {
    if (0..=i64::from(MAX_LIMIT)).contains(&limit) {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "limit {limit} is out of range 0..={MAX_LIMIT}"
        )))
    }
}

fn waiting_query(limit: i64) -> tasks::BoxedQuery<'static, Pg, WaitingSql> {
    tasks::table
        .filter(tasks::position_kind.eq(Named::kind(QueuedPosition::AtTask)))
        .filter(not(tasks::completed))
        .filter(tasks::quarantined.is_null())
        .filter(
            tasks::claimed_until
                .is_null()
                .or(tasks::claimed_until.le(diesel::dsl::now)),
        )
        .order((tasks::priority.asc(), tasks::aged_from.asc()))
        .limit(limit)
        .select((
            tasks::instance_id,
            tasks::task_id,
            tasks::priority,
            tasks::tags,
            tasks::queued_at,
        ))
        .into_boxed()
}

fn parked_query(kind: QueuedPosition, limit: i64) -> tasks::BoxedQuery<'static, Pg, ParkedSql> {
    tasks::table
        .filter(tasks::position_kind.eq(Named::kind(kind)))
        .order((tasks::wake_at.asc(), tasks::instance_id.asc()))
        .limit(limit)
        .select((tasks::instance_id, tasks::signal_name, tasks::wake_at))
        .into_boxed()
}

/// Soonest wake-up first, no wake-up last (as the index orders them),
/// then by instance id.
fn by_wake_time(a: &ParkedRow, b: &ParkedRow) -> Ordering {
    let wake = match (a.2, b.2) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    wake.then_with(|| a.0.cmp(&b.0))
}
