//! Shared test support: a throwaway server (or `DATABASE_URL`), a migrated
//! template, and a fresh database per test.
#![allow(dead_code)]

pub mod evidence;
pub mod finder;
pub mod plan;
pub mod retention;

use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_core::{DefinitionHash, TaskId};
use sayiir_diesel::DieselBackend;
use sayiir_diesel_testkit::TestDatabase;
use sayiir_runtime::serialization::JsonCodec;

pub type Backend = DieselBackend<JsonCodec>;

/// A fresh, migrated database of its own.
pub async fn test_db() -> TestDatabase {
    sayiir_diesel_testkit::sayiir_database()
        .await
        .expect("a migrated test database")
}

/// A fresh, empty (unmigrated) database of its own.
pub async fn empty_db() -> TestDatabase {
    sayiir_diesel_testkit::empty_database()
        .await
        .expect("an empty test database")
}

/// A backend on a fresh database (keep the database handle alive).
pub async fn backend() -> (TestDatabase, Backend) {
    let db = test_db().await;
    let backend = Backend::connect(db.url()).await.expect("connect");
    (db, backend)
}

/// A backend with offers off (`offer_lease` zero), for tests where several
/// workers ask for the same rows.
pub async fn backend_without_offers() -> (TestDatabase, Backend) {
    let db = test_db().await;
    let backend = Backend::builder(db.url())
        .offer_lease(std::time::Duration::ZERO)
        .build()
        .await
        .expect("connect");
    (db, backend)
}

/// `x` encoded as a task's JSON output.
pub fn json(x: u64) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(&x).unwrap())
}

/// The final output of workflow `id` (the test fails when it has none).
pub async fn final_output(b: &Backend, id: &str) -> bytes::Bytes {
    sayiir_persistence::SnapshotStore::load_snapshot(b, id)
        .await
        .unwrap()
        .final_output_bytes()
        .expect("a final output")
}

/// What `load_task_result` returns for task `task` of workflow `id` (the
/// test fails on an error).
pub async fn output_of(b: &Backend, id: &str, task: &str) -> Option<bytes::Bytes> {
    sayiir_persistence::TaskResultStore::load_task_result(b, id, &tid(task))
        .await
        .unwrap()
}

pub fn def_hash() -> DefinitionHash {
    DefinitionHash::sha256("test-definition")
}

pub fn tid(name: &str) -> TaskId {
    TaskId::from(name)
}

/// A snapshot with input `b"in"` at `AtTask(task)`.
pub fn at_task(instance: &str, task: &str) -> WorkflowSnapshot {
    let mut s = WorkflowSnapshot::with_initial_input(
        instance,
        def_hash(),
        bytes::Bytes::from_static(b"in"),
    );
    s.update_position(ExecutionPosition::AtTask { task_id: tid(task) });
    s
}

/// A direct connection for poking at tables.
pub async fn raw_conn(db: &TestDatabase) -> diesel_async::AsyncPgConnection {
    use diesel_async::AsyncConnection;
    diesel_async::AsyncPgConnection::establish(db.url())
        .await
        .unwrap()
}

/// A snapshot parked at `AtSignal { name }` (signal node `sig`), then `next`.
pub fn at_signal(instance: &str, sig: &str, name: &str, next: Option<&str>) -> WorkflowSnapshot {
    let mut s = at_task(instance, "before");
    s.mark_task_completed(tid("before"), bytes::Bytes::from_static(b"before-out"));
    s.update_position(ExecutionPosition::AtSignal {
        signal_id: tid(sig),
        signal_name: name.to_owned(),
        wake_at: None,
        next_task_id: next.map(tid),
    });
    s
}

pub fn request(reason: &str, by: &str) -> sayiir_core::snapshot::SignalRequest {
    sayiir_core::snapshot::SignalRequest::new(Some(reason.to_owned()), Some(by.to_owned()))
}

/// Polls the client until `done(status)`, failing the test after `limit`.
/// Transient client errors (a connection killed by a fault test) are retried.
pub async fn wait_status(
    client: &sayiir_runtime::WorkflowClient<Backend>,
    id: &str,
    limit: std::time::Duration,
    done: impl Fn(&sayiir_core::workflow::WorkflowStatus) -> bool,
) -> sayiir_core::workflow::WorkflowStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let status = client.status(id).await;
        if let Ok(s) = &status
            && done(s)
        {
            return status.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: still {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

pub fn completed(s: &sayiir_core::workflow::WorkflowStatus) -> bool {
    matches!(s, sayiir_core::workflow::WorkflowStatus::Completed)
}

/// `n` PooledWorkers (30 s claims, 100 ms polls) running `wf`.
pub fn spawn_workers(
    b: &Backend,
    wf: &std::sync::Arc<sayiir_core::workflow::Workflow<JsonCodec, u64>>,
    n: usize,
    batch: usize,
) -> Vec<sayiir_runtime::WorkerHandle<Backend>> {
    let registry = vec![(*wf.definition_hash(), std::sync::Arc::clone(wf))];
    (0..n)
        .map(|i| {
            sayiir_runtime::PooledWorker::new(
                format!("worker-{i}"),
                b.clone(),
                sayiir_core::registry::TaskRegistry::new(),
            )
            .with_claim_ttl(Some(std::time::Duration::from_secs(30)))
            .with_batch_size(std::num::NonZeroUsize::new(batch).unwrap())
            .spawn(std::time::Duration::from_millis(100), registry.clone())
        })
        .collect()
}

/// Runs `n` two-step workflows (`a`: x + 1, `b`: · 2) named `{prefix}-{i}`
/// on two PooledWorkers of `b`, waits until every one is Completed with
/// output (i + 1) · 2, and stops the workers.
pub async fn run_two_step(b: &Backend, prefix: &str, n: u64) {
    use std::sync::Arc;
    let ctx =
        sayiir_core::context::WorkflowContext::new("two-step", Arc::new(JsonCodec), Arc::new(()));
    let wf = Arc::new(
        sayiir_core::workflow::WorkflowBuilder::new(ctx)
            .then("a", |x: u64| async move { Ok(x + 1) })
            .then("b", |x: u64| async move { Ok(x * 2) })
            .build()
            .unwrap(),
    );
    let client = sayiir_runtime::WorkflowClient::new(b.clone());
    let ws = spawn_workers(b, &wf, 2, 4);
    for i in 0..n {
        client
            .submit(&*wf, &format!("{prefix}-{i}"), i)
            .await
            .unwrap();
    }
    for i in 0..n {
        let id = format!("{prefix}-{i}");
        wait_status(&client, &id, std::time::Duration::from_secs(30), completed).await;
        assert_eq!(final_output(b, &id).await, json((i + 1) * 2), "{id}");
    }
    for w in ws {
        w.shutdown();
    }
}

/// Asks every worker to stop, then waits for each loop to end; the test
/// fails if one ended on an error.
pub async fn shutdown_and_join(workers: &[sayiir_runtime::WorkerHandle<Backend>]) {
    for w in workers {
        w.shutdown();
    }
    for w in workers {
        w.join().await.expect("no worker loop ended on an error");
    }
}
