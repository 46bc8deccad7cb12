//! What the dashboard's reads need beyond the typed DSL: the planner
//! settings they run under, counts that stop after a number of rows,
//! windows of ids, byte-order comparisons of ids, constants written as
//! literals, and `substr`.

use diesel::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection as _};
use sayiir_diesel::QueuedPosition;

use crate::Error;

/// The planner settings every read runs under (`SET LOCAL`, so for its
/// transaction only): no sequential and no bitmap scans, no sort (full or
/// incremental) where an index gives the order.
///
/// Each read is written to walk an index in the order it wants and stop
/// after a page or a count's cap. On statistics that underestimate a table
/// (taken while it was small: a fresh deployment, a burst) the planner
/// would otherwise take a bitmap scan, which reads every matching row
/// before the `LIMIT`, and sort them: at a million rows, the ~1 s these
/// reads took. The settings only price those plans out; a statement with
/// no other way still runs. Pricing them out adds to the plan's cost what
/// makes PostgreSQL compile it (JIT), 50 to 200 ms for a sort of a few
/// rows: these reads never need it, so it is off too.
pub(crate) const STEER: &str = "SET LOCAL enable_seqscan = off; \
     SET LOCAL enable_bitmapscan = off; \
     SET LOCAL enable_sort = off; \
     SET LOCAL enable_incremental_sort = off; \
     SET LOCAL jit = off";

/// Applies [`STEER`] to the current transaction: each read runs
/// `conn.transaction(async |conn| { steer(conn).await?; … })`.
///
/// # Errors
/// [`Error::Database`] when the settings cannot be made.
pub(crate) async fn steer(conn: &mut AsyncPgConnection) -> Result<(), Error> {
    Ok(conn.batch_execute(STEER).await?)
}

diesel::postfix_operator!(InBytes, " COLLATE \"C\"", Text, backend: Pg);

/// `expr COLLATE "C"`: ids compared and ordered byte by byte, whatever the
/// database's collation, so that a prefix is a range and the `COLLATE "C"`
/// indexes of migration 13 apply.
pub(crate) fn in_bytes<E>(expr: E) -> InBytes<E> {
    InBytes::new(expr)
}

/// A constant of a closed set (a queue position) written into
/// the statement as a literal instead of being bound: a partial index whose
/// predicate names it then applies in generic plans too, which a bound
/// value cannot prove.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Named(&'static str);

impl Named {
    /// A queue position.
    pub(crate) const fn kind(kind: QueuedPosition) -> Self {
        Self(kind.as_str())
    }
}

impl Expression for Named {
    type SqlType = Text;
}

impl<QS> AppearsOnTable<QS> for Named {}

impl<QS> SelectableExpression<QS> for Named {}

impl<GB> ValidGrouping<GB> for Named {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl QueryId for Named {
    type QueryId = ();
    // The text differs per value: statements are cached by their SQL.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Pg> for Named {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The values are enum variant names: letters only.
        out.push_sql("'");
        out.push_sql(self.0);
        out.push_sql("'");
        Ok(())
    }
}

/// The integer 0 written into the statement (see [`Named`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zero;

impl Expression for Zero {
    type SqlType = Integer;
}

impl<QS> AppearsOnTable<QS> for Zero {}

impl<QS> SelectableExpression<QS> for Zero {}

impl<GB> ValidGrouping<GB> for Zero {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl QueryId for Zero {
    type QueryId = Zero;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for Zero {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("0");
        Ok(())
    }
}

/// `SELECT count(*) FROM (<query>) AS capped`: with a `LIMIT` on `query`,
/// a count that reads at most that many rows.
#[derive(Debug, Clone)]
pub(crate) struct CountOf<Q>(pub(crate) Q);

impl<Q> Query for CountOf<Q> {
    type SqlType = BigInt;
}

impl<Q> QueryId for CountOf<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for CountOf<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT count(*) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") AS capped");
        Ok(())
    }
}

/// `SELECT count(*), max(w.id) FROM (<query>) AS w (id)`: how many ids a
/// window of at most `LIMIT` ids holds, and its last one (in the
/// collation of the selected expression).
#[derive(Debug, Clone)]
pub(crate) struct WindowOf<Q>(pub(crate) Q);

impl<Q> Query for WindowOf<Q> {
    type SqlType = (BigInt, Nullable<Text>);
}

impl<Q> QueryId for WindowOf<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for WindowOf<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT count(*), max(w.id) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") AS w (id)");
        Ok(())
    }
}

diesel::define_sql_function! {
    /// PostgreSQL's `substr(bytea, from, count)`: `count` bytes from the
    /// 1-based `from`.
    fn substr(bytes: diesel::sql_types::Bytea, from: diesel::sql_types::Integer, count: diesel::sql_types::Integer) -> diesel::sql_types::Bytea;
}
