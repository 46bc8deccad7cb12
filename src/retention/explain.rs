//! `EXPLAIN` of a retention statement (planned, not run), for plan tests.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::Result;

/// Named JSON plans.
pub(super) type Plans = Vec<(&'static str, String)>;

/// `EXPLAIN (FORMAT JSON)` of a statement: planned, not run.
struct Explain<Q>(Q);

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

/// Collects the named plans of a policy's statements on one connection.
pub(super) struct Planner<'c> {
    conn: &'c mut AsyncPgConnection,
    plans: Plans,
}

impl<'c> Planner<'c> {
    pub(super) fn new(conn: &'c mut AsyncPgConnection) -> Self {
        Self {
            conn,
            plans: Vec::new(),
        }
    }

    /// The server clock's `now - age` (see [`super::cutoff`]).
    pub(super) async fn cutoff(&mut self, age: std::time::Duration) -> Result<DateTime<Utc>> {
        super::cutoff(self.conn, age).await
    }

    /// Plans `query` (`EXPLAIN`, not run) and keeps its plan as `name`.
    pub(super) async fn plan<Q>(&mut self, name: &'static str, query: Q) -> Result<()>
    where
        Q: QueryFragment<Pg> + Send,
    {
        let plan = Explain(query).get_result(self.conn).await?;
        self.plans.push((name, plan));
        Ok(())
    }

    pub(super) fn into_plans(self) -> Plans {
        self.plans
    }
}
