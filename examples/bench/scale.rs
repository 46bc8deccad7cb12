//! `--scale`: what the queue's size does to each backend.
//!
//! Three parts, each backend in a fresh database of its own on the same
//! server, the order alternating between parts (and between dispatch runs):
//!
//! * **finder** — `find_available_tasks(worker, 8, aging 300 s, no tags)`
//!   through `TaskClaimStore`, `--scale-calls` timed calls (after 5 warm-up
//!   calls) by one worker id, as runnable and finished workflows pile up:
//!   1 k queued; + 100 k finished; + `--scale-max-finished` finished; then
//!   11 k and 101 k queued. Neither finder claims, so every call finds
//!   the same 8 tasks; our backend is built with `offer_lease(0)` so that
//!   no offer holds a pick back (one worker id would see its own offers
//!   anyway; distinct ids per call would, with the default 2 s lease,
//!   run through the queue instead). Every state is measured twice: first with
//!   the statistics as they are (autovacuum's, or our ANALYZE of the
//!   previous state: the planner sees an older, smaller table), then after
//!   `ANALYZE`. During the timed calls auto_explain logs the plan of any
//!   statement taking 10 ms or more (ANALYZE and BUFFERS without per-node
//!   timing, for both backends alike); after them, 12 more calls on the
//!   same backend instance run
//!   with auto_explain (ANALYZE, BUFFERS) on for every statement. Both
//!   logs go under `target/bench-plans/`, and the distinct plans of each
//!   statement are summarised (scans, rows, runs, median duration).
//! * **parked** — 1 k queued next to `--scale-parked` workflows parked on a
//!   delay an hour away: the finder as above; for our backend also a find
//!   call that runs maintenance (the first one 500 ms after the last pass)
//!   vs the one right after it, and `EXPLAIN (ANALYZE, BUFFERS)` of
//!   [`MAINTENANCE_SQL`] with custom and generic plans.
//!   sayiir-postgres has no separate pass: its finder reads parked rows
//!   itself, so its finder figure is the equivalent cost.
//! * **dispatch** — `--scale-delays` workflows (a step, a delay, one
//!   step; the copies are seeded parked on the delay) whose delays end at
//!   the same moment, driven by 1, 2, 4 worker OS
//!   processes (this program re-run with `--dispatch-child`, each its own
//!   backend instance and pool, `--scale-proc-workers` PooledWorkers):
//!   seconds from the common wake time until every workflow is Completed.
//!
//! Seeding is SQL (see `seed.rs`): one template instance per kind written
//! through the backend's API, copied with `generate_series`. Finished
//! copies get the workflow-table row and the task outputs (no history);
//! queued, parked and delayed copies get every row the template has.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_diesel::DieselBackend;
use sayiir_postgres::PostgresBackend;
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::args::{Args, Part, ScaleArgs};
use crate::run::{self, Backend};
use crate::seed::Seeder;
use crate::server::{Explain, Monitor, Server, TAG};
use crate::workloads::{self, Probe};
use crate::{Error, plans, procstat};

/// The worker id of every timed finder call.
const WORKER: &str = "scale-finder";
/// Finder batch size.
const LIMIT: usize = 8;
/// Queued workflows in the first state and next to the parked ones.
const QUEUED: u64 = 1_000;

fn aging() -> chrono::Duration {
    chrono::Duration::seconds(300)
}

/// One row of the scale table: a figure for each backend.
struct Fig {
    part: &'static str,
    name: String,
    pg: Option<f64>,
    di: Option<f64>,
    note_pg: String,
    note_di: String,
}

#[derive(Default)]
struct Figures(Vec<Fig>);

impl Figures {
    fn set(&mut self, part: &'static str, name: &str, backend: &str, v: Option<f64>, note: &str) {
        let i = match self.0.iter().position(|f| f.part == part && f.name == name) {
            Some(i) => i,
            None => {
                self.0.push(Fig {
                    part,
                    name: name.to_owned(),
                    pg: None,
                    di: None,
                    note_pg: String::new(),
                    note_di: String::new(),
                });
                self.0.len() - 1
            }
        };
        let f = &mut self.0[i];
        if backend == "diesel" {
            f.di = v;
            f.note_di = note.to_owned();
        } else {
            f.pg = v;
            f.note_pg = note.to_owned();
        }
    }

