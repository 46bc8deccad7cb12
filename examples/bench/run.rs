//! One run: one backend, one workload, one round, in a database of its own.
//!
//! 1. Create the database; connect the backend once, untimed, so its
//!    migrations (and, for `giants`, the seeding of parked workflows) stay
//!    out of the figures; drop it and wait until its sessions are gone.
//! 2. Sample the counters: transactions of the database, CPU of this
//!    process and of the server, and reset `pg_stat_statements` and this
//!    process's peak RSS.
//! 3. Connect the backend again, spawn the workers, submit every workflow
//!    (and, for `signal`, send each parked workflow its event), wait until
//!    every last step ran and every workflow is Completed.
//! 4. Shut the workers down, drop the backend, wait until no session is
//!    left (sessions flush their statistics when they exit), sample again,
//!    drop the database.
use std::sync::Arc;
use std::time::Duration;

use sayiir_runtime::WorkflowClient;

use crate::args::{Args, Workload};
use crate::backends::Backend;
use crate::drive::{drive, seed_giants};
use crate::monitor::Monitor;
use crate::server::Server;
use crate::workers::{spawn_workers, stop};
use crate::workloads::{self, Probe};
use crate::{Error, procstat};

/// What one run measured.
pub struct Outcome {
    pub backend: &'static str,
    pub workload: Workload,
    pub round: usize,
    pub error: Option<String>,
    pub workflows: usize,
    /// First submit → every workflow observed Completed.
    pub elapsed: Duration,
    /// Submit → last step, per workflow, sorted.
    pub latencies: Vec<Duration>,
    pub statements: Option<i64>,
    pub transactions: Option<i64>,
    /// Of which rolled back (a statement that failed, or an explicit ROLLBACK).
    pub rollbacks: Option<i64>,
    /// WAL flushes to disk during the run (`pg_stat_wal.wal_sync`, the
    /// whole server: the commits that waited for one, and the WAL
    /// writer's own). Zero with `fsync = off`.
    pub wal_syncs: Option<i64>,
    /// Calls of the backend's claim statement (attempts, won or lost).
    pub claims: Option<i64>,
    /// Step executions, distinct (workflow, step) pairs, expected pairs.
    pub executions: u64,
    pub distinct: u64,
    pub expected: u64,
    /// Executions that belong to no measured step (e.g. a giant woke up).
    pub stray: u64,
    pub client_cpu: Option<f64>,
    pub server_cpu: Option<f64>,
    /// CPU the rest of the machine used meanwhile (noise indicator).
    pub other_cpu: Option<f64>,
    pub rss_mib: Option<f64>,
    pub peak_mib: Option<f64>,
    /// VmRSS when 10 %, 20 %, … of the workflows had run their last step.
    pub rss_deciles: Vec<(usize, f64)>,
    /// VmRSS once every workflow was Completed (workers still running).
    pub rss_done: Option<f64>,
    /// Sessions that had to be terminated after the run.
    pub ended_sessions: i64,
    pub worker_errors: Vec<String>,
    pub note: String,
    pub top: Vec<(i64, String)>,
}

