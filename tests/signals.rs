//! SignalStore against a real PostgreSQL (SPEC 3, 7, 8).

mod common;

use bytes::Bytes;
use common::*;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind, WorkflowSnapshotState};
use sayiir_persistence::{BackendError, SignalStore, SnapshotStore, TaskResultStore};

use SignalKind::{Cancel, Pause};

async fn status(b: &Backend, id: &str) -> String {
    b.load_snapshot(id).await.unwrap().state.as_ref().to_owned()
}

#[tokio::test]
async fn store_get_clear_and_overwrite() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    assert!(b.get_signal("wf", Cancel).await.unwrap().is_none());
    let req = request("stop", "alice");
    let at = req.requested_at;
    b.store_signal("wf", Cancel, req).await.unwrap();
    let got = b.get_signal("wf", Cancel).await.unwrap().unwrap();
    assert_eq!(got.reason.as_deref(), Some("stop"));
    assert_eq!(got.requested_by.as_deref(), Some("alice"));
    assert_eq!(
        got.requested_at.timestamp_micros(),
        at.timestamp_micros(),
        "caller's time kept"
    );
    // The latest request wins; kinds are independent.
    b.store_signal("wf", Cancel, request("again", "bob"))
        .await
        .unwrap();
    b.store_signal("wf", Pause, request("hold", "carol"))
        .await
        .unwrap();
    assert_eq!(
        b.get_signal("wf", Cancel)
            .await
            .unwrap()
            .unwrap()
            .requested_by
            .as_deref(),
        Some("bob")
    );
    // Clearing Cancel leaves Pause; clearing twice is fine.
    b.clear_signal("wf", Cancel).await.unwrap();
    b.clear_signal("wf", Cancel).await.unwrap();
    assert!(b.get_signal("wf", Cancel).await.unwrap().is_none());
    assert!(b.get_signal("wf", Pause).await.unwrap().is_some());
    // A signal is a request: the state does not change by itself.
    assert_eq!(status(&b, "wf").await, "InProgress");
    assert!(b.get_signal("unknown", Pause).await.unwrap().is_none());
}

#[tokio::test]
async fn store_signal_follows_the_state_table() {
    let (_db, b) = backend().await;
    assert!(matches!(
        b.store_signal("missing", Cancel, request("r", "u")).await,
        Err(BackendError::NotFound(id)) if id == "missing"
    ));
    let mut done = at_task("done", "a");
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    let mut failed = at_task("failed", "a");
    failed.mark_failed("x".into());
    b.save_snapshot(&mut failed).await.unwrap();
    for id in ["done", "failed"] {
        let state = if id == "done" { "Completed" } else { "Failed" };
        assert!(
            matches!(b.store_signal(id, Cancel, request("r", "u")).await,
            Err(BackendError::CannotCancel(s)) if s == state)
        );
        assert!(matches!(b.store_signal(id, Pause, request("r", "u")).await,
            Err(BackendError::CannotPause(s)) if s == state));
    }
    // Idempotent cells write no row.
    let mut cancelled = at_task("cancelled", "a");
    cancelled.mark_cancelled(None, None, None);
    b.save_snapshot(&mut cancelled).await.unwrap();
    b.store_signal("cancelled", Cancel, request("r", "u"))
        .await
        .unwrap();
    assert!(b.get_signal("cancelled", Cancel).await.unwrap().is_none());
    assert!(
        matches!(b.store_signal("cancelled", Pause, request("r", "u")).await,
        Err(BackendError::CannotPause(s)) if s == "Cancelled")
    );

    b.save_snapshot(&mut at_task("paused", "a")).await.unwrap();
    b.store_signal("paused", Pause, request("r", "u"))
        .await
        .unwrap();
    assert!(b.check_and_pause("paused").await.unwrap());
    b.store_signal("paused", Pause, request("again", "u"))
        .await
        .unwrap();
    assert!(
        b.get_signal("paused", Pause).await.unwrap().is_none(),
        "no stray Pause row"
    );
    // Cancel on Paused is stored.
    b.store_signal("paused", Cancel, request("r", "u"))
        .await
        .unwrap();
    assert!(b.get_signal("paused", Cancel).await.unwrap().is_some());
}

