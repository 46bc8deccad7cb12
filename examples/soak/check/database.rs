//! Rows that should not be left in the database: buffered events the
//! pruners should have removed (checked while the workers run), and
//! claims, queue rows and events of finished workflows (checked once every
//! worker has stopped).

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Buffered events of finished instances that the workers' pruners should
/// have removed by now: eligible (older than the retention, instance
/// finished) for longer than two pruning periods and a margin for a fault
/// in progress. Run while the workers still run.
pub async fn orphan_events(db_url: &str) -> Vec<String> {
    use crate::worker::{EVENT_RETENTION, PRUNE_EVERY};
    #[derive(QueryableByName)]
    struct Late {
        #[diesel(sql_type = diesel::sql_types::Text)]
        instance_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Double)]
        late_s: f64,
    }
    let overdue = (PRUNE_EVERY * 2 + Duration::from_secs(8)).as_secs_f64();
    let sql = format!(
        "SELECT e.instance_id, w.status, \
                extract(epoch FROM now() - greatest(e.sent_at + interval '{} seconds', \
                    coalesce(w.finished_at, w.updated_at)))::float8 AS late_s \
         FROM sayiir.events AS e JOIN sayiir.workflows AS w USING (instance_id) \
         WHERE w.status IN ('Completed', 'Failed', 'Cancelled') \
           AND greatest(e.sent_at + interval '{} seconds', coalesce(w.finished_at, w.updated_at)) \
               < now() - interval '{overdue} seconds' \
         ORDER BY 3 DESC LIMIT 10",
        EVENT_RETENTION.as_secs(),
        EVENT_RETENTION.as_secs(),
    );
    let mut conn = match AsyncPgConnection::establish(db_url).await {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot connect for the orphan-event check: {e}")],
    };
    match diesel::sql_query(sql).load::<Late>(&mut conn).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| {
                format!(
                    "{}: {} with a buffered event the pruner should have removed {:.0} s ago",
                    r.instance_id, r.status, r.late_s
                )
            })
            .collect(),
        Err(e) => vec![format!("orphan-event check failed: {e}")],
    }
}

/// What is left that is allowed, for the figures.
pub struct Leftovers {
    /// Events of workflows that did not complete (cancelled, paused).
    pub events_cancelled: i64,
    /// Pending signals on finished workflows.
    pub signals_finished: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .map_or(-1, |c| c.n)
}

/// Once every worker has stopped: no claim row, no queue row of a
/// finished workflow, no event left on a Completed one. `None` when the
/// database cannot be reached (the reason is in `bad`).
pub async fn orphans(db_url: &str, bad: &mut Vec<String>) -> Option<Leftovers> {
    let mut conn = match AsyncPgConnection::establish(db_url).await {
        Ok(c) => c,
        Err(e) => {
            bad.push(format!("cannot connect for the orphan checks: {e}"));
            return None;
        }
    };
    let claims = count(&mut conn, "SELECT count(*) AS n FROM sayiir.claims").await;
    if claims != 0 {
        let detail: Vec<Named> = diesel::sql_query(
            "SELECT c.instance_id || ' (' || w.status || ', held by ' || c.worker_id \
                    || ', claimed ' || c.claimed_at::text || ', expires ' \
                    || coalesce(c.expires_at::text, 'never') || ', workflow updated ' \
                    || w.updated_at::text || ')' AS id, 0::int8 AS n \
             FROM sayiir.claims AS c JOIN sayiir.workflows AS w USING (instance_id) \
             ORDER BY 1 LIMIT 10",
        )
        .load(&mut conn)
        .await
        .unwrap_or_default();
        bad.push(format!(
            "{claims} claim row(s) left after every worker stopped: {}",
            detail
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let queue = count(
        &mut conn,
        "SELECT count(*) AS n FROM sayiir.tasks JOIN sayiir.workflows USING (instance_id) \
         WHERE workflows.status IN ('Completed', 'Failed', 'Cancelled')",
    )
    .await;
    if queue != 0 {
        bad.push(format!("{queue} queue row(s) of finished workflows"));
    }
    let left_events: Vec<Named> = diesel::sql_query(
        "SELECT e.instance_id AS id, count(*) AS n FROM sayiir.events AS e \
         JOIN sayiir.workflows AS w USING (instance_id) WHERE w.status = 'Completed' \
         GROUP BY e.instance_id ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap_or_default();
    for e in &left_events {
        bad.push(format!(
            "{}: Completed with {} event(s) never consumed (sent twice?)",
            e.id, e.n
        ));
    }
    let events_cancelled = count(
        &mut conn,
        "SELECT count(*) AS n FROM sayiir.events JOIN sayiir.workflows USING (instance_id) \
         WHERE workflows.status <> 'Completed'",
    )
    .await;
    let signals_finished = count(
        &mut conn,
        "SELECT count(*) AS n FROM sayiir.signals JOIN sayiir.workflows USING (instance_id) \
         WHERE workflows.status IN ('Completed', 'Failed', 'Cancelled')",
    )
    .await;
    Some(Leftovers {
        events_cancelled,
        signals_finished,
    })
}
