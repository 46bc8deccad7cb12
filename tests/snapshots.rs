//! SnapshotStore and TaskResultStore against a real PostgreSQL (SPEC 2, 5).

mod common;

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshotState};
use sayiir_diesel::schema::sayiir::{
    claims, events, history, signals, task_outputs, tasks, workflows,
};
use sayiir_persistence::{BackendError, SnapshotStore, TaskResultStore};

#[tokio::test]
async fn save_load_round_trip_and_not_found() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf-1", "step-1");
    s.trace_parent = Some("00-abc-def-01".into());
    s.task_tags = vec!["gpu".into(), "cuda".into()];
    s.task_priority = Some(2);
    b.save_snapshot(&mut s).await.unwrap();

    let loaded = b.load_snapshot("wf-1").await.unwrap();
    assert_eq!(&*loaded.instance_id, "wf-1");
    assert_eq!(loaded.definition_hash, def_hash());
    assert_eq!(loaded.current_task_id(), Some(tid("step-1")));
    assert_eq!(loaded.trace_parent.as_deref(), Some("00-abc-def-01"));
    assert_eq!(
        loaded.task_tags,
        vec!["gpu".to_string(), "cuda".to_string()]
    );
    assert_eq!(loaded.task_priority, Some(2));
    assert_eq!(loaded.initial_input.as_deref(), Some(&b"in"[..]));
    assert!(!loaded.output_unflushed);

    match b.load_snapshot("missing").await {
        Err(BackendError::NotFound(id)) => assert_eq!(id, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn second_save_overwrites_position_and_every_member_output_is_kept() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap();
    // One save carrying two new outputs (e.g. a task followed by a delay).
    s.mark_task_completed(tid("a"), Bytes::from_static(b"out-a"));
    s.mark_task_completed(tid("b"), Bytes::from_static(b"out-b"));
    s.update_position(ExecutionPosition::AtTask { task_id: tid("c") });
    b.save_snapshot(&mut s).await.unwrap();
    assert!(!s.output_unflushed);
    // The argument comes back with its outputs in place.
    assert_eq!(
        s.get_task_result_bytes(&tid("a")).as_deref(),
        Some(&b"out-a"[..])
    );

    let loaded = b.load_snapshot("wf").await.unwrap();
    assert_eq!(loaded.current_task_id(), Some(tid("c")));
    assert_eq!(
        loaded.get_task_result_bytes(&tid("a")).as_deref(),
        Some(&b"out-a"[..])
    );
    assert_eq!(
        loaded.get_task_result_bytes(&tid("b")).as_deref(),
        Some(&b"out-b"[..])
    );
    assert_eq!(
        loaded.get_last_task_output().as_deref(),
        Some(&b"out-b"[..])
    );
}

#[tokio::test]
async fn removed_members_stay_gone_and_empty_outputs_are_real_values() {
    let (_db, b) = backend().await;
    let mut s = at_task("wf", "body");
    s.mark_task_completed(tid("body"), Bytes::from_static(b"first"));
    b.save_snapshot(&mut s).await.unwrap();
    // A loop removes the member and saves.
    s.remove_task_result(&tid("body"));
    b.save_snapshot(&mut s).await.unwrap();
    let loaded = b.load_snapshot("wf").await.unwrap();
    assert!(loaded.get_task_result(&tid("body")).is_none());
    assert_eq!(output_of(&b, "wf", "body").await, None);
    // The next iteration produces an empty output: it must not read as "first".
    s.mark_task_completed(tid("body"), Bytes::new());
    b.save_snapshot(&mut s).await.unwrap();
    let loaded = b.load_snapshot("wf").await.unwrap();
    assert_eq!(
        loaded.get_task_result_bytes(&tid("body")),
        Some(Bytes::new())
    );
    assert_eq!(output_of(&b, "wf", "body").await, Some(Bytes::new()));
}

#[tokio::test]
async fn terminal_states_are_never_overwritten() {
    let (db, b) = backend().await;
    for (id, finish) in [("done", 0), ("failed", 1), ("cancelled", 2)] {
        let mut s = at_task(id, "a");
        s.mark_task_completed(tid("a"), Bytes::from_static(b"kept"));
        b.save_snapshot(&mut s).await.unwrap();
        let mut stale = s.clone();
        match finish {
            0 => s.mark_completed(Bytes::from_static(b"final")),
            1 => s.mark_failed("boom".into()),
            _ => s.mark_cancelled(Some("why".into()), Some("me".into()), None),
        }
        b.save_snapshot(&mut s).await.unwrap();
        // A stale worker's save of the old state returns Ok and changes nothing.
        stale.mark_task_completed(tid("a"), Bytes::from_static(b"stale"));
        stale.update_position(ExecutionPosition::AtTask { task_id: tid("b") });
        b.save_snapshot(&mut stale).await.unwrap();
        let loaded = b.load_snapshot(id).await.unwrap();
        assert!(loaded.state.is_terminal(), "{id}: {:?}", loaded.state);
        assert_eq!(
            output_of(&b, id, "a").await.as_deref(),
            Some(&b"kept"[..]),
            "{id}: a refused save must not touch outputs"
        );
    }
    let loaded = b.load_snapshot("done").await.unwrap();
    assert_eq!(loaded.final_output_bytes().as_deref(), Some(&b"final"[..]));
    // A refused save writes no history and no queue row.
    let mut conn = raw_conn(&db).await;
    let revisions: Vec<i64> = history::table
        .filter(history::instance_id.eq("done"))
        .select(history::revision)
        .order(history::revision)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(revisions, vec![1, 2]);
    let queued: i64 = tasks::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(queued, 0);
    let finished: Option<chrono::DateTime<chrono::Utc>> = workflows::table
        .find("done")
        .select(workflows::finished_at)
        .first(&mut conn)
        .await
        .unwrap();
    assert!(finished.is_some());
}

/// A Cancel request, a claim on task `a` and a buffered `go` event for `id`.
async fn add_signal_claim_and_event(conn: &mut diesel_async::AsyncPgConnection, id: &str) {
    diesel::insert_into(signals::table)
        .values((
            signals::instance_id.eq(id),
            signals::kind.eq("Cancel"),
            signals::requested_at.eq(chrono::Utc::now()),
        ))
        .execute(conn)
        .await
        .unwrap();
    diesel::insert_into(claims::table)
        .values((
            claims::instance_id.eq(id),
            claims::task_id.eq(tid("a").as_bytes().to_vec()),
            claims::worker_id.eq("w"),
        ))
        .execute(conn)
        .await
        .unwrap();
    buffer_event(conn, id).await;
}

/// A buffered `go` event for `id`.
async fn buffer_event(conn: &mut diesel_async::AsyncPgConnection, id: &str) {
    diesel::insert_into(events::table)
        .values((
            events::instance_id.eq(id),
            events::signal_name.eq("go"),
            events::payload.eq(vec![1u8]),
        ))
        .execute(conn)
        .await
        .unwrap();
}

/// Rows of `id` in task_outputs, history, tasks, claims, signals, events.
async fn rows_of(conn: &mut diesel_async::AsyncPgConnection, id: &str) -> [i64; 6] {
    macro_rules! count {
        ($t:ident) => {
            $t::table
                .filter($t::instance_id.eq(id))
                .count()
                .get_result::<i64>(conn)
                .await
                .unwrap()
        };
    }
    [
        count!(task_outputs),
        count!(history),
        count!(tasks),
        count!(claims),
        count!(signals),
        count!(events),
    ]
}

/// Events buffered for `id`.
async fn events_of(conn: &mut diesel_async::AsyncPgConnection, id: &str) -> i64 {
    events::table
        .filter(events::instance_id.eq(id))
        .count()
        .get_result(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn delete_removes_every_row_and_missing_is_not_found() {
    let (db, b) = backend().await;
    let mut s = at_task("wf", "a");
    s.mark_task_completed(tid("a"), Bytes::from_static(b"x"));
    b.save_snapshot(&mut s).await.unwrap();
    let mut other = at_task("other", "a");
    b.save_snapshot(&mut other).await.unwrap();
    let mut conn = raw_conn(&db).await;
    for id in ["wf", "other"] {
        add_signal_claim_and_event(&mut conn, id).await;
    }

    b.delete_snapshot("wf").await.unwrap();
    assert!(matches!(
        b.load_snapshot("wf").await,
        Err(BackendError::NotFound(_))
    ));
    assert_eq!(rows_of(&mut conn, "wf").await, [0; 6]);
    // The other instance is untouched.
    assert_eq!(events_of(&mut conn, "other").await, 1);

    // Deleting a missing id is NotFound and leaves events buffered for it alone.
    buffer_event(&mut conn, "ghost").await;
    assert!(
        matches!(b.delete_snapshot("ghost").await, Err(BackendError::NotFound(id)) if id == "ghost")
    );
    assert_eq!(events_of(&mut conn, "ghost").await, 1);
}

#[tokio::test]
async fn list_returns_exactly_the_saved_ids() {
    let (_db, b) = backend().await;
    assert!(b.list_snapshots().await.unwrap().is_empty());
    for id in ["a", "b", "c"] {
        b.save_snapshot(&mut at_task(id, "t")).await.unwrap();
    }
    let mut ids = b.list_snapshots().await.unwrap();
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[tokio::test]
async fn save_task_result_records_and_respects_state() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.save_task_result("wf", &tid("a"), Bytes::from_static(b"out"))
        .await
        .unwrap();
    let loaded = b.load_snapshot("wf").await.unwrap();
    assert_eq!(
        loaded.get_task_result_bytes(&tid("a")).as_deref(),
        Some(&b"out"[..])
    );
    assert_eq!(loaded.get_last_task_output().as_deref(), Some(&b"out"[..]));
    assert_eq!(
        loaded.current_task_id(),
        Some(tid("a")),
        "position unchanged"
    );

    assert!(matches!(
        b.save_task_result("missing", &tid("a"), Bytes::new()).await,
        Err(BackendError::NotFound(id)) if id == "missing"
    ));

    let mut done = at_task("done", "a");
    done.mark_completed(Bytes::from_static(b"final"));
    b.save_snapshot(&mut done).await.unwrap();
    b.save_task_result("done", &tid("x"), Bytes::from_static(b"late"))
        .await
        .unwrap();
    assert_eq!(output_of(&b, "done", "x").await, None);
}

#[tokio::test]
async fn concurrent_save_task_result_for_eight_tasks_keeps_all_eight() {
    let (_db, b) = backend().await;
    for round in 0..5 {
        let id = format!("fork-{round}");
        b.save_snapshot(&mut at_task(&id, "fork")).await.unwrap();
        let mut handles = Vec::new();
        for i in 0..8 {
            let b = b.clone();
            let id = id.clone();
            handles.push(tokio::spawn(async move {
                b.save_task_result(
                    &id,
                    &tid(&format!("branch-{i}")),
                    Bytes::from(format!("out-{i}")),
                )
                .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let loaded = b.load_snapshot(&id).await.unwrap();
        for i in 0..8 {
            assert_eq!(
                loaded.get_task_result_bytes(&tid(&format!("branch-{i}"))),
                Some(Bytes::from(format!("out-{i}"))),
                "round {round}, branch {i}"
            );
        }
    }
}

#[tokio::test]
async fn task_results_survive_completion() {
    let (_db, b) = backend().await;
    // Recorded on a NotStarted snapshot.
    let mut s = sayiir_core::snapshot::WorkflowSnapshot::new("wf", def_hash());
    s.mark_task_completed(tid("a"), Bytes::from_static(b"A"));
    b.save_snapshot(&mut s).await.unwrap();
    assert_eq!(output_of(&b, "wf", "a").await.as_deref(), Some(&b"A"[..]));
    assert_eq!(output_of(&b, "wf", "nope").await, None);
    assert!(matches!(
        b.load_task_result("missing", &tid("a")).await,
        Err(BackendError::NotFound(_))
    ));
    s.mark_completed(Bytes::from_static(b"final"));
    b.save_snapshot(&mut s).await.unwrap();
    assert_eq!(output_of(&b, "wf", "a").await.as_deref(), Some(&b"A"[..]));
    assert!(matches!(
        b.load_snapshot("wf").await.unwrap().state,
        WorkflowSnapshotState::Completed { .. }
    ));
}

#[tokio::test]
async fn history_is_appended_and_immutable() {
    let (db, b) = backend().await;
    let mut s = at_task("wf", "a");
    b.save_snapshot(&mut s).await.unwrap();
    s.update_position(ExecutionPosition::AtTask { task_id: tid("b") });
    b.save_snapshot(&mut s).await.unwrap();
    b.save_task_result("wf", &tid("b"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let mut conn = raw_conn(&db).await;
    let rows: Vec<(i64, Option<Vec<u8>>)> = history::table
        .filter(history::instance_id.eq("wf"))
        .select((history::revision, history::current_task_id))
        .order(history::revision)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].1.as_deref(), Some(&tid("a").as_bytes()[..]));
    assert_eq!(rows[1].1.as_deref(), Some(&tid("b").as_bytes()[..]));
    let err = diesel::update(history::table)
        .set(history::status.eq("Completed"))
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
