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

use std::collections::HashSet;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use sayiir_core::registry::TaskRegistry;
use sayiir_diesel::DieselBackend;
use sayiir_persistence::{PersistentBackend, TaskClaimStore};
use sayiir_postgres::{PoolOptions, PostgresBackend};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkerHandle, WorkflowClient};

use crate::args::{Args, Workload};
use crate::server::{Monitor, Server};
use crate::workloads::{self, EVENT, Probe, STRIDE, Wf};
use crate::{Error, procstat};

/// A backend under test.
pub trait Backend: PersistentBackend + TaskClaimStore + Clone + Send + Sync + 'static {
    const NAME: &'static str;
    /// Its workflow table (with `status` and `position_kind` columns).
    const TABLE: &'static str;
    /// Every table holding rows of an instance, keyed by `instance_id`,
    /// the workflow table first and each table after those it references
    /// (the order `--scale` copies template rows in).
    const TABLES: &'static [&'static str];
    /// The table of task outputs (`--scale` copies finished workflows'
    /// outputs too, so the finder's output reads meet a realistic table).
    const OUTPUTS_TABLE: &'static str;
    /// The wake time of the earliest parked delay (`--scale` dispatch).
    const FIRST_WAKE_SQL: &'static str;
    /// Connects with a pool of `pool` connections, migrating if needed.
    fn open(url: &str, pool: usize) -> impl Future<Output = Result<Self, Error>>;
    /// The instance `--scale` times the finder on: repeated calls by one
    /// worker must see the same queue (ours: no offer lease).
    fn open_finder(url: &str, pool: usize) -> impl Future<Output = Result<Self, Error>> {
        Self::open(url, pool)
    }
    /// Backend counters worth printing after a run.
    fn note(&self) -> String;
}

impl Backend for DieselBackend<JsonCodec> {
    const NAME: &'static str = "diesel";
    const TABLE: &'static str = "sayiir.workflows";
    const TABLES: &'static [&'static str] = &[
        "sayiir.workflows",
        "sayiir.task_outputs",
        "sayiir.history",
        "sayiir.tasks",
    ];
    const OUTPUTS_TABLE: &'static str = "sayiir.task_outputs";
    const FIRST_WAKE_SQL: &'static str =
        "SELECT min(wake_at) AS t FROM sayiir.tasks WHERE position_kind = 'AtDelay'";

    async fn open(url: &str, pool: usize) -> Result<Self, Error> {
        Ok(DieselBackend::builder(url)
            .max_connections(pool)
            .build()
            .await?)
    }

    /// No offer lease: the timed calls (one worker id) find the same
    /// 8 picks every time, as sayiir-postgres's finder does (neither
    /// finder claims), and no pick is held back from anyone.
    async fn open_finder(url: &str, pool: usize) -> Result<Self, Error> {
        Ok(DieselBackend::builder(url)
            .max_connections(pool)
            .offer_lease(Duration::ZERO)
            .build()
            .await?)
    }

    fn note(&self) -> String {
        let m = self.metrics();
        format!(
            "advanced {} recovered {} retries {} wakeups {} dropped {} reconnects {}",
            m.advanced,
            m.recovered,
            m.retries,
            m.wakeups_delivered,
            m.wakeups_dropped,
            m.listener_reconnects
        )
    }
}

impl Backend for PostgresBackend<JsonCodec> {
    const NAME: &'static str = "postgres";
    const TABLE: &'static str = "sayiir_workflow_snapshots";
    const TABLES: &'static [&'static str] = &[
        "sayiir_workflow_snapshots",
        "sayiir_workflow_snapshot_history",
        "sayiir_workflow_tasks",
    ];
    const OUTPUTS_TABLE: &'static str = "sayiir_workflow_tasks";
    const FIRST_WAKE_SQL: &'static str = "SELECT min(delay_wake_at) AS t \
         FROM sayiir_workflow_snapshots WHERE position_kind = 'AtDelay'";

    async fn open(url: &str, pool: usize) -> Result<Self, Error> {
        let options = PoolOptions {
            max_connections: Some(u32::try_from(pool)?),
            ..PoolOptions::default()
        };
        Ok(PostgresBackend::connect_with_options(url, options).await?)
    }

    fn note(&self) -> String {
        format!(
            "wakeup drops (process total) {}",
            sayiir_postgres::wakeup_drops_total()
        )
    }
}

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
    out.statements = server.statements(oid).await?;
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

