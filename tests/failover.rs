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
//! `worker::failover_worker` entry point (`failover/worker.rs`).

mod common;
#[path = "failover/log.rs"]
mod log;
#[path = "failover/worker.rs"]
mod worker;

use std::process::Child;
use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::schema::sayiir::{claims, tasks, workflows};
use sayiir_diesel_testkit::ReplicatedPair;
use sayiir_runtime::WorkflowClient;

use log::{RunsLog, read_runs_log};
use worker::{now_ms, shapes, spawn_worker_process};

const WORKFLOWS: u64 = 300;

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

/// A synchronous or asynchronous pair with a database `app`, and the URL
/// that lists both servers; `None` (skipped) without `pg_basebackup`.
async fn start_pair(synchronous: bool) -> Option<(ReplicatedPair, String)> {
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
    Some((pair, url))
}

/// The worker processes' run log and stop file, in a folder of this run.
struct RunFiles {
    dir: std::path::PathBuf,
    log: String,
    stop: String,
}

impl RunFiles {
    fn new(synchronous: bool) -> Self {
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
        Self { dir, log, stop }
    }
}

/// Stops the primary and promotes the standby: when the stop began (ms
/// since the epoch) and how long the promotion took.
fn fail_over(pair: &ReplicatedPair) -> (u128, u128) {
    let failed_over_at = now_ms();
    pair.stop_primary().unwrap();
    pair.promote_standby().unwrap();
    (failed_over_at, now_ms() - failed_over_at)
}

/// Every step ran; the steps that ran more than once, sorted.
fn assert_every_step_ran_and_list_repeats(seen: &RunsLog) -> Vec<(u64, String)> {
    // Linear workflows have three steps, delayed ones two.
    let steps = WORKFLOWS / 2 * 3 + WORKFLOWS / 2 * 2;
    assert_eq!(
        seen.runs.len(),
        usize::try_from(steps).unwrap(),
        "every step ran"
    );
    let mut repeats: Vec<(u64, String)> = seen
        .runs
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k.clone())
        .collect();
    repeats.sort();
    repeats
}

async fn run_failover(synchronous: bool) -> Option<Outcome> {
    let (pair, url) = start_pair(synchronous).await?;
    submit_all_and_replicate(&pair, &url).await;
    let files = RunFiles::new(synchronous);
    let mut children: Vec<Child> = (0..2)
        .map(|_| spawn_worker_process(&url, &files.log, &files.stop))
        .collect();

    // Fail over once a third of the workflows are done.
    until_completed(&url, WORKFLOWS / 3, Duration::from_secs(60)).await;
    let (failed_over_at, promoted_in) = fail_over(&pair);

    // Everything completes on the new primary.
    until_completed(&url, WORKFLOWS, Duration::from_secs(120)).await;
    stop_workers(&mut children, &files.stop).await;
    assert_all_done_and_nothing_left(&url).await;

    // Repeats, loop ends and the first step after the failover.
    let seen = read_runs_log(&files.log, failed_over_at + promoted_in);
    let repeats = assert_every_step_ran_and_list_repeats(&seen);
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
    let _ = std::fs::remove_dir_all(&files.dir);
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
