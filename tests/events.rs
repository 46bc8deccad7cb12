//! SignalStore's external events: resuming a parked workflow, buffering
//! in FIFO order per name, and racing senders and consumers (SPEC 3, 7, 8).

mod common;

use bytes::Bytes;
use common::*;
use sayiir_persistence::{SignalStore, SnapshotStore};

#[tokio::test]
async fn send_event_resumes_a_parked_workflow() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_signal("wf", "sig", "approve", Some("next")))
        .await
        .unwrap();
    b.send_event("wf", "approve", Bytes::from_static(b"yes"))
        .await
        .unwrap();
    let s = b.load_snapshot("wf").await.unwrap();
    assert_eq!(s.current_task_id(), Some(tid("next")));
    assert_eq!(
        s.get_task_result_bytes(&tid("sig")).as_deref(),
        Some(&b"yes"[..]),
        "keyed by signal_id"
    );
    assert_eq!(
        s.get_last_task_output().as_deref(),
        Some(&b"yes"[..]),
        "input of the next task"
    );
    assert_eq!(
        output_of(&b, "wf", "sig").await.as_deref(),
        Some(&b"yes"[..])
    );
    assert!(
        b.consume_event("wf", "approve").await.unwrap().is_none(),
        "not buffered"
    );

    // Last node: the payload completes the workflow and stays readable.
    b.save_snapshot(&mut at_signal("last", "sig", "approve", None))
        .await
        .unwrap();
    b.send_event("last", "approve", Bytes::from_static(b"done"))
        .await
        .unwrap();
    let s = b.load_snapshot("last").await.unwrap();
    assert_eq!(s.final_output_bytes().as_deref(), Some(&b"done"[..]));
    assert_eq!(
        output_of(&b, "last", "sig").await.as_deref(),
        Some(&b"done"[..])
    );
    assert_eq!(
        output_of(&b, "last", "before").await.as_deref(),
        Some(&b"before-out"[..])
    );
}

/// The next buffered event `name` of `id`, consumed.
async fn next_event(b: &Backend, id: &str, name: &str) -> Option<Bytes> {
    b.consume_event(id, name).await.unwrap()
}

/// At a task: events are buffered, the snapshot is left as it was, and each
/// name's events come back oldest first.
async fn a_busy_workflow_buffers_fifo_per_name(b: &Backend) {
    let at = at_task("busy", "a");
    b.save_snapshot(&mut at.clone()).await.unwrap();
    let before = b.load_snapshot("busy").await.unwrap();
    for p in ["1", "2", "3"] {
        b.send_event("busy", "go", Bytes::from(p)).await.unwrap();
    }
    b.send_event("busy", "other", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let after = b.load_snapshot("busy").await.unwrap();
    assert_eq!(
        after.current_task_id(),
        before.current_task_id(),
        "snapshot unchanged"
    );
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(
        next_event(b, "busy", "go").await.as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        next_event(b, "busy", "other").await.as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        next_event(b, "busy", "go").await.as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        next_event(b, "busy", "go").await.as_deref(),
        Some(&b"3"[..])
    );
    assert!(next_event(b, "busy", "go").await.is_none());
}

/// Unknown and finished instances buffer without error.
async fn unknown_and_finished_instances_buffer(b: &Backend) {
    b.send_event("not-yet", "go", Bytes::from_static(b"early"))
        .await
        .unwrap();
    assert_eq!(
        next_event(b, "not-yet", "go").await.as_deref(),
        Some(&b"early"[..])
    );
    let mut done = at_task("done", "a");
    done.mark_completed(Bytes::new());
    b.save_snapshot(&mut done).await.unwrap();
    b.send_event("done", "go", Bytes::from_static(b"late"))
        .await
        .unwrap();
    assert_eq!(
        next_event(b, "done", "go").await.as_deref(),
        Some(&b"late"[..])
    );
}

#[tokio::test]
async fn send_event_buffers_everywhere_else_in_fifo_order_per_name() {
    let (_db, b) = backend().await;
    a_busy_workflow_buffers_fifo_per_name(&b).await;

    // Parked for another name: buffered.
    b.save_snapshot(&mut at_signal("parked", "sig", "approve", Some("n")))
        .await
        .unwrap();
    b.send_event("parked", "reject", Bytes::from_static(b"r"))
        .await
        .unwrap();
    assert!(
        b.load_snapshot("parked")
            .await
            .unwrap()
            .awaited_signal_name()
            .is_some()
    );
    unknown_and_finished_instances_buffer(&b).await;
}

#[tokio::test]
async fn an_older_buffered_event_resumes_first() {
    let (_db, b) = backend().await;
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    b.send_event("wf", "go", Bytes::from_static(b"e1"))
        .await
        .unwrap();
    b.send_event("wf", "go", Bytes::from_static(b"e2"))
        .await
        .unwrap();
    let mut s = at_signal("wf", "sig", "go", Some("next"));
    b.save_snapshot(&mut s).await.unwrap();
    b.send_event("wf", "go", Bytes::from_static(b"e3"))
        .await
        .unwrap();
    let s = b.load_snapshot("wf").await.unwrap();
    assert_eq!(
        s.get_task_result_bytes(&tid("sig")).as_deref(),
        Some(&b"e1"[..])
    );
    assert_eq!(
        b.consume_event("wf", "go").await.unwrap().as_deref(),
        Some(&b"e2"[..])
    );
    assert_eq!(
        b.consume_event("wf", "go").await.unwrap().as_deref(),
        Some(&b"e3"[..])
    );
    assert!(b.consume_event("wf", "go").await.unwrap().is_none());
}

#[tokio::test]
async fn racing_senders_resume_exactly_once() {
    let (_db, b) = backend().await;
    for round in 0..20 {
        let id = format!("wf-{round}");
        b.save_snapshot(&mut at_signal(&id, "sig", "go", Some("next")))
            .await
            .unwrap();
        let (b1, b2) = (b.clone(), b.clone());
        let (i1, i2) = (id.clone(), id.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move { b1.send_event(&i1, "go", Bytes::from_static(b"one")).await }),
            tokio::spawn(async move { b2.send_event(&i2, "go", Bytes::from_static(b"two")).await }),
        );
        r1.unwrap().unwrap();
        r2.unwrap().unwrap();
        let s = b.load_snapshot(&id).await.unwrap();
        let used = s.get_task_result_bytes(&tid("sig")).unwrap();
        let left = b.consume_event(&id, "go").await.unwrap().unwrap();
        assert_ne!(
            used, left,
            "round {round}: one resumed, the other was buffered"
        );
        assert!(b.consume_event(&id, "go").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn concurrent_consumers_never_share_an_event() {
    let (_db, b) = backend().await;
    for i in 0..200u32 {
        b.send_event("wf", "go", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    let mut handles = Vec::new();
    for _ in 0..8 {
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            // Bounded: at most 200 events exist; empty reads stop the loop.
            for _ in 0..400 {
                match b.consume_event("wf", "go").await.unwrap() {
                    Some(p) => got.push(String::from_utf8(p.to_vec()).unwrap()),
                    None => break,
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    // A consumer may stop early on a momentarily skipped head; drain the rest.
    while let Some(p) = b.consume_event("wf", "go").await.unwrap() {
        all.push(String::from_utf8(p.to_vec()).unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no event handed out twice");
    assert_eq!(all.len(), 200, "no event lost");
}
