//! `TaskResultStore`: one task's recorded output.
//!
//! One statement, one round trip: the workflow row left-joined to the
//! output, counted only when the task is a member of the stored state (for
//! Completed/Failed, of the last live state plus the finishing write).

use diesel::PgArrayExpressionMethods;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_persistence::{BackendError, TaskResultStore};

use crate::DieselBackend;
use crate::error::{Error, Result, check_lookup_id};
use crate::schema::sayiir::{task_outputs, workflows};
use crate::telemetry::{Op, store_call};

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// `load_task_result`: `NotFound` when the workflow is absent, `None`
    /// when the task is not a member.
    pub(crate) async fn task_result(
        &self,
        instance_id: &str,
        task_id: TaskId,
    ) -> Result<Option<bytes::Bytes>> {
        check_lookup_id(instance_id)?;
        let id = task_id.as_bytes().to_vec();
        let mut conn = self.conn().await?;
        let row: Option<Option<Vec<u8>>> = workflows::table
            .left_join(
                task_outputs::table.on(task_outputs::instance_id
                    .eq(workflows::instance_id)
                    .and(task_outputs::task_id.eq(id.clone()))
                    .and(workflows::members.contains(vec![id]))),
            )
            .filter(workflows::instance_id.eq(instance_id))
            .select(task_outputs::output.nullable())
            .first(&mut conn)
            .await
            .optional()?;
        match row {
            None => Err(Error::NotFound(instance_id.to_owned())),
            Some(output) => Ok(output.map(bytes::Bytes::from)),
        }
    }
}

impl<C> TaskResultStore for DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id))]
    async fn load_task_result(
        &self,
        instance_id: &str,
        task_id: &TaskId,
    ) -> Result<Option<bytes::Bytes>, BackendError> {
        let _timer = store_call(Op::LoadTaskResult);
        Ok(self.task_result(instance_id, *task_id).await?)
    }
}
