//! A save or a release that failed without being applied is made again
//! when it was made under a live claim this backend granted, and a save
//! only while that claim is still its worker's in the database: a table
//! locked past the statement timeout, or past the claim, costs a wait, not
//! a repeated step, and a claim taken over meanwhile is never written over
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

/// A save that starts once the claim it was made under has run out is
/// not made again: another worker may hold the step by now.
#[tokio::test]
async fn a_save_made_after_its_claim_ran_out_is_not_made_again() {
    let (db, b) = backend_with_timeout().await;
    claimed_at_a(&b, chrono::Duration::milliseconds(200)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (seen, _guard) = recorder();
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

/// A lock on the queue longer than the claim: nobody can take the claim
/// over while it lasts (every claim writes the queue row), so the save made
/// again, behind the fence, lands once the lock goes: no repeat. A claim
/// attempt after it finds the step done.
#[tokio::test]
async fn a_lock_that_outlasts_the_claim_costs_no_repeat() {
    let (db, b) = soak_like().await;
    let (seen, _guard) = recorder();
    let started = std::time::Instant::now();
    let unlock = lock_for(db.url(), "sayiir.tasks", Duration::from_secs(4)).await;
    b.save_snapshot(&mut moved_on()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "landed after the 3 s claim ran out"
    );
    unlock.await.unwrap();
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(stored.current_task_id(), Some(tid("b")));
    let other = Backend::connect(db.url()).await.unwrap();
    assert!(
        other
            .claim_task("wf", &tid("a"), "w2", None)
            .await
            .unwrap()
            .is_none(),
        "step a is done: nobody runs it again"
    );
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|e| e.message == "store call retried" && e.field("op") == Some("save_snapshot")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().all(|e| e.message != "store call failed"),
        "{seen:#?}"
    );
}

/// A claim taken over while the save kept failing: the retry, behind the
/// fence, sees the new holder's claim and writes nothing (it could land
/// over the new holder's work). The outputs table is locked, which the
/// save needs and a claim does not, so the takeover can land between two
/// attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_made_again_after_a_takeover_writes_nothing() {
    let (db, b) = backend_with_timeout().await;
    claimed_at_a(&b, chrono::Duration::milliseconds(500)).await;
    let (seen, _guard) = recorder();
    let unlock = lock_for(db.url(), "sayiir.task_outputs", Duration::from_millis(1000)).await;
    let url = db.url().to_owned();
    let takeover = tokio::spawn(async move {
        let other = Backend::connect(&url).await.unwrap();
        tokio::time::sleep(Duration::from_millis(550)).await;
        for _ in 0..100 {
            if other
                .claim_task("wf", &tid("a"), "w2", Some(chrono::Duration::seconds(60)))
                .await
                .unwrap()
                .is_some()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the expired claim was never taken over");
    });
    let err = b.save_snapshot(&mut moved_on()).await.unwrap_err();
    takeover.await.unwrap();
    unlock.await.unwrap();
    assert!(err.to_string().contains("no longer w1's"), "{err}");
    let stored = b.load_snapshot("wf").await.unwrap();
    assert_eq!(stored.current_task_id(), Some(tid("a")), "nothing landed");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|e| e.message == "store call failed"
            && e.field("op") == Some("save_snapshot")
            && e.field("error").is_some_and(|m| m.contains("w2's claim"))),
        "{seen:#?}"
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
