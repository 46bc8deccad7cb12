//! The plans of the reads' statements, for the plan tests (and a look by
//! hand): each statement is planned under the settings the reads run
//! under (no sequential, bitmap or sorting plans where an index serves)
//! twice,
//!
//! * with its values, run (`EXPLAIN (ANALYZE, FORMAT JSON)`): the custom
//!   plan a one-off statement gets, with the rows each node really read;
//! * prepared, as a generic plan (`plan_cache_mode = force_generic_plan`,
//!   `EXPLAIN (FORMAT JSON) EXECUTE` with NULL parameters): the plan a
//!   statement cached on a long-lived connection may be given. (`EXPLAIN`
//!   of a statement with bound values plans with those values, whatever
//!   `plan_cache_mode` says, so it cannot show this one.)
//!
//! Not part of the API: no stability promised.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryBuilder as _, QueryFragment, QueryId};
use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _};

use crate::Error;
use crate::inspect::{ListFilter, StuckFilter, chart, list, overview, queue, show, stuck};
use crate::sql::steer;

/// One statement's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which statement.
    pub name: &'static str,
    /// `true`: the generic plan (not run); `false`: the custom plan, run.
    pub generic: bool,
    /// The `EXPLAIN (FORMAT JSON)` document.
    pub json: String,
}

/// The plans of [`crate::inspect::overview()`].
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned.
pub async fn overview_plans(conn: &mut AsyncPgConnection) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = overview::explain(&mut p).await;
    p.finish(explained).await
}

/// The plans of [`crate::inspect::list()`] for `filter` (the window's, when
/// it has conditions beyond the index range, and the page's).
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned, or the filter's
/// [`Error::Input`].
pub async fn list_plans(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = list::explain(&mut p, filter).await;
    p.finish(explained).await
}

/// The plans of [`crate::inspect::show()`] and
/// [`crate::inspect::output_previews`] for `id`.
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned.
pub async fn show_plans(conn: &mut AsyncPgConnection, id: &str) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = show::explain(&mut p, id).await;
    p.finish(explained).await
}

/// The plans of [`crate::inspect::stuck()`] for `filter`.
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned, or the filter's
/// [`Error::Input`].
pub async fn stuck_plans(
    conn: &mut AsyncPgConnection,
    filter: &StuckFilter,
) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = stuck::explain(&mut p, filter).await;
    p.finish(explained).await
}

/// The plan of [`crate::act::count_matching`] for `filter`.
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned, or the filter's
/// [`Error::Input`].
pub async fn count_matching_plans(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = list::explain_count(&mut p, filter).await;
    p.finish(explained).await
}

/// The plans of [`crate::inspect::finished_per_minute`].
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned.
pub async fn chart_plans(conn: &mut AsyncPgConnection) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = chart::explain(&mut p).await;
    p.finish(explained).await
}

/// The plans of [`crate::inspect::waiting`] and [`crate::inspect::parked`]
/// with `limit`.
///
/// # Errors
/// [`Error::Database`] when a statement cannot be planned, or
/// [`Error::Input`] for a limit out of range.
pub async fn queue_plans(conn: &mut AsyncPgConnection, limit: i64) -> Result<Vec<Plan>, Error> {
    let mut p = Planner::begin(conn).await?;
    let explained = queue::explain(&mut p, limit).await;
    p.finish(explained).await
}

/// Collects the plans of a read's statements on one connection.
pub(crate) struct Planner<'c> {
    conn: &'c mut AsyncPgConnection,
    plans: Vec<Plan>,
}

impl<'c> Planner<'c> {
    /// Opens the transaction the plans are made in, under the reads'
    /// settings.
    async fn begin(conn: &'c mut AsyncPgConnection) -> Result<Self, Error> {
        conn.batch_execute("BEGIN").await?;
        if let Err(e) = steer(conn).await {
            conn.batch_execute("ROLLBACK").await?;
            return Err(e);
        }
        Ok(Self {
            conn,
            plans: Vec::new(),
        })
    }

    /// Rolls the transaction back (nothing was written) and returns the
    /// plans, or the error.
    async fn finish(self, explained: Result<(), Error>) -> Result<Vec<Plan>, Error> {
        self.conn.batch_execute("ROLLBACK").await?;
        explained.map(|()| self.plans)
    }

    /// The connection, for statements a plan depends on.
    pub(crate) fn conn(&mut self) -> &mut AsyncPgConnection {
        self.conn
    }

    /// Plans `query` both ways and keeps the plans as `name`.
    pub(crate) async fn plan<Q>(&mut self, name: &'static str, query: Q) -> Result<(), Error>
    where
        Q: QueryFragment<Pg> + Send,
    {
        let mut sql = diesel::pg::PgQueryBuilder::default();
        query.to_sql(&mut sql, &Pg)?;
        let sql = sql.finish();
        let custom: String = Explain {
            prefix: "EXPLAIN (ANALYZE, FORMAT JSON) ",
            query,
        }
        .get_result(self.conn)
        .await?;
        self.plans.push(Plan {
            name,
            generic: false,
            json: custom,
        });
        let generic = self.generic(&sql).await?;
        self.plans.push(Plan {
            name,
            generic: true,
            json: generic,
        });
        Ok(())
    }

    /// The generic plan of `query`: prepared under a name of its own,
    /// explained with NULL parameters, deallocated.
    async fn generic(&mut self, sql: &str) -> Result<String, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "sayiir_dashboard_plan_{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.conn
            .batch_execute(&format!(
                "SET LOCAL plan_cache_mode = force_generic_plan; PREPARE {name} AS {sql}"
            ))
            .await?;
        let params: Count = diesel::sql_query(
            "SELECT cardinality(parameter_types) AS n FROM pg_prepared_statements WHERE name = $1",
        )
        .bind::<Text, _>(&name)
        .get_result(self.conn)
        .await?;
        let nulls = vec!["NULL"; usize::try_from(params.n).unwrap_or(0)].join(", ");
        let execute = if nulls.is_empty() {
            name.clone()
        } else {
            format!("{name}({nulls})")
        };
        let plan: Explained = diesel::sql_query(format!("EXPLAIN (FORMAT JSON) EXECUTE {execute}"))
            .get_result(self.conn)
            .await?;
        self.conn
            .batch_execute(&format!("DEALLOCATE {name}"))
            .await?;
        Ok(plan.json)
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = Integer)]
    n: i32,
}

#[derive(diesel::QueryableByName)]
struct Explained {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    json: String,
}

/// `EXPLAIN … <query>`, with the query's values bound.
struct Explain<Q> {
    prefix: &'static str,
    query: Q,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(self.prefix);
        self.query.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Text;
}
