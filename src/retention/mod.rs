//! Retention: keeps `sayiir.history`, finished workflows and buffered
//! events bounded.
//!
//! Every function takes the connection to run on (one of your pool's, or
//! [`DieselBackend::prune`](crate::DieselBackend::prune) takes one from the
//! backend's pool) and works in batches: each statement removes at most
//! [`Batching::size`] rows, rows another transaction has locked are skipped
//! (`FOR UPDATE SKIP LOCKED`) and left for a later batch, and a transaction
//! never spans more than one batch. A step loops until a batch comes back short (nothing left) or
//! [`Batching::max_batches`] is reached. Ages are measured against the
//! server's clock, read once per step.
//!
//! | step | removes | reads |
//! |---|---|---|
//! | [`delete_finished_workflows`] | Completed, Failed and Cancelled workflows that finished before the age, with their outputs, history and buffered events; one a worker still holds a live claim on waits for a later call | `workflows_finished_at_idx`, oldest first |
//! | [`prune_history_older_than`] | history entries recorded before the age | `history_recorded_at_idx`, oldest first |
//! | [`prune_history_keep_last`] | history entries beyond the newest N of each instance | every workflow in id order, one `history_pkey` probe each (no index lists the instances over N) |
//! | [`delete_orphan_events`] | buffered events sent before the age whose instance does not exist or has finished | `events_sent_at_idx`, oldest first, one `workflows_pkey` probe per event |
//!
//! [`prune`] runs the steps a [`RetentionPolicy`] configures, in that order.
//!
//! ```no_run
//! # async fn demo(conn: &mut diesel_async::AsyncPgConnection) -> sayiir_diesel::Result<()> {
//! use std::time::Duration;
//! use sayiir_diesel::retention::{self, RetentionPolicy};
//!
//! let policy = RetentionPolicy::default()
//!     .finished_older_than(Duration::from_secs(7 * 24 * 3600))
//!     .history_keep_last(20)
//!     .orphan_events_older_than(Duration::from_secs(24 * 3600));
//! let report = retention::prune(conn, &policy).await?;
//! println!("removed {} workflows, {} rows in all", report.workflows, report.total());
//! # Ok(())
//! # }
//! ```

mod events;
mod explain;
mod finished;
mod history;
mod plans;
mod pruner;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::Result;

pub use events::delete_orphan_events;
pub use finished::delete_finished_workflows;
pub use history::{prune_history_keep_last, prune_history_older_than};
#[doc(hidden)]
pub use plans::explain;
pub use pruner::MIN_PERIOD;
pub(crate) use pruner::Pruner;

/// Default rows per statement (see [`Batching::size`]).
pub const DEFAULT_BATCH_SIZE: u32 = 500;

/// How much one step does per statement and per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Batching {
    /// Rows removed per statement (for [`prune_history_keep_last`]: also
    /// the instances visited per statement). Default
    /// [`DEFAULT_BATCH_SIZE`]; 0 counts as 1.
    pub size: u32,
    /// Most batches one step runs per call; `None` (the default) runs until
    /// nothing is left. [`PruneReport::capped`] tells when it stopped here.
    pub max_batches: Option<u32>,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            size: DEFAULT_BATCH_SIZE,
            max_batches: None,
        }
    }
}

impl Batching {
    /// Sets [`Batching::size`].
    #[must_use]
    pub fn size(mut self, rows: u32) -> Self {
        self.size = rows;
        self
    }

    /// Sets [`Batching::max_batches`].
    #[must_use]
    pub fn max_batches(mut self, n: impl Into<Option<u32>>) -> Self {
        self.max_batches = n.into();
        self
    }

    fn rows(self) -> i64 {
        i64::from(self.size.max(1))
    }

    /// Whether another batch may run after `done` batches.
    fn allows(self, done: u64) -> bool {
        self.max_batches.is_none_or(|max| done < u64::from(max))
    }
}