    fn table(&self) -> String {
        let fmt = |v: Option<f64>| match v {
            None => "-".to_owned(),
            Some(v) if v >= 100.0 => format!("{v:.0}"),
            Some(v) if v >= 10.0 => format!("{v:.1}"),
            Some(v) => format!("{v:.2}"),
        };
        let mut s = format!(
            "\n{:<8} {:<58} {:>9} {:>9} {:>9}  {}\n{}\n",
            "part",
            "figure (lower is better)",
            "postgres",
            "diesel",
            "diesel/pg",
            "notes (postgres | diesel)",
            "-".repeat(120)
        );
        for f in &self.0 {
            let ratio = match (f.di, f.pg) {
                (Some(d), Some(p)) if p > 0.0 => format!("{:.2}x", d / p),
                _ => "-".to_owned(),
            };
            let notes = if f.note_pg.is_empty() && f.note_di.is_empty() {
                String::new()
            } else {
                format!("{} | {}", f.note_pg, f.note_di)
            };
            s.push_str(&format!(
                "{:<8} {:<58} {:>9} {:>9} {:>9}  {}\n",
                f.part,
                f.name,
                fmt(f.pg),
                fmt(f.di),
                ratio,
                notes
            ));
        }
        s
    }
}

struct Ctx<'a> {
    server: &'a mut Server,
    args: &'a Args,
    sa: &'a ScaleArgs,
    figs: Figures,
    failures: Vec<String>,
    plans_dir: PathBuf,
}

/// Runs `$part::<B>(&mut cx, $($extra),*)` for both backends (those
/// `--only` leaves), postgres first when `$pg_first`.
macro_rules! both {
    ($cx:expr, $pg_first:expr, $part:ident $(, $extra:expr)*) => {{
        for turn in 0..2 {
            let pg = (turn == 0) == $pg_first;
            let name = if pg { "postgres" } else { "diesel" };
            if !$cx.args.runs(name) {
                continue;
            }
            let before = Cpu::sample($cx.server);
            let r = if pg {
                $part::<PostgresBackend<JsonCodec>>(&mut $cx $(, $extra)*).await
            } else {
                $part::<DieselBackend<JsonCodec>>(&mut $cx $(, $extra)*).await
            };
            println!("{name:<8} {}\n", Cpu::sample($cx.server).since(&before));
            if let Err(e) = r {
                let msg = format!("{} {name}: {e}", stringify!($part));
                eprintln!("FAILED: {msg}");
                $cx.failures.push(msg);
            }
        }
    }};
}

/// CPU counters, to tell how busy the rest of the machine was.
struct Cpu {
    at: Instant,
    machine: Option<u64>,
    me: Option<u64>,
    server: Option<u64>,
}

impl Cpu {
    fn sample(server: &Server) -> Cpu {
        Cpu {
            at: Instant::now(),
            machine: procstat::machine_busy_ticks(),
            me: procstat::self_and_children_ticks(),
            server: server.postmaster.and_then(procstat::server_cpu_ticks),
        }
    }

    /// Wall time and the CPU of this process (with its worker processes),
    /// of the server, and of everything else on the machine since `b`.
    fn since(&self, b: &Cpu) -> String {
        let ticks = procstat::clock_ticks();
        let d = |x: Option<u64>, y: Option<u64>| Some(x?.saturating_sub(y?) as f64 / ticks);
        let me = d(self.me, b.me);
        let server = d(self.server, b.server);
        let other = match (d(self.machine, b.machine), me, server) {
            (Some(m), Some(c), Some(s)) => format!("{:.1}", (m - c - s).max(0.0)),
            _ => "n/a".to_owned(),
        };
        let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
        format!(
            "part took {:.0} s wall; CPU s: bench {} server {} other processes {other}",
            self.at.duration_since(b.at).as_secs_f64(),
            f(me),
            f(server)
        )
    }
}

