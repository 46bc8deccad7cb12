//! The benchmark workflows and the in-process probe their steps report to.
//!
//! A workflow's input is `index * STRIDE`; every step adds one, so any
//! step can tell which workflow it runs for (`x / STRIDE`) whatever input
//! it receives (PooledWorker hands a fork branch the previous branch's
//! output, see SPEC 6.1).

use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use sayiir_core::context::WorkflowContext;
use sayiir_core::error::BoxError;
use sayiir_core::task::BranchOutputs;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_runtime::serialization::JsonCodec;
use tokio::sync::Notify;

use crate::Error;
use crate::args::Workload;

pub type Wf = Workflow<JsonCodec, u64>;

/// Input spacing between workflows: more than the steps of any workflow.
pub const STRIDE: u64 = 16;
/// Counter slots per workflow (tasks of the largest workflow).
const SLOTS: usize = 5;

/// Per-run counters: executions per (workflow, task), submit and finish
/// times per workflow, and a notification when every workflow finished.
pub struct Probe {
    n: usize,
    t0: Instant,
    runs: Vec<AtomicU32>,
    /// Nanoseconds after `t0`, plus one (0 = not yet).
    submitted: Vec<AtomicU64>,
    finished: Vec<AtomicU64>,
    done: AtomicUsize,
    all_done: Notify,
    /// Executions whose input named no workflow of this run.
    stray: AtomicU64,
}

impl Probe {
    pub fn new(n: usize) -> Arc<Probe> {
        Arc::new(Probe {
            n,
            t0: Instant::now(),
            runs: (0..n * SLOTS).map(|_| AtomicU32::new(0)).collect(),
            submitted: (0..n).map(|_| AtomicU64::new(0)).collect(),
            finished: (0..n).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicUsize::new(0),
            all_done: Notify::new(),
            stray: AtomicU64::new(0),
        })
    }

    fn index(&self, x: u64) -> Option<usize> {
        usize::try_from(x / STRIDE).ok().filter(|i| *i < self.n)
    }

