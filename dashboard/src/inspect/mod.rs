//! The read queries and the documents they answer with, one module per
//! document. Every statement walks an index in the order it wants and
//! stops after a page, or after [`COUNT_CAP`] + 1 entries for a count, so
//! its cost does not grow with the tables; the reads run under planner
//! settings that keep it so on stale statistics (see the crate's plan
//! tests). Lists page by key (the instance id in byte order), never by
//! offset.

pub mod chart;
pub mod list;
pub mod overview;
pub mod queue;
pub mod show;
pub mod stuck;

use chrono::{DateTime, Utc};
use diesel::IntoSql as _;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

pub use chart::{Minute, finished_per_minute};
pub use list::{Item, ListFilter, MAX_LIMIT, Page, list};
pub use overview::{Overview, Queue, overview};
pub use queue::{Parked, Waiting, parked, waiting};
pub use show::{
    ClaimInfo, Details, EventCount, HistoryItem, MAX_EVENT_NAMES, Output, QueueRow, Request,
    output_previews, show,
};
pub use stuck::{ClaimItem, Stuck, StuckFilter, TaskItem, stuck};

use crate::Error;

/// Counts over large sets stop here: a count at the cap means "at least"
/// (each document says which of its counts reached it).
pub const COUNT_CAP: i64 = 10_000;

/// The server's current time: ages are measured on its clock, as the
/// library's retention does.
///
/// # Errors
/// [`Error::Database`] when the statement fails.
pub async fn server_now(conn: &mut AsyncPgConnection) -> Result<DateTime<Utc>, Error> {
    Ok(
        diesel::select(diesel::dsl::now.into_sql::<diesel::sql_types::Timestamptz>())
            .get_result(conn)
            .await?,
    )
}
