//! Statements the Diesel DSL cannot express (data-modifying CTEs, lateral
//! aggregates, recursive walks). Each lives in a `.sql` file under
//! `src/sql/`, numbered `$1…$n`, and runs through [`Raw`], which binds typed
//! values and, unlike `sql_query`, is safe to cache: the statement is
//! prepared once per connection, so each call is one round trip. A `$`
//! inside a `--` comment or a `'…'` literal is not a placeholder.

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
        let mut highest = 0;
        for piece in pieces(self.sql) {
            match piece {
                Piece::Sql(text) => out.push_sql(text),
                Piece::Placeholder(number) => {
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
                }
                Piece::Bad => {
                    return Err(diesel::result::Error::QueryBuilderError(
                        format!("bad placeholder in statement: {}", self.sql).into(),
                    ));
                }
            }
        }
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

/// A run of statement text, or one `$n` placeholder.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'s> {
    Sql(&'s str),
    Placeholder(usize),
    /// A `$` outside comments and literals that starts no placeholder.
    Bad,
}

/// Splits a statement at its placeholders. A `$` inside a `--` comment or a
/// `'…'` literal is text, not a placeholder.
fn pieces(sql: &str) -> Vec<Piece<'_>> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql
                    .get(i..)
                    .and_then(|rest| rest.find('\n'))
                    .map_or(bytes.len(), |n| i + n);
            }
            b'\'' => {
                i = sql
                    .get(i + 1..)
                    .and_then(|rest| rest.find('\''))
                    .map_or(bytes.len(), |n| i + n + 2);
            }
            b'$' => {
                let digits = bytes
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                out.push(Piece::Sql(sql.get(start..i).unwrap_or_default()));
                match sql.get(i + 1..=i + digits).and_then(|d| d.parse().ok()) {
                    Some(number) => out.push(Piece::Placeholder(number)),
                    None => out.push(Piece::Bad),
                }
                i += 1 + digits;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Sql(sql.get(start..).unwrap_or_default()));
    out
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
pub(crate) const LOAD_SNAPSHOT: &str = include_str!("sql/load_snapshot.sql");

/// Removes and returns the oldest buffered event of (instance, name); a head
/// locked by a concurrent consumer is skipped, so none is handed out twice.
pub(crate) const POP_EVENT: &str = include_str!("sql/pop_event.sql");

/// Takes a claim when the workflow is at that task, its output is not
/// recorded and no live claim exists; the workflow row is locked first.
#[cfg(not(feature = "break-claim-check"))]
pub(crate) const CLAIM_TASK: &str = include_str!("sql/claim_task.sql");
/// Broken on purpose, for proving the soak's exactly-once check (see
/// `examples/soak`): no recorded-output or revision check.
#[cfg(feature = "break-claim-check")]
pub(crate) const CLAIM_TASK: &str = include_str!("sql/broken/claim_task_unchecked.sql");

/// Deletes the caller's claim and wakes workers when the instance is runnable.
pub(crate) const RELEASE_CLAIM: &str = include_str!("sql/release_claim.sql");

/// Pushes the caller's claim expiry forward.
pub(crate) const EXTEND_CLAIM: &str = include_str!("sql/extend_claim.sql");

/// Every dispatch rule decided on the queue row before `LIMIT`, one index
/// walk per priority level, ordered by worker bias, aged priority and age;
/// the picks are offered to the polling worker and hydrated.
pub(crate) const FIND_TASKS: &str = include_str!("sql/find_tasks.sql");

/// The same rules for one hinted (instance, task).
pub(crate) const FIND_HINTED: &str = include_str!("sql/find_hinted.sql");

/// Parks that are due (delay expired, event buffered, signal timed out) and
/// rows left at a completed task past the recovery grace period.
pub(crate) const DUE_WORK: &str = include_str!("sql/due_work.sql");

/// For metrics: how many tasks are claimable now (up to a cap) and how long
/// the oldest of them has waited; read through the runnable index.
pub(crate) const QUEUE_SAMPLE: &str = include_str!("sql/queue_sample.sql");

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholders of a statement, numbered 1..=n without gaps; a `$`
    /// outside comments and literals that is no placeholder fails.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut seen: Vec<usize> = pieces(sql)
            .into_iter()
            .filter_map(|p| match p {
                Piece::Sql(_) => None,
                Piece::Placeholder(n) => Some(n),
                Piece::Bad => panic!("a `$` that is no placeholder in:\n{sql}"),
            })
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    #[test]
    fn dollars_in_comments_and_literals_are_text() {
        let sql = "SELECT $1 -- not $2\n, '$3', $2";
        assert_eq!(placeholders(sql), vec![1, 2]);
        assert!(pieces("SELECT $x").contains(&Piece::Bad));
    }

    /// The dispatchable rule is written between markers in the finders and
    /// the queue sample; every copy must be the same text.
    #[test]
    fn the_finders_share_one_dispatchable_rule() {
        fn rules(sql: &str) -> Vec<String> {
            sql.split("-- dispatchable:begin")
                .skip(1)
                .map(|rest| {
                    let body = rest.split("-- dispatchable:end").next().unwrap();
                    body.lines().map(str::trim).collect::<Vec<_>>().join("\n")
                })
                .collect()
        }
        let all: Vec<String> = rules(FIND_TASKS)
            .into_iter()
            .chain(rules(FIND_HINTED))
            .chain(rules(QUEUE_SAMPLE))
            .collect();
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|r| r == &all[0]), "{all:#?}");
        assert!(all[0].contains("claimed_until"));
    }

    #[test]
    fn every_statement_numbers_its_placeholders_without_gaps() {
        for (name, sql, expected) in [
            ("WRITE_SNAPSHOT", WRITE_SNAPSHOT, 31),
            ("LOAD_SNAPSHOT", LOAD_SNAPSHOT, 1),
            ("POP_EVENT", POP_EVENT, 2),
            ("CLAIM_TASK", CLAIM_TASK, 5),
            ("RELEASE_CLAIM", RELEASE_CLAIM, 3),
            ("EXTEND_CLAIM", EXTEND_CLAIM, 4),
            ("FIND_TASKS", FIND_TASKS, 5),
            ("FIND_HINTED", FIND_HINTED, 2),
            ("DUE_WORK", DUE_WORK, 2),
            ("QUEUE_SAMPLE", QUEUE_SAMPLE, 1),
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
