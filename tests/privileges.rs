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

/// The roles and the database of one run (names unique to it).
struct Names {
    app: String,
    reader: String,
    db: String,
}

impl Names {
    fn unique() -> Self {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            app: format!("sayiir_app_{tag}"),
            reader: format!("sayiir_reader_{tag}"),
            db: format!("sayiir_lp_{tag}"),
        }
    }
}

/// Creates the application role owning the database, and the reader
/// role that may only connect to it.
async fn create_roles_and_database(su: &mut AsyncPgConnection, n: &Names) {
    let Names { app, reader, db } = n;
    for sql in [
        format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
        format!("CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
        format!("CREATE DATABASE {db} OWNER {app}"),
        format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
        format!("GRANT CONNECT ON DATABASE {db} TO {reader}"),
    ] {
        su.batch_execute(&sql).await.unwrap();
    }
}

/// The owner grants the reader what the README lists.
async fn grant_the_reader(app_url: &str, reader: &str) -> AsyncPgConnection {
    let mut owner = AsyncPgConnection::establish(app_url).await.unwrap();
    owner
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA sayiir TO {reader}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA sayiir TO {reader}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA sayiir GRANT SELECT ON TABLES TO {reader};"
        ))
        .await
        .unwrap();
    owner
}

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

async fn drop_roles_and_database(su: &mut AsyncPgConnection, n: &Names) {
    let Names { app, reader, db } = n;
    su.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    su.batch_execute(&format!("DROP ROLE {app}")).await.unwrap();
    su.batch_execute(&format!("DROP ROLE {reader}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_owner_runs_workflows_and_a_reader_only_reads() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("skipped: creates roles, which DATABASE_URL's role may not");
        return;
    }
    let server = PgServer::shared().unwrap();
    let names = Names::unique();
    let mut su = admin(server).await;
    create_roles_and_database(&mut su, &names).await;
    let app_url = as_user(&with_database(server.admin_url(), &names.db), &names.app);
    let reader_url = as_user(&with_database(server.admin_url(), &names.db), &names.reader);

    // The owner migrates and runs workflows.
    let b = Backend::connect(&app_url).await.unwrap();
    run_two_step(&b, "lp", 5).await;

    let owner = grant_the_reader(&app_url, &names.reader).await;
    let mut r = AsyncPgConnection::establish(&reader_url).await.unwrap();
    assert_the_reader_runs_reports(&mut r).await;
    let rb = assert_a_reader_backend_reads_and_is_refused_writes(&reader_url).await;
    // Nor can the reader create anything in the database.
    assert!(
        r.batch_execute("CREATE TABLE sayiir.x (id int)")
            .await
            .is_err()
    );

    drop((b, rb, r, owner));
    drop_roles_and_database(&mut su, &names).await;
}
