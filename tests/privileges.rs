//! Least privilege: an application role with no superuser, no `CREATEDB`
//! and no `CREATEROLE`, owning only its database, migrates and runs
//! workflows; a read-only role (`USAGE` on schema `sayiir`, `SELECT` on its
//! tables) runs the report fragments and is refused any write with a clear
//! error. The README's "Roles and grants" lists the same statements.

mod common;

use std::time::Duration;

use common::*;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_diesel::models::Workflow;
use sayiir_diesel::schema::sayiir::{history, workflows};
use sayiir_diesel::{Status, reports};
use sayiir_diesel_testkit::{LeastPrivilege, PgServer};
use sayiir_persistence::{BackendError, SnapshotStore};

/// The reader runs the report fragments over the five completed runs.
async fn assert_the_reader_runs_reports(r: &mut AsyncPgConnection) {
    let done: Vec<Workflow> = reports::workflows_in(Status::Completed)
        .order(workflows::instance_id)
        .select(Workflow::as_select())
        .load(r)
        .await
        .unwrap();
    assert_eq!(done.len(), 5);
    assert_eq!(
        reports::runnable_tasks()
            .count()
            .get_result::<i64>(r)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        reports::expired_claims()
            .count()
            .get_result::<i64>(r)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        reports::quarantined_tasks()
            .count()
            .get_result::<i64>(r)
            .await
            .unwrap(),
        0
    );
    let revisions: Vec<i64> = reports::history_of("lp-0")
        .select(history::revision)
        .load(r)
        .await
        .unwrap();
    assert!(!revisions.is_empty());
}

/// A backend on the reader's URL reads, and a write is refused at once
/// with the server's reason, not retried.
async fn assert_a_reader_backend_reads_and_is_refused_writes(reader_url: &str) -> Backend {
    let rb = Backend::builder(reader_url)
        .run_migrations(false)
        .build()
        .await
        .unwrap();
    assert!(rb.load_snapshot("lp-0").await.is_ok());
    let started = std::time::Instant::now();
    let err = rb
        .save_snapshot(&mut at_task("lp-new", "a"))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, BackendError::Backend(_)), "{err:?}");
    assert!(err.to_string().contains("permission denied"), "{err}");
    rb
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_owner_runs_workflows_and_a_reader_only_reads() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("skipped: creates roles, which DATABASE_URL's role may not");
        return;
    }
    let roles = LeastPrivilege::create(PgServer::shared().unwrap(), "sayiir")
        .await
        .unwrap();
    let (app_url, reader_url) = (roles.owner_url.clone(), roles.reader_url.clone());

    // The owner migrates and runs workflows.
    let b = Backend::connect(&app_url).await.unwrap();
    run_two_step(&b, "lp", 5).await;

    roles.grant_reader().await.unwrap();
    let mut r = AsyncPgConnection::establish(&reader_url).await.unwrap();
    assert_the_reader_runs_reports(&mut r).await;
    let rb = assert_a_reader_backend_reads_and_is_refused_writes(&reader_url).await;
    // Nor can the reader create anything in the database.
    assert!(
        r.batch_execute("CREATE TABLE sayiir.x (id int)")
            .await
            .is_err()
    );

    drop((b, rb, r));
    roles.drop_all().await.unwrap();
}
