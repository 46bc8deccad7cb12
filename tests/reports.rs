//! The public typed query fragments run against real data.

mod common;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::models::{Claim, HistoryEntry, QueuedTask, Workflow};
use sayiir_diesel::reports;
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};

/// `done` (Completed), `queued` at task `a`, and `claimed` whose claim on
/// `a` has already expired.
async fn seed_done_queued_and_expired_claim(b: &Backend) {
    let mut done = at_task("done", "a");
    b.save_snapshot(&mut done).await.unwrap();
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    b.save_snapshot(&mut at_task("queued", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("claimed", "a")).await.unwrap();
    b.claim_task("claimed", &tid("a"), "w", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
}

/// `workflows_in`, `finished_before` and `history_of` find `done`.
async fn assert_workflow_fragments_find_the_finished_one(conn: &mut AsyncPgConnection) {
    let completed: Vec<Workflow> = reports::workflows_in(sayiir_diesel::Status::Completed)
        .select(Workflow::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].instance_id, "done");
    assert!(completed[0].finished_at.is_some());

    let old: i64 = reports::finished_before(chrono::Utc::now() + chrono::Duration::minutes(1))
        .count()
        .get_result(conn)
        .await
        .unwrap();
    assert_eq!(old, 1);

    let history: Vec<HistoryEntry> = reports::history_of("done")
        .select(HistoryEntry::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| h.status.as_str())
            .collect::<Vec<_>>(),
        ["InProgress", "Completed"]
    );
}

