//! A chaos soak (issue 15): worker processes running every workflow shape
//! through fault-injecting proxies while the driver submits, signals,
//! cancels, pauses and unpauses, and faults hit on a seeded schedule; the
//! invariants are checked at the end from the database and the processes'
//! execution logs.
//!
//! ```sh
//! cargo run --release --example soak -- --minutes 2 --processes 3 --seed 42
//! ```
//!
//! The driver re-runs this binary as `--worker <i>` processes (`worker.rs`),
//! each behind its own `sayiir_diesel_testkit::Proxy`. `faults.rs` lists
//! the faults, `driver.rs` the user side, `setup.rs` the database and log
//! directory a run starts from, `check.rs` the invariants. The
//! exit code is non-zero when any invariant is violated.

mod args;
mod check;
mod driver;
mod faults;
mod fleet;
mod setup;
mod tasklog;
mod worker;
mod workflows;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sayiir_diesel_testkit::{PgServer, Proxy};
use sayiir_runtime::WorkflowClient;

use crate::args::Args;
use crate::driver::Driver;
use crate::fleet::Fleet;
use crate::tasklog::now_ms;
use crate::workflows::Backend;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Inherited descriptors (a build lock held by a parent, say) must not
/// reach the server or the workers: mark every one above stderr
/// close-on-exec.
fn close_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number; a closed one only errors.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

#[tokio::main]
async fn main() {
    close_inherited_fds();
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let result = match args.worker {
        Some(i) => worker::run(&args, i).await.map(|()| true),
        None => drive(args).await,
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}

/// The driver. `Ok(false)`: an invariant was violated.
async fn drive(args: Args) -> Result<bool, Error> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = setup::log_dir(args.dir.as_deref(), seed)?;
    let server = Arc::new(tokio::task::spawn_blocking(|| PgServer::start_with(&[])).await??);
    let db = format!("soak_{}", seed % 1_000_000_007);
    let db_url = setup::fresh_database(&server, &db).await?;
    let upstream = setup::upstream_of(&db_url).await?;
    println!(
        "soak: seed {seed}, {} min, {} worker processes, {} workflows/s plus bursts of {} \
         every 15-25 s, logs in {}",
        args.minutes,
        args.processes,
        args.rate,
        args.burst,
        dir.display()
    );
    if let Some(c) = &args.corrupt {
        println!("soak: CORRUPTED on purpose ({c}): the checks must fail");
    }

    let mut proxies = Vec::new();
    for _ in 0..args.processes {
        proxies.push(Proxy::start(upstream).await?);
    }
    let exe = std::env::current_exe()?;
    let mut fleet = Fleet::new(exe, db.clone(), &dir, args.corrupt.clone(), proxies);
    for i in 0..args.processes {
        fleet.spawn(i)?;
    }
    let fleet = Arc::new(tokio::sync::Mutex::new(fleet));

    let backend = Backend::builder(&format!("{db_url}?application_name=soak-driver"))
        .max_connections(4)
        .run_migrations(false)
        .build()
        .await?;
    let mut driver = Driver::new(
        WorkflowClient::new(backend.clone()),
        seed,
        args.corrupt.clone(),
    );

    let run_secs = args.minutes * 60.0;
    let t0 = tokio::time::Instant::now();
    let start_ms = now_ms();
    let mut plan = faults::schedule(&mut rng, 8.0_f64.min(run_secs / 4.0), run_secs - 3.0);
    if args.no_faults {
        plan.clear();
    }
    println!(
        "faults planned: {}",
        plan.iter()
            .map(|(t, k)| format!("{t:.0}s {}", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let records = Arc::new(Mutex::new(Vec::new()));
    let injector = faults::Injector {
        fleet: Arc::clone(&fleet),
        server: Arc::clone(&server),
        db: db.clone(),
        records: Arc::clone(&records),
    };
    let faults_task = tokio::spawn(injector.run(seed, t0, plan));

    load(&mut driver, &fleet, &args, &mut rng, t0).await;
    let end_ms = now_ms();
    // Faults stop at the end of the run (the one in progress heals first).
    let _ = tokio::time::timeout(Duration::from_secs(30), faults_task).await;
    println!(
        "run over: {} workflows submitted; draining",
        driver.tracks.len()
    );
    let drained = driver.drain(Duration::from_secs(150)).await;
    if !drained {
        println!("drain: some workflows did not settle within 150 s");
    }
    fleet.lock().await.sample_minute();
    fleet.lock().await.sample_end();
    // Before the workers (and their pruners) stop.
    let orphan_events = check::orphan_events(&db_url).await;
    let stop_trouble = fleet.lock().await.stop_all();

    if args.corrupt.as_deref() == Some("leak-claim") {
        setup::leak_a_claim(&db_url).await?;
    }

    let lines = tasklog::read_all(&dir)?;
    let faults = records
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let fleet = fleet.lock().await;
    let run = check::Run {
        tracks: &driver.tracks,
        faults: &faults,
        lines: &lines,
        fleet: &fleet,
        backend: &backend,
        db_url: &db_url,
        start_ms,
        end_ms,
        stop_trouble: &stop_trouble,
        orphan_events: &orphan_events,
    };
    let bad = check::check(&run).await;
    println!(
        "driver: {} client errors retried or recorded; driver RSS peak {} MiB",
        driver.errors,
        fleet::status_kib(std::process::id(), "VmHWM").unwrap_or(0) / 1024
    );
    Ok(verdict(&bad, seed))
}

/// The run itself, until `args.minutes` have passed since `t0`: submit at
/// the rate plus a burst every 15-25 s, act at random, poll.
async fn load(
    driver: &mut Driver,
    fleet: &tokio::sync::Mutex<Fleet>,
    args: &Args,
    rng: &mut StdRng,
    t0: tokio::time::Instant,
) {
    let end = t0 + Duration::from_secs_f64(args.minutes * 60.0);
    let tick = Duration::from_millis(100);
    let mut owed = 0.0;
    let mut last_report = t0;
    let mut next_burst = t0 + Duration::from_secs(5);
    while tokio::time::Instant::now() < end {
        owed += args.rate * tick.as_secs_f64();
        while owed >= 1.0 {
            driver.submit().await;
            owed -= 1.0;
        }
        // Bursts build a backlog: workers then take full batches, whose
        // late entries are stale by the time they are claimed.
        if tokio::time::Instant::now() >= next_burst {
            for _ in 0..args.burst {
                driver.submit().await;
            }
            next_burst += Duration::from_secs_f64(rng.random_range(15.0..25.0));
        }
        if rng.random_bool(0.04) {
            driver.act().await;
        }
        driver.poll(40).await;
        fleet.lock().await.sample_minute();
        if last_report.elapsed() >= Duration::from_secs(15) {
            last_report = tokio::time::Instant::now();
            let settled = driver.tracks.iter().filter(|t| t.settled()).count();
            println!(
                "  +{:>4.0} s: {} submitted, {settled} settled",
                t0.elapsed().as_secs_f64(),
                driver.tracks.len()
            );
        }
        tokio::time::sleep(tick).await;
    }
}

/// Prints the violations (the first 40) and says whether there were none.
fn verdict(bad: &[String], seed: u64) -> bool {
    if bad.is_empty() {
        println!("\nsoak: every invariant held (seed {seed})");
        return true;
    }
    println!(
        "\nsoak: {} invariant violation(s) (seed {seed}):",
        bad.len()
    );
    for b in bad.iter().take(40) {
        println!("  - {b}");
    }
    if bad.len() > 40 {
        println!("  … and {} more", bad.len() - 40);
    }
    false
}
