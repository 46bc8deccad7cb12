//! SignalStore's cancel and pause requests: stored, applied at task
//! boundaries, paused and unpaused (SPEC 3, 7, 8). Events: `events.rs`.

mod common;

use bytes::Bytes;
use common::*;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind, WorkflowSnapshotState};
use sayiir_persistence::{BackendError, SignalStore, SnapshotStore};

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
    assert_eq!(output_of(b, "wf", "a").await.as_deref(), Some(&b"A"[..]));
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
