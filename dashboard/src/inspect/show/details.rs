//! What [`show`](super::show) answers: one workflow from its columns, its
//! queue row, claim, requests, events, outputs and history (no blob
//! read).

use serde::Serialize;

/// One workflow in full.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    /// Instance id.
    pub instance_id: String,
    /// Its status.
    pub status: &'static str,
    /// Where it stands (`None` once finished).
    pub position: Option<String>,
    /// The task it is at (hex), when at a task.
    pub current_task: Option<String>,
    /// Its definition's hash, in hex.
    pub definition: String,
    /// Accepted writes so far.
    pub revision: i64,
    /// First write (RFC 3339, UTC).
    pub created_at: String,
    /// Latest write (RFC 3339, UTC).
    pub updated_at: String,
    /// When it finished, if it has.
    pub finished_at: Option<String>,
    /// The error of a Failed workflow.
    pub error: Option<String>,
    /// Its W3C trace context.
    pub trace_parent: Option<String>,
    /// Size of the stored snapshot (outputs stripped).
    pub snapshot_bytes: i32,
    /// Its dispatch-queue row, if queued.
    pub queue: Option<QueueRow>,
    /// The claim on it, live or expired.
    pub claim: Option<ClaimInfo>,
    /// Cancel and pause requests not applied yet.
    pub pending_requests: Vec<Request>,
    /// Buffered events per signal name, in name order: at most
    /// [`MAX_EVENT_NAMES`](super::MAX_EVENT_NAMES) names, each count
    /// capped at [`COUNT_CAP`](crate::inspect::COUNT_CAP) (the cap means
    /// "at least").
    pub buffered_events: Vec<EventCount>,
    /// Task outputs, largest first.
    pub outputs: Vec<Output>,
    /// All history entries kept, counted up to
    /// [`COUNT_CAP`](crate::inspect::COUNT_CAP) (the cap means "at
    /// least").
    pub history_entries: i64,
    /// The newest ones, newest first.
    pub history: Vec<HistoryItem>,
}

/// The workflow's dispatch-queue row.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    /// `AtTask`, `AtDelay` or `AtSignal`.
    pub kind: &'static str,
    /// The task to run (at a park: the task after it), hex.
    pub task: Option<String>,
    /// The awaited signal's name.
    pub signal_name: Option<String>,
    /// Delay expiry or signal timeout.
    pub wake_at: Option<String>,
    /// The task's output is already recorded.
    pub completed: bool,
    /// The task's input can be resolved.
    pub input_ready: bool,
    /// Priority, 1 (highest) to 5.
    pub priority: i16,
    /// Worker tags the task needs.
    pub tags: Vec<String>,
    /// End of the task's retry back-off.
    pub retry_at: Option<String>,
    /// The worker the task last failed on.
    pub failed_worker: Option<String>,
    /// Releases in a row with nothing saved.
    pub stalls: i32,
    /// Why the finder set the row aside, if it did.
    pub quarantined: Option<String>,
    /// When the row was last written.
    pub queued_at: String,
}

/// The live (or expired) claim on the workflow.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimInfo {
    /// The claimed task, hex.
    pub task: String,
    /// The worker holding it.
    pub worker: String,
    /// When it was taken.
    pub claimed_at: String,
    /// When it expires (`None`: never).
    pub expires_at: Option<String>,
    /// Its lease ran out.
    pub expired: bool,
    /// Milliseconds since it was taken, on the server's clock.
    pub held_ms: i64,
}

/// A pending cancel or pause request.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// `Cancel` or `Pause`.
    pub kind: String,
    /// Why, as the caller gave it.
    pub reason: Option<String>,
    /// Who asked, as the caller gave it.
    pub requested_by: Option<String>,
    /// When the caller asked.
    pub requested_at: String,
}

/// Buffered events of one signal name.
#[derive(Debug, Clone, Serialize)]
pub struct EventCount {
    /// The signal name.
    pub signal_name: String,
    /// How many, capped at [`COUNT_CAP`](crate::inspect::COUNT_CAP).
    pub count: i64,
}

/// One task output's size.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    /// The task, hex.
    pub task: String,
    /// Size in bytes.
    pub bytes: i32,
    /// When it was written.
    pub recorded_at: String,
}

/// One history entry, without its blob.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem {
    /// The revision it recorded.
    pub revision: i64,
    /// The status at that revision.
    pub status: &'static str,
    /// The position at that revision.
    pub position: Option<String>,
    /// When it was written.
    pub recorded_at: String,
    /// Size of its snapshot in bytes.
    pub bytes: i32,
}