/// What [`prune`] removes; every step is off unless set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Remove history entries recorded longer ago than this.
    pub history_older_than: Option<Duration>,
    /// Keep only the newest N history entries of each instance (0: none).
    pub history_keep_last: Option<u32>,
    /// Delete Completed, Failed and Cancelled workflows that finished
    /// longer ago than this, with their outputs, history and events.
    pub finished_older_than: Option<Duration>,
    /// Delete buffered events sent longer ago than this whose instance does
    /// not exist or has finished.
    pub orphan_events_older_than: Option<Duration>,
    /// Batch size and cap, for every step.
    pub batching: Batching,
}

impl RetentionPolicy {
    /// Sets [`RetentionPolicy::history_older_than`].
    #[must_use]
    pub fn history_older_than(mut self, age: Duration) -> Self {
        self.history_older_than = Some(age);
        self
    }

    /// Sets [`RetentionPolicy::history_keep_last`].
    #[must_use]
    pub fn history_keep_last(mut self, entries: u32) -> Self {
        self.history_keep_last = Some(entries);
        self
    }

    /// Sets [`RetentionPolicy::finished_older_than`].
    #[must_use]
    pub fn finished_older_than(mut self, age: Duration) -> Self {
        self.finished_older_than = Some(age);
        self
    }

    /// Sets [`RetentionPolicy::orphan_events_older_than`].
    #[must_use]
    pub fn orphan_events_older_than(mut self, age: Duration) -> Self {
        self.orphan_events_older_than = Some(age);
        self
    }

    /// Sets [`RetentionPolicy::batching`].
    #[must_use]
    pub fn batching(mut self, batching: Batching) -> Self {
        self.batching = batching;
        self
    }
}

/// Rows removed by one step or by [`prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PruneReport {
    /// Finished workflows deleted.
    pub workflows: u64,
    /// Task outputs of those workflows.
    pub outputs: u64,
    /// History entries of those workflows.
    pub workflow_history: u64,
    /// Buffered events of those workflows.
    pub workflow_events: u64,
    /// History entries removed for their age.
    pub history_by_age: u64,
    /// History entries removed beyond the newest N of their instance.
    pub history_beyond_last: u64,
    /// Events of missing or finished instances removed for their age.
    pub orphan_events: u64,
    /// Statements (or, for finished workflows, transactions) run.
    pub batches: u64,
    /// A step stopped at [`Batching::max_batches`] with rows possibly left.
    pub capped: bool,
}

impl PruneReport {
    /// Rows removed, all tables together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.workflows
            + self.outputs
            + self.workflow_history
            + self.workflow_events
            + self.history_by_age
            + self.history_beyond_last
            + self.orphan_events
    }
}

impl std::ops::AddAssign for PruneReport {
    fn add_assign(&mut self, other: Self) {
        self.workflows += other.workflows;
        self.outputs += other.outputs;
        self.workflow_history += other.workflow_history;
        self.workflow_events += other.workflow_events;
        self.history_by_age += other.history_by_age;
        self.history_beyond_last += other.history_beyond_last;
        self.orphan_events += other.orphan_events;
        self.batches += other.batches;
        self.capped |= other.capped;
    }
}

/// Runs every step `policy` configures, in the order of the module table:
/// finished workflows first (their history goes with them), then history
/// by age, history beyond the newest N, and orphan events.
///
/// # Errors
/// A statement failed; what earlier batches removed stays removed.
#[tracing::instrument(level = "debug", skip(conn), err)]
pub async fn prune(conn: &mut AsyncPgConnection, policy: &RetentionPolicy) -> Result<PruneReport> {
    let batching = policy.batching;
    let mut report = PruneReport::default();
    if let Some(age) = policy.finished_older_than {
        report += delete_finished_workflows(conn, age, batching).await?;
    }
    if let Some(age) = policy.history_older_than {
        report += prune_history_older_than(conn, age, batching).await?;
    }
    if let Some(keep) = policy.history_keep_last {
        report += prune_history_keep_last(conn, keep, batching).await?;
    }
    if let Some(age) = policy.orphan_events_older_than {
        report += delete_orphan_events(conn, age, batching).await?;
    }
    tracing::debug!(?report, "pruned");
    Ok(report)
}

