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

/// Asserts that `op` sends exactly `expected` statements.
async fn assert_costs<F: std::future::Future>(
    counter: &AtomicU64,
    expected: u64,
    what: &str,
    op: F,
) {
    assert_eq!(count(counter, op).await, expected, "{what}");
}

/// Saves `wf` at task `a` and lets the finder's first maintenance pass
/// happen now, so neither shows up in a count below.
async fn warm_up(b: &Backend) -> sayiir_core::snapshot::WorkflowSnapshot {
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap(); // warms the connection
    b.find_available_tasks("w", 1, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();
    s
}

/// Snapshot reads and writes, and the probes with nothing pending: one
/// statement each.
async fn snapshot_calls_cost_one_statement(
    b: &Backend,
    counter: &AtomicU64,
    s: &mut sayiir_core::snapshot::WorkflowSnapshot,
) {
    s.mark_task_completed(tid("z"), Bytes::from_static(b"z"));
    assert_costs(counter, 1, "save_snapshot", async {
        b.save_snapshot(s).await.unwrap()
    })
    .await;
    assert_costs(counter, 1, "load_snapshot", async {
        b.load_snapshot("wf").await.unwrap()
    })
    .await;
    assert_costs(counter, 1, "load_task_result", async {
        b.load_task_result("wf", &tid("z")).await.unwrap()
    })
    .await;
    assert_costs(counter, 1, "list_snapshots", async {
        b.list_snapshots().await.unwrap()
    })
    .await;
    assert_costs(counter, 1, "check_and_cancel, nothing pending", async {
        b.check_and_cancel("wf", None).await.unwrap()
    })
    .await;
    assert_costs(counter, 1, "check_and_pause, nothing pending", async {
        b.check_and_pause("wf").await.unwrap()
    })
    .await;
}

/// Finding and claiming: one statement each.
async fn claim_calls_cost_one_statement(b: &Backend, counter: &AtomicU64) {
    assert_costs(counter, 1, "find_available_tasks", async {
        b.find_available_tasks("w", 4, chrono::Duration::seconds(300), &[])
            .await
            .unwrap()
    })
    .await;
    assert_costs(counter, 1, "claim_task", async {
        b.claim_task("wf", &tid("a"), "w", None).await.unwrap()
    })
    .await;
    assert_costs(counter, 1, "extend_task_claim", async {
        b.extend_task_claim("wf", &tid("a"), "w", chrono::Duration::seconds(5))
            .await
            .unwrap()
    })
    .await;
    assert_costs(counter, 1, "release_task_claim", async {
        b.release_task_claim("wf", &tid("a"), "w").await.unwrap()
    })
    .await;
}

/// Writes that change a workflow take its lock in a transaction.
async fn locked_writes_cost_their_transaction(b: &Backend, counter: &AtomicU64) {
    assert_costs(
        counter,
        4,
        "save_task_result: BEGIN, lock, write, COMMIT",
        async {
            b.save_task_result("wf", &tid("b"), Bytes::from_static(b"b"))
                .await
                .unwrap()
        },
    )
    .await;
    assert_costs(
        counter,
        4,
        "store_signal: BEGIN, lock, upsert, COMMIT",
        async {
            b.store_signal("wf", SignalKind::Pause, request("r", "u"))
                .await
                .unwrap()
        },
    )
    .await;
    assert_costs(
        counter,
        7,
        "check_and_pause applying: probe, BEGIN, lock, re-read, write, delete, COMMIT",
        async { assert!(b.check_and_pause("wf").await.unwrap()) },
    )
    .await;
    assert_costs(counter, 5, "unpause", async {
        b.unpause("wf").await.unwrap()
    })
    .await;
    assert_costs(counter, 4, "send_event, buffered", async {
        b.send_event("wf", "go", Bytes::from_static(b"e"))
            .await
            .unwrap()
    })
    .await;
    assert_costs(counter, 1, "consume_event", async {
        b.consume_event("wf", "go").await.unwrap()
    })
    .await;
}

#[tokio::test]
async fn each_store_call_costs_what_the_docs_say() {
    let db = test_db().await;
    let (b, counter) = counted_backend(db.url()).await;
    let mut s = warm_up(&b).await;
    snapshot_calls_cost_one_statement(&b, &counter, &mut s).await;
    claim_calls_cost_one_statement(&b, &counter).await;
    locked_writes_cost_their_transaction(&b, &counter).await;
}

/// Finds and executes `wf`'s tasks one at a time until it completes (or no
/// task of it is found), returning the statements each step sent.
async fn statements_per_step(
    b: &Backend,
    counter: &AtomicU64,
    worker: &PooledWorker<Backend>,
    wf: &sayiir_core::workflow::Workflow<JsonCodec, u64>,
) -> Vec<u64> {
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
        let status = worker.execute_task(wf, task).await.unwrap();
        n += counter.load(SeqCst) - before;
        per_step.push(n);
        if matches!(status, WorkflowStatus::Completed) {
            break;
        }
    }
    per_step
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
    let per_step = statements_per_step(&b, &counter, &worker, &wf).await;
    eprintln!("round trips: submit {submit}, steps {per_step:?}");
    assert_eq!(submit, 2, "submit: existence check + save");
    // find, claim, cancel/pause probes, commit save (which ends the claim:
    // the release sends nothing), probes again.
    assert_eq!(
        per_step,
        [7, 7, 7, 8],
        "the last step adds the Completed save"
    );
    assert!(matches!(
        client.status("wf").await.unwrap(),
        WorkflowStatus::Completed
    ));
}
