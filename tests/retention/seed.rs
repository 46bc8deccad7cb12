//! Seeding for the retention steps' tests: workflows in every state,
//! backdated rows, and what a step should remove, counted from the rows.

use bytes::Bytes;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::snapshot::{ExecutionPosition, PauseRequest};
use sayiir_diesel::retention::PruneReport;
use sayiir_diesel::schema::sayiir::{claims, events, history, task_outputs, workflows};
use sayiir_persistence::{SignalStore, SnapshotStore};

use super::common::retention::*;
use super::common::*;

pub async fn paused(b: &Backend, id: &str, writes: usize) {
    let mut s = written(b, id, writes).await;
    s.mark_paused(&PauseRequest::new(Some("r".into()), None));
    b.save_snapshot(&mut s).await.unwrap();
}

pub async fn backdate_finished(conn: &mut AsyncPgConnection, ids: &[&str], by: chrono::Duration) {
    diesel::update(workflows::table.filter(workflows::instance_id.eq_any(ids)))
        .set(workflows::finished_at.eq(Utc::now() - by))
        .execute(conn)
        .await
        .unwrap();
}

/// History refuses updates (a trigger); a test may lift that to age rows.
pub async fn backdate_history(
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

pub async fn backdate_events(conn: &mut AsyncPgConnection, id: &str, by: chrono::Duration) {
    diesel::update(events::table.filter(events::instance_id.eq(id)))
        .set(events::sent_at.eq(Utc::now() - by))
        .execute(conn)
        .await
        .unwrap();
}

pub async fn rows_of(conn: &mut AsyncPgConnection, id: &str) -> (i64, i64, i64) {
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

pub async fn event_ids(conn: &mut AsyncPgConnection) -> Vec<String> {
    events::table
        .select(events::instance_id)
        .order(events::instance_id)
        .load(conn)
        .await
        .unwrap()
}

pub fn n(x: i64) -> u64 {
    u64::try_from(x).unwrap()
}

/// The finished workflows old enough to go and claimed by nobody.
pub const OLD_UNCLAIMED: [&str; 4] = [
    "old-completed",
    "old-failed",
    "old-cancelled",
    "old-claim-expired",
];

/// Old finished workflows (two of them with a claim: live, expired), a
/// recent one, a running one with a stray `finished_at`, a paused one,
/// and events on some of them.
pub async fn seed_old_recent_and_live(b: &Backend, conn: &mut AsyncPgConnection) {
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
pub async fn report_for_old_unclaimed(conn: &mut AsyncPgConnection) -> PruneReport {
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

/// `id` written three times with history, then three more times through a
/// backend that keeps none (revision 6, history entries 1 to 3).
pub async fn written_with_history_off_at_the_end(b: &Backend, url: &str, id: &str) {
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
