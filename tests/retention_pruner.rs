//! The background pruner, and retention keeping the tables bounded while
//! workers run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::retention::*;
use common::*;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::context::WorkflowContext;
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::retention::{self, Batching, PruneReport, RetentionPolicy};
use sayiir_diesel::schema::sayiir::{history, task_outputs, workflows};
use sayiir_persistence::SnapshotStore;
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;

// ---------------------------------------------------------------- pruner

#[tokio::test]
async fn the_background_pruner_runs_and_stops_with_the_backend() {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .application_name("retention-pruner-test")
        .retention(
            RetentionPolicy::default().finished_older_than(Duration::ZERO),
            Duration::from_millis(200),
        )
        .build()
        .await
        .unwrap();
    let mut conn = raw_conn(&db).await;
    finished(&b, "done", 2, "Completed").await;
    written(&b, "running", 2).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids(&mut conn).await != ["running"] {
        assert!(Instant::now() < deadline, "the pruner never removed `done`");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its pooled connections close once the last clone is gone: nothing
    // holds the pool any more.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions: i64 = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE application_name = 'retention-pruner-test'",
        )
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n;
        if sessions == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sessions} pooled sessions still open after the backend dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

// ---------------------------------------------------------------- under load

const WORKFLOWS: usize = 200;
const WAVES: usize = 5;
const STEPS: usize = 4;
const PARKED: usize = 10;

/// Executions per (workflow, step).
static RUNS: [AtomicU32; WORKFLOWS * STEPS] = [const { AtomicU32::new(0) }; WORKFLOWS * STEPS];

fn count(x: u64, step: usize) {
    RUNS[usize::try_from(x).unwrap() * STEPS + step].fetch_add(1, SeqCst);
}

/// Executions of entry `i` (`RunQueryDsl::load` shadows the atomic's method).
fn runs(i: usize) -> u32 {
    AtomicU32::load(&RUNS[i], SeqCst)
}

fn linear() -> Workflow<JsonCodec, u64> {
    let ctx = WorkflowContext::new("retention-linear", Arc::new(JsonCodec), Arc::new(()));
    WorkflowBuilder::new(ctx)
        .then("p1", |x: u64| async move {
            count(x, 0);
            Ok(x)
        })
        .then("p2", |x: u64| async move {
            count(x, 1);
            Ok(x)
        })
        .then("p3", |x: u64| async move {
            count(x, 2);
            Ok(x)
        })
        .then("p4", |x: u64| async move {
            count(x, 3);
            Ok(x)
        })
        .build()
        .unwrap()
}

async fn table_sizes(conn: &mut AsyncPgConnection) -> (i64, i64, i64) {
    (
        workflows::table.count().get_result(conn).await.unwrap(),
        history::table.count().get_result(conn).await.unwrap(),
        task_outputs::table.count().get_result(conn).await.unwrap(),
    )
}

/// Long-lived instances parked at a signal (no worker runs them): their
/// history is what keep-last must trim while everything else churns.
async fn park_long_lived_instances(b: &Backend) {
    for i in 0..PARKED {
        let id = format!("parked-{i}");
        let mut s = written(b, &id, 5).await;
        s.mark_task_completed(tid("t4"), Bytes::from_static(b"x"));
        s.update_position(ExecutionPosition::AtSignal {
            signal_id: tid("sig"),
            signal_name: "never".to_owned(),
            wake_at: None,
            next_task_id: Some(tid("t5")),
        });
        b.save_snapshot(&mut s).await.unwrap();
    }
}

/// What the pruner removed, the peak (workflows, history, outputs) it saw
/// after a pass, and how many passes it made.
type PrunerRun = (PruneReport, (i64, i64, i64), u32);

