//! The read-only commands (`migrate`, `status`, `list`, `show`, `stuck`)
//! and `prune`, run as the real binary against a real database, plus the
//! exit codes of usage and database errors.

mod common;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::DefinitionHash;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_diesel::schema::sayiir::{history, tasks, workflows};
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore};
use serde_json::Value;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn completed(b: &Backend, id: &str) {
    let mut s = at_task(id, "a");
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_completed(Bytes::from_static(b"done"));
    b.save_snapshot(&mut s).await.unwrap();
}

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

#[tokio::test]
async fn list_filters_by_status_definition_tag_and_age_and_pages() {
    let (db, b) = backend().await;
    for id in ["wf-1", "wf-2", "wf-3"] {
        b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    }
    completed(&b, "wf-4").await;
    let mut gpu = at_task("wf-5", "a");
    gpu.task_tags = vec!["gpu".to_owned()];
    b.save_snapshot(&mut gpu).await.unwrap();
    let other = DefinitionHash::sha256("another definition");
    let mut s = WorkflowSnapshot::with_initial_input("wf-6", other, Bytes::from_static(b"x"));
    s.update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("a") });
    b.save_snapshot(&mut s).await.unwrap();

    let all = cli(&db, &["list", "--json"]).json();
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

    let done = cli(&db, &["list", "--json", "--status", "completed"]).json();
    assert_eq!(ids(&done["workflows"]), ["wf-4"]);
    let by_def = cli(
        &db,
        &["list", "--json", "--definition", &hex(other.as_bytes())],
    )
    .json();
    assert_eq!(ids(&by_def["workflows"]), ["wf-6"]);
    let tagged = cli(&db, &["list", "--json", "--tag", "gpu"]).json();
    assert_eq!(ids(&tagged["workflows"]), ["wf-5"]);
    let old = cli(&db, &["list", "--json", "--older-than", "1h"]).json();
    assert_eq!(ids(&old["workflows"]), Vec::<String>::new());
    let new = cli(
        &db,
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

    // Keyset pages of 4: the cursor is the last id of a full page.
    let page1 = cli(&db, &["list", "--json", "--limit", "4"]).json();
    assert_eq!(ids(&page1["workflows"]), ["wf-1", "wf-2", "wf-3", "wf-4"]);
    assert_eq!(page1["next_after"], "wf-4");
    let page2 = cli(&db, &["list", "--json", "--limit", "4", "--after", "wf-4"]).json();
    assert_eq!(ids(&page2["workflows"]), ["wf-5", "wf-6"]);
    assert_eq!(page2["next_after"], Value::Null);

    let text = cli(&db, &["list", "--limit", "2"]).ok().to_owned();
    assert!(text.starts_with("INSTANCE"), "{text}");
    assert!(text.contains("wf-2") && !text.contains("wf-3"), "{text}");
    assert!(text.contains("more: --after wf-2"), "{text}");
    assert!(
        cli(&db, &["list", "--status", "failed"])
            .ok()
            .contains("no workflows")
    );
}

#[tokio::test]
async fn show_summarises_one_workflow() {
    let (db, b) = backend().await;
    let mut s = at_task("wf", "b");
    s.mark_task_completed(tid("a"), Bytes::from(vec![1u8; 2048]));
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_task_completed(tid("b"), Bytes::from_static(b"12345"));
    s.update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("c") });
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
        sayiir_core::snapshot::SignalKind::Pause,
        sayiir_core::snapshot::SignalRequest::new(Some("deploy".into()), Some("ops".into())),
    )
    .await
    .unwrap();
    b.send_event("wf", "approval", Bytes::from_static(b"true"))
        .await
        .unwrap();

    let d = cli(&db, &["show", "wf", "--json", "--history", "1"]).json();
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

    let text = cli(&db, &["show", "wf"]).ok().to_owned();
    for needle in [
        "worker-7",
        "2.0 KiB",
        "Pause by ops",
        "history: 2 entries kept",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }

    let missing = cli(&db, &["show", "nope"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no workflow \"nope\""),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty());
}

