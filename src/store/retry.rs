//! One more try of a snapshot save, an output save or a claim release
//! that failed, when it is safe and can spare a step from running twice.
//!
//! The runtime does not retry these: a save that fails leaves the claim to
//! run out, and another worker runs the step again. The backend tries
//! again itself, at most [`MAX_RETRIES`] times, after a pause of
//! [`PAUSE`] times the attempt's number, and only
//!
//! * for a call made under a live claim this backend granted on the
//!   workflow (`dispatch::HeldClaims`): its task and worker, taken when the
//!   call starts, are the claim the write was made under;
//! * while that claim is still that worker's in the database, live or not.
//!   A save made again first locks the workflow row, then reads the claim
//!   in a statement of its own ([`fence`]), and is made in that
//!   transaction only when the claim is still its own. Every claimer locks
//!   the workflow row first, so none can take the claim over between that
//!   check and the commit: a retry never lands over the work of a worker
//!   that took the step over, however long it waited, and a claim that ran
//!   out while nobody could take it (a table locked past the claim) costs
//!   no repeat. A release needs no such check: it deletes only the claim
//!   of its own worker and task;
//! * after a failure the server reported for the statement (statement or
//!   lock timeout, cancel, deadlock, serialization failure) or one that
//!   happened before anything was sent (no pooled connection): the write
//!   did not happen, so it is made again;
//! * after a failure that leaves the commit in doubt (the connection broke
//!   or was terminated while the statement ran): the write is read back
//!   first, and made again only when it did not land. It is never made
//!   twice. A read back that fails too (a server restarting) is made
//!   again every [`PAUSE`] for up to [`READ_BACK_FOR`].
//!
//! Any other failure (bad input, a constraint, a lost claim) is final.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as D};
use diesel_async::AsyncPgConnection;
use sayiir_core::TaskId;

use crate::backend::DieselBackend;
use crate::error::{Error, Result};
use crate::models::{claims, workflows};
use crate::telemetry::{self, Op, Step};

/// Retries after the first attempt, at most.
pub(crate) const MAX_RETRIES: u32 = 2;

/// The pause before retry number n: n times this.
pub(crate) const PAUSE: Duration = Duration::from_millis(100);

/// How long a failing read back is tried again.
pub(crate) const READ_BACK_FOR: Duration = Duration::from_secs(3);

/// The claim a call was made under: its task and worker.
pub(crate) type Under = (TaskId, String);

/// What a failed write left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The write did not happen: making it again is safe.
    NotApplied,
    /// It may have committed: read it back before making it again.
    InDoubt,
    /// Trying again cannot help.
    Final,
}

/// How `error` left a write.
pub(crate) fn failed(error: &Error) -> Failed {
    match error {
        Error::Pool(_) | Error::Connection(_) => Failed::NotApplied,
        Error::Database { source, .. } => match source {
            D::BrokenTransactionManager
            | D::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
                _,
            ) => Failed::InDoubt,
            D::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Failed::NotApplied,
            D::DatabaseError(_, info) => {
                let message = info.message();
                if message.contains("terminating connection") || message.contains("connection") {
                    Failed::InDoubt
                } else if message.contains("canceling statement due to")
                    || message.contains("deadlock detected")
                {
                    Failed::NotApplied
                } else {
                    Failed::Final
                }
            }
            _ => Failed::Final,
        },
        _ => Failed::Final,
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Make the write again (a save: behind [`fence`], in one transaction).
    Again,
    /// It landed after all: done.
    Done,
    /// Give up: the error stands.
    GiveUp,
}

/// Inside a save's retry transaction, before the write: locks the
/// workflow row, then reads its claim in a statement of its own (one that
/// sees every claim committed before the lock was granted), and refuses
/// with [`Error::ClaimLost`] unless the claim is still `under`'s. Two
/// statements; `locked` says the caller's transaction holds the row lock
/// already (then one).
pub(crate) async fn fence(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    (task, worker): &Under,
    locked: bool,
) -> Result<()> {
    if !locked && !workflows::lock_row(conn, instance_id).await? {
        return Err(Error::NotFound(instance_id.to_owned()));
    }
    match claims::holder(conn, instance_id).await? {
        Some((t, w)) if t == *task && w == *worker => Ok(()),
        now => Err(Error::ClaimLost {
            instance_id: instance_id.to_owned(),
            worker_id: worker.clone(),
            now: now.map_or_else(|| "no claim".to_owned(), |(_, w)| format!("{w}'s claim")),
        }),
    }
}

