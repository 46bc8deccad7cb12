//! Statements per store call, counted on the wire side of Diesel (every
//! query the pooled connection sends, `BEGIN`/`COMMIT` included), and for a
//! whole 4-step workflow stepped through a real `PooledWorker`. These are
//! the numbers the module docs and the README promise.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::FutureExt;
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::snapshot::SignalKind;
use sayiir_core::workflow::{WorkflowBuilder, WorkflowStatus};
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore, TaskResultStore};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};

/// Counts the queries of every connection of one backend.
struct CountQueries(Arc<AtomicU64>);

impl Instrumentation for CountQueries {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            self.0.fetch_add(1, SeqCst);
        }
    }
}

/// A one-connection backend whose queries are counted in the returned cell
/// (the listener's rare keep-alive included; it fires every 15 s).
async fn counted_backend(url: &str) -> (Backend, Arc<AtomicU64>) {
    let counter = Arc::new(AtomicU64::new(0));
    let cell = Arc::clone(&counter);
    let b = Backend::builder(url)
        .max_connections(1)
        .connector(Arc::new(move |url| {
            let cell = Arc::clone(&cell);
            async move {
                let mut conn = AsyncPgConnection::establish(url).await?;
                conn.set_instrumentation(CountQueries(cell));
                Ok(conn)
            }
            .boxed()
        }))
        .build()
        .await
        .unwrap();
    (b, counter)
}

/// Queries sent while `op` runs (the pool's one connection is warm).
async fn count<F: std::future::Future>(counter: &AtomicU64, op: F) -> u64 {
    let before = counter.load(SeqCst);
    op.await;
    counter.load(SeqCst) - before
}

#[tokio::test]
async fn each_store_call_costs_what_the_docs_say() {
    let db = test_db().await;
    let (b, counter) = counted_backend(db.url()).await;
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap(); // warms the connection
    // Let the finder's first maintenance pass happen now, not below.
    b.find_available_tasks("w", 1, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();

    s.mark_task_completed(tid("z"), Bytes::from_static(b"z"));
    assert_eq!(
        count(&counter, async { b.save_snapshot(&mut s).await.unwrap() }).await,
        1,
        "save_snapshot"
    );
    assert_eq!(
        count(&counter, async { b.load_snapshot("wf").await.unwrap() }).await,
        1,
        "load_snapshot"
    );
    assert_eq!(
        count(&counter, async {
            b.load_task_result("wf", &tid("z")).await.unwrap()
        })
        .await,
        1,
        "load_task_result"
    );
    assert_eq!(
        count(&counter, async { b.list_snapshots().await.unwrap() }).await,
        1,
        "list_snapshots"
    );
    assert_eq!(
        count(&counter, async {
            b.check_and_cancel("wf", None).await.unwrap()
        })
        .await,
        1,
        "check_and_cancel, nothing pending"
    );
    assert_eq!(
        count(&counter, async { b.check_and_pause("wf").await.unwrap() }).await,
        1,
        "check_and_pause, nothing pending"
    );
    assert_eq!(
        count(&counter, async {
            b.find_available_tasks("w", 4, chrono::Duration::seconds(300), &[])
                .await
                .unwrap()
        })
        .await,
        1,
        "find_available_tasks"
    );
    assert_eq!(
        count(&counter, async {
            b.claim_task("wf", &tid("a"), "w", None).await.unwrap()
        })
        .await,
        1,
        "claim_task"
    );
    assert_eq!(
        count(&counter, async {
            b.extend_task_claim("wf", &tid("a"), "w", chrono::Duration::seconds(5))
                .await
                .unwrap()
        })
        .await,
        1,
        "extend_task_claim"
    );
    assert_eq!(
        count(&counter, async {
            b.release_task_claim("wf", &tid("a"), "w").await.unwrap()
        })
        .await,
        1,
        "release_task_claim"
    );
    assert_eq!(
        count(&counter, async {
            b.save_task_result("wf", &tid("b"), Bytes::from_static(b"b"))
                .await
                .unwrap()
        })
        .await,
        4,
        "save_task_result: BEGIN, lock, write, COMMIT"
    );
    assert_eq!(
        count(&counter, async {
            b.store_signal("wf", SignalKind::Pause, request("r", "u"))
                .await
                .unwrap()
        })
        .await,
        4,
        "store_signal: BEGIN, lock, upsert, COMMIT"
    );
    assert_eq!(
        count(&counter, async {
            assert!(b.check_and_pause("wf").await.unwrap())
        })
        .await,
        7,
        "check_and_pause applying: probe, BEGIN, lock, re-read, write, delete, COMMIT"
    );
    assert_eq!(
        count(&counter, async { b.unpause("wf").await.unwrap() }).await,
        5,
        "unpause"
    );
    assert_eq!(
        count(&counter, async {
            b.send_event("wf", "go", Bytes::from_static(b"e"))
                .await
                .unwrap()
        })
        .await,
        4,
        "send_event, buffered"
    );
    assert_eq!(
        count(&counter, async {
            b.consume_event("wf", "go").await.unwrap()
        })
        .await,
        1,
        "consume_event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_step_workflow_costs_a_fixed_number_of_statements() {
    let db = test_db().await;
    let (b, counter) = counted_backend(db.url()).await;
    let ctx = WorkflowContext::new("rt4", Arc::new(JsonCodec), Arc::new(()));
    let wf = WorkflowBuilder::new(ctx)
        .then("s1", |x: u64| async move { Ok(x + 1) })
        .then("s2", |x: u64| async move { Ok(x + 1) })
        .then("s3", |x: u64| async move { Ok(x + 1) })
        .then("s4", |x: u64| async move { Ok(x + 1) })
        .build()
        .unwrap();
    let client = WorkflowClient::new(b.clone());
    let worker = PooledWorker::new("w", b.clone(), TaskRegistry::new())
        .with_claim_ttl(Some(Duration::from_secs(60)));
    b.save_snapshot(&mut at_task("warm", "x")).await.unwrap();
    b.find_available_tasks("w", 1, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();

    let submit = count(&counter, async {
        client.submit(&wf, "wf", 1u64).await.unwrap()
    })
    .await;
    let mut per_step = Vec::new();
    loop {
        let mut n = 0;
        let before = counter.load(SeqCst);
        let found = b
            .find_available_tasks("w", 10, chrono::Duration::seconds(300), &[])
            .await
            .unwrap();
        let Some(task) = found.into_iter().find(|t| &*t.instance_id == "wf") else {
            break;
        };
        let status = worker.execute_task(&wf, task).await.unwrap();
        n += counter.load(SeqCst) - before;
        per_step.push(n);
        if matches!(status, WorkflowStatus::Completed) {
            break;
        }
    }
    eprintln!("round trips: submit {submit}, steps {per_step:?}");
    assert_eq!(submit, 2, "submit: existence check + save");
    // find, claim, cancel/pause probes, commit save, release, probes again.
    assert_eq!(
        per_step,
        [8, 8, 8, 9],
        "the last step adds the Completed save"
    );
    assert!(matches!(
        client.status("wf").await.unwrap(),
        WorkflowStatus::Completed
    ));
}
