//! `TaskResultStore`: one task's recorded output.
//!
//! One statement, one round trip: the workflow row left-joined to the
//! output, counted only when the task is a member of the stored state (for
//! Completed/Failed, of the last live state plus the finishing write).

use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_persistence::{BackendError, TaskResultStore};

use crate::backend::DieselBackend;
use crate::error::Error;
use crate::input::check_lookup_id;
use crate::models::task_outputs;
use crate::telemetry::{Op, Step, reported_if_transient, store_call};

impl<C> TaskResultStore for DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// `NotFound` when the workflow is absent, `None` when the task is not
    /// a member.
    #[tracing::instrument(level = "debug", skip_all, fields(%instance_id, %task_id))]
    async fn load_task_result(
        &self,
        instance_id: &str,
        task_id: &TaskId,
    ) -> Result<Option<bytes::Bytes>, BackendError> {
        let _timer = store_call(Op::LoadTaskResult);
        let loaded = async {
            check_lookup_id(instance_id)?;
            let mut conn = self.conn().await?;
            match task_outputs::member_output(&mut conn, instance_id, *task_id).await? {
                None => Err(Error::NotFound(instance_id.to_owned())),
                Some(output) => Ok(output.map(bytes::Bytes::from)),
            }
        }
        .await;
        let step = Step {
            task: Some(*task_id),
            ..Step::instance(instance_id)
        };
        reported_if_transient(Op::LoadTaskResult, step, loaded)
    }
}
