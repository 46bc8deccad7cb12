//! `SnapshotStore`: save, load, delete and list workflow snapshots.
//!
//! Round trips per call (pooled connection, prepared statements cached):
//!
//! | method | statements | round trips | transaction |
//! |---|---|---|---|
//! | `save_snapshot` | 1 (CTE: workflow, outputs, history, queue, notify) | 1 | implicit |
//! | `save_task_result` | BEGIN, `SELECT … FOR NO KEY UPDATE`, write, COMMIT | 4 | yes |
//! | `load_snapshot` | 1 (blob + member outputs, one consistent read) | 1 | no |
//! | `delete_snapshot` | BEGIN, delete workflow (cascades), delete events, COMMIT | 4 | yes |
//! | `list_snapshots` | 1 | 1 | no |

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;
use sayiir_persistence::{BackendError, SnapshotStore};

use super::write::{check_snapshot_text, write_snapshot};
use super::{StoredSnapshot, member_outputs};
use crate::DieselBackend;
use crate::error::{Error, Result, check_lookup_id};
use crate::kinds::Status;
use crate::queries::{LOAD_SNAPSHOT, Raw};
use crate::schema::sayiir::{events, workflows};
use crate::telemetry::{Op, store_call};

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// `save_snapshot`: see the module table. Encodes before touching the
    /// database; the argument comes back with its outputs in place.
    pub(crate) async fn save(&self, snapshot: &mut WorkflowSnapshot) -> Result<()> {
        check_snapshot_text(snapshot)?;
        let outputs = member_outputs(snapshot);
        snapshot.strip_task_outputs();
        let blob = crate::codec::encode(&self.inner.codec, snapshot);
        snapshot.hydrate_task_outputs(outputs.iter().cloned());
        let blob = blob?;
        let mut conn = self.conn().await?;
        write_snapshot(&mut conn, snapshot, self.write_opts(blob, &outputs, true)).await?;
        snapshot.output_unflushed = false;
        Ok(())
    }

    /// `save_task_result`: lock the row, apply `mark_task_completed` when
    /// InProgress, write only that output. Concurrent calls for different
    /// tasks serialize on the row lock, so none is lost.
    pub(crate) async fn record_task_result(
        &self,
        instance_id: &str,
        task_id: TaskId,
        output: bytes::Bytes,
    ) -> Result<()> {
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        let codec = &self.inner.codec;
        conn.transaction(async |conn| {
            let Some((status, blob, trace_parent)) = lock_workflow(conn, instance_id).await? else {
                return Err(Error::NotFound(instance_id.to_owned()));
            };
            if status != Status::InProgress {
                return Ok(());
            }
            let mut snapshot = crate::codec::decode(codec, &blob)?;
            snapshot.trace_parent = trace_parent;
            snapshot.mark_task_completed(task_id, output.clone());
            let blob = self.encode_stripped(&mut snapshot)?;
            let outputs = [(task_id, output)];
            write_snapshot(conn, &snapshot, self.write_opts(blob, &outputs, false))
                .await
                .map(drop)
        })
        .await
    }

    /// `load_snapshot`: one statement; `NotFound` only when the row is absent.
    pub(crate) async fn load(&self, instance_id: &str) -> Result<WorkflowSnapshot> {
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        let stored: Option<StoredSnapshot> = Raw::new(LOAD_SNAPSHOT)
            .bind::<diesel::sql_types::Text, _>(instance_id)
            .get_result(&mut conn)
            .await
            .optional()?;
        stored
            .ok_or_else(|| Error::NotFound(instance_id.to_owned()))?
            .into_snapshot(&self.inner.codec)
    }

    /// `delete_snapshot`: removes the workflow and every row that belongs to
    /// it (cascade) plus its buffered events; changes nothing when absent.
    pub(crate) async fn delete(&self, instance_id: &str) -> Result<()> {
        check_lookup_id(instance_id)?;
        let mut conn = self.conn().await?;
        conn.transaction(async |conn| {
            let deleted = diesel::delete(workflows::table.find(instance_id))
                .execute(conn)
                .await?;
            if deleted == 0 {
                return Err(Error::NotFound(instance_id.to_owned()));
            }
            diesel::delete(events::table.filter(events::instance_id.eq(instance_id)))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// `list_snapshots`: every instance id, unordered, unpaged.
    pub(crate) async fn list(&self) -> Result<Vec<String>> {
        let mut conn = self.conn().await?;
        Ok(workflows::table
            .select(workflows::instance_id)
            .load(&mut conn)
            .await?)
    }
}

/// Locks the workflow row (`FOR NO KEY UPDATE`, so child-table inserts with
/// foreign keys do not block on it) and returns its status, blob and trace
/// parent. A separate statement from any join (SPEC 2.6).
pub(crate) async fn lock_workflow(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
) -> Result<Option<(Status, Vec<u8>, Option<String>)>> {
    Ok(workflows::table
        .find(instance_id)
        .select((
            workflows::status,
            workflows::snapshot,
            workflows::trace_parent,
        ))
        .for_no_key_update()
        .get_result(conn)
        .await
        .optional()?)
}

impl<C> SnapshotStore for DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    #[tracing::instrument(level = "debug", skip_all, fields(instance_id = %snapshot.instance_id))]
    async fn save_snapshot(&self, snapshot: &mut WorkflowSnapshot) -> Result<(), BackendError> {
        let _timer = store_call(Op::SaveSnapshot);
        Ok(self.save(snapshot).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id))]
    async fn save_task_result(
        &self,
        instance_id: &str,
        task_id: &TaskId,
        output: bytes::Bytes,
    ) -> Result<(), BackendError> {
        let _timer = store_call(Op::SaveTaskResult);
        Ok(self
            .record_task_result(instance_id, *task_id, output)
            .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn load_snapshot(&self, instance_id: &str) -> Result<WorkflowSnapshot, BackendError> {
        let _timer = store_call(Op::LoadSnapshot);
        Ok(self.load(instance_id).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id))]
    async fn delete_snapshot(&self, instance_id: &str) -> Result<(), BackendError> {
        let _timer = store_call(Op::DeleteSnapshot);
        Ok(self.delete(instance_id).await?)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_snapshots(&self) -> Result<Vec<String>, BackendError> {
        let _timer = store_call(Op::ListSnapshots);
        Ok(self.list().await?)
    }
}
