//! Side-by-side benchmark: the crates.io `sayiir-postgres` 1.0 backend and
//! `sayiir_diesel::DieselBackend`, both `JsonCodec`, on one PostgreSQL
//! server, driven by the real `sayiir-runtime` (in-process `PooledWorker`s
//! and a `WorkflowClient`).
//!
//! ```sh
//! cargo run --release --example bench -- --workflows 1000 --rounds 3 --workload all
//! ```
//!
//! Every run (backend × workload × round) gets a fresh database; within a
//! round the backends run back to back, and which one goes first
//! alternates between rounds. The summary gives medians over rounds and
//! the ratio diesel / postgres, plus the range of the per-round ratios:
//! on a small, noisy machine read the ratios, not the absolute figures.
//! `--help` lists the flags; `run.rs` describes how a run is measured,
//! `scale.rs` what `--scale` measures.

mod args;
mod backends;
mod drive;
mod monitor;
mod plans;
mod procstat;
mod replication;
mod report;
mod run;
mod scale;
mod seed;
mod server;
mod workers;
mod workloads;

use sayiir_diesel::DieselBackend;
use sayiir_postgres::PostgresBackend;
use sayiir_runtime::serialization::JsonCodec;

use crate::args::Args;
use crate::server::Server;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--dispatch-child") {
        if let Err(e) = scale::child(&argv[1..]).await {
            eprintln!("bench worker process: {e}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = bench().await {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

async fn bench() -> Result<(), Error> {
    let args = Args::parse()?;
    if args.replication {
        return replication::replication(&args).await;
    }
    let mut server = Server::open(args.scale.is_some(), args.durable).await?;
    let ticks = procstat::clock_ticks();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("sayiir backend benchmark: sayiir-postgres 1.0.0 vs sayiir-diesel (JsonCodec)");
    println!(
        "machine: {cores} cores | PostgreSQL {} ({}) | pg_stat_statements: {} | server CPU: {}",
        server.version,
        if server.throwaway {
            "throwaway local server"
        } else {
            "DATABASE_URL"
        },
        if server.statements { "yes" } else { "no" },
        server
            .postmaster
            .map_or_else(|| "n/a".to_owned(), |pid| format!("postmaster pid {pid}")),
    );
    println!(
        "commits: {} ({})",
        server.durability.describe(),
        if args.durable {
            "--durable"
        } else if server.throwaway {
            "the throwaway server's default; --durable for fsync=on"
        } else {
            "DATABASE_URL's settings"
        }
    );
    println!("source: {}", source_state());
    if let Some(sa) = &args.scale {
        return scale::scale(&mut server, &args, sa).await;
    }
    println!(
        "workloads: {} | {} workflows/run, {} round(s) | {} workers, batch {}, poll {} ms, \
         claim TTL {} s, pool {} connections per backend{}",
        report::names(&args.workloads),
        args.workflows,
        args.rounds,
        args.workers,
        args.batch,
        args.poll.as_millis(),
        args.claim_ttl.as_secs(),
        args.pool,
        if args.workloads.contains(&args::Workload::Giants) {
            format!(", {} giants parked for giants", args.giants)
        } else {
            String::new()
        },
    );
    println!(
        "throughput: first submit -> every workflow Completed (polled every 2 ms once all \
         last steps ran); latency: submit -> last step ran (recorded in the step, so \
         without the final Completed save); statements and transactions from \
         pg_stat_statements and pg_stat_database, the bench's own queries left out; \
         claims/step: calls of the backend's claim statement per step executed (1.00: no \
         claim lost to another worker); CPU \
         from /proc (server: postmaster + children, exited ones via cutime); run peak \
         RSS via /proc/self/clear_refs.\n"
    );

    let mut outcomes = Vec::new();
    for &workload in &args.workloads {
        for round in 0..args.rounds {
            let postgres_first = round % 2 == 0;
            for turn in 0..2 {
                let postgres = (turn == 0) == postgres_first;
                if !args.runs(if postgres { "postgres" } else { "diesel" }) {
                    continue;
                }
                let outcome = if postgres {
                    run::run::<PostgresBackend<JsonCodec>>(
                        &mut server,
                        &args,
                        workload,
                        round,
                        ticks,
                    )
                    .await
                } else {
                    run::run::<DieselBackend<JsonCodec>>(&mut server, &args, workload, round, ticks)
                        .await
                };
                println!("{}", report::line(&outcome));
                outcomes.push(outcome);
            }
        }
    }

    if args.top > 0 {
        println!();
        for o in outcomes.iter().filter(|o| !o.top.is_empty()) {
            println!("{}", report::top(o));
        }
    }
    print!("{}", report::summary(&outcomes, &args));
    println!(
        "ratio = diesel / postgres of the medians; per-round ratios pair the two backends of \
         the same round. Throughput: > 1 means diesel is faster. Latency, statements, \
         transactions, CPU, memory: < 1 means diesel is cheaper."
    );
    println!(
        "process peak RSS (VmHWM, both backends, whole run): {} MiB",
        procstat::process_peak_mib().map_or_else(|| "n/a".to_owned(), |m| format!("{m:.1}"))
    );
    if outcomes.iter().any(|o| !o.ok()) {
        return Err("some runs failed (see above)".into());
    }
    Ok(())
}

/// The commit this checkout is at and how many files under `src/` and
/// `migrations/` differ from it (the bench measures the working tree as
/// it was when the example was built).
fn source_state() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (no git)".to_owned();
    };
    let dirty =
        git(&["status", "--porcelain", "--", "src", "migrations"]).map_or(0, |s| s.lines().count());
    let built = std::env::current_exe()
        .and_then(|e| e.metadata())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(
            || "unknown".to_owned(),
            |d| {
                let s = d.as_secs();
                format!("{:02}:{:02} UTC", s / 3600 % 24, s / 60 % 60)
            },
        );
    format!(
        "this binary built at {built} from the working tree; checkout now at commit {}{}",
        commit.trim(),
        if dirty > 0 {
            format!(" + {dirty} uncommitted file(s) under src/ and migrations/")
        } else {
            String::new()
        }
    )
}
