//! Races around task boundaries on the real runtime: a pause that arrives
//! during a workflow's last task, and two events for one signal name sent
//! while the workflow is on its way to park.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sayiir_core::context::WorkflowContext;
use sayiir_core::workflow::{Workflow, WorkflowBuilder, WorkflowStatus};
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;

/// Runs of the `last` task per input.
static LAST_RUNS: Mutex<Option<HashMap<u64, u32>>> = Mutex::new(None);

/// first → last, where `last` takes 400 ms.
fn slow_last() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("slow-last", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("first", |x: u64| async move { Ok(x + 1) })
            .then("last", |x: u64| async move {
                *LAST_RUNS
                    .lock()
                    .unwrap()
                    .get_or_insert_with(HashMap::new)
                    .entry(x)
                    .or_insert(0) += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
                Ok(x * 2)
            })
            .build()
            .unwrap(),
    )
}

fn last_runs(x: u64) -> u32 {
    LAST_RUNS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&x).copied())
        .unwrap_or(0)
}

/// A pause requested while the last task runs must not strand the
/// workflow: it completes with its output (the pause arrives too late to
/// matter), or pauses and completes after unpause, and `last` runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_during_the_last_task_never_strands_the_workflow() {
    let (_db, b) = backend().await;
    let wf = slow_last();
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 4, 4);
    let inputs: Vec<u64> = (100..120).collect();
    for &x in &inputs {
        client.submit(&*wf, &format!("p-{x}"), x).await.unwrap();
    }
    // Pause each one as soon as its last task has started.
    let mut pending: Vec<u64> = inputs.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "never started: {pending:?}"
        );
        let mut still = Vec::new();
        for x in pending {
            if last_runs(x + 1) > 0 {
                client
                    .pause(&format!("p-{x}"), Some("late".into()), None)
                    .await
                    .ok();
            } else {
                still.push(x);
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for &x in &inputs {
        let id = format!("p-{x}");
        let status = wait_status(&client, &id, Duration::from_secs(30), |s| {
            matches!(s, WorkflowStatus::Completed | WorkflowStatus::Paused { .. })
        })
        .await;
        if matches!(status, WorkflowStatus::Paused { .. }) {
            client.unpause(&id).await.unwrap();
        }
        wait_status(&client, &id, Duration::from_secs(30), completed).await;
        let out = final_output(&b, &id).await;
        assert_eq!(out, json((x + 1) * 2), "{id}");
        assert_eq!(last_runs(x + 1), 1, "{id}: the last task runs once");
    }
    for w in ws {
        w.shutdown();
    }
}

/// s1 → wait "ev" → mid → wait "ev" → end. `mid` returns the first
/// payload, `end` the second.
fn two_waits() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("two-waits", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("s1", |x: u64| async move {
                tokio::time::sleep(Duration::from_millis(x % 20)).await;
                Ok(x)
            })
            .wait_for_signal("w1", "ev", None)
            .then("mid", |p: u64| async move { Ok(p) })
            .wait_for_signal("w2", "ev", None)
            .then("end", |p: u64| async move { Ok(p) })
            .build()
            .unwrap(),
    )
}

/// Two events sent back to back while the workflow runs toward its first
/// wait (before, during or just after the park): the first wait gets the
/// first event and the second wait the second, always, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_events_around_a_park_arrive_in_order() {
    let (_db, b) = backend().await;
    let wf = two_waits();
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 4, 4);
    let inputs: Vec<u64> = (1..=60).collect();
    for &x in &inputs {
        let id = format!("e-{x}");
        client.submit(&*wf, &id, x).await.unwrap();
        // Spread the sends around the moment the workflow parks.
        tokio::time::sleep(Duration::from_millis(x % 7)).await;
        client
            .send_event(&id, "ev", json(x * 10 + 1))
            .await
            .unwrap();
        client
            .send_event(&id, "ev", json(x * 10 + 2))
            .await
            .unwrap();
    }
    for &x in &inputs {
        let id = format!("e-{x}");
        wait_status(&client, &id, Duration::from_secs(60), completed).await;
        let mid = client.get_task_result(&id, "mid").await.unwrap().unwrap();
        assert_eq!(
            mid,
            json(x * 10 + 1),
            "{id}: the first wait gets the first event"
        );
        let out = final_output(&b, &id).await;
        assert_eq!(
            out,
            json(x * 10 + 2),
            "{id}: the second wait gets the second event"
        );
    }
    for w in ws {
        w.shutdown();
    }
}

/// Runs of the loop body per workflow (keyed by its input).
static BODY_RUNS: Mutex<Option<HashMap<u64, u32>>> = Mutex::new(None);

/// A workflow that is one loop whose body always says `Again`, exited by
/// its iteration limit (5, `ExitWithLast`): the body runs exactly five
/// times unless a stale copy rolls the recorded iteration back. (Under
/// `PooledWorker` a loop must be the whole workflow: every iteration
/// receives the workflow's input and nothing after a loop ever runs; see
/// the README's runtime limits.)
fn five_rounds() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("five-rounds", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .loop_task_with_policy(
                "body",
                |x: u64| async move {
                    *BODY_RUNS
                        .lock()
                        .unwrap()
                        .get_or_insert_with(HashMap::new)
                        .entry(x)
                        .or_insert(0) += 1;
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    Ok(sayiir_core::LoopResult::Again(x))
                },
                5,
                sayiir_core::MaxIterationsPolicy::ExitWithLast,
            )
            .build()
            .unwrap(),
    )
}

/// With `batch_size > 1` and no offers, workers' batches overlap, so an
/// entry found at one iteration of a loop often reaches its claim after
/// another worker has run that iteration and the loop is back at the same
/// task. The claim must refuse such a copy: the body runs exactly five
/// times per workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_entry_from_an_earlier_loop_iteration_cannot_run_the_body() {
    let (_db, b) = backend_without_offers().await;
    let wf = five_rounds();
    let client = WorkflowClient::new(b.clone());
    let ws = spawn_workers(&b, &wf, 4, 8);
    let inputs: Vec<u64> = (1..=40).map(|k| k * 100).collect();
    for &x in &inputs {
        client.submit(&*wf, &format!("loop-{x}"), x).await.unwrap();
    }
    for &x in &inputs {
        wait_status(
            &client,
            &format!("loop-{x}"),
            Duration::from_secs(60),
            completed,
        )
        .await;
    }
    let runs = BODY_RUNS.lock().unwrap().clone().unwrap_or_default();
    let wrong: Vec<_> = inputs
        .iter()
        .map(|x| (x, runs.get(x).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 5)
        .collect();
    assert!(
        wrong.is_empty(),
        "bodies not run exactly 5 times: {wrong:?}"
    );
    for w in ws {
        w.shutdown();
    }
}
