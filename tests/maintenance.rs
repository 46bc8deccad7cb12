//! The finder's maintenance: what it applies, recovers and cleans, and what
//! it must leave alone.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind};
use sayiir_diesel::schema::sayiir::tasks;
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore};

fn aging() -> chrono::Duration {
    chrono::Duration::seconds(300)
}

async fn quick(db: &sayiir_diesel_testkit::TestDatabase, history: bool) -> Backend {
    Backend::builder(db.url())
        .recovery_grace(Duration::from_millis(200))
        .keep_history(history)
        .build()
        .await
        .unwrap()
}

/// Waits past the recovery grace and the maintenance interval, then polls.
async fn poll_after_grace(b: &Backend) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    b.find_available_tasks("w", 10, aging(), &[])
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.instance_id.to_string())
        .collect()
}

/// AtTask(s2) after s1, claimed by a worker, whose commit save recorded s2.
async fn crash_window(b: &Backend, id: &str, claim: bool) {
    let mut s = at_task(id, "s2");
    s.mark_task_completed(tid("s1"), Bytes::from_static(b"one"));
    b.save_snapshot(&mut s).await.unwrap();
    if claim {
        // Zero TTL: the worker "died" and its claim is already expired.
        b.claim_task(id, &tid("s2"), "dead", Some(chrono::Duration::zero()))
            .await
            .unwrap()
            .unwrap();
    }
    s.mark_task_completed(tid("s2"), Bytes::from_static(b"two"));
    b.save_snapshot(&mut s).await.unwrap();
}

#[tokio::test]
async fn recovery_works_without_history_and_restores_the_input() {
    let db = test_db().await;
    let b = quick(&db, false).await;
    crash_window(&b, "wf", true).await;
    assert_eq!(poll_after_grace(&b).await, ["wf"]);
    let got = b.find_available_tasks("w", 10, aging(), &[]).await.unwrap();
    assert_eq!(got[0].task_id, tid("s2"));
    assert_eq!(got[0].input.as_ref(), b"one", "s2 gets s1's output again");
    assert_eq!(b.metrics().recovered, 1);
}

#[tokio::test]
async fn a_runner_driven_row_is_not_recovered() {
    let db = test_db().await;
    let b = quick(&db, true).await;
    // No claim ever: an in-process CheckpointingRunner is still running.
    crash_window(&b, "runner", false).await;
    assert!(poll_after_grace(&b).await.is_empty());
    assert_eq!(b.metrics().recovered, 0);
    let s = b.load_snapshot("runner").await.unwrap();
    assert!(
        s.get_task_result(&tid("s2")).is_some(),
        "membership untouched"
    );
}

