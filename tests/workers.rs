//! The real `sayiir-runtime` 1.0 on this backend: PooledWorkers, the
//! client and the checkpointing runner, with every step run exactly once.

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::*;
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};

const WORKFLOWS: usize = 300;
const ROUNDS: usize = 3;
const STEPS: usize = 4;

/// Executions per (round, workflow, step).
static RUNS: [AtomicU32; ROUNDS * WORKFLOWS * STEPS] =
    [const { AtomicU32::new(0) }; ROUNDS * WORKFLOWS * STEPS];

fn count(x: u64, step: usize) {
    let i = usize::try_from(x).unwrap();
    RUNS[i * STEPS + step].fetch_add(1, SeqCst);
}

/// Four steps passing the (round, workflow) index through; each counts itself.
fn linear() -> Workflow<JsonCodec, u64> {
    let ctx = WorkflowContext::new("linear4", Arc::new(JsonCodec), Arc::new(()));
    WorkflowBuilder::new(ctx)
        .then("s1", |x: u64| async move {
            count(x, 0);
            Ok(x)
        })
        .then("s2", |x: u64| async move {
            count(x, 1);
            Ok(x)
        })
        .then("s3", |x: u64| async move {
            count(x, 2);
            Ok(x)
        })
        .then("s4", |x: u64| async move {
            count(x, 3);
            Ok(x)
        })
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_linear_workflows_on_four_workers_run_every_step_once() {
    let (db, b) = backend().await;
    let wf = Arc::new(linear());
    let client = WorkflowClient::new(b.clone());
    let workers = spawn_workers(&b, &wf, 4, 8);
    for round in 0..ROUNDS {
        let mut ids = Vec::new();
        for i in 0..WORKFLOWS {
            let x = u64::try_from(round * WORKFLOWS + i).unwrap();
            let id = format!("r{round}-wf{i}");
            client.submit(&*wf, &id, x).await.unwrap();
            ids.push(id);
        }
        for id in &ids {
            wait_status(&client, id, Duration::from_secs(120), completed).await;
        }
        let mut twice = Vec::new();
        for i in 0..WORKFLOWS {
            for step in 0..STEPS {
                let n = RUNS[(round * WORKFLOWS + i) * STEPS + step].load(SeqCst);
                if n != 1 {
                    twice.push(format!("wf{i}/s{}: {n}", step + 1));
                }
            }
        }
        assert!(
            twice.is_empty(),
            "round {round}: steps not run exactly once: {twice:?}"
        );
        // Outputs of every step stay readable after completion.
        let out = client.get_task_result(&ids[0], "s3").await.unwrap();
        assert_eq!(
            out.as_deref(),
            Some(format!("{}", round * WORKFLOWS).as_bytes())
        );
    }
    shutdown_and_join(&workers).await;
    assert_eq!(b.metrics().recovered, 0, "no recovery in a healthy run");
    // Finished workflows leave nothing in the dispatch queue: the finder's
    // cost does not grow with them.
    let mut conn = raw_conn(&db).await;
    let queued: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        sayiir_diesel::schema::sayiir::tasks::table
            .count()
            .get_result(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(queued, 0);
}

static HICCUP_RUNS: AtomicU32 = AtomicU32::new(0);

/// `h1` (x + 1), then `h2` (x + 1, 5 ms, counted in `HICCUP_RUNS`).
fn hiccup_workflow() -> Arc<sayiir_core::workflow::Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("hiccup", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("h1", |x: u64| async move { Ok(x + 1) })
            .then("h2", |x: u64| async move {
                HICCUP_RUNS.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(x + 1)
            })
            .build()
            .unwrap(),
    )
}

/// Two workers with short (3 s) claims, so a killed one's tasks come back
/// quickly.
fn spawn_short_claim_workers(
    b: &Backend,
    wf: &Arc<sayiir_core::workflow::Workflow<JsonCodec, u64>>,
) -> Vec<sayiir_runtime::WorkerHandle<Backend>> {
    let registry = vec![(*wf.definition_hash(), Arc::clone(wf))];
    (0..2)
        .map(|i| {
            PooledWorker::new(format!("hw{i}"), b.clone(), TaskRegistry::new())
                .with_claim_ttl(Some(Duration::from_secs(3)))
                .with_batch_size(NonZeroUsize::new(4).unwrap())
                .spawn(Duration::from_millis(100), registry.clone())
        })
        .collect()
}

/// Kill every other session on the database, a bounded number of times.
async fn kill_every_other_session(db: &sayiir_diesel_testkit::TestDatabase, times: usize) {
    use diesel_async::RunQueryDsl;
    let mut admin = raw_conn(db).await;
    for _ in 0..times {
        tokio::time::sleep(Duration::from_millis(150)).await;
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_survive_connections_killed_under_them() {
    let db = test_db().await;
    // A save that dies with its connection can leave a workflow in the
    // crash window; recover it quickly here.
    let b = Backend::builder(db.url())
        .recovery_grace(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let wf = hiccup_workflow();
    let workers = spawn_short_claim_workers(&b, &wf);
    let client = WorkflowClient::new(b.clone());
    for i in 0..60u64 {
        client.submit(&*wf, &format!("h{i}"), i).await.unwrap();
    }
    kill_every_other_session(&db, 5).await;
    let started = Instant::now();
    for i in 0..60u64 {
        // The client's own calls may hit a dead pooled connection once.
        wait_status(
            &client,
            &format!("h{i}"),
            Duration::from_secs(90),
            completed,
        )
        .await;
    }
    eprintln!(
        "hiccup: all done after {:?}; {:?}",
        started.elapsed(),
        b.metrics()
    );
    assert!(b.metrics().listener_reconnects >= 1, "{:?}", b.metrics());
    shutdown_and_join(&workers).await;
}
