//! Metrics through the `metrics` facade: a recorder is installed for this
//! whole test binary (one test function), a known workload runs on the real
//! runtime, and the recorded values are checked against what that run
//! determines: exact counts where the run fixes them, bounds otherwise.
//!
//! Phase A drives the store directly: claims taken, refused for each
//! reason and taken over after expiry, a crashed workflow recovered by
//! maintenance and a row quarantined. Phase B runs linear workflows with a
//! delay on two `PooledWorker`s. The recorder and its snapshots are in
//! `metrics/recorder.rs`.

mod common;
#[path = "metrics/recorder.rs"]
mod recorder;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::context::WorkflowContext;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_diesel::telemetry as t;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;

use recorder::{Recorder, Snap, op, until};

static STEPS_RUN: AtomicU64 = AtomicU64::new(0);

/// a → a 200 ms delay → b → c: three steps, one park for maintenance.
fn workflow() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("metered", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("a", |x: u64| async move {
                STEPS_RUN.fetch_add(1, SeqCst);
                Ok(x + 1)
            })
            .delay("nap", Duration::from_millis(200))
            .then("b", |x: u64| async move {
                STEPS_RUN.fetch_add(1, SeqCst);
                Ok(x * 2)
            })
            .then("c", |x: u64| async move {
                STEPS_RUN.fetch_add(1, SeqCst);
                Ok(x + 3)
            })
            .build()
            .unwrap(),
    )
}

fn ttl(d: chrono::Duration) -> Option<chrono::Duration> {
    Some(d)
}

fn aging() -> chrono::Duration {
    chrono::Duration::seconds(300)
}

/// The workflows phase B runs.
const N: u64 = 12;

