//! `sayiir.tasks`: the dispatch queue, one row per InProgress instance at a
//! task or parked at a delay or a signal. [`super::workflows::write()`]
//! keeps it in step with the workflow row; the finders, maintenance and the
//! claim statements read and mark it. What the finders share is defined
//! once, in a migration: the SQL function `sayiir.task_is_dispatchable`
//! (whether a row may be handed out now) and the view
//! `sayiir.task_priorities` (the runnable priority levels, one index probe
//! each). Both are plain SQL the planner inlines, so the plans are those of
//! the rules written out; the plan tests hold them to that.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;

use super::workflows::Stored;
use crate::error::Result;
use crate::kinds::QueuedPosition;
use crate::queries::Raw;
use crate::schema::sayiir::tasks;

/// The finder: every dispatch rule decided on the queue row before
/// `LIMIT`, one index walk per priority level, ordered by offers, worker
/// bias, aged priority and age; open picks are offered to the polling
/// worker, tasks offered to others fill the rest, and all are hydrated.
pub(crate) const FIND: &str = include_str!("tasks/find.sql");
/// The same rules for one hinted (instance, task).
pub(crate) const FIND_HINTED: &str = include_str!("tasks/find_hinted.sql");
/// Parks that are due (delay expired, event buffered, signal timed out),
/// pending requests nobody applies, and rows left at a completed task past
/// the recovery grace period.
pub(crate) const DUE_WORK: &str = include_str!("tasks/due_work.sql");
/// For metrics: how many tasks are claimable now (up to a cap) and how long
/// the oldest of them has waited; read through the runnable index.
pub(crate) const SAMPLE: &str = include_str!("tasks/sample.sql");

/// One dispatch-queue row (`sayiir.tasks`): an InProgress instance at a task
/// or parked at a delay or signal.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg))]
pub struct QueuedTask {
    /// Instance id.
    pub instance_id: String,
    /// At a task, or parked at a delay or a signal.
    pub position_kind: QueuedPosition,
    /// The task to run (at a park: the task after it).
    pub task_id: Option<Vec<u8>>,
    /// The delay or signal node id of a park.
    pub park_id: Option<Vec<u8>>,
    /// The awaited signal's name.
    pub signal_name: Option<String>,
    /// Delay expiry or signal timeout.
    pub wake_at: Option<DateTime<Utc>>,
    /// The task's output is already recorded.
    pub completed: bool,
    /// The task's input can be resolved.
    pub input_ready: bool,
    /// Priority (1 = highest, 3 = default).
    pub priority: i16,
    /// Tags a worker must have.
    pub tags: Vec<String>,
    /// Retry back-off end of the current task.
    pub retry_at: Option<DateTime<Utc>>,
    /// Worker the current task last failed on.
    pub failed_worker: Option<String>,
    /// The snapshot's `updated_at` (drives priority aging).
    pub aged_from: DateTime<Utc>,
    /// When this row was last written.
    pub queued_at: DateTime<Utc>,
    /// Why the finder sets this row aside (its snapshot could not be
    /// decoded); `None` for a normal row. See
    /// [`reports::quarantined_tasks`](crate::reports::quarantined_tasks).
    pub quarantined: Option<String>,
}

/// A finder pick: its hydrated workflow, the workflow revision it was read
/// at, and whether the workflow row still matches the queue row.
#[derive(QueryableByName)]
pub(crate) struct Found {
    /// The workflow row still matches the queue row (else maintenance
    /// decides under the workflow lock).
    #[diesel(sql_type = Bool)]
    pub current: bool,
    /// The workflow revision the pick was read at.
    #[diesel(sql_type = BigInt)]
    pub revision: i64,
    /// The hydrated workflow.
    #[diesel(embed)]
    pub stored: Stored,
}

/// A hinted pick and the workflow revision it was read at.
#[derive(QueryableByName)]
pub(crate) struct Hinted {
    /// The workflow revision the pick was read at.
    #[diesel(sql_type = BigInt)]
    pub revision: i64,
    /// The hydrated workflow.
    #[diesel(embed)]
    pub stored: Stored,
}

/// What one worker's poll asks the finder for.
pub(crate) struct Poll<'a> {
    /// The polling worker.
    pub worker_id: &'a str,
    /// Seconds of waiting that raise a task one priority level.
    pub aging_secs: f64,
    /// The worker's tags (a task's tags must all be among them).
    pub worker_tags: &'a [String],
    /// At most this many picks.
    pub limit: i64,
    /// How long the open picks are offered to this worker, in ms.
    pub offer_ms: f64,
}

/// Up to `poll.limit` dispatchable tasks, offered to the polling worker and
/// hydrated, in one statement.
pub(crate) async fn find(conn: &mut AsyncPgConnection, poll: &Poll<'_>) -> Result<Vec<Found>> {
    Ok(Raw::new(FIND)
        .bind::<Text, _>(poll.worker_id)
        .bind::<Double, _>(poll.aging_secs)
        .bind::<Array<Text>, _>(poll.worker_tags)
        .bind::<BigInt, _>(poll.limit)
        .bind::<Double, _>(poll.offer_ms)
        .load(conn)
        .await?)
}

/// The hinted (instance, task), hydrated, when the finder's rules would
/// hand it out now. One statement.
pub(crate) async fn find_hinted(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: &[u8],
) -> Result<Option<Hinted>> {
    Ok(Raw::new(FIND_HINTED)
        .bind::<Text, _>(instance_id)
        .bind::<Bytea, _>(task_id)
        .get_result(conn)
        .await
        .optional()?)
}

