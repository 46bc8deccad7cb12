//! A save that records the claimed task's output ends that claim in its
//! own statement, and the worker's release after it sends nothing: one
//! write commit per step fewer (`store::snapshot`, `dispatch/held.rs`).
//! These tests read the claims and queue rows directly, with a second
//! backend standing in for another process.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::finder::ttl;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_diesel::schema::sayiir::{claims, tasks};
use sayiir_persistence::{BackendError, SnapshotStore, TaskClaimStore};

/// The worker of the claim on `id`, if any.
async fn claim_holder(db: &sayiir_diesel_testkit::TestDatabase, id: &str) -> Option<String> {
    let mut conn = raw_conn(db).await;
    claims::table
        .filter(claims::instance_id.eq(id))
        .select(claims::worker_id)
        .first(&mut conn)
        .await
        .optional()
        .unwrap()
}

/// `s` with `task`'s output recorded and moved on to `next`.
fn finished(mut s: WorkflowSnapshot, task: &str, next: &str) -> WorkflowSnapshot {
    s.mark_task_completed(tid(task), Bytes::from_static(b"out"));
    s.update_position(ExecutionPosition::AtTask { task_id: tid(next) });
    s
}

#[tokio::test]
async fn a_save_of_the_claimed_output_ends_the_claim_and_wakes_the_next_task() {
    let (db, b) = backend().await;
    let other = Backend::connect(db.url()).await.unwrap();
    let s = at_task("wf", "a");
    b.save_snapshot(&mut s.clone()).await.unwrap();
    b.claim_task("wf", &tid("a"), "w1", ttl(60))
        .await
        .unwrap()
        .expect("claimed");

    // Every wakeup up to the one for task b (the first save's, for a, may
    // still be on its way).
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                match other.wait_for_wakeup(Duration::from_secs(5)).await {
                    Ok(Some(hint)) if hint.task_id == *tid("b").as_bytes() => return Some(hint),
                    Ok(Some(_)) => {}
                    _ => return None,
                }
            }
            None
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.save_snapshot(&mut finished(s, "a", "b")).await.unwrap();

    assert_eq!(claim_holder(&db, "wf").await, None, "the save ended it");
    let mut conn = raw_conn(&db).await;
    let (claimed_until, released, queued) = tasks::table
        .find("wf")
        .select((tasks::claimed_until, tasks::released_at, tasks::queued_at))
        .first::<(
            Option<chrono::DateTime<chrono::Utc>>,
            Option<chrono::DateTime<chrono::Utc>>,
            chrono::DateTime<chrono::Utc>,
        )>(&mut conn)
        .await
        .unwrap();
    assert_eq!(claimed_until, None);
    assert!(
        released.is_some_and(|r| r >= queued),
        "recorded as released after the save, as a release would"
    );
    let hint = waiter.await.unwrap().expect("the save woke a worker");
    assert_eq!(hint.instance_id, "wf");

    // Another process claims the next task before the first worker's
    // release arrives; that release is answered from memory and leaves the
    // new claim alone.
    other
        .claim_task("wf", &tid("b"), "w2", ttl(60))
        .await
        .unwrap()
        .expect("the next task is free at once");
    b.release_task_claim("wf", &tid("a"), "w1").await.unwrap();
    assert_eq!(claim_holder(&db, "wf").await.as_deref(), Some("w2"));
    // Answered once: a second release asks the database, as before.
    assert!(matches!(
        b.release_task_claim("wf", &tid("a"), "w1").await,
        Err(BackendError::Backend(m)) if m.contains("different worker: w2")
    ));
}

#[tokio::test]
async fn a_save_without_the_output_or_parking_at_a_signal_keeps_the_claim() {
    let (db, b) = backend().await;
    // A retry scheduled: the task's output is not in the save.
    let mut s = at_task("retry", "a");
    b.save_snapshot(&mut s).await.unwrap();
    b.claim_task("retry", &tid("a"), "w1", ttl(60))
        .await
        .unwrap()
        .expect("claimed");
    b.save_snapshot(&mut s).await.unwrap();
    assert_eq!(claim_holder(&db, "retry").await.as_deref(), Some("w1"));
    b.release_task_claim("retry", &tid("a"), "w1")
        .await
        .unwrap();
    assert_eq!(claim_holder(&db, "retry").await, None);

    // Parked at a signal: the runtime may still apply a buffered event
    // under the claim.
    let s = at_task("park", "before");
    b.save_snapshot(&mut s.clone()).await.unwrap();
    b.claim_task("park", &tid("before"), "w1", ttl(60))
        .await
        .unwrap()
        .expect("claimed");
    let mut parked = at_signal("park", "sig", "go", Some("after"));
    b.save_snapshot(&mut parked).await.unwrap();
    assert_eq!(claim_holder(&db, "park").await.as_deref(), Some("w1"));
    b.release_task_claim("park", &tid("before"), "w1")
        .await
        .unwrap();
    assert_eq!(claim_holder(&db, "park").await, None);

    // A claim another backend granted is not this one's to end.
    let other = Backend::connect(db.url()).await.unwrap();
    let s = at_task("foreign", "a");
    b.save_snapshot(&mut s.clone()).await.unwrap();
    other
        .claim_task("foreign", &tid("a"), "w9", ttl(60))
        .await
        .unwrap()
        .expect("claimed");
    b.save_snapshot(&mut finished(s, "a", "b")).await.unwrap();
    assert_eq!(claim_holder(&db, "foreign").await.as_deref(), Some("w9"));
}

#[tokio::test]
async fn a_late_save_does_not_end_the_claim_that_took_over() {
    let (db, b) = backend().await;
    let other = Backend::connect(db.url()).await.unwrap();
    let s = at_task("wf", "a");
    b.save_snapshot(&mut s.clone()).await.unwrap();
    b.claim_task("wf", &tid("a"), "w1", ttl(1))
        .await
        .unwrap()
        .expect("claimed");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    other
        .claim_task("wf", &tid("a"), "w2", ttl(60))
        .await
        .unwrap()
        .expect("taken over after expiry");
    b.save_snapshot(&mut finished(s, "a", "b")).await.unwrap();
    assert_eq!(
        claim_holder(&db, "wf").await.as_deref(),
        Some("w2"),
        "the late save left the new holder's claim"
    );
    assert!(matches!(
        b.release_task_claim("wf", &tid("a"), "w1").await,
        Err(BackendError::Backend(m)) if m.contains("different worker: w2")
    ));
}
