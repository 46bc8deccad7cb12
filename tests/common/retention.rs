//! Seeding and reading workflows for the retention tests: states written
//! through the store (one history entry each), finished ones, and the ids
//! and history revisions left afterwards.

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_diesel::schema::sayiir::{history, workflows};
use sayiir_persistence::SnapshotStore;
use std::time::Duration;

use super::{Backend, at_task, tid};

/// An age nothing in a test reaches.
pub const HOUR: Duration = Duration::from_secs(3600);

/// Saves `id` through `writes` states (one history entry each): at task
/// t0, then t0 done and at t1, and so on; returns the last state.
pub async fn written(b: &Backend, id: &str, writes: usize) -> WorkflowSnapshot {
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
pub async fn finished(b: &Backend, id: &str, writes: usize, status: &str) {
    let mut s = written(b, id, writes).await;
    match status {
        "Completed" => s.mark_completed(Bytes::from_static(b"done")),
        "Failed" => s.mark_failed("boom".to_owned()),
        "Cancelled" => s.mark_cancelled(Some("r".into()), Some("u".into()), None),
        other => panic!("{other}"),
    }
    b.save_snapshot(&mut s).await.unwrap();
}

pub async fn ids(conn: &mut AsyncPgConnection) -> Vec<String> {
    workflows::table
        .select(workflows::instance_id)
        .order(workflows::instance_id)
        .load(conn)
        .await
        .unwrap()
}

pub async fn revisions(conn: &mut AsyncPgConnection, id: &str) -> Vec<i64> {
    history::table
        .filter(history::instance_id.eq(id))
        .select(history::revision)
        .order(history::revision)
        .load(conn)
        .await
        .unwrap()
}
