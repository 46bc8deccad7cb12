//! Settings of the current transaction, set through PostgreSQL's
//! `set_config(name, value, is_local)` (the typed form of `SET LOCAL`):
//! each lasts until the transaction ends, and a pooled connection goes
//! back to the pool with its own settings.

use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::Result;

diesel::define_sql_function! {
    /// PostgreSQL's `set_config(name, value, is_local)`.
    fn set_config(name: Text, value: Text, is_local: Bool) -> Text;
}

/// Lets the current transaction's commit return before its WAL reaches
/// the disk (`SET LOCAL synchronous_commit = off`). Only for a write whose
/// loss in a server crash can only delay work: the WAL is replayed in
/// order, so such a commit is lost only with everything acknowledged
/// after it, and never after a durable commit that depended on it. One
/// statement.
pub(crate) async fn commit_without_waiting(conn: &mut AsyncPgConnection) -> Result<()> {
    diesel::select(set_config("synchronous_commit", "off", true))
        .execute(conn)
        .await?;
    Ok(())
}
