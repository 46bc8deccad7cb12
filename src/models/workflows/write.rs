//! The one statement every snapshot write goes through.
//!
//! [`write`] derives every column from the snapshot itself, so the
//! workflow row, the dispatch queue row (`sayiir.tasks`), the outputs, the
//! history entry and the wakeup can never disagree. It is a single
//! statement (data-modifying CTEs), hence atomic and **one round trip**:
//!
//! 1. upsert `workflows`, refused when the stored row is terminal (the
//!    terminal guard) or Paused and the write is not `unpause`'s; nothing
//!    below runs when it is refused;
//! 2. upsert the given outputs into `task_outputs` (unchanged bytes are not
//!    rewritten);
//! 3. append to `history` (when history is kept);
//! 4. upsert or delete the instance's `tasks` row;
//! 5. `pg_notify` when the result is dispatchable (delivered at commit); the
//!    hint is also kept on the queue row for claim releases and recovery;
//! 6. delete the claim the write finishes, when the caller names one
//!    ([`Write::ends_claim`]): the worker's release then writes nothing.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::snapshot::{WorkflowSnapshot, WorkflowSnapshotState};

use super::queue_row::{queue_row, wakeup_payload};
use crate::error::Result;
use crate::input::{check_key, check_text};
use crate::kinds::QueuedPosition;
use crate::queries::Raw;

/// Upserts the workflow with its outputs, history entry, queue row and
/// wakeup: one statement (data-modifying CTEs).
pub(crate) const WRITE: &str = include_str!("write.sql");

/// What a write changes besides the blob.
#[derive(Clone, Copy)]
pub(crate) struct Write<'a> {
    /// The framed blob of `snapshot` with outputs stripped.
    pub blob: &'a [u8],
    /// Outputs to upsert (a `save_snapshot` sends every member's).
    pub outputs: &'a [(TaskId, bytes::Bytes)],
    /// Send a wakeup when the result is dispatchable.
    pub may_notify: bool,
    /// Append to `sayiir.history`.
    pub keep_history: bool,
    /// Allow Paused → InProgress (only `unpause` does).
    pub leave_paused: bool,
    /// The claim (task, worker) this write finishes: `save_snapshot`
    /// names it when the snapshot records the claimed task's output.
    pub ends_claim: Option<(TaskId, &'a str)>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wrote {
    /// `false` when the guard refused it: nothing was written.
    pub written: bool,
    /// The claim named by [`Write::ends_claim`] was deleted.
    pub claim_ended: bool,
}

#[derive(diesel::QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    written: i64,
    /// Wakeups the statement issued (counted as sent; delivered at commit).
    #[diesel(sql_type = BigInt)]
    notified: i64,
    /// Claims it ended (0 or 1).
    #[diesel(sql_type = BigInt)]
    ended: i64,
}

/// Checks every text the write stores for NUL bytes before any write.
pub(crate) fn check_snapshot_text(snapshot: &WorkflowSnapshot) -> Result<()> {
    crate::input::check_id("instance id", &snapshot.instance_id)?;
    if let Some(tp) = &snapshot.trace_parent {
        check_text("trace_parent", tp)?;
    }
    for tag in &snapshot.task_tags {
        check_text("task tag", tag)?;
    }
    if let Some(name) = snapshot.awaited_signal_name() {
        check_key("signal name", name)?;
    }
    if let Some(err) = snapshot.error_message() {
        check_text("error message", err)?;
    }
    for retry in snapshot.task_retries.values() {
        if let Some(worker) = &retry.last_failed_worker {
            check_key("worker id", worker)?;
        }
    }
    Ok(())
}