#[tokio::test]
async fn stuck_lists_each_kind_of_row_that_is_not_moving() {
    let (db, b) = backend().await;
    b.save_snapshot(&mut at_task("lapsed", "a")).await.unwrap();
    b.claim_task("lapsed", &tid("a"), "gone", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    b.save_snapshot(&mut at_task("long", "a")).await.unwrap();
    b.claim_task("long", &tid("a"), "slow", Some(chrono::Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    let mut done = at_task("stranded", "a");
    done.mark_task_completed(tid("a"), Bytes::from_static(b"out"));
    b.save_snapshot(&mut done).await.unwrap();
    let mut no_input = WorkflowSnapshot::new("no-input", def_hash());
    no_input
        .update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("a") });
    b.save_snapshot(&mut no_input).await.unwrap();
    b.save_snapshot(&mut at_task("bad-blob", "a"))
        .await
        .unwrap();
    b.save_snapshot(&mut at_task("failing", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("healthy", "a")).await.unwrap();
    let mut nap = at_task("overslept", "a");
    nap.update_position(sayiir_core::snapshot::ExecutionPosition::AtDelay {
        delay_id: tid("nap"),
        entered_at: chrono::Utc::now() - chrono::Duration::hours(2),
        wake_at: chrono::Utc::now() - chrono::Duration::hours(1),
        next_task_id: Some(tid("b")),
    });
    b.save_snapshot(&mut nap).await.unwrap();
    let mut conn = raw_conn(&db).await;
    diesel::update(tasks::table.find("bad-blob"))
        .set((
            tasks::quarantined.eq("cannot decode"),
            tasks::retry_at.eq(chrono::Utc::now() + chrono::Duration::hours(1)),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::update(tasks::table.find("failing"))
        .set(tasks::stalls.eq(4))
        .execute(&mut conn)
        .await
        .unwrap();

    let args = [
        "stuck",
        "--json",
        "--held-longer-than",
        "0s",
        "--idle-for",
        "0s",
    ];
    let s = cli(&db, &args).json();
    let claim_ids = |v: &Value| ids(v);
    assert_eq!(claim_ids(&s["expired_claims"]), ["lapsed"]);
    assert_eq!(s["expired_claims"][0]["worker"], "gone");
    assert_eq!(
        claim_ids(&s["long_held_claims"]),
        ["long"],
        "live claims only"
    );
    assert_eq!(ids(&s["quarantined"]), ["bad-blob"]);
    assert_eq!(s["quarantined"][0]["quarantined"], "cannot decode");
    assert_eq!(ids(&s["output_saved_not_moving"]), ["stranded"]);
    assert_eq!(ids(&s["overdue_parks"]), ["overslept"]);
    assert!(s["overdue_parks"][0]["wake_at"].is_string());
    assert_eq!(ids(&s["input_not_ready"]), ["no-input"]);
    assert_eq!(ids(&s["repeatedly_released"]), ["failing"]);
    assert_eq!(s["repeatedly_released"][0]["stalls"], 4);

    // With the default thresholds, fresh rows are not reported.
    let s = cli(&db, &["stuck", "--json"]).json();
    assert_eq!(ids(&s["long_held_claims"]), Vec::<String>::new());
    assert_eq!(ids(&s["output_saved_not_moving"]), Vec::<String>::new());
    assert_eq!(
        ids(&s["overdue_parks"]),
        ["overslept"],
        "an hour past its time"
    );
    assert_eq!(ids(&s["expired_claims"]), ["lapsed"]);

    let text = cli(&db, &["stuck"]).ok().to_owned();
    assert!(
        text.contains("expired claims: 1") && text.contains("lapsed"),
        "{text}"
    );
    assert!(text.contains("quarantined rows: 1"), "{text}");
}

#[tokio::test]
async fn prune_removes_what_its_flags_name_and_reports_it() {
    let (db, b) = backend().await;
    completed(&b, "old").await;
    let mut busy = at_task("busy", "a");
    for t in ["a", "b", "c"] {
        busy.mark_task_completed(tid(t), Bytes::from_static(b"o"));
        busy.update_position(sayiir_core::snapshot::ExecutionPosition::AtTask {
            task_id: tid(&format!("{t}-next")),
        });
        b.save_snapshot(&mut busy).await.unwrap();
    }
    b.send_event("ghost", "go", Bytes::from_static(b"1"))
        .await
        .unwrap();

    let nothing = cli(&db, &["prune"]);
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    assert!(
        nothing.stderr.contains("nothing to prune"),
        "{}",
        nothing.stderr
    );

    let r = cli(
        &db,
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
    .json();
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

    let mut conn = raw_conn(&db).await;
    let left: Vec<String> = workflows::table
        .select(workflows::instance_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, ["busy"]);
    let entries: i64 = history::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(entries, 1);

    let again = cli(&db, &["prune", "--history-older-than", "7d"])
        .ok()
        .to_owned();
    assert!(
        again.contains("total") && again.contains("batch"),
        "{again}"
    );
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let db = test_db().await;
    for args in [
        &["list", "--older-than", "5x"][..],
        &["list", "--definition", "abc"],
        &["list", "--status", "running"],
        &["list", "--limit", "0"],
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
