//! What pruning does to the table sizes: runs a workload, prints the size
//! of every `sayiir` table, prunes (history down to the last 2 entries per
//! instance, then every finished workflow), and prints them again after
//! `VACUUM` (space reusable) and `VACUUM FULL` (space returned).
//!
//! `cargo run --release --example retention_sizes -- [WORKFLOWS]` (default
//! 2000 linear four-step workflows with a 1 KiB payload, on 4 workers);
//! `DATABASE_URL` or a throwaway server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::WorkflowBuilder;
use sayiir_diesel::DieselBackend;
use sayiir_diesel::retention::RetentionPolicy;
use sayiir_diesel_testkit::PgServer;
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(diesel::QueryableByName)]
struct Size {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

async fn sizes(conn: &mut AsyncPgConnection, label: &str) -> Result<(), Error> {
    conn.batch_execute("ANALYZE").await?;
    let rows: Vec<Size> = diesel::sql_query(
        "SELECT c.relname::text AS name, c.reltuples::int8 AS rows, \
                pg_total_relation_size(c.oid)::int8 AS bytes \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'sayiir' AND c.relkind = 'r' \
           AND c.relname <> '__diesel_schema_migrations' ORDER BY 1",
    )
    .load(conn)
    .await?;
    let total: i64 = rows.iter().map(|r| r.bytes).sum();
    println!("{label}: total {:.1} MiB", total as f64 / 1_048_576.0);
    for r in rows {
        println!(
            "  {:<14} {:>8} rows {:>9.1} KiB",
            r.name,
            r.rows.max(0),
            r.bytes as f64 / 1024.0
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let n: usize = std::env::args().nth(1).map_or(Ok(2000), |a| a.parse())?;
    let server = tokio::task::spawn_blocking(PgServer::start).await??;
    let url = server.admin_url().to_owned();
    let mut admin = AsyncPgConnection::establish(&url).await?;
    admin
        .batch_execute("DROP DATABASE IF EXISTS sayiir_retention_sizes WITH (FORCE)")
        .await?;
    admin
        .batch_execute("CREATE DATABASE sayiir_retention_sizes")
        .await?;
    let url = server.url_for("sayiir_retention_sizes");
    let backend = DieselBackend::<JsonCodec>::connect(&url).await?;

    let payload = "x".repeat(1024);
    let ctx = WorkflowContext::new("retention-sizes", Arc::new(JsonCodec), Arc::new(()));
    let wf = Arc::new(
        WorkflowBuilder::new(ctx)
            .then("s1", |x: String| async move { Ok(x) })
            .then("s2", |x: String| async move { Ok(x) })
            .then("s3", |x: String| async move { Ok(x) })
            .then("s4", |x: String| async move { Ok(x) })
            .build()?,
    );
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers: Vec<_> = (0..4)
        .map(|i| {
            PooledWorker::new(format!("w{i}"), backend.clone(), TaskRegistry::new())
                .with_batch_size(
                    std::num::NonZeroUsize::new(8).unwrap_or(std::num::NonZeroUsize::MIN),
                )
                .spawn(Duration::from_millis(50), registry.clone())
        })
        .collect();
    let client = WorkflowClient::new(backend.clone());
    let started = Instant::now();
    for i in 0..n {
        client
            .submit(&*wf, &format!("wf-{i}"), payload.clone())
            .await?;
    }
    let mut conn = AsyncPgConnection::establish(&url).await?;
    loop {
        let done: i64 = sayiir_diesel::reports::workflows_in(sayiir_diesel::Status::Completed)
            .count()
            .get_result(&mut conn)
            .await?;
        if done == i64::try_from(n)? {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err("workload not done within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for w in &workers {
        w.shutdown();
    }
    println!("workload: {n} linear four-step workflows, 1 KiB payload, history on, all Completed");
    sizes(&mut conn, "before pruning").await?;

    let report = backend
        .prune(&RetentionPolicy::default().history_keep_last(2))
        .await?;
    conn.batch_execute("VACUUM").await?;
    println!("prune history_keep_last(2): {report:?}");
    sizes(&mut conn, "after VACUUM (space reusable, files kept)").await?;
    let report = backend
        .prune(&RetentionPolicy::default().finished_older_than(Duration::ZERO))
        .await?;
    println!("prune finished_older_than(0): {report:?}");
    conn.batch_execute("VACUUM FULL").await?;
    sizes(&mut conn, "after VACUUM FULL").await?;
    Ok(())
}
