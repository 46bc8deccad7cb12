//! Retention: each step removes exactly what it should and reports it, the
//! statements read through their indexes, the background pruner runs and
//! stops with the backend, and pruning while workers run loses nothing and
//! runs no step twice.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use common::plan::{flat, text};
use common::*;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::context::WorkflowContext;
use sayiir_core::snapshot::{ExecutionPosition, PauseRequest, WorkflowSnapshot};
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::retention::{self, Batching, PruneReport, RetentionPolicy};
use sayiir_diesel::schema::sayiir::{claims, events, history, task_outputs, workflows};
use sayiir_persistence::{SignalStore, SnapshotStore};
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;

const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------- helpers

/// Saves `id` through `writes` states (one history entry each): at task
/// t0, then t0 done and at t1, and so on; returns the last state.
async fn written(b: &Backend, id: &str, writes: usize) -> WorkflowSnapshot {
    let mut s = at_task(id, "t0");
    b.save_snapshot(&mut s).await.unwrap();
    for i in 1..writes {
        s.mark_task_completed(tid(&format!("t{}", i - 1)), Bytes::from(format!("out{i}")));
        s.update_position(ExecutionPosition::AtTask {
            task_id: tid(&format!("t{i}")),
        });
        b.save_snapshot(&mut s).await.unwrap();
    }
    s
}

/// `written`, then one more write that finishes it in `status`.
async fn finished(b: &Backend, id: &str, writes: usize, status: &str) {
    let mut s = written(b, id, writes).await;
    match status {
        "Completed" => s.mark_completed(Bytes::from_static(b"done")),
        "Failed" => s.mark_failed("boom".to_owned()),
        "Cancelled" => s.mark_cancelled(Some("r".into()), Some("u".into()), None),
        other => panic!("{other}"),
    }
    b.save_snapshot(&mut s).await.unwrap();
}

async fn paused(b: &Backend, id: &str, writes: usize) {
    let mut s = written(b, id, writes).await;
    s.mark_paused(&PauseRequest::new(Some("r".into()), None));
    b.save_snapshot(&mut s).await.unwrap();
}

async fn backdate_finished(conn: &mut AsyncPgConnection, ids: &[&str], by: chrono::Duration) {
    diesel::update(workflows::table.filter(workflows::instance_id.eq_any(ids)))
        .set(workflows::finished_at.eq(Utc::now() - by))
        .execute(conn)
        .await
        .unwrap();
}

/// History refuses updates (a trigger); a test may lift that to age rows.
async fn backdate_history(
    conn: &mut AsyncPgConnection,
    id: &str,
    up_to_revision: i64,
    by: chrono::Duration,
) {
    conn.batch_execute("ALTER TABLE sayiir.history DISABLE TRIGGER history_is_append_only")
        .await
        .unwrap();
    diesel::update(
        history::table
            .filter(history::instance_id.eq(id))
            .filter(history::revision.le(up_to_revision)),
    )
    .set(history::recorded_at.eq(Utc::now() - by))
    .execute(conn)
    .await
    .unwrap();
    conn.batch_execute("ALTER TABLE sayiir.history ENABLE TRIGGER history_is_append_only")
        .await
        .unwrap();
}

async fn backdate_events(conn: &mut AsyncPgConnection, id: &str, by: chrono::Duration) {
    diesel::update(events::table.filter(events::instance_id.eq(id)))
        .set(events::sent_at.eq(Utc::now() - by))
        .execute(conn)
        .await
        .unwrap();
}

async fn ids(conn: &mut AsyncPgConnection) -> Vec<String> {
    workflows::table
        .select(workflows::instance_id)
        .order(workflows::instance_id)
        .load(conn)
        .await
        .unwrap()
}

async fn revisions(conn: &mut AsyncPgConnection, id: &str) -> Vec<i64> {
    history::table
        .filter(history::instance_id.eq(id))
        .select(history::revision)
        .order(history::revision)
        .load(conn)
        .await
        .unwrap()
}

