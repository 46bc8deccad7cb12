//! Every read's figures equal what the tables hold, on small data sets
//! written with plain INSERTs, and counts over COUNT_CAP stop there and say
//! so. One module per document.

#[path = "../common/mod.rs"]
mod common;

mod act;
mod caps;
mod list;
mod overview;
mod show;
mod stuck;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(diesel::QueryableByName)]
struct At {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    at: Option<DateTime<Utc>>,
}

/// The timestamp `sql` (a `SELECT … AS at`) answers, as the documents
/// write it.
pub async fn time_of(conn: &mut AsyncPgConnection, sql: &str) -> Option<String> {
    diesel::sql_query(sql)
        .get_result::<At>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .at
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}
