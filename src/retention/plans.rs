//! The plans of every statement a retention policy runs, for plan tests.

use diesel_async::AsyncPgConnection;

use super::explain::{Planner, Plans};
use super::{RetentionPolicy, events, finished, history};
use crate::error::Result;

/// The JSON plan (`EXPLAIN`, nothing is run) of every statement the steps
/// of `policy` run, named, for plan tests; not a stable API.
///
/// # Errors
/// A statement could not be planned.
#[doc(hidden)]
pub async fn explain(conn: &mut AsyncPgConnection, policy: &RetentionPolicy) -> Result<Plans> {
    let size = policy.batching.rows();
    let mut planner = Planner::new(conn);
    if let Some(age) = policy.finished_older_than {
        let cutoff = planner.cutoff(age).await?;
        finished::explain(&mut planner, cutoff, size).await?;
    }
    if let Some(age) = policy.history_older_than {
        let cutoff = planner.cutoff(age).await?;
        history::explain_by_age(&mut planner, cutoff, size).await?;
    }
    if let Some(keep) = policy.history_keep_last {
        history::explain_keep_last(&mut planner, keep, size).await?;
    }
    if let Some(age) = policy.orphan_events_older_than {
        let cutoff = planner.cutoff(age).await?;
        events::explain(&mut planner, cutoff, size).await?;
    }
    Ok(planner.into_plans())
}
