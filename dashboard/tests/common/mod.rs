//! Test support: a migrated database per test (the testkit's throwaway
//! server, or `DATABASE_URL`), rows written with plain `INSERT … SELECT
//! generate_series` (thousands in a statement), statistics made stale, and
//! the nodes of `EXPLAIN (FORMAT JSON)` documents.
#![allow(dead_code)]

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_diesel_testkit::TestDatabase;
use serde_json::Value;

/// How long ago the finished workflows of the tests finished: up to 67
/// minutes, so that the chart's hour holds most of them, not all.
pub const SPAN: i64 = 4000;

/// A fresh, migrated database of its own.
pub async fn test_db() -> TestDatabase {
    sayiir_diesel_testkit::sayiir_database()
        .await
        .expect("a migrated test database")
}

/// A plain connection to `db`.
pub async fn connect(db: &TestDatabase) -> AsyncPgConnection {
    AsyncPgConnection::establish(db.url()).await.unwrap()
}

/// The tables the reads look at.
pub const TABLES: [&str; 7] = [
    "workflows",
    "history",
    "task_outputs",
    "tasks",
    "claims",
    "signals",
    "events",
];

/// Statistics of empty tables, kept stale: autovacuum off on every table
/// (its own ANALYZE could freshen them during the load), then ANALYZE
/// while they are empty. What a fresh deployment or a burst looks like.
pub async fn stale_statistics(conn: &mut AsyncPgConnection) {
    for table in TABLES {
        conn.batch_execute(&format!(
            "ALTER TABLE sayiir.{table} SET (autovacuum_enabled = off); ANALYZE sayiir.{table}"
        ))
        .await
        .unwrap();
    }
}

/// Fresh statistics of every table.
pub async fn analyse(conn: &mut AsyncPgConnection) {
    for table in TABLES {
        conn.batch_execute(&format!("VACUUM ANALYZE sayiir.{table}"))
            .await
            .unwrap();
    }
}

/// `n` finished workflows `{prefix}done-0000001`…: Completed, Completed,
/// Failed, Cancelled in turn, finished over the last `span_secs` seconds
/// (updated_at = finished_at, as the snapshot write sets them), each with
/// three history rows and one output.
pub async fn finished(conn: &mut AsyncPgConnection, prefix: &str, n: i64, span_secs: i64) {
    conn.batch_execute(&format!(
        "INSERT INTO sayiir.workflows
             (instance_id, definition_hash, status, snapshot, members, error,
              revision, created_at, updated_at, finished_at)
         SELECT format('{prefix}done-%s', lpad(i::text, 7, '0')),
                sha256('dashboard-test'::bytea),
                (ARRAY['Completed', 'Completed', 'Failed', 'Cancelled'])[1 + i % 4],
                convert_to(repeat('s', 120), 'UTF8'),
                ARRAY[sha256('a'::bytea)],
                CASE WHEN i % 4 = 2 THEN 'boom' END,
                3,
                t.at - interval '1 minute', t.at, t.at
         FROM generate_series(1, {n}) AS i,
              LATERAL (SELECT now() - (i * 37 % {span_secs}) * interval '1 second' AS at) AS t;
         INSERT INTO sayiir.history
             (instance_id, revision, status, position_kind, snapshot, recorded_at)
         SELECT format('{prefix}done-%s', lpad(i::text, 7, '0')), r,
                CASE WHEN r = 3 THEN 'Completed' ELSE 'InProgress' END,
                CASE WHEN r < 3 THEN 'AtTask' END,
                convert_to(repeat('h', 120), 'UTF8'),
                now() - interval '1 hour'
         FROM generate_series(1, {n}) AS i, generate_series(1, 3) AS r;
         INSERT INTO sayiir.task_outputs (instance_id, task_id, output)
         SELECT format('{prefix}done-%s', lpad(i::text, 7, '0')),
                sha256('a'::bytea), convert_to('\"done\"', 'UTF8')
         FROM generate_series(1, {n}) AS i;"
    ))
    .await
    .unwrap();
}