/// The pruner: its own connection, in a loop, as fast as it can, until
/// `stop`.
async fn spawn_pruner(
    db: &sayiir_diesel_testkit::TestDatabase,
    stop: &Arc<std::sync::atomic::AtomicBool>,
    policy: &RetentionPolicy,
) -> tokio::task::JoinHandle<PrunerRun> {
    let (stop, policy) = (Arc::clone(stop), policy.clone());
    let mut conn = raw_conn(db).await;
    tokio::spawn(async move {
        let mut total = PruneReport::default();
        let mut peak = (0, 0, 0);
        let mut passes = 0;
        while !std::sync::atomic::AtomicBool::load(&stop, SeqCst) {
            total += retention::prune(&mut conn, &policy).await.unwrap();
            passes += 1;
            let (w, h, o) = table_sizes(&mut conn).await;
            peak = (peak.0.max(w), peak.1.max(h), peak.2.max(o));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (total, peak, passes)
    })
}

/// Waves: each one submitted once the previous one has run its last step.
async fn run_in_waves(client: &WorkflowClient<Backend>, wf: &Workflow<JsonCodec, u64>) {
    let per_wave = WORKFLOWS / WAVES;
    let deadline = Instant::now() + Duration::from_secs(180);
    for wave in 0..WAVES {
        let xs = wave * per_wave..(wave + 1) * per_wave;
        for x in xs.clone() {
            client
                .submit(wf, &format!("wf-{x}"), u64::try_from(x).unwrap())
                .await
                .unwrap();
        }
        while xs.clone().any(|x| runs(x * STEPS + STEPS - 1) == 0) {
            assert!(Instant::now() < deadline, "wave {wave} did not finish");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// No step ran twice, none was skipped.
fn assert_every_step_ran_once() {
    let mut wrong = Vec::new();
    for x in 0..WORKFLOWS {
        for step in 0..STEPS {
            let n_runs = runs(x * STEPS + step);
            if n_runs != 1 {
                wrong.push(format!("wf-{x}/p{}: {n_runs}", step + 1));
            }
        }
    }
    assert!(wrong.is_empty(), "steps not run exactly once: {wrong:?}");
}

/// What is left is the parked instances, with their two newest history
/// entries each; `end` is the table sizes at the end.
async fn assert_only_the_parked_are_left(conn: &mut AsyncPgConnection, end: (i64, i64, i64)) {
    let left = ids(conn).await;
    assert_eq!(left.len(), PARKED, "{left:?}");
    assert!(left.iter().all(|id| id.starts_with("parked-")));
    let per_instance: Vec<(String, i64)> = history::table
        .group_by(history::instance_id)
        .select((history::instance_id, count_star()))
        .load(conn)
        .await
        .unwrap();
    assert_eq!(per_instance.len(), PARKED);
    assert!(
        per_instance.iter().all(|(_, n)| *n == 2),
        "{per_instance:?}"
    );
    for (id, _) in &per_instance {
        assert_eq!(revisions(conn, id).await, [5, 6]);
    }
    assert_eq!(
        end,
        (
            i64::try_from(PARKED).unwrap(),
            2 * i64::try_from(PARKED).unwrap(),
            end.2
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_stay_bounded_while_workers_run_and_nothing_is_lost_or_run_twice() {
    let (db, b) = backend().await;
    park_long_lived_instances(&b).await;
    let wf = Arc::new(linear());
    let client = WorkflowClient::new(b.clone());
    let workers = spawn_workers(&b, &wf, 4, 8);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let policy = RetentionPolicy::default()
        .finished_older_than(Duration::ZERO)
        .history_keep_last(2)
        .batching(Batching::default().size(500));
    let pruner = spawn_pruner(&db, &stop, &policy).await;

    let started = Instant::now();
    run_in_waves(&client, &wf).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, SeqCst);
    let (during, peak, passes) = pruner.await.unwrap();
    shutdown_and_join(&workers).await;
    let mut conn = raw_conn(&db).await;
    let last = retention::prune(&mut conn, &policy).await.unwrap();
    let end = table_sizes(&mut conn).await;
    eprintln!(
        "retention under load: {WORKFLOWS} workflows of {STEPS} steps in {WAVES} waves on 4 \
         workers, {PARKED} parked instances; {passes} prune passes in {:?}; \
         peak (workflows, history, outputs) = {peak:?}, at the end {end:?}; \
         removed during the run {during:?}, by the last pass {last:?}",
        started.elapsed()
    );

    assert_every_step_ran_once();
    // Every workflow completed and was then pruned.
    assert_eq!(
        during.workflows + last.workflows,
        u64::try_from(WORKFLOWS).unwrap()
    );
    assert!(during.workflows > 0, "pruning happened while workers ran");
    assert_only_the_parked_are_left(&mut conn, end).await;
    // While the run went on, the tables stayed far below what the
    // unpruned workflows would leave (200 rows, 1000 history entries).
    let bound = i64::try_from(PARKED + 2 * (WORKFLOWS / WAVES)).unwrap();
    assert!(peak.0 <= bound, "{peak:?}");
}
