//! Retention steps: each removes exactly what it should and reports it,
//! caps and batches work, and `prune` runs the configured steps (plans:
//! `retention_plans.rs`; the background pruner and pruning under load:
//! `retention_pruner.rs`; the seeding these tests share: `retention/seed.rs`).

mod common;
#[path = "retention/seed.rs"]
mod seed;

use std::time::Duration;

use bytes::Bytes;
use common::retention::*;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::retention::{self, Batching, PruneReport, RetentionPolicy};
use sayiir_diesel::schema::sayiir::{claims, history, workflows};
use sayiir_persistence::SignalStore;

use seed::*;

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
