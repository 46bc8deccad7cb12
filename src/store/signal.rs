//! `SignalStore`: cancel and pause requests, their application at task
//! boundaries, unpause, and external events.
//!
//! **Lock order** (every multi-row operation here, and everywhere else in
//! the crate): the workflow row first (`FOR NO KEY UPDATE`, in a statement
//! of its own), then signal rows, then event rows, then output, history and
//! queue rows. `store_signal`, `check_and_*` (slow path), `unpause` and
//! `send_event` all start by locking the workflow row, so a second request
//! landing while a worker applies the first waits instead of deadlocking.
//! `get_signal`, `clear_signal` and `consume_event` are single statements.
//!
//! | call | round trips | transaction |
//! |---|---|---|
//! | `check_and_cancel` / `check_and_pause`, nothing pending (fast path) | 1 `SELECT` | no |
//! | `check_and_cancel` / `check_and_pause`, signal pending | 7: probe, BEGIN, lock, re-read signal, write, delete signal, COMMIT | yes |
//! | `store_signal` | 4: BEGIN, lock, upsert, COMMIT | yes |
//! | `get_signal`, `clear_signal`, `consume_event` | 1 | no |
//! | `unpause` | 5: BEGIN, lock, write, read back hydrated, COMMIT | yes |
//! | `send_event`, `consume_event` | see [`super::event`] | |

use bytes::Bytes;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::{
    ExecutionPosition, PauseRequest, SignalKind, SignalRequest, WorkflowSnapshot,
    WorkflowSnapshotState,
};
use sayiir_persistence::{BackendError, SignalStore};

use super::snapshot::lock_workflow;
use super::write::{Write, write_snapshot};
use crate::DieselBackend;
use crate::error::{Error, Result, check_id, check_lookup_id, check_text};
use crate::kinds::Status;
use crate::queries::{LOAD_SNAPSHOT, Raw};
use crate::schema::sayiir::signals;
use crate::telemetry::{Op, store_call};

/// A stored signal row's request fields.
type SignalFields = (Option<String>, Option<String>, DateTime<Utc>);

pub(super) fn to_request((reason, requested_by, requested_at): SignalFields) -> SignalRequest {
    SignalRequest {
        reason,
        requested_by,
        requested_at,
    }
}

pub(super) async fn read_signal(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    kind: SignalKind,
) -> Result<Option<SignalFields>> {
    Ok(signals::table
        .find((instance_id, kind.as_ref()))
        .select((
            signals::reason,
            signals::requested_by,
            signals::requested_at,
        ))
        .first(conn)
        .await
        .optional()?)
}

pub(super) async fn delete_signal(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    kind: SignalKind,
) -> Result<()> {
    diesel::delete(signals::table.find((instance_id, kind.as_ref())))
        .execute(conn)
        .await?;
    Ok(())
}

/// What `store_signal` does for a stored status (SPEC 3.1).
enum Admission {
    Store,
    AlreadyThere,
    Refuse(Error),
}

