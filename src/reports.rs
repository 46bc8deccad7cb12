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

use crate::kinds::{QueuedPosition, Status};
use crate::schema::sayiir::{claims, history, tasks, workflows};

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
