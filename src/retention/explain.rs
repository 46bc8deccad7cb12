//! `EXPLAIN` of the retention statements, for plan tests.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_async::AsyncPgConnection;

use super::RetentionPolicy;
use crate::error::Result;

/// Named JSON plans.
pub(super) type Plans = Vec<(&'static str, String)>;

/// `EXPLAIN (FORMAT JSON)` of a statement: planned, not run.
pub(super) struct Explain<Q>(pub(super) Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN (FORMAT JSON) ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Text;
}

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
        super::finished::explain(conn, age, size, &mut plans).await?;
    }
    if let Some(age) = policy.history_older_than {
        super::history::explain_by_age(conn, age, size, &mut plans).await?;
    }
    if let Some(keep) = policy.history_keep_last {
        super::history::explain_keep_last(conn, keep, size, &mut plans).await?;
    }
    if let Some(age) = policy.orphan_events_older_than {
        super::events::explain(conn, age, size, &mut plans).await?;
    }
    Ok(plans)
}
