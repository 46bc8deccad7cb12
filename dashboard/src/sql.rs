//! The planner settings the dashboard's reads run under.

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection as _};

use crate::Error;

/// The planner settings every read runs under (`SET LOCAL`, so for its
/// transaction only): no sequential and no bitmap scans, no sort where an
/// index gives the order.
///
/// Each read is written to walk an index in the order it wants and stop
/// after a page or a count's cap. On statistics that underestimate a table
/// (taken while it was small: a fresh deployment, a burst) the planner
/// would otherwise take a bitmap scan, which reads every matching row
/// before the `LIMIT`, and sort them: at a million rows, the ~1 s these
/// reads took. The settings only price those plans out; a statement with
/// no other way still runs.
pub(crate) const STEER: &str = "SET LOCAL enable_seqscan = off; \
     SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_sort = off";

/// Applies [`STEER`] to the current transaction: each read runs
/// `conn.transaction(async |conn| { steer(conn).await?; … })`.
///
/// # Errors
/// [`Error::Database`] when the settings cannot be made.
pub(crate) async fn steer(conn: &mut AsyncPgConnection) -> Result<(), Error> {
    Ok(conn.batch_execute(STEER).await?)
}
