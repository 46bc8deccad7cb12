//! `sayiir.workflows`: one row per workflow instance, the source of truth.
//! Every write goes through [`write()`], the one statement that keeps the
//! row, its outputs, its history, its dispatch-queue row and its wakeup in
//! agreement; every multi-row operation locks this row first.

mod queue_row;
mod write;

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bytea, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;

use crate::error::{Error, Result};
use crate::kinds::{Position, Status};
use crate::queries::Raw;
use crate::schema::sayiir::workflows;

#[cfg(test)]
pub(crate) use write::WRITE;
pub(crate) use write::{Write, check_snapshot_text, write};

/// The snapshot with its members' outputs, in one consistent read.
pub(crate) const LOAD: &str = include_str!("workflows/load.sql");

/// One workflow instance (`sayiir.workflows`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workflows, check_for_backend(diesel::pg::Pg))]
pub struct Workflow {
    /// Instance id (primary key).
    pub instance_id: String,
    /// Definition hash (32 bytes).
    pub definition_hash: Vec<u8>,
    /// `InProgress`, `Paused`, `Completed`, `Failed` or `Cancelled`.
    pub status: Status,
    /// Position variant name for InProgress and Paused (`AtTask`, `AtDelay`…).
    pub position_kind: Option<Position>,
    /// The task an InProgress instance is at.
    pub current_task_id: Option<Vec<u8>>,
    /// Framed snapshot with outputs stripped.
    pub snapshot: Vec<u8>,
    /// Task ids whose outputs belong to the state (see the migration).
    pub members: Vec<Vec<u8>>,
    /// W3C trace context of the workflow.
    pub trace_parent: Option<String>,
    /// Error message of a Failed workflow.
    pub error: Option<String>,
    /// Number of accepted writes (numbers `history`).
    pub revision: i64,
    /// First write.
    pub created_at: DateTime<Utc>,
    /// Last write.
    pub updated_at: DateTime<Utc>,
    /// When it reached Completed, Failed or Cancelled.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A workflow row read under its lock: what a read-modify-write needs.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = workflows, check_for_backend(diesel::pg::Pg))]
pub(crate) struct Locked {
    /// The stored status.
    pub status: Status,
    /// Framed snapshot with outputs stripped.
    pub snapshot: Vec<u8>,
    /// Kept beside the blob, which does not carry it.
    pub trace_parent: Option<String>,
}

impl Locked {
    /// The stored snapshot, decoded, with its trace parent put back (its
    /// outputs stay stripped: the write only sends the ones it adds).
    pub(crate) fn decode<C: SnapshotCodec>(self, codec: &C) -> Result<WorkflowSnapshot> {
        let mut snapshot = crate::codec::decode(codec, &self.snapshot)?;
        snapshot.trace_parent = self.trace_parent;
        Ok(snapshot)
    }
}

/// Locks the workflow row (`FOR NO KEY UPDATE`, so inserts of rows that
/// reference it do not wait) and reads it. A statement of its own, never a
/// join, so the lock order (workflow row first) holds everywhere.
pub(crate) async fn lock(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
) -> Result<Option<Locked>> {
    Ok(workflows::table
        .find(instance_id)
        .select(Locked::as_select())
        .for_no_key_update()
        .get_result(conn)
        .await
        .optional()?)
}

/// Locks the workflow row as every writer does first (SPEC 3.9), reading
/// nothing else; `false` when there is no such row.
pub(crate) async fn lock_row(conn: &mut AsyncPgConnection, instance_id: &str) -> Result<bool> {
    Ok(workflows::table
        .find(instance_id)
        .select(workflows::instance_id)
        .for_no_key_update()
        .get_result::<String>(conn)
        .await
        .optional()?
        .is_some())
}

/// As [`lock`], but `None` at once when another session holds the row
/// (`SKIP LOCKED`); also returns the database's `now()`, the clock every
/// due time is compared with.
pub(crate) async fn lock_unless_busy(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
) -> Result<Option<(Locked, DateTime<Utc>)>> {
    Ok(workflows::table
        .find(instance_id)
        .select((Locked::as_select(), sql::<Timestamptz>("now()")))
        .for_no_key_update()
        .skip_locked()
        .get_result(conn)
        .await
        .optional()?)
}

/// A workflow row with its members' outputs, as [`LOAD`] and the finders
/// return it.
#[derive(QueryableByName)]
pub(crate) struct Stored {
    #[diesel(sql_type = Text)]
    pub instance_id: String,
    #[diesel(sql_type = Bytea)]
    pub snapshot: Vec<u8>,
    #[diesel(sql_type = Nullable<Text>)]
    pub trace_parent: Option<String>,
    #[diesel(sql_type = Array<Bytea>)]
    pub task_ids: Vec<Vec<u8>>,
    #[diesel(sql_type = Array<Bytea>)]
    pub outputs: Vec<Vec<u8>>,
}

impl Stored {
    /// Decodes the blob and puts back the outputs and `trace_parent`.
    pub(crate) fn into_snapshot<C: SnapshotCodec>(self, codec: &C) -> Result<WorkflowSnapshot> {
        let mut snapshot = crate::codec::decode(codec, &self.snapshot)?;
        let outputs = self
            .task_ids
            .iter()
            .map(|id| crate::codec::task_id(id))
            .zip(self.outputs.into_iter().map(bytes::Bytes::from))
            .map(|(id, out)| id.map(|id| (id, out)))
            .collect::<Result<Vec<_>>>()?;
        snapshot.hydrate_task_outputs(outputs);
        snapshot.trace_parent = self.trace_parent;
        snapshot.output_unflushed = false;
        Ok(snapshot)
    }
}

/// The hydrated snapshot, in one statement; `None` when absent.
pub(crate) async fn load(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
) -> Result<Option<Stored>> {
    Ok(Raw::new(LOAD)
        .bind::<Text, _>(instance_id)
        .get_result(conn)
        .await
        .optional()?)
}

/// Whether the stored blob of the workflow is `blob` (a write whose commit
/// is in doubt landed, or one that wrote the same state did): one
/// statement, the comparison made by the server.
pub(crate) async fn holds(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    blob: &[u8],
) -> Result<bool> {
    Ok(workflows::table
        .find(instance_id)
        .select(workflows::snapshot.eq(blob))
        .first::<bool>(conn)
        .await
        .optional()?
        .unwrap_or(false))
}

/// Deletes the workflow; its outputs, history, queue row, claim and
/// signals go with it (foreign keys cascade). `NotFound` when absent.
pub(crate) async fn delete(conn: &mut AsyncPgConnection, instance_id: &str) -> Result<()> {
    let deleted = diesel::delete(workflows::table.find(instance_id))
        .execute(conn)
        .await?;
    if deleted == 0 {
        return Err(Error::NotFound(instance_id.to_owned()));
    }
    Ok(())
}

/// Every instance id, unordered.
pub(crate) async fn ids(conn: &mut AsyncPgConnection) -> Result<Vec<String>> {
    Ok(workflows::table
        .select(workflows::instance_id)
        .load(conn)
        .await?)
}