fn timestamp(secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Every value the write statement binds, named, in the order its
/// placeholders first appear in `write.sql` ($1 … $33).
#[derive(Debug, PartialEq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one field per placeholder of the statement"
)]
pub(crate) struct WriteParams<'a> {
    instance_id: &'a str,
    definition_hash: &'a [u8],
    status: &'a str,
    position_kind: Option<&'a str>,
    current_task_id: Option<Vec<u8>>,
    blob: &'a [u8],
    members: Vec<Vec<u8>>,
    trace_parent: Option<&'a str>,
    error: Option<&'a str>,
    finished: bool,
    /// Completed or Failed: keep the stored membership, add these outputs.
    freeze: bool,
    leave_paused: bool,
    /// The claim the write ends: its task and worker.
    end_task: Option<Vec<u8>>,
    end_worker: Option<&'a str>,
    output_ids: Vec<Vec<u8>>,
    output_values: Vec<&'a [u8]>,
    keep_history: bool,
    /// The instance belongs in the dispatch queue (the fields below fill
    /// its row).
    queued: bool,
    queue_kind: Option<QueuedPosition>,
    queue_task_id: Option<Vec<u8>>,
    park_id: Option<Vec<u8>>,
    signal_name: Option<String>,
    wake_at: Option<DateTime<Utc>>,
    completed: bool,
    input_ready: bool,
    priority: i16,
    tags: Vec<String>,
    retry_at: Option<DateTime<Utc>>,
    failed_worker: Option<String>,
    aged_from: DateTime<Utc>,
    /// Kept on the queue row for releases and recovery.
    hint: Option<String>,
    input_from: Option<Vec<u8>>,
    /// Sent now (`may_notify` and dispatchable).
    notify: Option<String>,
}

fn id_bytes(id: TaskId) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// Derives every column of the write from the snapshot and the options:
/// the workflow row, its outputs, the history entry, the queue row and the
/// wakeup can never disagree.
pub(crate) fn write_params<'a>(
    snapshot: &'a WorkflowSnapshot,
    write: Write<'a>,
) -> WriteParams<'a> {
    // Completed and Failed drop `completed_tasks`: keep the last live
    // membership, plus whatever outputs the finishing write itself carries.
    let freeze = matches!(
        snapshot.state,
        WorkflowSnapshotState::Completed { .. } | WorkflowSnapshotState::Failed { .. }
    );
    let output_ids: Vec<Vec<u8>> = write.outputs.iter().map(|(id, _)| id_bytes(*id)).collect();
    let members = if freeze {
        output_ids.clone()
    } else {
        snapshot
            .get_all_task_results()
            .map(|m| m.keys().map(|k| id_bytes(*k)).collect())
            .unwrap_or_default()
    };
    let queue = queue_row(snapshot);
    let hint = wakeup_payload(snapshot, queue.as_ref());
    let notify = if write.may_notify { hint.clone() } else { None };
    let q = queue.as_ref();
    WriteParams {
        instance_id: snapshot.instance_id.as_ref(),
        definition_hash: snapshot.definition_hash.as_bytes().as_slice(),
        status: snapshot.state.as_ref(),
        position_kind: snapshot.position_kind(),
        current_task_id: snapshot.current_task_id().map(id_bytes),
        blob: write.blob,
        members,
        trace_parent: snapshot.trace_parent.as_deref(),
        error: snapshot.error_message(),
        finished: snapshot.state.is_terminal(),
        freeze,
        leave_paused: write.leave_paused,
        end_task: write.ends_claim.map(|(task, _)| id_bytes(task)),
        end_worker: write.ends_claim.map(|(_, worker)| worker),
        output_ids,
        output_values: write.outputs.iter().map(|(_, o)| o.as_ref()).collect(),
        keep_history: write.keep_history,
        queued: q.is_some(),
        queue_kind: q.map(|q| q.kind),
        queue_task_id: q.and_then(|q| q.task_id).map(id_bytes),
        park_id: q.and_then(|q| q.park_id).map(id_bytes),
        signal_name: q.and_then(|q| q.signal_name.clone()),
        wake_at: q.and_then(|q| q.wake_at),
        completed: q.is_some_and(|q| q.completed),
        input_ready: crate::snapshots::task_input(snapshot).is_some(),
        priority: i16::from(snapshot.current_task_priority()),
        tags: snapshot.task_tags.clone(),
        retry_at: q.and_then(|q| q.retry_at),
        failed_worker: q.and_then(|q| q.failed_worker.clone()),
        aged_from: timestamp(snapshot.updated_at),
        hint,
        input_from: snapshot.last_completed_task_id().map(id_bytes),
        notify,
    }
}