pub async fn scale(server: &mut Server, args: &Args, sa: &ScaleArgs) -> Result<(), Error> {
    let plans_dir = PathBuf::from("target/bench-plans");
    if plans_dir.exists() {
        std::fs::remove_dir_all(&plans_dir)?;
    }
    std::fs::create_dir_all(&plans_dir)?;
    println!(
        "scale: finder {} calls/state (limit {LIMIT}, aging 300 s, no tags, one worker id; \
         diesel with offer_lease 0) | up to {} finished | {} parked | {} delays, {} s delay, \
         worker processes {:?} x {} PooledWorkers (batch {}, poll {} ms, pool {}) | plans in {}\n",
        sa.calls,
        sa.max_finished,
        sa.parked,
        sa.delays,
        sa.delay.as_secs(),
        sa.procs,
        sa.proc_workers,
        args.batch,
        args.poll.as_millis(),
        args.pool,
        plans_dir.display()
    );
    let mut cx = Ctx {
        server,
        args,
        sa,
        figs: Figures::default(),
        failures: Vec::new(),
        plans_dir,
    };
    if sa.parts.contains(&Part::Finder) {
        both!(cx, true, finder_part);
    }
    if sa.parts.contains(&Part::Parked) {
        both!(cx, false, parked_part);
    }
    if sa.parts.contains(&Part::Dispatch) {
        for (i, &procs) in sa.procs.iter().enumerate() {
            both!(cx, i % 2 == 0, dispatch_part, procs);
        }
    }
    print!("{}", cx.figs.table());
    println!(
        "ratio = diesel / postgres, both measured in this run on the same server. \"stale\": \
         statistics as autovacuum and the previous state's ANALYZE left them; \"analyzed\": \
         right after ANALYZE."
    );
    if cx.failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "scale: {} part(s) failed: {}",
            cx.failures.len(),
            cx.failures.join("; ")
        )
        .into())
    }
}

// ---------------------------------------------------------------- finder

async fn finder_part<B: Backend>(cx: &mut Ctx<'_>) -> Result<(), Error> {
    let db = format!("sayiir_scale_{}_finder_{}", std::process::id(), B::NAME);
    let oid = cx.server.create_database(&db).await?;
    let r = finder_states::<B>(cx, &db, oid).await;
    if let Err(e) = cx.server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    r
}

fn count_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

async fn finder_states<B: Backend>(cx: &mut Ctx<'_>, db: &str, oid: i64) -> Result<(), Error> {
    let url = cx.server.url_for(db);
    let backend = B::open_finder(&url, cx.args.pool).await?;
    templates(&backend, cx.args, &url, true, false).await?;
    let mut seeder = Seeder::open(&url).await?;
    let mut conn = AsyncPgConnection::establish(&url).await?;
    let max = cx.sa.max_finished as u64;
    let mut states = vec![
        (QUEUED, 0),
        (QUEUED, 100_000.min(max)),
        (QUEUED, max),
        (QUEUED + 10_000, max),
        (QUEUED + 100_000, max),
    ];
    states.dedup();
    // The templates count: one queued, one finished.
    let (mut queued, mut finished) = (1_u64, 1_u64);
    for (q, f) in states {
        let mut seeded = Duration::ZERO;
        if f > finished {
            seeded += seeder
                .copy(
                    &[B::TABLES[0], B::OUTPUTS_TABLE],
                    "ftemplate0",
                    "f",
                    finished,
                    f - 1,
                )
                .await?;
            finished = f;
        }
        if q > queued {
            seeded += seeder
                .copy(B::TABLES, "qtemplate0", "q", queued, q - 1)
                .await?;
            queued = q;
        }
        let state = format!("{} queued, {} finished", count_label(q), count_label(f));
        println!(
            "{:<8} finder, {state}: seeded in {:.1} s",
            B::NAME,
            seeded.as_secs_f64()
        );
        for analyzed in [false, true] {
            let mode = if analyzed { "analyzed" } else { "stale" };
            if analyzed {
                let t = Instant::now();
                conn.batch_execute("ANALYZE").await?;
                println!(
                    "{:<8}   ANALYZE took {:.1} s",
                    B::NAME,
                    t.elapsed().as_secs_f64()
                );
            }
            let stats = stats_note::<B>(&mut conn).await?;
            let t = time_and_explain(cx, &backend, oid, &format!("finder {state} {mode}")).await?;
            println!(
                "{:<8}   {mode:<8} p50 {:.3} ms p99 {:.3} ms, returned {} | {stats}",
                B::NAME,
                t.p50,
                t.p99,
                t.returned()
            );
            cx.figs.set(
                "finder",
                &format!("{state}: p50 ms ({mode})"),
                B::NAME,
                Some(t.p50),
                &t.returned(),
            );
            cx.figs.set(
                "finder",
                &format!("{state}: p99 ms ({mode})"),
                B::NAME,
                Some(t.p99),
                "",
            );
        }
    }
    Ok(())
}