async fn rows_of(conn: &mut AsyncPgConnection, id: &str) -> (i64, i64, i64) {
    let outputs = task_outputs::table
        .filter(task_outputs::instance_id.eq(id))
        .count()
        .get_result(conn)
        .await
        .unwrap();
    let hist = history::table
        .filter(history::instance_id.eq(id))
        .count()
        .get_result(conn)
        .await
        .unwrap();
    let evts = events::table
        .filter(events::instance_id.eq(id))
        .count()
        .get_result(conn)
        .await
        .unwrap();
    (outputs, hist, evts)
}

async fn event_ids(conn: &mut AsyncPgConnection) -> Vec<String> {
    events::table
        .select(events::instance_id)
        .order(events::instance_id)
        .load(conn)
        .await
        .unwrap()
}

fn n(x: i64) -> u64 {
    u64::try_from(x).unwrap()
}

// ---------------------------------------------------------------- steps

/// The finished workflows old enough to go and claimed by nobody.
const OLD_UNCLAIMED: [&str; 4] = [
    "old-completed",
    "old-failed",
    "old-cancelled",
    "old-claim-expired",
];

/// Old finished workflows (two of them with a claim: live, expired), a
/// recent one, a running one with a stray `finished_at`, a paused one,
/// and events on some of them.
async fn seed_old_recent_and_live(b: &Backend, conn: &mut AsyncPgConnection) {
    finished(b, "old-completed", 3, "Completed").await;
    finished(b, "old-failed", 2, "Failed").await;
    finished(b, "old-cancelled", 4, "Cancelled").await;
    finished(b, "old-claimed", 2, "Completed").await;
    finished(b, "old-claim-expired", 2, "Completed").await;
    finished(b, "recent-completed", 2, "Completed").await;
    written(b, "running", 3).await;
    paused(b, "paused", 3).await;
    for id in [
        "old-completed",
        "old-cancelled",
        "recent-completed",
        "running",
    ] {
        b.send_event(id, "ev", Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    b.send_event("old-completed", "ev2", Bytes::from_static(b"y"))
        .await
        .unwrap();
    // A worker that saved the final state and has not released yet holds a
    // live claim; an expired claim is nobody's.
    for (id, expires) in [
        ("old-claimed", Utc::now() + chrono::Duration::minutes(5)),
        (
            "old-claim-expired",
            Utc::now() - chrono::Duration::minutes(5),
        ),
    ] {
        diesel::insert_into(claims::table)
            .values((
                claims::instance_id.eq(id),
                claims::task_id.eq(vec![7_u8; 32]),
                claims::worker_id.eq("w"),
                claims::expires_at.eq(Some(expires)),
            ))
            .execute(conn)
            .await
            .unwrap();
    }
    let old = [
        "old-completed",
        "old-failed",
        "old-cancelled",
        "old-claimed",
        "old-claim-expired",
    ];
    backdate_finished(conn, &old, chrono::Duration::hours(2)).await;
    // An InProgress workflow with a stray finished_at is not finished.
    backdate_finished(conn, &["running"], chrono::Duration::hours(2)).await;
}

/// What deleting `OLD_UNCLAIMED` removes, counted from their rows now.
async fn report_for_old_unclaimed(conn: &mut AsyncPgConnection) -> PruneReport {
    let mut expected = PruneReport::default();
    for id in OLD_UNCLAIMED {
        let (o, h, e) = rows_of(conn, id).await;
        assert!(h >= 3, "{id} has history");
        expected.workflows += 1;
        expected.outputs += n(o);
        expected.workflow_history += n(h);
        expected.workflow_events += n(e);
    }
    assert!(expected.outputs >= 4 && expected.workflow_events == 3);
    expected
}

#[tokio::test]
async fn finished_workflows_go_with_their_outputs_history_and_events() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    seed_old_recent_and_live(&b, &mut conn).await;
    let mut expected = report_for_old_unclaimed(&mut conn).await;
    let before = rows_of(&mut conn, "recent-completed").await;

    // Batches of 3: a full one, then a short one.
    let report = retention::delete_finished_workflows(&mut conn, HOUR, Batching::default().size(3))
        .await
        .unwrap();
    expected.batches = 2;
    assert_eq!(report, expected);
    assert_eq!(
        ids(&mut conn).await,
        ["old-claimed", "paused", "recent-completed", "running"]
    );
    for id in OLD_UNCLAIMED {
        assert_eq!(rows_of(&mut conn, id).await, (0, 0, 0), "{id}");
    }
    assert_eq!(rows_of(&mut conn, "recent-completed").await, before);
    assert_eq!(event_ids(&mut conn).await, ["recent-completed", "running"]);
    // The claim held back one workflow; once released, it goes too.
    diesel::delete(claims::table)
        .execute(&mut conn)
        .await
        .unwrap();
    let report = retention::delete_finished_workflows(&mut conn, HOUR, Batching::default())
        .await
        .unwrap();
    assert_eq!((report.workflows, report.batches), (1, 1));
    // Nothing left that is old enough.
    let report = retention::delete_finished_workflows(&mut conn, HOUR, Batching::default())
        .await
        .unwrap();
    assert_eq!(report.total(), 0);
    assert_eq!(
        ids(&mut conn).await,
        ["paused", "recent-completed", "running"]
    );
}

#[tokio::test]
async fn max_batches_caps_a_step_and_the_next_call_finishes() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    let mut all = Vec::new();
    for i in 0..5 {
        let id = format!("done-{i}");
        finished(&b, &id, 1, "Completed").await;
        all.push(id);
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    backdate_finished(&mut conn, &all, chrono::Duration::hours(2)).await;
    let capped = Batching::default().size(2).max_batches(2);
    let first = retention::delete_finished_workflows(&mut conn, HOUR, capped)
        .await
        .unwrap();
    assert_eq!((first.workflows, first.batches, first.capped), (4, 2, true));
    let second = retention::delete_finished_workflows(&mut conn, HOUR, capped)
        .await
        .unwrap();
    assert_eq!(
        (second.workflows, second.batches, second.capped),
        (1, 1, false)
    );
    assert!(ids(&mut conn).await.is_empty());
}

#[tokio::test]
async fn history_by_age_removes_only_old_entries() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    written(&b, "a", 6).await;
    written(&b, "b", 4).await;
    finished(&b, "c", 2, "Completed").await;
    backdate_history(&mut conn, "a", 4, chrono::Duration::hours(2)).await;
    backdate_history(&mut conn, "b", 1, chrono::Duration::hours(2)).await;
    backdate_history(&mut conn, "c", 1, chrono::Duration::minutes(30)).await;
    let report = retention::prune_history_older_than(&mut conn, HOUR, Batching::default().size(2))
        .await
        .unwrap();
    assert_eq!(
        (report.history_by_age, report.batches, report.total()),
        (5, 3, 5)
    );
    assert_eq!(revisions(&mut conn, "a").await, [5, 6]);
    assert_eq!(revisions(&mut conn, "b").await, [2, 3, 4]);
    assert_eq!(revisions(&mut conn, "c").await, [1, 2, 3]);
    // Workflows and outputs are untouched.
    assert_eq!(ids(&mut conn).await, ["a", "b", "c"]);
    assert_eq!(rows_of(&mut conn, "a").await.0, 5);
    // A shorter age reaches the half-hour-old entry.
    let report = retention::prune_history_older_than(
        &mut conn,
        Duration::from_secs(600),
        Batching::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.history_by_age, 1);
    assert_eq!(revisions(&mut conn, "c").await, [2, 3]);
}

