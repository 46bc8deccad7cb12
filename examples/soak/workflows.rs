//! The workload: one workflow definition per shape, what each should
//! output, and how many times each step should run.
//!
//! Every input is a `u64` (the runtime's registry takes one input type);
//! a workflow's behaviour follows from its input `n` alone, so the checker
//! can recompute everything. Every task body logs its run (see `tasklog`)
//! right before it returns.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sayiir_core::context::{WorkflowContext, get_task_context};
use sayiir_core::error::BoxError;
use sayiir_core::task::BranchOutputs;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_core::{DefinitionHash, LoopResult, MaxIterationsPolicy, TaskId};
use sayiir_diesel::DieselBackend;
use sayiir_persistence::SnapshotStore;
use sayiir_runtime::serialization::JsonCodec;
use serde::{Deserialize, Serialize};

use crate::tasklog;

pub type Backend = DieselBackend<JsonCodec>;
pub type Wf = Workflow<JsonCodec, u64>;

/// Iterations of the loop shape (always `Again`, exits by its limit).
pub const LOOP_ROUNDS: u32 = 4;
/// The delay shape's durable delay.
pub const DELAY: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    Linear,
    ForkJoin,
    Delay,
    Event,
    Retry,
    Loop,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::Linear,
        Shape::ForkJoin,
        Shape::Delay,
        Shape::Event,
        Shape::Retry,
        Shape::Loop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Linear => "linear",
            Shape::ForkJoin => "forkjoin",
            Shape::Delay => "delay",
            Shape::Event => "event",
            Shape::Retry => "retry",
            Shape::Loop => "loop",
        }
    }

    /// Every step with the number of successful runs it should have in a
    /// fault-free run of a workflow that completes.
    pub fn steps(self) -> &'static [(&'static str, u32)] {
        match self {
            Shape::Linear => &[("s1", 1), ("s2", 1), ("s3", 1), ("s4", 1)],
            Shape::ForkJoin => &[("prep", 1), ("fa", 1), ("fb", 1), ("join", 1)],
            Shape::Delay => &[("d1", 1), ("d2", 1)],
            Shape::Event => &[("e1", 1), ("e2", 1), ("e3", 1)],
            Shape::Retry => &[("r1", 1), ("flaky", 1), ("r3", 1)],
            Shape::Loop => &[("body", LOOP_ROUNDS)],
        }
    }

    pub fn workflow(self) -> Arc<Wf> {
        static ALL: OnceLock<Vec<(Shape, Arc<Wf>)>> = OnceLock::new();
        let all = ALL.get_or_init(|| Shape::ALL.iter().map(|&s| (s, build(s))).collect());
        let (_, wf) = all.iter().find(|(s, _)| *s == self).expect("every shape");
        Arc::clone(wf)
    }
}

/// The registry a worker runs: every shape.
pub fn registry() -> Vec<(DefinitionHash, Arc<Wf>)> {
    Shape::ALL
        .iter()
        .map(|s| {
            let wf = s.workflow();
            (*wf.definition_hash(), wf)
        })
        .collect()
}

/// Payloads of the event shape's two events.
pub fn event_payload(n: u64, name: &str) -> u64 {
    n * 10 + if name == "a" { 1 } else { 2 }
}

pub fn json(x: u64) -> Bytes {
    Bytes::from(serde_json::to_vec(&x).expect("u64 encodes"))
}

/// The output a Completed workflow of `shape` with input `n` must have.
pub fn expected_output(shape: Shape, n: u64) -> Bytes {
    match shape {
        Shape::Linear => json(((n + 1) * 3 + 7) * 2),
        Shape::ForkJoin => json(3 * n + 100),
        Shape::Delay => json((n + 1) * 2),
        Shape::Event => json(event_payload(n, "b") + 1),
        Shape::Retry => json((n + 1) * 2 + 3),
        // The loop envelope: a tag byte, then the value (see the README's
        // runtime limits); checked by its value part.
        Shape::Loop => json(n),
    }
}

/// Whether `output` is right for `shape` and `n`.
pub fn output_ok(shape: Shape, n: u64, output: &[u8]) -> bool {
    let want = expected_output(shape, n);
    match shape {
        Shape::Loop => output.len() == want.len() + 1 && output[1..] == want[..],
        _ => output == &want[..],
    }
}

/// The fork's value: every branch keeps `n` (a branch under `PooledWorker`
/// receives the previous branch's output, under the runner the fork's
/// input: both give the same result).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Pair {
    pub n: u64,
    pub acc: u64,
}

/// The worker process's backend, for the flaky task's attempt count.
pub static BACKEND: OnceLock<Backend> = OnceLock::new();
/// `--corrupt wrong-output` in a worker: `s3` of some linear workflows
/// returns a wrong value.
pub static WRONG_OUTPUT: OnceLock<bool> = OnceLock::new();

/// Logs the start and the run of `task` (instance from the task context)
/// around a short piece of "work".
async fn ran(task: &'static str, attempt: u32, ok: bool, work: Duration) {
    let instance = get_task_context().map_or_else(String::new, |c| c.instance_id.to_string());
    tasklog::start(&instance, task);
    tokio::time::sleep(work).await;
    tasklog::run(&instance, task, attempt, ok);
}

