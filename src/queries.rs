//! Running the statements the Diesel DSL cannot express (data-modifying
//! CTEs, lateral aggregates, recursive walks). Each is one whole statement
//! in a `.sql` file beside the model of the table it acts on
//! (`src/models/<table>/`), numbered `$1…$n`, and runs through [`Raw`], which binds typed
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{claims, events, tasks, workflows};

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

    #[test]
    fn every_statement_numbers_its_placeholders_without_gaps() {
        for (name, sql, expected) in [
            ("workflows::WRITE", workflows::WRITE, 33),
            ("workflows::LOAD", workflows::LOAD, 1),
            ("events::POP_OLDEST", events::POP_OLDEST, 2),
            ("claims::CLAIM", claims::CLAIM, 5),
            ("claims::RELEASE", claims::RELEASE, 3),
            ("claims::EXTEND", claims::EXTEND, 4),
            ("tasks::FIND", tasks::FIND, 5),
            ("tasks::FIND_HINTED", tasks::FIND_HINTED, 2),
            ("tasks::DUE_WORK", tasks::DUE_WORK, 2),
            ("tasks::SAMPLE", tasks::SAMPLE, 1),
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
