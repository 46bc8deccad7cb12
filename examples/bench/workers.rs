//! The in-process `PooledWorker`s of a run: spawned with the run's
//! settings, shut down and joined at its end.

use std::num::NonZeroUsize;
use std::sync::Arc;

use sayiir_core::registry::TaskRegistry;
use sayiir_runtime::{PooledWorker, WorkerHandle};

use crate::args::Args;
use crate::backends::Backend;
use crate::workloads::Wf;

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
