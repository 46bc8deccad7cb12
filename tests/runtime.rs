//! Fork/join, delays, retries with back-off, signals, cancel and pause on
//! the real runtime: several PooledWorkers, the client, and the
//! CheckpointingRunner.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sayiir_core::context::WorkflowContext;
use sayiir_core::error::BoxError;
use sayiir_core::task::BranchOutputs;
use sayiir_core::workflow::{Workflow, WorkflowBuilder, WorkflowStatus};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{CheckpointingRunner, WorkerHandle, WorkflowClient};

/// Attempts of `flaky` per input.
static FLAKY: Mutex<Option<HashMap<u64, u32>>> = Mutex::new(None);

/// Fails twice per input, then succeeds.
#[sayiir_runtime::task(id = "flaky", retries = 3, backoff = "50ms", backoff_multiplier = 2.0)]
async fn flaky(x: u64) -> Result<u64, BoxError> {
    let attempt = {
        let mut guard = FLAKY.lock().unwrap();
        let n = guard.get_or_insert_with(HashMap::new).entry(x).or_insert(0);
        *n += 1;
        *n
    };
    if attempt <= 2 {
        return Err(format!("transient failure {attempt}").into());
    }
    Ok(x)
}

fn attempts(x: u64) -> u32 {
    FLAKY
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&x).copied())
        .unwrap_or(0)
}

/// prep → fork(fa, fb) → join → delay → flaky (retried) → signal → after.
fn full() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("full", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("prep", |x: u64| async move { Ok(x) })
            .fork()
            .branch("fa", |x: u64| async move { Ok(x * 2) })
            .branch("fb", |x: u64| async move { Ok(x + 100) })
            .join("join", |o: BranchOutputs<JsonCodec>| async move {
                let a: u64 = o.get_by_id("fa")?;
                let b: u64 = o.get_by_id("fb")?;
                Ok(a + b)
            })
            .delay("nap", Duration::from_millis(300))
            .then_task::<FlakyTask>()
            .wait_for_signal("approval", "approval", None)
            .then("after", |x: u64| async move { Ok(x + 1) })
            .build()
            .unwrap(),
    )
}

/// s1 → a long delay → s2, for cancel and pause while parked.
fn parked(delay: Duration) -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("parked", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("p1", |x: u64| async move { Ok(x + 1) })
            .delay("wait", delay)
            .then("p2", |x: u64| async move { Ok(x * 3) })
            .build()
            .unwrap(),
    )
}

