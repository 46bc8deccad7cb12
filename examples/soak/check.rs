//! The invariants, from the database and the execution logs, and the
//! figures. Every violated invariant is one line of the returned list.
//!
//! - `logs`: what the execution logs say ran, and the evidence that
//!   explains a repeat;
//! - `tracks`: each tracked workflow's final state, output and step runs;
//! - `database`: rows that should not be left;
//! - `memory`: worker RSS stays flat;
//! - `figures`: what is printed after the checks.

mod database;
mod figures;
mod logs;
mod memory;
mod tracks;

pub use database::orphan_events;

use crate::driver::Track;
use crate::faults::Record;
use crate::fleet::Fleet;
use crate::tasklog::Line;
use crate::workflows::Backend;

/// Everything the checks read.
pub struct Run<'a> {
    pub tracks: &'a [Track],
    pub faults: &'a [Record],
    pub lines: &'a [(usize, Line)],
    pub fleet: &'a Fleet,
    pub backend: &'a Backend,
    pub db_url: &'a str,
    pub start_ms: u64,
    pub end_ms: u64,
    pub stop_trouble: &'a [String],
    /// What [`orphan_events`] found while the workers still ran.
    pub orphan_events: &'a [String],
}

/// Runs every check, prints the figures, and returns the violations.
pub async fn check(run: &Run<'_>) -> Vec<String> {
    let mut bad: Vec<String> = Vec::new();
    let logs = logs::Logs::read(run.lines);
    for e in &logs.loop_ends {
        bad.push(format!("a worker loop ended on its own: {e}"));
    }
    for t in run.stop_trouble {
        bad.push(format!("a worker process did not stop cleanly: {t}"));
    }
    let tally = tracks::check(run, &logs, &mut bad).await;
    bad.extend(run.orphan_events.iter().cloned());
    let Some(left) = database::orphans(run.db_url, &mut bad).await else {
        return bad;
    };
    let rss = memory::check(run.fleet, &mut bad);
    figures::print(run, &logs, &tally, &left, &rss);
    bad
}