/// `expired_claims`, `runnable_tasks` and `quarantined_tasks` see the
/// expired claim and the two runnable tasks, and nothing quarantined.
async fn assert_task_fragments_find_the_runnable_ones(conn: &mut AsyncPgConnection) {
    let expired: Vec<Claim> = reports::expired_claims()
        .select(Claim::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].instance_id, "claimed");

    let mut runnable: Vec<String> = reports::runnable_tasks()
        .select(QueuedTask::as_select())
        .load(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.instance_id)
        .collect();
    runnable.sort();
    assert_eq!(runnable, ["claimed", "queued"]);
    assert_eq!(
        reports::quarantined_tasks()
            .count()
            .get_result::<i64>(conn)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn report_fragments_return_what_they_name() {
    let (db, b) = backend().await;
    seed_done_queued_and_expired_claim(&b).await;
    let mut conn = raw_conn(&db).await;
    assert_workflow_fragments_find_the_finished_one(&mut conn).await;
    assert_task_fragments_find_the_runnable_ones(&mut conn).await;

    // Fragments compose with the user's own filters.
    let n: i64 = reports::workflows_in(sayiir_diesel::Status::InProgress)
        .filter(workflows::instance_id.like("q%"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// The instance ids of `rows`, sorted.
fn sorted_ids(rows: Vec<QueuedTask>) -> Vec<String> {
    let mut v: Vec<String> = rows.into_iter().map(|t| t.instance_id).collect();
    v.sort();
    v
}

/// `queued` (released three times), `held` (claimed for an hour),
/// `lapsed` (its claim expired), `done` (output of `a` saved, the next
/// state never) and `no-input` (input unknown).
async fn seed_waiting_held_and_stuck(b: &Backend, conn: &mut AsyncPgConnection) {
    use sayiir_core::snapshot::WorkflowSnapshot;
    use sayiir_diesel::schema::sayiir::tasks;

    b.save_snapshot(&mut at_task("queued", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("held", "a")).await.unwrap();
    b.claim_task("held", &tid("a"), "w1", Some(chrono::Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    b.save_snapshot(&mut at_task("lapsed", "a")).await.unwrap();
    b.claim_task("lapsed", &tid("a"), "w2", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    // Output of `a` saved, the next state never: the position is still `a`.
    let mut done = at_task("done", "a");
    done.mark_task_completed(tid("a"), Bytes::from_static(b"out-a"));
    b.save_snapshot(&mut done).await.unwrap();
    // No initial input and nothing completed: the task's input is unknown.
    let mut no_input = WorkflowSnapshot::new("no-input", def_hash());
    no_input
        .update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("a") });
    b.save_snapshot(&mut no_input).await.unwrap();
    diesel::update(tasks::table.find("queued"))
        .set(tasks::stalls.eq(3))
        .execute(conn)
        .await
        .unwrap();
}

/// `claims_held_since` counts both claims taken before `later` and none
/// before a minute ago.
async fn assert_held_claims(conn: &mut AsyncPgConnection, later: chrono::DateTime<chrono::Utc>) {
    let minute = chrono::Duration::minutes(1);
    let held: Vec<Claim> = reports::claims_held_since(later)
        .select(Claim::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);
    assert_eq!(
        reports::claims_held_since(chrono::Utc::now() - minute)
            .count()
            .get_result::<i64>(conn)
            .await
            .unwrap(),
        0
    );
}

/// `done_tasks_not_moving` reports `done` as of `later`, not as of a
/// minute ago.
async fn assert_done_tasks_not_moving(
    conn: &mut AsyncPgConnection,
    later: chrono::DateTime<chrono::Utc>,
) {
    let minute = chrono::Duration::minutes(1);
    let stranded = reports::done_tasks_not_moving(later)
        .select(QueuedTask::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(sorted_ids(stranded), ["done"]);
    assert_eq!(
        reports::done_tasks_not_moving(chrono::Utc::now() - minute)
            .count()
            .get_result::<i64>(conn)
            .await
            .unwrap(),
        0,
        "a recent row is not reported"
    );
}

/// A delay that should have woken an hour ago is an overdue park; as of two
/// hours ago, it was not yet.
async fn assert_overdue_parks(b: &Backend, conn: &mut AsyncPgConnection) {
    let minute = chrono::Duration::minutes(1);
    let mut nap = at_task("napping", "a");
    nap.update_position(sayiir_core::snapshot::ExecutionPosition::AtDelay {
        delay_id: tid("nap"),
        entered_at: chrono::Utc::now() - chrono::Duration::hours(2),
        wake_at: chrono::Utc::now() - chrono::Duration::hours(1),
        next_task_id: Some(tid("b")),
    });
    b.save_snapshot(&mut nap).await.unwrap();
    let overdue = reports::overdue_parks(chrono::Utc::now() - minute)
        .select(QueuedTask::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(sorted_ids(overdue), ["napping"]);
    assert_eq!(
        reports::overdue_parks(chrono::Utc::now() - chrono::Duration::hours(2))
            .count()
            .get_result::<i64>(conn)
            .await
            .unwrap(),
        0
    );
}

/// `repeatedly_released(3)` reports `queued` (three stalls); 4 reports none.
async fn assert_repeatedly_released(conn: &mut AsyncPgConnection) {
    let released = reports::repeatedly_released(3)
        .select(QueuedTask::as_select())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(sorted_ids(released), ["queued"]);
    assert_eq!(
        reports::repeatedly_released(4)
            .count()
            .get_result::<i64>(conn)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn operational_fragments_find_what_is_waiting_held_or_not_moving() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    seed_waiting_held_and_stuck(&b, &mut conn).await;

    let waiting = reports::waiting_tasks()
        .select(QueuedTask::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(waiting),
        ["lapsed", "no-input", "queued"],
        "a live claim is not waiting; an expired one is"
    );
    let later = chrono::Utc::now() + chrono::Duration::minutes(1);
    assert_held_claims(&mut conn, later).await;
    assert_done_tasks_not_moving(&mut conn, later).await;
    assert_overdue_parks(&b, &mut conn).await;
    let no_input = reports::tasks_without_input()
        .select(QueuedTask::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(sorted_ids(no_input), ["no-input"]);
    assert_repeatedly_released(&mut conn).await;
}

type HistoryRow = (
    i64,
    sayiir_diesel::Status,
    Option<String>,
    chrono::DateTime<chrono::Utc>,
    i32,
);

#[tokio::test]
async fn size_and_count_fragments_read_no_blobs_into_rust() {
    let (db, b) = backend().await;
    let mut s = at_task("wf", "b");
    s.mark_task_completed(tid("a"), Bytes::from(vec![7u8; 300]));
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_task_completed(tid("b"), Bytes::from_static(b"xy"));
    s.update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("c") });
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_completed(Bytes::new());
    b.save_snapshot(&mut s).await.unwrap();
    b.save_snapshot(&mut at_task("other", "a")).await.unwrap();
    let mut conn = raw_conn(&db).await;

    let outputs: Vec<(Vec<u8>, i32, chrono::DateTime<chrono::Utc>)> =
        reports::output_sizes("wf").load(&mut conn).await.unwrap();
    let sizes: Vec<(Vec<u8>, i32)> = outputs.into_iter().map(|(t, n, _)| (t, n)).collect();
    assert_eq!(
        sizes,
        [
            (tid("a").as_bytes().to_vec(), 300),
            (tid("b").as_bytes().to_vec(), 2)
        ],
        "largest first"
    );

    let history: Vec<HistoryRow> = reports::history_summary("wf")
        .limit(1)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].0, 3, "newest first");
    assert_eq!(history[0].1, sayiir_diesel::Status::Completed);
    assert!(history[0].4 > 0);

    let mut counts: Vec<(sayiir_diesel::Status, i64)> =
        reports::status_counts().load(&mut conn).await.unwrap();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        counts,
        [
            (sayiir_diesel::Status::Completed, 1),
            (sayiir_diesel::Status::InProgress, 1)
        ]
    );
}
