//! Writing a snapshot the backend changed itself (a task result, a signal
//! applied, an event delivered, a park moved on): encode it without its
//! outputs and send it through the one write statement,
//! [`crate::models::workflows::write()`].

use bytes::Bytes;
use diesel_async::AsyncPgConnection;
use sayiir_core::TaskId;
use sayiir_core::codec::SnapshotCodec;
use sayiir_core::snapshot::WorkflowSnapshot;

use crate::backend::DieselBackend;
use crate::error::Result;
use crate::models::workflows::{self, Write};

/// How [`DieselBackend::persist`] writes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Persist {
    /// A state change a worker will not act on at once: no wakeup.
    Quiet,
    /// Wake a worker when the result is dispatchable.
    Notify,
    /// `unpause`: the one write allowed to take a Paused row back to
    /// InProgress (and wake a worker).
    Unpause,
}

impl<C> DieselBackend<C>
where
    C: SnapshotCodec + Send + Sync + 'static,
{
    /// Encodes `snapshot` without its outputs and writes it with `outputs`
    /// (the ones this change adds) through the one write statement. Returns
    /// `false` when the terminal or pause guard refused the write.
    pub(crate) async fn persist(
        &self,
        conn: &mut AsyncPgConnection,
        snapshot: &mut WorkflowSnapshot,
        outputs: &[(TaskId, Bytes)],
        how: Persist,
    ) -> Result<bool> {
        snapshot.strip_task_outputs();
        let blob = crate::codec::encode(&self.inner.codec, snapshot)?;
        let wrote =
            workflows::write(conn, snapshot, self.write_options(&blob, outputs, how)).await?;
        Ok(wrote.written)
    }

    /// The write options of this backend for one write.
    pub(crate) fn write_options<'a>(
        &self,
        blob: &'a [u8],
        outputs: &'a [(TaskId, Bytes)],
        how: Persist,
    ) -> Write<'a> {
        Write {
            blob,
            outputs,
            may_notify: matches!(how, Persist::Notify | Persist::Unpause),
            keep_history: self.inner.keep_history,
            leave_paused: matches!(how, Persist::Unpause),
            ends_claim: None,
        }
    }
}
