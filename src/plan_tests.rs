//! The finder and maintenance read through their indexes, whatever the
//! planner's statistics say: no sequential scan of the queue or of the
//! workflows, and a pick that reads O(limit) rows, not the backlog.
//!
//! The statistics are taken while the tables are empty and the rows are
//! loaded afterwards, which is what a fresh deployment or a burst looks
//! like (the finder once turned quadratic exactly then).
//!
//! These tests live inside the crate because they `EXPLAIN` the crate's own
//! statements, which are not public. They reach a real server the same way
//! the integration tests do: through the testkit, a dev-dependency (a
//! throwaway server of this test process, or `DATABASE_URL`).

use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_core::{DefinitionHash, TaskId};
use sayiir_diesel_testkit::TestDatabase;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};
use sayiir_runtime::serialization::JsonCodec;
use serde_json::Value;

use crate::backend::DieselBackend;
use crate::models::tasks::{DUE_WORK, FIND as FIND_TASKS, SAMPLE as QUEUE_SAMPLE};

type Backend = DieselBackend<JsonCodec>;

/// A fresh migrated database from the testkit's shared template (keyed by
/// the migration files, so a changed schema gets a new template).
async fn test_db() -> TestDatabase {
    sayiir_diesel_testkit::sayiir_database()
        .await
        .expect("a migrated test database")
}

fn at_task(instance: &str) -> WorkflowSnapshot {
    let mut s = WorkflowSnapshot::with_initial_input(
        instance,
        DefinitionHash::sha256("test-definition"),
        bytes::Bytes::from_static(b"in"),
    );
    s.update_position(ExecutionPosition::AtTask {
        task_id: TaskId::from("a"),
    });
    s
}

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    json: String,
}

/// Every plan node, depth first.
fn nodes(plan: &Value, out: &mut Vec<Value>) {
    out.push(plan.clone());
    if let Some(children) = plan.get("Plans").and_then(Value::as_array) {
        for child in children {
            nodes(child, out);
        }
    }
}

/// The nodes of one `EXPLAIN (FORMAT JSON)` document, depth first.
fn flat(plan: &Plan) -> Vec<Value> {
    let doc: Value = serde_json::from_str(&plan.json).unwrap();
    let mut out = Vec::new();
    nodes(&doc[0]["Plan"], &mut out);
    out
}

/// A text field of a node ("" when absent).
fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn no_seq_scan(plan: &[Value], relations: &[&str]) {
    for node in plan {
        let relation = text(node, "Relation Name");
        assert!(
            !(text(node, "Node Type") == "Seq Scan" && relations.contains(&relation.as_str())),
            "sequential scan of {relation}:\n{}",
            serde_json::to_string_pretty(plan).unwrap()
        );
    }
}

/// Rows the plan read through `index` (actual rows times loops).
fn rows_read(plan: &[Value], index: &str) -> f64 {
    let through: Vec<&Value> = plan
        .iter()
        .filter(|n| text(n, "Index Name") == index)
        .collect();
    assert!(!through.is_empty(), "the plan reads {index}");
    through
        .iter()
        .map(|n| n["Actual Rows"].as_f64().unwrap() * n["Actual Loops"].as_f64().unwrap())
        .sum()
}

/// A backend and a direct connection on a fresh database with statistics of
/// empty tables, then 2000 parked, 1000 finished and 600 runnable
/// workflows over two priority levels, and generic plans (the statements
/// are prepared once per connection).
async fn stale_statistics_then_load() -> (TestDatabase, Backend, AsyncPgConnection) {
    let db = test_db().await;
    let b = Backend::connect(db.url()).await.expect("connect");
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    conn.batch_execute("ANALYZE sayiir.tasks; ANALYZE sayiir.workflows; ANALYZE sayiir.events")
        .await
        .unwrap();
    for i in 0..2000 {
        let mut s = at_task(&format!("parked-{i}"));
        s.update_position(ExecutionPosition::AtDelay {
            delay_id: TaskId::from("d"),
            entered_at: chrono::Utc::now(),
            wake_at: chrono::Utc::now() + chrono::Duration::hours(1),
            next_task_id: Some(TaskId::from("a")),
        });
        b.save_snapshot(&mut s).await.unwrap();
    }
    for i in 0..1000 {
        let mut s = at_task(&format!("done-{i}"));
        s.mark_completed(bytes::Bytes::new());
        b.save_snapshot(&mut s).await.unwrap();
    }
    for i in 0..600 {
        let mut s = at_task(&format!("ready-{i}"));
        s.task_priority = Some(if i % 2 == 0 { 1 } else { 3 });
        b.save_snapshot(&mut s).await.unwrap();
    }
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    (db, b, conn)
}