/// Figures of a run of timed finder calls.
struct FinderTimes {
    p50: f64,
    p99: f64,
    min: usize,
    max: usize,
}

impl FinderTimes {
    fn returned(&self) -> String {
        if self.min == self.max {
            format!("{} returned", self.min)
        } else {
            format!("{}..{} returned", self.min, self.max)
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

async fn time_finder<B: Backend>(backend: &B, calls: usize) -> Result<FinderTimes, Error> {
    for _ in 0..5 {
        backend
            .find_available_tasks(WORKER, LIMIT, aging(), &[])
            .await?;
    }
    let mut times = Vec::with_capacity(calls);
    let (mut min, mut max) = (usize::MAX, 0);
    for _ in 0..calls {
        let t = Instant::now();
        let found = backend
            .find_available_tasks(WORKER, LIMIT, aging(), &[])
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        min = min.min(found.len());
        max = max.max(found.len());
    }
    times.sort_by(f64::total_cmp);
    Ok(FinderTimes {
        p50: pct(&times, 0.50),
        p99: pct(&times, 0.99),
        min,
        max,
    })
}

#[derive(QueryableByName)]
struct TableStats {
    #[diesel(sql_type = Double)]
    reltuples: f64,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = Double)]
    age: f64,
    #[diesel(sql_type = Bool)]
    auto: bool,
}

/// What the planner believes about the workflow, queue and output tables: rows
/// counted now vs `reltuples`, and how long ago they were analyzed.
async fn stats_note<B: Backend>(conn: &mut AsyncPgConnection) -> Result<String, Error> {
    let mut parts = Vec::new();
    for table in B::TABLES
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || **t == "sayiir.tasks" || **t == B::OUTPUTS_TABLE)
        .map(|(_, t)| *t)
    {
        let s = diesel::sql_query(format!(
            "{TAG} SELECT c.reltuples::float8 AS reltuples, \
                    (SELECT count(*) FROM {table})::bigint AS rows, \
                    coalesce(extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze)), -1)::float8 AS age, \
                    coalesce(s.last_autoanalyze > s.last_analyze OR (s.last_analyze IS NULL AND s.last_autoanalyze IS NOT NULL), false) AS auto \
             FROM pg_class AS c JOIN pg_stat_user_tables AS s ON s.relid = c.oid \
             WHERE c.oid = '{table}'::regclass"
        ))
        .get_result::<TableStats>(conn)
        .await?;
        let when = if s.age < 0.0 {
            "never analyzed".to_owned()
        } else {
            format!(
                "analyzed {:.0} s ago{}",
                s.age,
                if s.auto { " by autovacuum" } else { "" }
            )
        };
        parts.push(format!(
            "{table}: {} rows, planner thinks {:.0} ({when})",
            s.rows, s.reltuples
        ));
    }
    Ok(parts.join("; "))
}

