//! The invariants, from the database and the execution logs, and the
//! figures. Every violated invariant is one line of the returned list.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_core::workflow::WorkflowStatus;
use sayiir_persistence::{SnapshotStore, TaskResultStore};

use crate::driver::Track;
use crate::faults::{Kind, Record};
use crate::fleet::Fleet;
use crate::tasklog::Line;
use crate::workflows::{Backend, Shape, event_payload, json, output_ok};

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

/// Buffered events of finished instances that the workers' pruners should
/// have removed by now: eligible (older than the retention, instance
/// finished) for longer than two pruning periods and a margin for a fault
/// in progress. Run while the workers still run.
pub async fn orphan_events(db_url: &str) -> Vec<String> {
    use crate::worker::{EVENT_RETENTION, PRUNE_EVERY};
    #[derive(QueryableByName)]
    struct Late {
        #[diesel(sql_type = diesel::sql_types::Text)]
        instance_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Double)]
        late_s: f64,
    }
    let overdue = (PRUNE_EVERY * 2 + Duration::from_secs(8)).as_secs_f64();
    let sql = format!(
        "SELECT e.instance_id, w.status, \
                extract(epoch FROM now() - greatest(e.sent_at + interval '{} seconds', \
                    coalesce(w.finished_at, w.updated_at)))::float8 AS late_s \
         FROM sayiir.events AS e JOIN sayiir.workflows AS w USING (instance_id) \
         WHERE w.status IN ('Completed', 'Failed', 'Cancelled') \
           AND greatest(e.sent_at + interval '{} seconds', coalesce(w.finished_at, w.updated_at)) \
               < now() - interval '{overdue} seconds' \
         ORDER BY 3 DESC LIMIT 10",
        EVENT_RETENTION.as_secs(),
        EVENT_RETENTION.as_secs(),
    );
    let mut conn = match AsyncPgConnection::establish(db_url).await {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot connect for the orphan-event check: {e}")],
    };
    match diesel::sql_query(sql).load::<Late>(&mut conn).await {
        Ok(rows) => rows
            .into_iter()
            .map(|r| {
                format!(
                    "{}: {} with a buffered event the pruner should have removed {:.0} s ago",
                    r.instance_id, r.status, r.late_s
                )
            })
            .collect(),
        Err(e) => vec![format!("orphan-event check failed: {e}")],
    }
}

/// One run of a task body (from the logs).
#[derive(Debug, Clone, Copy)]
struct Ran {
    ms: u64,
    process: usize,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .map_or(-1, |c| c.n)
}

fn state_name(s: &WorkflowStatus) -> &'static str {
    match s {
        WorkflowStatus::Completed => "Completed",
        WorkflowStatus::Failed(_) => "Failed",
        WorkflowStatus::Cancelled { .. } => "Cancelled",
        WorkflowStatus::Paused { .. } => "Paused",
        WorkflowStatus::InProgress => "InProgress",
        WorkflowStatus::Waiting { .. } => "Waiting",
        WorkflowStatus::AwaitingSignal { .. } => "AwaitingSignal",
    }
}

