//! Typed query fragments over the `sayiir` tables for your own reports and
//! dashboards. Each returns a boxed Diesel query you can filter, order,
//! count or join further, then run on your own connection:
//!
//! ```no_run
//! # async fn demo(conn: &mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<()> {
//! use diesel::prelude::*;
//! use diesel_async::RunQueryDsl;
//! use sayiir_diesel::{models::Workflow, reports, schema::sayiir::workflows};
//!
//! let failed: Vec<Workflow> = reports::workflows_in(sayiir_diesel::Status::Failed)
//!     .order(workflows::updated_at.desc())
//!     .limit(20)
//!     .select(Workflow::as_select())
//!     .load(conn)
//!     .await?;
//! let waiting: i64 = reports::runnable_tasks().count().get_result(conn).await?;
//! # let _ = (failed, waiting);
//! # Ok(())
//! # }
//! ```

use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Timestamptz};

use crate::kinds::{QueuedPosition, Status};
use crate::schema::sayiir::{claims, history, task_outputs, tasks, workflows};

/// Workflows in one status.
#[must_use]
pub fn workflows_in(status: Status) -> workflows::BoxedQuery<'static, Pg> {
    workflows::table
        .filter(workflows::status.eq(status))
        .into_boxed()
}

/// Workflows that finished (Completed, Failed or Cancelled) before `cutoff`:
/// what a retention job would prune.
#[must_use]
pub fn finished_before(
    cutoff: chrono::DateTime<chrono::Utc>,
) -> workflows::BoxedQuery<'static, Pg> {
    workflows::table
        .filter(workflows::finished_at.lt(cutoff))
        .into_boxed()
}

/// The append-only history of one instance, oldest first.
#[must_use]
pub fn history_of(instance_id: &str) -> history::BoxedQuery<'_, Pg> {
    history::table
        .filter(history::instance_id.eq(instance_id))
        .order(history::revision.asc())
        .into_boxed()
}

/// Claims whose lease has run out and that no worker released (a worker
/// died or was cut off); the finder lets others take them over.
#[must_use]
pub fn expired_claims() -> claims::BoxedQuery<'static, Pg> {
    claims::table
        .filter(claims::expires_at.le(now))
        .into_boxed()
}

/// Queue rows at a task that is not done yet (add your own filters, e.g.
/// tags or priority); `.count()` gives the queue depth, ordering by
/// `queued_at` its age.
#[must_use]
pub fn runnable_tasks() -> tasks::BoxedQuery<'static, Pg> {
    tasks::table
        .filter(tasks::position_kind.eq(QueuedPosition::AtTask))
        .filter(tasks::completed.eq(false))
        .filter(tasks::quarantined.is_null())
        .into_boxed()
}

/// Queue rows the finder skips because their snapshot cannot be decoded,
/// with the reason in `quarantined`.
#[must_use]
pub fn quarantined_tasks() -> tasks::BoxedQuery<'static, Pg> {
    tasks::table
        .filter(tasks::quarantined.is_not_null())
        .into_boxed()
}

/// Runnable queue rows no worker holds right now (never claimed, released,
/// or the claim's lease ran out): the backlog waiting for a worker.
/// `.count()` gives the waiting depth; the smallest `queued_at` the age of
/// the oldest waiting task. Rows in a retry back-off or with a pending
/// cancel or pause request are included.
#[must_use]
pub fn waiting_tasks() -> tasks::BoxedQuery<'static, Pg> {
    runnable_tasks().filter(
        tasks::claimed_until
            .is_null()
            .or(tasks::claimed_until.le(now)),
    )
}

/// Claims taken before `cutoff` that are still held (expired or not): a
/// task running longer than you expect, or a worker that stopped
/// heartbeating. Heartbeats move `expires_at`, never `claimed_at`.
#[must_use]
pub fn claims_held_since(cutoff: chrono::DateTime<chrono::Utc>) -> claims::BoxedQuery<'static, Pg> {
    claims::table
        .filter(claims::claimed_at.lt(cutoff))
        .into_boxed()
}