impl Outcome {
    fn new(backend: &'static str, workload: Workload, round: usize, workflows: usize) -> Self {
        Outcome {
            backend,
            workload,
            round,
            error: None,
            workflows,
            elapsed: Duration::ZERO,
            latencies: Vec::new(),
            statements: None,
            transactions: None,
            rollbacks: None,
            wal_syncs: None,
            claims: None,
            executions: 0,
            distinct: 0,
            expected: 0,
            stray: 0,
            client_cpu: None,
            server_cpu: None,
            other_cpu: None,
            rss_mib: None,
            peak_mib: None,
            rss_deciles: Vec::new(),
            rss_done: None,
            ended_sessions: 0,
            worker_errors: Vec::new(),
            note: String::new(),
            top: Vec::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && self.worker_errors.is_empty()
    }
}

/// Runs one backend on `workload` in a fresh database, then drops it.
pub async fn run<B: Backend>(
    server: &mut Server,
    args: &Args,
    workload: Workload,
    round: usize,
    ticks: f64,
) -> Outcome {
    // Idle latency: its own count, and workers that poll every second.
    let idle;
    let args = if workload == Workload::Idle {
        idle = Args {
            workflows: args.idle_workflows,
            poll: Duration::from_secs(1),
            ..args.clone()
        };
        &idle
    } else {
        args
    };
    let mut out = Outcome::new(B::NAME, workload, round, args.workflows);
    let db = format!(
        "sayiir_bench_{}_{}_{}_r{round}",
        std::process::id(),
        workload.name(),
        B::NAME
    );
    match server.create_database(&db).await {
        Ok(oid) => {
            if let Err(e) = measure::<B>(server, args, &db, oid, ticks, &mut out).await {
                out.error = Some(e.to_string());
            }
        }
        Err(e) => out.error = Some(format!("create database: {e}")),
    }
    if let Err(e) = server.drop_database(&db).await {
        eprintln!("warning: could not drop {db}: {e}");
    }
    out
}

async fn measure<B: Backend>(
    server: &mut Server,
    args: &Args,
    db: &str,
    oid: i64,
    ticks: f64,
    out: &mut Outcome,
) -> Result<(), Error> {
    let url = server.url_for(db);
    let giants = if out.workload == Workload::Giants {
        args.giants
    } else {
        0
    };
    // 1. Untimed: migrations, and the parked giants.
    {
        let backend = B::open(&url, args.pool).await?;
        if giants > 0 {
            seed_giants(&backend, args, &url, giants).await?;
        }
    }
    server.wait_no_sessions(db, Duration::from_secs(30)).await?;
    let mut monitor = Monitor::open(&url, B::TABLE).await?;

    // 2. Counters before.
    let xacts_before = server.transactions(oid).await?;
    let rollbacks_before = server.rollbacks(oid).await?;
    let wal_syncs_before = server.wal_syncs().await?;
    server.reset_statements().await?;
    let client_before = procstat::self_cpu_ticks();
    let server_before = server.postmaster.and_then(procstat::server_cpu_ticks);
    let machine_before = procstat::machine_busy_ticks();
    let peak_reset = procstat::reset_peak_rss();

    // 3. The measured part.
    let n = args.workflows;
    let probe = Probe::new(n);
    let wf = Arc::new(workloads::measured(out.workload, &probe)?);
    let giant_probe = Probe::new(giants);
    let giant = Arc::new(workloads::giant(&giant_probe)?);
    let mut registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    if giants > 0 {
        registry.push((*giant.definition_hash(), Arc::clone(&giant)));
    }
    let backend = B::open(&url, args.pool).await?;
    let workers = spawn_workers(&backend, args, &registry);
    let client = WorkflowClient::new(backend.clone());
    let (driven, deciles) = drive(&client, &mut monitor, &wf, &probe, args, out.workload).await;
    out.rss_deciles = deciles;
    out.rss_done = procstat::status_mib("VmRSS");
    out.worker_errors = stop(workers).await;
    out.note = backend.note();
    drop(client);
    drop(backend);
    let monitor_calls = monitor.calls;
    drop(monitor);

    // 4. Counters after, once every session of the run has exited.
    out.ended_sessions = server.wait_no_sessions(db, Duration::from_secs(30)).await?;
    let secs = |before: Option<u64>, after: Option<u64>| {
        Some(after?.saturating_sub(before?) as f64 / ticks)
    };
    out.client_cpu = secs(client_before, procstat::self_cpu_ticks());
    out.server_cpu = secs(
        server_before,
        server.postmaster.and_then(procstat::server_cpu_ticks),
    );
    let machine = secs(machine_before, procstat::machine_busy_ticks());
    out.other_cpu = match (machine, out.client_cpu) {
        (Some(m), Some(c)) => Some((m - c - out.server_cpu.unwrap_or(0.0)).max(0.0)),
        _ => None,
    };
    out.transactions = Some(server.transactions(oid).await? - xacts_before - monitor_calls);
    out.rollbacks = Some(server.rollbacks(oid).await? - rollbacks_before);
    out.wal_syncs = match (wal_syncs_before, server.wal_syncs().await?) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    out.statements = server.statements(oid).await?;
    out.claims = server.calls_like(oid, B::CLAIM_LIKE).await?;
    if out.round == 0 && args.top > 0 {
        out.top = server.top_statements(oid, i64::try_from(args.top)?).await?;
    }
    out.rss_mib = procstat::status_mib("VmRSS");
    out.peak_mib = if peak_reset {
        procstat::status_mib("VmHWM")
    } else {
        None
    };
    let (executions, distinct, stray) = probe.executions();
    let (giant_runs, _, giant_stray) = giant_probe.executions();
    out.executions = executions;
    out.distinct = distinct;
    out.expected = (n * out.workload.steps()) as u64;
    out.stray = stray + giant_runs + giant_stray;
    out.latencies = probe.latencies();
    out.elapsed = driven?;
    Ok(())
}