/// `wf` is Cancelled at task `b` with alice's reason, and `a`'s output is
/// still there, in the snapshot and as a task result.
async fn assert_cancelled_by_alice_at_b_keeping_a(b: &Backend) {
    let loaded = b.load_snapshot("wf").await.unwrap();
    match &loaded.state {
        WorkflowSnapshotState::Cancelled {
            reason,
            cancelled_by,
            interrupted_at_task,
            ..
        } => {
            assert_eq!(reason.as_deref(), Some("stop"));
            assert_eq!(cancelled_by.as_deref(), Some("alice"));
            assert_eq!(*interrupted_at_task, Some(tid("b")));
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(
        loaded.get_task_result_bytes(&tid("a")).as_deref(),
        Some(&b"A"[..])
    );
    assert_eq!(
        b.load_task_result("wf", &tid("a"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"A"[..])
    );
}

#[tokio::test]
async fn check_and_cancel_applies_once_and_keeps_outputs() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "b");
    s.mark_task_completed(tid("a"), Bytes::from_static(b"A"));
    b.save_snapshot(&mut s).await.unwrap();
    assert!(
        !b.check_and_cancel("wf", Some(tid("b"))).await.unwrap(),
        "nothing pending"
    );
    assert_eq!(status(&b, "wf").await, "InProgress");
    // Not-found with nothing pending is just `false` (fast path, no lookup).
    assert!(!b.check_and_cancel("nobody", None).await.unwrap());

    b.store_signal("wf", Pause, request("hold", "p"))
        .await
        .unwrap();
    b.store_signal("wf", Cancel, request("stop", "alice"))
        .await
        .unwrap();
    // Cancel wins over pause when both are pending (the runtime checks cancel first).
    assert!(b.check_and_cancel("wf", Some(tid("b"))).await.unwrap());
    assert_cancelled_by_alice_at_b_keeping_a(&b).await;
    assert!(
        b.get_signal("wf", Cancel).await.unwrap().is_none(),
        "signal consumed"
    );
    assert!(
        b.get_signal("wf", Pause).await.unwrap().is_some(),
        "pause row left alone"
    );
    // Not InProgress: false, and the signal stays.
    assert!(!b.check_and_pause("wf").await.unwrap());
    assert!(b.get_signal("wf", Pause).await.unwrap().is_some());
    assert!(!b.check_and_cancel("wf", None).await.unwrap());
}

/// Paused at task `c` after `b`, with the request's reason and author, the
/// outputs kept and the Pause request consumed.
async fn assert_paused_at_c_keeping_outputs(b: &Backend) {
    let paused = b.load_snapshot("wf").await.unwrap();
    match &paused.state {
        WorkflowSnapshotState::Paused {
            reason,
            paused_by,
            position,
            last_completed_task_id,
            ..
        } => {
            assert_eq!(reason.as_deref(), Some("maintenance"));
            assert_eq!(paused_by.as_deref(), Some("ops"));
            assert!(
                matches!(position, ExecutionPosition::AtTask { task_id } if *task_id == tid("c"))
            );
            assert_eq!(*last_completed_task_id, Some(tid("b")));
        }
        other => panic!("expected Paused, got {other:?}"),
    }
    assert_eq!(
        paused.get_task_result_bytes(&tid("a")).as_deref(),
        Some(&b"A"[..])
    );
    assert!(b.get_signal("wf", Pause).await.unwrap().is_none());
}

/// Unpausing returns the hydrated state at `c`, and stores it InProgress.
async fn assert_unpause_restores_position_and_outputs(b: &Backend) {
    let resumed = b.unpause("wf").await.unwrap();
    assert_eq!(resumed.current_task_id(), Some(tid("c")));
    assert_eq!(
        resumed.get_task_result_bytes(&tid("a")).as_deref(),
        Some(&b"A"[..]),
        "hydrated"
    );
    assert_eq!(resumed.get_last_task_output().as_deref(), Some(&b"B"[..]));
    let loaded = b.load_snapshot("wf").await.unwrap();
    assert!(loaded.state.is_in_progress());
    assert_eq!(
        loaded.get_task_result_bytes(&tid("b")).as_deref(),
        Some(&b"B"[..])
    );
}

/// Unpause refuses a running, a missing and a finished workflow.
async fn assert_unpause_refuses_what_is_not_paused(b: &Backend) {
    match b.unpause("wf").await {
        Err(BackendError::CannotPause(m)) => {
            assert!(m.contains("not paused") && m.contains("InProgress"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        b.unpause("missing").await,
        Err(BackendError::NotFound(_))
    ));
    let mut done = at_task("done", "a");
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    assert!(
        matches!(b.unpause("done").await, Err(BackendError::CannotPause(m)) if m.contains("Completed"))
    );
}

#[tokio::test]
async fn pause_then_unpause_restores_position_members_and_outputs() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "c");
    s.mark_task_completed(tid("a"), Bytes::from_static(b"A"));
    s.mark_task_completed(tid("b"), Bytes::from_static(b"B"));
    b.save_snapshot(&mut s).await.unwrap();
    assert!(!b.check_and_pause("wf").await.unwrap());
    b.store_signal("wf", Pause, request("maintenance", "ops"))
        .await
        .unwrap();
    assert!(b.check_and_pause("wf").await.unwrap());
    assert_paused_at_c_keeping_outputs(&b).await;
    assert_unpause_restores_position_and_outputs(&b).await;
    assert_unpause_refuses_what_is_not_paused(&b).await;
}

#[tokio::test]
async fn send_event_resumes_a_parked_workflow() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_signal("wf", "sig", "approve", Some("next")))
        .await
        .unwrap();
    b.send_event("wf", "approve", Bytes::from_static(b"yes"))
        .await
        .unwrap();
    let s = b.load_snapshot("wf").await.unwrap();
    assert_eq!(s.current_task_id(), Some(tid("next")));
    assert_eq!(
        s.get_task_result_bytes(&tid("sig")).as_deref(),
        Some(&b"yes"[..]),
        "keyed by signal_id"
    );
    assert_eq!(
        s.get_last_task_output().as_deref(),
        Some(&b"yes"[..]),
        "input of the next task"
    );
    assert_eq!(
        b.load_task_result("wf", &tid("sig"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"yes"[..])
    );
    assert!(
        b.consume_event("wf", "approve").await.unwrap().is_none(),
        "not buffered"
    );

    // Last node: the payload completes the workflow and stays readable.
    b.save_snapshot(&mut at_signal("last", "sig", "approve", None))
        .await
        .unwrap();
    b.send_event("last", "approve", Bytes::from_static(b"done"))
        .await
        .unwrap();
    let s = b.load_snapshot("last").await.unwrap();
    assert_eq!(s.final_output_bytes().as_deref(), Some(&b"done"[..]));
    assert_eq!(
        b.load_task_result("last", &tid("sig"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"done"[..])
    );
    assert_eq!(
        b.load_task_result("last", &tid("before"))
            .await
            .unwrap()
            .as_deref(),
        Some(&b"before-out"[..])
    );
}

/// The next buffered event `name` of `id`, consumed.
async fn next_event(b: &Backend, id: &str, name: &str) -> Option<Bytes> {
    b.consume_event(id, name).await.unwrap()
}

/// At a task: events are buffered, the snapshot is left as it was, and each
/// name's events come back oldest first.
async fn a_busy_workflow_buffers_fifo_per_name(b: &Backend) {
    let at = at_task("busy", "a");
    b.save_snapshot(&mut at.clone()).await.unwrap();
    let before = b.load_snapshot("busy").await.unwrap();
    for p in ["1", "2", "3"] {
        b.send_event("busy", "go", Bytes::from(p)).await.unwrap();
    }
    b.send_event("busy", "other", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let after = b.load_snapshot("busy").await.unwrap();
    assert_eq!(
        after.current_task_id(),
        before.current_task_id(),
        "snapshot unchanged"
    );
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(
        next_event(b, "busy", "go").await.as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        next_event(b, "busy", "other").await.as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        next_event(b, "busy", "go").await.as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        next_event(b, "busy", "go").await.as_deref(),
        Some(&b"3"[..])
    );
    assert!(next_event(b, "busy", "go").await.is_none());
}

/// Unknown and finished instances buffer without error.
async fn unknown_and_finished_instances_buffer(b: &Backend) {
    b.send_event("not-yet", "go", Bytes::from_static(b"early"))
        .await
        .unwrap();
    assert_eq!(
        next_event(b, "not-yet", "go").await.as_deref(),
        Some(&b"early"[..])
    );
    let mut done = at_task("done", "a");
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    b.send_event("done", "go", Bytes::from_static(b"late"))
        .await
        .unwrap();
    assert_eq!(
        next_event(b, "done", "go").await.as_deref(),
        Some(&b"late"[..])
    );
}

#[tokio::test]
async fn send_event_buffers_everywhere_else_in_fifo_order_per_name() {
    let (_db, b) = backend().await;
    a_busy_workflow_buffers_fifo_per_name(&b).await;

    // Parked for another name: buffered.
    b.save_snapshot(&mut at_signal("parked", "sig", "approve", Some("n")))
        .await
        .unwrap();
    b.send_event("parked", "reject", Bytes::from_static(b"r"))
        .await
        .unwrap();
    assert!(
        b.load_snapshot("parked")
            .await
            .unwrap()
            .awaited_signal_name()
            .is_some()
    );
    unknown_and_finished_instances_buffer(&b).await;
}

#[tokio::test]
async fn an_older_buffered_event_resumes_first() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.send_event("wf", "go", Bytes::from_static(b"e1"))
        .await
        .unwrap();
    b.send_event("wf", "go", Bytes::from_static(b"e2"))
        .await
        .unwrap();
    let mut s = at_signal("wf", "sig", "go", Some("next"));
    b.save_snapshot(&mut s).await.unwrap();
    b.send_event("wf", "go", Bytes::from_static(b"e3"))
        .await
        .unwrap();
    let s = b.load_snapshot("wf").await.unwrap();
    assert_eq!(
        s.get_task_result_bytes(&tid("sig")).as_deref(),
        Some(&b"e1"[..])
    );
    assert_eq!(
        b.consume_event("wf", "go").await.unwrap().as_deref(),
        Some(&b"e2"[..])
    );
    assert_eq!(
        b.consume_event("wf", "go").await.unwrap().as_deref(),
        Some(&b"e3"[..])
    );
    assert!(b.consume_event("wf", "go").await.unwrap().is_none());
}

#[tokio::test]
async fn racing_senders_resume_exactly_once() {
    let (_db, b) = backend().await;
    for round in 0..20 {
        let id = format!("wf-{round}");
        b.save_snapshot(&mut at_signal(&id, "sig", "go", Some("next")))
            .await
            .unwrap();
        let (b1, b2) = (b.clone(), b.clone());
        let (i1, i2) = (id.clone(), id.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { b1.send_event(&i1, "go", Bytes::from_static(b"one")).await }),
            tokio::spawn(async move { b2.send_event(&i2, "go", Bytes::from_static(b"two")).await }),
        );
        r1.unwrap().unwrap();
        r2.unwrap().unwrap();
        let s = b.load_snapshot(&id).await.unwrap();
        let used = s.get_task_result_bytes(&tid("sig")).unwrap();
        let left = b.consume_event(&id, "go").await.unwrap().unwrap();
        assert_ne!(
            used, left,
            "round {round}: one resumed, the other was buffered"
        );
        assert!(b.consume_event(&id, "go").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn concurrent_consumers_never_share_an_event() {
    let (_db, b) = backend().await;
    for i in 0..200u32 {
        b.send_event("wf", "go", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    let mut handles = Vec::new();
    for _ in 0..8 {
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            // Bounded: at most 200 events exist; empty reads stop the loop.
            for _ in 0..400 {
                match b.consume_event("wf", "go").await.unwrap() {
                    Some(p) => got.push(String::from_utf8(p.to_vec()).unwrap()),
                    None => break,
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    // A consumer may stop early on a momentarily skipped head; drain the rest.
    while let Some(p) = b.consume_event("wf", "go").await.unwrap() {
        all.push(String::from_utf8(p.to_vec()).unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no event handed out twice");
    assert_eq!(all.len(), 200, "no event lost");
}