/// Queue rows at a task whose output is already recorded, with no live
/// claim, unchanged since before `cutoff`: a worker saved the task's output
/// and never saved the next state (it crashed, or was cut off). Maintenance
/// runs such a task again once `recovery_grace` has passed and a worker was
/// driving it; rows older than that are not moving on (e.g. no worker is
/// polling, or an in-process runner left them).
#[must_use]
pub fn done_tasks_not_moving(
    cutoff: chrono::DateTime<chrono::Utc>,
) -> tasks::BoxedQuery<'static, Pg> {
    tasks::table
        .filter(tasks::position_kind.eq(QueuedPosition::AtTask))
        .filter(tasks::completed.eq(true))
        .filter(
            tasks::claimed_until
                .is_null()
                .or(tasks::claimed_until.le(now)),
        )
        .filter(tasks::queued_at.lt(cutoff))
        .into_boxed()
}

/// Workflows parked at a delay or a signal wait whose wake-up time passed
/// before `cutoff` and that are still parked: maintenance (run by any
/// polling worker's finder) moves such rows on, so rows well past their time
/// mean no worker is polling, or the row cannot be advanced. Reads
/// `tasks_wake_at_idx`.
#[must_use]
pub fn overdue_parks(cutoff: chrono::DateTime<chrono::Utc>) -> tasks::BoxedQuery<'static, Pg> {
    tasks::table
        .filter(tasks::wake_at.lt(cutoff))
        .filter(tasks::position_kind.eq_any([QueuedPosition::AtDelay, QueuedPosition::AtSignal]))
        .into_boxed()
}

/// Runnable queue rows whose task input cannot be resolved (no initial
/// input and no recorded output to feed it): no finder ever offers them.
#[must_use]
pub fn tasks_without_input() -> tasks::BoxedQuery<'static, Pg> {
    runnable_tasks().filter(tasks::input_ready.eq(false))
}

/// Runnable queue rows released at least `times` times in a row with
/// nothing saved (the task failed with no retry left, panicked or was given
/// up): they run again after a back-off, and keep failing.
#[must_use]
pub fn repeatedly_released(times: i32) -> tasks::BoxedQuery<'static, Pg> {
    runnable_tasks().filter(tasks::stalls.ge(times))
}

diesel::define_sql_function! {
    /// PostgreSQL's `octet_length(bytea)`: the size of a stored blob in bytes.
    fn octet_length(bytes: diesel::sql_types::Bytea) -> diesel::sql_types::Integer;
}

/// The task outputs of one instance as (task id, size in bytes, recorded
/// at), largest first, without reading the outputs themselves.
#[must_use]
pub fn output_sizes(instance_id: &str) -> task_outputs::BoxedQuery<'_, Pg, OutputSizeRow> {
    task_outputs::table
        .filter(task_outputs::instance_id.eq(instance_id))
        .select((
            task_outputs::task_id,
            octet_length(task_outputs::output),
            task_outputs::recorded_at,
        ))
        .order((
            octet_length(task_outputs::output).desc(),
            task_outputs::task_id.asc(),
        ))
        .into_boxed()
}

/// SQL types of an [`output_sizes`] row: task id, bytes, recorded at.
pub type OutputSizeRow = (Bytea, Integer, Timestamptz);

/// The history of one instance, newest first, as (revision, status,
/// position kind, recorded at, snapshot size in bytes), without reading the
/// blobs. Add `.limit(n)` for the most recent entries.
#[must_use]
pub fn history_summary(instance_id: &str) -> history::BoxedQuery<'_, Pg, HistorySummaryRow> {
    history::table
        .filter(history::instance_id.eq(instance_id))
        .select((
            history::revision,
            history::status,
            history::position_kind,
            history::recorded_at,
            octet_length(history::snapshot),
        ))
        .order(history::revision.desc())
        .into_boxed()
}

/// SQL types of a [`history_summary`] row.
pub type HistorySummaryRow = (BigInt, Text, Nullable<Text>, Timestamptz, Integer);

/// How many workflows are in each status, as (status, count); statuses with
/// none are absent.
#[must_use]
pub fn status_counts() -> StatusCounts {
    workflows::table
        .group_by(workflows::status)
        .select((workflows::status, diesel::dsl::count_star()))
        .into_boxed()
}

/// The query [`status_counts`] returns.
pub type StatusCounts = diesel::query_builder::BoxedSelectStatement<
    'static,
    (Text, BigInt),
    diesel::query_builder::FromClause<workflows::table>,
    Pg,
    workflows::status,
>;
