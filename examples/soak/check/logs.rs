//! What the workers' execution logs say: every run of a task body (with
//! its start), failed attempts, worker loops that ended on their own,
//! process starts, and the backend's evidence events; and the explanation
//! of a repeated step by that evidence.

use std::collections::HashMap;

use crate::faults::{Kind, Record};
use crate::tasklog::Line;

/// One run of a task body (from the logs).
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    /// When the body finished.
    pub ms: u64,
    /// When it started (its `start` line; absent when the line was lost).
    pub start_ms: Option<u64>,
    pub process: usize,
    pub pid: u32,
}

impl Ran {
    /// The earliest its claim can have been taken: the body's start, or
    /// its end less the longest body when the start line is missing.
    fn claimed_by(self) -> u64 {
        self.start_ms.unwrap_or(self.ms.saturating_sub(1000))
    }
}

/// One evidence event of the backend, from a worker's log.
#[derive(Debug, Clone)]
pub struct Clue {
    pub ms: u64,
    pub pid: u32,
    /// `store call failed` or `claim taken over`.
    pub message: String,
    pub fields: HashMap<String, String>,
}

impl Clue {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
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
    /// Evidence events per instance.
    pub clues: HashMap<String, Vec<Clue>>,
}

impl Logs {
    pub fn read(lines: &[(usize, Line)]) -> Self {
        let mut logs = Logs {
            runs: HashMap::new(),
            failures: HashMap::new(),
            loop_ends: Vec::new(),
            starts: 0,
            clues: HashMap::new(),
        };
        // The latest start of each (pid, instance, task) not yet ended.
        let mut started: HashMap<(u32, String, String), u64> = HashMap::new();
        for (process, l) in lines {
            match l.kind.as_str() {
                "start" if l.fields.len() >= 2 => {
                    started.insert((l.pid, l.fields[0].clone(), l.fields[1].clone()), l.ms);
                }
                "run" if l.fields.len() >= 4 => {
                    let key = (l.fields[0].clone(), l.fields[1].clone());
                    let start_ms = started.remove(&(l.pid, key.0.clone(), key.1.clone()));
                    if l.fields[3] == "ok" {
                        logs.runs.entry(key).or_default().push(Ran {
                            ms: l.ms,
                            start_ms,
                            process: *process,
                            pid: l.pid,
                        });
                    } else {
                        *logs.failures.entry(key.0).or_default() += 1;
                    }
                }
                "evidence" => {
                    let mut parts = l.fields.iter();
                    let message = parts.next().cloned().unwrap_or_default();
                    let fields: HashMap<String, String> = parts
                        .filter_map(|f| f.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    if let Some(instance) = fields.get("instance_id").cloned() {
                        logs.clues.entry(instance).or_default().push(Clue {
                            ms: l.ms,
                            pid: l.pid,
                            message,
                            fields,
                        });
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

    /// Why run `b` of `task` of `instance` repeated run `a`, from evidence
    /// that `a` lost its claim, or its result, between its start and `b`'s:
    /// a claim taken over from one of `a`'s process's workers on this task,
    /// or that claim ended by maintenance applying a cancel or pause once
    /// it had expired;
    /// a store call of `a`'s process for this instance (and task, where the
    /// call names one) that failed: the save, release or heartbeat, or a
    /// load, cancel or pause check or event drain around the step; or
    /// `a`'s process killed. Or `b` was the stale one: `a`'s claim was
    /// the takeover of the claim of `b`'s worker on this task, which ran
    /// its body once its process came back.
    /// `None` is a violation: nothing shows the first run lost its claim.
    pub fn explain(
        &self,
        faults: &[Record],
        instance: &str,
        task: &str,
        a: Ran,
        b: Ran,
    ) -> Option<&'static str> {
        let (lo, hi) = (a.claimed_by(), b.claimed_by());
        let task_id = sayiir_core::TaskId::from(task).to_string();
        let within = |ms: u64| lo <= ms && ms <= hi;
        for c in self.clues.get(instance).into_iter().flatten() {
            if !within(c.ms) {
                continue;
            }
            match c.message.as_str() {
                "claim taken over"
                    if c.field("previous_task") == Some(task_id.as_str())
                        && c.field("previous_worker").and_then(worker_pid) == Some(a.pid) =>
                {
                    return Some("claim taken over");
                }
                // Maintenance applied a cancel or pause to the workflow
                // once that claim had expired; the step runs again after
                // unpause.
                "expired claim ended"
                    if c.field("previous_task") == Some(task_id.as_str())
                        && c.field("previous_worker").and_then(worker_pid) == Some(a.pid) =>
                {
                    return Some("expired claim ended by a request");
                }
                "store call failed"
                    if c.pid == a.pid && c.field("task_id").is_none_or(|t| t == task_id) =>
                {
                    // After the body the runtime saves, checks for a
                    // cancel or a pause, drains a buffered event and
                    // releases: when one fails it gives the step up, and
                    // a worker runs it again (after the claim runs out, or
                    // by recovery once the grace has passed).
                    match c.field("op") {
                        Some("save_snapshot" | "save_task_result") => return Some("save failed"),
                        Some("release_task_claim") => return Some("release failed"),
                        Some("extend_task_claim") => return Some("heartbeat failed"),
                        Some("check_and_cancel" | "check_and_pause") => {
                            return Some("cancel or pause check failed");
                        }
                        Some("load_snapshot" | "load_task_result") => return Some("load failed"),
                        Some("consume_event") => return Some("event drain failed"),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // The later run may be the stale one: its worker claimed first,
        // was stopped or cut off before the body ran, and ran it once
        // back, after the earlier run had taken its expired claim over.
        let took_from_b = self.clues.get(instance).into_iter().flatten().any(|c| {
            c.message == "claim taken over"
                && c.pid == a.pid
                && c.field("previous_task") == Some(task_id.as_str())
                && c.field("previous_worker").and_then(worker_pid) == Some(b.pid)
                && lo.saturating_sub(STALE_MS) <= c.ms
                && c.ms <= lo
        });
        if took_from_b {
            return Some("stale run after a takeover");
        }
        faults
            .iter()
            .any(|f| f.kind == Kind::Kill && f.pid == Some(a.pid) && within(f.start_ms))
            .then_some("process killed")
    }
}

/// How long before the earlier run's start its takeover of the later
/// run's claim may be (the claim and the body's start are a few
/// milliseconds apart; a margin for a slow process).
const STALE_MS: u64 = 5000;

/// The pid in a soak worker id (`p<index>-<pid>-w<k>`).
fn worker_pid(worker: &str) -> Option<u32> {
    worker.split('-').nth(1)?.parse().ok()
}

/// The fault whose window (start - 4 s to heal + 2 s) the two runs of a
/// repeat straddle or touch, for a process fault one of the two runs being
/// that process's: a figure beside the evidence, never an explanation.
pub fn window(faults: &[Record], a: Ran, b: Ran) -> Option<&Record> {
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
