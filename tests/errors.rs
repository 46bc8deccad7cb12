//! Bad input gets a clear error, never a panic or a half-written row; the
//! backend keeps serving afterwards. Pool exhaustion is a timeout error.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_persistence::{
    BackendError, SignalStore, SnapshotStore, TaskClaimStore, TaskResultStore,
};

async fn still_serving(b: &Backend) {
    let mut s = at_task("healthy", "a");
    b.save_snapshot(&mut s).await.unwrap();
    b.load_snapshot("healthy").await.unwrap();
}

/// `err` is the refusal of invalid input whose message contains `why`.
fn assert_refused(err: &BackendError, why: &str) {
    assert!(
        matches!(err, BackendError::Backend(m) if m.contains(why)),
        "{err:?}"
    );
}

/// Saving or sending to `bad` is refused as invalid input; since such an
/// id was never stored, lookups answer as for any absent one.
async fn assert_a_bad_id_is_refused_or_absent(b: &Backend, bad: &str) {
    let mut s = at_task(bad, "a");
    let err = b.save_snapshot(&mut s).await.unwrap_err();
    assert_refused(&err, "invalid input");
    // Such an id was never stored: lookups answer as for any absent one.
    assert!(matches!(
        b.load_snapshot(bad).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        b.delete_snapshot(bad).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        b.save_task_result(bad, &tid("a"), Bytes::new()).await,
        Err(BackendError::NotFound(_))
    ));
    assert!(matches!(
        b.load_task_result(bad, &tid("a")).await,
        Err(BackendError::NotFound(_))
    ));
    let err = b.send_event(bad, "ev", Bytes::new()).await.unwrap_err();
    assert_refused(&err, "invalid input");
}

/// Signal names and worker ids are index keys too: a clear error, not an
/// index failure.
async fn assert_overlong_keys_are_refused(b: &Backend) {
    let err = b
        .send_event("wf", &"n".repeat(3000), Bytes::new())
        .await
        .unwrap_err();
    assert_refused(&err, "at most 1024");
    let err = b
        .find_available_tasks(&"w".repeat(3000), 1, chrono::Duration::seconds(1), &[])
        .await
        .unwrap_err();
    assert_refused(&err, "at most 1024");
}

/// A NUL in a tag or in the trace parent is refused.
async fn assert_nul_in_tags_or_trace_parent_is_refused(b: &Backend) {
    let mut s = at_task("tagged", "a");
    s.task_tags = vec!["bad\0tag".into()];
    assert!(
        matches!(b.save_snapshot(&mut s).await, Err(BackendError::Backend(m)) if m.contains("NUL"))
    );
    let mut s = at_task("traced", "a");
    s.trace_parent = Some("x\0".into());
    assert!(b.save_snapshot(&mut s).await.is_err());
}

#[tokio::test]
async fn nul_bytes_and_empty_ids_are_rejected_without_writing() {
    let (db, b) = backend().await;
    let too_long = "x".repeat(3000);
    for bad in ["", "with\0nul", too_long.as_str()] {
        assert_a_bad_id_is_refused_or_absent(&b, bad).await;
    }
    assert_overlong_keys_are_refused(&b).await;
    assert_nul_in_tags_or_trace_parent_is_refused(&b).await;
    let mut conn = raw_conn(&db).await;
    let rows: i64 = workflows::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no row was written");
    still_serving(&b).await;
}