/// `id` written three times with history, then three more times through a
/// backend that keeps none (revision 6, history entries 1 to 3).
async fn written_with_history_off_at_the_end(b: &Backend, url: &str, id: &str) {
    let mut s = written(b, id, 3).await;
    let b_off = Backend::builder(url)
        .keep_history(false)
        .build()
        .await
        .unwrap();
    for i in 3..6 {
        s.mark_task_completed(tid(&format!("t{}", i - 1)), Bytes::from_static(b"x"));
        s.update_position(ExecutionPosition::AtTask {
            task_id: tid(&format!("t{i}")),
        });
        b_off.save_snapshot(&mut s).await.unwrap();
    }
}

#[tokio::test]
async fn keep_last_keeps_the_newest_entries_of_every_instance() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    let sizes = [("i01", 1), ("i02", 2), ("i03", 3), ("i07", 7), ("i20", 20)];
    for (id, writes) in sizes {
        written(&b, id, writes).await;
    }
    finished(&b, "i05-done", 4, "Completed").await;
    // Batches of 4: slices of 4 instances, at most 4 entries per statement,
    // so i20's 18 surplus entries take several statements.
    let report = retention::prune_history_keep_last(&mut conn, 2, Batching::default().size(4))
        .await
        .unwrap();
    // 0 + 0 + 1 + 5 + 18 + 3
    assert_eq!(report.history_beyond_last, 27);
    assert!(report.batches >= 7, "{report:?}");
    assert!(!report.capped);
    assert_eq!(revisions(&mut conn, "i01").await, [1]);
    assert_eq!(revisions(&mut conn, "i02").await, [1, 2]);
    assert_eq!(revisions(&mut conn, "i03").await, [2, 3]);
    assert_eq!(revisions(&mut conn, "i07").await, [6, 7]);
    assert_eq!(revisions(&mut conn, "i20").await, [19, 20]);
    assert_eq!(revisions(&mut conn, "i05-done").await, [4, 5]);
    // Again: nothing to do.
    let again = retention::prune_history_keep_last(&mut conn, 2, Batching::default())
        .await
        .unwrap();
    assert_eq!(again.history_beyond_last, 0);
    // The newest entries are what is kept, not the newest revisions: with
    // history turned off for the last writes, the two newest entries stay.
    written_with_history_off_at_the_end(&b, db.url(), "gap").await;
    let revision: i64 = workflows::table
        .find("gap")
        .select(workflows::revision)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(revision, 6);
    assert_eq!(revisions(&mut conn, "gap").await, [1, 2, 3]);
    let report = retention::prune_history_keep_last(&mut conn, 2, Batching::default())
        .await
        .unwrap();
    assert_eq!(report.history_beyond_last, 1);
    assert_eq!(revisions(&mut conn, "gap").await, [2, 3]);
    // Keeping none removes all history, and nothing else.
    let report = retention::prune_history_keep_last(&mut conn, 0, Batching::default())
        .await
        .unwrap();
    assert_eq!(report.history_beyond_last, 1 + 2 + 2 + 2 + 2 + 2 + 2);
    let left: i64 = history::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(left, 0);
    assert_eq!(ids(&mut conn).await.len(), 7);
}

