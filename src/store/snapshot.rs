//! `SnapshotStore`: save, load, delete and list workflow snapshots.
//!
//! Round trips per call (pooled connection, prepared statements cached):
//!
//! | method | statements | round trips | transaction |
//! |---|---|---|---|
//! | `save_snapshot` | 1 (CTE: workflow, outputs, history, queue, notify, the claim it ends) | 1 | implicit |
//! | `save_task_result` | BEGIN, `SELECT … FOR NO KEY UPDATE`, write, COMMIT | 4 | yes |
//! | `load_snapshot` | 1 (blob + member outputs, one consistent read) | 1 | no |
//! | `delete_snapshot` | BEGIN, delete workflow (cascades), delete events, COMMIT | 4 | yes |
//! | `list_snapshots` | 1 | 1 | no |
//!
//! After a failure, `save_snapshot` and `save_task_result` may try again
//! (at most twice, each once more the counts above, plus one read back
//! when the commit is in doubt): see `store::retry`.
//!
//! **A save ends the claim it finishes.** When the snapshot records the
//! output of the task a worker of this backend holds the claim on, the
//! save deletes that claim in its own statement (and wakes a worker for
//! the next task itself), so the `release_task_claim` the runtime sends
//! next is answered from memory: one write commit per step fewer. Not
//! when the save parks the workflow at a signal: the runtime may still
//! apply a buffered event under the claim before it releases (see
//! [`claim_to_end`]).

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_persistence::{BackendError, SnapshotStore};

use crate::backend::DieselBackend;
use crate::dispatch::HeldClaims;
use crate::error::Error;
use crate::input::check_lookup_id;
use crate::kinds::Status;
use crate::models::task_outputs;
use crate::models::workflows::{self, Write, check_snapshot_text};
use crate::persist::Persist;
use crate::schema::sayiir::events;
use crate::snapshots::member_outputs;
use crate::telemetry::{Op, Step, reported, reported_if_transient, store_call};

use super::retry::{Next, Under, fence, fenced};

