//! The figures printed after the invariants: workflows by shape and
//! state, step runs, repeats by evidence, recovery after each fault,
//! throughput in and out of faults, and worker memory.

use super::Run;
use super::database::Leftovers;
use super::logs::{Logs, Ran};
use super::memory::Rss;
use super::tracks::Tally;
use crate::faults::Kind;
use crate::workflows::Shape;

/// How long after its heal a fault still counts (ms).
const AFTERMATH_MS: u64 = 3000;

pub fn print(run: &Run<'_>, logs: &Logs, tally: &Tally, left: &Leftovers, rss: &Rss) {
    println!("\nworkflows by shape and state:");
    for shape in Shape::ALL {
        let cells: Vec<String> = tally
            .table
            .iter()
            .filter(|((s, _), _)| *s == shape)
            .map(|((_, st), n)| format!("{st} {n}"))
            .collect();
        println!("  {:>9}: {}", shape.name(), cells.join(", "));
    }
    let total_runs: usize = logs.runs.values().map(Vec::len).sum();
    println!(
        "step runs: {total_runs} ok, {} failed attempts ({} planned failures of Completed retry \
         workflows, {} logged for them); {} worker process starts",
        logs.failures.values().sum::<u32>(),
        tally.planned_failures.0,
        tally.planned_failures.1,
        logs.starts
    );
    println!(
        "user actions moot (the workflow finished first): {}; events left on \
         non-Completed workflows: {}; pending signals on finished ones: {}",
        tally.moot, left.events_cancelled, left.signals_finished
    );
    println!(
        "repeats by evidence (fault window): {}",
        if tally.repeats.is_empty() {
            "none".to_owned()
        } else {
            tally
                .repeats
                .iter()
                .map(|((cause, fault), v)| format!("{cause} ({fault}) {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let all = logs.all_runs();
    recovery(run, &all);
    throughput(run, &all);
    println!(
        "worker RSS, after the first minute -> at the end: {}; peak (VmHWM) {} MiB",
        if rss.lines.is_empty() {
            "no process ran a minute".to_owned()
        } else {
            rss.lines.join("; ")
        },
        rss.peak / 1024
    );
    let kinds: Vec<Kind> = run.faults.iter().map(|f| f.kind).collect();
    for k in Kind::ALL {
        if !kinds.contains(&k) {
            println!("note: no {} fault in this run (too short)", k.name());
        }
    }
}

/// From each fault's heal to the next step run anywhere / in the process hit.
fn recovery(run: &Run<'_>, all: &[Ran]) {
    println!(
        "recovery after each fault (from its heal to the next step run anywhere / in the process hit):"
    );
    for f in run.faults {
        let any = all
            .iter()
            .find(|r| r.ms >= f.end_ms)
            .map(|r| r.ms - f.end_ms);
        let here = f
            .process
            .and_then(|p| all.iter().find(|r| r.ms >= f.end_ms && r.process == p))
            .map(|r| r.ms - f.end_ms);
        let ms = |x: Option<u64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
        println!(
            "  +{:>5.1} s {:>12} ({:>5} ms): {} / {}",
            f.start_ms.saturating_sub(run.start_ms) as f64 / 1000.0,
            f.kind.name(),
            f.end_ms - f.start_ms,
            ms(any),
            ms(here)
        );
    }
}

/// Step runs per second within the fault windows and outside them.
fn throughput(run: &Run<'_>, all: &[Ran]) {
    let in_fault = |ms: u64| {
        run.faults
            .iter()
            .any(|f| ms >= f.start_ms && ms <= f.end_ms + AFTERMATH_MS)
    };
    let fault_ms = fault_time(run);
    let window: Vec<&Ran> = all
        .iter()
        .filter(|r| r.ms >= run.start_ms && r.ms <= run.end_ms)
        .collect();
    let during = window.iter().filter(|r| in_fault(r.ms)).count();
    let span = run.end_ms - run.start_ms;
    let outside_ms = span.saturating_sub(fault_ms).max(1);
    println!(
        "throughput (step runs/s): {:.1} during faults (each fault + 3 s, {:.0} s in all), {:.1} outside",
        during as f64 * 1000.0 / fault_ms.max(1) as f64,
        fault_ms as f64 / 1000.0,
        (window.len() - during) as f64 * 1000.0 / outside_ms as f64
    );
}

/// The length of the union of the fault windows within the run (ms).
fn fault_time(run: &Run<'_>) -> u64 {
    let mut w: Vec<(u64, u64)> = run
        .faults
        .iter()
        .map(|f| (f.start_ms, (f.end_ms + AFTERMATH_MS).min(run.end_ms)))
        .collect();
    w.sort_unstable();
    let mut total = 0;
    let mut cur: Option<(u64, u64)> = None;
    for (a, b) in w {
        cur = match cur {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    total + cur.map_or(0, |(a, b)| b.saturating_sub(a))
}