/// Submits every workflow (sending events meanwhile for `signal`) and
/// waits until all are Completed; returns first submit → last completion,
/// and this process's VmRSS each time another tenth of the workflows ran
/// their last step.
async fn drive<B: Backend>(
    client: &WorkflowClient<B>,
    monitor: &mut Monitor,
    wf: &Wf,
    probe: &Probe,
    args: &Args,
    workload: Workload,
) -> (Result<Duration, Error>, Vec<(usize, f64)>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let deadline = Instant::now() + args.timeout;
    let sample = async {
        let mut deciles = Vec::new();
        let mut next = 1;
        while next <= 10 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if Instant::now() > deadline {
                break;
            }
            while next <= 10 && probe.finished_count() * 10 >= args.workflows * next {
                if let Some(mib) = procstat::status_mib("VmRSS") {
                    deciles.push((next * 10, mib));
                }
                next += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        deciles
    };
    let driven = async {
        let r = drive_all(client, monitor, wf, probe, args, workload, deadline).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    };
    tokio::join!(driven, sample)
}

async fn drive_all<B: Backend>(
    client: &WorkflowClient<B>,
    monitor: &mut Monitor,
    wf: &Wf,
    probe: &Probe,
    args: &Args,
    workload: Workload,
    deadline: Instant,
) -> Result<Duration, Error> {
    let n = args.workflows;
    let start = Instant::now();
    let submit = async {
        for i in 0..n {
            probe.submitting(i);
            client.submit(wf, format!("wf{i}"), input(i)).await?;
        }
        Ok::<(), Error>(())
    };
    let events = async {
        if workload == Workload::Signal {
            send_events(client, &mut *monitor, n, deadline).await
        } else {
            Ok(())
        }
    };
    let (submitted, sent) = tokio::join!(submit, events);
    submitted?;
    sent?;
    tokio::time::timeout_at(deadline.into(), probe.wait_all())
        .await
        .map_err(|_| {
            format!(
                "timed out: {} of {n} workflows ran their last step",
                probe.finished_count()
            )
        })?;
    // The final Completed save follows the last step: watch for it.
    loop {
        let completed = monitor.count("Completed", None).await?;
        if usize::try_from(completed)? >= n {
            return Ok(start.elapsed());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out: {completed} of {n} workflows Completed").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn input(i: usize) -> u64 {
    u64::try_from(i).unwrap_or(u64::MAX / STRIDE) * STRIDE
}

/// Sends its event to every workflow seen parked at the signal, once.
async fn send_events<B: Backend>(
    client: &WorkflowClient<B>,
    monitor: &mut Monitor,
    n: usize,
    deadline: Instant,
) -> Result<(), Error> {
    let mut sent = HashSet::new();
    while sent.len() < n {
        if Instant::now() > deadline {
            return Err(format!("timed out: {} of {n} events sent", sent.len()).into());
        }
        let mut fresh = 0;
        for id in monitor.parked("AtSignal").await? {
            if sent.contains(&id) {
                continue;
            }
            let Some(i) = id.strip_prefix("wf").and_then(|s| s.parse::<usize>().ok()) else {
                continue;
            };
            let payload = Bytes::from(serde_json::to_vec(&(input(i) + STRIDE / 2))?);
            client.send_event(&id, EVENT, payload).await?;
            sent.insert(id);
            fresh += 1;
        }
        if fresh == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

/// Submits `n` giants and waits until all of them are parked on their delay.
async fn seed_giants<B: Backend>(
    backend: &B,
    args: &Args,
    url: &str,
    n: usize,
) -> Result<(), Error> {
    let probe = Probe::new(n);
    let wf = Arc::new(workloads::giant(&probe)?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers = spawn_workers(backend, args, &registry);
    let client = WorkflowClient::new(backend.clone());
    let deadline = Instant::now() + args.timeout;
    let seeded = async {
        futures_util::stream::iter(0..n)
            .map(|i| {
                let (client, wf) = (&client, &wf);
                async move {
                    client
                        .submit(&**wf, format!("giant{i}"), input(i))
                        .await
                        .map(|_| ())
                }
            })
            .buffer_unordered(8)
            .try_collect::<()>()
            .await?;
        tokio::time::timeout_at(deadline.into(), probe.wait_all())
            .await
            .map_err(|_| format!("seeding giants: {} of {n} ran", probe.finished_count()))?;
        let mut monitor = Monitor::open(url, B::TABLE).await?;
        loop {
            let parked = monitor.count("InProgress", Some("AtDelay")).await?;
            if usize::try_from(parked)? >= n {
                return Ok::<(), Error>(());
            }
            if Instant::now() > deadline {
                return Err(format!("seeding giants: {parked} of {n} parked").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    .await;
    let errors = stop(workers).await;
    seeded?;
    match errors.first() {
        Some(e) => Err(format!("seeding giants: worker error: {e}").into()),
        None => Ok(()),
    }
}

pub fn spawn_workers<B: Backend>(
    backend: &B,
    args: &Args,
    registry: &[(sayiir_core::DefinitionHash, Arc<Wf>)],
) -> Vec<WorkerHandle<B>> {
    spawn_named(backend, args, registry, "bench", args.workers)
}

/// `count` PooledWorkers named `{prefix}-{i}`, with the run's settings.
pub fn spawn_named<B: Backend>(
    backend: &B,
    args: &Args,
    registry: &[(sayiir_core::DefinitionHash, Arc<Wf>)],
    prefix: &str,
    count: usize,
) -> Vec<WorkerHandle<B>> {
    (0..count)
        .map(|i| {
            PooledWorker::new(
                format!("{prefix}-{i}"),
                backend.clone(),
                TaskRegistry::new(),
            )
            .with_claim_ttl(Some(args.claim_ttl))
            .with_batch_size(NonZeroUsize::new(args.batch).unwrap_or(NonZeroUsize::MIN))
            .spawn(args.poll, registry.to_vec())
        })
        .collect()
}

/// Shuts the workers down and waits for them; returns their errors.
pub async fn stop<B>(workers: Vec<WorkerHandle<B>>) -> Vec<String> {
    for w in &workers {
        w.shutdown();
    }
    let mut errors = Vec::new();
    for w in &workers {
        if let Err(e) = w.join().await {
            errors.push(e.to_string());
        }
    }
    errors
}
