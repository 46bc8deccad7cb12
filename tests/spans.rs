//! Every store trait method opens a `tracing` span named after it, with the
//! instance and task ids as fields, and nothing the crate records (span
//! fields or events) carries a payload: every payload, output, input and
//! request text of this run contains a marker that must never show up.
//!
//! A capturing subscriber is installed for this whole test binary (one test
//! function).

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use common::*;
use sayiir_core::snapshot::{SignalKind, WorkflowSnapshot};
use sayiir_persistence::{
    SignalStore, SnapshotStore, TaskClaimStore, TaskResultStore, TaskWakeupHint,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const MARK: &str = "SECRET";

type Fields = Vec<(String, String)>;

/// Spans and events of this crate, with their fields as text.
#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<HashMap<u64, (String, Fields)>>,
    events: Mutex<Vec<Fields>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

fn ours(meta: &Metadata<'_>) -> bool {
    meta.target().starts_with("sayiir_diesel")
}

impl Subscriber for &'static Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        if ours(attrs.metadata()) {
            let mut fields = Fields::new();
            attrs.record(&mut Collect(&mut fields));
            self.spans
                .lock()
                .unwrap()
                .insert(id, (attrs.metadata().name().to_owned(), fields));
        }
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some((_, fields)) = self.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if ours(event.metadata()) {
            let mut fields = Fields::new();
            event.record(&mut Collect(&mut fields));
            self.events.lock().unwrap().push(fields);
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn marked(s: &str) -> Bytes {
    Bytes::from(format!("{MARK}-{s}"))
}

fn at(instance: &str) -> WorkflowSnapshot {
    let mut s = WorkflowSnapshot::with_initial_input(instance, def_hash(), marked("input"));
    s.update_position(sayiir_core::snapshot::ExecutionPosition::AtTask { task_id: tid("a") });
    s
}

/// Calls every store trait method, with marked payloads throughout, on
/// `wf` and (for the signals) `p`.
async fn call_every_store_method(b: &Backend) {
    let ttl = Some(chrono::Duration::seconds(30));
    let secret = format!("{MARK}-request");
    let req = || request(&secret, &secret);

    b.save_snapshot(&mut at("wf")).await.unwrap();
    b.find_available_tasks("w", 10, chrono::Duration::seconds(300), &[])
        .await
        .unwrap();
    let hint = TaskWakeupHint {
        instance_id: "wf".to_owned(),
        task_id: *tid("a").as_bytes(),
        definition_hash: *def_hash().as_bytes(),
        tags: Vec::new(),
    };
    b.find_hinted_task(&hint).await.unwrap();
    b.claim_task("wf", &tid("a"), "w", ttl)
        .await
        .unwrap()
        .unwrap();
    b.extend_task_claim("wf", &tid("a"), "w", chrono::Duration::seconds(30))
        .await
        .unwrap();
    b.save_task_result("wf", &tid("a"), marked("output"))
        .await
        .unwrap();
    b.load_task_result("wf", &tid("a")).await.unwrap();
    b.release_task_claim("wf", &tid("a"), "w").await.unwrap();
    b.load_snapshot("wf").await.unwrap();
    b.list_snapshots().await.unwrap();
    b.wait_for_wakeup(std::time::Duration::from_millis(10))
        .await
        .unwrap();
    b.send_event("wf", "approval", marked("event"))
        .await
        .unwrap();
    b.consume_event("wf", "approval").await.unwrap();
    b.save_snapshot(&mut at("p")).await.unwrap();
    b.store_signal("p", SignalKind::Pause, req()).await.unwrap();
    b.get_signal("p", SignalKind::Pause).await.unwrap();
    assert!(b.check_and_pause("p").await.unwrap());
    b.unpause("p").await.unwrap();
    b.store_signal("p", SignalKind::Cancel, req())
        .await
        .unwrap();
    b.clear_signal("p", SignalKind::Pause).await.unwrap();
    assert!(b.check_and_cancel("p", Some(tid("a"))).await.unwrap());
    b.delete_snapshot("wf").await.unwrap();
}

/// Each span the calls open: the method, the instance id it carries (if
/// any) and whether it carries the task id.
const EXPECTED_SPANS: [(&str, Option<&str>, bool); 20] = [
    ("save_snapshot", Some("wf"), false),
    ("save_task_result", Some("wf"), true),
    ("load_snapshot", Some("wf"), false),
    ("delete_snapshot", Some("wf"), false),
    ("list_snapshots", None, false),
    ("store_signal", Some("p"), false),
    ("get_signal", Some("p"), false),
    ("clear_signal", Some("p"), false),
    ("send_event", Some("wf"), false),
    ("consume_event", Some("wf"), false),
    ("check_and_cancel", Some("p"), true),
    ("check_and_pause", Some("p"), false),
    ("unpause", Some("p"), false),
    ("claim_task", Some("wf"), true),
    ("release_task_claim", Some("wf"), true),
    ("extend_task_claim", Some("wf"), true),
    ("find_available_tasks", None, false),
    ("wait_for_wakeup", None, false),
    ("find_hinted_task", Some("wf"), true),
    ("load_task_result", Some("wf"), true),
];

/// The value of field `name`, if recorded.
fn field(fields: &Fields, name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Some span named `method` carries `instance` as `instance_id` (when
/// given) and task `a` as `task_id` (when `has_task`).
fn assert_span_with_ids(
    spans: &HashMap<u64, (String, Fields)>,
    method: &str,
    instance: Option<&str>,
    has_task: bool,
) {
    let task = tid("a").to_string();
    let found: Vec<&Fields> = spans
        .values()
        .filter(|(name, _)| name == method)
        .map(|(_, fields)| fields)
        .collect();
    assert!(!found.is_empty(), "{method}: no span");
    assert!(
        found.iter().any(|f| {
            instance.is_none_or(|i| field(f, "instance_id").as_deref() == Some(i))
                && (!has_task || field(f, "task_id").as_deref() == Some(task.as_str()))
        }),
        "{method}: {found:?}"
    );
}

#[tokio::test]
async fn every_store_call_has_a_span_with_ids_and_no_payload() {
    let capture: &'static Capture = Box::leak(Box::default());
    tracing::subscriber::set_global_default(capture).unwrap();
    let (_db, b) = backend().await;
    call_every_store_method(&b).await;

    let spans = capture.spans.lock().unwrap();
    for (method, instance, has_task) in EXPECTED_SPANS {
        assert_span_with_ids(&spans, method, instance, has_task);
    }
    let events = capture.events.lock().unwrap();
    for fields in spans.values().map(|(_, f)| f).chain(events.iter()) {
        for (name, value) in fields {
            assert!(!value.contains(MARK), "{name} = {value}");
        }
    }
}