impl<'a> WriteParams<'a> {
    /// The statement with every value bound, in placeholder order.
    fn statement(self) -> Raw<'a> {
        Raw::new(WRITE)
            .bind::<Text, _>(self.instance_id)
            .bind::<Bytea, _>(self.definition_hash)
            .bind::<Text, _>(self.status)
            .bind::<Nullable<Text>, _>(self.position_kind)
            .bind::<Nullable<Bytea>, _>(self.current_task_id)
            .bind::<Bytea, _>(self.blob)
            .bind::<Array<Bytea>, _>(self.members)
            .bind::<Nullable<Text>, _>(self.trace_parent)
            .bind::<Nullable<Text>, _>(self.error)
            .bind::<Bool, _>(self.finished)
            .bind::<Bool, _>(self.freeze)
            .bind::<Bool, _>(self.leave_paused)
            .bind::<Nullable<Bytea>, _>(self.end_task)
            .bind::<Nullable<Text>, _>(self.end_worker)
            .bind::<Array<Bytea>, _>(self.output_ids)
            .bind::<Array<Bytea>, _>(self.output_values)
            .bind::<Bool, _>(self.keep_history)
            .bind::<Bool, _>(self.queued)
            .bind::<Nullable<Text>, _>(self.queue_kind)
            .bind::<Nullable<Bytea>, _>(self.queue_task_id)
            .bind::<Nullable<Bytea>, _>(self.park_id)
            .bind::<Nullable<Text>, _>(self.signal_name)
            .bind::<Nullable<Timestamptz>, _>(self.wake_at)
            .bind::<Bool, _>(self.completed)
            .bind::<Bool, _>(self.input_ready)
            .bind::<SmallInt, _>(self.priority)
            .bind::<Array<Text>, _>(self.tags)
            .bind::<Nullable<Timestamptz>, _>(self.retry_at)
            .bind::<Nullable<Text>, _>(self.failed_worker)
            .bind::<Timestamptz, _>(self.aged_from)
            .bind::<Nullable<Text>, _>(self.hint)
            .bind::<Nullable<Bytea>, _>(self.input_from)
            .bind::<Nullable<Text>, _>(self.notify)
    }
}

