//! The actions (`cancel`, `pause`, `resume`, `send-event`) run as the real
//! binary: they take effect for real `PooledWorker`s and through the store
//! calls workers make, and answer 3 (not found) and 4 (refused) when they
//! cannot.

mod common;

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::context::WorkflowContext;
use sayiir_core::snapshot::SignalKind;
use sayiir_core::workflow::{Workflow, WorkflowBuilder, WorkflowStatus};
use sayiir_diesel::schema::sayiir::events;
use sayiir_persistence::{SignalStore, SnapshotStore};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{WorkerHandle, WorkflowClient};

/// g1 → wait for "go" → g2 (the event's payload is g2's input).
fn gated() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("cli-gated", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("g1", |x: u64| async move { Ok(x + 1) })
            .wait_for_signal("gate", "go", None)
            .then("g2", |x: u64| async move { Ok(x * 10) })
            .build()
            .unwrap(),
    )
}

/// p1 → a ten-minute delay → p2.
fn parked() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("cli-parked", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("p1", |x: u64| async move { Ok(x + 1) })
            .delay("nap", Duration::from_secs(600))
            .then("p2", |x: u64| async move { Ok(x) })
            .build()
            .unwrap(),
    )
}

fn worker(b: &Backend, wf: &Arc<Workflow<JsonCodec, u64>>) -> WorkerHandle<Backend> {
    sayiir_runtime::PooledWorker::new(
        "cli-worker",
        b.clone(),
        sayiir_core::registry::TaskRegistry::new(),
    )
    .with_claim_ttl(Some(Duration::from_secs(30)))
    .spawn(
        Duration::from_millis(50),
        vec![(*wf.definition_hash(), Arc::clone(wf))],
    )
}

async fn stop(w: WorkerHandle<Backend>) {
    w.shutdown();
    w.join().await.unwrap();
}

