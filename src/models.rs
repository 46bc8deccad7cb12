//! Typed rows of every `sayiir` table, for your own Diesel queries.
//!
//! Each struct is `Queryable + Selectable` and checked against
//! [`crate::schema`] at compile time. Hash columns (`definition_hash`,
//! `task_id`, …) hold the raw 32 bytes of the SHA-256 id; the snapshot
//! blobs are framed by `sayiir_core::snapshot_format` with outputs stripped.
//! Write through the store traits, not these rows: the backend keeps the
//! columns, the queue and the blobs consistent.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::kinds::{QueuedPosition, Status};
use crate::schema::sayiir::{claims, events, history, signals, task_outputs, tasks, workflows};

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
    pub position_kind: Option<String>,
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
    pub position_kind: Option<String>,
    /// Current task at that revision.
    pub current_task_id: Option<Vec<u8>>,
    /// Framed snapshot at that revision (outputs stripped).
    pub snapshot: Vec<u8>,
    /// When it was written.
    pub recorded_at: DateTime<Utc>,
}

/// One dispatch-queue row (`sayiir.tasks`): an InProgress instance at a task
/// or parked at a delay or signal.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg))]
pub struct QueuedTask {
    /// Instance id.
    pub instance_id: String,
    /// At a task, or parked at a delay or a signal.
    pub position_kind: QueuedPosition,
    /// The task to run (at a park: the task after it).
    pub task_id: Option<Vec<u8>>,
    /// The delay or signal node id of a park.
    pub park_id: Option<Vec<u8>>,
    /// The awaited signal's name.
    pub signal_name: Option<String>,
    /// Delay expiry or signal timeout.
    pub wake_at: Option<DateTime<Utc>>,
    /// The task's output is already recorded.
    pub completed: bool,
    /// The task's input can be resolved.
    pub input_ready: bool,
    /// Priority (1 = highest, 3 = default).
    pub priority: i16,
    /// Tags a worker must have.
    pub tags: Vec<String>,
    /// Retry back-off end of the current task.
    pub retry_at: Option<DateTime<Utc>>,
    /// Worker the current task last failed on.
    pub failed_worker: Option<String>,
    /// The snapshot's `updated_at` (drives priority aging).
    pub aged_from: DateTime<Utc>,
    /// When this row was last written.
    pub queued_at: DateTime<Utc>,
    /// Why the finder sets this row aside (its snapshot could not be
    /// decoded); `None` for a normal row. See
    /// [`reports::quarantined_tasks`](crate::reports::quarantined_tasks).
    pub quarantined: Option<String>,
}

/// A task claim (`sayiir.claims`); `expires_at` `None` never expires.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = claims, check_for_backend(diesel::pg::Pg))]
pub struct Claim {
    /// Instance id (one live claim per instance).
    pub instance_id: String,
    /// Claimed task id.
    pub task_id: Vec<u8>,
    /// Worker holding it.
    pub worker_id: String,
    /// Server time of the claim.
    pub claimed_at: DateTime<Utc>,
    /// Server time it expires at.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A pending cancel or pause request (`sayiir.signals`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signals, check_for_backend(diesel::pg::Pg))]
pub struct Signal {
    /// Instance id.
    pub instance_id: String,
    /// `Cancel` or `Pause`.
    pub kind: String,
    /// Why.
    pub reason: Option<String>,
    /// Who asked.
    pub requested_by: Option<String>,
    /// When the caller asked.
    pub requested_at: DateTime<Utc>,
}

/// A buffered external event (`sayiir.events`), FIFO by `id` per
/// (instance, signal name).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    /// Queue order.
    pub id: i64,
    /// Instance id (may name an instance that does not exist yet).
    pub instance_id: String,
    /// Signal name.
    pub signal_name: String,
    /// Opaque payload.
    pub payload: Vec<u8>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}