/// Writes the templates through the backend's API with one worker:
/// `ftemplate0` (linear) runs to Completed and `ptemplate0` (a giant)
/// parks on its hour-long delay, as asked; then `qtemplate0` (linear) is
/// submitted and left at its first task.
async fn templates<B: Backend>(
    backend: &B,
    args: &Args,
    url: &str,
    finished: bool,
    parked: bool,
) -> Result<(), Error> {
    let probe = Probe::new(1);
    let linear = Arc::new(workloads::measured(crate::args::Workload::Linear, &probe)?);
    let giant = Arc::new(workloads::giant(&probe)?);
    let client = WorkflowClient::new(backend.clone());
    if finished || parked {
        let registry = vec![
            (*linear.definition_hash(), Arc::clone(&linear)),
            (*giant.definition_hash(), Arc::clone(&giant)),
        ];
        let workers = run::spawn_named(backend, args, &registry, "template", 1);
        if finished {
            client.submit(&*linear, "ftemplate0", run::input(0)).await?;
        }
        if parked {
            client.submit(&*giant, "ptemplate0", run::input(0)).await?;
        }
        let mut monitor = Monitor::open(url, B::TABLE).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done = !finished || monitor.count("Completed", None).await? >= 1;
            let napping = !parked || monitor.count("InProgress", Some("AtDelay")).await? >= 1;
            if done && napping {
                break;
            }
            if Instant::now() > deadline {
                return Err("templates did not reach their state within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(e) = run::stop(workers).await.into_iter().next() {
            return Err(format!("template worker: {e}").into());
        }
    }
    client.submit(&*linear, "qtemplate0", run::input(0)).await?;
    Ok(())
}

/// Minimum duration of a statement whose plan is logged during the timed
/// finder calls.
const SLOW_MS: u32 = 10;

/// Times the finder with auto_explain logging the plan (ANALYZE, BUFFERS,
/// no per-node timing) of every statement that takes [`SLOW_MS`] or more,
/// so a slow plan is caught as it happens (every statement pays the row
/// and buffer counting), then runs 12 more calls on the same backend with
/// auto_explain (ANALYZE, BUFFERS) on for every statement, so its
/// long-lived pooled connections show the plans they use (prepared
/// statements may have switched to a generic plan). Both logs go under
/// `target/bench-plans/`; per statement the distinct plans are printed
/// with their runs and median duration.
async fn time_and_explain<B: Backend>(
    cx: &mut Ctx<'_>,
    backend: &B,
    oid: i64,
    tag: &str,
) -> Result<FinderTimes, Error> {
    let slug: String = format!("{} {tag}", B::NAME)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let log = cx.server.log_path();
    let offset = log.as_deref().map_or(0, plans::log_len);
    let slow_on = log.is_some() && cx.server.auto_explain(Explain::Slower(SLOW_MS)).await?;
    cx.server.reset_statements().await?;
    let timed = time_finder(backend, cx.sa.calls).await;
    let times = cx
        .server
        .statement_times(oid, i64::try_from(cx.sa.calls)?)
        .await;
    if slow_on {
        cx.server.auto_explain(Explain::Off).await?;
    }
    let t = timed?;
    for st in times? {
        println!(
            "{:<8}            timed calls, server side: {}: {} calls, planned {} times, \
             mean plan {:.3} ms + execution {:.3} ms",
            B::NAME,
            plans::label(&st.query),
            st.calls,
            st.plans,
            st.plan_ms,
            st.exec_ms
        );
    }
    let Some(log) = log.filter(|_| slow_on) else {
        return Ok(t);
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = plans::log_since(&log, offset);
    std::fs::write(cx.plans_dir.join(format!("{slug}-timed.log")), &text)?;
    let slow = plans::summary(&plans::records(&text), 1);
    if slow.is_empty() {
        println!(
            "{:<8}            timed calls: no statement took {SLOW_MS} ms or more",
            B::NAME
        );
    }
    for line in slow {
        println!(
            "{:<8}            timed calls, >= {SLOW_MS} ms: {line}",
            B::NAME
        );
    }

    let offset = plans::log_len(&log);
    cx.server.auto_explain(Explain::Analyze).await?;
    let mut calls = Ok(());
    for _ in 0..12 {
        if let Err(e) = backend
            .find_available_tasks(WORKER, LIMIT, aging(), &[])
            .await
        {
            calls = Err(e);
            break;
        }
    }
    cx.server.auto_explain(Explain::Off).await?;
    calls?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = plans::log_since(&log, offset);
    std::fs::write(cx.plans_dir.join(format!("{slug}-analyze.log")), &text)?;
    for line in plans::summary(&plans::records(&text), 10) {
        println!("{:<8}            EXPLAIN ANALYZE after: {line}", B::NAME);
    }
    Ok(t)
}

// ---------------------------------------------------------------- parked

async fn parked_part<B: Backend>(cx: &mut Ctx<'_>) -> Result<(), Error> {
    let db = format!("sayiir_scale_{}_parked_{}", std::process::id(), B::NAME);
    let oid = cx.server.create_database(&db).await?;
    let r = parked_states::<B>(cx, &db, oid).await;
    if let Err(e) = cx.server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    r
}

async fn parked_states<B: Backend>(cx: &mut Ctx<'_>, db: &str, oid: i64) -> Result<(), Error> {
    let url = cx.server.url_for(db);
    let backend = B::open_finder(&url, cx.args.pool).await?;
    templates(&backend, cx.args, &url, false, true).await?;
    let mut seeder = Seeder::open(&url).await?;
    let parked = cx.sa.parked as u64;
    let mut seeded = seeder
        .copy(B::TABLES, "ptemplate0", "p", 1, parked.saturating_sub(1))
        .await?;
    seeded += seeder
        .copy(B::TABLES, "qtemplate0", "q", 1, QUEUED - 1)
        .await?;
    let state = format!(
        "{} queued, {} parked",
        count_label(QUEUED),
        count_label(parked)
    );
    println!(
        "{:<8} parked, {state}: seeded in {:.1} s",
        B::NAME,
        seeded.as_secs_f64()
    );
    let mut conn = AsyncPgConnection::establish(&url).await?;
    for analyzed in [false, true] {
        let mode = if analyzed { "analyzed" } else { "stale" };
        if analyzed {
            conn.batch_execute("ANALYZE").await?;
        }
        let stats = stats_note::<B>(&mut conn).await?;
        let t = time_and_explain(cx, &backend, oid, &format!("parked {mode}")).await?;
        println!(
            "{:<8}   {mode:<8} finder p50 {:.3} ms p99 {:.3} ms, returned {} | {stats}",
            B::NAME,
            t.p50,
            t.p99,
            t.returned()
        );
        cx.figs.set(
            "parked",
            &format!("{state}: finder p50 ms ({mode})"),
            B::NAME,
            Some(t.p50),
            &t.returned(),
        );
        cx.figs.set(
            "parked",
            &format!("{state}: finder p99 ms ({mode})"),
            B::NAME,
            Some(t.p99),
            "",
        );
        if B::NAME == "diesel" {
            let (with, without) = maintenance_pairs(&backend, 20).await?;
            println!(
                "{:<8}   {mode:<8} find running maintenance p50 {with:.3} ms, next find p50 {without:.3} ms",
                B::NAME
            );
            cx.figs.set(
                "parked",
                &format!("{state}: find + maintenance pass p50 ms ({mode})"),
                B::NAME,
                Some(with),
                "",
            );
            cx.figs.set(
                "parked",
                &format!("{state}: find, no maintenance p50 ms ({mode})"),
                B::NAME,
                Some(without),
                "",
            );
            for generic in [false, true] {
                let plan = explain_maintenance(&mut conn, generic).await?;
                let kind = if generic { "generic" } else { "custom" };
                let file = cx
                    .plans_dir
                    .join(format!("diesel-maintenance-{mode}-{kind}.txt"));
                std::fs::write(&file, &plan)?;
                let seq = plans::seq_scans(&plan);
                let reads = if seq.is_empty() {
                    "indexes only".to_owned()
                } else {
                    format!("seq scan of {}", seq.join(", "))
                };
                println!(
                    "{:<8}   {mode:<8} MAINTENANCE_SQL {kind} plan: {:.3} ms, {reads}: {}",
                    B::NAME,
                    plans::execution_ms(&plan).unwrap_or(f64::NAN),
                    plans::scans(&plan)
                );
                cx.figs.set(
                    "parked",
                    &format!("{state}: MAINTENANCE_SQL ms, {kind} plan ({mode})"),
                    B::NAME,
                    plans::execution_ms(&plan),
                    &reads,
                );
            }
        }
    }
    Ok(())
}

/// `pairs` times: wait until maintenance is due again, time the find call
/// that runs it, then the next one (which does not). Medians of both.
async fn maintenance_pairs<B: Backend>(backend: &B, pairs: usize) -> Result<(f64, f64), Error> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..pairs {
        tokio::time::sleep(Duration::from_millis(550)).await;
        for v in [&mut with, &mut without] {
            let t = Instant::now();
            backend
                .find_available_tasks(WORKER, LIMIT, aging(), &[])
                .await?;
            v.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    with.sort_by(f64::total_cmp);
    without.sort_by(f64::total_cmp);
    Ok((pct(&with, 0.5), pct(&without, 0.5)))
}

/// Maintenance's scan for due rows: the statement the backend runs, read
/// from its source file (the crate keeps its statements private).
const MAINTENANCE_SQL: &str = include_str!("../../src/models/tasks/due_work.sql");

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the maintenance statement with the
/// backend's parameters (recovery grace 30 s, batch 64), prepared, with a
/// custom or a generic plan.
async fn explain_maintenance(conn: &mut AsyncPgConnection, generic: bool) -> Result<String, Error> {
    conn.batch_execute(&format!(
        "PREPARE bench_due(float8, bigint) AS {MAINTENANCE_SQL}"
    ))
    .await?;
    let mode = if generic {
        "force_generic_plan"
    } else {
        "force_custom_plan"
    };
    let result = async {
        conn.batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .await?;
        let lines = diesel::sql_query("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_due(30000, 64)")
            .load::<PlanLine>(conn)
            .await?;
        Ok::<String, Error>(
            lines
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    }
    .await;
    conn.batch_execute("RESET plan_cache_mode; DEALLOCATE bench_due")
        .await?;
    result
}

// -------------------------------------------------------------- dispatch

async fn dispatch_part<B: Backend>(cx: &mut Ctx<'_>, procs: usize) -> Result<(), Error> {
    let db = format!(
        "sayiir_scale_{}_dispatch{procs}_{}",
        std::process::id(),
        B::NAME
    );
    cx.server.create_database(&db).await?;
    let r = dispatch_run::<B>(cx, &db, procs).await;
    if let Err(e) = cx.server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    r
}

#[derive(QueryableByName)]
struct Secs {
    #[diesel(sql_type = diesel::sql_types::Nullable<Double>)]
    s: Option<f64>,
}

/// A worker process: this program with `--dispatch-child`.
struct Child {
    proc: tokio::process::Child,
    out: BufReader<tokio::process::ChildStdout>,
}

async fn dispatch_run<B: Backend>(cx: &mut Ctx<'_>, db: &str, procs: usize) -> Result<(), Error> {
    let url = cx.server.url_for(db);
    let n = cx.sa.delays as u64;
    let nap = cx.sa.delay;
    // The template parks through the API with one in-process worker.
    {
        let backend = B::open(&url, cx.args.pool).await?;
        let probe = Probe::new(1);
        let wf = Arc::new(workloads::delayed(&probe, nap)?);
        let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
        let workers = run::spawn_named(&backend, cx.args, &registry, "template", 1);
        WorkflowClient::new(backend.clone())
            .submit(&*wf, "dtemplate0", run::input(0))
            .await?;
        let mut monitor = Monitor::open(&url, B::TABLE).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while monitor.count("InProgress", Some("AtDelay")).await? < 1 {
            if Instant::now() > deadline {
                return Err("the dispatch template did not park within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(e) = run::stop(workers).await.into_iter().next() {
            return Err(format!("template worker: {e}").into());
        }
    }
    let seeded = Seeder::open(&url)
        .await?
        .copy(B::TABLES, "dtemplate0", "d", 1, n - 1)
        .await?;
    let mut children = Vec::new();
    for p in 0..procs {
        children.push(spawn_child(B::NAME, &url, nap, p, cx.args, cx.sa)?);
    }
    let ready = async {
        for c in &mut children {
            let mut line = String::new();
            c.out.read_line(&mut line).await?;
            if line.trim() != "ready" {
                return Err::<(), Error>(format!("worker process said {line:?}").into());
            }
        }
        Ok(())
    };
    let measured = async {
        tokio::time::timeout(Duration::from_secs(120), ready)
            .await
            .map_err(|_| "worker processes not ready within 120 s")??;
        let mut conn = AsyncPgConnection::establish(&url).await?;
        let left = diesel::sql_query(format!(
            "{TAG} SELECT extract(epoch FROM (w.t - clock_timestamp()))::float8 AS s FROM ({}) AS w",
            B::FIRST_WAKE_SQL
        ))
        .get_result::<Secs>(&mut conn)
        .await?
        .s
        .ok_or("no parked delay found")?;
        if left < 0.2 {
            return Err::<(Duration, Duration, f64, Duration), Error>(
                format!(
                    "the delays ended {:.1} s before the worker processes were ready \
                     (seeding took {:.1} s): raise --scale-delay-s",
                    -left,
                    seeded.as_secs_f64()
                )
                .into(),
            );
        }
        let wake = Instant::now() + Duration::from_secs_f64(left);
        let mut monitor = Monitor::open(&url, B::TABLE).await?;
        let deadline = wake + cx.args.timeout;
        let mut first = None;
        let mut half = None;
        loop {
            let done = u64::try_from(monitor.count("Completed", None).await?)?;
            let now = Instant::now();
            if done > 0 && first.is_none() {
                first = Some(now);
            }
            if done * 2 >= n && half.is_none() {
                half = Some(now);
            }
            if done >= n {
                let since = |t: Option<Instant>| t.unwrap_or(now).saturating_duration_since(wake);
                return Ok((since(first), since(half), left, now.saturating_duration_since(wake)));
            }
            if now > deadline {
                return Err(format!("timed out: {done} of {n} Completed").into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    .await;
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    for mut c in children {
        drop(c.proc.stdin.take());
        let mut note = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(60), c.out.read_line(&mut note)).await;
        notes.push(format!("[{}]", note.trim()));
        match tokio::time::timeout(Duration::from_secs(60), c.proc.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => errors.push(format!("worker process exited with {status}")),
            Ok(Err(e)) => errors.push(format!("worker process: {e}")),
            Err(_) => {
                let _ = c.proc.kill().await;
                errors.push("worker process did not exit within 60 s".to_owned());
            }
        }
    }
    let (first, half, left, all) = measured?;
    if let Some(e) = errors.into_iter().next() {
        return Err(e.into());
    }
    let label = format!(
        "{} delays, {procs} process(es) x {} workers",
        count_label(n),
        cx.sa.proc_workers
    );
    println!(
        "{:<8} dispatch, {label}: seeded in {:.1} s, workers ready {left:.1} s before the wake; \
         first Completed {:.2} s after it, half {:.2} s, all {:.2} s ({:.0} workflows/s)",
        B::NAME,
        seeded.as_secs_f64(),
        first.as_secs_f64(),
        half.as_secs_f64(),
        all.as_secs_f64(),
        n as f64 / all.as_secs_f64()
    );
    println!("{:<8}   worker processes: {}", B::NAME, notes.join(" "));
    cx.figs.set(
        "dispatch",
        &format!("{label}: s wake -> all Completed"),
        B::NAME,
        Some(all.as_secs_f64()),
        &format!("{:.0}/s", n as f64 / all.as_secs_f64()),
    );
    cx.figs.set(
        "dispatch",
        &format!("{label}: s wake -> half Completed"),
        B::NAME,
        Some(half.as_secs_f64()),
        "",
    );
    Ok(())
}

fn spawn_child(
    backend: &str,
    url: &str,
    nap: Duration,
    proc: usize,
    args: &Args,
    sa: &ScaleArgs,
) -> Result<Child, Error> {
    let exe = std::env::current_exe()?;
    let mut proc = tokio::process::Command::new(exe)
        .arg("--dispatch-child")
        .args([
            backend.to_owned(),
            url.to_owned(),
            nap.as_millis().to_string(),
            sa.proc_workers.to_string(),
            proc.to_string(),
            args.pool.to_string(),
            args.poll.as_millis().to_string(),
            args.batch.to_string(),
            args.claim_ttl.as_secs().to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = BufReader::new(proc.stdout.take().ok_or("worker process without stdout")?);
    Ok(Child { proc, out })
}

/// `--dispatch-child BACKEND URL NAP_MS WORKERS PROC POOL POLL_MS BATCH
/// TTL_S`: runs WORKERS PooledWorkers on the dispatch workflow, prints
/// `ready`, and stops them when stdin closes.
pub async fn child(argv: &[String]) -> Result<(), Error> {
    let [backend, url, nap, workers, proc, pool, poll, batch, ttl] = argv else {
        return Err("--dispatch-child needs 9 arguments".into());
    };
    let num = |s: &String| {
        s.parse::<u64>()
            .map_err(|e| Error::from(format!("{s}: {e}")))
    };
    let mut args = Args::parse_from(Vec::new())?;
    args.pool = usize::try_from(num(pool)?)?;
    args.poll = Duration::from_millis(num(poll)?);
    args.batch = usize::try_from(num(batch)?)?;
    args.claim_ttl = Duration::from_secs(num(ttl)?);
    let nap = Duration::from_millis(num(nap)?);
    let workers = usize::try_from(num(workers)?)?;
    let prefix = format!("proc{proc}");
    match backend.as_str() {
        "diesel" => serve::<DieselBackend<JsonCodec>>(url, &args, nap, &prefix, workers).await,
        "postgres" => serve::<PostgresBackend<JsonCodec>>(url, &args, nap, &prefix, workers).await,
        other => Err(format!("unknown backend {other}").into()),
    }
}

async fn serve<B: Backend>(
    url: &str,
    args: &Args,
    nap: Duration,
    prefix: &str,
    workers: usize,
) -> Result<(), Error> {
    let probe = Probe::new(0);
    let wf = Arc::new(workloads::delayed(&probe, nap)?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let backend = B::open(url, args.pool).await?;
    let handles = run::spawn_named(&backend, args, &registry, prefix, workers);
    {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    let errors = run::stop(handles).await;
    println!("{}", backend.note());
    match errors.into_iter().next() {
        Some(e) => Err(format!("worker error: {e}").into()),
        None => Ok(()),
    }
}
