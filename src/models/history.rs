//! `sayiir.history`: an immutable entry per accepted workflow write (when
//! history is kept), numbered by the workflow's revision. Crash recovery
//! reads it to find a task's input; retention prunes it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;

use crate::error::Result;
use crate::kinds::{Position, Status};
use crate::schema::sayiir::history;

/// One immutable history entry (`sayiir.history`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = history, check_for_backend(diesel::pg::Pg))]
pub struct HistoryEntry {
    /// Instance id.
    pub instance_id: String,
    /// The workflow's revision this entry records.
    pub revision: i64,
    /// Status at that revision.
    pub status: Status,
    /// Position variant at that revision.
    pub position_kind: Option<Position>,
    /// Current task at that revision.
    pub current_task_id: Option<Vec<u8>>,
    /// Framed snapshot at that revision (outputs stripped).
    pub snapshot: Vec<u8>,
    /// When it was written.
    pub recorded_at: DateTime<Utc>,
}

/// The blobs of the newest `limit` entries at which the instance was at
/// `task_id`, newest first.
pub(crate) async fn snapshots_at_task(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
    limit: i64,
) -> Result<Vec<Vec<u8>>> {
    Ok(history::table
        .filter(history::instance_id.eq(instance_id))
        .filter(history::current_task_id.eq(task_id.as_bytes().to_vec()))
        .order(history::revision.desc())
        .select(history::snapshot)
        .limit(limit)
        .load(conn)
        .await?)
}
