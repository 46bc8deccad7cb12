//! How you test your own workflows on sayiir-diesel, written as you would in
//! your application: public API only (`sayiir_diesel`, its testkit and the
//! runtime), a database of the test's own, your tasks run by a real
//! `PooledWorker`, then the output and the stored state asserted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder, WorkflowStatus};
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_diesel::{DieselBackend, Status, reports};
use sayiir_diesel_testkit::TestDatabase;
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkerHandle, WorkflowClient};

type Backend = DieselBackend<JsonCodec>;

/// The workflow under test: trim and lower-case an e-mail address, wait
/// for the `confirmed` event (its payload replaces the address), then write
/// the welcome line.
fn signup() -> Arc<Workflow<JsonCodec, String>> {
    let ctx = WorkflowContext::new("signup", Arc::new(JsonCodec), Arc::new(()));
    let wf = WorkflowBuilder::new(ctx)
        .then("normalise", |email: String| async move {
            Ok(email.trim().to_lowercase())
        })
        .wait_for_signal("confirmed", "confirmed", None)
        .then("welcome", |email: String| async move {
            Ok(format!("welcome, {email}"))
        })
        .build()
        .expect("a valid workflow");
    Arc::new(wf)
}

/// A database of this test's own (sayiir's schema migrated), a backend on
/// it and one worker running `wf`.
async fn start(
    wf: &Arc<Workflow<JsonCodec, String>>,
) -> (TestDatabase, Backend, WorkerHandle<Backend>) {
    let db = sayiir_diesel_testkit::sayiir_database().await.unwrap();
    let backend = Backend::connect(db.url()).await.unwrap();
    let worker = PooledWorker::new("test-worker", backend.clone(), TaskRegistry::new()).spawn(
        Duration::from_millis(50),
        vec![(*wf.definition_hash(), Arc::clone(wf))],
    );
    (db, backend, worker)
}

async fn wait_for(client: &WorkflowClient<Backend>, id: &str, done: fn(&WorkflowStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.status(id).await.unwrap();
        if done(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{id} is still {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_signup_completes_with_the_welcome_line() {
    let wf = signup();
    let (_db, backend, worker) = start(&wf).await;
    let client = WorkflowClient::new(backend.clone());

    client
        .submit(&*wf, "signup-1", "  Ada@Example.COM ".to_owned())
        .await
        .unwrap();
    wait_for(&client, "signup-1", |s| {
        matches!(s, WorkflowStatus::AwaitingSignal { .. })
    })
    .await;
    let normalised = client
        .get_task_result("signup-1", "normalise")
        .await
        .unwrap();
    assert_eq!(normalised, Some(Bytes::from_static(b"\"ada@example.com\"")));

    let confirmed = serde_json::to_vec("ada@example.com").unwrap();
    client
        .send_event("signup-1", "confirmed", Bytes::from(confirmed))
        .await
        .unwrap();
    wait_for(&client, "signup-1", |s| {
        matches!(s, WorkflowStatus::Completed)
    })
    .await;
    worker.shutdown();

    let welcome = client.get_task_result("signup-1", "welcome").await.unwrap();
    assert_eq!(
        welcome,
        Some(Bytes::from_static(b"\"welcome, ada@example.com\""))
    );
    // The stored state, through the same typed fragments your reports use.
    let mut conn = backend.pool().get().await.unwrap();
    let completed: Vec<String> = reports::workflows_in(Status::Completed)
        .select(workflows::instance_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(completed, ["signup-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_signup_waits_at_its_event() {
    let wf = signup();
    let (_db, backend, worker) = start(&wf).await;
    let client = WorkflowClient::new(backend.clone());

    client
        .submit(&*wf, "signup-2", "bob@example.com".to_owned())
        .await
        .unwrap();
    wait_for(&client, "signup-2", |s| {
        matches!(s, WorkflowStatus::AwaitingSignal { .. })
    })
    .await;
    worker.shutdown();

    assert_eq!(
        client.get_task_result("signup-2", "welcome").await.unwrap(),
        None
    );
    let mut conn = backend.pool().get().await.unwrap();
    let (status, at): (Status, Option<String>) = workflows::table
        .find("signup-2")
        .select((workflows::status, workflows::position_kind))
        .first(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (status, at.as_deref()),
        (Status::InProgress, Some("AtSignal"))
    );
}
