//! Per-run lines and the summary table (medians over rounds, ratios
//! diesel / postgres).

use std::time::Duration;

use crate::args::{Args, Workload};
use crate::run::Outcome;

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_wf(o: &Outcome, n: Option<i64>) -> Option<f64> {
    Some(n? as f64 / o.workflows as f64)
}

/// The herd figure: claim statements run (won or lost) per step the
/// workers executed. 1.0 means every claim attempt ran a step; above it,
/// workers raced for the same tasks and the losers' claims were wasted.
fn claims_per_step(o: &Outcome) -> Option<f64> {
    match (o.claims?, o.executions) {
        (_, 0) => None,
        (c, e) => Some(c as f64 / e as f64),
    }
}

/// A figure of a run, and which way is better.
struct Metric {
    name: &'static str,
    /// "higher" or "lower" is better; "(noise)" for context figures.
    better: &'static str,
    get: fn(&Outcome) -> Option<f64>,
}

const METRICS: &[Metric] = &[
    Metric {
        name: "workflows/s",
        better: "higher",
        get: |o| Some(o.workflows as f64 / o.elapsed.as_secs_f64()),
    },
    Metric {
        name: "steps/s",
        better: "higher",
        get: |o| Some((o.workflows * o.workload.steps()) as f64 / o.elapsed.as_secs_f64()),
    },
    Metric {
        name: "p50 latency ms",
        better: "lower",
        get: |o| percentile(&o.latencies, 0.50).map(ms),
    },
    Metric {
        name: "p99 latency ms",
        better: "lower",
        get: |o| percentile(&o.latencies, 0.99).map(ms),
    },
    Metric {
        name: "statements/wf",
        better: "lower",
        get: |o| per_wf(o, o.statements),
    },
    Metric {
        name: "transactions/wf",
        better: "lower",
        get: |o| per_wf(o, o.transactions),
    },
    Metric {
        name: "WAL flushes/wf",
        better: "lower",
        get: |o| per_wf(o, o.wal_syncs),
    },
    Metric {
        name: "duplicate steps",
        better: "lower",
        get: |o| Some(o.executions.saturating_sub(o.distinct) as f64),
    },
    Metric {
        name: "claims/step",
        better: "lower",
        get: claims_per_step,
    },
    Metric {
        name: "client CPU s",
        better: "lower",
        get: |o| o.client_cpu,
    },
    Metric {
        name: "server CPU s",
        better: "lower",
        get: |o| o.server_cpu,
    },
    Metric {
        name: "CPU ms/wf (both)",
        better: "lower",
        get: |o| Some((o.client_cpu? + o.server_cpu?) * 1000.0 / o.workflows as f64),
    },
    Metric {
        name: "other processes CPU s",
        better: "(noise)",
        get: |o| o.other_cpu,
    },
    Metric {
        name: "RSS MiB at 10% done",
        better: "lower",
        get: |o| o.rss_deciles.first().map(|(_, m)| *m),
    },
    Metric {
        name: "RSS MiB all done",
        better: "lower",
        get: |o| o.rss_done,
    },
    Metric {
        name: "RSS MiB after run",
        better: "lower",
        get: |o| o.rss_mib,
    },
    Metric {
        name: "peak RSS MiB in run",
        better: "lower",
        get: |o| o.peak_mib,
    },
];

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "n/a".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn fmt_ms(d: Option<Duration>) -> String {
    fmt(d.map(ms))
}

