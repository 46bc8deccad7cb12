//! `show` and `output_previews` against the rows of one instance.

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use sayiir_diesel_dashboard::inspect;

use crate::common::*;

/// `shown`: InProgress at a task, claimed by `w9` for an hour, a pending
/// pause, events (two `go`, one `other`), outputs of 2048 and 5 bytes, and
/// five history entries of growing size.
const SHOWN: &str = "
    INSERT INTO sayiir.workflows
        (instance_id, definition_hash, status, position_kind, current_task_id, snapshot,
         trace_parent, revision)
    VALUES ('shown', sha256('d'::bytea), 'InProgress', 'AtTask', sha256('c'::bytea),
            convert_to(repeat('s', 300), 'UTF8'), '00-trace', 5);
    INSERT INTO sayiir.tasks
        (instance_id, position_kind, task_id, input_ready, priority, tags, aged_from, stalls,
         claimed_until)
    VALUES ('shown', 'AtTask', sha256('c'::bytea), true, 2, ARRAY['gpu', 'eu'], now(), 1,
            now() + interval '1 hour');
    INSERT INTO sayiir.claims (instance_id, task_id, worker_id, claimed_at, expires_at)
    VALUES ('shown', sha256('c'::bytea), 'w9', now() - interval '1 minute',
            now() + interval '1 hour');
    INSERT INTO sayiir.signals (instance_id, kind, reason, requested_by, requested_at)
    VALUES ('shown', 'Pause', 'deploy', 'ops', now());
    INSERT INTO sayiir.events (instance_id, signal_name, payload)
    VALUES ('shown', 'other', '\\x01'), ('shown', 'go', '\\x02'), ('shown', 'go', '\\x03');
    INSERT INTO sayiir.task_outputs (instance_id, task_id, output)
    VALUES ('shown', sha256('a'::bytea), convert_to(repeat('a', 2048), 'UTF8')),
           ('shown', sha256('b'::bytea), convert_to('bbbbb', 'UTF8'));
    INSERT INTO sayiir.history (instance_id, revision, status, position_kind, snapshot)
    SELECT 'shown', r, 'InProgress', 'AtTask', convert_to(repeat('h', r * 10), 'UTF8')
    FROM generate_series(1, 5) AS r;";

#[tokio::test]
async fn show_holds_the_rows_of_one_instance() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    conn.batch_execute(SHOWN).await.unwrap();
    let sha = async |conn: &mut AsyncPgConnection, text: &str| {
        names(
            conn,
            &format!("SELECT encode(sha256('{text}'::bytea), 'hex') AS name"),
        )
        .await
        .remove(0)
    };
    let d = inspect::show(&mut conn, "shown", 2).await.unwrap().unwrap();
    assert_eq!(d.instance_id, "shown");
    assert_eq!(
        (d.status, d.position.as_deref()),
        ("InProgress", Some("AtTask"))
    );
    assert_eq!(d.current_task, Some(sha(&mut conn, "c").await));
    assert_eq!(d.definition, sha(&mut conn, "d").await);
    assert_eq!((d.revision, d.snapshot_bytes), (5, 300));
    assert_eq!(d.trace_parent.as_deref(), Some("00-trace"));
    assert_eq!((d.finished_at.as_deref(), d.error.as_deref()), (None, None));
    let q = d.queue.as_ref().unwrap();
    assert_eq!((q.kind, q.priority, q.stalls), ("AtTask", 2, 1));
    assert_eq!(q.tags, ["gpu", "eu"]);
    assert!(q.input_ready && !q.completed && q.quarantined.is_none());
    let claim = d.claim.as_ref().unwrap();
    assert_eq!((claim.worker.as_str(), claim.expired), ("w9", false));
    assert!((55_000..120_000).contains(&claim.held_ms), "{claim:?}");
    assert_eq!(d.pending_requests.len(), 1);
    assert_eq!(d.pending_requests[0].kind, "Pause");
    assert_eq!(d.pending_requests[0].requested_by.as_deref(), Some("ops"));
    let events: Vec<(&str, i64)> = d
        .buffered_events
        .iter()
        .map(|e| (e.signal_name.as_str(), e.count))
        .collect();
    assert_eq!(events, [("go", 2), ("other", 1)]);
    let outputs: Vec<(String, i32)> = d
        .outputs
        .iter()
        .map(|o| (o.task.clone(), o.bytes))
        .collect();
    assert_eq!(
        outputs,
        [
            (sha(&mut conn, "a").await, 2048),
            (sha(&mut conn, "b").await, 5)
        ]
    );
    assert_eq!(d.history_entries, 5);
    let history: Vec<(i64, i32)> = d.history.iter().map(|h| (h.revision, h.bytes)).collect();
    assert_eq!(history, [(5, 50), (4, 40)]);

    let previews = inspect::output_previews(&mut conn, "shown", 4)
        .await
        .unwrap();
    assert_eq!(
        previews,
        [
            (sha(&mut conn, "a").await, b"aaaa".to_vec()),
            (sha(&mut conn, "b").await, b"bbbb".to_vec())
        ]
    );
    assert!(matches!(
        inspect::output_previews(&mut conn, "shown", -1).await,
        Err(sayiir_diesel_dashboard::Error::Input(_))
    ));
}

#[tokio::test]
async fn a_missing_workflow_is_none() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    assert!(
        inspect::show(&mut conn, "nope", 10)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        inspect::output_previews(&mut conn, "nope", 10)
            .await
            .unwrap()
            .is_empty()
    );
}
