//! A save or a release that failed without being applied is made again
//! while the claim this backend granted is live, and only then: a table
//! locked past the statement timeout costs a wait, not a repeated step
//! (`store::retry`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::evidence::recorder;
use common::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_diesel_testkit::TestDatabase;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};

const TIMEOUT: Duration = Duration::from_millis(300);

async fn backend_with_timeout() -> (TestDatabase, Backend) {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .statement_timeout(TIMEOUT)
        .build()
        .await
        .unwrap();
    (db, b)
}

/// Locks `table` in ACCESS EXCLUSIVE mode for `hold` on a connection of
/// its own, then lets go.
async fn lock_for(url: &str, table: &str, hold: Duration) -> tokio::task::JoinHandle<()> {
    let mut admin = AsyncPgConnection::establish(url).await.unwrap();
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        admin.batch_execute("COMMIT").await.unwrap();
    })
}

/// `wf` at task `a`, its output recorded and moved on to `b`.
fn moved_on() -> sayiir_core::snapshot::WorkflowSnapshot {
    let mut s = at_task("wf", "a");
    s.mark_task_completed(tid("a"), Bytes::from_static(b"1"));
    s.update_position(ExecutionPosition::AtTask { task_id: tid("b") });
    s
}

/// `wf` saved at task `a` and `a` claimed by `w1` through `b` for `ttl`:
/// the claim this backend's retries are bounded by.
async fn claimed_at_a(b: &Backend, ttl: chrono::Duration) {
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.claim_task("wf", &tid("a"), "w1", Some(ttl))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_save_that_hit_the_statement_timeout_is_made_again_while_the_claim_is_live() {
    let (db, b) = backend_with_timeout().await;
    claimed_at_a(&b, chrono::Duration::seconds(60)).await;
    let (seen, _guard) = recorder();
    // Locked longer than one statement timeout, shorter than two.
    let unlock = lock_for(
        db.url(),
        "sayiir.tasks",
        TIMEOUT + Duration::from_millis(200),
    )
    .await;
    b.save_snapshot(&mut moved_on()).await.unwrap();
    unlock.await.unwrap();
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(stored.current_task_id(), Some(tid("b")));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|e| e.message == "store call retried"
            && e.field("op") == Some("save_snapshot")
            && e.field("landed") == Some("false")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().all(|e| e.message != "store call failed"),
        "{seen:#?}"
    );
    // That save ended the claim itself (its release sends nothing). A
    // release that still writes, the claims locked the same way, is made
    // again too.
    b.claim_task("wf", &tid("b"), "w1", Some(chrono::Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    let unlock = lock_for(
        db.url(),
        "sayiir.claims",
        TIMEOUT + Duration::from_millis(200),
    )
    .await;
    b.release_task_claim("wf", &tid("b"), "w1").await.unwrap();
    unlock.await.unwrap();
    assert!(
        b.claim_task("wf", &tid("b"), "w2", None)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn without_a_live_claim_of_this_backend_a_failed_save_is_not_made_again() {
    let (db, b) = backend_with_timeout().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    // Claimed through another backend: this one holds no claim.
    let other = Backend::connect(db.url()).await.unwrap();
    other
        .claim_task("wf", &tid("a"), "w1", Some(chrono::Duration::seconds(60)))
        .await
        .unwrap()
        .unwrap();
    let (seen, _guard) = recorder();
    let unlock = lock_for(
        db.url(),
        "sayiir.tasks",
        TIMEOUT + Duration::from_millis(200),
    )
    .await;
    let err = b.save_snapshot(&mut moved_on()).await.unwrap_err();
    unlock.await.unwrap();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(stored.current_task_id(), Some(tid("a")));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|e| e.message != "store call retried"),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.message == "store call failed" && e.field("op") == Some("save_snapshot")),
        "{seen:#?}"
    );
}

/// A claim that runs out before a retry could finish is not retried: the
/// room a retry needs is its pause, 200 ms for its statement and a 500 ms
/// margin.
#[tokio::test]
async fn a_claim_about_to_run_out_is_not_retried_on() {
    let (db, b) = backend_with_timeout().await;
    let (seen, _guard) = recorder();
    claimed_at_a(&b, chrono::Duration::milliseconds(900)).await;
    // After the first attempt's 300 ms, 600 ms are left: less than the
    // 800 ms a retry needs (100 ms pause, 200 ms, 500 ms).
    let unlock = lock_for(
        db.url(),
        "sayiir.tasks",
        TIMEOUT + Duration::from_millis(200),
    )
    .await;
    assert!(b.save_snapshot(&mut moved_on()).await.is_err());
    unlock.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|e| e.message != "store call retried"),
        "{seen:#?}"
    );
}

