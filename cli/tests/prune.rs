//! `prune`: removes what its flags name and reports it, run as the real
//! binary against a real database.

mod common;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_diesel::schema::sayiir::{history, workflows};
use sayiir_diesel_testkit::TestDatabase;
use sayiir_persistence::{SignalStore, SnapshotStore};
use serde_json::Value;

/// A Completed workflow `old`, an InProgress `busy` with three history
/// entries, and an event for an instance that does not exist.
async fn seed_old_busy_and_orphan(b: &Backend) {
    completed(b, "old").await;
    let mut busy = at_task("busy", "a");
    for t in ["a", "b", "c"] {
        busy.mark_task_completed(tid(t), Bytes::from_static(b"o"));
        busy.update_position(ExecutionPosition::AtTask {
            task_id: tid(&format!("{t}-next")),
        });
        b.save_snapshot(&mut busy).await.unwrap();
    }
    b.send_event("ghost", "go", Bytes::from_static(b"1"))
        .await
        .unwrap();
}

fn assert_no_flag_is_a_usage_error(db: &TestDatabase) {
    let nothing = cli(db, &["prune"]);
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    assert!(
        nothing.stderr.contains("nothing to prune"),
        "{}",
        nothing.stderr
    );
}

fn prune_everything(db: &TestDatabase) -> Value {
    cli(
        db,
        &[
            "prune",
            "--json",
            "--finished-older-than",
            "0s",
            "--orphan-events-older-than",
            "0s",
            "--history-keep-last",
            "1",
            "--batch-size",
            "10",
        ],
    )
    .json()
}

fn assert_report(r: &Value) {
    assert_eq!(r["workflows"], 1);
    assert_eq!(r["workflow_history"], 2);
    assert_eq!(r["orphan_events"], 1);
    assert_eq!(r["history_beyond_last"], 2, "busy keeps its newest entry");
    assert_eq!(
        r["total"],
        r["workflows"].as_u64().unwrap()
            + r["outputs"].as_u64().unwrap()
            + 2
            + 1
            + 2
            + r["workflow_events"].as_u64().unwrap()
    );
    assert_eq!(r["capped"], false);
}

async fn assert_only_busy_and_its_newest_entry_left(db: &TestDatabase) {
    let mut conn = raw_conn(db).await;
    let left: Vec<String> = workflows::table
        .select(workflows::instance_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, ["busy"]);
    let entries: i64 = history::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(entries, 1);
}

#[tokio::test]
async fn prune_removes_what_its_flags_name_and_reports_it() {
    let (db, b) = backend().await;
    seed_old_busy_and_orphan(&b).await;
    assert_no_flag_is_a_usage_error(&db);
    assert_report(&prune_everything(&db));
    assert_only_busy_and_its_newest_entry_left(&db).await;
    let again = cli(&db, &["prune", "--history-older-than", "7d"])
        .ok()
        .to_owned();
    assert!(
        again.contains("total") && again.contains("batch"),
        "{again}"
    );
}