async fn wait_for(
    client: &WorkflowClient<Backend>,
    id: &str,
    done: impl Fn(&WorkflowStatus) -> bool,
) -> WorkflowStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.status(id).await.unwrap();
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{id}: still {status:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs the binary off the runtime's thread, so the workers keep running.
async fn cli_async(db: &sayiir_diesel_testkit::TestDatabase, args: &[&str]) -> Run {
    let url = db.url().to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || run(bare().env("DATABASE_URL", url).args(args)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_send_event_and_resume_drive_a_running_workflow() {
    let (db, b) = backend().await;
    let wf = gated();
    let client = WorkflowClient::new(b.clone());
    let w = worker(&b, &wf);
    client.submit(&*wf, "gated", 1).await.unwrap();
    wait_for(&client, "gated", |s| {
        matches!(s, WorkflowStatus::AwaitingSignal { .. })
    })
    .await;

    let paused = cli_async(
        &db,
        &["pause", "gated", "--reason", "maintenance", "--json"],
    )
    .await
    .json();
    assert_eq!(paused["action"], "pause");
    assert_eq!(paused["result"], "requested");
    // Nobody holds a parked workflow: the workers' finder applies the request.
    let s = wait_for(&client, "gated", |s| {
        matches!(s, WorkflowStatus::Paused { .. })
    })
    .await;
    assert!(
        matches!(&s, WorkflowStatus::Paused { reason: Some(r), .. } if r == "maintenance"),
        "{s:?}"
    );
    let again = cli_async(&db, &["pause", "gated", "--json"]).await.json();
    assert_eq!(again["result"], "already_paused");

    // An event for a paused workflow waits for it.
    let sent = cli_async(&db, &["send-event", "gated", "go", "5", "--json"])
        .await
        .json();
    assert_eq!(sent["delivery"], "buffered");
    assert_eq!(sent["status"], "Paused");
    assert_eq!(sent["bytes"], 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        client.status("gated").await.unwrap(),
        WorkflowStatus::Paused { .. }
    ));

    let resumed = cli_async(&db, &["resume", "gated", "--json"]).await.json();
    assert_eq!(resumed["result"], "resumed");
    assert_eq!(resumed["status"], "InProgress");
    wait_for(&client, "gated", |s| matches!(s, WorkflowStatus::Completed)).await;
    let out = b
        .load_snapshot("gated")
        .await
        .unwrap()
        .final_output_bytes()
        .unwrap();
    assert_eq!(out.as_ref(), b"50", "the event's payload fed g2");

    assert_finished_refuses_every_action(&db, "gated").await;
    stop(w).await;
}

/// A finished workflow refuses every action with exit code 4 and a
/// message naming the tool.
async fn assert_finished_refuses_every_action(db: &sayiir_diesel_testkit::TestDatabase, id: &str) {
    for args in [
        &["resume", id][..],
        &["pause", id],
        &["cancel", id],
        &["send-event", id, "go", "1"],
    ] {
        let r = cli_async(db, args).await;
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("sayiir-diesel: "), "{}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_resumes_a_waiting_workflow() {
    let (db, b) = backend().await;
    let wf = gated();
    let client = WorkflowClient::new(b.clone());
    let w = worker(&b, &wf);
    client.submit(&*wf, "waiting", 2).await.unwrap();
    wait_for(&client, "waiting", |s| {
        matches!(s, WorkflowStatus::AwaitingSignal { .. })
    })
    .await;
    let path = std::env::temp_dir().join(format!("sayiir-cli-payload-{}", std::process::id()));
    std::fs::write(&path, b"7").unwrap();
    let sent = cli_async(
        &db,
        &[
            "send-event",
            "waiting",
            "go",
            "--payload-file",
            path.to_str().unwrap(),
            "--json",
        ],
    )
    .await
    .json();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(sent["delivery"], "resumed");
    wait_for(&client, "waiting", |s| {
        matches!(s, WorkflowStatus::Completed)
    })
    .await;
    let out = b
        .load_snapshot("waiting")
        .await
        .unwrap()
        .final_output_bytes()
        .unwrap();
    assert_eq!(out.as_ref(), b"70");
    stop(w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_parked_workflow_under_a_worker() {
    let (db, b) = backend().await;
    let wf = parked();
    let client = WorkflowClient::new(b.clone());
    let w = worker(&b, &wf);
    client.submit(&*wf, "napping", 1).await.unwrap();
    wait_for(&client, "napping", |s| {
        matches!(s, WorkflowStatus::Waiting { .. })
    })
    .await;
    let r = cli_async(
        &db,
        &["cancel", "napping", "--reason", "obsolete", "--by", "alice"],
    )
    .await;
    assert!(r.ok().contains("cancel requested"), "{}", r.stdout);
    let s = wait_for(&client, "napping", |s| {
        matches!(s, WorkflowStatus::Cancelled { .. })
    })
    .await;
    assert!(
        matches!(&s, WorkflowStatus::Cancelled { reason: Some(r), cancelled_by: Some(by), .. }
            if r == "obsolete" && by == "alice"),
        "{s:?}"
    );
    let again = cli_async(&db, &["cancel", "napping", "--json"])
        .await
        .json();
    assert_eq!(
        again["result"], "already_cancelled",
        "a second cancel is a no-op"
    );
    stop(w).await;
}

#[tokio::test]
async fn requests_go_through_the_store_calls_workers_make() {
    let (db, b) = backend().await;
    b.save_snapshot(&mut at_task("queued", "a")).await.unwrap();

    // A pause not applied yet is withdrawn by `resume`.
    let p = cli(&db, &["pause", "queued", "--json"]).json();
    assert_eq!(p["result"], "requested");
    assert_eq!(p["status"], "InProgress");
    assert!(
        b.get_signal("queued", SignalKind::Pause)
            .await
            .unwrap()
            .is_some()
    );
    let r = cli(&db, &["resume", "queued", "--json"]).json();
    assert_eq!(r["result"], "pause_withdrawn");
    assert!(
        b.get_signal("queued", SignalKind::Pause)
            .await
            .unwrap()
            .is_none()
    );
    let r = cli(&db, &["resume", "queued"]);
    assert_eq!(r.code, 4, "nothing to resume: {}", r.stderr);

    // A cancel is the request a worker applies at its next task boundary.
    cli(&db, &["cancel", "queued", "--reason", "bad input"]).ok();
    let req = b
        .get_signal("queued", SignalKind::Cancel)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.reason.as_deref(), Some("bad input"));
    assert_eq!(req.requested_by.as_deref(), Some("sayiir-diesel-cli"));
    assert!(b.check_and_cancel("queued", None).await.unwrap());
    let s = b.load_snapshot("queued").await.unwrap();
    assert!(s.state.is_cancelled(), "{:?}", s.state);
}

#[tokio::test]
async fn unknown_workflows_exit_3_unless_buffering_is_asked_for() {
    let db = test_db().await;
    for args in [
        &["cancel", "ghost"][..],
        &["pause", "ghost"],
        &["resume", "ghost"],
        &["show", "ghost"],
        &["send-event", "ghost", "go", "1"],
    ] {
        let r = cli(&db, args);
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("ghost"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    // An event may arrive before its workflow is submitted: --allow-unknown
    // buffers it (from stdin here).
    let mut child = bare()
        .env("DATABASE_URL", db.url())
        .args([
            "send-event",
            "ghost",
            "go",
            "--payload-file",
            "-",
            "--allow-unknown",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\"hello\"").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sent["delivery"], "buffered");
    assert_eq!(sent["status"], serde_json::Value::Null);
    let mut conn = raw_conn(&db).await;
    let payloads: Vec<Vec<u8>> = events::table
        .filter(events::instance_id.eq("ghost"))
        .select(events::payload)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(payloads, [b"\"hello\"".to_vec()]);
}
