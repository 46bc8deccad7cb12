//! A worker process for the rolling-upgrade test (`tests/rolling_upgrade.rs`),
//! built twice: against this version of the library and against an older
//! one (the test builds this file again against a worktree of the older
//! commit), so it uses only API both have, and only the library, the
//! runtime, sayiir-core and tokio.
//!
//! `upgrade_worker <database_url> <name> <log> <prefix> <count> <stop_file>`:
//! submits `count` workflows named `<prefix>-<i>`, runs two `PooledWorker`s,
//! appends `run <instance> <step> <name>` to `log` each time a step runs,
//! and exits when `stop_file` exists (or after two minutes).

use std::io::Write as _;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::DieselBackend;
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The workflow both versions run: four steps, each logged.
fn workflow(
    log: Arc<std::sync::Mutex<std::fs::File>>,
    name: Arc<str>,
) -> Result<Workflow<JsonCodec, (String, u64)>, Error> {
    let ctx = WorkflowContext::new("rolling-upgrade", Arc::new(JsonCodec), Arc::new(()));
    let mut b =
        WorkflowBuilder::new(ctx).then("step-0", step(0, Arc::clone(&log), Arc::clone(&name)));
    for i in 1..4 {
        b = b.then(
            &format!("step-{i}"),
            step(i, Arc::clone(&log), Arc::clone(&name)),
        );
    }
    b.build().map_err(|e| format!("{e:?}").into())
}

/// What a step's body returns.
type StepFuture = std::pin::Pin<
    Box<dyn Future<Output = Result<(String, u64), sayiir_core::error::BoxError>> + Send>,
>;

/// Step `i`: logs `run <instance> step-<i> <worker>`, then passes the
/// instance id on (it is the input, so the log knows whose step it ran).
fn step(
    i: usize,
    log: Arc<std::sync::Mutex<std::fs::File>>,
    name: Arc<str>,
) -> impl Fn((String, u64)) -> StepFuture + Send + Sync + Clone + 'static {
    move |(instance, n): (String, u64)| {
        let (log, name) = (Arc::clone(&log), Arc::clone(&name));
        Box::pin(async move {
            if let Ok(mut f) = log.lock() {
                writeln!(f, "run {instance} step-{i} {name}")?;
                f.flush()?;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok((instance, n + 1))
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, name, log, prefix, count, stop] = args.as_slice() else {
        return Err(
            "usage: upgrade_worker <database_url> <name> <log> <prefix> <count> <stop_file>".into(),
        );
    };
    let count: usize = count.parse()?;
    let log = Arc::new(std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?,
    ));
    let backend = DieselBackend::<JsonCodec>::builder(url)
        .run_migrations(false)
        .build()
        .await?;
    let wf = Arc::new(workflow(log, Arc::from(name.as_str()))?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers: Vec<_> = (0..2)
        .map(|i| {
            PooledWorker::new(format!("{name}-{i}"), backend.clone(), TaskRegistry::new())
                .with_batch_size(NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN))
                .spawn(Duration::from_millis(50), registry.clone())
        })
        .collect();
    let client = WorkflowClient::new(backend.clone());
    for i in 0..count {
        let id = format!("{prefix}-{i:03}");
        client.submit(&*wf, &id, (id.clone(), 0u64)).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::path::Path::new(stop).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for w in workers {
        w.shutdown();
        w.join().await?;
    }
    Ok(())
}
