//! The text rendering of what `show` answers.

use std::fmt::Write as _;

use sayiir_diesel_dashboard::inspect::{COUNT_CAP, Details, QueueRow};

use crate::duration::format_millis;
use crate::hex;
use crate::output::{Table, bytes, or_dash};

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
        let plus = if e.count >= COUNT_CAP { "+" } else { "" };
        field("events", format!("{}{plus} × {:?}", e.count, e.signal_name));
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
    let plus = if d.history_entries >= COUNT_CAP {
        "+"
    } else {
        ""
    };
    let _ = writeln!(
        text,
        "\nhistory: {}{plus} entries kept, newest {} shown",
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
