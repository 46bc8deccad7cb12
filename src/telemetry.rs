//! Metrics through the [`metrics`] facade: the names (stable, all prefixed
//! `sayiir_diesel_`), their descriptions, and the small helpers the stores
//! emit through. Nothing is recorded unless the application installs a
//! recorder (an exporter for Prometheus, `StatsD`, `OpenTelemetry`, …); without
//! one every emit is a no-op.
//!
//! Labels are static strings from a fixed set (never an instance, worker or
//! task id), so the number of series stays flat whatever the workload, and
//! an emit allocates nothing. Metrics are process-wide: several backends in
//! one process add to the same counters, and their gauges overwrite each
//! other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};

mod evidence;

pub use evidence::EVIDENCE_TARGET;
pub(crate) use evidence::{
    Step, claim_ended, reported, reported_if_transient, retried, taken_over,
};

/// Histogram, label `op` (the store trait method): seconds one store call
/// took, from entry to return (a call whose future was dropped counts up to
/// the drop). `wait_for_wakeup` measures the wait itself.
pub const STORE_CALL_SECONDS: &str = "sayiir_diesel_store_call_seconds";
/// Histogram: seconds spent waiting for a pooled connection (timeouts
/// included).
pub const POOL_WAIT_SECONDS: &str = "sayiir_diesel_pool_wait_seconds";
/// Gauge: connections the pool holds, sampled at each checkout.
pub const POOL_SIZE: &str = "sayiir_diesel_pool_size";
/// Gauge: idle connections in the pool, sampled right after each checkout.
pub const POOL_AVAILABLE: &str = "sayiir_diesel_pool_available";
/// Gauge: the pool's maximum size, sampled at each checkout.
pub const POOL_MAX_SIZE: &str = "sayiir_diesel_pool_max_size";
/// Gauge: tasks a finder could hand out now (at a task, input ready, no
/// live claim, no back-off, no pending request, not quarantined), counted
/// up to [`QUEUE_DEPTH_CAP`]; sampled by each maintenance pass.
pub const QUEUE_DEPTH: &str = "sayiir_diesel_queue_depth";
/// Gauge: how long the oldest of those tasks has waited, in seconds since
/// its workflow's last update (0 when none); sampled with [`QUEUE_DEPTH`].
pub const QUEUE_OLDEST_AGE_SECONDS: &str = "sayiir_diesel_queue_oldest_age_seconds";
/// Counter: claims taken (including takeovers of expired claims).
pub const CLAIMS_TAKEN: &str = "sayiir_diesel_claims_taken_total";
/// Counter: claims taken that replaced another worker's expired claim.
pub const CLAIMS_TAKEN_OVER: &str = "sayiir_diesel_claims_taken_over_total";
/// Counter, label `reason`: claims refused. `claimed`: another live claim
/// holds the instance; `not_runnable`: the workflow is not at that task, its
/// output is recorded, the copy is stale or the workflow is not
/// InProgress; `not_found`: no such workflow.
pub const CLAIMS_REFUSED: &str = "sayiir_diesel_claims_refused_total";
/// Counter: workflows recovered after a crash between an output save and
/// the next state save (also in [`crate::Metrics::recovered`]).
pub const RECOVERIES: &str = "sayiir_diesel_recoveries_total";
/// Counter: queue rows set aside because their snapshot cannot be decoded
/// (also in [`crate::Metrics::quarantined`]).
pub const QUARANTINED: &str = "sayiir_diesel_quarantined_total";
/// Counter: rows maintenance moved on (due delays, events, signal
/// timeouts, pending requests applied, recoveries; also in
/// [`crate::Metrics::advanced`]).
pub const MAINTENANCE_ADVANCED: &str = "sayiir_diesel_maintenance_advanced_total";
/// Counter: maintenance passes run (each samples the queue gauges).
pub const MAINTENANCE_PASSES: &str = "sayiir_diesel_maintenance_passes_total";
/// Counter: transient failures the finders retried (also in
/// [`crate::Metrics::retries`]).
pub const TRANSIENT_RETRIES: &str = "sayiir_diesel_transient_retries_total";
/// Counter: wakeup notifications issued by our statements (saves, claim
/// releases, maintenance writes; delivered at commit).
pub const WAKEUPS_SENT: &str = "sayiir_diesel_wakeups_sent_total";
/// Counter: notifications the listener handed to the waiters' queue.
pub const WAKEUPS_DELIVERED: &str = "sayiir_diesel_wakeups_delivered_total";
/// Counter: notifications dropped because the waiters' queue was full.
pub const WAKEUPS_DROPPED: &str = "sayiir_diesel_wakeups_dropped_total";
/// Counter: times the wakeup listener reconnected.
pub const LISTENER_RECONNECTS: &str = "sayiir_diesel_listener_reconnects_total";

/// [`QUEUE_DEPTH`] counts at most this many rows, so that sampling a large
/// backlog stays cheap: at this value the queue holds at least as many.
pub const QUEUE_DEPTH_CAP: i64 = 10_000;

