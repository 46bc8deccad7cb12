//! What is not moving, kind by kind (the CLI's `stuck`): each list walks
//! one index in its order and stops after `limit` rows. The queue's
//! conditions are written as literals, so the partial indexes they match
//! (`tasks_recovery_idx`, `tasks_input_not_ready_idx`, `tasks_stalled_idx`,
//! `tasks_quarantined_idx`) apply in generic plans too.

use chrono::{DateTime, Utc};
use diesel::dsl::not;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::QueuedPosition;
use sayiir_diesel::reports;
use sayiir_diesel::schema::sayiir::{claims, tasks};
use serde::Serialize;

use super::server_now;
use crate::Error;
use crate::format::{before, hex, millis_since, time};
use crate::plans::Planner;
use crate::sql::{Named, Zero, steer};

/// The thresholds of [`stuck`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StuckFilter {
    /// Report live claims taken longer ago than this.
    pub held_longer_than: std::time::Duration,
    /// Report tasks whose output is saved but whose workflow has not moved
    /// on for this long, and parked workflows this far past their wake-up
    /// time.
    pub idle_for: std::time::Duration,
    /// Report tasks released this many times in a row (at least 1) with
    /// nothing saved.
    pub released_times: i32,
    /// Most rows listed per kind.
    pub limit: u32,
}

impl Default for StuckFilter {
    /// 1 h, 5 min, 3 releases, 50 rows (the CLI's defaults).
    fn default() -> Self {
        Self {
            held_longer_than: std::time::Duration::from_hours(1),
            idle_for: std::time::Duration::from_mins(5),
            released_times: 3,
            limit: 50,
        }
    }
}

/// What is not moving: one list per kind, each at most `limit` long.
#[derive(Debug, Clone, Serialize)]
pub struct Stuck {
    /// Claims whose lease ran out and that no worker released, soonest
    /// expired first.
    pub expired_claims: Vec<ClaimItem>,
    /// Live claims taken longer ago than `held_longer_than`, oldest first.
    pub long_held_claims: Vec<ClaimItem>,
    /// Rows the finder skips: their snapshot cannot be decoded (by retry
    /// time).
    pub quarantined: Vec<TaskItem>,
    /// Output saved, next state never saved, no live claim, for
    /// `idle_for` (oldest first).
    pub output_saved_not_moving: Vec<TaskItem>,
    /// Parked at a delay or signal wait whose wake-up time passed more than
    /// `idle_for` ago, still parked (most overdue first).
    pub overdue_parks: Vec<TaskItem>,
    /// Tasks whose input cannot be resolved: no worker is ever offered them
    /// (oldest first).
    pub input_not_ready: Vec<TaskItem>,
    /// Tasks released `released_times` or more in a row with nothing saved
    /// (oldest first).
    pub repeatedly_released: Vec<TaskItem>,
}

/// A claim in [`Stuck`].
#[derive(Debug, Clone, Serialize)]
pub struct ClaimItem {
    /// The claimed workflow.
    pub instance_id: String,
    /// The claimed task, hex.
    pub task: String,
    /// The worker holding it.
    pub worker: String,
    /// When it was taken.
    pub claimed_at: String,
    /// When it expires (`None`: never).
    pub expires_at: Option<String>,
    /// Milliseconds since it was taken, on the server's clock.
    pub held_ms: i64,
}

/// A queue row in [`Stuck`].
#[derive(Debug, Clone, Serialize)]
pub struct TaskItem {
    /// The queued workflow.
    pub instance_id: String,
    /// Its task (at a park: the task after it), hex.
    pub task: Option<String>,
    /// When the row was last written.
    pub queued_at: String,
    /// Milliseconds since the row was last written.
    pub idle_ms: i64,
    /// Releases in a row with nothing saved.
    pub stalls: i32,
    /// Delay expiry or signal timeout.
    pub wake_at: Option<String>,
    /// End of the task's retry back-off.
    pub retry_at: Option<String>,
    /// The worker the task last failed on.
    pub failed_worker: Option<String>,
    /// Why the finder set the row aside, if it did.
    pub quarantined: Option<String>,
}

type ClaimRow = (
    String,
    Vec<u8>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);
type ClaimSql = (Text, Bytea, Text, Timestamptz, Nullable<Timestamptz>);

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
type TaskSql = (
    Text,
    Nullable<Bytea>,
    Timestamptz,
    Integer,
    Nullable<Timestamptz>,
    Nullable<Timestamptz>,
    Nullable<Text>,
    Nullable<Text>,
);

/// The statements of [`stuck`], built once for the read and its plans.
struct Statements {
    expired: claims::BoxedQuery<'static, Pg, ClaimSql>,
    held: claims::BoxedQuery<'static, Pg, ClaimSql>,
    quarantined: tasks::BoxedQuery<'static, Pg, TaskSql>,
    not_moving: tasks::BoxedQuery<'static, Pg, TaskSql>,
    overdue: tasks::BoxedQuery<'static, Pg, TaskSql>,
    no_input: tasks::BoxedQuery<'static, Pg, TaskSql>,
    released: tasks::BoxedQuery<'static, Pg, TaskSql>,
}

