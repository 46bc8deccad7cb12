//! External events: a FIFO queue per (instance, signal name) in
//! `sayiir.events`, and the auto-resume of a workflow parked at that signal.
//!
//! | call | round trips | transaction |
//! |---|---|---|
//! | `send_event`, buffered | 4: BEGIN, lock, insert event, COMMIT | yes |
//! | `send_event`, resuming a parked workflow | 5–6: BEGIN, lock, pop oldest event (+ append the new one if there was one), write, COMMIT | yes |
//! | `consume_event` | 1 | no |
//!
//! Events have no foreign key: they may arrive before the instance exists
//! or after it finished; `delete_snapshot` removes them with the instance.

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot, WorkflowSnapshotState};

use super::maintenance::live_claim;
use super::snapshot::lock_workflow;
use super::write::write_snapshot;
use crate::DieselBackend;
use crate::error::{Result, check_id, check_key};
use crate::kinds::Status;
use crate::queries::{POP_EVENT, Raw};
use crate::schema::sayiir::events;

/// Removes and returns the oldest buffered event for (instance, name).
/// Concurrent consumers skip a head another one has locked, so no event is
/// handed out twice.
pub(crate) async fn pop_event(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    signal_name: &str,
) -> Result<Option<Vec<u8>>> {
    #[derive(diesel::QueryableByName)]
    struct Popped {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        payload: Vec<u8>,
    }
    let popped: Option<Popped> = Raw::new(POP_EVENT)
        .bind::<diesel::sql_types::Text, _>(instance_id)
        .bind::<diesel::sql_types::Text, _>(signal_name)
        .get_result(conn)
        .await
        .optional()?;
    Ok(popped.map(|p| p.payload))
}

async fn push_event(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    signal_name: &str,
    payload: &[u8],
) -> Result<()> {
    diesel::insert_into(events::table)
        .values((
            events::instance_id.eq(instance_id),
            events::signal_name.eq(signal_name),
            events::payload.eq(payload),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// `send_event`: resumes a workflow parked at this signal name (oldest
    /// buffered event first), otherwise buffers the event.
    pub(super) async fn deliver_event(
        &self,
        instance_id: &str,
        signal_name: &str,
        payload: Bytes,
    ) -> Result<()> {
        check_id("instance id", instance_id)?;
        check_key("signal name", signal_name)?;
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let parked = match lock_workflow(conn, instance_id).await? {
                Some((Status::InProgress, blob, trace_parent)) => {
                    let mut snapshot = crate::codec::decode(&self.inner.codec, &blob)?;
                    snapshot.trace_parent = trace_parent;
                    let waiting = matches!(
                        &snapshot.state,
                        WorkflowSnapshotState::InProgress {
                            position: ExecutionPosition::AtSignal { signal_name: n, .. },
                            ..
                        } if n == signal_name
                    );
                    waiting.then_some(snapshot)
                }
                _ => None,
            };
            // A worker holding the claim works from its own copy (it drains
            // buffered events itself before it releases), so resuming here
            // would race its next save: buffer instead. Maintenance resumes
            // a park whose event is buffered once no claim holds it.
            let parked = match parked {
                Some(snapshot) if !live_claim(conn, instance_id).await? => Some(snapshot),
                _ => None,
            };
            let Some(mut snapshot) = parked else {
                return push_event(conn, instance_id, signal_name, &payload).await;
            };
            // FIFO: an older buffered event resumes first; the new one queues.
            let payload = match pop_event(conn, instance_id, signal_name).await? {
                Some(oldest) => {
                    push_event(conn, instance_id, signal_name, &payload).await?;
                    Bytes::from(oldest)
                }
                None => payload,
            };
            let outputs = resume_at_signal(&mut snapshot, payload);
            let blob = self.encode_stripped(&mut snapshot)?;
            write_snapshot(conn, &snapshot, self.write_opts(blob, &outputs, true)).await?;
            Ok(())
        })
        .await
    }

    pub(super) async fn take_event(
        &self,
        instance_id: &str,
        signal_name: &str,
    ) -> Result<Option<Bytes>> {
        check_id("instance id", instance_id)?;
        check_key("signal name", signal_name)?;
        let mut conn = self.conn().await?;
        Ok(pop_event(&mut conn, instance_id, signal_name)
            .await?
            .map(Bytes::from))
    }
}

/// Resumes a snapshot parked at `AtSignal` with `payload`: records it under
/// the signal node's id, then moves to the next task or completes with the
/// payload as final output. Returns the outputs the write must persist.
pub(crate) fn resume_at_signal(
    snapshot: &mut WorkflowSnapshot,
    payload: Bytes,
) -> Vec<(TaskId, Bytes)> {
    let WorkflowSnapshotState::InProgress {
        position:
            ExecutionPosition::AtSignal {
                signal_id,
                next_task_id,
                ..
            },
        ..
    } = &snapshot.state
    else {
        return Vec::new();
    };
    let (signal_id, next) = (*signal_id, *next_task_id);
    snapshot.mark_task_completed(signal_id, payload.clone());
    match next {
        Some(task_id) => snapshot.update_position(ExecutionPosition::AtTask { task_id }),
        None => snapshot.mark_completed(payload.clone()),
    }
    vec![(signal_id, payload)]
}
