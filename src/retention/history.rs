//! Steps: history entries by age, and beyond the newest N per instance.
//! Both are raw SQL beside this file (a composite key, row locks inside a
//! lateral walk and deletes by row address are beyond the DSL).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::explain::Planner;
use super::{Batching, PruneReport, by_age, rows};
use crate::error::Result;
use crate::queries::Raw;

/// Removes history entries recorded before `$1`, at most `$2`, oldest first.
const HISTORY_OLDER_THAN: &str = include_str!("history_older_than.sql");
/// Removes history entries beyond the newest `$3` of each instance in one
/// slice of instances.
const HISTORY_KEEP_LAST: &str = include_str!("history_keep_last.sql");

/// Removes history entries recorded more than `older_than` ago, oldest
/// first, one statement (its own short transaction) per batch.
///
/// # Errors
/// A statement failed; earlier batches stay committed.
#[tracing::instrument(level = "debug", skip(conn), err)]
pub async fn prune_history_older_than(
    conn: &mut AsyncPgConnection,
    older_than: Duration,
    batching: Batching,
) -> Result<PruneReport> {
    by_age(
        conn,
        older_than,
        batching,
        async |conn, cutoff, size| Ok(history_by_age(cutoff, size).execute(conn).await?),
        |report, removed| {
            report.history_by_age += rows(removed);
            removed
        },
    )
    .await
}

fn history_by_age(cutoff: DateTime<Utc>, size: i64) -> Raw<'static> {
    Raw::new(HISTORY_OLDER_THAN)
        .bind::<Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(size)
}

/// What one slice of [`HISTORY_KEEP_LAST`] answers.
#[derive(QueryableByName)]
struct Slice {
    #[diesel(sql_type = Nullable<Text>)]
    last_instance: Option<String>,
    #[diesel(sql_type = BigInt)]
    removed: i64,
}

/// Keeps only the newest `keep` history entries of every instance (0:
/// none). Walks all workflows in id order, [`Batching::size`] instances
/// per statement; each statement removes at most [`Batching::size`]
/// entries (a slice with more is run again before moving on).
///
/// No index lists the instances that have more than `keep` entries, so one
/// call visits every workflow with more than `keep` accepted writes (one
/// short backward probe of `history_pkey` each), whether or not it has
/// anything to remove.
///
/// # Errors
/// A statement failed; earlier batches stay committed.
#[tracing::instrument(level = "debug", skip(conn), err)]
pub async fn prune_history_keep_last(
    conn: &mut AsyncPgConnection,
    keep: u32,
    batching: Batching,
) -> Result<PruneReport> {
    let size = batching.rows();
    let mut report = PruneReport::default();
    let mut after = String::new();
    loop {
        let slice: Slice = history_keep_last(&after, size, keep)
            .get_result(conn)
            .await?;
        report.history_beyond_last += u64::try_from(slice.removed).unwrap_or(0);
        report.batches += 1;
        let Some(last) = slice.last_instance else {
            break;
        };
        if slice.removed < size {
            after = last;
        }
        if !batching.allows(report.batches) {
            report.capped = true;
            break;
        }
    }
    Ok(report)
}

fn history_keep_last(after: &str, size: i64, keep: u32) -> Raw<'_> {
    Raw::new(HISTORY_KEEP_LAST)
        .bind::<Text, _>(after)
        .bind::<BigInt, _>(size)
        .bind::<BigInt, _>(i64::from(keep))
        .bind::<BigInt, _>(size)
}

/// The plan of the by-age statement at `cutoff`.
pub(super) async fn explain_by_age(
    to: &mut Planner<'_>,
    cutoff: DateTime<Utc>,
    size: i64,
) -> Result<()> {
    to.plan("history by age", history_by_age(cutoff, size))
        .await
}

/// The plan of the keep-last statement (its first slice).
pub(super) async fn explain_keep_last(to: &mut Planner<'_>, keep: u32, size: i64) -> Result<()> {
    to.plan("history keep last", history_keep_last("", size, keep))
        .await
}