impl<C> SnapshotStore for DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// Encodes before touching the database; the argument comes back with
    /// its outputs in place.
    #[tracing::instrument(level = "debug", skip_all, fields(instance_id = %snapshot.instance_id))]
    async fn save_snapshot(&self, snapshot: &mut WorkflowSnapshot) -> Result<(), BackendError> {
        let _timer = store_call(Op::SaveSnapshot);
        let instance_id = Arc::clone(&snapshot.instance_id);
        let saved = async {
            check_snapshot_text(snapshot)?;
            let outputs = member_outputs(snapshot);
            snapshot.strip_task_outputs();
            let blob = crate::codec::encode(&self.inner.codec, snapshot);
            snapshot.hydrate_task_outputs(outputs.iter().cloned());
            let blob = blob?;
            let ending = claim_to_end(&self.inner.held, snapshot, &outputs);
            let ends_claim = ending
                .as_ref()
                .map(|(task, worker)| (*task, worker.as_str()));
            let write = Write {
                ends_claim,
                ..self.write_options(&blob, &outputs, Persist::Notify)
            };
            let under = self.under(&snapshot.instance_id);
            let mut tries = 0;
            loop {
                let snapshot = &*snapshot;
                let written = async {
                    let mut conn = self.conn().await?;
                    match fenced(tries, under.as_ref()) {
                        None => workflows::write(&mut conn, snapshot, write).await,
                        Some(under) => {
                            conn.transaction(async |conn| {
                                fence(conn, &snapshot.instance_id, under, false).await?;
                                workflows::write(conn, snapshot, write).await
                            })
                            .await
                        }
                    }
                }
                .await;
                let error = match written {
                    Ok(outcome) => {
                        if outcome.claim_ended {
                            self.note_ended(&snapshot.instance_id, ending.as_ref());
                        }
                        break;
                    }
                    Err(error) => error,
                };
                tries += 1;
                let blob = &blob;
                let landed = move || async move {
                    let mut conn = self.conn().await?;
                    workflows::holds(&mut conn, &snapshot.instance_id, blob).await
                };
                let step = Step::instance(&snapshot.instance_id);
                match self
                    .after_failure(
                        Op::SaveSnapshot,
                        step,
                        tries,
                        &error,
                        under.as_ref(),
                        landed,
                    )
                    .await
                {
                    Next::Again => {}
                    Next::Done => {
                        // The statement landed whole: the claim it named,
                        // if still this worker's, went with it.
                        self.note_ended(&snapshot.instance_id, ending.as_ref());
                        break;
                    }
                    Next::GiveUp => return Err(error),
                }
            }
            snapshot.output_unflushed = false;
            Ok(())
        }
        .await;
        let step = Step::instance(&instance_id);
        reported(Op::SaveSnapshot, step, saved)
    }

    /// Locks the row, applies `mark_task_completed` when InProgress and
    /// writes only that output. Concurrent calls for different tasks
    /// serialize on the row lock, so none is lost.
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id))]
    async fn save_task_result(
        &self,
        instance_id: &str,
        task_id: &TaskId,
        output: bytes::Bytes,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::SaveTaskResult);
        let step = Step {
            task: Some(*task_id),
            ..Step::instance(instance_id)
        };
        let saved = async {
            check_lookup_id(instance_id)?;
            let under = self.under(instance_id);
            let mut tries = 0;
            loop {
                let Err(error) = self
                    .record_output(
                        instance_id,
                        *task_id,
                        &output,
                        fenced(tries, under.as_ref()),
                    )
                    .await
                else {
                    return Ok(());
                };
                tries += 1;
                let output = &output;
                let landed = move || async move {
                    let mut conn = self.conn().await?;
                    let stored = task_outputs::find(&mut conn, instance_id, *task_id).await?;
                    Ok(stored.as_deref() == Some(&output[..]))
                };
                match self
                    .after_failure(
                        Op::SaveTaskResult,
                        step,
                        tries,
                        &error,
                        under.as_ref(),
                        landed,
                    )
                    .await
                {
                    Next::Again => {}
                    Next::Done => return Ok(()),
                    Next::GiveUp => return Err(error),
                }
            }
        }
        .await;
        reported(Op::SaveTaskResult, step, saved)
    }

    /// One statement; `NotFound` only when the row is absent.
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn load_snapshot(&self, instance_id: &str) -> Result<WorkflowSnapshot, BackendError> {
        let _timer = store_call(Op::LoadSnapshot);
        let loaded = async {
            check_lookup_id(instance_id)?;
            let mut conn = self.conn().await?;
            let stored = workflows::load(&mut conn, instance_id)
                .await?
                .ok_or_else(|| Error::NotFound(instance_id.to_owned()))?;
            stored.into_snapshot(&self.inner.codec)
        }
        .await;
        reported_if_transient(Op::LoadSnapshot, Step::instance(instance_id), loaded)
    }

    /// Removes the workflow and every row that belongs to it (cascade) plus
    /// its buffered events; changes nothing when absent.
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn delete_snapshot(&self, instance_id: &str) -> Result<(), BackendError> {
        let _timer = store_call(Op::DeleteSnapshot);
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            workflows::delete(conn, instance_id).await?;
            diesel::delete(events::table.filter(events::instance_id.eq(instance_id)))
                .execute(conn)
                .await?;
            Ok::<_, Error>(())
        })
        .await?;
        Ok(())
    }

    /// Every instance id, unordered, unpaged.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_snapshots(&self) -> Result<Vec<String>, BackendError> {
        let _timer = store_call(Op::ListSnapshots);
        let mut conn = self.conn().await?;
        Ok(workflows::ids(&mut conn).await?)
    }
}

/// The claim a save of `snapshot` (with `outputs`) finishes: the claim
/// this backend granted on the instance, when the save records its task's
/// output. `None` when the save parks at a signal, because the runtime
/// then looks for a buffered event and applies it with one more save
/// before it releases, and the claim is what keeps maintenance from
/// delivering that event at the same time.
fn claim_to_end(
    held: &HeldClaims,
    snapshot: &WorkflowSnapshot,
    outputs: &[(TaskId, bytes::Bytes)],
) -> Option<(TaskId, String)> {
    if snapshot.awaited_signal_name().is_some() {
        return None;
    }
    let (task, worker) = held.holder(&snapshot.instance_id)?;
    outputs
        .iter()
        .any(|(id, _)| *id == task)
        .then_some((task, worker))
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// Remembers that a save ended `ending`, the claim it named.
    fn note_ended(&self, instance_id: &str, ending: Option<&(TaskId, String)>) {
        if let Some((task, worker)) = ending {
            self.inner.held.ended(instance_id, *task, worker);
        }
    }

    /// `save_task_result`'s transaction: locks the row, applies
    /// `mark_task_completed` when InProgress and writes only that output.
    /// A retry is `fenced` by the claim it was made under (`store::retry`).
    async fn record_output(
        &self,
        instance_id: &str,
        task_id: TaskId,
        output: &bytes::Bytes,
        fenced: Option<&Under>,
    ) -> Result<(), Error> {
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let Some(locked) = workflows::lock(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            if let Some(under) = fenced {
                fence(conn, instance_id, under, true).await?;
            }
            if locked.status != Status::InProgress {
                return Ok(());
            }
            let mut snapshot = locked.decode(&self.inner.codec)?;
            snapshot.mark_task_completed(task_id, output.clone());
            let outputs = [(task_id, output.clone())];
            self.persist(conn, &mut snapshot, &outputs, Persist::Quiet)
                .await
                .map(drop)
        })
        .await
    }
}
