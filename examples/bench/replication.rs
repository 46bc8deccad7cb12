//! `--replication`: what zero-loss failover costs. One primary with a hot
//! standby streaming from it (testkit's `ReplicatedPair`); rounds
//! alternate synchronous replication (`synchronous_standby_names = '*'`,
//! `synchronous_commit = remote_apply`: a commit returns once the standby
//! has applied it, so a failover loses nothing committed) and asynchronous
//! (the default: a commit returns once it is on the primary's WAL; a
//! failover loses what the standby had not replayed), swapping which goes
//! first each round. Each run measures our backend on a fresh database:
//! the linear workload's throughput (the run's settings) and the latency
//! of single `save_snapshot` calls (one commit each, one at a time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_diesel::DieselBackend;
use sayiir_diesel_testkit::ReplicatedPair;
use sayiir_persistence::SnapshotStore;
use sayiir_runtime::WorkflowClient;
use sayiir_runtime::serialization::JsonCodec;

use crate::Error;
use crate::args::{Args, Workload};
use crate::workers::{spawn_workers, stop};
use crate::workloads::{self, Probe, input};

/// Sequential saves timed per run.
const SAVES: usize = 300;

struct Row {
    synchronous: bool,
    round: usize,
    wf_per_s: f64,
    save_p50_ms: f64,
    save_p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Switches the primary between synchronous and asynchronous replication
/// and waits until the standby reports that state.
async fn set_mode(pair: &ReplicatedPair, synchronous: bool) -> Result<(), Error> {
    let (names, commit, want) = if synchronous {
        ("'*'", "'remote_apply'", "sync")
    } else {
        ("''", "'on'", "async")
    };
    for sql in [
        format!("ALTER SYSTEM SET synchronous_standby_names = {names}"),
        format!("ALTER SYSTEM SET synchronous_commit = {commit}"),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        pair.psql(pair.primary_port(), &sql)?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = pair.psql(
            pair.primary_port(),
            "SELECT sync_state FROM pg_stat_replication",
        )?;
        if state == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("standby still {state:?}, wanted {want}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn one_run(
    pair: &ReplicatedPair,
    args: &Args,
    synchronous: bool,
    round: usize,
) -> Result<Row, Error> {
    let db = format!(
        "sayiir_repl_{}_r{round}_{}",
        std::process::id(),
        if synchronous { "sync" } else { "async" }
    );
    pair.psql(pair.primary_port(), &format!("CREATE DATABASE {db}"))?;
    let url = ReplicatedPair::url(pair.primary_port(), &db);
    let backend = DieselBackend::<JsonCodec>::builder(&url)
        .max_connections(args.pool)
        .build()
        .await?;

    // Save latency: one commit per call, one call at a time.
    let mut saves = Vec::with_capacity(SAVES);
    for i in 0..SAVES {
        let mut s = WorkflowSnapshot::with_initial_input(
            &format!("save-{i}"),
            sayiir_core::DefinitionHash::sha256("bench-save"),
            bytes::Bytes::from_static(b"1"),
        );
        s.update_position(ExecutionPosition::AtTask {
            task_id: sayiir_core::TaskId::from("t"),
        });
        let t = Instant::now();
        backend.save_snapshot(&mut s).await?;
        saves.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    saves.sort_by(f64::total_cmp);
    // Out of the workers' way: no worker runs their definition, and the
    // finder hands out the oldest runnable rows first.
    for i in 0..SAVES {
        backend.delete_snapshot(&format!("save-{i}")).await?;
    }

    // Throughput: the linear workload on the run's workers.
    let n = args.workflows;
    let probe = Probe::new(n);
    let wf = Arc::new(workloads::measured(Workload::Linear, &probe)?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers = spawn_workers(&backend, args, &registry);
    let client = WorkflowClient::new(backend.clone());
    let started = Instant::now();
    for i in 0..n {
        probe.submitting(i);
        client.submit(&*wf, &format!("wf-{i}"), input(i)).await?;
    }
    tokio::time::timeout(args.timeout, probe.wait_all())
        .await
        .map_err(|_| format!("{db}: not done within {:?}", args.timeout))?;
    let elapsed = started.elapsed().as_secs_f64();
    let errors = stop(workers).await;
    drop(client);
    drop(backend);
    pair.psql(
        pair.primary_port(),
        &format!("DROP DATABASE {db} WITH (FORCE)"),
    )?;
    if let Some(e) = errors.first() {
        return Err(format!("worker error: {e}").into());
    }
    #[allow(clippy::cast_precision_loss)]
    let wf_per_s = n as f64 / elapsed;
    Ok(Row {
        synchronous,
        round,
        wf_per_s,
        save_p50_ms: percentile(&saves, 0.5),
        save_p99_ms: percentile(&saves, 0.99),
    })
}

/// Runs the comparison and prints per-run lines and the ratios.
pub async fn replication(args: &Args) -> Result<(), Error> {
    if !ReplicatedPair::available() {
        return Err(
            "--replication needs pg_basebackup beside the server binaries, and no DATABASE_URL"
                .into(),
        );
    }
    let pair = tokio::task::spawn_blocking(|| ReplicatedPair::start(false)).await??;
    println!(
        "replication: primary :{} + hot standby :{} (pg_basebackup -R, loopback, fsync=off); \
         {} linear workflows/run, {} round(s), {} workers, batch {}; {SAVES} sequential saves/run",
        pair.primary_port(),
        pair.standby_port(),
        args.workflows,
        args.rounds,
        args.workers,
        args.batch,
    );
    let mut rows = Vec::new();
    for round in 0..args.rounds {
        let sync_first = round % 2 == 0;
        for turn in 0..2 {
            let synchronous = (turn == 0) == sync_first;
            set_mode(&pair, synchronous).await?;
            let row = one_run(&pair, args, synchronous, round).await?;
            println!(
                "round {} {:<12} {:>8.1} wf/s | save p50 {:.3} ms p99 {:.3} ms",
                row.round + 1,
                if row.synchronous {
                    "synchronous"
                } else {
                    "asynchronous"
                },
                row.wf_per_s,
                row.save_p50_ms,
                row.save_p99_ms,
            );
            rows.push(row);
        }
    }
    let of = |sync: bool, f: fn(&Row) -> f64| {
        median(
            rows.iter()
                .filter(|r| r.synchronous == sync)
                .map(f)
                .collect(),
        )
    };
    let per_round: Vec<String> = (0..args.rounds)
        .filter_map(|round| {
            let get = |sync: bool| {
                rows.iter()
                    .find(|r| r.round == round && r.synchronous == sync)
            };
            Some(format!("{:.2}", get(true)?.wf_per_s / get(false)?.wf_per_s))
        })
        .collect();
    println!(
        "throughput synchronous / asynchronous: {:.2} (per round {}); save p50: {:.2}× ({:.3} vs {:.3} ms)",
        of(true, |r| r.wf_per_s) / of(false, |r| r.wf_per_s),
        per_round.join(", "),
        of(true, |r| r.save_p50_ms) / of(false, |r| r.save_p50_ms),
        of(true, |r| r.save_p50_ms),
        of(false, |r| r.save_p50_ms),
    );
    Ok(())
}
