//! Real Sayiir workflows on PostgreSQL through sayiir-diesel.
//!
//! `cargo run --example quickstart` uses `DATABASE_URL` when it is set and
//! otherwise starts a throwaway local PostgreSQL (from the installed server
//! binaries) that disappears when the program exits.
//!
//! Two `PooledWorker`s run an order workflow (a fork, a join, a durable
//! delay and a wait for an external event) submitted with the
//! `WorkflowClient`; then the `CheckpointingRunner` runs one in-process;
//! then a typed Diesel query reads our tables like any report would.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::task::BranchOutputs;
use sayiir_core::workflow::{Workflow, WorkflowBuilder, WorkflowStatus};
use sayiir_diesel::DieselBackend;
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{CheckpointingRunner, PooledWorker, WorkflowClient};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// price → fork(tax, shipping) → total → cool-off delay → review → "approved"
/// event → receipt.
fn order_workflow() -> Result<Workflow<JsonCodec, u64>, Error> {
    let ctx = WorkflowContext::new("order", Arc::new(JsonCodec), Arc::new(()));
    WorkflowBuilder::new(ctx)
        .then("price", |cents: u64| async move { Ok(cents) })
        .fork()
        .branch("tax", |cents: u64| async move { Ok(cents / 5) })
        .branch("shipping", |_cents: u64| async move { Ok(499u64) })
        .join("total", |parts: BranchOutputs<JsonCodec>| async move {
            let tax: u64 = parts.get_by_id("tax")?;
            let shipping: u64 = parts.get_by_id("shipping")?;
            Ok(tax + shipping)
        })
        .delay("cool-off", Duration::from_millis(200))
        // sayiir-runtime 1.0 needs a task between two parks under PooledWorker:
        // it records a park's own node id as the task after a preceding delay.
        .then("review", |extras: u64| async move { Ok(extras) })
        .wait_for_signal("approved", "approved", None)
        // The event's payload is the next step's input: the approver's badge.
        .then("receipt", |badge: u64| async move {
            Ok(format!("approved by badge #{badge}"))
        })
        .build()
        .map_err(|e| format!("{e:?}").into())
}

async fn database_url() -> Result<(String, Option<sayiir_diesel_testkit::TestDatabase>), Error> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        return Ok((url, None));
    }
    println!("DATABASE_URL is unset: starting a throwaway PostgreSQL…");
    let server = sayiir_diesel_testkit::PgServer::shared()?;
    let db = server
        .template("empty", |_| async { Ok(()) })
        .await?
        .database()
        .await?;
    Ok((db.url().to_owned(), Some(db)))
}

async fn wait_until(
    client: &WorkflowClient<DieselBackend<JsonCodec>>,
    id: &str,
    done: impl Fn(&WorkflowStatus) -> bool,
) -> Result<WorkflowStatus, Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client.status(id).await?;
        if done(&status) {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(format!("{id} is still {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (url, _throwaway) = database_url().await?;

    // Pool + migrations (schema `sayiir`) + wakeup listener, in one line.
    let backend = DieselBackend::<JsonCodec>::connect(&url).await?;

    let wf = Arc::new(order_workflow()?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers: Vec<_> = (0..2)
        .map(|i| {
            PooledWorker::new(format!("worker-{i}"), backend.clone(), TaskRegistry::new())
                .with_batch_size(NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN))
                .spawn(Duration::from_millis(200), registry.clone())
        })
        .collect();

    let client = WorkflowClient::new(backend.clone());
    let orders = [
        ("order-1", 10_000u64),
        ("order-2", 2_500),
        ("order-3", 99_900),
    ];
    for (id, cents) in orders {
        client.submit(&*wf, id, cents).await?;
        println!("submitted {id} ({cents} cents)");
    }
    for (id, _) in orders {
        wait_until(&client, id, |s| {
            matches!(s, WorkflowStatus::AwaitingSignal { .. })
        })
        .await?;
        let approver = serde_json::to_vec(&1042u64)?;
        client
            .send_event(id, "approved", Bytes::from(approver))
            .await?;
    }
    for (id, _) in orders {
        wait_until(&client, id, |s| matches!(s, WorkflowStatus::Completed)).await?;
        let total = client
            .get_task_result(id, "total")
            .await?
            .unwrap_or_default();
        let receipt = sayiir_persistence::SnapshotStore::load_snapshot(&backend, id)
            .await?
            .final_output_bytes()
            .unwrap_or_default();
        println!(
            "{id}: total extras {} cents, {}",
            String::from_utf8_lossy(&total),
            String::from_utf8_lossy(&receipt)
        );
    }
    for w in &workers {
        w.shutdown();
    }
    for w in &workers {
        w.join().await?;
    }

    // The same workflow, in-process, with the checkpointing runner.
    let runner = CheckpointingRunner::new(backend.clone());
    let mut status = runner.run(&*wf, "order-inline", 5_000u64).await?;
    loop {
        match status {
            WorkflowStatus::Completed => break,
            WorkflowStatus::Waiting { .. } => tokio::time::sleep(Duration::from_millis(250)).await,
            WorkflowStatus::AwaitingSignal { .. } => {
                let approver = serde_json::to_vec(&7u64)?;
                client
                    .send_event("order-inline", "approved", Bytes::from(approver))
                    .await?;
            }
            other => return Err(format!("order-inline: {other:?}").into()),
        }
        status = runner.resume(&*wf, "order-inline").await?;
    }
    println!("order-inline: completed by the CheckpointingRunner");

    // Our tables are plain Diesel tables: query them like your own.
    let mut conn = backend.pool().get().await?;
    let by_status: Vec<(String, i64)> = workflows::table
        .group_by(workflows::status)
        .select((workflows::status, diesel::dsl::count_star()))
        .load(&mut conn)
        .await?;
    println!("workflows by status: {by_status:?}");
    println!("backend metrics: {:?}", backend.metrics());
    Ok(())
}
