//! Step: buffered events nobody will consume (their instance is missing or
//! finished), older than an age.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::explain::Planner;
use super::{Batching, PruneReport, by_age, rows};
use crate::error::Result;
use crate::kinds::Status;
use crate::schema::sayiir::{events, workflows};

const FINISHED: [Status; 3] = [Status::Completed, Status::Failed, Status::Cancelled];

/// Deletes buffered events sent more than `older_than` ago whose instance
/// does not exist or has finished (Completed, Failed, Cancelled), oldest
/// first. Each batch is one short transaction: lock the events (skipping
/// locked ones), delete them. Events of InProgress and Paused instances
/// stay, however old.
///
/// An event sent before its instance was created counts as orphan once it
/// is older than `older_than`: choose an age well beyond the time between
/// sending such an event and submitting its workflow.
///
/// # Errors
/// A statement failed; earlier batches stay committed.
#[tracing::instrument(level = "debug", skip(conn), err)]
pub async fn delete_orphan_events(
    conn: &mut AsyncPgConnection,
    older_than: Duration,
    batching: Batching,
) -> Result<PruneReport> {
    let tally = |report: &mut PruneReport, removed| {
        report.orphan_events += rows(removed);
        removed
    };
    by_age(conn, older_than, batching, batch, tally).await
}

/// The status of an event's instance (`NULL`: no such instance), as a
/// scalar subquery: run per event as one primary-key probe, which the
/// planner cannot turn into a join over every workflow.
macro_rules! status_of_instance {
    () => {
        workflows::table
            .select(workflows::status)
            .filter(workflows::instance_id.eq(events::instance_id))
            .single_value()
    };
}

/// The candidates of one batch, oldest first, locked.
macro_rules! candidates {
    ($cutoff:expr, $size:expr) => {
        events::table
            .select(events::id)
            .filter(events::sent_at.lt($cutoff))
            .filter(
                status_of_instance!()
                    .is_null()
                    .or(status_of_instance!().eq_any(FINISHED)),
            )
            .order(events::sent_at)
            .limit($size)
            .for_update()
            .skip_locked()
    };
}

/// The events `$ids`.
macro_rules! by_id {
    ($ids:expr) => {
        diesel::delete(events::table.filter(events::id.eq_any($ids)))
    };
}

/// One batch, in a transaction of its own: lock the candidates (skipping
/// locked ones), delete them.
async fn batch(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>, size: i64) -> Result<usize> {
    conn.transaction(async |conn| {
        let ids: Vec<i64> = candidates!(cutoff, size).load(conn).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(by_id!(&ids).execute(conn).await?)
    })
    .await
}

/// The plans of the orphan-event step's two statements at `cutoff`.
pub(super) async fn explain(to: &mut Planner<'_>, cutoff: DateTime<Utc>, size: i64) -> Result<()> {
    to.plan("orphan events: candidates", candidates!(cutoff, size))
        .await?;
    to.plan("orphan events: delete", by_id!(&vec![1_i64])).await
}