#[tokio::test]
async fn a_request_is_not_applied_under_a_live_claim() {
    let db = test_db().await;
    let b = quick(&db, true).await;
    b.save_snapshot(&mut at_task("held", "a")).await.unwrap();
    b.claim_task("held", &tid("a"), "w1", Some(chrono::Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    b.store_signal("held", SignalKind::Pause, request("r", "u"))
        .await
        .unwrap();
    poll_after_grace(&b).await;
    assert!(
        b.load_snapshot("held")
            .await
            .unwrap()
            .state
            .is_in_progress()
    );
    assert!(
        b.get_signal("held", SignalKind::Pause)
            .await
            .unwrap()
            .is_some(),
        "left for the claim holder"
    );
    // Without a claim it is applied.
    b.release_task_claim("held", &tid("a"), "w1").await.unwrap();
    poll_after_grace(&b).await;
    assert!(b.load_snapshot("held").await.unwrap().state.is_paused());
}

#[tokio::test]
async fn a_paused_workflow_only_leaves_paused_through_unpause() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap();
    b.store_signal("wf", SignalKind::Pause, request("r", "u"))
        .await
        .unwrap();
    assert!(b.check_and_pause("wf").await.unwrap());
    // A late InProgress save (e.g. a worker's loop decision) is refused quietly.
    s.update_position(ExecutionPosition::AtTask { task_id: tid("b") });
    b.save_snapshot(&mut s).await.unwrap();
    assert!(b.load_snapshot("wf").await.unwrap().state.is_paused());
    let resumed = b.unpause("wf").await.unwrap();
    assert_eq!(resumed.current_task_id(), Some(tid("a")));
}

#[tokio::test]
async fn a_stale_queue_row_is_ignored_and_removed() {
    let (db, b) = backend().await;
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap();
    let mut conn = raw_conn(&db).await;
    let row: sayiir_diesel::models::QueuedTask = tasks::table
        .find("wf")
        .select(sayiir_diesel::models::QueuedTask::as_select())
        .first(&mut conn)
        .await
        .unwrap();
    s.mark_completed(Bytes::new());
    b.save_snapshot(&mut s).await.unwrap();
    // Put back what a racing writer could leave behind.
    diesel::insert_into(tasks::table)
        .values((
            tasks::instance_id.eq("wf"),
            tasks::position_kind.eq(sayiir_diesel::QueuedPosition::AtTask),
            tasks::task_id.eq(row.task_id),
            tasks::input_ready.eq(true),
            tasks::aged_from.eq(row.aged_from),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(
        b.find_available_tasks("w", 10, aging(), &[])
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    b.find_available_tasks("w", 10, aging(), &[]).await.unwrap();
    let left: i64 = tasks::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(left, 0);
}

/// Whether `bad`'s task row is set aside, its stall count, and the seconds
/// until its retry.
async fn quarantine_of_bad(conn: &mut diesel_async::AsyncPgConnection) -> (bool, i32, f64) {
    tasks::table
        .find("bad")
        .select((
            tasks::quarantined.is_not_null(),
            tasks::stalls,
            diesel::dsl::sql::<diesel::sql_types::Double>(
                "extract(epoch FROM retry_at - now())::float8",
            ),
        ))
        .first::<(bool, i32, f64)>(conn)
        .await
        .unwrap()
}

/// Moves `bad`'s retry time a second into the past.
async fn end_the_back_off_of_bad(conn: &mut diesel_async::AsyncPgConnection) {
    diesel::update(tasks::table.find("bad"))
        .set(tasks::retry_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(conn)
        .await
        .unwrap();
}

/// A row set aside as undecodable is tried again once its back-off has
/// passed: set aside again, for twice as long, while it still cannot be
/// decoded, and dispatched once it can.
#[tokio::test]
async fn an_undecodable_row_is_retried_after_its_back_off() {
    use sayiir_diesel::schema::sayiir::workflows;
    let db = test_db().await;
    let b = quick(&db, true).await;
    b.save_snapshot(&mut at_task("bad", "a")).await.unwrap();
    let mut conn = raw_conn(&db).await;
    let good: Vec<u8> = workflows::table
        .find("bad")
        .select(workflows::snapshot)
        .first(&mut conn)
        .await
        .unwrap();
    diesel::update(workflows::table.find("bad"))
        .set(workflows::snapshot.eq(b"legacy json".to_vec()))
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(poll_after_grace(&b).await.is_empty());
    let (set_aside, stalls, wait) = quarantine_of_bad(&mut conn).await;
    assert!(set_aside);
    assert_eq!(stalls, 1);
    assert!(
        (50.0..=61.0).contains(&wait),
        "first back-off about 1 min: {wait}"
    );
    // The back-off passes; still undecodable: set aside again, for longer.
    end_the_back_off_of_bad(&mut conn).await;
    poll_after_grace(&b).await;
    assert!(poll_after_grace(&b).await.is_empty());
    let (set_aside, stalls, wait) = quarantine_of_bad(&mut conn).await;
    assert!(set_aside);
    assert_eq!(stalls, 2);
    assert!(
        (110.0..=121.0).contains(&wait),
        "the back-off doubles: {wait}"
    );
    // Readable again (say, a codec upgrade): dispatched after the back-off.
    diesel::update(workflows::table.find("bad"))
        .set(workflows::snapshot.eq(good))
        .execute(&mut conn)
        .await
        .unwrap();
    end_the_back_off_of_bad(&mut conn).await;
    poll_after_grace(&b).await;
    assert_eq!(poll_after_grace(&b).await, ["bad"]);
}

/// A burst of parks that expire together is not held to one batch per
/// maintenance interval: a pass that found a full batch lets the next
/// finder call run another at once.
#[tokio::test]
async fn a_burst_of_due_delays_is_advanced_pass_after_pass() {
    let db = test_db().await;
    let b = quick(&db, false).await;
    for i in 0..150 {
        let mut s = at_task(&format!("nap-{i}"), "before");
        s.mark_task_completed(tid("before"), Bytes::from_static(b"1"));
        s.update_position(ExecutionPosition::AtDelay {
            delay_id: tid("nap"),
            entered_at: chrono::Utc::now(),
            wake_at: chrono::Utc::now() - chrono::Duration::seconds(1),
            next_task_id: Some(tid("after")),
        });
        b.save_snapshot(&mut s).await.unwrap();
    }
    // Three finder calls well within one maintenance interval (500 ms).
    let started = std::time::Instant::now();
    for _ in 0..3 {
        b.find_available_tasks("w", 1, aging(), &[]).await.unwrap();
    }
    let mut conn = raw_conn(&db).await;
    let parked: i64 = tasks::table
        .filter(tasks::position_kind.eq(sayiir_diesel::QueuedPosition::AtDelay))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(parked, 0, "all 150 moved on in {:?}", started.elapsed());
}

/// Found by the chaos soak: a worker claims, dies (its claim expires), and
/// a cancel is then applied by maintenance. The workflow is Cancelled and
/// the dead claim row goes with it instead of staying until deletion.
#[tokio::test]
async fn a_cancel_applied_by_maintenance_drops_the_dead_claim() {
    let db = test_db().await;
    let b = quick(&db, true).await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.claim_task("wf", &tid("a"), "dead", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    b.store_signal("wf", SignalKind::Cancel, request("stop", "ops"))
        .await
        .unwrap();
    let found = poll_after_grace(&b).await;
    assert!(found.is_empty(), "{found:?}");
    let status = b.load_snapshot("wf").await.unwrap();
    assert!(status.state.is_cancelled(), "{:?}", status.state);
    let mut conn = raw_conn(&db).await;
    let claims: i64 = sayiir_diesel::schema::sayiir::claims::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(claims, 0, "the dead claim row is gone");
}

/// A worker that paused its workflow and then could not release (its
/// connection or pool gone) leaves an expired claim on a Paused workflow,
/// which nothing would take over: maintenance drops it (found by the chaos
/// soak, with the pool-exhaustion fault).
#[tokio::test]
async fn maintenance_drops_the_dead_claim_of_a_paused_workflow() {
    let db = test_db().await;
    let b = quick(&db, true).await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("live", "a")).await.unwrap();
    b.claim_task("wf", &tid("a"), "gone", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    b.claim_task(
        "live",
        &tid("a"),
        "busy",
        Some(chrono::Duration::seconds(300)),
    )
    .await
    .unwrap()
    .unwrap();
    // The holder applies the pause itself, then never releases.
    b.store_signal("wf", SignalKind::Pause, request("hold", "ops"))
        .await
        .unwrap();
    assert!(b.check_and_pause("wf").await.unwrap());
    let found = poll_after_grace(&b).await;
    assert!(found.is_empty(), "{found:?}");
    assert!(b.load_snapshot("wf").await.unwrap().state.is_paused());
    let mut conn = raw_conn(&db).await;
    let held: Vec<String> = sayiir_diesel::schema::sayiir::claims::table
        .select(sayiir_diesel::schema::sayiir::claims::instance_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        held,
        ["live"],
        "the dead claim of the paused workflow is gone, a live one stays"
    );
}

/// A pause that maintenance applies to a workflow whose claim expired
/// (its holder cut off) ends that claim: evidence naming the worker and
/// its task, since the step runs again after unpause without a takeover.
#[tokio::test]
async fn a_request_applied_over_an_expired_claim_names_that_claim_as_evidence() {
    let db = test_db().await;
    let b = quick(&db, false).await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.claim_task(
        "wf",
        &tid("a"),
        "cut-off",
        Some(chrono::Duration::milliseconds(100)),
    )
    .await
    .unwrap()
    .unwrap();
    b.store_signal("wf", SignalKind::Pause, request("hold", "ops"))
        .await
        .unwrap();
    let (seen, _guard) = common::evidence::recorder();
    poll_after_grace(&b).await;
    assert!(b.load_snapshot("wf").await.unwrap().state.is_paused());
    let seen = seen.lock().unwrap().clone();
    let ended: Vec<_> = seen
        .iter()
        .filter(|e| e.message == "expired claim ended")
        .collect();
    assert_eq!(ended.len(), 1, "{seen:#?}");
    assert_eq!(ended[0].field("instance_id"), Some("wf"));
    assert_eq!(ended[0].field("previous_worker"), Some("cut-off"));
    assert_eq!(
        ended[0].field("previous_task"),
        Some(tid("a").to_string().as_str())
    );
    assert_eq!(ended[0].field("request"), Some("Pause"));
}
