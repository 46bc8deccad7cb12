//! `show`: one workflow's summary, as JSON and as text, run as the real
//! binary against a real database.

mod common;

use bytes::Bytes;
use common::*;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind, SignalRequest};
use sayiir_diesel_testkit::TestDatabase;
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore};
use serde_json::Value;

/// `wf` at task c with outputs of a (2 KiB) and b (5 bytes), two history
/// entries, a live claim of worker-7, a pending pause and a buffered event.
async fn seed_shown(b: &Backend) {
    let mut s = at_task("wf", "b");
    s.mark_task_completed(tid("a"), Bytes::from(vec![1u8; 2048]));
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_task_completed(tid("b"), Bytes::from_static(b"12345"));
    s.update_position(ExecutionPosition::AtTask { task_id: tid("c") });
    b.save_snapshot(&mut s).await.unwrap();
    b.claim_task(
        "wf",
        &tid("c"),
        "worker-7",
        Some(chrono::Duration::hours(1)),
    )
    .await
    .unwrap()
    .unwrap();
    b.store_signal(
        "wf",
        SignalKind::Pause,
        SignalRequest::new(Some("deploy".into()), Some("ops".into())),
    )
    .await
    .unwrap();
    b.send_event("wf", "approval", Bytes::from_static(b"true"))
        .await
        .unwrap();
}

fn assert_state_queue_claim_requests_and_events(d: &Value) {
    assert_eq!(d["instance_id"], "wf");
    assert_eq!(d["status"], "InProgress");
    assert_eq!(d["position"], "AtTask");
    assert_eq!(d["current_task"], hex(tid("c").as_bytes()));
    assert_eq!(d["revision"], 2);
    assert!(d["snapshot_bytes"].as_i64().unwrap() > 0);
    assert_eq!(d["queue"]["kind"], "AtTask");
    assert_eq!(d["queue"]["input_ready"], true);
    assert_eq!(d["claim"]["worker"], "worker-7");
    assert_eq!(d["claim"]["expired"], false);
    assert_eq!(d["pending_requests"][0]["kind"], "Pause");
    assert_eq!(d["pending_requests"][0]["reason"], "deploy");
    assert_eq!(d["buffered_events"][0]["signal_name"], "approval");
    assert_eq!(d["buffered_events"][0]["count"], 1);
}

fn assert_outputs_largest_first_and_history(d: &Value) {
    let outputs: Vec<(String, i64)> = d["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["task"].as_str().unwrap().to_owned(),
                o["bytes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outputs,
        [
            (hex(tid("a").as_bytes()), 2048),
            (hex(tid("b").as_bytes()), 5)
        ],
        "largest first"
    );
    assert_eq!(d["history_entries"], 2);
    assert_eq!(d["history"].as_array().unwrap().len(), 1);
    assert_eq!(d["history"][0]["revision"], 2);
}

fn assert_show_text(db: &TestDatabase) {
    let text = cli(db, &["show", "wf"]).ok().to_owned();
    for needle in [
        "worker-7",
        "2.0 KiB",
        "Pause by ops",
        "history: 2 entries kept",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

fn assert_a_missing_workflow_exits_3(db: &TestDatabase) {
    let missing = cli(db, &["show", "nope"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no workflow \"nope\""),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());
}

#[tokio::test]
async fn show_summarises_one_workflow() {
    let (db, b) = backend().await;
    seed_shown(&b).await;
    let d = cli(&db, &["show", "wf", "--json", "--history", "1"]).json();
    assert_state_queue_claim_requests_and_events(&d);
    assert_outputs_largest_first_and_history(&d);
    assert_show_text(&db);
    assert_a_missing_workflow_exits_3(&db);
}
