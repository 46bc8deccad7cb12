//! `--dispatch-child`: a worker process of the dispatch part.

use std::sync::Arc;
use std::time::Duration;

use sayiir_diesel::DieselBackend;
use sayiir_postgres::PostgresBackend;
use sayiir_runtime::serialization::JsonCodec;

use crate::Error;
use crate::args::Args;
use crate::backends::Backend;
use crate::workers;
use crate::workloads::{self, Probe};

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
    let handles = workers::spawn_named(&backend, args, &registry, prefix, workers);
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
    let errors = workers::stop(handles).await;
    println!("{}", backend.note());
    match errors.into_iter().next() {
        Some(e) => Err(format!("worker error: {e}").into()),
        None => Ok(()),
    }
}
