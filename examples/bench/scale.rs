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
//!   [`MAINTENANCE_SQL`](parked::MAINTENANCE_SQL) with custom and generic plans.
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

mod cpu;
mod dispatch;
mod figures;
mod finder;
mod parked;
mod stats;
mod templates;
mod timing;
mod worker;

use std::path::PathBuf;

use sayiir_diesel::DieselBackend;
use sayiir_postgres::PostgresBackend;
use sayiir_runtime::serialization::JsonCodec;

use self::cpu::Cpu;
use self::dispatch::dispatch_part;
use self::figures::Figures;
use self::finder::finder_part;
use self::parked::parked_part;
pub use self::worker::child;
use crate::Error;
use crate::args::{Args, Part, ScaleArgs};
use crate::server::Server;

/// The worker id of every timed finder call.
const WORKER: &str = "scale-finder";
/// Finder batch size.
const LIMIT: usize = 8;
/// Queued workflows in the first state and next to the parked ones.
const QUEUED: u64 = 1_000;

fn aging() -> chrono::Duration {
    chrono::Duration::seconds(300)
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

fn count_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}
