//! The finder (`find_available_tasks`): every dispatch rule before the
//! limit, ordering, back-off, due parks, undecodable rows, and workers
//! polling at once (SPEC 4, 8 D/E/G).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::finder::*;
use common::*;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind};
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore, TaskWakeupHint};

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
    // worker, with nothing left that is offered to no one, is shown the
    // others' picks, oldest offer first: an offer steers, it never hides.
    assert_eq!(found(&b, "w1", &[]).await, first);
    assert_eq!(found(&b, "w3", &[]).await, first);
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
async fn a_task_offered_to_one_worker_is_still_shown_to_another() {
    let (_db, b) = backend().await;
    let mut both = at_task("both", "a");
    both.task_tags = vec!["gpu".into()];
    b.save_snapshot(&mut both).await.unwrap();
    let mut cpu = at_task("cpu-only", "a");
    cpu.task_tags = vec!["cpu".into()];
    b.save_snapshot(&mut cpu).await.unwrap();
    // Worker A (gpu) polls first and is offered the one task it matches.
    assert_eq!(found(&b, "a", &["gpu".into()]).await, ["both"]);
    // Worker B (gpu and cpu) polls right after: it sees both tasks it could
    // claim, the one offered to no one first.
    assert_eq!(
        found(&b, "b", &["gpu".into(), "cpu".into()]).await,
        ["cpu-only", "both"]
    );
    // A never claims; B does, and its claim is what decides.
    assert!(
        b.claim_task("both", &tid("a"), "b", ttl(30))
            .await
            .unwrap()
            .is_some()
    );
    assert!(found(&b, "a", &["gpu".into()]).await.is_empty());
}

#[tokio::test]
async fn open_tasks_fill_a_batch_before_tasks_offered_to_others() {
    let (_db, b) = backend().await;
    for i in 0..4 {
        b.save_snapshot(&mut at_task(&format!("wf-{i}"), "a"))
            .await
            .unwrap();
    }
    let first: Vec<String> = b
        .find_available_tasks("w1", 2, aging(), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.instance_id.to_string())
        .collect();
    assert_eq!(first, ["wf-0", "wf-1"]);
    // w2 asks for 3: the two open tasks, then one of w1's picks.
    let second: Vec<String> = b
        .find_available_tasks("w2", 3, aging(), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.instance_id.to_string())
        .collect();
    assert_eq!(second, ["wf-2", "wf-3", "wf-0"]);
    // Being shown w1's pick did not take it from w1: w1 still gets its own
    // picks first.
    assert_eq!(found(&b, "w1", &[]).await[..2], ["wf-0", "wf-1"]);
}
