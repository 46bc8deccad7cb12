//! `stuck`: each kind of row that is not moving, found and reported, run
//! as the real binary against a real database.

mod common;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_diesel::schema::sayiir::tasks;
use sayiir_diesel_testkit::TestDatabase;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};

/// One row of each kind `stuck` reports (lapsed, long, stranded, no-input,
/// bad-blob, failing, overslept), and a healthy one.
async fn seed_each_kind(db: &TestDatabase, b: &Backend) {
    b.save_snapshot(&mut at_task("lapsed", "a")).await.unwrap();
    b.claim_task("lapsed", &tid("a"), "gone", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    b.save_snapshot(&mut at_task("long", "a")).await.unwrap();
    b.claim_task("long", &tid("a"), "slow", Some(chrono::Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    let mut done = at_task("stranded", "a");
    done.mark_task_completed(tid("a"), Bytes::from_static(b"out"));
    b.save_snapshot(&mut done).await.unwrap();
    let mut no_input = WorkflowSnapshot::new("no-input", def_hash());
    no_input.update_position(ExecutionPosition::AtTask { task_id: tid("a") });
    b.save_snapshot(&mut no_input).await.unwrap();
    for id in ["bad-blob", "failing", "healthy"] {
        b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    }
    save_overdue_delay(b, "overslept").await;
    quarantine_and_stall(db).await;
}

/// bad-blob is quarantined (retry in an hour); failing was released
/// without progress four times.
async fn quarantine_and_stall(db: &TestDatabase) {
    let mut conn = raw_conn(db).await;
    diesel::update(tasks::table.find("bad-blob"))
        .set((
            tasks::quarantined.eq("cannot decode"),
            tasks::retry_at.eq(chrono::Utc::now() + chrono::Duration::hours(1)),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::update(tasks::table.find("failing"))
        .set(tasks::stalls.eq(4))
        .execute(&mut conn)
        .await
        .unwrap();
}

fn assert_every_kind_at_zero_thresholds(db: &TestDatabase) {
    let args = [
        "stuck",
        "--json",
        "--held-longer-than",
        "0s",
        "--idle-for",
        "0s",
    ];
    let s = cli(db, &args).json();
    assert_eq!(ids(&s["expired_claims"]), ["lapsed"]);
    assert_eq!(s["expired_claims"][0]["worker"], "gone");
    assert_eq!(ids(&s["long_held_claims"]), ["long"], "live claims only");
    assert_eq!(ids(&s["quarantined"]), ["bad-blob"]);
    assert_eq!(s["quarantined"][0]["quarantined"], "cannot decode");
    assert_eq!(ids(&s["output_saved_not_moving"]), ["stranded"]);
    assert_eq!(ids(&s["overdue_parks"]), ["overslept"]);
    assert!(s["overdue_parks"][0]["wake_at"].is_string());
    assert_eq!(ids(&s["input_not_ready"]), ["no-input"]);
    assert_eq!(ids(&s["repeatedly_released"]), ["failing"]);
    assert_eq!(s["repeatedly_released"][0]["stalls"], 4);
}

/// With the default thresholds, fresh rows are not reported.
fn assert_default_thresholds_pass_fresh_rows_by(db: &TestDatabase) {
    let s = cli(db, &["stuck", "--json"]).json();
    assert_eq!(ids(&s["long_held_claims"]), Vec::<String>::new());
    assert_eq!(ids(&s["output_saved_not_moving"]), Vec::<String>::new());
    assert_eq!(
        ids(&s["overdue_parks"]),
        ["overslept"],
        "an hour past its time"
    );
    assert_eq!(ids(&s["expired_claims"]), ["lapsed"]);
}

fn assert_stuck_text(db: &TestDatabase) {
    let text = cli(db, &["stuck"]).ok().to_owned();
    assert!(
        text.contains("expired claims: 1") && text.contains("lapsed"),
        "{text}"
    );
    assert!(text.contains("quarantined rows: 1"), "{text}");
}

#[tokio::test]
async fn stuck_lists_each_kind_of_row_that_is_not_moving() {
    let (db, b) = backend().await;
    seed_each_kind(&db, &b).await;
    assert_every_kind_at_zero_thresholds(&db);
    assert_default_thresholds_pass_fresh_rows_by(&db);
    assert_stuck_text(&db);
}