    fn stamp(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Counts one execution of task `slot` for the workflow of input `x`.
    pub fn hit(&self, x: u64, slot: usize) {
        match self.index(x).and_then(|i| self.runs.get(i * SLOTS + slot)) {
            Some(c) => {
                c.fetch_add(1, Relaxed);
            }
            None => {
                self.stray.fetch_add(1, Relaxed);
            }
        }
    }

    /// The workflow of input `x` ran its last step (first time counts).
    pub fn finish(&self, x: u64) {
        let Some(slot) = self.index(x).and_then(|i| self.finished.get(i)) else {
            return;
        };
        if slot
            .compare_exchange(0, self.stamp(), Relaxed, Relaxed)
            .is_ok()
            && self.done.fetch_add(1, Relaxed) + 1 == self.n
        {
            self.all_done.notify_one();
        }
    }

    pub fn submitting(&self, i: usize) {
        if let Some(s) = self.submitted.get(i) {
            s.store(self.stamp(), Relaxed);
        }
    }

    pub fn finished_count(&self) -> usize {
        self.done.load(Relaxed)
    }

    /// Waits until every workflow ran its last step.
    pub async fn wait_all(&self) {
        while self.finished_count() < self.n {
            let notified = self.all_done.notified();
            if self.finished_count() >= self.n {
                return;
            }
            // Notify::notify_one stores a permit, so this cannot miss it;
            // the timeout only bounds the re-check.
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    /// (executions, distinct (workflow, task) pairs executed, executions
    /// outside the run's workflows).
    pub fn executions(&self) -> (u64, u64, u64) {
        let mut total = 0;
        let mut distinct = 0;
        for c in &self.runs {
            let n = u64::from(c.load(Relaxed));
            total += n;
            distinct += u64::from(n > 0);
        }
        (total, distinct, self.stray.load(Relaxed))
    }

    /// Submit → last step latencies of the finished workflows, sorted.
    pub fn latencies(&self) -> Vec<Duration> {
        let mut out: Vec<Duration> = self
            .submitted
            .iter()
            .zip(&self.finished)
            .filter_map(|(s, f)| {
                let (s, f) = (s.load(Relaxed), f.load(Relaxed));
                (s > 0 && f > 0).then(|| Duration::from_nanos(f.saturating_sub(s)))
            })
            .collect();
        out.sort_unstable();
        out
    }
}

/// A step: counts itself, records the finish when `last`, adds one.
fn step(
    p: &Arc<Probe>,
    slot: usize,
    last: bool,
) -> impl Fn(u64) -> Ready<Result<u64, BoxError>> + Send + Sync + 'static {
    let p = Arc::clone(p);
    move |x| {
        p.hit(x, slot);
        if last {
            p.finish(x);
        }
        ready(Ok(x + 1))
    }
}

fn built<T>(r: Result<T, impl std::fmt::Debug>) -> Result<T, Error> {
    r.map_err(|e| format!("workflow definition: {e:?}").into())
}

/// The measured workflow of `workload` (giants measure the linear one).
pub fn measured(workload: Workload, p: &Arc<Probe>) -> Result<Wf, Error> {
    match workload {
        Workload::Linear | Workload::Giants | Workload::Idle => linear(p),
        Workload::Fanout => fanout(p),
        Workload::Signal => signal(p),
    }
}

/// s1 → s2 → s3 → s4.
fn linear(p: &Arc<Probe>) -> Result<Wf, Error> {
    let ctx = WorkflowContext::new("bench-linear", Arc::new(JsonCodec), Arc::new(()));
    built(
        WorkflowBuilder::new(ctx)
            .then("s1", step(p, 0, false))
            .then("s2", step(p, 1, false))
            .then("s3", step(p, 2, false))
            .then("s4", step(p, 3, true))
            .build(),
    )
}

/// fork(b1, b2, b3, b4) → join.
fn fanout(p: &Arc<Probe>) -> Result<Wf, Error> {
    let ctx = WorkflowContext::new("bench-fanout", Arc::new(JsonCodec), Arc::new(()));
    let q = Arc::clone(p);
    built(
        WorkflowBuilder::new(ctx)
            .fork()
            .branch("b1", step(p, 0, false))
            .branch("b2", step(p, 1, false))
            .branch("b3", step(p, 2, false))
            .branch("b4", step(p, 3, false))
            .join("join", move |o: BranchOutputs<JsonCodec>| {
                let r = o.get_by_id::<u64>("b4").map(|x| {
                    q.hit(x, 4);
                    q.finish(x);
                    x + 1
                });
                ready(r)
            })
            .build(),
    )
}

/// Name of the event the signal workload waits for.
pub const EVENT: &str = "go";

/// s1 → wait for event `go` (its payload is s2's input) → s2.
fn signal(p: &Arc<Probe>) -> Result<Wf, Error> {
    let ctx = WorkflowContext::new("bench-signal", Arc::new(JsonCodec), Arc::new(()));
    built(
        WorkflowBuilder::new(ctx)
            .then("s1", step(p, 0, false))
            .wait_for_signal("wait", EVENT, None)
            .then("s2", step(p, 1, true))
            .build(),
    )
}

/// How long giants stay parked: far beyond any run.
pub const GIANT_NAP: Duration = Duration::from_secs(3600);

/// g1 → delay 1 h → g2 (g2 never runs during a bench).
pub fn giant(p: &Arc<Probe>) -> Result<Wf, Error> {
    let ctx = WorkflowContext::new("bench-giant", Arc::new(JsonCodec), Arc::new(()));
    built(
        WorkflowBuilder::new(ctx)
            .then("g1", step(p, 0, true))
            .delay("nap", GIANT_NAP)
            .then("g2", step(p, 1, false))
            .build(),
    )
}

/// d0 → nap (a delay of `nap`) → d1: the `--scale` dispatch workflow
/// (a leading step because `WorkflowClient::submit` of a workflow that
/// starts with a delay leaves it at the delay node as if it were a task).
/// Its definition hash depends on `nap`, so every process builds it with
/// the same value.
pub fn delayed(p: &Arc<Probe>, nap: Duration) -> Result<Wf, Error> {
    let ctx = WorkflowContext::new("bench-delayed", Arc::new(JsonCodec), Arc::new(()));
    built(
        WorkflowBuilder::new(ctx)
            .then("d0", step(p, 0, false))
            .delay("nap", nap)
            .then("d1", step(p, 1, true))
            .build(),
    )
}

/// The input of workflow `i` (see the module docs).
pub fn input(i: usize) -> u64 {
    u64::try_from(i).unwrap_or(u64::MAX / STRIDE) * STRIDE
}
