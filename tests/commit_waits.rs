//! Which commits wait to be durable. A server that names a synchronous
//! standby that never connects holds every commit made with
//! `synchronous_commit = on` forever, and lets one made with it off return
//! at once: a crisp test of each statement's setting. The finder's offers,
//! a release and maintenance moving a delay on must return (their loss in a
//! crash only delays work: see `find.sql`, `release.sql` and
//! `dispatch/maintenance.rs`); a claim and a save must wait.

mod common;

use std::time::Duration;

use common::finder::ttl;
use common::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use sayiir_core::snapshot::ExecutionPosition;
use sayiir_diesel_testkit::PgServer;
use sayiir_persistence::{SnapshotStore, TaskClaimStore};

/// How long a commit that does not wait may take, and how long one that
/// waits is watched waiting.
const PROMPT: Duration = Duration::from_secs(5);
const HELD: Duration = Duration::from_millis(1500);

async fn admin(server: &PgServer) -> AsyncPgConnection {
    AsyncPgConnection::establish(server.admin_url())
        .await
        .unwrap()
}

/// Names (or clears) a synchronous standby that never connects.
async fn standby(server: &PgServer, names: &str) {
    // Two commands: ALTER SYSTEM cannot run in the implicit transaction of
    // a multi-statement string.
    let mut conn = admin(server).await;
    conn.batch_execute(&format!(
        "ALTER SYSTEM SET synchronous_standby_names = '{names}'"
    ))
    .await
    .unwrap();
    conn.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    // Every backend applies the reload before its next command.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_and_releases_do_not_wait_for_the_flush_and_claims_and_saves_do() {
    let server = tokio::task::spawn_blocking(|| PgServer::start_with(&["synchronous_commit=on"]))
        .await
        .unwrap()
        .unwrap();
    if server.data_dir().is_none() {
        eprintln!("skipped: DATABASE_URL names the server, and this test reconfigures its own");
        return;
    }
    admin(&server)
        .await
        .batch_execute("CREATE DATABASE commits")
        .await
        .unwrap();
    let url = server.url_for("commits");
    let b = Backend::connect(&url).await.unwrap();
    b.save_snapshot(&mut at_task("offered", "a")).await.unwrap();
    b.save_snapshot(&mut at_task("released", "a"))
        .await
        .unwrap();
    b.claim_task("released", &tid("a"), "w1", ttl(60))
        .await
        .unwrap()
        .expect("claimed");
    let wake_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let mut delayed = at_task("delayed", "a");
    delayed.update_position(ExecutionPosition::AtDelay {
        delay_id: tid("nap"),
        entered_at: chrono::Utc::now(),
        wake_at,
        next_task_id: Some(tid("b")),
    });
    b.save_snapshot(&mut delayed).await.unwrap();

    standby(&server, "nobody").await;

    let found = tokio::time::timeout(
        PROMPT,
        b.find_available_tasks("w2", 8, chrono::Duration::seconds(300), &[]),
    )
    .await
    .expect("the finder's offers do not wait for the flush")
    .unwrap();
    assert_eq!(found.len(), 1, "it offered (and so wrote) a task");
    tokio::time::timeout(PROMPT, b.release_task_claim("released", &tid("a"), "w1"))
        .await
        .expect("a release does not wait for the flush")
        .unwrap();

    // Past the delay (and the maintenance interval), a finder call moves it
    // on and offers its next task.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let found = tokio::time::timeout(
        PROMPT,
        b.find_available_tasks("w3", 8, chrono::Duration::seconds(300), &[]),
    )
    .await
    .expect("moving a delay on does not wait for the flush")
    .unwrap();
    assert!(
        found
            .iter()
            .any(|t| &*t.instance_id == "delayed" && t.task_id == tid("b")),
        "{found:?}"
    );

    let claimer = b.clone();
    let claim = tokio::spawn(async move {
        claimer
            .claim_task("offered", &tid("a"), "w2", ttl(60))
            .await
    });
    let saver = b.clone();
    let save = tokio::spawn(async move { saver.save_snapshot(&mut at_task("saved", "a")).await });
    tokio::time::sleep(HELD).await;
    assert!(!claim.is_finished(), "a claim waits until it is durable");
    assert!(!save.is_finished(), "a save waits until it is durable");

    // Without the standby the held commits return: they were waiting for it.
    standby(&server, "").await;
    let claimed = tokio::time::timeout(PROMPT, claim)
        .await
        .expect("the claim returns")
        .unwrap()
        .unwrap();
    assert!(claimed.is_some());
    tokio::time::timeout(PROMPT, save)
        .await
        .expect("the save returns")
        .unwrap()
        .unwrap();
}