/// `n` InProgress workflows `{prefix}run-0000001`… at task `a`, queued
/// (priority 1 or 3, a second apart), with one of each kind of trouble in
/// turn: every 20th claimed for an hour (`w1`), every 20th (offset 10)
/// with a claim that expired; every 50th without input, every 25th
/// released four times with nothing saved, every 100th (offset 7)
/// quarantined, every 100th (offset 13) with its output saved two hours
/// ago; every 10th needs tag `gpu`; every 40th has a pause request.
pub async fn running(conn: &mut AsyncPgConnection, prefix: &str, n: i64) {
    let id = format!("format('{prefix}run-%s', lpad(i::text, 7, '0'))");
    conn.batch_execute(&format!(
        "INSERT INTO sayiir.workflows
             (instance_id, definition_hash, status, position_kind, current_task_id,
              snapshot, created_at, updated_at)
         SELECT {id}, sha256('dashboard-test'::bytea), 'InProgress', 'AtTask',
                sha256('a'::bytea), convert_to(repeat('s', 120), 'UTF8'),
                now() - interval '3 hours', now() - i * interval '1 second'
         FROM generate_series(1, {n}) AS i;
         INSERT INTO sayiir.tasks
             (instance_id, position_kind, task_id, completed, input_ready, priority, tags,
              aged_from, queued_at, stalls, quarantined, retry_at, claimed_until)
         SELECT {id}, 'AtTask', sha256('a'::bytea),
                i % 100 = 13,
                i % 50 <> 0,
                CASE WHEN i % 2 = 0 THEN 1 ELSE 3 END,
                CASE WHEN i % 10 = 0 THEN ARRAY['gpu'] ELSE '{{}}'::text[] END,
                now() - i * interval '1 second',
                CASE WHEN i % 100 = 13 THEN now() - interval '2 hours'
                     ELSE now() - i * interval '1 second' END,
                CASE WHEN i % 25 = 0 THEN 4 ELSE 0 END,
                CASE WHEN i % 100 = 7 THEN 'cannot decode' END,
                CASE WHEN i % 100 = 7 THEN now() + interval '1 hour' END,
                CASE WHEN i % 20 = 0 THEN now() + interval '1 hour'
                     WHEN i % 20 = 10 THEN now() - interval '1 minute' END
         FROM generate_series(1, {n}) AS i;
         INSERT INTO sayiir.claims (instance_id, task_id, worker_id, claimed_at, expires_at)
         SELECT {id}, sha256('a'::bytea),
                CASE WHEN i % 20 = 0 THEN 'w1' ELSE 'w2' END,
                now() - interval '2 hours',
                CASE WHEN i % 20 = 0 THEN now() + interval '1 hour'
                     ELSE now() - interval '1 minute' END
         FROM generate_series(1, {n}) AS i
         WHERE i % 10 = 0;
         INSERT INTO sayiir.signals (instance_id, kind, reason, requested_by, requested_at)
         SELECT {id}, 'Pause', 'deploy', 'ops', now()
         FROM generate_series(1, {n}) AS i
         WHERE i % 40 = 0;"
    ))
    .await
    .unwrap();
}

/// `n` InProgress workflows parked: `{prefix}nap-…` at a delay (odd ones
/// overdue by two hours, even ones due in an hour) and `{prefix}wait-…` at
/// signal `go` (even ones with a timeout in an hour, odd ones without),
/// every third waiting one with two events buffered for `go` and one for
/// `other`.
pub async fn parked(conn: &mut AsyncPgConnection, prefix: &str, n: i64) {
    for (kind, name) in [("AtDelay", "nap"), ("AtSignal", "wait")] {
        let id = format!("format('{prefix}{name}-%s', lpad(i::text, 7, '0'))");
        let wake = if kind == "AtDelay" {
            "CASE WHEN i % 2 = 1 THEN now() - interval '2 hours' ELSE now() + interval '1 hour' END"
        } else {
            "CASE WHEN i % 2 = 0 THEN now() + interval '1 hour' END"
        };
        let signal = if kind == "AtSignal" { "'go'" } else { "NULL" };
        conn.batch_execute(&format!(
            "INSERT INTO sayiir.workflows
                 (instance_id, definition_hash, status, position_kind, snapshot,
                  created_at, updated_at)
             SELECT {id}, sha256('dashboard-test'::bytea), 'InProgress', '{kind}',
                    convert_to(repeat('s', 120), 'UTF8'),
                    now() - interval '3 hours', now() - interval '2 hours'
             FROM generate_series(1, {n}) AS i;
             INSERT INTO sayiir.tasks
                 (instance_id, position_kind, task_id, park_id, signal_name, wake_at,
                  input_ready, aged_from, queued_at)
             SELECT {id}, '{kind}', sha256('b'::bytea), sha256('p'::bytea), {signal},
                    {wake}, true, now() - interval '2 hours', now() - interval '2 hours'
             FROM generate_series(1, {n}) AS i;"
        ))
        .await
        .unwrap();
    }
    conn.batch_execute(&format!(
        "INSERT INTO sayiir.events (instance_id, signal_name, payload)
         SELECT format('{prefix}wait-%s', lpad(i::text, 7, '0')), e.name, '\\x31'::bytea
         FROM generate_series(1, {n}) AS i,
              (VALUES ('go'), ('go'), ('other')) AS e (name)
         WHERE i % 3 = 0"
    ))
    .await
    .unwrap();
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What `sql` (a `SELECT count(*) AS n …`) counts.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The texts `sql` (a `SELECT … AS name …`) answers, in its order.
pub async fn names(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|n| n.name)
        .collect()
}

/// Every node of an `EXPLAIN (FORMAT JSON)` document, depth first.
pub fn nodes(json: &str) -> Vec<Value> {
    fn walk(plan: &Value, out: &mut Vec<Value>) {
        out.push(plan.clone());
        for child in plan
            .get("Plans")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(child, out);
        }
    }
    let doc: Value = serde_json::from_str(json).unwrap();
    let mut out = Vec::new();
    walk(&doc[0]["Plan"], &mut out);
    out
}

/// A text field of a node ("" when absent).
pub fn text(node: &Value, key: &str) -> String {
    node.get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// A number field of a node (0 when absent).
pub fn number(node: &Value, key: &str) -> f64 {
    node.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// Rows a scan node read: the rows it returned and those its filter
/// removed, over all its loops (0 for a plan that was not run).
pub fn rows_read(node: &Value) -> f64 {
    (number(node, "Actual Rows")
        + number(node, "Rows Removed by Filter")
        + number(node, "Rows Removed by Index Recheck"))
        * number(node, "Actual Loops")
}
