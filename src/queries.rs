//! Statements the Diesel DSL cannot express (data-modifying CTEs, lateral
//! aggregates). Each lives in `.sql` files under `src/sql/` (shared pieces,
//! such as the hydrating join of member outputs, are composed with
//! `concat!`), numbered
//! `$1…$n`, and runs through [`Raw`], which binds typed values and, unlike
//! `sql_query`, is safe to cache: the statement is prepared once per
//! connection, so each call is one round trip.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// One typed bind value.
trait Bind: Send + Sync {
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Typed<ST, T> {
    value: T,
    _st: std::marker::PhantomData<fn() -> ST>,
}

impl<ST, T> Bind for Typed<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg> + Send + Sync,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

/// A static SQL text with `$n` placeholders and its typed binds.
pub(crate) struct Raw<'a> {
    sql: &'static str,
    binds: Vec<Box<dyn Bind + 'a>>,
}

impl<'a> Raw<'a> {
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
        }
    }

    /// Adds the value for the next placeholder (`$1`, then `$2`, …).
    pub(crate) fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        ST: 'static,
        T: ToSql<ST, Pg> + Send + Sync + 'a,
    {
        self.binds.push(Box::new(Typed::<ST, T> {
            value,
            _st: std::marker::PhantomData,
        }));
        self
    }
}

impl QueryFragment<Pg> for Raw<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        let mut highest = 0;
        while let Some(at) = rest.find('$') {
            let (before, after) = rest.split_at(at);
            out.push_sql(before);
            let digits = after
                .get(1..)
                .unwrap_or("")
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            let number: usize = after
                .get(1..=digits)
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("bad placeholder in statement: {}", self.sql).into(),
                    )
                })?;
            let bind = number
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("no value bound for ${number}").into(),
                    )
                })?;
            bind.push(&mut out)?;
            highest = highest.max(number);
            rest = after.get(1 + digits..).unwrap_or("");
        }
        out.push_sql(rest);
        if highest != self.binds.len() {
            return Err(diesel::result::Error::QueryBuilderError(
                format!(
                    "{} values bound for {highest} placeholders",
                    self.binds.len()
                )
                .into(),
            ));
        }
        Ok(())
    }
}

impl QueryId for Raw<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Raw<'_> {
    type SqlType = Untyped;
}

/// Upserts a workflow row with the terminal guard and, in the same
/// statement, its outputs, history, queue row and wakeup notification.
pub(crate) const WRITE_SNAPSHOT: &str = include_str!("sql/write_snapshot.sql");

/// Loads a workflow's blob with the outputs of its members, in one statement
/// (one consistent read).
pub(crate) const LOAD_SNAPSHOT: &str = concat!(
    include_str!("sql/hydrated_select.sql"),
    include_str!("sql/load_snapshot.sql"),
    include_str!("sql/member_outputs.sql"),
    include_str!("sql/load_snapshot_where.sql")
);

/// Removes and returns the oldest buffered event of (instance, name); a head
/// locked by a concurrent consumer is skipped, so none is handed out twice.
pub(crate) const POP_EVENT: &str = include_str!("sql/pop_event.sql");

/// Takes a claim when the workflow is at that task, its output is not
/// recorded and no live claim exists; the workflow row is locked first.
pub(crate) const CLAIM_TASK: &str = include_str!("sql/claim_task.sql");

/// Deletes the caller's claim and wakes workers when the instance is runnable.
pub(crate) const RELEASE_CLAIM: &str = include_str!("sql/release_claim.sql");

/// Pushes the caller's claim expiry forward.
pub(crate) const EXTEND_CLAIM: &str = include_str!("sql/extend_claim.sql");

/// Every dispatch rule decided before `LIMIT`, ordered by worker bias, aged
/// priority and age, with the hydrated snapshot of each pick.
pub(crate) const FIND_TASKS: &str = concat!(
    include_str!("sql/hydrated_select.sql"),
    include_str!("sql/find_tasks_head.sql"),
    include_str!("sql/dispatchable.sql"),
    include_str!("sql/find_tasks_tail.sql"),
    include_str!("sql/member_outputs.sql"),
    include_str!("sql/find_tasks_order.sql")
);

/// The same rules for one hinted (instance, task).
pub(crate) const FIND_HINTED: &str = concat!(
    include_str!("sql/hydrated_select.sql"),
    include_str!("sql/find_hinted_head.sql"),
    include_str!("sql/member_outputs.sql"),
    include_str!("sql/find_hinted_where.sql"),
    include_str!("sql/dispatchable.sql")
);

/// Parks that are due (delay expired, event buffered, signal timed out) and
/// rows left at a completed task past the recovery grace period.
pub(crate) const DUE_WORK: &str = include_str!("sql/due_work.sql");

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholders of a statement: every `$` starts one, numbered 1..=n
    /// without gaps (a `$` in a comment or literal would break binding).
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut seen: Vec<usize> = sql
            .split('$')
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits
                    .parse()
                    .unwrap_or_else(|_| panic!("a `$` that is no placeholder in:\n{sql}"))
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    #[test]
    fn every_statement_numbers_its_placeholders_without_gaps() {
        for (name, sql, expected) in [
            ("WRITE_SNAPSHOT", WRITE_SNAPSHOT, 31),
            ("LOAD_SNAPSHOT", LOAD_SNAPSHOT, 1),
            ("POP_EVENT", POP_EVENT, 2),
            ("CLAIM_TASK", CLAIM_TASK, 4),
            ("RELEASE_CLAIM", RELEASE_CLAIM, 3),
            ("EXTEND_CLAIM", EXTEND_CLAIM, 4),
            ("FIND_TASKS", FIND_TASKS, 4),
            ("FIND_HINTED", FIND_HINTED, 2),
            ("DUE_WORK", DUE_WORK, 2),
        ] {
            assert_eq!(
                placeholders(sql),
                (1..=expected).collect::<Vec<_>>(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_missing_or_extra_bind_is_an_error_not_a_bad_statement() {
        use diesel::query_builder::QueryBuilder;
        let render = |raw: Raw<'_>| {
            let mut qb = diesel::pg::PgQueryBuilder::new();
            raw.to_sql(&mut qb, &Pg).map(|()| qb.finish())
        };
        let ok = Raw::new("SELECT $1, $2, $1")
            .bind::<diesel::sql_types::Integer, _>(1)
            .bind::<diesel::sql_types::Integer, _>(2);
        assert_eq!(render(ok).unwrap(), "SELECT $1, $2, $3");
        let missing = Raw::new("SELECT $1, $2").bind::<diesel::sql_types::Integer, _>(1);
        assert!(render(missing).is_err());
        let extra = Raw::new("SELECT $1")
            .bind::<diesel::sql_types::Integer, _>(1)
            .bind::<diesel::sql_types::Integer, _>(2);
        assert!(render(extra).is_err());
    }
}