/// Registers the description and unit of every metric with the installed
/// recorder (exporters show them, e.g. as Prometheus `# HELP`). Building a
/// backend calls it; call it again if you install the recorder later.
pub fn describe() {
    describe_histogram!(
        STORE_CALL_SECONDS,
        Unit::Seconds,
        "Latency of one store call, by trait method (op)"
    );
    describe_histogram!(
        POOL_WAIT_SECONDS,
        Unit::Seconds,
        "Time spent waiting for a pooled connection"
    );
    describe_gauge!(POOL_SIZE, Unit::Count, "Connections the pool holds");
    describe_gauge!(POOL_AVAILABLE, Unit::Count, "Idle connections in the pool");
    describe_gauge!(POOL_MAX_SIZE, Unit::Count, "Maximum size of the pool");
    describe_gauge!(
        QUEUE_DEPTH,
        Unit::Count,
        "Tasks a worker could claim now (capped at 10000)"
    );
    describe_gauge!(
        QUEUE_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "How long the oldest claimable task has waited"
    );
    describe_counter!(CLAIMS_TAKEN, Unit::Count, "Claims taken");
    describe_counter!(
        CLAIMS_TAKEN_OVER,
        Unit::Count,
        "Claims taken that replaced an expired claim"
    );
    describe_counter!(CLAIMS_REFUSED, Unit::Count, "Claims refused, by reason");
    describe_counter!(RECOVERIES, Unit::Count, "Workflows recovered after a crash");
    describe_counter!(
        QUARANTINED,
        Unit::Count,
        "Queue rows set aside as undecodable"
    );
    describe_counter!(
        MAINTENANCE_ADVANCED,
        Unit::Count,
        "Rows maintenance moved on"
    );
    describe_counter!(MAINTENANCE_PASSES, Unit::Count, "Maintenance passes run");
    describe_counter!(
        TRANSIENT_RETRIES,
        Unit::Count,
        "Transient failures the finders retried"
    );
    describe_counter!(WAKEUPS_SENT, Unit::Count, "Wakeup notifications issued");
    describe_counter!(
        WAKEUPS_DELIVERED,
        Unit::Count,
        "Wakeup notifications handed to waiters"
    );
    describe_counter!(
        WAKEUPS_DROPPED,
        Unit::Count,
        "Wakeup notifications dropped (queue full)"
    );
    describe_counter!(
        LISTENER_RECONNECTS,
        Unit::Count,
        "Wakeup listener reconnects"
    );
}

/// Declares [`Op`], one variant per store trait method, with its label.
macro_rules! ops {
    ($($variant:ident => $name:literal,)*) => {
        /// A store trait method: the `op` label of [`STORE_CALL_SECONDS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Op {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl Op {
            /// The label value: the trait method's name.
            pub(crate) const fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name,)*
                }
            }

            /// Every operation.
            #[cfg(test)]
            pub(crate) const ALL: &[Op] = &[$(Op::$variant,)*];

            /// The histogram of this operation (a static key: no allocation).
            fn histogram(self) -> metrics::Histogram {
                match self {
                    $(Op::$variant => metrics::histogram!(STORE_CALL_SECONDS, "op" => $name),)*
                }
            }
        }
    };
}

ops! {
    SaveSnapshot => "save_snapshot",
    SaveTaskResult => "save_task_result",
    LoadSnapshot => "load_snapshot",
    DeleteSnapshot => "delete_snapshot",
    ListSnapshots => "list_snapshots",
    StoreSignal => "store_signal",
    GetSignal => "get_signal",
    ClearSignal => "clear_signal",
    SendEvent => "send_event",
    ConsumeEvent => "consume_event",
    CheckAndCancel => "check_and_cancel",
    CheckAndPause => "check_and_pause",
    Unpause => "unpause",
    ClaimTask => "claim_task",
    ReleaseTaskClaim => "release_task_claim",
    ExtendTaskClaim => "extend_task_claim",
    FindAvailableTasks => "find_available_tasks",
    WaitForWakeup => "wait_for_wakeup",
    FindHintedTask => "find_hinted_task",
    LoadTaskResult => "load_task_result",
}

/// Records the time since its creation in [`STORE_CALL_SECONDS`] when
/// dropped (at the end of the store call, or when its future is dropped).
pub(crate) struct CallTimer {
    op: Op,
    started: Instant,
}

/// Starts timing one store call.
pub(crate) fn store_call(op: Op) -> CallTimer {
    CallTimer {
        op,
        started: Instant::now(),
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.op.histogram().record(self.started.elapsed());
    }
}

/// Records one pool checkout: its wait, and the pool's size and idle
/// connections right after it.
pub(crate) fn pool_checkout(waited: Duration, status: deadpool::Status) {
    metrics::histogram!(POOL_WAIT_SECONDS).record(waited);
    gauge!(POOL_SIZE).set(count(status.size));
    gauge!(POOL_AVAILABLE).set(count(status.available));
    gauge!(POOL_MAX_SIZE).set(count(status.max_size));
}

