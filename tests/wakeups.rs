//! Wakeups and the hinted lookup: `wait_for_wakeup`, `find_hinted_task`,
//! the listener's reconnects and shutdown, and which saves wake a worker.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_persistence::{SnapshotStore, TaskClaimStore, TaskWakeupHint};

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

/// One 4-step workflow at a time on an idle fleet whose workers poll only
/// every 10 s: each runs to Completed in a fraction of one poll, so every
/// step was started by a wakeup (the submit's, then each save's as it ends
/// its claim), not by a poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_workflow_on_an_idle_fleet_moves_on_wakeups_not_polls() {
    use std::sync::Arc;

    use sayiir_core::context::WorkflowContext;
    use sayiir_core::registry::TaskRegistry;
    use sayiir_core::workflow::WorkflowBuilder;
    use sayiir_runtime::serialization::JsonCodec;
    use sayiir_runtime::{PooledWorker, WorkflowClient};

    const POLL: Duration = Duration::from_secs(10);
    let (_db, b) = backend().await;
    let ctx = WorkflowContext::new("idle", Arc::new(JsonCodec), Arc::new(()));
    let wf = Arc::new(
        WorkflowBuilder::new(ctx)
            .then("s1", |x: u64| async move { Ok(x + 1) })
            .then("s2", |x: u64| async move { Ok(x + 1) })
            .then("s3", |x: u64| async move { Ok(x + 1) })
            .then("s4", |x: u64| async move { Ok(x + 1) })
            .build()
            .unwrap(),
    );
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers: Vec<_> = (0..3)
        .map(|i| {
            PooledWorker::new(format!("idle-{i}"), b.clone(), TaskRegistry::new())
                .with_claim_ttl(Some(Duration::from_secs(30)))
                .spawn(POLL, registry.clone())
        })
        .collect();
    let client = WorkflowClient::new(b.clone());
    for i in 0..3u64 {
        // Every worker has polled and is waiting for a wakeup.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = format!("lone-{i}");
        let started = Instant::now();
        client.submit(&*wf, &id, i).await.unwrap();
        wait_status(&client, &id, POLL, completed).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{id}: {took:?}, so a step waited for a poll"
        );
        assert_eq!(final_output(&b, &id).await, json(i + 4));
    }
    shutdown_and_join(&workers).await;
}