/// `now - age` on the server's clock, never before 1970 (older means
/// nothing is old enough).
async fn cutoff(conn: &mut AsyncPgConnection, age: Duration) -> Result<DateTime<Utc>> {
    let server_now: DateTime<Utc> = diesel::select(now.into_sql::<Timestamptz>())
        .get_result(conn)
        .await?;
    Ok(cutoff_from(server_now, age))
}

fn cutoff_from(server_now: DateTime<Utc>, age: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(age)
        .ok()
        .and_then(|age| server_now.checked_sub_signed(age))
        .map_or(DateTime::UNIX_EPOCH, |at| at.max(DateTime::UNIX_EPOCH))
}

fn rows(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Runs one age-based step: reads the cutoff once (server clock), then
/// calls `batch(conn, cutoff, size)` until a batch removes fewer than
/// [`Batching::size`] rows or the cap is reached. `tally` adds a batch's
/// outcome to the report and returns the rows that count for "fewer".
async fn by_age<B>(
    conn: &mut AsyncPgConnection,
    older_than: Duration,
    batching: Batching,
    mut batch: impl AsyncFnMut(&mut AsyncPgConnection, DateTime<Utc>, i64) -> Result<B>,
    tally: impl Fn(&mut PruneReport, B) -> usize,
) -> Result<PruneReport> {
    let cutoff = cutoff(conn, older_than).await?;
    let size = batching.rows();
    let mut run = Batches::new(batching);
    loop {
        let outcome = batch(conn, cutoff, size).await?;
        let removed = tally(&mut run.report, outcome);
        if !run.another(removed) {
            return Ok(run.report);
        }
    }
}

/// The loop every step runs: batches until one removes fewer than
/// [`Batching::size`] rows, or the cap is reached.
struct Batches {
    batching: Batching,
    report: PruneReport,
}

impl Batches {
    fn new(batching: Batching) -> Self {
        Self {
            batching,
            report: PruneReport::default(),
        }
    }

    /// Counts a batch that removed `removed` rows; whether to run another.
    fn another(&mut self, removed: usize) -> bool {
        self.report.batches += 1;
        if i64::try_from(removed).unwrap_or(i64::MAX) < self.batching.rows() {
            return false;
        }
        if !self.batching.allows(self.report.batches) {
            self.report.capped = true;
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_never_go_before_1970() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            cutoff_from(at, Duration::from_mins(1)),
            DateTime::from_timestamp(1_799_999_940, 0).unwrap()
        );
        assert_eq!(cutoff_from(at, Duration::ZERO), at);
        assert_eq!(
            cutoff_from(at, Duration::from_secs(u64::MAX)),
            DateTime::UNIX_EPOCH
        );
        assert_eq!(
            cutoff_from(at, Duration::from_secs(1_900_000_000)),
            DateTime::UNIX_EPOCH
        );
    }

    #[test]
    fn batching_defaults_and_caps() {
        let b = Batching::default();
        assert_eq!((b.size, b.max_batches), (DEFAULT_BATCH_SIZE, None));
        assert!(b.allows(u64::MAX));
        let b = b.size(0).max_batches(2);
        assert_eq!(b.rows(), 1);
        assert!(b.allows(1) && !b.allows(2));
    }

    #[test]
    fn reports_add_up() {
        let mut r = PruneReport {
            workflows: 2,
            outputs: 3,
            batches: 1,
            ..PruneReport::default()
        };
        r += PruneReport {
            history_beyond_last: 4,
            orphan_events: 1,
            batches: 2,
            capped: true,
            ..PruneReport::default()
        };
        assert_eq!(r.total(), 10);
        assert_eq!(r.batches, 3);
        assert!(r.capped);
        let policy = RetentionPolicy::default().history_keep_last(2);
        assert_eq!(policy.history_keep_last, Some(2));
        assert_eq!(policy.finished_older_than, None);
    }
}
