//! A worker process (`--worker <index>`): 2–4 `PooledWorker`s (batch sizes
//! 1 and 8, claim TTL 3 s) on one backend that reaches PostgreSQL through
//! the driver's proxy for this process. Stops on SIGTERM; any loop that
//! ends before that is logged as `loop-end`.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sayiir_core::registry::TaskRegistry;
use sayiir_diesel::retention::RetentionPolicy;
use sayiir_runtime::PooledWorker;

use crate::args::Args;
use crate::workflows::{BACKEND, Backend, WRONG_OUTPUT, registry};
use crate::{Error, tasklog};

pub const CLAIM_TTL: Duration = Duration::from_secs(3);
/// Each worker process's statement timeout (the lock fault holds a table
/// longer than this).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Each worker process's recovery grace (above the claim TTL).
pub const RECOVERY_GRACE: Duration = Duration::from_secs(8);
/// Each worker process's pool size and acquire timeout.
pub const MAX_CONNECTIONS: usize = 6;
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a worker holds every pooled connection on SIGUSR1 (the
/// pool-exhaustion fault): longer than the acquire timeout and the claim
/// TTL, so store calls time out and claims lapse meanwhile.
pub const EXHAUST_HOLD: Duration = Duration::from_secs(5);
/// The background pruner each worker runs: buffered events of finished
/// instances are removed once older than this...
pub const EVENT_RETENTION: Duration = Duration::from_secs(10);
/// ...checked this often.
pub const PRUNE_EVERY: Duration = Duration::from_secs(2);

pub async fn run(args: &Args, index: usize) -> Result<(), Error> {
    let url = args.url.clone().ok_or("--worker needs --url")?;
    let log = args.log.clone().ok_or("--worker needs --log")?;
    tasklog::open(&log)?;
    // The backend's evidence events (failed store calls, claims taken
    // over) go to the same log: the checker explains repeats by them.
    tracing::subscriber::set_global_default(sayiir_diesel_testkit::EvidenceSink::new(|e| {
        tasklog::evidence(&e);
    }))?;
    let _ = WRONG_OUTPUT.set(args.corrupt.as_deref() == Some("wrong-output"));
    // The server may be restarting or the link cut: keep trying a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    // Odd processes run without finder steering (offer lease 0): workers'
    // batches then overlap, and only the claim keeps a stale entry from
    // running a step twice.
    let lease = if index % 2 == 1 {
        Duration::ZERO
    } else {
        Duration::from_secs(2)
    };
    // `--corrupt keep-events`: the pruner never removes an event (the
    // orphan-event check must then fail). `double-event` keeps them too:
    // the duplicate left on a Completed workflow is its evidence.
    let retention = if matches!(
        args.corrupt.as_deref(),
        Some("keep-events" | "double-event")
    ) {
        RetentionPolicy::default()
    } else {
        RetentionPolicy::default().orphan_events_older_than(EVENT_RETENTION)
    };
    let backend = loop {
        match Backend::builder(&url)
            .offer_lease(lease)
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .statement_timeout(STATEMENT_TIMEOUT)
            .recovery_grace(RECOVERY_GRACE)
            .run_migrations(false)
            .retention(retention.clone(), PRUNE_EVERY)
            .build()
            .await
        {
            Ok(b) => break b,
            Err(e) if Instant::now() < deadline => {
                eprintln!("worker {index}: connect: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let _ = BACKEND.set(backend.clone());
    let pid = std::process::id();
    let count = 2 + index % 3;
    let stopping = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut monitors = Vec::new();
    for k in 0..count {
        let id = format!("p{index}-{pid}-w{k}");
        let batch = if k % 2 == 0 { 1 } else { 8 };
        let h = PooledWorker::new(id.clone(), backend.clone(), TaskRegistry::new())
            .with_claim_ttl(Some(CLAIM_TTL))
            .with_batch_size(NonZeroUsize::new(batch).expect("non-zero"))
            .spawn(Duration::from_millis(250), registry());
        let watch = h.clone();
        let stopping = Arc::clone(&stopping);
        monitors.push(tokio::spawn(async move {
            let result = watch.join().await;
            if stopping.load(Ordering::SeqCst) {
                tasklog::stopped(&id);
            } else {
                tasklog::loop_end(&id, &format!("{result:?}"));
            }
        }));
        handles.push(h);
    }
    tasklog::up(index);
    tokio::spawn(exhaust_on_sigusr1(backend.clone(), index));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // `--corrupt end-loop`: the first loop of process 0 is stopped early
    // without telling the monitor (a loop that ends on its own).
    if args.corrupt.as_deref() == Some("end-loop") && index == 0 {
        let first = handles[0].clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(15)).await;
            first.shutdown();
        });
    }
    // Bounded: the driver stops us; give up after a day regardless.
    tokio::select! {
        _ = term.recv() => {}
        () = tokio::time::sleep(Duration::from_secs(86_400)) => {}
    }
    stopping.store(true, Ordering::SeqCst);
    for h in &handles {
        h.shutdown();
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        futures_util::future::join_all(monitors),
    )
    .await;
    Ok(())
}

/// The pool-exhaustion fault, from inside: on each SIGUSR1, take every
/// connection of the backend's pool (as application code sharing the pool
/// might) and hold them for [`EXHAUST_HOLD`]; store calls meanwhile wait
/// the acquire timeout and fail.
async fn exhaust_on_sigusr1(backend: Backend, index: usize) {
    let Ok(mut usr1) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
    else {
        eprintln!("worker {index}: cannot listen for SIGUSR1");
        return;
    };
    while usr1.recv().await.is_some() {
        let pool = backend.pool().clone();
        let until = tokio::time::Instant::now() + EXHAUST_HOLD;
        let mut held = Vec::new();
        while held.len() < MAX_CONNECTIONS && tokio::time::Instant::now() < until {
            match tokio::time::timeout_at(until, pool.get()).await {
                Ok(Ok(conn)) => held.push(conn),
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => break,
            }
        }
        let status = pool.status();
        tokio::time::sleep_until(until).await;
        eprintln!(
            "worker {index}: held {} of {MAX_CONNECTIONS} pooled connections for {:.1} s \
             (callers waiting at the end: {})",
            held.len(),
            EXHAUST_HOLD.as_secs_f64(),
            pool.status().waiting.max(status.waiting),
        );
        drop(held);
    }
}
