//! Through PgBouncer (Debian's 1.18 in CI): session mode runs workflows
//! with every connection (pool, migrations, `LISTEN`) going through it;
//! transaction mode is refused at boot with a clear error, quickly, while
//! migrations alone work through it (one transaction).

mod common;

use std::time::{Duration, Instant};

use common::*;
use sayiir_diesel::Error;
use sayiir_diesel_testkit::{PgBouncer, PgServer, PoolMode, pgbouncer_bin};

/// A PgBouncer in `mode` in front of the shared test server, or `None`
/// (test skipped) when there is no binary or `DATABASE_URL` names the
/// server. `.ci/run` sets `SAYIIR_REQUIRE_PGBOUNCER` so CI never skips.
fn bouncer(mode: PoolMode, pool_size: u32) -> Option<PgBouncer> {
    let required = std::env::var_os("SAYIIR_REQUIRE_PGBOUNCER").is_some();
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        assert!(!required, "the PgBouncer tests need the throwaway server");
        eprintln!("skipped: needs the throwaway server");
        return None;
    }
    if pgbouncer_bin().is_none() {
        assert!(!required, "pgbouncer not installed");
        eprintln!("skipped: pgbouncer not installed");
        return None;
    }
    let server = PgServer::shared().unwrap();
    let port: u16 = server
        .admin_url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    Some(PgBouncer::start(port, mode, &["postgres"], pool_size).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_run_through_pgbouncer_in_session_mode() {
    let Some(pgb) = bouncer(PoolMode::Session, 20) else {
        return;
    };
    let db = empty_db().await;
    let url = pgb.url(db.url());
    // Migrations, pool and listener all through PgBouncer.
    let b = Backend::builder(&url)
        .max_connections(6)
        .build()
        .await
        .unwrap();
    // Polls every 100 ms; wakeups (through PgBouncer's LISTEN session) make
    // the run faster, and are counted.
    run_two_step(&b, "pgb", 20).await;
    assert!(b.metrics().wakeups_delivered > 0, "{:?}", b.metrics());
}

/// Runs the migrations through a pooler. Establishing a connection through
/// a transaction pooler can itself fail (diesel-async prepares statements
/// while setting up): retried, as the README says; the migration run is
/// one transaction.
async fn migrate_through_pooler(url: &str) -> Vec<String> {
    for _ in 0..10 {
        match sayiir_diesel::migrations::run(url).await {
            Err(Error::Connection(e)) => eprintln!("connect through the pooler: {e}; again"),
            other => return other.unwrap(),
        }
    }
    panic!("no connection through the pooler in 10 attempts");
}

/// A backend on `url` (a transaction pooler) is refused, naming the cause,
/// without hanging.
async fn assert_the_backend_refuses_the_pooler(url: &str) {
    let started = Instant::now();
    let err = Backend::builder(url).build().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        matches!(
            &err,
            Error::TransactionPooler {
                what: "the pool",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("session mode"), "{err}");
    eprintln!("refused: {err}");
}

/// A direct pool (to `direct_url`) with the listener's URL through the
/// pooler (`url`): refused too.
async fn assert_a_listener_through_the_pooler_is_refused(url: &str, direct_url: &str) {
    let direct = Backend::connect(direct_url).await.unwrap();
    let err = Backend::builder(url)
        .pool(direct.pool().clone())
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::TransactionPooler {
                what: "the builder's URL",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_is_refused_at_boot_and_migrations_still_run() {
    let Some(pgb) = bouncer(PoolMode::Transaction, 4) else {
        return;
    };
    let db = empty_db().await;
    let url = pgb.url(db.url());

    // Migrations run in one transaction: fine through a transaction pooler,
    // and again (nothing pending).
    let applied = migrate_through_pooler(&url).await;
    assert!(!applied.is_empty());
    assert!(migrate_through_pooler(&url).await.is_empty());

    assert_the_backend_refuses_the_pooler(&url).await;
    assert_a_listener_through_the_pooler_is_refused(&url, db.url()).await;

    // Straight to the server, the check passes.
    Backend::builder(db.url()).build().await.unwrap();
}
