//! TaskClaimStore: claims are exclusive, expire, check the worker, and
//! refuse a task already done or a copy read before the workflow moved on
//! (SPEC 4, 8 D/E/G).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::finder::*;
use common::*;
use sayiir_persistence::{BackendError, SnapshotStore, TaskClaimStore, TaskWakeupHint};

/// A live claim is the one worker's: nobody else, nor the same worker
/// again, gets it.
async fn a_live_claim_is_exclusive(b: &Backend) {
    let c = b
        .claim_task("wf", &tid("task-1"), "w1", ttl(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.worker_id, "w1");
    assert_eq!(c.task_id, tid("task-1"));
    assert!(c.expires_at.unwrap() >= c.claimed_at + 59);
    assert!(
        b.claim_task("wf", &tid("task-1"), "w2", ttl(60))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        b.claim_task("wf", &tid("task-1"), "w1", ttl(60))
            .await
            .unwrap()
            .is_none(),
        "not re-entrant"
    );
}

/// Only the owner extends or releases it; once released it is gone.
async fn only_the_owner_extends_or_releases(b: &Backend) {
    // Wrong worker: Backend; wrong task or nothing: NotFound.
    assert!(
        matches!(b.release_task_claim("wf", &tid("task-1"), "w2").await,
        Err(BackendError::Backend(m)) if m.contains("different worker: w1"))
    );
    assert!(matches!(
        b.extend_task_claim("wf", &tid("task-1"), "w2", chrono::Duration::seconds(5))
            .await,
        Err(BackendError::Backend(_))
    ));
    assert!(matches!(
        b.release_task_claim("wf", &tid("other"), "w1").await,
        Err(BackendError::NotFound(_))
    ));
    // Extend adds to the current expiry.
    b.extend_task_claim("wf", &tid("task-1"), "w1", chrono::Duration::seconds(300))
        .await
        .unwrap();
    b.release_task_claim("wf", &tid("task-1"), "w1")
        .await
        .unwrap();
    assert!(matches!(
        b.release_task_claim("wf", &tid("task-1"), "w1").await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        b.extend_task_claim("wf", &tid("task-1"), "w1", chrono::Duration::seconds(1))
            .await,
        Err(BackendError::NotFound(_))
    ));
}

/// Released: another worker claims. A 1 s claim is taken over after it expires.
async fn a_released_or_expired_claim_is_taken_over(b: &Backend) {
    assert!(
        b.claim_task("wf", &tid("task-1"), "w2", ttl(1))
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(
        b.claim_task("wf", &tid("task-1"), "w3", ttl(60))
            .await
            .unwrap()
            .is_some(),
        "takeover"
    );
}

/// Missing workflow: NotFound; wrong position: None.
async fn a_claim_needs_the_workflow_at_the_task(b: &Backend) {
    assert!(
        matches!(b.claim_task("missing", &tid("t"), "w", None).await,
        Err(BackendError::NotFound(m)) if m.starts_with("missing:"))
    );
    b.save_snapshot(&mut at_task("other", "a")).await.unwrap();
    assert!(
        b.claim_task("other", &tid("b"), "w", None)
            .await
            .unwrap()
            .is_none()
    );
}

/// No TTL never expires, and extending keeps it so.
async fn a_claim_without_ttl_never_expires(b: &Backend) {
    let c = b
        .claim_task("other", &tid("a"), "w", None)
        .await
        .unwrap()
        .unwrap();
    assert!(c.expires_at.is_none());
    b.extend_task_claim("other", &tid("a"), "w", chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert!(
        b.claim_task("other", &tid("a"), "x", None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn claims_are_exclusive_expire_and_check_the_worker() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "task-1")).await.unwrap();
    a_live_claim_is_exclusive(&b).await;
    only_the_owner_extends_or_releases(&b).await;
    a_released_or_expired_claim_is_taken_over(&b).await;
    a_claim_needs_the_workflow_at_the_task(&b).await;
    a_claim_without_ttl_never_expires(&b).await;
}

#[tokio::test]
async fn a_task_whose_output_is_recorded_is_neither_offered_nor_claimed() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "last");
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_task_completed(tid("last"), Bytes::from_static(b"done"));
    b.save_snapshot(&mut s).await.unwrap();
    assert!(
        b.claim_task("wf", &tid("last"), "w", ttl(60))
            .await
            .unwrap()
            .is_none()
    );
    assert!(found(&b, "w", &[]).await.is_empty());
}

#[tokio::test]
async fn a_copy_read_before_the_workflow_moved_on_cannot_claim() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "body");
    b.save_snapshot(&mut s).await.unwrap();
    // w1 reads the body at iteration k and holds its copy.
    assert_eq!(found(&b, "w1", &[]).await, vec!["wf"]);
    // w2 runs iteration k; the loop comes back to the same task, the same
    // membership (none), a new input.
    assert!(
        b.claim_task("wf", &tid("body"), "w2", ttl(60))
            .await
            .unwrap()
            .is_some()
    );
    s.mark_task_completed(tid("body"), Bytes::from_static(b"k"));
    b.save_snapshot(&mut s).await.unwrap();
    let mut next = at_task("wf", "body");
    next.set_loop_iteration(tid("body"), 1);
    b.save_snapshot(&mut next).await.unwrap();
    b.release_task_claim("wf", &tid("body"), "w2")
        .await
        .unwrap();
    // w1's copy is stale: refused, and the row stays runnable.
    assert!(
        b.claim_task("wf", &tid("body"), "w1", ttl(60))
            .await
            .unwrap()
            .is_none()
    );
    // Read again, the same worker claims the current iteration; a claim
    // with no copy on record is checked on position and membership only.
    assert_eq!(found(&b, "w1", &[]).await, vec!["wf"]);
    assert!(
        b.claim_task("wf", &tid("body"), "w1", ttl(60))
            .await
            .unwrap()
            .is_some()
    );
    b.release_task_claim("wf", &tid("body"), "w1")
        .await
        .unwrap();
    assert!(
        b.claim_task("wf", &tid("body"), "w3", ttl(60))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_hinted_copy_is_checked_the_same_way() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "body");
    b.save_snapshot(&mut s).await.unwrap();
    let hint = TaskWakeupHint {
        instance_id: "wf".into(),
        task_id: *tid("body").as_bytes(),
        definition_hash: *def_hash().as_bytes(),
        tags: vec![],
    };
    assert!(b.find_hinted_task(&hint).await.unwrap().is_some());
    b.save_snapshot(&mut s).await.unwrap();
    assert!(
        b.claim_task("wf", &tid("body"), "w1", ttl(60))
            .await
            .unwrap()
            .is_none()
    );
    assert!(b.find_hinted_task(&hint).await.unwrap().is_some());
    assert!(
        b.claim_task("wf", &tid("body"), "w1", ttl(60))
            .await
            .unwrap()
            .is_some()
    );
}
