//! The `sayiir-persistence` store traits, one module per trait, plus the
//! shared write path and read helpers.
//!
//! Lock order, for every operation that locks more than one row:
//! **workflow row → claim row → signal rows → event rows → output, history
//! and queue rows**. Single-statement writes follow it too (the workflow row
//! is the first row they touch).

mod claim;
mod event;
mod maintenance;
mod seen;
pub use claim::MAINTENANCE_EVERY;
pub(crate) use seen::SeenRevisions;
mod signal;
mod snapshot;
mod task_result;
pub(crate) mod write;

use diesel::sql_types::{Array, Bytea, Nullable, Text};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;

use crate::error::{Error, Result};

/// A workflow row with its members' outputs, as [`crate::queries::LOAD_SNAPSHOT`] returns it.
#[derive(diesel::QueryableByName)]
pub(crate) struct StoredSnapshot {
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

impl StoredSnapshot {
    /// Decodes the blob and puts back the outputs and `trace_parent`.
    pub(crate) fn into_snapshot<C: SnapshotCodec>(self, codec: &C) -> Result<WorkflowSnapshot> {
        let mut snapshot = crate::codec::decode(codec, &self.snapshot)?;
        let outputs = self
            .task_ids
            .iter()
            .map(|id| task_id(id))
            .zip(self.outputs.into_iter().map(bytes::Bytes::from))
            .map(|(id, out)| id.map(|id| (id, out)))
            .collect::<Result<Vec<_>>>()?;
        snapshot.hydrate_task_outputs(outputs);
        snapshot.trace_parent = self.trace_parent;
        snapshot.output_unflushed = false;
        Ok(snapshot)
    }
}

/// Parses a stored 32-byte task id.
pub(crate) fn task_id(bytes: &[u8]) -> Result<TaskId> {
    TaskId::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("stored task id of {} bytes: {e}", bytes.len())))
}

/// Every member of the snapshot with its output, in no particular order.
pub(crate) fn member_outputs(snapshot: &WorkflowSnapshot) -> Vec<(TaskId, bytes::Bytes)> {
    snapshot
        .get_all_task_results()
        .map(|members| {
            members
                .values()
                .map(|r| (r.task_id, r.output.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The input of the task a snapshot is at (SPEC 1.5): the initial input
/// while nothing is completed, else the last completed task's output.
/// `None` means the task cannot be dispatched.
pub(crate) fn task_input(snapshot: &WorkflowSnapshot) -> Option<bytes::Bytes> {
    match snapshot.get_all_task_results() {
        Some(members) if !members.is_empty() => snapshot.get_last_task_output(),
        _ => snapshot.initial_input.clone(),
    }
}