fn admit(status: Status, kind: SignalKind) -> Admission {
    use Status::{Cancelled, Completed, Failed, Paused};
    match (kind, status) {
        (SignalKind::Cancel, Cancelled) | (SignalKind::Pause, Paused) => Admission::AlreadyThere,
        (SignalKind::Cancel, Completed | Failed) => Admission::Refuse(Error::CannotCancel {
            status: status.to_string(),
        }),
        (SignalKind::Pause, Completed | Failed | Cancelled) => {
            Admission::Refuse(Error::CannotPause {
                status: status.to_string(),
            })
        }
        _ => Admission::Store,
    }
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    async fn put_signal(
        &self,
        instance_id: &str,
        kind: SignalKind,
        request: SignalRequest,
    ) -> Result<()> {
        check_id("instance id", instance_id)?;
        for text in [&request.reason, &request.requested_by]
            .into_iter()
            .flatten()
        {
            check_text("signal request", text)?;
        }
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let Some((status, _, _)) = lock_workflow(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            match admit(status, kind) {
                Admission::AlreadyThere => return Ok(()),
                Admission::Refuse(err) => return Err(err),
                Admission::Store => {}
            }
            diesel::insert_into(signals::table)
                .values((
                    signals::instance_id.eq(instance_id),
                    signals::kind.eq(kind.as_ref()),
                    signals::reason.eq(&request.reason),
                    signals::requested_by.eq(&request.requested_by),
                    signals::requested_at.eq(request.requested_at),
                ))
                .on_conflict((signals::instance_id, signals::kind))
                .do_update()
                .set((
                    signals::reason.eq(&request.reason),
                    signals::requested_by.eq(&request.requested_by),
                    signals::requested_at.eq(request.requested_at),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }

    async fn fetch_signal(
        &self,
        instance_id: &str,
        kind: SignalKind,
    ) -> Result<Option<SignalRequest>> {
        check_id("instance id", instance_id)?;
        let mut conn = self.conn().await?;
        Ok(read_signal(&mut conn, instance_id, kind)
            .await?
            .map(to_request))
    }

    async fn drop_signal(&self, instance_id: &str, kind: SignalKind) -> Result<()> {
        check_id("instance id", instance_id)?;
        let mut conn = self.conn().await?;
        delete_signal(&mut conn, instance_id, kind).await
    }

    /// Applies a pending signal of `kind` at a task boundary: one `SELECT`
    /// when nothing is pending; otherwise one transaction that locks the
    /// workflow, re-reads the signal under the lock, transitions and clears it.
    async fn apply_signal(
        &self,
        instance_id: &str,
        kind: SignalKind,
        interrupted_at_task: Option<TaskId>,
    ) -> Result<bool> {
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        if read_signal(&mut conn, instance_id, kind).await?.is_none() {
            return Ok(false);
        }
        conn.transaction(async |conn| {
            let Some((status, blob, trace_parent)) = lock_workflow(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            let Some(fields) = read_signal(conn, instance_id, kind).await? else {
                return Ok(false);
            };
            if status != Status::InProgress {
                return Ok(false);
            }
            let mut snapshot = crate::codec::decode(&self.inner.codec, &blob)?;
            snapshot.trace_parent = trace_parent;
            if !applies_here(&snapshot, kind) {
                return Ok(false);
            }
            apply_request(&mut snapshot, kind, to_request(fields), interrupted_at_task);
            let blob = self.encode_stripped(&mut snapshot)?;
            write_snapshot(conn, &snapshot, self.write_opts(blob, &[], false)).await?;
            delete_signal(conn, instance_id, kind).await?;
            Ok(true)
        })
        .await
    }

    async fn resume_paused(&self, instance_id: &str) -> Result<WorkflowSnapshot> {
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let Some((_, blob, trace_parent)) = lock_workflow(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            let mut snapshot = crate::codec::decode(&self.inner.codec, &blob)?;
            snapshot.trace_parent = trace_parent;
            if !snapshot.state.is_paused() {
                return Err(Error::NotPaused {
                    status: snapshot.state.as_ref().to_owned(),
                });
            }
            snapshot.mark_unpaused();
            let blob = self.encode_stripped(&mut snapshot)?;
            let write = Write {
                leave_paused: true,
                ..self.write_opts(blob, &[], true)
            };
            write_snapshot(conn, &snapshot, write).await?;
            let stored: crate::store::StoredSnapshot = Raw::new(LOAD_SNAPSHOT)
                .bind::<diesel::sql_types::Text, _>(instance_id)
                .get_result(conn)
                .await?;
            stored.into_snapshot(&self.inner.codec)
        })
        .await
    }
}

/// Whether a request of `kind` may apply to the stored state now. A pause
/// waits while the recorded position is a task whose output is already
/// saved: the workflow is between its worker's commit and that worker's
/// next save (the move past the task, or Completed), and a pause there would
/// leave a state nothing moves on after unpause. The worker's next save
/// either reaches a boundary where the pause applies or finishes the
/// workflow, which makes the pause moot as for any finished workflow.
pub(super) fn applies_here(snapshot: &WorkflowSnapshot, kind: SignalKind) -> bool {
    let WorkflowSnapshotState::InProgress {
        position: ExecutionPosition::AtTask { task_id },
        completed_tasks,
        ..
    } = &snapshot.state
    else {
        return true;
    };
    !(kind == SignalKind::Pause && completed_tasks.contains_key(task_id))
}

/// The state change a cancel or pause request makes at a task boundary.
pub(super) fn apply_request(
    snapshot: &mut WorkflowSnapshot,
    kind: SignalKind,
    request: SignalRequest,
    interrupted_at_task: Option<TaskId>,
) {
    match kind {
        SignalKind::Cancel => {
            snapshot.mark_cancelled(request.reason, request.requested_by, interrupted_at_task);
        }
        SignalKind::Pause => snapshot.mark_paused(&PauseRequest::from(request)),
    }
}

impl<C> SignalStore for DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, kind = kind.as_ref()))]
    async fn store_signal(
        &self,
        instance_id: &str,
        kind: SignalKind,
        request: SignalRequest,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::StoreSignal);
        self.put_signal(instance_id, kind, request)
            .await
            .map_err(BackendError::from)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, kind = kind.as_ref()))]
    async fn get_signal(
        &self,
        instance_id: &str,
        kind: SignalKind,
    ) -> Result<Option<SignalRequest>, BackendError> {
        let _timer = store_call(Op::GetSignal);
        Ok(self.fetch_signal(instance_id, kind).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, kind = kind.as_ref()))]
    async fn clear_signal(&self, instance_id: &str, kind: SignalKind) -> Result<(), BackendError> {
        let _timer = store_call(Op::ClearSignal);
        Ok(self.drop_signal(instance_id, kind).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %signal_name))]
    async fn send_event(
        &self,
        instance_id: &str,
        signal_name: &str,
        payload: Bytes,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::SendEvent);
        Ok(self
            .deliver_event(instance_id, signal_name, payload)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %signal_name))]
    async fn consume_event(
        &self,
        instance_id: &str,
        signal_name: &str,
    ) -> Result<Option<Bytes>, BackendError> {
        let _timer = store_call(Op::ConsumeEvent);
        Ok(self.take_event(instance_id, signal_name).await?)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(%instance_id, task_id = interrupted_at_task.map(tracing::field::display))
    )]
    async fn check_and_cancel(
        &self,
        instance_id: &str,
        interrupted_at_task: Option<TaskId>,
    ) -> Result<bool, BackendError> {
        let _timer = store_call(Op::CheckAndCancel);
        Ok(self
            .apply_signal(instance_id, SignalKind::Cancel, interrupted_at_task)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn check_and_pause(&self, instance_id: &str) -> Result<bool, BackendError> {
        let _timer = store_call(Op::CheckAndPause);
        Ok(self
            .apply_signal(instance_id, SignalKind::Pause, None)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn unpause(&self, instance_id: &str) -> Result<WorkflowSnapshot, BackendError> {
        let _timer = store_call(Op::Unpause);
        Ok(self.resume_paused(instance_id).await?)
    }
}
