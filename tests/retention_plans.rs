//! The retention statements read through their indexes on stale
//! statistics (a fresh deployment, a burst), with generic plans.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::plan::{flat, text};
use common::retention::*;
use common::*;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use sayiir_diesel::retention::{self, Batching, RetentionPolicy};
use sayiir_persistence::SignalStore;

/// Statistics of empty tables, then the rows (a fresh deployment, a
/// burst): 600 finished and 600 live workflows, an event for each live one
/// and 600 for instances that do not exist.
async fn a_burst_on_statistics_of_empty_tables(b: &Backend, conn: &mut AsyncPgConnection) {
    // Autovacuum off on these tables, so that an ANALYZE of its own during
    // the burst cannot freshen the statistics this test means to be stale.
    conn.batch_execute(
        "ALTER TABLE sayiir.workflows SET (autovacuum_enabled = off); \
         ALTER TABLE sayiir.history SET (autovacuum_enabled = off); \
         ALTER TABLE sayiir.events SET (autovacuum_enabled = off); \
         ALTER TABLE sayiir.task_outputs SET (autovacuum_enabled = off); \
         ANALYZE sayiir.workflows; ANALYZE sayiir.history; ANALYZE sayiir.events; \
         ANALYZE sayiir.task_outputs",
    )
    .await
    .unwrap();
    for i in 0..600 {
        finished(b, &format!("done-{i}"), 3, "Completed").await;
        written(b, &format!("live-{i}"), 3).await;
        b.send_event(&format!("live-{i}"), "ev", Bytes::from_static(b"x"))
            .await
            .unwrap();
        b.send_event(&format!("ghost-{i}"), "ev", Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
}

/// The index the statement named `name` must read, where one is named.
fn expected_index(name: &str) -> Option<&'static str> {
    match name {
        "finished: candidates" => Some("workflows_finished_at_idx"),
        "history by age" => Some("history_recorded_at_idx"),
        "history keep last" => Some("history_pkey"),
        "orphan events: candidates" => Some("events_sent_at_idx"),
        _ => None,
    }
}

/// The plan of statement `name` (batch `size`) scans none of our tables
/// sequentially and reads its expected index.
fn assert_reads_through_an_index(size: u32, name: &str, json: &str) {
    let plan = flat(json);
    let pretty = serde_json::to_string_pretty(&plan).unwrap();
    let summary: Vec<String> = plan
        .iter()
        .map(|n| {
            let on = [text(n, "Index Name"), text(n, "Relation Name")].join(" ");
            format!("{} {}", text(n, "Node Type"), on.trim())
        })
        .collect();
    eprintln!("batch {size}, {name}: {}", summary.join(" / "));
    for node in &plan {
        let relation = text(node, "Relation Name");
        assert!(
            !(text(node, "Node Type") == "Seq Scan"
                && ["workflows", "history", "events", "task_outputs"].contains(&relation.as_str())),
            "batch {size}, {name}: sequential scan of {relation}:\n{pretty}"
        );
    }
    if let Some(index) = expected_index(name) {
        assert!(
            plan.iter().any(|n| text(n, "Index Name") == index),
            "batch {size}, {name} reads {index}:\n{pretty}"
        );
    }
}

#[tokio::test]
async fn every_statement_reads_through_an_index_on_stale_statistics() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    a_burst_on_statistics_of_empty_tables(&b, &mut conn).await;
    // Prepared statements get generic plans after a few runs: check those.
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    // A batch much smaller than the tables, and the default one (about
    // the size of each table here).
    for size in [50, retention::DEFAULT_BATCH_SIZE] {
        let policy = RetentionPolicy::default()
            .finished_older_than(HOUR)
            .history_older_than(HOUR)
            .history_keep_last(2)
            .orphan_events_older_than(HOUR)
            .batching(Batching::default().size(size));
        let plans = retention::explain(&mut conn, &policy).await.unwrap();
        assert_eq!(plans.len(), 9);
        for (name, json) in &plans {
            assert_reads_through_an_index(size, name, json);
        }
    }
    // The same statements run and remove what they should.
    let report = retention::prune(
        &mut conn,
        &RetentionPolicy::default()
            .finished_older_than(Duration::ZERO)
            .history_keep_last(2)
            .orphan_events_older_than(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(report.workflows, 600);
    assert_eq!(report.workflow_history, 600 * 4);
    assert_eq!(report.history_beyond_last, 600);
    assert_eq!(report.orphan_events, 600);
}
