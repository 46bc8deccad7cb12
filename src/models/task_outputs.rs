//! `sayiir.task_outputs`: each task's serialized output, kept apart from
//! the snapshot blob so a save rewrites only the outputs that changed. The
//! workflow row's `members` says which of them belong to its state.

use chrono::{DateTime, Utc};
use diesel::PgArrayExpressionMethods;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;

use crate::error::Result;
use crate::schema::sayiir::{task_outputs, workflows};

/// One task output (`sayiir.task_outputs`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = task_outputs, check_for_backend(diesel::pg::Pg))]
pub struct TaskOutput {
    /// Instance id.
    pub instance_id: String,
    /// Task id (32 bytes).
    pub task_id: Vec<u8>,
    /// The task's serialized output.
    pub output: Vec<u8>,
    /// When these bytes were written.
    pub recorded_at: DateTime<Utc>,
}

/// The stored output of a task, member or not.
pub(crate) async fn find(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
) -> Result<Option<Vec<u8>>> {
    Ok(task_outputs::table
        .find((instance_id, task_id.as_bytes().to_vec()))
        .select(task_outputs::output)
        .first(conn)
        .await
        .optional()?)
}

/// The output of a task that is a member of the workflow's stored state,
/// in one statement: `None` when the workflow is absent, `Some(None)` when
/// the task is not a member (or has no output).
pub(crate) async fn member_output(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
) -> Result<Option<Option<Vec<u8>>>> {
    let id = task_id.as_bytes().to_vec();
    Ok(workflows::table
        .left_join(
            task_outputs::table.on(task_outputs::instance_id
                .eq(workflows::instance_id)
                .and(task_outputs::task_id.eq(id.clone()))
                .and(workflows::members.contains(vec![id]))),
        )
        .filter(workflows::instance_id.eq(instance_id))
        .select(task_outputs::output.nullable())
        .first(conn)
        .await
        .optional()?)
}