/// The calls around a step that are not its claim, save or release report
/// a transient failure (the runtime gives the step up after one) and not
/// an answer such as an absent workflow.
#[tokio::test]
async fn a_cancel_check_that_timed_out_is_evidence_and_an_absent_workflow_is_not() {
    use sayiir_persistence::SignalStore;
    let (db, b) = backend_with_timeout().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    let (seen, _guard) = recorder();
    assert!(b.load_snapshot("nowhere").await.is_err());
    let unlock = lock_for(
        db.url(),
        "sayiir.signals",
        TIMEOUT + Duration::from_millis(200),
    )
    .await;
    let err = b.check_and_cancel("wf", Some(tid("a"))).await.unwrap_err();
    unlock.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{err}: {seen:#?}");
    assert_eq!(seen[0].message, "store call failed");
    assert_eq!(seen[0].field("op"), Some("check_and_cancel"));
    assert_eq!(seen[0].field("instance_id"), Some("wf"));
    assert_eq!(seen[0].field("transient"), Some("true"));
}

/// The soak's settings: claims of 3 s against a statement timeout of 2 s.
/// A save that timed out once has 1 s of its claim left, too little for
/// another 2 s statement but enough for one bounded by what is left.
async fn soak_like() -> (TestDatabase, Backend) {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .statement_timeout(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    claimed_at_a(&b, chrono::Duration::seconds(3)).await;
    (db, b)
}

#[tokio::test]
async fn a_claim_shorter_than_twice_the_timeout_leaves_room_for_a_bounded_retry() {
    let (db, b) = soak_like().await;
    let (seen, _guard) = recorder();
    let unlock = lock_for(db.url(), "sayiir.tasks", Duration::from_millis(2300)).await;
    b.save_snapshot(&mut moved_on()).await.unwrap();
    unlock.await.unwrap();
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(stored.current_task_id(), Some(tid("b")));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|e| e.message == "store call retried" && e.field("op") == Some("save_snapshot")),
        "{seen:#?}"
    );
}

#[tokio::test]
async fn a_retry_that_cannot_finish_inside_the_claim_gives_up_before_it_runs_out() {
    let (db, b) = soak_like().await;
    let (seen, _guard) = recorder();
    let started = std::time::Instant::now();
    let unlock = lock_for(db.url(), "sayiir.tasks", Duration::from_secs(4)).await;
    let err = b.save_snapshot(&mut moved_on()).await.unwrap_err();
    let gave_up = started.elapsed();
    unlock.await.unwrap();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    assert!(
        gave_up < Duration::from_secs(3),
        "gave up after {gave_up:?}, past the 3 s claim"
    );
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(
        stored.current_task_id(),
        Some(tid("a")),
        "nothing landed late"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter()
            .filter(|e| e.message == "store call retried")
            .count(),
        1,
        "one bounded retry, then no room: {seen:#?}"
    );
}

/// A save cut off with its connection is in doubt: it is read back before
/// anything is written again. When the link stays down for a moment the
/// read back fails too; it is made again (not given up at once) until the
/// link is back. The server finished the save once the lock went (a cut
/// client is noticed only when the answer is sent), so the read back finds
/// it landed; had it not, the save would be made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_back_that_fails_while_the_link_is_down_is_made_again() {
    use sayiir_diesel_testkit::Proxy;

    let db = test_db().await;
    let hostport = db
        .url()
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let upstream: std::net::SocketAddr = hostport.parse().unwrap();
    let proxy = Proxy::start(upstream).await.unwrap();
    let url = db
        .url()
        .replace(&hostport, &format!("127.0.0.1:{}", proxy.port()));
    let b = Backend::builder(&url)
        .acquire_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    claimed_at_a(&b, chrono::Duration::seconds(60)).await;
    let (seen, _guard) = recorder();
    // The save waits on a lock (taken directly, not through the proxy);
    // then its connection is cut and the link held down for 800 ms.
    let unlock = lock_for(db.url(), "sayiir.tasks", Duration::from_millis(400)).await;
    let cut = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.reset();
        proxy.blackhole();
        tokio::time::sleep(Duration::from_millis(800)).await;
        proxy.pass();
        proxy
    });
    b.save_snapshot(&mut moved_on()).await.unwrap();
    let _proxy = cut.await.unwrap();
    unlock.await.unwrap();
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(stored.current_task_id(), Some(tid("b")));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|e| e.message == "store call retried" && e.field("op") == Some("save_snapshot")),
        "{seen:#?}"
    );
}