/// A crash window (see tests/maintenance.rs): `id`'s s2 output saved
/// under a claim that expired at once, the workflow never moved on.
async fn leave_a_crash_window(b: &Backend, id: &str) {
    let mut crashed = at_task(id, "s2");
    crashed.mark_task_completed(tid("s1"), Bytes::from_static(b"one"));
    b.save_snapshot(&mut crashed).await.unwrap();
    b.claim_task(id, &tid("s2"), "dead", ttl(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    crashed.mark_task_completed(tid("s2"), Bytes::from_static(b"two"));
    b.save_snapshot(&mut crashed).await.unwrap();
}

/// `id` claimed by w1, then claims refused once for each reason: claimed
/// by another, not at that task, no such workflow.
async fn refuse_a_claim_for_each_reason(b: &Backend, id: &str, long: chrono::Duration) {
    b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    b.claim_task(id, &tid("a"), "w1", ttl(long))
        .await
        .unwrap()
        .unwrap();
    let by_other = b.claim_task(id, &tid("a"), "w2", ttl(long)).await;
    assert!(by_other.unwrap().is_none(), "claimed by w1");
    let elsewhere = b.claim_task(id, &tid("zzz"), "w2", ttl(long)).await;
    assert!(elsewhere.unwrap().is_none(), "not at that task");
    assert!(
        b.claim_task("ghost", &tid("a"), "w2", ttl(long))
            .await
            .is_err()
    );
}

/// An undecodable row (see tests/claims.rs): `id`'s snapshot overwritten
/// with bytes no codec reads.
async fn make_undecodable(b: &Backend, db: &sayiir_diesel_testkit::TestDatabase, id: &str) {
    b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    let mut conn = raw_conn(db).await;
    diesel::update(workflows::table.find(id))
        .set(workflows::snapshot.eq(b"legacy json".to_vec()))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// Phase A: the store driven directly. A crash window (see
/// tests/maintenance.rs), a claim refused for each reason, an expired
/// claim taken over and an undecodable row (see tests/claims.rs), then one
/// finder call. Returns what was recorded, once the rows are deleted again.
async fn drive_the_store(
    b: &Backend,
    db: &sayiir_diesel_testkit::TestDatabase,
    rec: &mut Recorder,
) -> Snap {
    let long = chrono::Duration::seconds(30);
    leave_a_crash_window(b, "crashed").await;
    refuse_a_claim_for_each_reason(b, "held", long).await;
    // An expired claim, taken over below.
    b.save_snapshot(&mut at_task("expiring", "a"))
        .await
        .unwrap();
    b.claim_task(
        "expiring",
        &tid("a"),
        "w1",
        ttl(chrono::Duration::milliseconds(300)),
    )
    .await
    .unwrap()
    .unwrap();
    make_undecodable(b, db, "bad").await;
    // Past the claim TTL and the recovery grace.
    tokio::time::sleep(Duration::from_millis(700)).await;
    b.claim_task("expiring", &tid("a"), "w2", ttl(long))
        .await
        .unwrap()
        .expect("the expired claim is taken over");
    // The first finder call runs maintenance: it recovers `crashed`, then
    // samples the queue (`crashed` and `bad` are claimable; `held` and
    // `expiring` are held), then the finder quarantines `bad`.
    let found: Vec<String> = b
        .find_available_tasks("w3", 10, aging(), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|task| task.instance_id.to_string())
        .collect();
    assert_eq!(found, ["crashed"]);

    let a = rec.take();
    for id in ["crashed", "held", "expiring", "bad"] {
        b.delete_snapshot(id).await.unwrap();
    }
    a
}

/// Exact counts of phase A: four claims taken (one over an expired one),
/// one refusal per reason, one recovery, one quarantine, one maintenance
/// pass that saw two claimable rows.
fn assert_store_counts(a: &Snap, b: &Backend) {
    assert_eq!(
        a.counter(t::CLAIMS_TAKEN),
        4,
        "crashed, held, expiring twice"
    );
    assert_eq!(a.counter(t::CLAIMS_TAKEN_OVER), 1);
    for reason in ["claimed", "not_runnable", "not_found"] {
        let key = format!("{}{{reason={reason}}}", t::CLAIMS_REFUSED);
        assert_eq!(a.counter(&key), 1, "{key}");
    }
    assert_eq!(a.histogram_count(&op("claim_task")), 7, "every claim call");
    assert_eq!(a.histogram_count(&op("save_snapshot")), 5);
    assert_eq!(a.histogram_count(&op("find_available_tasks")), 1);
    assert_eq!(a.counter(t::RECOVERIES), 1);
    assert_eq!(a.counter(t::MAINTENANCE_ADVANCED), 1, "the recovery");
    assert_eq!(a.counter(t::QUARANTINED), 1);
    assert_eq!(a.counter(t::MAINTENANCE_PASSES), 1);
    assert_eq!(a.gauges.get(t::QUEUE_DEPTH), Some(&2.0), "crashed and bad");
    let age = a.gauges[t::QUEUE_OLDEST_AGE_SECONDS];
    assert!((0.5..60.0).contains(&age), "bad has waited 0.7 s: {age}");
    assert!(
        a.counter(t::WAKEUPS_SENT) >= 4,
        "the first save of each row"
    );
    let m = b.metrics();
    assert_eq!((m.recovered, m.advanced, m.quarantined), (1, 1, 1));
}

/// Phase B: `N` linear workflows with a delay on two PooledWorkers, until
/// every one completed and a maintenance pass sampled the empty queue.
/// Returns the counters of the run.
async fn run_on_workers(b: &Backend, rec: &mut Recorder) -> Snap {
    let wf = workflow();
    let client = WorkflowClient::new(b.clone());
    for i in 0..N {
        client.submit(&*wf, &format!("run-{i}"), i).await.unwrap();
    }
    rec.take();
    let workers = spawn_workers(b, &wf, 2, 2);
    for i in 0..N {
        wait_status(
            &client,
            &format!("run-{i}"),
            Duration::from_secs(60),
            completed,
        )
        .await;
    }
    // Drained: a maintenance pass (workers keep polling) samples an empty queue.
    let mut during = rec.take();
    let last = until(rec, Duration::from_secs(10), |s| {
        s.counter(t::MAINTENANCE_PASSES) > 0
            && s.gauges.get(t::QUEUE_DEPTH) == Some(&0.0)
            && s.gauges.get(t::QUEUE_OLDEST_AGE_SECONDS) == Some(&0.0)
    })
    .await;
    shutdown_and_join(&workers).await;
    for (k, v) in last.counters {
        *during.counters.entry(k).or_default() += v;
    }
    during
}

/// Exact counts of phase B: a claim per step, one advance per delay, no
/// takeover, recovery or quarantine.
fn assert_worker_counts(during: &Snap) {
    let steps = AtomicU64::load(&STEPS_RUN, SeqCst);
    assert_eq!(steps, 3 * N, "every step ran once");
    assert_eq!(during.counter(t::CLAIMS_TAKEN), steps, "a claim per step");
    assert_eq!(during.counter(t::CLAIMS_TAKEN_OVER), 0);
    assert_eq!(during.counter(t::MAINTENANCE_ADVANCED), N, "one delay each");
    assert_eq!(during.counter(t::RECOVERIES), 0);
    assert_eq!(during.counter(t::QUARANTINED), 0);
    assert!(during.counter(t::MAINTENANCE_PASSES) >= 1);
}

/// Every NOTIFY we issued reaches the one listener of this database.
async fn until_every_wakeup_is_delivered(rec: &mut Recorder) {
    // Every NOTIFY we issued reaches the one listener of this database.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        rec.take();
        let sent = rec.totals.counter(t::WAKEUPS_SENT);
        let delivered = rec.totals.counter(t::WAKEUPS_DELIVERED);
        if sent == delivered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sent {sent}, delivered {delivered}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The totals of the whole run: wakeups, `metrics()` agreeing with the
/// recorder, one series per operation used, plausible timings.
fn assert_totals(totals: &Snap, b: &Backend) {
    assert!(
        totals.counter(t::WAKEUPS_SENT) >= 4 + N,
        "at least each submit"
    );
    assert_eq!(totals.counter(t::WAKEUPS_DROPPED), 0);
    assert_eq!(totals.counter(t::LISTENER_RECONNECTS), 0);
    // `metrics()` and the recorder agree.
    let m = b.metrics();
    assert_eq!(m.recovered, totals.counter(t::RECOVERIES));
    assert_eq!(m.advanced, totals.counter(t::MAINTENANCE_ADVANCED));
    assert_eq!(m.quarantined, totals.counter(t::QUARANTINED));
    assert_eq!(m.retries, totals.counter(t::TRANSIENT_RETRIES));
    assert_eq!(m.wakeups_delivered, totals.counter(t::WAKEUPS_DELIVERED));
    assert_eq!(m.wakeups_dropped, totals.counter(t::WAKEUPS_DROPPED));
    assert_eq!(
        m.listener_reconnects,
        totals.counter(t::LISTENER_RECONNECTS)
    );
    // Every claim call is timed once, taken or refused.
    assert_eq!(
        totals.histogram_count(&op("claim_task")) as u64,
        totals.counter(t::CLAIMS_TAKEN) + totals.counter_sum(t::CLAIMS_REFUSED)
    );
    // Every operation this run used has its own series, and only those.
    for name in [
        "save_snapshot",
        "load_snapshot",
        "delete_snapshot",
        "claim_task",
        "release_task_claim",
        "find_available_tasks",
        "wait_for_wakeup",
        "check_and_cancel",
        "check_and_pause",
    ] {
        assert!(totals.histogram_count(&op(name)) > 0, "{name}");
    }
    for name in ["unpause", "store_signal", "send_event", "list_snapshots"] {
        assert_eq!(totals.histogram_count(&op(name)), 0, "{name} never ran");
    }
    for (key, values) in &totals.histograms {
        assert!(
            values.iter().all(|v| (0.0..60.0).contains(v)),
            "{key}: {values:?}"
        );
    }
}

/// The pool gauges and waits, sampled at every checkout.
fn assert_pool(totals: &Snap, a: &Snap) {
    // The pool: every store call took a connection.
    assert!(
        totals.histogram_count(t::POOL_WAIT_SECONDS) >= totals.histogram_count(&op("claim_task"))
    );
    let size = a.gauges[t::POOL_SIZE];
    assert!((1.0..=16.0).contains(&size), "pool size {size}");
    assert!(a.gauges[t::POOL_AVAILABLE] <= size);
    assert_eq!(a.gauges[t::POOL_MAX_SIZE], 16.0, "the default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_known_run_records_known_values() {
    let mut rec = Recorder::install();
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .recovery_grace(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    rec.take();

    let a = drive_the_store(&b, &db, &mut rec).await;
    assert_store_counts(&a, &b);

    let during = run_on_workers(&b, &mut rec).await;
    assert_worker_counts(&during);

    until_every_wakeup_is_delivered(&mut rec).await;
    assert_totals(&rec.totals, &b);
    assert_pool(&rec.totals, &a);
}
