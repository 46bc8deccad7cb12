//! The overview of the whole store (the CLI's `status`): workflows per
//! status, the dispatch queue, claims, requests and events, every count
//! capped at [`COUNT_CAP`], in one statement (`overview.sql`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::Status;
use serde::Serialize;

use super::COUNT_CAP;
use crate::Error;
use crate::format::{capped, millis_since, time};
use crate::plans::Planner;
use crate::sql::steer;

/// The overview statement: every count reads an index and stops after
/// `$1` (`COUNT_CAP + 1`) entries.
pub(crate) const OVERVIEW: &str = include_str!("overview.sql");

/// The overview of the whole store.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// Workflows per status: every status present, 0 when none, each
    /// capped at [`COUNT_CAP`].
    pub workflows: BTreeMap<&'static str, i64>,
    /// The sum of [`Overview::workflows`] (so at most 5 × [`COUNT_CAP`]).
    pub total: i64,
    /// The dispatch queue.
    pub queue: Queue,
    /// Claims whose lease ran out, not released.
    pub expired_claims: i64,
    /// Cancel and pause requests not applied yet.
    pub pending_requests: i64,
    /// External events buffered, not consumed yet.
    pub buffered_events: i64,
    /// The counts that reached [`COUNT_CAP`] and mean "at least", by name:
    /// `workflows.<Status>`, `total`, `queue.<field>`, `expired_claims`,
    /// `pending_requests`, `buffered_events`. Empty when all are exact.
    pub at_least: Vec<String>,
}

/// The dispatch queue part of [`Overview`].
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    /// Queue rows at a task not done yet (running or waiting).
    pub runnable: i64,
    /// Of those, rows no worker holds: waiting for a worker.
    pub waiting: i64,
    /// Of those, rows a worker holds a live claim on.
    pub running: i64,
    /// Workflows parked at a durable delay.
    pub parked_at_delay: i64,
    /// Workflows parked waiting for an event.
    pub parked_at_signal: i64,
    /// Rows set aside because their snapshot cannot be decoded.
    pub quarantined: i64,
    /// When the oldest waiting row was queued: the oldest of the first
    /// waiting rows of each priority level, in the order the finder takes
    /// them.
    pub oldest_waiting_since: Option<String>,
    /// Its age in milliseconds, on the server's clock.
    pub oldest_waiting_ms: Option<i64>,
}

/// The row [`OVERVIEW`] answers: each count read with `LIMIT COUNT_CAP + 1`.
#[derive(Debug, diesel::QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    in_progress: i64,
    #[diesel(sql_type = BigInt)]
    paused: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    cancelled: i64,
    #[diesel(sql_type = BigInt)]
    runnable: i64,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
    #[diesel(sql_type = BigInt)]
    running: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_waiting: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    parked_at_delay: i64,
    #[diesel(sql_type = BigInt)]
    parked_at_signal: i64,
    #[diesel(sql_type = BigInt)]
    quarantined: i64,
    #[diesel(sql_type = BigInt)]
    expired_claims: i64,
    #[diesel(sql_type = BigInt)]
    pending_requests: i64,
    #[diesel(sql_type = BigInt)]
    buffered_events: i64,
    #[diesel(sql_type = Timestamptz)]
    server_now: DateTime<Utc>,
}

fn statement()
-> diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    diesel::sql_query(OVERVIEW)
        .into_boxed()
        .bind::<BigInt, _>(COUNT_CAP + 1)
}

/// The overview of the whole store, in one statement: one snapshot, one
/// round trip, at most [`COUNT_CAP`] + 1 index entries read per count.
///
/// # Errors
/// [`Error::Database`] when the statement fails.
pub async fn overview(conn: &mut AsyncPgConnection) -> Result<Overview, Error> {
    let counts: Counts = conn
        .transaction(async |conn| {
            steer(conn).await?;
            Ok::<_, Error>(statement().get_result(conn).await?)
        })
        .await?;
    Ok(from_counts(&counts))
}

/// The plan of [`OVERVIEW`].
pub(crate) async fn explain(planner: &mut Planner<'_>) -> Result<(), Error> {
    planner.plan("overview", statement()).await
}

/// Caps each count at [`COUNT_CAP`], naming those that reached it.
#[derive(Default)]
struct Capper {
    at_least: Vec<String>,
}

impl Capper {
    fn cap(&mut self, name: &str, counted: i64) -> i64 {
        let (n, reached) = capped(counted, COUNT_CAP);
        if reached {
            self.at_least.push(name.to_owned());
        }
        n
    }
}

fn from_counts(c: &Counts) -> Overview {
    let mut capper = Capper::default();
    let mut workflows = BTreeMap::new();
    let mut total = 0;
    for (status, counted) in [
        (Status::InProgress, c.in_progress),
        (Status::Paused, c.paused),
        (Status::Completed, c.completed),
        (Status::Failed, c.failed),
        (Status::Cancelled, c.cancelled),
    ] {
        let n = capper.cap(&format!("workflows.{status}"), counted);
        workflows.insert(status.as_str(), n);
        total += n;
    }
    if !capper.at_least.is_empty() {
        capper.at_least.push("total".to_owned());
    }
    let queue = Queue {
        runnable: capper.cap("queue.runnable", c.runnable),
        waiting: capper.cap("queue.waiting", c.waiting),
        running: capper.cap("queue.running", c.running),
        parked_at_delay: capper.cap("queue.parked_at_delay", c.parked_at_delay),
        parked_at_signal: capper.cap("queue.parked_at_signal", c.parked_at_signal),
        quarantined: capper.cap("queue.quarantined", c.quarantined),
        oldest_waiting_since: c.oldest_waiting.map(time),
        oldest_waiting_ms: c.oldest_waiting.map(|t| millis_since(c.server_now, t)),
    };
    Overview {
        workflows,
        total,
        queue,
        expired_claims: capper.cap("expired_claims", c.expired_claims),
        pending_requests: capper.cap("pending_requests", c.pending_requests),
        buffered_events: capper.cap("buffered_events", c.buffered_events),
        at_least: capper.at_least,
    }
}
