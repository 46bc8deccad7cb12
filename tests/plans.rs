//! The finder and maintenance read through their indexes, whatever the
//! planner's statistics say: no sequential scan of the queue or of the
//! workflows, and a pick that reads O(limit) rows, not the backlog.
//!
//! The statistics are taken while the tables are empty and the rows are
//! loaded afterwards, which is what a fresh deployment or a burst looks
//! like (the finder once turned quadratic exactly then).

mod common;

use common::plan::{flat, text};
use common::*;
use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};
use serde_json::Value;

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    json: String,
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

/// Statistics of empty tables, then 2000 parked, 1000 finished and 600
/// runnable workflows over two priority levels.
async fn stale_statistics_then_load(b: &Backend, conn: &mut AsyncPgConnection) {
    conn.batch_execute("ANALYZE sayiir.tasks; ANALYZE sayiir.workflows; ANALYZE sayiir.events")
        .await
        .unwrap();
    for i in 0..2000 {
        let mut s = at_task(&format!("parked-{i}"), "a");
        s.update_position(ExecutionPosition::AtDelay {
            delay_id: tid("d"),
            entered_at: chrono::Utc::now(),
            wake_at: chrono::Utc::now() + chrono::Duration::hours(1),
            next_task_id: Some(tid("a")),
        });
        b.save_snapshot(&mut s).await.unwrap();
    }
    for i in 0..1000 {
        let mut s = at_task(&format!("done-{i}"), "a");
        s.mark_completed(bytes::Bytes::new());
        b.save_snapshot(&mut s).await.unwrap();
    }
    for i in 0..600 {
        let mut s = at_task(&format!("ready-{i}"), "a");
        s.task_priority = Some(if i % 2 == 0 { 1 } else { 3 });
        b.save_snapshot(&mut s).await.unwrap();
    }
}

async fn explain_finder(conn: &mut AsyncPgConnection, analyze: bool) -> Vec<Value> {
    let options = if analyze {
        "ANALYZE, BUFFERS, FORMAT JSON"
    } else {
        "FORMAT JSON"
    };
    let sql = format!("EXPLAIN ({options}) {}", sayiir_diesel::FINDER_SQL);
    let plan: Plan = diesel::sql_query(sql)
        .bind::<Text, _>("w")
        .bind::<Double, _>(300.0)
        .bind::<Array<Text>, _>(Vec::<String>::new())
        .bind::<BigInt, _>(8)
        .bind::<Double, _>(0.0)
        .get_result(conn)
        .await
        .unwrap();
    flat(&plan.json)
}

#[tokio::test]
async fn the_finder_reads_limit_rows_through_its_index_on_stale_statistics() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    stale_statistics_then_load(&b, &mut conn).await;
    // Generic plans too: the statement is prepared once per connection.
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let plan = explain_finder(&mut conn, true).await;
    no_seq_scan(&plan, &["tasks", "workflows", "task_outputs"]);
    let runnable: Vec<&Value> = plan
        .iter()
        .filter(|n| text(n, "Index Name") == "tasks_runnable_idx")
        .collect();
    assert!(!runnable.is_empty(), "the finder reads tasks_runnable_idx");
    // Two levels: each walk stops after the limit; the level probes read one
    // row each. A scan of the backlog would read 600.
    let read: f64 = runnable
        .iter()
        .map(|n| n["Actual Rows"].as_f64().unwrap() * n["Actual Loops"].as_f64().unwrap())
        .sum();
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
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    stale_statistics_then_load(&b, &mut conn).await;
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let sql = format!("EXPLAIN (FORMAT JSON) {}", sayiir_diesel::MAINTENANCE_SQL);
    let plan: Plan = diesel::sql_query(sql)
        .bind::<Double, _>(30_000.0)
        .bind::<BigInt, _>(64)
        .get_result(&mut conn)
        .await
        .unwrap();
    let plan = flat(&plan.json);
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
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    stale_statistics_then_load(&b, &mut conn).await;
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let sql = format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {}",
        sayiir_diesel::QUEUE_SAMPLE_SQL
    );
    let plan: Plan = diesel::sql_query(sql)
        .bind::<BigInt, _>(100)
        .get_result(&mut conn)
        .await
        .unwrap();
    let plan = flat(&plan.json);
    no_seq_scan(&plan, &["tasks"]);
    let runnable: Vec<&Value> = plan
        .iter()
        .filter(|n| text(n, "Index Name") == "tasks_runnable_idx")
        .collect();
    assert!(!runnable.is_empty(), "the sample reads tasks_runnable_idx");
    // The count stops at its cap (100 of 600 runnable rows); the oldest is
    // one row per level (two) plus the level probes (three). The 2000
    // parked and 1000 finished rows are never read.
    let read: f64 = runnable
        .iter()
        .map(|n| n["Actual Rows"].as_f64().unwrap() * n["Actual Loops"].as_f64().unwrap())
        .sum();
    assert!(
        read <= 100.0 + 2.0 + 3.0,
        "rows read from the queue index: {read}"
    );
    // The answer itself, capped and uncapped.
    for (cap, want) in [(100, 100), (10_000, 600)] {
        let s: Sample = diesel::sql_query(sayiir_diesel::QUEUE_SAMPLE_SQL)
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