/// Runs the write. [`Wrote::written`] is `false` when the guard refused it
/// (the stored row is Completed, Failed or Cancelled, or Paused and the
/// write would make it InProgress without `leave_paused`): then nothing was
/// written.
pub(crate) async fn write(
    conn: &mut AsyncPgConnection,
    snapshot: &WorkflowSnapshot,
    write: Write<'_>,
) -> Result<Wrote> {
    let row: Counts = write_params(snapshot, write)
        .statement()
        .get_result(conn)
        .await?;
    crate::telemetry::wakeups_sent(row.notified);
    Ok(Wrote {
        written: row.written > 0,
        claim_ended: row.ended > 0,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sayiir_core::DefinitionHash;
    use sayiir_core::snapshot::ExecutionPosition;

    use super::*;

    fn opts(outputs: &[(TaskId, Bytes)], may_notify: bool) -> Write<'_> {
        Write {
            blob: b"blob",
            outputs,
            may_notify,
            keep_history: true,
            leave_paused: false,
            ends_claim: None,
        }
    }

    fn at_task(task: &str) -> WorkflowSnapshot {
        let mut s = WorkflowSnapshot::with_initial_input(
            "wf",
            DefinitionHash::sha256("def"),
            Bytes::from_static(b"in"),
        );
        s.update_position(ExecutionPosition::AtTask {
            task_id: TaskId::from(task),
        });
        s
    }

    #[test]
    fn a_runnable_task_is_queued_and_announced() {
        let s = at_task("a");
        let p = write_params(&s, opts(&[], true));
        assert!(p.queued && p.input_ready && !p.completed && !p.finished);
        assert_eq!(p.queue_kind, Some(QueuedPosition::AtTask));
        assert_eq!(p.queue_task_id, Some(id_bytes(TaskId::from("a"))));
        assert_eq!(p.priority, 3);
        assert!(p.hint.is_some());
        assert_eq!(p.notify, p.hint);
        // The same state saved quietly keeps the hint but sends nothing.
        let quiet = write_params(&s, opts(&[], false));
        assert!(quiet.hint.is_some() && quiet.notify.is_none());
    }

    #[test]
    fn a_recorded_output_is_queued_as_done_and_not_announced() {
        let mut s = at_task("a");
        let out = Bytes::from_static(b"out");
        s.mark_task_completed(TaskId::from("a"), out.clone());
        let outputs = [(TaskId::from("a"), out)];
        let p = write_params(&s, opts(&outputs, true));
        assert!(p.queued && p.completed);
        assert_eq!(p.hint, None);
        assert_eq!(p.notify, None);
        assert_eq!(p.output_ids, vec![id_bytes(TaskId::from("a"))]);
        assert_eq!(p.output_values, vec![b"out".as_slice()]);
        assert_eq!(p.members, p.output_ids);
    }

    #[test]
    fn a_park_is_queued_with_its_wake_time_and_next_task() {
        let mut s = at_task("a");
        let wake = DateTime::from_timestamp(2_000_000_000, 0).unwrap();
        s.update_position(ExecutionPosition::AtDelay {
            delay_id: TaskId::from("d"),
            entered_at: wake,
            wake_at: wake,
            next_task_id: Some(TaskId::from("b")),
        });
        let p = write_params(&s, opts(&[], true));
        assert_eq!(p.queue_kind, Some(QueuedPosition::AtDelay));
        assert_eq!(p.wake_at, Some(wake));
        assert_eq!(p.park_id, Some(id_bytes(TaskId::from("d"))));
        assert_eq!(p.queue_task_id, Some(id_bytes(TaskId::from("b"))));
        assert_eq!(p.notify, None);
    }

    #[test]
    fn a_finished_workflow_leaves_the_queue_and_freezes_its_members() {
        let mut s = at_task("a");
        s.mark_task_completed(TaskId::from("a"), Bytes::from_static(b"out"));
        s.mark_completed(Bytes::from_static(b"final"));
        let p = write_params(&s, opts(&[], true));
        assert!(p.finished && p.freeze && !p.queued);
        assert_eq!(p.queue_kind, None);
        assert!(p.members.is_empty(), "only the finishing write's outputs");
        assert_eq!(p.notify, None);
    }

    #[test]
    fn placeholders_appear_in_text_order_and_all_are_bound() {
        use diesel::query_builder::{QueryBuilder, QueryFragment};
        let mut first_seen: Vec<usize> = Vec::new();
        for piece in WRITE.split('$').skip(1) {
            let n: usize = piece
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
            if !first_seen.contains(&n) {
                first_seen.push(n);
            }
        }
        assert_eq!(first_seen, (1..=33).collect::<Vec<_>>());
        // Rendering fails when the values bound and the placeholders differ.
        let s = at_task("a");
        let mut qb = diesel::pg::PgQueryBuilder::new();
        write_params(&s, opts(&[], true))
            .statement()
            .to_sql(&mut qb, &diesel::pg::Pg)
            .unwrap();
        assert!(!qb.finish().is_empty());
    }
}
