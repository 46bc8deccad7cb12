//! Least privilege: an application role with no superuser, no `CREATEDB`
//! and no `CREATEROLE`, owning only its database, migrates and runs
//! workflows; a read-only role (`USAGE` on schema `sayiir`, `SELECT` on its
//! tables) runs the report fragments and is refused any write with a clear
//! error. The README's "Roles and grants" lists the same statements.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_diesel::models::Workflow;
use sayiir_diesel::schema::sayiir::{history, workflows};
use sayiir_diesel::{Status, reports};
use sayiir_diesel_testkit::{PgServer, with_database};
use sayiir_persistence::{BackendError, SnapshotStore};

static N: AtomicU32 = AtomicU32::new(0);

/// `url` with `user` as its user name.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

async fn admin(server: &PgServer) -> AsyncPgConnection {
    AsyncPgConnection::establish(server.admin_url())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_owner_runs_workflows_and_a_reader_only_reads() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("skipped: creates roles, which DATABASE_URL's role may not");
        return;
    }
    let server = PgServer::shared().unwrap();
    let tag = format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let (app, reader, db) = (
        format!("sayiir_app_{tag}"),
        format!("sayiir_reader_{tag}"),
        format!("sayiir_lp_{tag}"),
    );
    let mut su = admin(server).await;
    for sql in [
        format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
        format!("CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
        format!("CREATE DATABASE {db} OWNER {app}"),
        format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {db} TO {reader}"),
    ] {
        su.batch_execute(&sql).await.unwrap();
    }
    let app_url = as_user(&with_database(server.admin_url(), &db), &app);
    let reader_url = as_user(&with_database(server.admin_url(), &db), &reader);

    // The owner migrates and runs workflows.
    let b = Backend::connect(&app_url).await.unwrap();
    run_two_step(&b, "lp", 5).await;

    // The owner grants the reader what the README lists.
    let mut owner = AsyncPgConnection::establish(&app_url).await.unwrap();
    owner
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA sayiir TO {reader}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA sayiir TO {reader}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA sayiir GRANT SELECT ON TABLES TO {reader};"
        ))
        .await
        .unwrap();

    // The reader runs the report fragments.
    let mut r = AsyncPgConnection::establish(&reader_url).await.unwrap();
    let done: Vec<Workflow> = reports::workflows_in(Status::Completed)
        .order(workflows::instance_id)
        .select(Workflow::as_select())
        .load(&mut r)
        .await
        .unwrap();
    assert_eq!(done.len(), 5);
    assert_eq!(
        reports::runnable_tasks()
            .count()
            .get_result::<i64>(&mut r)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        reports::expired_claims()
            .count()
            .get_result::<i64>(&mut r)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        reports::quarantined_tasks()
            .count()
            .get_result::<i64>(&mut r)
            .await
            .unwrap(),
        0
    );
    let revisions: Vec<i64> = reports::history_of("lp-0")
        .select(history::revision)
        .load(&mut r)
        .await
        .unwrap();
    assert!(!revisions.is_empty());

    // A backend on the reader's URL reads, and a write is refused at once
    // with the server's reason, not retried.
    let rb = Backend::builder(&reader_url)
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
    // Nor can the reader create anything in the database.
    assert!(
        r.batch_execute("CREATE TABLE sayiir.x (id int)")
            .await
            .is_err()
    );

    drop((b, rb, r, owner));
    su.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    su.batch_execute(&format!("DROP ROLE {app}")).await.unwrap();
    su.batch_execute(&format!("DROP ROLE {reader}"))
        .await
        .unwrap();
}