/// One line (or a few) per run, printed as it ends.
pub fn line(o: &Outcome) -> String {
    let name = format!("{:<7} r{} {:<8}", o.workload.name(), o.round + 1, o.backend);
    if let Some(e) = &o.error {
        return format!("{name} FAILED: {e}");
    }
    let secs = o.elapsed.as_secs_f64();
    let mut s = format!(
        "{name} {} wf in {secs:.2} s: {:.1} wf/s {:.1} steps/s | latency p50 {} p99 {} ms | \
         {} stmts/wf {} xacts/wf ({} rolled back) {} WAL flushes/wf | claims/step {} | dup {} missing {} stray {} \
         | CPU client {} s \
         server {} s (other processes {} s) | RSS {} MiB (run peak {})",
        o.workflows,
        o.workflows as f64 / secs,
        (o.workflows * o.workload.steps()) as f64 / secs,
        fmt_ms(percentile(&o.latencies, 0.50)),
        fmt_ms(percentile(&o.latencies, 0.99)),
        fmt(per_wf(o, o.statements)),
        fmt(per_wf(o, o.transactions)),
        fmt(per_wf(o, o.rollbacks)),
        fmt(per_wf(o, o.wal_syncs)),
        fmt(claims_per_step(o)),
        o.executions.saturating_sub(o.distinct),
        o.expected.saturating_sub(o.distinct),
        o.stray,
        fmt(o.client_cpu),
        fmt(o.server_cpu),
        fmt(o.other_cpu),
        fmt(o.rss_mib),
        fmt(o.peak_mib),
    );
    if !o.rss_deciles.is_empty() {
        let series: Vec<String> = o
            .rss_deciles
            .iter()
            .map(|(pct, mib)| format!("{pct}% {mib:.1}"))
            .collect();
        s.push_str(&format!(
            "\n{:22}VmRSS MiB as workflows finish: {} | all Completed {}",
            "",
            series.join(", "),
            fmt(o.rss_done)
        ));
    }
    s.push_str(&format!("\n{:22}[{}]", "", o.note));
    if o.ended_sessions > 0 {
        s.push_str(&format!(
            "\n{:22}warning: {} session(s) were still open 30 s after the run and were terminated",
            "", o.ended_sessions
        ));
    }
    for e in &o.worker_errors {
        s.push_str(&format!("\n{:22}worker error: {e}", ""));
    }
    s
}

/// The most called statements of a run.
pub fn top(o: &Outcome) -> String {
    let mut s = format!(
        "  top statements, {} {} round {} (calls per workflow, query start):",
        o.workload.name(),
        o.backend,
        o.round + 1
    );
    for (calls, q) in &o.top {
        s.push_str(&format!(
            "\n    {:>7.2}  {q}",
            *calls as f64 / o.workflows as f64
        ));
    }
    s
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        f64::midpoint(v[mid - 1], v[mid])
    } else {
        v[mid]
    })
}

fn ratio(d: Option<f64>, p: Option<f64>) -> Option<f64> {
    match (d?, p?) {
        (d, p) if p > 0.0 => Some(d / p),
        _ => None,
    }
}

/// Medians over rounds per backend and their ratio, with the range of
/// the per-round ratios (same round, back to back, so less noisy).
pub fn summary(outcomes: &[Outcome], args: &Args) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "\n{:<8} {:<20} {:>10} {:>10} {:>10}  {:<17} {}\n",
        "workload", "metric", "postgres", "diesel", "diesel/pg", "per-round ratios", "better"
    ));
    s.push_str(&format!("{}\n", "-".repeat(92)));
    for &w in &args.workloads {
        let runs = |backend: &str| -> Vec<&Outcome> {
            outcomes
                .iter()
                .filter(|o| o.workload == w && o.backend == backend && o.ok())
                .collect()
        };
        let (pg, di) = (runs("postgres"), runs("diesel"));
        for m in METRICS {
            let pg_med = median(pg.iter().filter_map(|o| (m.get)(o)).collect());
            let di_med = median(di.iter().filter_map(|o| (m.get)(o)).collect());
            let mut rounds: Vec<f64> = (0..args.rounds)
                .filter_map(|r| {
                    let p = pg.iter().find(|o| o.round == r)?;
                    let d = di.iter().find(|o| o.round == r)?;
                    ratio((m.get)(d), (m.get)(p))
                })
                .collect();
            rounds.sort_by(f64::total_cmp);
            let range = match (rounds.first(), rounds.last()) {
                (Some(a), Some(b)) if rounds.len() > 1 => format!("{a:.2}x .. {b:.2}x"),
                (Some(a), _) => format!("{a:.2}x"),
                _ => "-".to_owned(),
            };
            let r = ratio(di_med, pg_med).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
            s.push_str(&format!(
                "{:<8} {:<20} {:>10} {:>10} {:>10}  {:<17} {}\n",
                w.name(),
                m.name,
                fmt(pg_med),
                fmt(di_med),
                r,
                range,
                m.better
            ));
        }
        let failed = outcomes
            .iter()
            .filter(|o| o.workload == w && !o.ok())
            .count();
        if failed > 0 {
            s.push_str(&format!(
                "{:<8} ({failed} failed run(s) left out of the medians)\n",
                w.name()
            ));
        }
        s.push('\n');
    }
    s
}

/// Rows of the summary that are in Workload order: used by main to name
/// the workloads measured.
pub fn names(ws: &[Workload]) -> String {
    ws.iter().map(|w| w.name()).collect::<Vec<_>>().join(", ")
}
