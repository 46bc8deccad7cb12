//! The plans of every statement a retention policy runs, for plan tests.

use diesel_async::AsyncPgConnection;

use super::explain::Plans;
use super::{RetentionPolicy, cutoff, events, finished, history};
use crate::error::Result;

/// The JSON plan (`EXPLAIN`, nothing is run) of every statement the steps
/// of `policy` run, named, for plan tests; not a stable API.
///
/// # Errors
/// A statement could not be planned.
#[doc(hidden)]
pub async fn explain(conn: &mut AsyncPgConnection, policy: &RetentionPolicy) -> Result<Plans> {
    let size = policy.batching.rows();
    let mut plans = Vec::new();
    if let Some(age) = policy.finished_older_than {
        let cutoff = cutoff(conn, age).await?;
        finished::explain(conn, cutoff, size, &mut plans).await?;
    }
    if let Some(age) = policy.history_older_than {
        let cutoff = cutoff(conn, age).await?;
        history::explain_by_age(conn, cutoff, size, &mut plans).await?;
    }
    if let Some(keep) = policy.history_keep_last {
        history::explain_keep_last(conn, keep, size, &mut plans).await?;
    }
    if let Some(age) = policy.orphan_events_older_than {
        let cutoff = cutoff(conn, age).await?;
        events::explain(conn, cutoff, size, &mut plans).await?;
    }
    Ok(plans)
}