/// Records one sample of the dispatch queue.
pub(crate) fn queue_sample(depth: i64, oldest_age_secs: f64) {
    #[allow(clippy::cast_precision_loss)] // at most QUEUE_DEPTH_CAP
    gauge!(QUEUE_DEPTH).set(depth as f64);
    gauge!(QUEUE_OLDEST_AGE_SECONDS).set(oldest_age_secs);
}

/// Counts a maintenance pass that ran to its end.
pub(crate) fn maintenance_pass() {
    counter!(MAINTENANCE_PASSES).increment(1);
}

#[allow(clippy::cast_precision_loss)] // pool sizes are small
fn count(n: usize) -> f64 {
    n as f64
}

/// Why a claim was refused: the `reason` label of [`CLAIMS_REFUSED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Another live claim holds the instance.
    Claimed,
    /// The workflow is not at that task (or its output is recorded, the
    /// copy is stale, it is not InProgress).
    NotRunnable,
    /// No such workflow.
    NotFound,
}

/// Counts a claim taken; `took_over` when it replaced an expired claim.
pub(crate) fn claim_taken(took_over: bool) {
    counter!(CLAIMS_TAKEN).increment(1);
    if took_over {
        counter!(CLAIMS_TAKEN_OVER).increment(1);
    }
}

/// Counts a refused claim.
pub(crate) fn claim_refused(why: Refusal) {
    match why {
        Refusal::Claimed => counter!(CLAIMS_REFUSED, "reason" => "claimed").increment(1),
        Refusal::NotRunnable => {
            counter!(CLAIMS_REFUSED, "reason" => "not_runnable").increment(1);
        }
        Refusal::NotFound => counter!(CLAIMS_REFUSED, "reason" => "not_found").increment(1),
    }
}

/// Counts wakeup notifications a statement issued.
pub(crate) fn wakeups_sent(n: i64) {
    if let Ok(n @ 1..) = u64::try_from(n) {
        counter!(WAKEUPS_SENT).increment(n);
    }
}

/// Counters the backend keeps for [`crate::DieselBackend::metrics`]; each
/// one is also emitted as a metric.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub quarantined: AtomicU64,
    pub recovered: AtomicU64,
    pub advanced: AtomicU64,
    pub retries: AtomicU64,
}

impl Counters {
    /// A row set aside as undecodable.
    pub(crate) fn count_quarantined(&self) {
        bump(&self.quarantined, QUARANTINED);
    }

    /// A crashed workflow recovered.
    pub(crate) fn count_recovered(&self) {
        bump(&self.recovered, RECOVERIES);
    }

    /// A row maintenance moved on.
    pub(crate) fn count_advanced(&self) {
        bump(&self.advanced, MAINTENANCE_ADVANCED);
    }

    /// A transient failure a finder retried.
    pub(crate) fn count_retry(&self) {
        bump(&self.retries, TRANSIENT_RETRIES);
    }
}

/// Adds one to a counter the backend keeps and to its metric.
fn bump(kept: &AtomicU64, metric: &'static str) {
    kept.fetch_add(1, Ordering::Relaxed);
    counter!(metric).increment(1);
}

/// Counters of the wakeup listener, shared with [`crate::Metrics`]; each one
/// is also emitted as a metric.
#[derive(Debug, Default)]
pub(crate) struct WakeupCounters {
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub reconnects: AtomicU64,
}

impl WakeupCounters {
    /// A notification handed to the waiters' queue.
    pub(crate) fn count_delivered(&self) {
        bump(&self.delivered, WAKEUPS_DELIVERED);
    }

    /// A notification dropped (queue full).
    pub(crate) fn count_dropped(&self) {
        bump(&self.dropped, WAKEUPS_DROPPED);
    }

    /// The listener reconnected.
    pub(crate) fn count_reconnect(&self) {
        bump(&self.reconnects, LISTENER_RECONNECTS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_prefixed_and_every_op_label_is_distinct() {
        for name in [
            STORE_CALL_SECONDS,
            POOL_WAIT_SECONDS,
            POOL_SIZE,
            POOL_AVAILABLE,
            POOL_MAX_SIZE,
            QUEUE_DEPTH,
            QUEUE_OLDEST_AGE_SECONDS,
            CLAIMS_TAKEN,
            CLAIMS_TAKEN_OVER,
            CLAIMS_REFUSED,
            RECOVERIES,
            QUARANTINED,
            MAINTENANCE_ADVANCED,
            MAINTENANCE_PASSES,
            TRANSIENT_RETRIES,
            WAKEUPS_SENT,
            WAKEUPS_DELIVERED,
            WAKEUPS_DROPPED,
            LISTENER_RECONNECTS,
        ] {
            assert!(name.starts_with("sayiir_diesel_"), "{name}");
        }
        let mut names: Vec<&str> = Op::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(names.len(), 20, "one per trait method");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 20);
    }
}