/// Window around a fault in which a repeat is put down to it: the two
/// runs of the repeat straddle or touch [start - 4 s, end + 2 s], and for
/// a fault that hit one process, one of the two runs is that process's.
fn attribute(faults: &[Record], a: Ran, b: Ran) -> Option<&Record> {
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

pub async fn check(run: &Run<'_>) -> Vec<String> {
    let mut bad: Vec<String> = Vec::new();

    // Runs per (instance, task), ok ones only; failed attempts counted apart.
    let mut runs: HashMap<(String, String), Vec<Ran>> = HashMap::new();
    let mut failures: HashMap<String, u32> = HashMap::new();
    let mut loop_ends = Vec::new();
    let mut starts = 0;
    for (process, l) in run.lines {
        match l.kind.as_str() {
            "run" if l.fields.len() >= 4 => {
                if l.fields[3] == "ok" {
                    runs.entry((l.fields[0].clone(), l.fields[1].clone()))
                        .or_default()
                        .push(Ran {
                            ms: l.ms,
                            process: *process,
                        });
                } else {
                    *failures.entry(l.fields[0].clone()).or_default() += 1;
                }
            }
            "loop-end" => {
                loop_ends.push(format!("process {process} (pid {}): {:?}", l.pid, l.fields))
            }
            "up" => starts += 1,
            _ => {}
        }
    }
    for e in &loop_ends {
        bad.push(format!("a worker loop ended on its own: {e}"));
    }
    for t in run.stop_trouble {
        bad.push(format!("a worker process did not stop cleanly: {t}"));
    }

    // Final states, outputs, actions, events, exactly-once.
    let mut table: BTreeMap<(Shape, &'static str), u32> = BTreeMap::new();
    let mut repeats: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut moot = 0;
    let mut planned_failures = (0u64, 0u64);
    for t in run.tracks {
        let status = match run.backend.load_snapshot(&t.id).await {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{}: cannot load: {e}", t.id));
                continue;
            }
        };
        let st = status.state.as_status();
        let name = state_name(&st);
        *table.entry((t.shape, name)).or_default() += 1;
        let completed = matches!(st, WorkflowStatus::Completed);
        let ok_state = match (&st, t.cancelled, t.paused) {
            (WorkflowStatus::Failed(e), _, _) => {
                bad.push(format!("{}: Failed: {e}", t.id));
                true
            }
            (WorkflowStatus::Cancelled { .. }, Some(_), _) => true,
            (WorkflowStatus::Completed, Some((_, false)), _) => {
                moot += 1;
                true
            }
            (WorkflowStatus::Paused { .. }, None, Some(_)) => true,
            (
                WorkflowStatus::Completed | WorkflowStatus::Cancelled { .. },
                None,
                Some((_, false)),
            ) => {
                moot += 1;
                true
            }
            (WorkflowStatus::Completed, None, None) => true,
            _ => false,
        };
        if !ok_state {
            bad.push(format!(
                "{}: ends {name} (cancel accepted: {:?}, pause left: {:?}, events sent: {:?})",
                t.id, t.cancelled, t.paused, t.sent
            ));
        }
        if completed {
            let out = status.final_output_bytes().unwrap_or_default();
            if !output_ok(t.shape, t.n, &out) {
                bad.push(format!(
                    "{}: Completed with a wrong output {:?}",
                    t.id,
                    String::from_utf8_lossy(&out)
                ));
            }
            if t.shape == Shape::Event && !t.ambiguous {
                let e2 = run
                    .backend
                    .load_task_result(&t.id, &sayiir_core::TaskId::from("e2"))
                    .await
                    .ok()
                    .flatten();
                if e2 != Some(json(event_payload(t.n, "a") + 1)) {
                    bad.push(format!(
                        "{}: the first wait did not get event a exactly (e2 = {e2:?})",
                        t.id
                    ));
                }
            }
            if t.shape == Shape::Retry {
                planned_failures.0 += t.n % 3;
                planned_failures.1 += u64::from(failures.get(&t.id).copied().unwrap_or(0));
            }
        }
        for &(task, want) in t.shape.steps() {
            let mut r = runs
                .get(&(t.id.clone(), task.to_owned()))
                .cloned()
                .unwrap_or_default();
            r.sort_by_key(|x| x.ms);
            let got = u32::try_from(r.len()).unwrap_or(u32::MAX);
            if completed && got < want {
                bad.push(format!(
                    "{}: Completed but step {task} ran {got} time(s), expected {want}",
                    t.id
                ));
            }
            // A repeat is one more run than wanted; put each down to a
            // fault whose window the gap between two consecutive runs
            // touches (for a loop body, the re-run iteration is not
            // necessarily the last run).
            let extra = r.len().saturating_sub(want as usize);
            let mut causes: Vec<&'static str> = r
                .windows(2)
                .filter_map(|p| attribute(run.faults, p[0], p[1]).map(|f| f.kind.name()))
                .take(extra)
                .collect();
            let unexplained = extra - causes.len();
            if unexplained > 0 {
                bad.push(format!(
                    "{}: step {task} ran {unexplained} more time(s) with no fault around \
                     (runs at [(ms into the run, process)]: {:?})",
                    t.id,
                    r.iter()
                        .map(|x| (x.ms.saturating_sub(run.start_ms), x.process))
                        .collect::<Vec<_>>()
                ));
                causes.extend(std::iter::repeat_n("unattributed", unexplained));
            }
            for c in causes {
                *repeats.entry(c).or_default() += 1;
            }
        }
    }

    bad.extend(run.orphan_events.iter().cloned());
    // Orphans, from the database (every worker has stopped).
    let mut conn = match AsyncPgConnection::establish(run.db_url).await {
        Ok(c) => c,
        Err(e) => {
            bad.push(format!("cannot connect for the orphan checks: {e}"));
            return bad;
        }
    };
    let claims = count(&mut conn, "SELECT count(*) AS n FROM sayiir.claims").await;
    if claims != 0 {
        let detail: Vec<Named> = diesel::sql_query(
            "SELECT c.instance_id || ' (' || w.status || ', held by ' || c.worker_id \
                    || ', claimed ' || c.claimed_at::text || ', expires ' \
                    || coalesce(c.expires_at::text, 'never') || ', workflow updated ' \
                    || w.updated_at::text || ')' AS id, 0::int8 AS n \
             FROM sayiir.claims AS c JOIN sayiir.workflows AS w USING (instance_id) \
             ORDER BY 1 LIMIT 10",
        )
        .load(&mut conn)
        .await
        .unwrap_or_default();
        bad.push(format!(
            "{claims} claim row(s) left after every worker stopped: {}",
            detail
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let queue = count(
        &mut conn,
        "SELECT count(*) AS n FROM sayiir.tasks JOIN sayiir.workflows USING (instance_id) \
         WHERE workflows.status IN ('Completed', 'Failed', 'Cancelled')",
    )
    .await;
    if queue != 0 {
        bad.push(format!("{queue} queue row(s) of finished workflows"));
    }
    let left_events: Vec<Named> = diesel::sql_query(
        "SELECT e.instance_id AS id, count(*) AS n FROM sayiir.events AS e \
         JOIN sayiir.workflows AS w USING (instance_id) WHERE w.status = 'Completed' \
         GROUP BY e.instance_id ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap_or_default();
    for e in &left_events {
        bad.push(format!(
            "{}: Completed with {} event(s) never consumed (sent twice?)",
            e.id, e.n
        ));
    }
    let events_cancelled = count(
        &mut conn,
        "SELECT count(*) AS n FROM sayiir.events JOIN sayiir.workflows USING (instance_id) \
         WHERE workflows.status <> 'Completed'",
    )
    .await;
    let signals_finished = count(
        &mut conn,
        "SELECT count(*) AS n FROM sayiir.signals JOIN sayiir.workflows USING (instance_id) \
         WHERE workflows.status IN ('Completed', 'Failed', 'Cancelled')",
    )
    .await;

    // RSS: the end within 20 % of the first minute, per incarnation.
    let mut peak = 0;
    let mut rss_lines = Vec::new();
    for w in &run.fleet.workers {
        for l in &w.lives {
            peak = peak.max(l.hwm_end.unwrap_or(0));
            if let (Some(m), Some(e)) = (l.rss_minute, l.rss_end) {
                rss_lines.push(format!(
                    "process {} pid {}: {} -> {} MiB",
                    w.index,
                    l.pid,
                    m / 1024,
                    e / 1024
                ));
                if e * 10 > m * 12 {
                    bad.push(format!(
                        "process {} (pid {}): RSS grew from {m} KiB after a minute to {e} KiB",
                        w.index, l.pid
                    ));
                }
            }
        }
    }

    // Figures.
    println!("\nworkflows by shape and state:");
    for shape in Shape::ALL {
        let cells: Vec<String> = table
            .iter()
            .filter(|((s, _), _)| *s == shape)
            .map(|((_, st), n)| format!("{st} {n}"))
            .collect();
        println!("  {:>9}: {}", shape.name(), cells.join(", "));
    }
    let total_runs: usize = runs.values().map(Vec::len).sum();
    println!(
        "step runs: {total_runs} ok, {} failed attempts ({} planned failures of Completed retry \
         workflows, {} logged for them); {starts} worker process starts",
        failures.values().sum::<u32>(),
        planned_failures.0,
        planned_failures.1
    );
    println!(
        "user actions moot (the workflow finished first): {moot}; events left on \
         non-Completed workflows: {events_cancelled}; pending signals on finished ones: \
         {signals_finished}"
    );
    println!(
        "repeats by cause: {}",
        if repeats.is_empty() {
            "none".to_owned()
        } else {
            repeats
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let mut all: Vec<Ran> = runs.values().flatten().copied().collect();
    all.sort_by_key(|r| r.ms);
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
    let in_fault = |ms: u64| {
        run.faults
            .iter()
            .any(|f| ms >= f.start_ms && ms <= f.end_ms + 3000)
    };
    let fault_ms: u64 = {
        // Union of the fault windows within the run.
        let mut w: Vec<(u64, u64)> = run
            .faults
            .iter()
            .map(|f| (f.start_ms, (f.end_ms + 3000).min(run.end_ms)))
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
    };
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
    println!(
        "worker RSS, after the first minute -> at the end: {}; peak (VmHWM) {} MiB",
        if rss_lines.is_empty() {
            "no process ran a minute".to_owned()
        } else {
            rss_lines.join("; ")
        },
        peak / 1024
    );
    let kinds: Vec<Kind> = run.faults.iter().map(|f| f.kind).collect();
    for k in Kind::ALL {
        if !kinds.contains(&k) {
            println!("note: no {} fault in this run (too short)", k.name());
        }
    }
    bad
}
