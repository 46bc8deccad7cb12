//! A task that fails with no retry left is released without a save: it is
//! backed off (doubling from 1 s) and marked with the worker it failed on,
//! instead of being re-run as fast as the worker can loop.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::context::WorkflowContext;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::schema::sayiir::tasks;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

fn always_fails() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("always-fails", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("doomed", |_x: u64| async move {
                ATTEMPTS.fetch_add(1, Ordering::SeqCst);
                Err::<u64, _>("always".into())
            })
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_task_failing_with_no_retry_left_backs_off() {
    let (db, b) = backend().await;
    let wf = always_fails();
    let client = WorkflowClient::new(b.clone());
    client.submit(&*wf, "doomed", 1).await.unwrap();
    let workers = spawn_workers(&b, &wf, 1, 4);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let attempts = AtomicU32::load(&ATTEMPTS, Ordering::SeqCst);
    for w in &workers {
        w.shutdown();
    }
    // Back-offs of 1, 2 and 4 s: attempts at about 0, 1 and 3 s. Polling
    // every 100 ms with no back-off would run it about 50 times.
    assert!(
        (2..=4).contains(&attempts),
        "{attempts} attempts in {:?}",
        started.elapsed()
    );
    let mut conn = raw_conn(&db).await;
    let (stalls, failed_worker): (i32, Option<String>) = tasks::table
        .find("doomed")
        .select((tasks::stalls, tasks::failed_worker))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(i64::from(stalls), i64::from(attempts));
    assert_eq!(failed_worker.as_deref(), Some("worker-0"));
}

#[tokio::test]
async fn a_release_after_progress_wakes_at_once_and_resets_the_back_off() {
    let (db, b) = backend().await;
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap();
    let ttl = Some(chrono::Duration::seconds(30));
    // Released with nothing saved: backed off, so not offered.
    b.claim_task("wf", &tid("a"), "w1", ttl)
        .await
        .unwrap()
        .unwrap();
    b.release_task_claim("wf", &tid("a"), "w1").await.unwrap();
    let found = b
        .find_available_tasks("w2", 10, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();
    assert!(found.is_empty());
    // Any write (here the same state saved again) ends the back-off.
    b.save_snapshot(&mut s).await.unwrap();
    let found = b
        .find_available_tasks("w2", 10, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let mut conn = raw_conn(&db).await;
    let stalls: i32 = tasks::table
        .find("wf")
        .select(tasks::stalls)
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(stalls, 0);
}

/// `delete_snapshot` (whose cascade reaches the queue row before the claim)
/// and `release_task_claim` (the claim, then the queue row) both take the
/// workflow row first, so they never deadlock. A third session holds the
/// claim row so that the release is queued on it before the delete starts:
/// without one lock order that interleaving deadlocks every time.
#[tokio::test]
async fn delete_and_release_at_once_never_deadlock() {
    let (db, b) = backend().await;
    let ttl = Some(chrono::Duration::seconds(30));
    for i in 0..3 {
        let id = format!("wf-{i}");
        b.save_snapshot(&mut at_task(&id, "a")).await.unwrap();
        b.claim_task(&id, &tid("a"), "w", ttl)
            .await
            .unwrap()
            .unwrap();
        let mut holder = raw_conn(&db).await;
        holder.batch_execute("BEGIN").await.unwrap();
        diesel::sql_query("SELECT 1 FROM sayiir.claims WHERE instance_id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::Text, _>(&id)
            .execute(&mut holder)
            .await
            .unwrap();
        let release = tokio::spawn({
            let (b, id) = (b.clone(), id.clone());
            async move { b.release_task_claim(&id, &tid("a"), "w").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let delete = tokio::spawn({
            let (b, id) = (b.clone(), id.clone());
            async move { b.delete_snapshot(&id).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        holder.batch_execute("COMMIT").await.unwrap();
        let (released, deleted) = (release.await.unwrap(), delete.await.unwrap());
        deleted.unwrap();
        if let Err(e) = released {
            // Deleted first: the claim went with the workflow.
            assert!(
                matches!(e, sayiir_persistence::BackendError::NotFound(_)),
                "{e}"
            );
        }
    }
}
