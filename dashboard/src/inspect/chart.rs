//! Workflows finished per minute over the last hour (dashboard only), in
//! one statement (`chart.sql`).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use super::COUNT_CAP;
use crate::Error;
use crate::format::{capped, time};
use crate::plans::Planner;
use crate::sql::steer;

/// The chart statement: three capped counts per minute.
const CHART: &str = include_str!("chart.sql");

/// Workflows that finished in one minute, by status.
#[derive(Debug, Clone, Serialize)]
pub struct Minute {
    /// The start of the minute (RFC 3339, UTC).
    pub minute: String,
    /// Completed in it, capped at [`COUNT_CAP`].
    pub completed: i64,
    /// Failed in it, capped at [`COUNT_CAP`].
    pub failed: i64,
    /// Cancelled in it, capped at [`COUNT_CAP`].
    pub cancelled: i64,
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Timestamptz)]
    minute: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    failed: i64,
    #[diesel(sql_type = BigInt)]
    cancelled: i64,
}

fn statement() -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    diesel::sql_query(CHART)
        .into_boxed()
        .bind::<BigInt, _>(COUNT_CAP + 1)
}

/// The last 60 whole minutes plus the current one, oldest first,
/// zero-filled (61 entries); each count capped at [`COUNT_CAP`].
///
/// # Errors
/// [`Error::Database`] when the statement fails.
pub async fn finished_per_minute(conn: &mut AsyncPgConnection) -> Result<Vec<Minute>, Error> {
    let rows: Vec<Row> = conn
        .transaction(async |conn| {
            steer(conn).await?;
            Ok::<_, Error>(statement().load(conn).await?)
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Minute {
            minute: time(r.minute),
            completed: capped(r.completed, COUNT_CAP).0,
            failed: capped(r.failed, COUNT_CAP).0,
            cancelled: capped(r.cancelled, COUNT_CAP).0,
        })
        .collect())
}

/// The plan of [`CHART`].
pub(crate) async fn explain(planner: &mut Planner<'_>) -> Result<(), Error> {
    planner.plan("finished per minute", statement()).await
}
