//! Read-only work on a streaming standby: report fragments through
//! `Builder::read_url`'s pool; a backend pointed at the standby is refused
//! at boot with a clear error, at once, instead of retrying writes against
//! a read-only server. Needs `pg_basebackup` (see tests/failover.rs).

mod common;

use std::time::{Duration, Instant};

use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::models::Workflow;
use sayiir_diesel::{Error, Status, reports};
use sayiir_diesel_testkit::{PairWithDatabase, ReplicatedPair};
use sayiir_persistence::SnapshotStore;

/// Whether the server behind `conn` is in recovery (a standby).
async fn in_recovery(conn: &mut diesel_async::AsyncPgConnection) -> bool {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "pg_is_in_recovery()",
    ))
    .get_result(conn)
    .await
    .unwrap()
}

/// The report fragments read the five running workflows on the standby,
/// and a write there fails at once with the server's reason.
async fn assert_reports_read_and_writes_fail(read: &mut diesel_async::AsyncPgConnection) {
    let running: Vec<Workflow> = reports::workflows_in(Status::InProgress)
        .select(Workflow::as_select())
        .load(read)
        .await
        .unwrap();
    assert_eq!(running.len(), 5);
    assert_eq!(
        reports::runnable_tasks()
            .count()
            .get_result::<i64>(read)
            .await
            .unwrap(),
        5
    );
    // A write through the standby fails at once with the server's reason.
    let started = Instant::now();
    let err = diesel::sql_query("DELETE FROM sayiir.workflows")
        .execute(read)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The store itself is refused a standby, with or without migrations,
/// quickly and naming the cause.
async fn assert_the_store_refuses_a_standby(standby: &str) {
    for migrate in [true, false] {
        let started = Instant::now();
        let err = Backend::builder(standby)
            .run_migrations(migrate)
            .build()
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(&err, Error::ReadOnlyServer { evidence, .. } if evidence.contains("standby")),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_read_from_a_standby_and_the_store_refuses_one() {
    let Some(PairWithDatabase {
        pair: _servers, // kept alive to the end of the test
        primary,
        standby,
    }) = tokio::task::spawn_blocking(|| ReplicatedPair::synchronous_with_database("app"))
        .await
        .unwrap()
        .unwrap()
    else {
        return;
    };

    let b = Backend::builder(&primary)
        .read_url(&standby)
        .build()
        .await
        .unwrap();
    for i in 0..5 {
        b.save_snapshot(&mut at_task(&format!("r-{i}"), "a"))
            .await
            .unwrap();
    }
    // The read pool is the standby's; the store's pool is the primary's.
    let mut read = b.read_pool().get().await.unwrap();
    assert!(in_recovery(&mut read).await);
    assert_reports_read_and_writes_fail(&mut read).await;
    assert_the_store_refuses_a_standby(&standby).await;
    // Without a read URL the read pool is the main pool.
    let plain = Backend::builder(&primary).build().await.unwrap();
    let mut conn = plain.read_pool().get().await.unwrap();
    assert!(!in_recovery(&mut conn).await);
}
