//! `SignalStore`: cancel and pause requests, their application at task
//! boundaries, unpause, and external events with the auto-resume of a
//! workflow parked at their signal.
//!
//! **Lock order** (every multi-row operation here, and everywhere else in
//! the crate): the workflow row first (`FOR NO KEY UPDATE`, in a statement
//! of its own), then signal rows, then event rows, then output, history and
//! queue rows. `store_signal`, `check_and_*` (slow path), `unpause` and
//! `send_event` all start by locking the workflow row, so a second request
//! landing while a worker applies the first waits instead of deadlocking.
//!
//! | call | round trips | transaction |
//! |---|---|---|
//! | `check_and_cancel` / `check_and_pause`, nothing pending (fast path) | 1 `SELECT` | no |
//! | `check_and_cancel` / `check_and_pause`, signal pending | 7: probe, BEGIN, lock, re-read signal, write, delete signal, COMMIT | yes |
//! | `store_signal` | 4: BEGIN, lock, upsert, COMMIT | yes |
//! | `get_signal`, `clear_signal`, `consume_event` | 1 | no |
//! | `unpause` | 5: BEGIN, lock, write, read back hydrated, COMMIT | yes |
//! | `send_event`, buffered (not parked at this name) | 4: BEGIN, lock, insert event, COMMIT | yes |
//! | `send_event`, parked at this name but claimed | 5: BEGIN, lock, live-claim probe, insert event, COMMIT | yes |
//! | `send_event`, resuming a parked workflow | 6–7: BEGIN, lock, live-claim probe, pop oldest event (+ append the new one if there was one), write, COMMIT | yes |
//!
//! Events have no foreign key: they may arrive before the instance exists
//! or after it finished; `delete_snapshot` removes them with the instance.

use bytes::Bytes;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::{
    ExecutionPosition, SignalKind, SignalRequest, WorkflowSnapshot, WorkflowSnapshotState,
};
use sayiir_persistence::{BackendError, SignalStore};

