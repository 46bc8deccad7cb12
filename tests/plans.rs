//! The finder reads its candidates through the runnable-task index: parked
//! and finished work does not enter its scan.

mod common;

use common::*;
use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_persistence::SnapshotStore;

#[derive(diesel::QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[tokio::test]
async fn the_finder_uses_the_runnable_index() {
    let (db, b) = backend().await;
    // Many parked rows, a few runnable ones.
    for i in 0..3000 {
        let mut s = at_task(&format!("parked-{i}"), "a");
        s.update_position(ExecutionPosition::AtDelay {
            delay_id: tid("d"),
            entered_at: chrono::Utc::now(),
            wake_at: chrono::Utc::now() + chrono::Duration::hours(1),
            next_task_id: Some(tid("a")),
        });
        b.save_snapshot(&mut s).await.unwrap();
    }
    for i in 0..5 {
        b.save_snapshot(&mut at_task(&format!("ready-{i}"), "a"))
            .await
            .unwrap();
    }
    let mut conn = raw_conn(&db).await;
    conn.batch_execute("ANALYZE sayiir.tasks; ANALYZE sayiir.workflows")
        .await
        .unwrap();
    let sql = format!("EXPLAIN {}", sayiir_diesel::FINDER_SQL);
    let plan: Vec<PlanLine> = diesel::sql_query(sql)
        .bind::<Text, _>("w")
        .bind::<Double, _>(300.0)
        .bind::<Array<Text>, _>(Vec::<String>::new())
        .bind::<BigInt, _>(1)
        .load(&mut conn)
        .await
        .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|p| p.line).collect();
    assert!(
        plan.iter().any(|l| l.contains("tasks_runnable_idx")),
        "the finder scans the runnable index:\n{}",
        plan.join("\n")
    );
}