/// What is not moving, kind by kind.
///
/// # Errors
/// [`Error::Input`] for an age too large or `released_times` below 1;
/// [`Error::Database`] when a statement fails.
pub async fn stuck(conn: &mut AsyncPgConnection, filter: &StuckFilter) -> Result<Stuck, Error> {
    conn.transaction(async |conn| {
        steer(conn).await?;
        let now = server_now(conn).await?;
        let s = statements(filter, now)?;
        let claim = |c: ClaimRow| claim_item(c, now);
        let task = |r: TaskRow| task_item(r, now);
        Ok(Stuck {
            expired_claims: s.expired.load(conn).await?.into_iter().map(claim).collect(),
            long_held_claims: s.held.load(conn).await?.into_iter().map(claim).collect(),
            quarantined: s
                .quarantined
                .load(conn)
                .await?
                .into_iter()
                .map(task)
                .collect(),
            output_saved_not_moving: s
                .not_moving
                .load(conn)
                .await?
                .into_iter()
                .map(task)
                .collect(),
            overdue_parks: s.overdue.load(conn).await?.into_iter().map(task).collect(),
            input_not_ready: s.no_input.load(conn).await?.into_iter().map(task).collect(),
            repeatedly_released: s.released.load(conn).await?.into_iter().map(task).collect(),
        })
    })
    .await
}

/// The plans of [`stuck`]'s statements for `filter`.
pub(crate) async fn explain(planner: &mut Planner<'_>, filter: &StuckFilter) -> Result<(), Error> {
    let now = server_now(planner.conn()).await?;
    let s = statements(filter, now)?;
    planner.plan("stuck: expired claims", s.expired).await?;
    planner.plan("stuck: long-held claims", s.held).await?;
    planner.plan("stuck: quarantined", s.quarantined).await?;
    planner
        .plan("stuck: output saved, not moving", s.not_moving)
        .await?;
    planner.plan("stuck: overdue parks", s.overdue).await?;
    planner.plan("stuck: input not ready", s.no_input).await?;
    planner.plan("stuck: repeatedly released", s.released).await
}

fn statements(filter: &StuckFilter, now: DateTime<Utc>) -> Result<Statements, Error> {
    if filter.released_times < 1 {
        return Err(Error::Input(format!(
            "released times {} is below 1",
            filter.released_times
        )));
    }
    let limit = i64::from(filter.limit);
    let idle_cutoff = before(now, filter.idle_for)?;
    let claim_columns = (
        claims::instance_id,
        claims::task_id,
        claims::worker_id,
        claims::claimed_at,
        claims::expires_at,
    );
    let live = claims::expires_at
        .is_null()
        .or(claims::expires_at.gt(diesel::dsl::now));
    let runnable = || {
        tasks::table
            .filter(tasks::position_kind.eq(Named::kind(QueuedPosition::AtTask)))
            .filter(not(tasks::completed))
            .filter(tasks::quarantined.is_null())
            .into_boxed()
    };
    let unclaimed = tasks::claimed_until
        .is_null()
        .or(tasks::claimed_until.le(diesel::dsl::now));
    Ok(Statements {
        expired: reports::expired_claims()
            .order(claims::expires_at.asc())
            .limit(limit)
            .select(claim_columns),
        held: reports::claims_held_since(before(now, filter.held_longer_than)?)
            .filter(live)
            .order(claims::claimed_at.asc())
            .limit(limit)
            .select(claim_columns),
        quarantined: task_rows(
            tasks::table
                .filter(tasks::quarantined.is_not_null())
                .order(tasks::retry_at.asc())
                .into_boxed(),
            limit,
        ),
        not_moving: task_rows(
            tasks::table
                .filter(tasks::position_kind.eq(Named::kind(QueuedPosition::AtTask)))
                .filter(tasks::completed)
                .filter(unclaimed)
                .filter(tasks::queued_at.lt(idle_cutoff))
                .order(tasks::queued_at.asc())
                .into_boxed(),
            limit,
        ),
        overdue: task_rows(
            tasks::table
                .filter(tasks::wake_at.lt(idle_cutoff))
                .filter(
                    tasks::position_kind
                        .eq(Named::kind(QueuedPosition::AtDelay))
                        .or(tasks::position_kind.eq(Named::kind(QueuedPosition::AtSignal))),
                )
                .order(tasks::wake_at.asc())
                .into_boxed(),
            limit,
        ),
        no_input: task_rows(
            runnable()
                .filter(not(tasks::input_ready))
                .order(tasks::queued_at.asc()),
            limit,
        ),
        released: task_rows(
            runnable()
                .filter(tasks::stalls.gt(Zero))
                .filter(tasks::stalls.ge(filter.released_times))
                .order(tasks::queued_at.asc()),
            limit,
        ),
    })
}

fn task_rows(
    query: tasks::BoxedQuery<'static, Pg>,
    limit: i64,
) -> tasks::BoxedQuery<'static, Pg, TaskSql> {
    query.limit(limit).select((
        tasks::instance_id,
        tasks::task_id,
        tasks::queued_at,
        tasks::stalls,
        tasks::wake_at,
        tasks::retry_at,
        tasks::failed_worker,
        tasks::quarantined,
    ))
}

fn claim_item(c: ClaimRow, now: DateTime<Utc>) -> ClaimItem {
    let (instance_id, task, worker, claimed_at, expires_at) = c;
    ClaimItem {
        instance_id,
        task: hex(&task),
        worker,
        claimed_at: time(claimed_at),
        expires_at: expires_at.map(time),
        held_ms: millis_since(now, claimed_at),
    }
}

fn task_item(row: TaskRow, now: DateTime<Utc>) -> TaskItem {
    let (instance_id, task, queued_at, stalls, wake_at, retry_at, failed_worker, quarantined) = row;
    TaskItem {
        instance_id,
        task: task.as_deref().map(hex),
        queued_at: time(queued_at),
        idle_ms: millis_since(now, queued_at),
        stalls,
        wake_at: wake_at.map(time),
        retry_at: retry_at.map(time),
        failed_worker,
        quarantined,
    }
}