#[tokio::test]
async fn the_finder_reads_limit_rows_through_its_index_on_stale_statistics() {
    let (_db, b, mut conn) = stale_statistics_then_load().await;
    let plan: Plan = diesel::sql_query(format!(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {FIND_TASKS}"
    ))
    .bind::<Text, _>("w")
    .bind::<Double, _>(300.0)
    .bind::<Array<Text>, _>(Vec::<String>::new())
    .bind::<BigInt, _>(8)
    .bind::<Double, _>(0.0)
    .get_result(&mut conn)
    .await
    .unwrap();
    let plan = flat(&plan);
    no_seq_scan(&plan, &["tasks", "workflows", "task_outputs"]);
    // Two levels: each walk stops after the limit; the level probes read one
    // row each. A scan of the backlog would read 600.
    let read = rows_read(&plan, "tasks_runnable_idx");
    assert!(
        read <= 2.0 * 8.0 + 3.0,
        "rows read from the queue index: {read}"
    );
    // The answer itself.
    let got = b
        .find_available_tasks("w2", 8, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|t| t.instance_id.starts_with("ready-")));
}

#[tokio::test]
async fn maintenance_reads_its_indexes_on_stale_statistics() {
    let (_db, _b, mut conn) = stale_statistics_then_load().await;
    let plan: Plan = diesel::sql_query(format!("EXPLAIN (FORMAT JSON) {DUE_WORK}"))
        .bind::<Double, _>(30_000.0)
        .bind::<BigInt, _>(64)
        .get_result(&mut conn)
        .await
        .unwrap();
    let plan = flat(&plan);
    no_seq_scan(&plan, &["tasks", "workflows"]);
    for index in [
        "tasks_requested_idx",
        "tasks_wake_at_idx",
        "tasks_event_waiting_idx",
        "tasks_recovery_idx",
        "tasks_quarantined_idx",
    ] {
        assert!(
            plan.iter().any(|n| text(n, "Index Name") == index),
            "maintenance reads {index}:\n{}",
            serde_json::to_string_pretty(&plan).unwrap()
        );
    }
}

#[tokio::test]
async fn the_queue_sample_reads_the_runnable_index_on_stale_statistics() {
    #[derive(diesel::QueryableByName)]
    struct Sample {
        #[diesel(sql_type = BigInt)]
        depth: i64,
        #[diesel(sql_type = Double)]
        oldest_age_secs: f64,
    }
    let (_db, _b, mut conn) = stale_statistics_then_load().await;
    let plan: Plan = diesel::sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {QUEUE_SAMPLE}"))
        .bind::<BigInt, _>(100)
        .get_result(&mut conn)
        .await
        .unwrap();
    let plan = flat(&plan);
    no_seq_scan(&plan, &["tasks"]);
    // The count stops at its cap (100 of 600 runnable rows); the oldest is
    // one row per level (two) plus the level probes (three). The 2000
    // parked and 1000 finished rows are never read.
    let read = rows_read(&plan, "tasks_runnable_idx");
    assert!(
        read <= 100.0 + 2.0 + 3.0,
        "rows read from the queue index: {read}"
    );
    // The answer itself, capped and uncapped.
    for (cap, want) in [(100, 100), (10_000, 600)] {
        let s: Sample = diesel::sql_query(QUEUE_SAMPLE)
            .bind::<BigInt, _>(cap)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(s.depth, want);
        assert!(
            (0.0..60.0).contains(&s.oldest_age_secs),
            "{}",
            s.oldest_age_secs
        );
    }
}
