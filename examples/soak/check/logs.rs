//! What the workers' execution logs say: every run of a task body, failed
//! attempts, worker loops that ended on their own, and process starts.

use std::collections::HashMap;

use crate::faults::Record;
use crate::tasklog::Line;

/// One run of a task body (from the logs).
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    pub ms: u64,
    pub process: usize,
}

/// The logs of every process, tallied.
pub struct Logs {
    /// Runs per (instance, task), ok ones only.
    pub runs: HashMap<(String, String), Vec<Ran>>,
    /// Failed attempts per instance.
    pub failures: HashMap<String, u32>,
    /// Worker loops that ended while their process still ran.
    pub loop_ends: Vec<String>,
    /// Worker process starts.
    pub starts: usize,
}

impl Logs {
    pub fn read(lines: &[(usize, Line)]) -> Self {
        let mut logs = Logs {
            runs: HashMap::new(),
            failures: HashMap::new(),
            loop_ends: Vec::new(),
            starts: 0,
        };
        for (process, l) in lines {
            match l.kind.as_str() {
                "run" if l.fields.len() >= 4 => {
                    if l.fields[3] == "ok" {
                        logs.runs
                            .entry((l.fields[0].clone(), l.fields[1].clone()))
                            .or_default()
                            .push(Ran {
                                ms: l.ms,
                                process: *process,
                            });
                    } else {
                        *logs.failures.entry(l.fields[0].clone()).or_default() += 1;
                    }
                }
                "loop-end" => logs
                    .loop_ends
                    .push(format!("process {process} (pid {}): {:?}", l.pid, l.fields)),
                "up" => logs.starts += 1,
                _ => {}
            }
        }
        logs
    }

    /// The runs of `task` of `instance`, in time order.
    pub fn runs_of(&self, instance: &str, task: &str) -> Vec<Ran> {
        let mut r = self
            .runs
            .get(&(instance.to_owned(), task.to_owned()))
            .cloned()
            .unwrap_or_default();
        r.sort_by_key(|x| x.ms);
        r
    }

    /// Every ok run, in time order.
    pub fn all_runs(&self) -> Vec<Ran> {
        let mut all: Vec<Ran> = self.runs.values().flatten().copied().collect();
        all.sort_by_key(|r| r.ms);
        all
    }
}

/// Window around a fault in which a repeat is put down to it: the two
/// runs of the repeat straddle or touch [start - 4 s, end + 2 s], and for
/// a fault that hit one process, one of the two runs is that process's.
pub fn attribute(faults: &[Record], a: Ran, b: Ran) -> Option<&Record> {
    faults
        .iter()
        .filter(|f| {
            let lo = f.start_ms.saturating_sub(4000);
            let hi = f.end_ms + 2000;
            let overlaps = a.ms <= hi && b.ms >= lo;
            let process_ok = f.process.is_none_or(|p| a.process == p || b.process == p);
            overlaps && process_ok
        })
        .min_by_key(|f| f.start_ms.abs_diff(a.ms))
}