/// Instances maintenance should look at now (see [`DUE_WORK`]), at most
/// `limit`; rows idle for `recovery_grace_ms` count as crashed.
pub(crate) async fn due(
    conn: &mut AsyncPgConnection,
    recovery_grace_ms: f64,
    limit: i64,
) -> Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Due {
        #[diesel(sql_type = Text)]
        instance_id: String,
    }
    let due: Vec<Due> = Raw::new(DUE_WORK)
        .bind::<Double, _>(recovery_grace_ms)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(due.into_iter().map(|d| d.instance_id).collect())
}

/// Claimable tasks now, counted up to a cap, and the oldest one's wait.
#[derive(Debug, QueryableByName)]
pub(crate) struct Sample {
    /// Claimable tasks, at most the cap.
    #[diesel(sql_type = BigInt)]
    pub depth: i64,
    /// Seconds the oldest claimable task has waited (0 when none).
    #[diesel(sql_type = Double)]
    pub oldest_age_secs: f64,
}

/// Samples the queue (see [`SAMPLE`]), counting at most `cap` tasks.
pub(crate) async fn sample(conn: &mut AsyncPgConnection, cap: i64) -> Result<Sample> {
    Ok(Raw::new(SAMPLE)
        .bind::<BigInt, _>(cap)
        .get_result(conn)
        .await?)
}

/// Sets the row aside: the finder skips it until `retry_at`, which backs
/// off from `backoff_secs` doubling with each stall (up to 1024 times). The
/// next write of the workflow clears it.
pub(crate) async fn quarantine(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    reason: &str,
    backoff_secs: f64,
) -> Result<()> {
    diesel::update(tasks::table.find(instance_id))
        .set((
            tasks::quarantined.eq(reason),
            tasks::stalls.eq(tasks::stalls + 1),
            // now() + backoff · 2^min(stalls, 10), on the database clock.
            tasks::retry_at.eq(sql::<Nullable<Timestamptz>>("now() + ")
                .bind::<Double, _>(backoff_secs)
                .sql(" * interval '1 second' * power(2, least(stalls, 10))")),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes the instance's queue row (one a racing write left behind).
pub(crate) async fn delete(conn: &mut AsyncPgConnection, instance_id: &str) -> Result<()> {
    diesel::delete(tasks::table.find(instance_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Stops maintenance looking for a buffered event for this park (until the
/// next write parks it again).
pub(crate) async fn stop_event_wait(conn: &mut AsyncPgConnection, instance_id: &str) -> Result<()> {
    diesel::update(tasks::table.find(instance_id))
        .set(tasks::event_waiting.eq(false))
        .execute(conn)
        .await?;
    Ok(())
}

/// When the row was last written, last released by a claim holder, and
/// how long a claim holds it: the evidence crash recovery weighs.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg))]
pub(crate) struct Activity {
    /// Last write of the row.
    pub queued_at: DateTime<Utc>,
    /// Last claim release.
    pub released_at: Option<DateTime<Utc>>,
    /// Mirror of the live claim's expiry.
    pub claimed_until: Option<DateTime<Utc>>,
}

/// The row's [`Activity`].
pub(crate) async fn activity(conn: &mut AsyncPgConnection, instance_id: &str) -> Result<Activity> {
    Ok(tasks::table
        .find(instance_id)
        .select(Activity::as_select())
        .first(conn)
        .await?)
}

/// The task whose output is the current task's input, as the last write
/// recorded it: `Some(None)` means the initial input, `None` that the row
/// does not know (written before the column existed).
pub(crate) async fn input_from(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
) -> Result<Option<Option<TaskId>>> {
    let (from, known): (Option<Vec<u8>>, bool) = tasks::table
        .find(instance_id)
        .select((tasks::input_from, tasks::input_known))
        .first(conn)
        .await?;
    if !known {
        return Ok(None);
    }
    Ok(Some(
        from.as_deref().map(crate::codec::task_id).transpose()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement that hands out or counts runnable tasks calls the
    /// one dispatch rule; none writes it out again.
    #[test]
    fn the_finders_call_the_one_dispatch_rule() {
        for (name, sql, calls) in [
            ("find", FIND, 3),
            ("find_hinted", FIND_HINTED, 1),
            ("sample", SAMPLE, 2),
        ] {
            assert_eq!(
                sql.matches("sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)").count(),
                calls,
                "{name}"
            );
            assert!(
                !sql.contains("claimed_until <="),
                "{name} writes the rule out"
            );
        }
        assert!(
            FIND.contains("FROM sayiir.task_priorities")
                && SAMPLE.contains("FROM sayiir.task_priorities")
        );
    }

    /// Every statement that returns a snapshot with its outputs hydrates
    /// it through the one function; none aggregates the outputs itself.
    #[test]
    fn snapshots_are_hydrated_by_the_one_function() {
        for (name, sql, alias) in [
            ("find", FIND, "h"),
            ("find_hinted", FIND_HINTED, "w"),
            ("load", crate::models::workflows::LOAD, "w"),
        ] {
            let call = format!(
                "CROSS JOIN LATERAL sayiir.member_outputs({alias}.instance_id, {alias}.members) AS o"
            );
            assert_eq!(sql.matches(call.as_str()).count(), 1, "{name}");
            assert!(
                !sql.contains("array_agg"),
                "{name} aggregates the outputs itself"
            );
        }
    }
}