async fn stop(ws: Vec<WorkerHandle<Backend>>) {
    shutdown_and_join(&ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fork_join_delay_retry_and_signal_on_three_workers() {
    let (_db, b) = backend().await;
    let wf = full();
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 3, 4);
    let inputs: Vec<u64> = (1000..1010).collect();
    for &x in &inputs {
        client.submit(&*wf, &format!("full-{x}"), x).await.unwrap();
    }
    for &x in &inputs {
        let id = format!("full-{x}");
        wait_status(&client, &id, Duration::from_secs(60), |s| {
            matches!(s, WorkflowStatus::AwaitingSignal { .. })
        })
        .await;
        assert_eq!(
            attempts(client_join(&client, &id).await),
            3,
            "{id}: two failures, one success"
        );
        client
            .send_event(&id, "approval", json(x + 7))
            .await
            .unwrap();
    }
    for &x in &inputs {
        let id = format!("full-{x}");
        wait_status(&client, &id, Duration::from_secs(60), |s| {
            matches!(s, WorkflowStatus::Completed)
        })
        .await;
        let out = final_output(&b, &id).await;
        assert_eq!(
            out,
            json(x + 8),
            "{id}: the signal payload feeds the next step"
        );
        assert_eq!(
            client.get_task_result(&id, "prep").await.unwrap(),
            Some(json(x))
        );
    }
    stop(ws).await;
}

/// The join output (the input of `flaky`).
async fn client_join(client: &WorkflowClient<Backend>, id: &str) -> u64 {
    let out = client.get_task_result(id, "join").await.unwrap().unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpointing_runner_runs_parks_and_resumes() {
    let (_db, b) = backend().await;
    let wf = full();
    let runner = CheckpointingRunner::new(b.clone());
    let client = WorkflowClient::new(b.clone());
    let x = 2000;
    let mut status = runner.run(&*wf, "ckpt", x).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match status {
            WorkflowStatus::Completed => break,
            WorkflowStatus::Waiting { .. } => tokio::time::sleep(Duration::from_millis(350)).await,
            WorkflowStatus::AwaitingSignal { .. } => {
                client
                    .send_event("ckpt", "approval", json(5))
                    .await
                    .unwrap();
            }
            ref other => panic!("unexpected {other:?}"),
        }
        assert!(Instant::now() < deadline);
        status = runner.resume(&*wf, "ckpt").await.unwrap();
    }
    // The runner runs fork branches concurrently, each on the fork's input.
    assert_eq!(client_join(&client, "ckpt").await, 2 * x + (x + 100));
    let out = final_output(&b, "ckpt").await;
    assert_eq!(out, json(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_parked_workflow() {
    let (_db, b) = backend().await;
    let wf = parked(Duration::from_secs(600));
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 2, 4);
    client.submit(&*wf, "parked", 1).await.unwrap();
    wait_status(&client, "parked", Duration::from_secs(30), |s| {
        matches!(s, WorkflowStatus::Waiting { .. })
    })
    .await;
    // Nobody holds a parked workflow: the finder applies the request.
    client
        .cancel(
            "parked",
            Some("no longer needed".into()),
            Some("ops".into()),
        )
        .await
        .unwrap();
    let s = wait_status(&client, "parked", Duration::from_secs(30), |s| {
        matches!(s, WorkflowStatus::Cancelled { .. })
    })
    .await;
    assert!(
        matches!(s, WorkflowStatus::Cancelled { reason: Some(r), .. } if r == "no longer needed")
    );
    assert_eq!(
        client.get_task_result("parked", "p1").await.unwrap(),
        Some(json(2)),
        "outputs kept"
    );
    stop(ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_a_workflow_until_unpaused() {
    let (_db, b) = backend().await;
    let wf = parked(Duration::from_millis(500));
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 2, 4);
    client.submit(&*wf, "held", 4).await.unwrap();
    wait_status(&client, "held", Duration::from_secs(30), |s| {
        matches!(s, WorkflowStatus::Waiting { .. })
    })
    .await;
    client
        .pause("held", Some("maintenance".into()), None)
        .await
        .unwrap();
    wait_status(&client, "held", Duration::from_secs(30), |s| {
        matches!(s, WorkflowStatus::Paused { .. })
    })
    .await;
    // The delay expires while paused: nothing runs.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(
        client.status("held").await.unwrap(),
        WorkflowStatus::Paused { .. }
    ));
    client.unpause("held").await.unwrap();
    wait_status(&client, "held", Duration::from_secs(30), |s| {
        matches!(s, WorkflowStatus::Completed)
    })
    .await;
    let out = final_output(&b, "held").await;
    assert_eq!(out, json(15));
    stop(ws).await;
}

/// slow1 → slow2, where slow1 tells `started` that its body runs, then
/// waits for `go`: a request made in between arrives while the task runs.
fn slow(
    started: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
) -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("slow", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("slow1", move |x: u64| {
                let (started, go) = (Arc::clone(&started), Arc::clone(&go));
                async move {
                    started.notify_one();
                    go.notified().await;
                    Ok(x + 1)
                }
            })
            .then("slow2", |x: u64| async move { Ok(x + 1) })
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_running_workflow_at_the_next_task_boundary() {
    let (_db, b) = backend().await;
    let (started, go) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let wf = slow(Arc::clone(&started), Arc::clone(&go));
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 2, 1);
    client.submit(&*wf, "running", 1).await.unwrap();
    // Wait until slow1's body runs: past the worker's last check before the
    // task (a claim row alone is not enough: the worker claims, then checks
    // for a pending cancel, and a cancel stored in between is applied
    // before the task, as the runtime means it to be).
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .expect("slow1 never started");
    client
        .cancel("running", Some("stop".into()), None)
        .await
        .unwrap();
    go.notify_one();
    let s = wait_status(&client, "running", Duration::from_secs(30), |s| {
        matches!(s, WorkflowStatus::Cancelled { .. })
    })
    .await;
    assert!(matches!(s, WorkflowStatus::Cancelled { reason: Some(r), .. } if r == "stop"));
    // slow1 finished and its output is kept; slow2 never ran.
    assert_eq!(
        client.get_task_result("running", "slow1").await.unwrap(),
        Some(json(2))
    );
    assert_eq!(
        client.get_task_result("running", "slow2").await.unwrap(),
        None
    );
    stop(ws).await;
}

/// slow (1 s) → r2 → r3, for a request that arrives while an in-process
/// runner is inside a task.
fn slow_first() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("slow-first", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("slow", |x: u64| async move {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                Ok(x + 1)
            })
            .then("r2", |x: u64| async move { Ok(x + 1) })
            .then("r3", |x: u64| async move { Ok(x + 1) })
            .build()
            .unwrap(),
    )
}

/// A CheckpointingRunner takes no claims: maintenance (run here by another
/// process's finder polling the same database) must not apply a cancel
/// behind its back. The runner applies it at its next task boundary and
/// reports what the store holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_during_a_runner_task_is_applied_by_the_runner() {
    use sayiir_persistence::TaskClaimStore;
    let (_db, b) = backend().await;
    let wf = slow_first();
    let runner = CheckpointingRunner::new(b.clone());
    let client = WorkflowClient::new(b.clone());
    let requester = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        client
            .cancel("ran", Some("stop".into()), Some("ops".into()))
            .await
            .unwrap();
        // Workers elsewhere keep polling: their finders run maintenance.
        for _ in 0..30 {
            b.find_available_tasks("elsewhere", 8, chrono::Duration::seconds(300), &[])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (reported, ()) = tokio::join!(runner.run(&*wf, "ran", 1), requester);
    let reported = reported.unwrap();
    let stored = client.status("ran").await.unwrap();
    assert!(
        matches!(reported, WorkflowStatus::Cancelled { .. }),
        "the runner reports {reported:?}, the store holds {stored:?}"
    );
    assert!(
        matches!(stored, WorkflowStatus::Cancelled { .. }),
        "{stored:?}"
    );
}
