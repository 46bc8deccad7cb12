//! The read-only commands `migrate`, `status` and `list`, run as the real
//! binary against a real database, plus the exit codes of usage and
//! database errors (`show`: show.rs, `stuck`: stuck.rs, `prune`: prune.rs).

mod common;

use bytes::Bytes;
use common::*;
use sayiir_core::DefinitionHash;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_diesel_testkit::TestDatabase;
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore};
use serde_json::Value;

#[tokio::test]
async fn migrate_applies_pending_migrations_once() {
    let db = empty_db().await;
    let first = cli(&db, &["migrate", "--json"]).json();
    let applied: Vec<&str> = first["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir()) // not released.txt
        .count();
    assert_eq!(applied.len(), on_disk, "{applied:?}");
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "oldest first");
    assert_eq!(
        cli(&db, &["migrate", "--json"]).json()["applied"],
        Value::Array(vec![])
    );
    assert!(cli(&db, &["migrate"]).ok().contains("up to date"));
    // The schema is really there: a read command works.
    assert_eq!(cli(&db, &["status", "--json"]).json()["total"], 0);
}

#[tokio::test]
async fn status_counts_workflows_queue_and_claims() {
    let (db, b) = backend().await;
    b.save_snapshot(&mut at_task("queued-1", "a"))
        .await
        .unwrap();
    b.save_snapshot(&mut at_task("queued-2", "a"))
        .await
        .unwrap();
    b.save_snapshot(&mut at_task("running", "a")).await.unwrap();
    b.claim_task("running", &tid("a"), "w1", Some(chrono::Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    b.save_snapshot(&mut at_task("lapsed", "a")).await.unwrap();
    b.claim_task("lapsed", &tid("a"), "w2", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    completed(&b, "done").await;
    b.store_signal(
        "queued-2",
        sayiir_core::snapshot::SignalKind::Cancel,
        sayiir_core::snapshot::SignalRequest::new(None, None),
    )
    .await
    .unwrap();
    b.send_event("nobody", "go", Bytes::from_static(b"1"))
        .await
        .unwrap();

    let s = cli(&db, &["status", "--json"]).json();
    assert_eq!(s["workflows"]["InProgress"], 4);
    assert_eq!(s["workflows"]["Completed"], 1);
    assert_eq!(s["workflows"]["Paused"], 0, "every status is listed");
    assert_eq!(s["total"], 5);
    assert_eq!(s["queue"]["runnable"], 4);
    assert_eq!(s["queue"]["waiting"], 3, "the live claim is not waiting");
    assert_eq!(s["queue"]["running"], 1);
    assert_eq!(s["queue"]["quarantined"], 0);
    assert!(s["queue"]["oldest_waiting_ms"].as_i64().unwrap() >= 0);
    assert!(s["queue"]["oldest_waiting_since"].is_string());
    assert_eq!(s["expired_claims"], 1);
    assert_eq!(s["pending_requests"], 1);
    assert_eq!(s["buffered_events"], 1);

    let text = cli(&db, &["status"]).ok().to_owned();
    assert!(
        text.contains("InProgress") && text.contains("expired claims"),
        "{text}"
    );
    assert!(text.contains("oldest waiting task: "), "{text}");
}

/// Three InProgress, one Completed, one tagged `gpu`, one of another
/// definition (returned).
async fn seed_listed(b: &Backend) -> DefinitionHash {
    for id in ["wf-1", "wf-2", "wf-3"] {
        b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    }
    completed(b, "wf-4").await;
    let mut gpu = at_task("wf-5", "a");
    gpu.task_tags = vec!["gpu".to_owned()];
    b.save_snapshot(&mut gpu).await.unwrap();
    let other = DefinitionHash::sha256("another definition");
    let mut s = WorkflowSnapshot::with_initial_input("wf-6", other, Bytes::from_static(b"x"));
    s.update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("a") });
    b.save_snapshot(&mut s).await.unwrap();
    other
}

fn assert_lists_all_with_their_columns(db: &TestDatabase) {
    let all = cli(db, &["list", "--json"]).json();
    assert_eq!(
        ids(&all["workflows"]),
        ["wf-1", "wf-2", "wf-3", "wf-4", "wf-5", "wf-6"]
    );
    assert_eq!(all["next_after"], Value::Null);
    let first = &all["workflows"][0];
    assert_eq!(first["status"], "InProgress");
    assert_eq!(first["position"], "AtTask");
    assert_eq!(first["definition"], hex(def_hash().as_bytes()));
    assert_eq!(first["revision"], 1);
}

fn assert_filters(db: &TestDatabase, other: DefinitionHash) {
    let done = cli(db, &["list", "--json", "--status", "completed"]).json();
    assert_eq!(ids(&done["workflows"]), ["wf-4"]);
    let by_def = cli(
        db,
        &["list", "--json", "--definition", &hex(other.as_bytes())],
    )
    .json();
    assert_eq!(ids(&by_def["workflows"]), ["wf-6"]);
    let tagged = cli(db, &["list", "--json", "--tag", "gpu"]).json();
    assert_eq!(ids(&tagged["workflows"]), ["wf-5"]);
    let prefixed = cli(db, &["list", "--json", "--prefix", "wf-5"]).json();
    assert_eq!(ids(&prefixed["workflows"]), ["wf-5"]);
    let none = cli(
        db,
        &["list", "--json", "--prefix", "wf-", "--status", "failed"],
    )
    .json();
    assert_eq!(ids(&none["workflows"]), Vec::<String>::new());
    let old = cli(db, &["list", "--json", "--older-than", "1h"]).json();
    assert_eq!(ids(&old["workflows"]), Vec::<String>::new());
    let new = cli(
        db,
        &[
            "list",
            "--json",
            "--newer-than",
            "1h",
            "--status",
            "in-progress",
        ],
    )
    .json();
    assert_eq!(ids(&new["workflows"]).len(), 5);
}

/// Keyset pages of 4: the cursor is the last id of a full page.
fn assert_pages(db: &TestDatabase) {
    let page1 = cli(db, &["list", "--json", "--limit", "4"]).json();
    assert_eq!(ids(&page1["workflows"]), ["wf-1", "wf-2", "wf-3", "wf-4"]);
    assert_eq!(page1["next_after"], "wf-4");
    let page2 = cli(db, &["list", "--json", "--limit", "4", "--after", "wf-4"]).json();
    assert_eq!(ids(&page2["workflows"]), ["wf-5", "wf-6"]);
    assert_eq!(page2["next_after"], Value::Null);
}

fn assert_list_text(db: &TestDatabase) {
    let text = cli(db, &["list", "--limit", "2"]).ok().to_owned();
    assert!(text.starts_with("INSTANCE"), "{text}");
    assert!(text.contains("wf-2") && !text.contains("wf-3"), "{text}");
    assert!(text.contains("more: --after wf-2"), "{text}");
    assert!(
        cli(db, &["list", "--status", "failed"])
            .ok()
            .contains("no workflows")
    );
}

#[tokio::test]
async fn list_filters_by_status_definition_tag_and_age_and_pages() {
    let (db, b) = backend().await;
    let other = seed_listed(&b).await;
    assert_lists_all_with_their_columns(&db);
    assert_filters(&db, other);
    assert_pages(&db);
    assert_list_text(&db);
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let db = test_db().await;
    for args in [
        &["list", "--older-than", "5x"][..],
        &["list", "--definition", "abc"],
        &["list", "--status", "running"],
        &["list", "--limit", "0"],
        &["list", "--limit", "1001"],
        &["frobnicate"],
        &["send-event", "wf", "go"],
        &["send-event", "wf", "go", "1", "--payload-file", "/dev/null"],
    ] {
        let r = cli(&db, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!r.stderr.is_empty(), "{args:?}");
    }
    let r = run(bare().arg("status"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("DATABASE_URL"), "{}", r.stderr);
    assert_eq!(run(bare().arg("--help")).code, 0);
}

#[tokio::test]
async fn database_errors_exit_1_with_a_hint() {
    let db = empty_db().await;
    let r = cli(&db, &["status"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("sayiir-diesel migrate"), "{}", r.stderr);
    // Nothing listens on port 1.
    let r = run(bare().args(["--database-url", "postgres://127.0.0.1:1/none", "status"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("cannot connect"), "{}", r.stderr);
}
