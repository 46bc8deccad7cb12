//! 16 concurrent tasks mixing cancel, pause, unpause, events and snapshot
//! saves on a few shared instances: no deadlock, no lost event, and a final
//! state consistent with SPEC 3.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::snapshot::{ExecutionPosition, SignalKind};
use sayiir_diesel::schema::sayiir::{events, signals, task_outputs, workflows};
use sayiir_persistence::{BackendError, SignalStore, SnapshotStore};

const INSTANCES: usize = 4;
const TASKS: u64 = 16;
const ROUNDS: u64 = 60;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Events sent, consumed, and fresh signal nodes parked at, across clients.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    consumed: AtomicU64,
    fresh: AtomicU64,
}

/// Parks every instance `wf-{i}` at a signal named `go`.
async fn park_instances(b: &Backend) {
    for i in 0..INSTANCES {
        b.save_snapshot(&mut at_signal(
            &format!("wf-{i}"),
            &format!("sig-{i}-init"),
            "go",
            Some("next"),
        ))
        .await
        .unwrap();
    }
}

/// A worker: at a task, park again at a fresh signal node.
async fn park_again(b: &Backend, id: &str, tally: &Tally) -> Result<(), BackendError> {
    match b.load_snapshot(id).await {
        Ok(mut s) if s.current_task_id().is_some() => {
            let k = tally.fresh.fetch_add(1, Ordering::SeqCst);
            s.update_position(ExecutionPosition::AtSignal {
                signal_id: tid(&format!("sig-{id}-{k}")),
                signal_name: "go".into(),
                wake_at: None,
                next_task_id: Some(tid("next")),
            });
            b.save_snapshot(&mut s).await
        }
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One call picked by `rng` on a random instance: a cancel or pause
/// request, a cancel or pause check, an unpause, an event sent or
/// consumed, or a worker parking again.
async fn one_random_call(b: &Backend, rng: &mut Lcg, tally: &Tally) -> Result<(), BackendError> {
    let id = format!("wf-{}", rng.next(INSTANCES as u64));
    match rng.next(9) {
        0 => {
            b.store_signal(&id, SignalKind::Cancel, request("stress", "t"))
                .await
        }
        1 | 2 => {
            b.store_signal(&id, SignalKind::Pause, request("stress", "t"))
                .await
        }
        3 => b.check_and_cancel(&id, None).await.map(drop),
        4 => b.check_and_pause(&id).await.map(drop),
        5 => b.unpause(&id).await.map(drop),
        6 => {
            let n = tally.sent.fetch_add(1, Ordering::SeqCst);
            b.send_event(&id, "go", Bytes::from(format!("ev-{n}")))
                .await
        }
        7 => b.consume_event(&id, "go").await.map(|e| {
            if e.is_some() {
                tally.consumed.fetch_add(1, Ordering::SeqCst);
            }
        }),
        _ => park_again(b, &id, tally).await,
    }
}

/// Runs `TASKS` concurrent clients of `ROUNDS` random calls each and
/// returns the errors other than a refused cancel or pause.
async fn run_clients(b: &Backend, tally: &Arc<Tally>) -> Vec<String> {
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let (b, tally) = (b.clone(), Arc::clone(tally));
        handles.push(tokio::spawn(async move {
            let mut rng = Lcg(t + 1);
            let mut unexpected: Vec<String> = Vec::new();
            for _ in 0..ROUNDS {
                match one_random_call(&b, &mut rng, &tally).await {
                    Ok(()) | Err(BackendError::CannotCancel(_) | BackendError::CannotPause(_)) => {}
                    Err(e) => unexpected.push(e.to_string()),
                }
            }
            unexpected
        }));
    }
    let mut errors = Vec::new();
    for h in handles {
        errors.extend(h.await.unwrap());
    }
    errors
}

/// Every event sent is still buffered, was consumed, or resumed a workflow
/// (its bytes are a task's output) exactly once.
async fn assert_every_event_accounted_for(
    conn: &mut diesel_async::AsyncPgConnection,
    tally: &Tally,
) {
    let remaining: i64 = events::table.count().get_result(conn).await.unwrap();
    let resumed: i64 = task_outputs::table
        .filter(task_outputs::output.like(b"ev-%".to_vec()))
        .count()
        .get_result(conn)
        .await
        .unwrap();
    let sent = AtomicU64::load(&tally.sent, Ordering::SeqCst);
    assert!(
        sent > 0 && resumed > 0,
        "the mix exercised resumes (sent {sent}, resumed {resumed})"
    );
    assert_eq!(
        u64::try_from(remaining + resumed).unwrap()
            + AtomicU64::load(&tally.consumed, Ordering::SeqCst),
        sent,
        "every event is buffered, consumed or resumed a workflow exactly once"
    );
}

/// SPEC 3.1/3.6/3.7: no stray signal rows that the state already reflects.
async fn assert_no_stray_signal_rows(conn: &mut diesel_async::AsyncPgConnection) {
    let rows: Vec<(String, String)> = workflows::table
        .select((workflows::instance_id, workflows::status))
        .load(conn)
        .await
        .unwrap();
    for (id, status) in rows {
        let kinds: Vec<String> = signals::table
            .filter(signals::instance_id.eq(&id))
            .select(signals::kind)
            .load(conn)
            .await
            .unwrap();
        if status == "Paused" {
            assert!(
                !kinds.contains(&"Pause".to_string()),
                "{id}: Paused with a Pause row"
            );
        }
        if status == "Cancelled" {
            assert!(
                !kinds.contains(&"Cancel".to_string()),
                "{id}: Cancelled with a Cancel row"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_signal_traffic_never_deadlocks_or_loses_events() {
    let db = test_db().await;
    let b = Backend::builder(db.url())
        .max_connections(20)
        .build()
        .await
        .unwrap();
    park_instances(&b).await;
    let tally = Arc::new(Tally::default());
    let errors = run_clients(&b, &tally).await;
    assert!(
        errors.is_empty(),
        "unexpected errors (deadlocks show as 40P01/\"deadlock\"): {errors:?}"
    );

    let mut conn = raw_conn(&db).await;
    assert_every_event_accounted_for(&mut conn, &tally).await;
    assert_no_stray_signal_rows(&mut conn).await;
}
