//! What the planner believes about a backend's tables.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Error;
use crate::backends::Backend;
use crate::server::TAG;

#[derive(QueryableByName)]
struct TableStats {
    #[diesel(sql_type = Double)]
    reltuples: f64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Double)]
    age: f64,
    #[diesel(sql_type = Bool)]
    auto: bool,
}

/// What the planner believes about the workflow, queue and output tables: rows
/// counted now vs `reltuples`, and how long ago they were analyzed.
pub(super) async fn stats_note<B: Backend>(conn: &mut AsyncPgConnection) -> Result<String, Error> {
    let mut parts = Vec::new();
    for table in B::TABLES
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || **t == "sayiir.tasks" || **t == B::OUTPUTS_TABLE)
        .map(|(_, t)| *t)
    {
        let s = diesel::sql_query(format!(
            "{TAG} SELECT c.reltuples::float8 AS reltuples, \
                    (SELECT count(*) FROM {table})::bigint AS rows, \
                    coalesce(extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)), -1)::float8 AS age, \
                    coalesce(s.last_autoanalyze > s.last_analyze OR (s.last_analyze IS NULL AND s.last_autoanalyze IS NOT NULL), false) AS auto \
             FROM pg_class AS c JOIN pg_stat_user_tables AS s ON s.relid = c.oid \
             WHERE c.oid = '{table}'::regclass"
        ))
        .get_result::<TableStats>(conn)
        .await?;
        let when = if s.age < 0.0 {
            "never analyzed".to_owned()
        } else {
            format!(
                "analyzed {:.0} s ago{}",
                s.age,
                if s.auto { " by autovacuum" } else { "" }
            )
        };
        parts.push(format!(
            "{table}: {} rows, planner thinks {:.0} ({when})",
            s.rows, s.reltuples
        ));
    }
    Ok(parts.join("; "))
}
