//! Failover to a streaming standby with workers running.
//!
//! A primary and a hot standby (testkit's `ReplicatedPair`, on loopback);
//! the backend and two worker processes connect with a URL listing both
//! servers and `target_session_attrs=read-write`. While 300 workflows of two
//! shapes run, the primary is stopped with `-m immediate` and the standby
//! promoted. With synchronous replication (`remote_apply`) nothing
//! committed is lost; with asynchronous replication the last commits not
//! yet replayed are. Either way every workflow completes with its output,
//! the worker loops never end, the wakeup listener finds the new primary,
//! and no claim or queue row is left pointing at a finished workflow.
//! Repeated steps are counted and printed with their cause.
//!
//! Needs `pg_basebackup` beside the server binaries (Debian's packages);
//! skipped otherwise (the `@embedded-postgres` bundles of CI's 13 and 18).
//! The worker processes are this test binary re-run on its ignored
//! `failover_worker` entry point.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::schema::sayiir::{claims, tasks, workflows};
use sayiir_diesel_testkit::ReplicatedPair;
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};

const WORKFLOWS: u64 = 300;
const CLAIM_TTL: Duration = Duration::from_secs(4);

fn now_ms() -> u128 {
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
fn shapes() -> Vec<Arc<Workflow<JsonCodec, u64>>> {
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

/// Worker process entry point (ignored in normal runs): two PooledWorkers
/// until `SAYIIR_FO_STOP` exists (bounded: three minutes). A worker loop
/// that ends is written to the log as "LOOP-ENDED".
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
    let registry: Vec<_> = shapes()
        .into_iter()
        .map(|wf| (*wf.definition_hash(), wf))
        .collect();
    let handles: Vec<_> = (0..2)
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
        .collect();
    // A loop that ends before we stop it is logged.
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for h in &handles {
        let (h, stopping) = (h.clone(), Arc::clone(&stopping));
        tokio::spawn(async move {
            let result = h.join().await;
            if !std::sync::atomic::AtomicBool::load(&stopping, std::sync::atomic::Ordering::SeqCst)
            {
                log_run(0, &format!("LOOP-ENDED {result:?}"));
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while !std::path::Path::new(&stop).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Ok(path) = std::env::var("SAYIIR_FO_LOG") {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        let line = format!(
            "{} {} 0 METRICS {:?}\n",
            now_ms(),
            std::process::id(),
            b.metrics()
        );
        f.write_all(line.as_bytes()).unwrap();
    }
    for h in &handles {
        h.shutdown();
    }
}

fn spawn_worker_process(url: &str, log: &str, stop: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "failover_worker",
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

async fn completed_count(url: &str) -> Option<i64> {
    let mut conn = AsyncPgConnection::establish(url).await.ok()?;
    workflows::table
        .filter(workflows::status.eq("Completed"))
        .count()
        .get_result(&mut conn)
        .await
        .ok()
}

/// What one failover run saw.
struct Outcome {
    repeats: Vec<(u64, String)>,
    first_step_after_ms: Option<u128>,
    loops_ended: usize,
    metrics: Vec<String>,
}

/// Submits every workflow (half of each shape) through `url` and waits
/// until the standby has replayed them all: what an asynchronous failover
/// may lose is the workers' progress, which the test can account for, not
/// a submission it could not tell from a workflow that was never made.
async fn submit_all_and_replicate(pair: &ReplicatedPair, url: &str) {
    let b = Backend::connect(url).await.unwrap();
    let client = WorkflowClient::new(b.clone());
    let wfs = shapes();
    for i in 0..WORKFLOWS {
        let wf = &wfs[(i % 2) as usize];
        client
            .submit(&**wf, &format!("fo-{i}"), (i + 1) * 1000)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pair.replay_lag_bytes().unwrap() > 0 {
        assert!(Instant::now() < deadline, "standby never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until at least `n` workflows completed at `url`, failing the
/// test after `limit`.
async fn until_completed(url: &str, n: u64, limit: Duration) {
    let n = i64::try_from(n).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        let done = completed_count(url).await;
        if done.is_some_and(|d| d >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stuck: {done:?} of {n} completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks the worker processes to stop (the `stop` file) and waits for
/// each, killing one that has not exited within 20 s.
async fn stop_workers(children: &mut [Child], stop: &str) {
    std::fs::write(stop, b"").unwrap();
    for c in children {
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                c.kill().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every workflow has its output, and no queue or claim row is left
/// pointing at a finished workflow.
async fn assert_all_done_and_nothing_left(url: &str) {
    let b = Backend::connect(url).await.unwrap();
    for i in 0..WORKFLOWS {
        let out = final_output(&b, &format!("fo-{i}")).await;
        assert_eq!(out, json((i + 1) * 1000 + 3), "fo-{i}");
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let queued: i64 = tasks::table.count().get_result(&mut conn).await.unwrap();
    let claimed: i64 = claims::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(
        (queued, claimed),
        (0, 0),
        "queue or claim rows of finished workflows"
    );
}

/// What the worker processes' log says: how often each step ran, the
/// first step started after `promoted_at` (ms since the epoch), the loops
/// that ended and the workers' metrics lines.
struct RunsLog {
    runs: HashMap<(u64, String), u32>,
    first_after: Option<u128>,
    loops_ended: usize,
    metrics: Vec<String>,
}

fn read_runs_log(log: &str, promoted_at: u128) -> RunsLog {
    let text = std::fs::read_to_string(log).unwrap();
    let mut seen = RunsLog {
        runs: HashMap::new(),
        first_after: None,
        loops_ended: 0,
        metrics: Vec::new(),
    };
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(ms), Some(_pid), Some(inst), Some(task)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if task.starts_with("LOOP-ENDED") {
            eprintln!("{line}");
            seen.loops_ended += 1;
            continue;
        }
        if task.starts_with("METRICS") {
            seen.metrics.push(task.to_owned());
            continue;
        }
        let ms: u128 = ms.parse().unwrap();
        // Steps started before the promotion finished were claimed on the
        // old primary: the first one after it shows the new primary at work.
        if ms > promoted_at && seen.first_after.is_none_or(|f| ms < f) {
            seen.first_after = Some(ms);
        }
        *seen
            .runs
            .entry((inst.parse().unwrap(), task.to_owned()))
            .or_default() += 1;
    }
    seen
}

async fn run_failover(synchronous: bool) -> Option<Outcome> {
    if !ReplicatedPair::available() {
        eprintln!("skipped: no pg_basebackup beside the server binaries (or DATABASE_URL set)");
        return None;
    }
    let pair = tokio::task::spawn_blocking(move || ReplicatedPair::start(synchronous))
        .await
        .unwrap()
        .unwrap();
    pair.psql(pair.primary_port(), "CREATE DATABASE app")
        .unwrap();
    let url = pair.failover_url("app");
    submit_all_and_replicate(&pair, &url).await;

    let dir = std::env::temp_dir().join(format!(
        "sayiir-failover-{}-{}",
        std::process::id(),
        if synchronous { "sync" } else { "async" }
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("runs.log").display().to_string();
    let stop = dir.join("stop").display().to_string();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&stop);
    let mut children: Vec<Child> = (0..2)
        .map(|_| spawn_worker_process(&url, &log, &stop))
        .collect();

    // Fail over once a third of the workflows are done.
    until_completed(&url, WORKFLOWS / 3, Duration::from_secs(60)).await;
    let failed_over_at = now_ms();
    pair.stop_primary().unwrap();
    pair.promote_standby().unwrap();
    let promoted_in = now_ms() - failed_over_at;

    // Everything completes on the new primary.
    until_completed(&url, WORKFLOWS, Duration::from_secs(120)).await;
    stop_workers(&mut children, &stop).await;
    assert_all_done_and_nothing_left(&url).await;

    // Repeats, loop ends and the first step after the failover.
    let seen = read_runs_log(&log, failed_over_at + promoted_in);
    // Linear workflows have three steps, delayed ones two.
    let steps = WORKFLOWS / 2 * 3 + WORKFLOWS / 2 * 2;
    assert_eq!(
        seen.runs.len(),
        usize::try_from(steps).unwrap(),
        "every step ran"
    );
    let mut repeats: Vec<(u64, String)> = seen
        .runs
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    repeats.sort();
    eprintln!(
        "failover ({}): promoted in {promoted_in} ms; first step started on the new primary {} ms after the stop; repeated steps {}: {repeats:?}; worker metrics {:?}",
        if synchronous {
            "synchronous"
        } else {
            "asynchronous"
        },
        seen.first_after
            .map_or(-1, |f| i64::try_from(f - failed_over_at).unwrap()),
        repeats.len(),
        seen.metrics,
    );
    drop(pair);
    let _ = std::fs::remove_dir_all(&dir);
    Some(Outcome {
        repeats,
        first_step_after_ms: seen.first_after.map(|f| f - failed_over_at),
        loops_ended: seen.loops_ended,
        metrics: seen.metrics,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_failover_loses_nothing() {
    let Some(o) = run_failover(true).await else {
        return;
    };
    assert_eq!(o.loops_ended, 0, "a worker loop ended");
    assert!(o.first_step_after_ms.is_some());
    // A step repeats only where its worker lost the claim with the primary:
    // it ran the step, the save failed with the connection, and the claim
    // (committed, replicated) expired before another worker took the step.
    // At most one step per worker is in flight: 2 processes × 2 workers.
    assert!(o.repeats.len() <= 4, "{:?} {:?}", o.repeats, o.metrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_failover_ends_consistent() {
    let Some(o) = run_failover(false).await else {
        return;
    };
    assert_eq!(o.loops_ended, 0, "a worker loop ended");
    assert!(o.first_step_after_ms.is_some());
    // Commits not yet replayed are lost: their steps run again (printed
    // above), and nothing else is.
}
