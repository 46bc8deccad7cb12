//! TaskClaimStore against a real PostgreSQL (SPEC 4, 8 D/E/G).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind};
use sayiir_persistence::{
    BackendError, SignalStore, SnapshotStore, TaskClaimStore, TaskWakeupHint,
};

fn ttl(secs: i64) -> Option<chrono::Duration> {
    Some(chrono::Duration::seconds(secs))
}

fn policy() -> sayiir_core::task::RetryPolicy {
    sayiir_core::task::RetryPolicy {
        max_retries: 3,
        initial_delay: Duration::from_secs(1),
        backoff_multiplier: 2.0,
        max_delay: None,
    }
}

fn aging() -> chrono::Duration {
    chrono::Duration::seconds(300)
}

async fn found(b: &Backend, worker: &str, tags: &[String]) -> Vec<String> {
    b.find_available_tasks(worker, 10, aging(), tags)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.instance_id.to_string())
        .collect()
}

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
async fn finder_applies_every_rule_before_limit() {
    let (_db, b) = backend().await;
    // Thousands of ineligible rows sort ahead of one runnable task.
    for i in 0..2000 {
        let mut s = at_task(&format!("blocked-{i:04}"), "a");
        s.task_priority = Some(1);
        s.mark_task_completed(tid("a"), Bytes::from_static(b"x"));
        b.save_snapshot(&mut s).await.unwrap();
    }
    let mut runnable = at_task("runnable", "a");
    runnable.task_priority = Some(5);
    b.save_snapshot(&mut runnable).await.unwrap();
    let got = b.find_available_tasks("w", 1, aging(), &[]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(&*got[0].instance_id, "runnable");
    assert_eq!(got[0].input.as_ref(), b"in");
    assert!(
        b.find_available_tasks("w", 0, aging(), &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn finder_skips_signals_claims_finished_and_matches_tags() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("plain", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("cancel-pending", "a"))
        .await
        .unwrap();
    b.store_signal("cancel-pending", SignalKind::Cancel, request("r", "u"))
        .await
        .unwrap();
    b.save_snapshot(&mut at_task("claimed", "a")).await.unwrap();
    b.claim_task("claimed", &tid("a"), "w0", ttl(60))
        .await
        .unwrap()
        .unwrap();
    let mut done = at_task("done", "a");
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    let mut gpu = at_task("gpu", "a");
    gpu.task_tags = vec!["gpu".into()];
    b.save_snapshot(&mut gpu).await.unwrap();
    let mut cuda = at_task("gpu-cuda", "a");
    cuda.task_tags = vec!["gpu".into(), "cuda".into()];
    b.save_snapshot(&mut cuda).await.unwrap();

    let mut all = found(&b, "w", &[]).await;
    all.sort();
    assert_eq!(all, ["gpu", "gpu-cuda", "plain"]);
    let mut g = found(&b, "w", &["gpu".into()]).await;
    g.sort();
    assert_eq!(
        g,
        ["gpu", "plain"],
        "a tagged worker also sees untagged tasks"
    );
    let mut gcf = found(&b, "w", &["gpu".into(), "cuda".into(), "fast".into()]).await;
    gcf.sort();
    assert_eq!(gcf, ["gpu", "gpu-cuda", "plain"]);
    assert_eq!(found(&b, "w", &["tpu".into()]).await, ["plain"]);
}

#[tokio::test]
async fn priority_aging_and_worker_bias_order_the_result() {
    // Offers off: this test asks several workers for the same rows.
    let (_db, b) = backend_without_offers().await;
    for (id, p) in [("p5", 5u8), ("p1", 1), ("p3", 3)] {
        let mut s = at_task(id, "a");
        s.task_priority = Some(p);
        b.save_snapshot(&mut s).await.unwrap();
    }
    assert_eq!(found(&b, "w", &[]).await, ["p1", "p3", "p5"]);
    // Aging: a priority-5 task ten minutes old beats a fresh priority-1 at 60 s aging.
    let mut old = at_task("old-p5", "a");
    old.task_priority = Some(5);
    old.updated_at -= 600;
    b.save_snapshot(&mut old).await.unwrap();
    let got = b
        .find_available_tasks("w", 10, chrono::Duration::seconds(60), &[])
        .await
        .unwrap();
    assert_eq!(&*got[0].instance_id, "old-p5");
    // Zero and MAX aging do not panic.
    b.find_available_tasks("w", 10, chrono::Duration::zero(), &[])
        .await
        .unwrap();
    b.find_available_tasks("w", 10, chrono::Duration::MAX, &[])
        .await
        .unwrap();
    // Soft bias: the task that last failed on this worker goes last.
    let mut failed = at_task("failed-here", "a");
    failed.task_priority = Some(1);
    failed.record_retry(tid("a"), &policy(), "boom", Some("w"));
    // The oldest priority-1 task, whatever second the others were saved in
    // (after `record_retry`, which stamps `updated_at`).
    failed.updated_at -= 60;
    failed
        .task_retries
        .get_mut(&tid("a"))
        .unwrap()
        .next_retry_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    b.save_snapshot(&mut failed).await.unwrap();
    let order = found(&b, "w", &[]).await;
    assert_eq!(order.last().map(String::as_str), Some("failed-here"));
    assert_eq!(
        found(&b, "other", &[]).await.first().map(String::as_str),
        Some("failed-here")
    );
}

#[tokio::test]
async fn retry_back_off_is_respected() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "a");
    s.record_retry(tid("a"), &policy(), "boom", Some("w"));
    s.task_retries.get_mut(&tid("a")).unwrap().next_retry_at =
        chrono::Utc::now() + chrono::Duration::seconds(60);
    b.save_snapshot(&mut s).await.unwrap();
    assert!(found(&b, "x", &[]).await.is_empty());
    let hint = TaskWakeupHint {
        instance_id: "wf".into(),
        task_id: *tid("a").as_bytes(),
        definition_hash: *def_hash().as_bytes(),
        tags: vec![],
    };
    assert!(
        b.find_hinted_task(&hint).await.unwrap().is_none(),
        "hinted lookups respect back-off too"
    );
}

/// `delay` (due, then `next`), `future` (due in a minute), `last-delay`
/// (due, nothing after it), `sig` (waiting for `go`, an unrelated event
/// buffered) and `timed` (a signal wait that timed out a second ago).
async fn park_due_and_future_waits(b: &Backend) {
    let mut d = at_task("delay", "a");
    d.mark_task_completed(tid("a"), Bytes::from_static(b"A"));
    d.update_position(ExecutionPosition::AtDelay {
        delay_id: tid("d"),
        entered_at: chrono::Utc::now() - chrono::Duration::seconds(10),
        wake_at: chrono::Utc::now() - chrono::Duration::seconds(1),
        next_task_id: Some(tid("next")),
    });
    b.save_snapshot(&mut d).await.unwrap();
    let mut future = d.clone();
    future.instance_id = "future".into();
    future.update_position(ExecutionPosition::AtDelay {
        delay_id: tid("d"),
        entered_at: chrono::Utc::now(),
        wake_at: chrono::Utc::now() + chrono::Duration::seconds(60),
        next_task_id: Some(tid("next")),
    });
    b.save_snapshot(&mut future).await.unwrap();
    let mut last = d.clone();
    last.instance_id = "last-delay".into();
    last.mark_task_completed(tid("d"), Bytes::from_static(b"pass"));
    last.update_position(ExecutionPosition::AtDelay {
        delay_id: tid("d"),
        entered_at: chrono::Utc::now(),
        wake_at: chrono::Utc::now() - chrono::Duration::seconds(1),
        next_task_id: None,
    });
    b.save_snapshot(&mut last).await.unwrap();
    b.save_snapshot(&mut at_signal("sig", "s", "go", Some("after")))
        .await
        .unwrap();
    b.send_event("sig", "other", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let mut timed = at_signal("timed", "s", "go", Some("after"));
    timed.update_position(ExecutionPosition::AtSignal {
        signal_id: tid("s"),
        signal_name: "go".into(),
        wake_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        next_task_id: Some(tid("after")),
    });
    b.save_snapshot(&mut timed).await.unwrap();
}

#[tokio::test]
async fn due_delays_and_signals_are_advanced_by_the_finder() {
    let (_db, b) = backend().await;
    park_due_and_future_waits(&b).await;

    let mut got = found(&b, "w", &[]).await;
    got.sort();
    assert_eq!(got, ["delay", "timed"]);
    let s = b.load_snapshot("delay").await.unwrap();
    assert_eq!(s.current_task_id(), Some(tid("next")));
    assert_eq!(
        b.load_snapshot("last-delay")
            .await
            .unwrap()
            .final_output_bytes()
            .as_deref(),
        Some(&b"pass"[..])
    );
    assert!(
        b.load_snapshot("future")
            .await
            .unwrap()
            .current_task_id()
            .is_none()
    );
    let t = b.load_snapshot("timed").await.unwrap();
    assert_eq!(t.get_task_result_bytes(&tid("s")), Some(Bytes::new()));
}

#[tokio::test]
async fn wakeups_arrive_fast_and_quiet_waits_time_out() {
    let (db, b) = backend().await;
    let other = Backend::connect(db.url()).await.unwrap();
    let started = Instant::now();
    assert!(
        b.wait_for_wakeup(Duration::from_millis(300))
            .await
            .unwrap()
            .is_none()
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_secs(1),
        "{waited:?}"
    );

    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            (
                b.wait_for_wakeup(Duration::from_secs(5)).await.unwrap(),
                t.elapsed(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = sayiir_core::snapshot::WorkflowSnapshot::new("wf", def_hash());
    s.update_position(ExecutionPosition::AtTask { task_id: tid("a") });
    let sent = Instant::now();
    other.save_snapshot(&mut s).await.unwrap();
    let (hint, _) = waiter.await.unwrap();
    let latency = sent.elapsed();
    let hint = hint.expect("a hint");
    assert_eq!(hint.instance_id, "wf");
    assert_eq!(hint.task_id, *tid("a").as_bytes());
    assert_eq!(hint.definition_hash, *def_hash().as_bytes());
    assert!(latency < Duration::from_millis(500), "woken in {latency:?}");
}

/// Hinted lookup: Some when runnable, None at another task or under a no-TTL claim.
#[tokio::test]
async fn a_hinted_lookup_finds_only_a_runnable_task() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("h", "a")).await.unwrap();
    let mut h = TaskWakeupHint {
        instance_id: "h".into(),
        task_id: *tid("a").as_bytes(),
        definition_hash: *def_hash().as_bytes(),
        tags: vec![],
    };
    assert!(b.find_hinted_task(&h).await.unwrap().is_some());
    h.task_id = *tid("b").as_bytes();
    assert!(b.find_hinted_task(&h).await.unwrap().is_none());
    h.task_id = *tid("a").as_bytes();
    b.claim_task("h", &tid("a"), "w", None)
        .await
        .unwrap()
        .unwrap();
    assert!(b.find_hinted_task(&h).await.unwrap().is_none());
}

#[tokio::test]
async fn listener_reconnects_after_its_connection_is_killed() {
    use diesel_async::RunQueryDsl;
    let (db, b) = backend().await;
    let mut admin = raw_conn(&db).await;
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    // The reconnect itself wakes a waiter (hints may have been missed).
    let deadline = Instant::now() + Duration::from_secs(20);
    while b.metrics().listener_reconnects == 0 {
        assert!(Instant::now() < deadline, "listener did not reconnect");
        b.wait_for_wakeup(Duration::from_millis(200)).await.unwrap();
    }
    // Wakeups resume.
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.wait_for_wakeup(Duration::from_secs(5)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.save_snapshot(&mut at_task("after", "a")).await.unwrap();
    let hint = waiter.await.unwrap().expect("hint after reconnect");
    assert_eq!(hint.instance_id, "after");
}

#[tokio::test]
async fn an_undecodable_row_is_skipped_not_fatal() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use sayiir_diesel::models::QueuedTask;
    use sayiir_diesel::reports;
    use sayiir_diesel::schema::sayiir::workflows;
    let (db, b) = backend().await;
    b.save_snapshot(&mut at_task("bad", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("good", "a")).await.unwrap();
    let mut conn = raw_conn(&db).await;
    diesel::update(workflows::table.find("bad"))
        .set(workflows::snapshot.eq(b"legacy json".to_vec()))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(found(&b, "w", &[]).await, ["good"]);
    assert_eq!(b.metrics().quarantined, 1);
    // What a user's report sees: the row, and why it is set aside.
    let set_aside: Vec<QueuedTask> = reports::quarantined_tasks()
        .select(QueuedTask::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].instance_id, "bad");
    let why = set_aside[0].quarantined.as_deref().unwrap();
    assert!(why.contains("codec"), "{why}");
    assert_eq!(
        found(&b, "w", &[]).await,
        ["good"],
        "not retried on every poll"
    );
}

#[tokio::test]
async fn dropping_the_last_clone_closes_the_listener_and_the_pool() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = test_db().await;
    let mut admin = raw_conn(&db).await;
    let sessions = async |admin: &mut diesel_async::AsyncPgConnection| {
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .get_result::<N>(admin)
        .await
        .unwrap()
        .n
    };
    let b = Backend::connect(db.url()).await.unwrap();
    let clone = b.clone();
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    assert!(
        sessions(&mut admin).await >= 2,
        "listener + a pooled connection"
    );
    drop(b);
    clone.load_snapshot("wf").await.unwrap();
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sessions(&mut admin).await > 0 {
        assert!(
            Instant::now() < deadline,
            "sessions left open after the last clone dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn only_dispatchable_saves_send_a_wakeup() {
    let (_db, b) = backend().await;
    let quiet = async |b: &Backend, what: &str| {
        let hint = b.wait_for_wakeup(Duration::from_millis(300)).await.unwrap();
        assert!(hint.is_none(), "{what} must not wake workers: {hint:?}");
    };
    b.save_snapshot(&mut sayiir_core::snapshot::WorkflowSnapshot::new(
        "fresh",
        def_hash(),
    ))
    .await
    .unwrap();
    quiet(&b, "NotStarted").await;
    let mut parked = at_task("parked", "a");
    parked.update_position(ExecutionPosition::AtDelay {
        delay_id: tid("d"),
        entered_at: chrono::Utc::now(),
        wake_at: chrono::Utc::now() + chrono::Duration::hours(1),
        next_task_id: Some(tid("b")),
    });
    b.save_snapshot(&mut parked).await.unwrap();
    quiet(&b, "a parked delay").await;
    let mut done = at_task("done", "a");
    done.mark_task_completed(tid("a"), Bytes::from_static(b"x"));
    b.save_snapshot(&mut done).await.unwrap();
    quiet(&b, "a task whose output is recorded").await;
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    quiet(&b, "Completed").await;
    // Dispatchable: a hint, even without a resolvable input.
    let mut ready = sayiir_core::snapshot::WorkflowSnapshot::new("ready", def_hash());
    ready.update_position(ExecutionPosition::AtTask { task_id: tid("a") });
    b.save_snapshot(&mut ready).await.unwrap();
    let hint = b
        .wait_for_wakeup(Duration::from_secs(5))
        .await
        .unwrap()
        .expect("a hint");
    assert_eq!(hint.instance_id, "ready");
}

#[tokio::test]
async fn workers_polling_at_once_get_different_batches() {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .offer_lease(Duration::from_millis(400))
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        b.save_snapshot(&mut at_task(&format!("wf-{i:02}"), "a"))
            .await
            .unwrap();
    }
    let first = found(&b, "w1", &[]).await;
    let second = found(&b, "w2", &[]).await;
    assert_eq!(first.len(), 10);
    assert_eq!(second.len(), 10);
    assert!(
        first.iter().all(|id| !second.contains(id)),
        "{first:?} / {second:?}"
    );
    // A worker polling again is offered its own picks again; a third
    // worker gets nothing while both leases run.
    assert_eq!(found(&b, "w1", &[]).await, first);
    assert!(found(&b, "w3", &[]).await.is_empty());
    // A lease that ends leaves the picks to anyone.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let third = found(&b, "w3", &[]).await;
    assert_eq!(third.len(), 10);
    assert!(
        third
            .iter()
            .all(|id| first.contains(id) || second.contains(id)),
        "{third:?}"
    );
    // An offer steers finders only: another worker may still claim.
    let claim = b
        .claim_task(
            "wf-00",
            &tid("a"),
            "w2",
            Some(chrono::Duration::seconds(30)),
        )
        .await
        .unwrap();
    assert!(claim.is_some());
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
