//! Reading the worker processes' log.

use std::collections::HashMap;

/// What the worker processes' log says: how often each step ran, the
/// first step started after `promoted_at` (ms since the epoch), the loops
/// that ended and the workers' metrics lines.
pub struct RunsLog {
    pub runs: HashMap<(u64, String), u32>,
    pub first_after: Option<u128>,
    pub loops_ended: usize,
    pub metrics: Vec<String>,
}

pub fn read_runs_log(log: &str, promoted_at: u128) -> RunsLog {
    let text = std::fs::read_to_string(log).unwrap();
    let mut seen = RunsLog {
        runs: HashMap::new(),
        first_after: None,
        loops_ended: 0,
        metrics: Vec::new(),
    };
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(ms), Some(_pid), Some(inst), Some(task)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if task.starts_with("LOOP-ENDED") {
            eprintln!("{line}");
            seen.loops_ended += 1;
            continue;
        }
        if task.starts_with("METRICS") {
            seen.metrics.push(task.to_owned());
            continue;
        }
        let ms: u128 = ms.parse().unwrap();
        // Steps started before the promotion finished were claimed on the
        // old primary: the first one after it shows the new primary at work.
        if ms > promoted_at && seen.first_after.is_none_or(|f| ms < f) {
            seen.first_after = Some(ms);
        }
        *seen
            .runs
            .entry((inst.parse().unwrap(), task.to_owned()))
            .or_default() += 1;
    }
    seen
}
