//! The template instances the seeder copies, written through the
//! backend's API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sayiir_runtime::WorkflowClient;

use crate::Error;
use crate::args::Args;
use crate::backends::Backend;
use crate::monitor::Monitor;
use crate::workers;
use crate::workloads::{self, Probe};

/// Writes the templates through the backend's API with one worker:
/// `ftemplate0` (linear) runs to Completed and `ptemplate0` (a giant)
/// parks on its hour-long delay, as asked; then `qtemplate0` (linear) is
/// submitted and left at its first task.
pub(super) async fn templates<B: Backend>(
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
        let workers = workers::spawn_named(backend, args, &registry, "template", 1);
        if finished {
            client
                .submit(&*linear, "ftemplate0", workloads::input(0))
                .await?;
        }
        if parked {
            client
                .submit(&*giant, "ptemplate0", workloads::input(0))
                .await?;
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
        if let Some(e) = workers::stop(workers).await.into_iter().next() {
            return Err(format!("template worker: {e}").into());
        }
    }
    client
        .submit(&*linear, "qtemplate0", workloads::input(0))
        .await?;
    Ok(())
}
