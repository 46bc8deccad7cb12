//! Workers that die: a real child process is killed in the middle of a task,
//! another aborts right after its commit save recorded the final output.
//! The workflows still complete on the survivors, with no output lost.
//!
//! The child is this test binary re-run on its ignored `child_worker` entry
//! point with `SAYIIR_CHILD_MODE` and `SAYIIR_CHILD_DB` set.

mod common;

use std::num::NonZeroUsize;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::TaskId;
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::snapshot::{SignalKind, SignalRequest, WorkflowSnapshot};
use sayiir_core::task_claim::{AvailableTask, TaskClaim};
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::schema::sayiir::claims;
use sayiir_persistence::{
    BackendError, SignalStore, SnapshotStore, TaskClaimStore, TaskWakeupHint,
};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkerHandle, WorkflowClient};

/// In the child of the mid-task test, s2 hangs so the parent can kill it.
static HANG_IN_S2: AtomicBool = AtomicBool::new(false);
static S4_RUNS: AtomicU32 = AtomicU32::new(0);

fn workflow() -> Arc<Workflow<JsonCodec, u64>> {
    let ctx = WorkflowContext::new("crashy", Arc::new(JsonCodec), Arc::new(()));
    Arc::new(
        WorkflowBuilder::new(ctx)
            .then("s1", |x: u64| async move { Ok(x + 1) })
            .then("s2", |x: u64| async move {
                if AtomicBool::load(&HANG_IN_S2, SeqCst) {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
                Ok(x * 10)
            })
            .then("s3", |x: u64| async move { Ok(x + 5) })
            .then("s4", |x: u64| async move {
                // Only the recovery test's instance (input 2) is counted.
                if x == 35 {
                    S4_RUNS.fetch_add(1, SeqCst);
                }
                Ok(x * 2)
            })
            .build()
            .unwrap(),
    )
}

fn spawn_worker<B>(backend: B, id: &str) -> WorkerHandle<B>
where
    B: SnapshotStore + SignalStore + TaskClaimStore + 'static,
{
    let wf = workflow();
    let registry = vec![(*wf.definition_hash(), wf)];
    PooledWorker::new(id, backend, TaskRegistry::new())
        .with_claim_ttl(Some(Duration::from_secs(2)))
        .with_batch_size(NonZeroUsize::new(1).unwrap())
        .spawn(Duration::from_millis(100), registry)
}

/// Delegates to the real backend; aborts the process right after the save
/// that records `s4`'s output (the worker's commit save of the final step).
#[derive(Clone)]
struct AbortAfterFinalSave(Backend);

impl SnapshotStore for AbortAfterFinalSave {
    async fn save_snapshot(&self, s: &mut WorkflowSnapshot) -> Result<(), BackendError> {
        self.0.save_snapshot(s).await?;
        if s.get_task_result(&TaskId::from("s4")).is_some() && !s.state.is_terminal() {
            eprintln!("child: aborting right after the commit save of s4");
            std::process::abort();
        }
        Ok(())
    }
    async fn save_task_result(&self, i: &str, t: &TaskId, o: Bytes) -> Result<(), BackendError> {
        self.0.save_task_result(i, t, o).await
    }
    async fn load_snapshot(&self, i: &str) -> Result<WorkflowSnapshot, BackendError> {
        self.0.load_snapshot(i).await
    }
    async fn delete_snapshot(&self, i: &str) -> Result<(), BackendError> {
        self.0.delete_snapshot(i).await
    }
    async fn list_snapshots(&self) -> Result<Vec<String>, BackendError> {
        self.0.list_snapshots().await
    }
}

impl SignalStore for AbortAfterFinalSave {
    async fn store_signal(
        &self,
        i: &str,
        k: SignalKind,
        r: SignalRequest,
    ) -> Result<(), BackendError> {
        self.0.store_signal(i, k, r).await
    }
    async fn get_signal(
        &self,
        i: &str,
        k: SignalKind,
    ) -> Result<Option<SignalRequest>, BackendError> {
        self.0.get_signal(i, k).await
    }
    async fn clear_signal(&self, i: &str, k: SignalKind) -> Result<(), BackendError> {
        self.0.clear_signal(i, k).await
    }
    async fn send_event(&self, i: &str, n: &str, p: Bytes) -> Result<(), BackendError> {
        self.0.send_event(i, n, p).await
    }
    async fn consume_event(&self, i: &str, n: &str) -> Result<Option<Bytes>, BackendError> {
        self.0.consume_event(i, n).await
    }
    async fn check_and_cancel(&self, i: &str, t: Option<TaskId>) -> Result<bool, BackendError> {
        self.0.check_and_cancel(i, t).await
    }
    async fn check_and_pause(&self, i: &str) -> Result<bool, BackendError> {
        self.0.check_and_pause(i).await
    }
    async fn unpause(&self, i: &str) -> Result<WorkflowSnapshot, BackendError> {
        self.0.unpause(i).await
    }
}

impl TaskClaimStore for AbortAfterFinalSave {
    async fn claim_task(
        &self,
        i: &str,
        t: &TaskId,
        w: &str,
        ttl: Option<chrono::Duration>,
    ) -> Result<Option<TaskClaim>, BackendError> {
        self.0.claim_task(i, t, w, ttl).await
    }
    async fn release_task_claim(&self, i: &str, t: &TaskId, w: &str) -> Result<(), BackendError> {
        self.0.release_task_claim(i, t, w).await
    }
    async fn extend_task_claim(
        &self,
        i: &str,
        t: &TaskId,
        w: &str,
        d: chrono::Duration,
    ) -> Result<(), BackendError> {
        self.0.extend_task_claim(i, t, w, d).await
    }
    async fn find_available_tasks(
        &self,
        w: &str,
        limit: usize,
        aging: chrono::Duration,
        tags: &[String],
    ) -> Result<Vec<AvailableTask>, BackendError> {
        self.0.find_available_tasks(w, limit, aging, tags).await
    }
    async fn wait_for_wakeup(&self, t: Duration) -> Result<Option<TaskWakeupHint>, BackendError> {
        self.0.wait_for_wakeup(t).await
    }
    async fn find_hinted_task(
        &self,
        h: &TaskWakeupHint,
    ) -> Result<Option<AvailableTask>, BackendError> {
        self.0.find_hinted_task(h).await
    }
}

/// Child process entry point (ignored in normal runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the child worker process used by the crash tests"]
async fn child_worker() {
    let (Ok(mode), Ok(url)) = (
        std::env::var("SAYIIR_CHILD_MODE"),
        std::env::var("SAYIIR_CHILD_DB"),
    ) else {
        return;
    };
    let backend = Backend::connect(&url).await.unwrap();
    // Bounded: the parent kills us, or we abort; give up after a minute.
    let linger = Duration::from_secs(60);
    if mode == "hang" {
        HANG_IN_S2.store(true, SeqCst);
        let _worker = spawn_worker(backend, "child");
        tokio::time::sleep(linger).await;
    } else {
        let _worker = spawn_worker(AbortAfterFinalSave(backend), "child");
        tokio::time::sleep(linger).await;
    }
}

fn spawn_child(mode: &str, url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_worker",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SAYIIR_CHILD_MODE", mode)
        .env("SAYIIR_CHILD_DB", url)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A fresh database, a backend that recovers after 1 s, and instance "wf"
/// of [`workflow`] submitted with `input`.
async fn submitted(
    input: u64,
) -> (
    sayiir_diesel_testkit::TestDatabase,
    Backend,
    WorkflowClient<Backend>,
) {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .recovery_grace(Duration::from_secs(1))
        .build()
        .await
        .unwrap();
    let client = WorkflowClient::new(b.clone());
    client.submit(&*workflow(), "wf", input).await.unwrap();
    (db, b, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_is_taken_over() {
    let (db, b, client) = submitted(1).await;

    let mut child = spawn_child("hang", db.url());
    // Wait until the child holds the claim on s2 (it hangs there).
    let mut conn = raw_conn(&db).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held: Option<Vec<u8>> = claims::table
            .filter(claims::worker_id.eq("child"))
            .select(claims::task_id)
            .first(&mut conn)
            .await
            .optional()
            .unwrap();
        if held.as_deref() == Some(&TaskId::from("s2").as_bytes()[..]) {
            break;
        }
        assert!(Instant::now() < deadline, "child never claimed s2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let survivor = spawn_worker(b.clone(), "survivor");
    wait_status(&client, "wf", Duration::from_secs(60), completed).await;
    let out = final_output(&b, "wf").await;
    assert_eq!(&out[..], b"50", "((1+1)*10+5)*2");
    assert_eq!(
        client.get_task_result("wf", "s1").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    survivor.shutdown();
    survivor.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dead_right_after_saving_the_final_output_is_recovered() {
    let (db, b, client) = submitted(2).await;

    let mut child = spawn_child("abort-after-save", db.url());
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child aborted");
    // The crash window: s4's output is recorded, the workflow did not finish.
    let s = b.load_snapshot("wf").await.unwrap();
    assert!(s.state.is_in_progress());
    assert_eq!(s.current_task_id(), Some(TaskId::from("s4")));
    assert_eq!(
        s.get_task_result_bytes(&TaskId::from("s4")).as_deref(),
        Some(&b"70"[..])
    );

    let survivor = spawn_worker(b.clone(), "survivor");
    wait_status(&client, "wf", Duration::from_secs(60), completed).await;
    let out = final_output(&b, "wf").await;
    assert_eq!(&out[..], b"70", "((2+1)*10+5)*2");
    assert_eq!(
        AtomicU32::load(&S4_RUNS, SeqCst),
        1,
        "the survivor ran s4 once more, and only once"
    );
    assert_eq!(b.metrics().recovered, 1);
    for step in ["s1", "s2", "s3", "s4"] {
        assert!(
            client.get_task_result("wf", step).await.unwrap().is_some(),
            "{step} output kept"
        );
    }
    survivor.shutdown();
    survivor.join().await.unwrap();
}