/// The claim attempt number `tries` (0: the first) of a save is fenced by
/// ([`fence`]): none for the first attempt, `under` for a retry.
pub(crate) fn fenced(tries: u32, under: Option<&Under>) -> Option<&Under> {
    if tries == 0 { None } else { under }
}

impl<C> DieselBackend<C> {
    /// The claim a save or release of `instance_id` starting now is made
    /// under: the live claim this backend granted on it, if any. Only such
    /// a call is made again after a failure.
    pub(crate) fn under(&self, instance_id: &str) -> Option<Under> {
        self.inner.held.left(instance_id)?;
        self.inner.held.holder(instance_id)
    }

    /// After attempt number `tries` of `op`'s write for `step`, made under
    /// the claim `under` (see [`DieselBackend::under`]), failed with
    /// `error`: whether to make it again, take it as done (`landed`, a read
    /// back, says it committed), or give up (see the module docs).
    pub(crate) async fn after_failure<F: Future<Output = Result<bool>>>(
        &self,
        op: Op,
        step: Step<'_>,
        tries: u32,
        error: &Error,
        under: Option<&Under>,
        landed: impl Fn() -> F,
    ) -> Next {
        if tries > MAX_RETRIES || under.is_none() {
            return Next::GiveUp;
        }
        let kind = failed(error);
        if kind == Failed::Final {
            return Next::GiveUp;
        }
        // A restarting server or a reset link needs a moment.
        tokio::time::sleep(PAUSE * tries).await;
        let next = match kind {
            Failed::Final => return Next::GiveUp,
            Failed::NotApplied => Next::Again,
            Failed::InDoubt => match read_back(landed).await {
                Some(true) => Next::Done,
                Some(false) => Next::Again,
                None => return Next::GiveUp,
            },
        };
        telemetry::retried(op, step, error, next == Next::Done);
        next
    }
}

/// Whether the write landed, from `landed`, called again every [`PAUSE`]
/// while it fails (a restarting server refuses the first reads), for up to
/// [`READ_BACK_FOR`]. `None`: no answer in time.
async fn read_back<F: Future<Output = Result<bool>>>(landed: impl Fn() -> F) -> Option<bool> {
    let until = std::time::Instant::now() + READ_BACK_FOR;
    loop {
        if let Ok(answer) = landed().await {
            return Some(answer);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorInformation;

    use super::*;

    struct Info(&'static str);

    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(kind: DatabaseErrorKind, message: &'static str) -> Error {
        Error::from(D::DatabaseError(kind, Box::new(Info(message))))
    }

    #[test]
    fn a_failure_the_server_reported_for_the_statement_is_not_applied() {
        for m in [
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "canceling statement due to user request",
            "deadlock detected",
        ] {
            assert_eq!(
                failed(&db(DatabaseErrorKind::Unknown, m)),
                Failed::NotApplied,
                "{m}"
            );
        }
        assert_eq!(
            failed(&db(
                DatabaseErrorKind::SerializationFailure,
                "could not serialize"
            )),
            Failed::NotApplied
        );
        assert_eq!(failed(&Error::Pool("timed out".into())), Failed::NotApplied);
    }

    #[test]
    fn a_broken_or_terminated_connection_leaves_the_commit_in_doubt() {
        assert_eq!(
            failed(&db(
                DatabaseErrorKind::ClosedConnection,
                "connection closed"
            )),
            Failed::InDoubt
        );
        assert_eq!(
            failed(&db(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command"
            )),
            Failed::InDoubt
        );
    }

    #[test]
    fn bad_data_is_final() {
        assert_eq!(
            failed(&db(
                DatabaseErrorKind::CheckViolation,
                "violates check constraint"
            )),
            Failed::Final
        );
        assert_eq!(failed(&Error::NotFound("wf".into())), Failed::Final);
    }
}
