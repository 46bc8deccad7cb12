//! The worker processes of the failover tests: the workflows they run,
//! the log of every step they start, and their entry point (this test
//! binary re-run on an ignored test).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkerHandle};

use super::common::Backend;

const CLAIM_TTL: Duration = Duration::from_secs(4);

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Appends "ms pid instance task" for every task run to `SAYIIR_FO_LOG`.
fn log_run(instance_hint: u64, task: &str) {
    let Ok(path) = std::env::var("SAYIIR_FO_LOG") else {
        return;
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    // One write per line: lines of the two processes never interleave.
    let line = format!(
        "{} {} {instance_hint} {task}\n",
        now_ms(),
        std::process::id()
    );
    f.write_all(line.as_bytes()).unwrap();
}

/// Two shapes; every task logs its input, which identifies the instance
/// (inputs are distinct multiples of 1000, and each step adds at most 3).
pub fn shapes() -> Vec<Arc<Workflow<JsonCodec, u64>>> {
    let step = |name: &'static str, add: u64| {
        move |x: u64| async move {
            log_run(x / 1000, name);
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(x + add)
        }
    };
    let linear = WorkflowBuilder::new(WorkflowContext::new(
        "fo-linear",
        Arc::new(JsonCodec),
        Arc::new(()),
    ))
    .then("l1", step("l1", 1))
    .then("l2", step("l2", 1))
    .then("l3", step("l3", 1))
    .build()
    .unwrap();
    let delayed = WorkflowBuilder::new(WorkflowContext::new(
        "fo-delayed",
        Arc::new(JsonCodec),
        Arc::new(()),
    ))
    .then("d1", step("d1", 1))
    .delay("nap", Duration::from_millis(300))
    .then("d2", step("d2", 2))
    .build()
    .unwrap();
    vec![Arc::new(linear), Arc::new(delayed)]
}

/// Two `PooledWorker`s of this process on `b`.
fn spawn_two_workers(b: &Backend) -> Vec<WorkerHandle<Backend>> {
    let registry: Vec<_> = shapes()
        .into_iter()
        .map(|wf| (*wf.definition_hash(), wf))
        .collect();
    (0..2)
        .map(|i| {
            PooledWorker::new(
                format!("fo-{}-{i}", std::process::id()),
                b.clone(),
                TaskRegistry::new(),
            )
            .with_claim_ttl(Some(CLAIM_TTL))
            .with_batch_size(std::num::NonZeroUsize::new(4).unwrap())
            .spawn(Duration::from_millis(100), registry.clone())
        })
        .collect()
}

/// Logs "LOOP-ENDED" for a worker loop that ends before the returned flag
/// is set (the process stopping them).
fn log_loops_that_end(handles: &[WorkerHandle<Backend>]) -> Arc<AtomicBool> {
    let stopping = Arc::new(AtomicBool::new(false));
    for h in handles {
        let (h, stopping) = (h.clone(), Arc::clone(&stopping));
        tokio::spawn(async move {
            let result = h.join().await;
            if !stopping.load(Ordering::SeqCst) {
                log_run(0, &format!("LOOP-ENDED {result:?}"));
            }
        });
    }
    stopping
}

/// Waits until the file `stop` exists, three minutes at most.
async fn until_stop_file(stop: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !std::path::Path::new(stop).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Worker process entry point (ignored in normal runs): two PooledWorkers
/// until `SAYIIR_FO_STOP` exists (bounded: three minutes). A worker loop
/// that ends is written to the log as "LOOP-ENDED", the backend's metrics
/// at the end as "METRICS".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the worker processes of the failover tests"]
async fn failover_worker() {
    let (Ok(url), Ok(stop)) = (
        std::env::var("SAYIIR_FO_URL"),
        std::env::var("SAYIIR_FO_STOP"),
    ) else {
        return;
    };
    let b = Backend::builder(&url)
        .recovery_grace(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let handles = spawn_two_workers(&b);
    let stopping = log_loops_that_end(&handles);
    until_stop_file(&stop).await;
    stopping.store(true, Ordering::SeqCst);
    log_run(0, &format!("METRICS {:?}", b.metrics()));
    for h in &handles {
        h.shutdown();
    }
}

pub fn spawn_worker_process(url: &str, log: &str, stop: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "worker::failover_worker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SAYIIR_FO_URL", url)
        .env("SAYIIR_FO_LOG", log)
        .env("SAYIIR_FO_STOP", stop)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