const QUICK: Duration = Duration::from_millis(15);
/// Long enough that faults often land while it runs.
const SLOW: Duration = Duration::from_millis(400);

/// Fails while the workflow's recorded retry count for it is below
/// `n % 3`: the count lives in the stored snapshot, so every process
/// agrees on it.
#[sayiir_runtime::task(id = "flaky", retries = 3, backoff = "200ms", backoff_multiplier = 2.0)]
async fn flaky(x: u64) -> Result<u64, BoxError> {
    let instance = get_task_context().map_or_else(String::new, |c| c.instance_id.to_string());
    let n = instance_input(&instance);
    let backend = BACKEND.get().ok_or("no backend")?;
    let attempts = match backend.load_snapshot(&instance).await {
        Ok(s) => s
            .task_retries
            .get(&TaskId::from("flaky"))
            .map_or(0, |r| r.attempts),
        Err(e) => {
            tasklog::run(&instance, "flaky", u32::MAX, false);
            return Err(format!("cannot read the attempt count: {e}").into());
        }
    };
    let fail = u64::from(attempts) < n % 3;
    ran("flaky", attempts, !fail, QUICK).await;
    if fail {
        return Err(format!("planned failure {attempts}").into());
    }
    Ok(x * 2)
}

/// The input of an instance, which the driver encodes in its id
/// (`<shape>-<n>`).
pub fn instance_input(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn ctx(shape: Shape) -> WorkflowContext<JsonCodec, ()> {
    WorkflowContext::new(
        format!("soak-{}", shape.name()),
        Arc::new(JsonCodec),
        Arc::new(()),
    )
}

fn build(shape: Shape) -> Arc<Wf> {
    let b = WorkflowBuilder::new(ctx(shape));
    let wf = match shape {
        Shape::Linear => b
            .then("s1", |x: u64| async move {
                ran("s1", 0, true, QUICK).await;
                Ok(x + 1)
            })
            .then("s2", |x: u64| async move {
                ran("s2", 0, true, SLOW).await;
                Ok(x * 3)
            })
            .then("s3", |x: u64| async move {
                ran("s3", 0, true, QUICK).await;
                let wrong = WRONG_OUTPUT.get().copied().unwrap_or(false) && x.is_multiple_of(5);
                Ok(x + 7 + u64::from(wrong))
            })
            .then("s4", |x: u64| async move {
                ran("s4", 0, true, QUICK).await;
                Ok(x * 2)
            })
            .build(),
        Shape::ForkJoin => b
            .then("prep", |x: u64| async move {
                ran("prep", 0, true, QUICK).await;
                Ok(Pair { n: x, acc: 0 })
            })
            .fork()
            .branch("fa", |p: Pair| async move {
                ran("fa", 0, true, SLOW).await;
                Ok(Pair {
                    n: p.n,
                    acc: p.n * 2,
                })
            })
            .branch("fb", |p: Pair| async move {
                ran("fb", 0, true, QUICK).await;
                Ok(Pair {
                    n: p.n,
                    acc: p.n + 100,
                })
            })
            .join("join", |o: BranchOutputs<JsonCodec>| async move {
                let a: Pair = o.get_by_id("fa")?;
                let b: Pair = o.get_by_id("fb")?;
                ran("join", 0, true, QUICK).await;
                Ok(a.acc + b.acc)
            })
            .build(),
        Shape::Delay => b
            .then("d1", |x: u64| async move {
                ran("d1", 0, true, QUICK).await;
                Ok(x + 1)
            })
            .delay("nap", DELAY)
            .then("d2", |x: u64| async move {
                ran("d2", 0, true, QUICK).await;
                Ok(x * 2)
            })
            .build(),
        Shape::Event => b
            .then("e1", |x: u64| async move {
                ran("e1", 0, true, QUICK).await;
                Ok(x + 1)
            })
            .wait_for_signal("wait-a", "a", None)
            .then("e2", |a: u64| async move {
                ran("e2", 0, true, QUICK).await;
                Ok(a + 1)
            })
            .wait_for_signal("wait-b", "b", None)
            .then("e3", |b: u64| async move {
                ran("e3", 0, true, QUICK).await;
                Ok(b + 1)
            })
            .build(),
        Shape::Retry => b
            .then("r1", |x: u64| async move {
                ran("r1", 0, true, QUICK).await;
                Ok(x + 1)
            })
            .then_task::<FlakyTask>()
            .then("r3", |x: u64| async move {
                ran("r3", 0, true, QUICK).await;
                Ok(x + 3)
            })
            .build(),
        Shape::Loop => b
            .loop_task_with_policy(
                "body",
                |x: u64| async move {
                    ran("body", 0, true, QUICK).await;
                    Ok(LoopResult::Again(x))
                },
                LOOP_ROUNDS,
                MaxIterationsPolicy::ExitWithLast,
            )
            .build(),
    };
    Arc::new(wf.expect("the soak's workflows build"))
}