use crate::backend::DieselBackend;
use crate::error::{Error, Result};
use crate::input::{check_id, check_key, check_lookup_id, check_text};
use crate::kinds::Status;
use crate::models::events::{self, NewEvent};
use crate::models::signals::{self, NewSignal};
use crate::models::{claims, workflows};
use crate::persist::Persist;
use crate::snapshots::{Admission, admit, applies_here, apply_request, resume_at_signal};
use crate::telemetry::{Op, Step, reported_if_transient, store_call};

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
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
        if signals::find(&mut conn, instance_id, kind).await?.is_none() {
            return Ok(false);
        }
        conn.transaction(async |conn| {
            let Some(locked) = workflows::lock(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            let Some(signal) = signals::find(conn, instance_id, kind).await? else {
                return Ok(false);
            };
            if locked.status != Status::InProgress {
                return Ok(false);
            }
            let mut snapshot = locked.decode(&self.inner.codec)?;
            if !applies_here(&snapshot, kind) {
                return Ok(false);
            }
            apply_request(
                &mut snapshot,
                kind,
                signal.into_request(),
                interrupted_at_task,
            );
            self.persist(conn, &mut snapshot, &[], Persist::Quiet)
                .await?;
            signals::delete(conn, instance_id, kind).await?;
            Ok(true)
        })
        .await
    }

    /// The parked snapshot `send_event` may resume: InProgress at a wait
    /// for this name, and no worker holding it. A worker holding the claim
    /// works from its own copy (it drains buffered events itself before it
    /// releases), so resuming here would race its next save: the event is
    /// buffered instead, and maintenance resumes the park once no claim
    /// holds it.
    async fn resumable_park(
        &self,
        conn: &mut AsyncPgConnection,
        instance_id: &str,
        signal_name: &str,
    ) -> Result<Option<WorkflowSnapshot>> {
        let Some(locked) = workflows::lock(conn, instance_id).await? else {
            return Ok(None);
        };
        if locked.status != Status::InProgress {
            return Ok(None);
        }
        let snapshot = locked.decode(&self.inner.codec)?;
        let waiting = matches!(
            &snapshot.state,
            WorkflowSnapshotState::InProgress {
                position: ExecutionPosition::AtSignal { signal_name: n, .. },
                ..
            } if n == signal_name
        );
        if !waiting || claims::is_live(conn, instance_id).await? {
            return Ok(None);
        }
        Ok(Some(snapshot))
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
        check_id("instance id", instance_id)?;
        for text in [&request.reason, &request.requested_by]
            .into_iter()
            .flatten()
        {
            check_text("signal request", text)?;
        }
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let Some(locked) = workflows::lock(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            match admit(locked.status, kind) {
                Admission::AlreadyThere => Ok(()),
                Admission::Refuse(err) => Err(err),
                Admission::Store => {
                    NewSignal::new(instance_id, kind, &request)
                        .upsert(conn)
                        .await
                }
            }
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, kind = kind.as_ref()))]
    async fn get_signal(
        &self,
        instance_id: &str,
        kind: SignalKind,
    ) -> Result<Option<SignalRequest>, BackendError> {
        let _timer = store_call(Op::GetSignal);
        check_id("instance id", instance_id)?;
        let mut conn = self.conn().await?;
        Ok(signals::find(&mut conn, instance_id, kind)
            .await?
            .map(signals::Signal::into_request))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, kind = kind.as_ref()))]
    async fn clear_signal(&self, instance_id: &str, kind: SignalKind) -> Result<(), BackendError> {
        let _timer = store_call(Op::ClearSignal);
        check_id("instance id", instance_id)?;
        let mut conn = self.conn().await?;
        Ok(signals::delete(&mut conn, instance_id, kind).await?)
    }

    /// Resumes a workflow parked at this signal name (oldest buffered event
    /// first), otherwise buffers the event.
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %signal_name))]
    async fn send_event(
        &self,
        instance_id: &str,
        signal_name: &str,
        payload: Bytes,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::SendEvent);
        check_id("instance id", instance_id)?;
        check_key("signal name", signal_name)?;
        let event = NewEvent {
            instance_id,
            signal_name,
            payload: &payload,
        };
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let Some(mut snapshot) = self.resumable_park(conn, instance_id, signal_name).await?
            else {
                return event.push(conn).await;
            };
            // FIFO: an older buffered event resumes first; the new one queues.
            let resume_with = match events::pop_oldest(conn, instance_id, signal_name).await? {
                Some(oldest) => {
                    event.push(conn).await?;
                    Bytes::from(oldest)
                }
                None => payload.clone(),
            };
            let outputs = resume_at_signal(&mut snapshot, resume_with);
            self.persist(conn, &mut snapshot, &outputs, Persist::Notify)
                .await
                .map(drop)
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %signal_name))]
    async fn consume_event(
        &self,
        instance_id: &str,
        signal_name: &str,
    ) -> Result<Option<Bytes>, BackendError> {
        let _timer = store_call(Op::ConsumeEvent);
        let consumed = async {
            check_id("instance id", instance_id)?;
            check_key("signal name", signal_name)?;
            let mut conn = self.conn().await?;
            Ok(events::pop_oldest(&mut conn, instance_id, signal_name)
                .await?
                .map(Bytes::from))
        }
        .await;
        reported_if_transient(Op::ConsumeEvent, Step::instance(instance_id), consumed)
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
        let applied = self
            .apply_signal(instance_id, SignalKind::Cancel, interrupted_at_task)
            .await;
        reported_if_transient(Op::CheckAndCancel, Step::instance(instance_id), applied)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn check_and_pause(&self, instance_id: &str) -> Result<bool, BackendError> {
        let _timer = store_call(Op::CheckAndPause);
        let applied = self
            .apply_signal(instance_id, SignalKind::Pause, None)
            .await;
        reported_if_transient(Op::CheckAndPause, Step::instance(instance_id), applied)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn unpause(&self, instance_id: &str) -> Result<WorkflowSnapshot, BackendError> {
        let _timer = store_call(Op::Unpause);
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        let snapshot = conn
            .transaction(async |conn| {
                let Some(locked) = workflows::lock(conn, instance_id).await? else {
                    return Err(Error::NotFound(instance_id.to_owned()));
                };
                if locked.status != Status::Paused {
                    return Err(Error::NotPaused {
                        status: locked.status,
                    });
                }
                let mut snapshot = locked.decode(&self.inner.codec)?;
                snapshot.mark_unpaused();
                self.persist(conn, &mut snapshot, &[], Persist::Unpause)
                    .await?;
                workflows::load(conn, instance_id)
                    .await?
                    .ok_or_else(|| Error::NotFound(instance_id.to_owned()))?
                    .into_snapshot(&self.inner.codec)
            })
            .await?;
        Ok(snapshot)
    }
}
