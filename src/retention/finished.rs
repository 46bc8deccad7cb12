//! Step: finished workflows older than an age, whole.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not, now};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::explain::Planner;
use super::{Batching, PruneReport, by_age, rows};
use crate::error::Result;
use crate::kinds::Status;
use crate::schema::sayiir::{claims, events, history, task_outputs, workflows};

const LIVE: [Status; 2] = [Status::InProgress, Status::Paused];

/// Deletes Completed, Failed and Cancelled workflows that finished more
/// than `older_than` ago, oldest first, with their task outputs, history
/// and buffered events. Each batch is one transaction: it locks the
/// workflow rows (skipping locked ones), then deletes their events,
/// outputs, history and the rows themselves (the lock order of every
/// store call). A workflow a worker still holds an unexpired claim on (it
/// saved the final state and has not released yet) is left for a later
/// call.
///
/// # Errors
/// A statement failed; earlier batches stay committed.
#[tracing::instrument(level = "debug", skip(conn), err)]
pub async fn delete_finished_workflows(
    conn: &mut AsyncPgConnection,
    older_than: Duration,
    batching: Batching,
) -> Result<PruneReport> {
    let tally = |report: &mut PruneReport, batch: PruneReport| {
        let workflows = usize::try_from(batch.workflows).unwrap_or(usize::MAX);
        *report += batch;
        workflows
    };
    by_age(conn, older_than, batching, batch, tally).await
}

/// The candidates of one batch, oldest first, locked.
macro_rules! candidates {
    ($cutoff:expr, $size:expr) => {
        workflows::table
            .select(workflows::instance_id)
            .filter(workflows::finished_at.lt($cutoff))
            // Finished, said as "not live": `= ANY(finished)` would invite a
            // bitmap scan of the status index and a sort of every old
            // workflow per batch (the CHECK constraint allows five values).
            .filter(workflows::status.ne_all(LIVE))
            .filter(not(exists(
                claims::table
                    .filter(claims::instance_id.eq(workflows::instance_id))
                    .filter(claims::expires_at.is_null().or(claims::expires_at.gt(now))),
            )))
            .order(workflows::finished_at)
            .limit($size)
            .for_update()
            .skip_locked()
    };
}

/// The rows of `$table` that belong to the instances `$ids`.
macro_rules! rows_of {
    ($table:ident, $ids:expr) => {
        diesel::delete($table::table.filter($table::instance_id.eq_any($ids)))
    };
}

/// One batch, in a transaction of its own: lock the candidates (skipping
/// locked ones), delete their rows in every table.
async fn batch(
    conn: &mut AsyncPgConnection,
    cutoff: DateTime<Utc>,
    size: i64,
) -> Result<PruneReport> {
    conn.transaction(async |conn| {
        let ids: Vec<String> = candidates!(cutoff, size).load(conn).await?;
        if ids.is_empty() {
            return Ok(PruneReport::default());
        }
        let workflow_events = rows_of!(events, &ids).execute(conn).await?;
        let outputs = rows_of!(task_outputs, &ids).execute(conn).await?;
        let workflow_history = rows_of!(history, &ids).execute(conn).await?;
        let deleted = rows_of!(workflows, &ids).execute(conn).await?;
        Ok(PruneReport {
            workflows: rows(deleted),
            outputs: rows(outputs),
            workflow_history: rows(workflow_history),
            workflow_events: rows(workflow_events),
            ..PruneReport::default()
        })
    })
    .await
}

/// The plans of the finished-workflow step's statements at `cutoff`: the
/// candidates, then the four deletes of one batch.
pub(super) async fn explain(to: &mut Planner<'_>, cutoff: DateTime<Utc>, size: i64) -> Result<()> {
    let ids = vec![String::from("some-instance")];
    to.plan("finished: candidates", candidates!(cutoff, size))
        .await?;
    to.plan("finished: events", rows_of!(events, &ids)).await?;
    to.plan("finished: outputs", rows_of!(task_outputs, &ids))
        .await?;
    to.plan("finished: history", rows_of!(history, &ids))
        .await?;
    to.plan("finished: workflows", rows_of!(workflows, &ids))
        .await
}