#[tokio::test]
async fn orphan_events_are_those_of_missing_or_finished_instances() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    finished(&b, "done", 2, "Completed").await;
    finished(&b, "failed", 2, "Failed").await;
    written(&b, "running", 2).await;
    paused(&b, "paused", 2).await;
    for id in [
        "done",
        "failed",
        "running",
        "paused",
        "ghost",
        "ghost-recent",
    ] {
        for _ in 0..2 {
            b.send_event(id, "ev", Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
    }
    for id in ["done", "failed", "running", "paused", "ghost"] {
        backdate_events(&mut conn, id, chrono::Duration::hours(2)).await;
    }
    b.send_event("done", "late", Bytes::from_static(b"recent"))
        .await
        .unwrap();
    let report = retention::delete_orphan_events(&mut conn, HOUR, Batching::default().size(4))
        .await
        .unwrap();
    assert_eq!(
        (report.orphan_events, report.batches, report.total()),
        (6, 2, 6)
    );
    assert_eq!(
        event_ids(&mut conn).await,
        [
            "done",
            "ghost-recent",
            "ghost-recent",
            "paused",
            "paused",
            "running",
            "running"
        ]
    );
    assert_eq!(ids(&mut conn).await.len(), 4, "workflows are untouched");
}

#[tokio::test]
async fn prune_runs_every_configured_step_and_an_empty_policy_nothing() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    finished(&b, "done", 3, "Completed").await;
    written(&b, "long", 6).await;
    b.send_event("ghost", "ev", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(
        b.prune(&RetentionPolicy::default()).await.unwrap(),
        PruneReport::default()
    );
    backdate_history(&mut conn, "long", 1, chrono::Duration::hours(2)).await;
    let policy = RetentionPolicy::default()
        .finished_older_than(Duration::ZERO)
        .history_older_than(HOUR)
        .history_keep_last(3)
        .orphan_events_older_than(Duration::ZERO);
    let report = b.prune(&policy).await.unwrap();
    assert_eq!(report.workflows, 1);
    assert_eq!(report.workflow_history, 4);
    assert_eq!(report.history_by_age, 1);
    assert_eq!(report.history_beyond_last, 2);
    assert_eq!(report.orphan_events, 1);
    assert_eq!(ids(&mut conn).await, ["long"]);
    assert_eq!(revisions(&mut conn, "long").await, [4, 5, 6]);
    assert!(event_ids(&mut conn).await.is_empty());
}

// ---------------------------------------------------------------- plans

/// Statistics of empty tables, then the rows (a fresh deployment, a
/// burst): 600 finished and 600 live workflows, an event for each live one
/// and 600 for instances that do not exist.
async fn a_burst_on_statistics_of_empty_tables(b: &Backend, conn: &mut AsyncPgConnection) {
    conn.batch_execute(
        "ANALYZE sayiir.workflows; ANALYZE sayiir.history; ANALYZE sayiir.events; \
         ANALYZE sayiir.task_outputs",
    )
    .await
    .unwrap();
    for i in 0..600 {
        finished(b, &format!("done-{i}"), 3, "Completed").await;
        written(b, &format!("live-{i}"), 3).await;
        b.send_event(&format!("live-{i}"), "ev", Bytes::from_static(b"x"))
            .await
            .unwrap();
        b.send_event(&format!("ghost-{i}"), "ev", Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
}

/// The index the statement named `name` must read, where one is named.
fn expected_index(name: &str) -> Option<&'static str> {
    match name {
        "finished: candidates" => Some("workflows_finished_at_idx"),
        "history by age" => Some("history_recorded_at_idx"),
        "history keep last" => Some("history_pkey"),
        "orphan events: candidates" => Some("events_sent_at_idx"),
        _ => None,
    }
}

/// The plan of statement `name` (batch `size`) scans none of our tables
/// sequentially and reads its expected index.
fn assert_reads_through_an_index(size: u32, name: &str, json: &str) {
    let plan = flat(json);
    let pretty = serde_json::to_string_pretty(&plan).unwrap();
    let summary: Vec<String> = plan
        .iter()
        .map(|n| {
            let on = [text(n, "Index Name"), text(n, "Relation Name")].join(" ");
            format!("{} {}", text(n, "Node Type"), on.trim())
        })
        .collect();
    eprintln!("batch {size}, {name}: {}", summary.join(" / "));
    for node in &plan {
        let relation = text(node, "Relation Name");
        assert!(
            !(text(node, "Node Type") == "Seq Scan"
                && ["workflows", "history", "events", "task_outputs"].contains(&relation.as_str())),
            "batch {size}, {name}: sequential scan of {relation}:\n{pretty}"
        );
    }
    if let Some(index) = expected_index(name) {
        assert!(
            plan.iter().any(|n| text(n, "Index Name") == index),
            "batch {size}, {name} reads {index}:\n{pretty}"
        );
    }
}

#[tokio::test]
async fn every_statement_reads_through_an_index_on_stale_statistics() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    a_burst_on_statistics_of_empty_tables(&b, &mut conn).await;
    // Prepared statements get generic plans after a few runs: check those.
    conn.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    // A batch much smaller than the tables, and the default one (about
    // the size of each table here).
    for size in [50, retention::DEFAULT_BATCH_SIZE] {
        let policy = RetentionPolicy::default()
            .finished_older_than(HOUR)
            .history_older_than(HOUR)
            .history_keep_last(2)
            .orphan_events_older_than(HOUR)
            .batching(Batching::default().size(size));
        let plans = retention::explain(&mut conn, &policy).await.unwrap();
        assert_eq!(plans.len(), 9);
        for (name, json) in &plans {
            assert_reads_through_an_index(size, name, json);
        }
    }
    // The same statements run and remove what they should.
    let report = retention::prune(
        &mut conn,
        &RetentionPolicy::default()
            .finished_older_than(Duration::ZERO)
            .history_keep_last(2)
            .orphan_events_older_than(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(report.workflows, 600);
    assert_eq!(report.workflow_history, 600 * 4);
    assert_eq!(report.history_beyond_last, 600);
    assert_eq!(report.orphan_events, 600);
}

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