#[tokio::test]
async fn corrupt_pre_1_0_and_foreign_codec_blobs_are_serialization_errors() {
    let (db, b) = backend().await;
    let mut conn = raw_conn(&db).await;
    let json = br#"{"instance_id":"x"}"#.to_vec();
    let mut foreign = b"SYRS".to_vec();
    foreign.extend_from_slice(&[1, 2]);
    foreign.extend_from_slice(b"payload");
    let mut truncated = b"SYRS".to_vec();
    truncated.push(1);
    let mut garbage_json = b"SYRS".to_vec();
    garbage_json.extend_from_slice(&[1, 1]);
    garbage_json.extend_from_slice(b"{not json");
    for (id, blob, expect) in [
        ("pre10", json, Some("pre-1.0")),
        ("foreign", foreign, None),
        ("truncated", truncated, None),
        ("garbage", garbage_json, None),
    ] {
        b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
        diesel::update(workflows::table.find(id))
            .set(workflows::snapshot.eq(blob))
            .execute(&mut conn)
            .await
            .unwrap();
        match b.load_snapshot(id).await {
            Err(BackendError::Serialization(msg)) => {
                if let Some(text) = expect {
                    assert!(msg.contains(text), "{id}: {msg}");
                }
            }
            other => panic!("{id}: expected Serialization, got {other:?}"),
        }
        // A write that must decode the stored blob fails cleanly too.
        assert!(matches!(
            b.save_task_result(id, &tid("a"), Bytes::new()).await,
            Err(BackendError::Serialization(_))
        ));
    }
    still_serving(&b).await;
}

#[tokio::test]
async fn pool_exhaustion_is_a_clear_timeout_error() {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let held = b.pool().get().await.unwrap();
    let started = Instant::now();
    let err = b.load_snapshot("wf").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(&err, BackendError::Backend(m) if m.contains("pool") && m.to_lowercase().contains("timeout")),
        "{err:?}"
    );
    drop(held);
    still_serving(&b).await;
}

#[tokio::test]
async fn session_settings_are_applied_to_pooled_connections() {
    #[derive(diesel::QueryableByName)]
    struct Settings {
        #[diesel(sql_type = diesel::sql_types::Text)]
        app: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        stmt: String,
    }
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .application_name("my-app-workers")
        .statement_timeout(Duration::from_millis(1500))
        .build()
        .await
        .unwrap();
    let mut conn = b.pool().get().await.unwrap();
    let s: Settings = diesel::sql_query(
        "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS stmt",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(s.app, "my-app-workers");
    assert_eq!(s.stmt, "1500ms");
}

/// Turns the database read-only (or writable again) for new sessions and
/// ends every other session, as a failover does.
async fn set_read_only_and_cut_sessions(
    admin: &mut diesel_async::AsyncPgConnection,
    db: &sayiir_diesel_testkit::TestDatabase,
    on: bool,
) {
    diesel_async::SimpleAsyncConnection::batch_execute(
        admin,
        &format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = {on}; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            db.name()
        ),
    )
    .await
    .unwrap();
}

/// A read-only server (a standby, a failover in progress) is a transient
/// condition for the finder: it retries instead of returning an error that
/// would end every `PooledWorker` loop, and finds the work once the server
/// takes writes again.
#[tokio::test]
async fn the_finder_rides_out_a_read_only_server() {
    let db = test_db().await;
    let mut admin = raw_conn(&db).await;
    let writer = Backend::connect(db.url()).await.unwrap();
    writer.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    // Booted while the server took writes (a backend booting on a
    // read-only server is refused: tests/standby.rs), then the server turns
    // read-only and every session is cut, as in a failover.
    let b = Backend::builder(db.url())
        .run_migrations(false)
        .build()
        .await
        .unwrap();
    set_read_only_and_cut_sessions(&mut admin, &db, true).await;
    let finder = tokio::spawn({
        let b = b.clone();
        async move {
            b.find_available_tasks("w", 8, chrono::Duration::seconds(300), &[])
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!finder.is_finished(), "the finder keeps retrying");
    // Writable again: new sessions, and the old ones ended.
    set_read_only_and_cut_sessions(&mut admin, &db, false).await;
    let found = tokio::time::timeout(Duration::from_secs(20), finder)
        .await
        .expect("the finder returns once the server is writable")
        .unwrap()
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(b.metrics().retries > 0);
}
