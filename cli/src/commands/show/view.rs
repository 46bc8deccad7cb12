//! What `show` answers: the serializable view of one workflow and its
//! text rendering.

use std::fmt::Write as _;

use serde::Serialize;

use crate::duration::format_millis;
use crate::hex;
use crate::output::{Table, bytes, or_dash};

/// The `show` answer.
#[derive(Debug, Serialize)]
pub struct Details {
    pub instance_id: String,
    pub status: &'static str,
    pub position: Option<String>,
    pub current_task: Option<String>,
    pub definition: String,
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
    pub trace_parent: Option<String>,
    /// Size of the stored snapshot (outputs stripped).
    pub snapshot_bytes: i32,
    pub queue: Option<QueueRow>,
    pub claim: Option<ClaimInfo>,
    pub pending_requests: Vec<Request>,
    /// Buffered events per signal name.
    pub buffered_events: Vec<EventCount>,
    /// Task outputs, largest first.
    pub outputs: Vec<Output>,
    /// All history entries kept.
    pub history_entries: i64,
    /// The newest ones, newest first.
    pub history: Vec<HistoryItem>,
}

/// The workflow's dispatch-queue row.
#[derive(Debug, Serialize)]
pub struct QueueRow {
    pub kind: &'static str,
    pub task: Option<String>,
    pub signal_name: Option<String>,
    pub wake_at: Option<String>,
    pub completed: bool,
    pub input_ready: bool,
    pub priority: i16,
    pub tags: Vec<String>,
    pub retry_at: Option<String>,
    pub failed_worker: Option<String>,
    pub stalls: i32,
    pub quarantined: Option<String>,
    pub queued_at: String,
}

/// The live (or expired) claim on the workflow.
#[derive(Debug, Serialize)]
pub struct ClaimInfo {
    pub task: String,
    pub worker: String,
    pub claimed_at: String,
    pub expires_at: Option<String>,
    pub expired: bool,
    pub held_ms: i64,
}

/// A pending cancel or pause request.
#[derive(Debug, Serialize)]
pub struct Request {
    pub kind: String,
    pub reason: Option<String>,
    pub requested_by: Option<String>,
    pub requested_at: String,
}

/// Buffered events of one signal name.
#[derive(Debug, Serialize)]
pub struct EventCount {
    pub signal_name: String,
    pub count: i64,
}

/// One task output's size.
#[derive(Debug, Serialize)]
pub struct Output {
    pub task: String,
    pub bytes: i32,
    pub recorded_at: String,
}

/// One history entry, without its blob.
#[derive(Debug, Serialize)]
pub struct HistoryItem {
    pub revision: i64,
    pub status: &'static str,
    pub position: Option<String>,
    pub recorded_at: String,
    pub bytes: i32,
}

/// The text form of `d`.
pub fn render(d: &Details) -> String {
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let mut field = |name: &str, value: String| t.row(vec![name.to_owned(), value]);
    field("instance", d.instance_id.clone());
    field("status", d.status.to_owned());
    field("position", or_dash(d.position.as_deref()));
    field("current task", or_dash(d.current_task.as_deref()));
    field("definition", d.definition.clone());
    field("revision", d.revision.to_string());
    field("created", d.created_at.clone());
    field("updated", d.updated_at.clone());
    field("finished", or_dash(d.finished_at.as_deref()));
    field("snapshot", bytes(i64::from(d.snapshot_bytes)));
    if let Some(e) = &d.error {
        field("error", e.clone());
    }
    if let Some(q) = &d.queue {
        field("queue", queue_summary(q));
    }
    match &d.claim {
        Some(c) => field(
            "claim",
            format!(
                "{} by {} for {}{}",
                hex::short_text(&c.task),
                c.worker,
                format_millis(c.held_ms),
                if c.expired { " (expired)" } else { "" }
            ),
        ),
        None => field("claim", "-".to_owned()),
    }
    for r in &d.pending_requests {
        field(
            "requested",
            format!(
                "{} by {} at {}: {}",
                r.kind,
                or_dash(r.requested_by.as_deref()),
                r.requested_at,
                or_dash(r.reason.as_deref())
            ),
        );
    }
    for e in &d.buffered_events {
        field("events", format!("{} × {:?}", e.count, e.signal_name));
    }
    let mut text = t.render();
    let mut outputs = Table::new(&["OUTPUT OF TASK", "SIZE", "RECORDED"]);
    for o in &d.outputs {
        outputs.row(vec![
            o.task.clone(),
            bytes(i64::from(o.bytes)),
            o.recorded_at.clone(),
        ]);
    }
    if !outputs.is_empty() {
        text.push('\n');
        text.push_str(&outputs.render());
    }
    let mut history = Table::new(&["REV", "STATUS", "POSITION", "RECORDED", "SIZE"]);
    for h in &d.history {
        history.row(vec![
            h.revision.to_string(),
            h.status.to_owned(),
            or_dash(h.position.as_deref()),
            h.recorded_at.clone(),
            bytes(i64::from(h.bytes)),
        ]);
    }
    let _ = writeln!(
        text,
        "\nhistory: {} entries kept, newest {} shown",
        d.history_entries,
        d.history.len()
    );
    if !history.is_empty() {
        text.push_str(&history.render());
    }
    text
}

fn queue_summary(q: &QueueRow) -> String {
    let mut parts = vec![q.kind.to_owned()];
    if let Some(task) = &q.task {
        parts.push(format!("task {}", hex::short_text(task)));
    }
    if let Some(name) = &q.signal_name {
        parts.push(format!("signal {name:?}"));
    }
    if let Some(at) = &q.wake_at {
        parts.push(format!("wakes {at}"));
    }
    if q.completed {
        parts.push("output recorded".to_owned());
    }
    if !q.input_ready {
        parts.push("input not ready".to_owned());
    }
    parts.push(format!("priority {}", q.priority));
    if !q.tags.is_empty() {
        parts.push(format!("tags {}", q.tags.join(",")));
    }
    if let Some(at) = &q.retry_at {
        parts.push(format!("retry at {at}"));
    }
    if q.stalls > 0 {
        parts.push(format!("released {} times with nothing saved", q.stalls));
    }
    if let Some(why) = &q.quarantined {
        parts.push(format!("quarantined: {why}"));
    }
    parts.join(", ")
}
