//! `prune`: the library's retention policy, one flag per step.

use std::fmt::Write as _;

use sayiir_diesel::retention::{self, Batching, PruneReport, RetentionPolicy};
use serde::Serialize;

use super::Out;
use crate::args::PruneArgs;
use crate::error::CliError;
use crate::output::Table;

/// What `prune` removed.
#[derive(Debug, Serialize)]
struct Removed {
    /// Finished workflows deleted.
    workflows: u64,
    /// Their task outputs.
    outputs: u64,
    /// Their history entries.
    workflow_history: u64,
    /// Their buffered events.
    workflow_events: u64,
    /// History entries removed by age.
    history_by_age: u64,
    /// History entries beyond the newest N per workflow.
    history_beyond_last: u64,
    /// Orphan events removed.
    orphan_events: u64,
    /// All rows removed.
    total: u64,
    /// Batches (statements) run.
    batches: u64,
    /// A step stopped at `--max-batches`: rows may remain.
    capped: bool,
}

impl From<&PruneReport> for Removed {
    fn from(r: &PruneReport) -> Self {
        Self {
            workflows: r.workflows,
            outputs: r.outputs,
            workflow_history: r.workflow_history,
            workflow_events: r.workflow_events,
            history_by_age: r.history_by_age,
            history_beyond_last: r.history_beyond_last,
            orphan_events: r.orphan_events,
            total: r.total(),
            batches: r.batches,
            capped: r.capped,
        }
    }
}

/// The policy the flags name, or a usage error when they name no step.
fn policy(args: &PruneArgs) -> Result<RetentionPolicy, CliError> {
    let mut policy = RetentionPolicy::default().batching(
        Batching::default()
            .size(args.batch_size)
            .max_batches(args.max_batches),
    );
    if let Some(age) = args.history_older_than {
        policy = policy.history_older_than(age);
    }
    if let Some(n) = args.history_keep_last {
        policy = policy.history_keep_last(n);
    }
    if let Some(age) = args.finished_older_than {
        policy = policy.finished_older_than(age);
    }
    if let Some(age) = args.orphan_events_older_than {
        policy = policy.orphan_events_older_than(age);
    }
    if policy.history_older_than.is_none()
        && policy.history_keep_last.is_none()
        && policy.finished_older_than.is_none()
        && policy.orphan_events_older_than.is_none()
    {
        return Err(CliError::Usage(
            "nothing to prune: give at least one of --history-older-than, \
             --history-keep-last, --finished-older-than, --orphan-events-older-than"
                .to_owned(),
        ));
    }
    Ok(policy)
}

/// Runs `prune`.
pub async fn run(out: &Out<'_>, args: &PruneArgs) -> Result<(), CliError> {
    let policy = policy(args)?;
    let mut conn = out.connect().await?;
    let report = retention::prune(&mut conn, &policy).await?;
    crate::output::emit(out.json, &Removed::from(&report), render)
}

fn render(r: &Removed) -> String {
    let mut t = Table::new(&["REMOVED", "ROWS"]);
    for (name, n) in [
        ("finished workflows", r.workflows),
        ("  their outputs", r.outputs),
        ("  their history", r.workflow_history),
        ("  their events", r.workflow_events),
        ("history by age", r.history_by_age),
        ("history beyond last N", r.history_beyond_last),
        ("orphan events", r.orphan_events),
        ("total", r.total),
    ] {
        t.row(vec![name.to_owned(), n.to_string()]);
    }
    let mut text = t.render();
    let _ = write!(text, "{} batch(es)", r.batches);
    if r.capped {
        text.push_str("; stopped at --max-batches, rows may remain");
    }
    text.push('\n');
    text
}
