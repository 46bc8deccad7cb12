//! The evidence events a repeated step is explained by (target
//! `sayiir_diesel::store`): a claim taken over from an expired holder names
//! that holder and its task; a failed release, heartbeat or save names the
//! instance, the task and the worker where the call has them.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::evidence::recorder;
use common::*;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};

#[tokio::test]
async fn a_takeover_and_the_failed_calls_of_the_lost_claim_are_evidence() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    let (seen, _guard) = recorder();

    // w1 claims for 100 ms and loses it to w2.
    b.claim_task(
        "wf",
        &tid("a"),
        "w1",
        Some(chrono::Duration::milliseconds(100)),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "a first claim is no evidence"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.claim_task("wf", &tid("a"), "w2", Some(chrono::Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    // w1's heartbeat and release then fail.
    assert!(
        b.extend_task_claim("wf", &tid("a"), "w1", chrono::Duration::seconds(5))
            .await
            .is_err()
    );
    assert!(b.release_task_claim("wf", &tid("a"), "w1").await.is_err());
    // A save of a workflow that is not there.
    assert!(
        b.save_task_result("nowhere", &tid("a"), Bytes::from_static(b"1"))
            .await
            .is_err()
    );

    let seen = seen.lock().unwrap().clone();
    let lines: Vec<String> = seen.iter().map(ToString::to_string).collect();
    assert_eq!(seen.len(), 4, "{lines:#?}");
    let a = tid("a").to_string();
    let takeover = &seen[0];
    assert_eq!(takeover.message, "claim taken over", "{lines:#?}");
    assert_eq!(takeover.field("instance_id"), Some("wf"));
    assert_eq!(takeover.field("task_id"), Some(a.as_str()));
    assert_eq!(takeover.field("worker_id"), Some("w2"));
    assert_eq!(takeover.field("previous_worker"), Some("w1"));
    assert_eq!(takeover.field("previous_task"), Some(a.as_str()));
    for (e, op) in seen[1..].iter().zip([
        "extend_task_claim",
        "release_task_claim",
        "save_task_result",
    ]) {
        assert_eq!(e.message, "store call failed", "{lines:#?}");
        assert_eq!(e.field("op"), Some(op), "{lines:#?}");
        assert_eq!(e.field("task_id"), Some(a.as_str()), "{lines:#?}");
        assert!(
            e.field("error").is_some_and(|m| !m.is_empty()),
            "{lines:#?}"
        );
        assert_eq!(e.field("transient"), Some("false"), "{lines:#?}");
    }
    assert_eq!(seen[1].field("worker_id"), Some("w1"));
    assert!(seen[2].field("error").unwrap().contains("w2"), "{lines:#?}");
    assert_eq!(seen[3].field("instance_id"), Some("nowhere"));
    assert_eq!(seen[3].field("worker_id"), None);
}

/// A claim refused because another live claim holds the task is the
/// normal race, not evidence; nor is a claim of a released task.
#[tokio::test]
async fn refused_and_plain_claims_are_no_evidence() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    let (seen, _guard) = recorder();
    b.claim_task("wf", &tid("a"), "w1", Some(chrono::Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        b.claim_task("wf", &tid("a"), "w2", Some(chrono::Duration::seconds(60)))
            .await
            .unwrap()
            .is_none()
    );
    b.release_task_claim("wf", &tid("a"), "w1").await.unwrap();
    b.claim_task("wf", &tid("a"), "w2", Some(chrono::Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.is_empty(), "{seen:#?}");
}
