//! The public typed query fragments run against real data.

mod common;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::models::{Claim, HistoryEntry, QueuedTask, Workflow};
use sayiir_diesel::reports;
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};

#[tokio::test]
async fn report_fragments_return_what_they_name() {
    let (db, b) = backend().await;
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
    let mut conn = raw_conn(&db).await;

    let completed: Vec<Workflow> = reports::workflows_in(sayiir_diesel::Status::Completed)
        .select(Workflow::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0].instance_id, "done");
    assert!(completed[0].finished_at.is_some());

    let old: i64 = reports::finished_before(chrono::Utc::now() + chrono::Duration::minutes(1))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(old, 1);

    let history: Vec<HistoryEntry> = reports::history_of("done")
        .select(HistoryEntry::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| h.status.as_str())
            .collect::<Vec<_>>(),
        ["InProgress", "Completed"]
    );

    let expired: Vec<Claim> = reports::expired_claims()
        .select(Claim::as_select())
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].instance_id, "claimed");

    let mut runnable: Vec<String> = reports::runnable_tasks()
        .select(QueuedTask::as_select())
        .load(&mut conn)
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
            .get_result::<i64>(&mut conn)
            .await
            .unwrap(),
        0
    );

    // Fragments compose with the user's own filters.
    let n: i64 = reports::workflows_in(sayiir_diesel::Status::InProgress)
        .filter(workflows::instance_id.like("q%"))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
