//! One more try of a snapshot save or a claim release that failed, when it
//! is safe and can spare a step from running twice.
//!
//! The runtime does not retry these: a save that fails leaves the claim to
//! run out, and another worker runs the step again. The backend tries
//! again itself, at most [`MAX_RETRIES`] times, after a pause of
//! [`PAUSE`] times the attempt's number, and only
//!
//! * while a claim this backend granted on the workflow is live for at
//!   least the room a retry needs (the pause, [`MIN_STATEMENT`] and
//!   [`MARGIN`]). The retry runs in a transaction whose statements are
//!   bounded (`SET LOCAL statement_timeout`, [`crate::session`]) by what is left of the claim
//!   less the margin, and never by more than the pool's own timeout: a
//!   retry never lands after the claim could have passed to another
//!   worker (`dispatch::HeldClaims`), however short the claim is next to
//!   the statement timeout;
//! * after a failure the server reported for the statement (statement or
//!   lock timeout, cancel, deadlock, serialization failure) or one that
//!   happened before anything was sent (no pooled connection): the write
//!   did not happen, so it is made again;
//! * after a failure that leaves the commit in doubt (the connection broke
//!   or was terminated while the statement ran): the write is read back
//!   first, and made again only when it did not land. It is never made
//!   twice. A read back that fails too (a server restarting) is made
//!   again every [`PAUSE`] for up to [`READ_BACK_FOR`], while the claim
//!   has room.
//!
//! Any other failure (bad input, a constraint, a refused claim) is final.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as D};

use crate::backend::DieselBackend;
use crate::error::{Error, Result};
use crate::telemetry::{self, Op, Step};

/// Retries after the first attempt, at most.
pub(crate) const MAX_RETRIES: u32 = 2;

/// The pause before retry number n: n times this.
pub(crate) const PAUSE: Duration = Duration::from_millis(100);

/// What a retry needs on the claim besides its statements and its pause:
/// a connection, the round trips and the commit.
pub(crate) const MARGIN: Duration = Duration::from_millis(500);

/// How long a failing read back is tried again.
pub(crate) const READ_BACK_FOR: Duration = Duration::from_secs(3);

/// The shortest statement timeout a retry is given; with less of the
/// claim left it is not made.
pub(crate) const MIN_STATEMENT: Duration = Duration::from_millis(200);

/// The statement timeout of a retry with `left` of the claim: `left` less
/// [`MARGIN`], never more than the pool's own `statement_timeout`; `None`
/// when that is under [`MIN_STATEMENT`].
pub(crate) fn retry_limit(left: Duration, statement_timeout: Option<Duration>) -> Option<Duration> {
    let limit = left.saturating_sub(MARGIN);
    let limit = statement_timeout.map_or(limit, |t| limit.min(t));
    (limit >= MIN_STATEMENT).then_some(limit)
}

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
    /// Make the write again, in a transaction whose statements are bounded
    /// by this timeout ([`crate::session::limit_statements`]).
    Again(Duration),
    /// It landed after all: done.
    Done,
    /// Give up: the error stands.
    GiveUp,
}

impl<C> DieselBackend<C> {
    /// After attempt number `tries` of `op`'s write for `step` failed with
    /// `error`: whether to make it again, take it as done (`landed`, a read
    /// back, says it committed), or give up (see the module docs).
    pub(crate) async fn after_failure<F: Future<Output = Result<bool>>>(
        &self,
        op: Op,
        step: Step<'_>,
        tries: u32,
        error: &Error,
        landed: impl Fn() -> F,
    ) -> Next {
        let pause = PAUSE * tries;
        if tries > MAX_RETRIES
            || !self
                .inner
                .held
                .live_for(step.instance, pause + MIN_STATEMENT + MARGIN)
        {
            return Next::GiveUp;
        }
        let kind = failed(error);
        if kind == Failed::Final {
            return Next::GiveUp;
        }
        // A restarting server or a reset link needs a moment.
        tokio::time::sleep(pause).await;
        let again = match kind {
            Failed::Final => return Next::GiveUp,
            Failed::NotApplied => true,
            Failed::InDoubt => match self.read_back(step.instance, landed).await {
                Some(landed) => !landed,
                None => return Next::GiveUp,
            },
        };
        let next = if again {
            // What is left of the claim now, after the pause and any read
            // back, bounds the retry.
            let left = self.inner.held.left(step.instance);
            match left.and_then(|left| retry_limit(left, self.inner.statement_timeout)) {
                Some(limit) => Next::Again(limit),
                None => return Next::GiveUp,
            }
        } else {
            Next::Done
        };
        telemetry::retried(op, step, error, next == Next::Done);
        next
    }
}

impl<C> DieselBackend<C> {
    /// Whether the write landed, from `landed`, called again every
    /// [`PAUSE`] while it fails (a restarting server refuses the first
    /// reads), for up to [`READ_BACK_FOR`] and while the claim on
    /// `instance` has room for a retry. `None`: no answer in time.
    async fn read_back<F: Future<Output = Result<bool>>>(
        &self,
        instance: &str,
        landed: impl Fn() -> F,
    ) -> Option<bool> {
        let until = std::time::Instant::now() + READ_BACK_FOR;
        loop {
            if let Ok(answer) = landed().await {
                return Some(answer);
            }
            let room = PAUSE + MIN_STATEMENT + MARGIN;
            if std::time::Instant::now() >= until || !self.inner.held.live_for(instance, room) {
                return None;
            }
            tokio::time::sleep(PAUSE).await;
        }
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
    fn a_retry_is_bounded_by_the_claim_and_the_pool_timeout() {
        let ms = Duration::from_millis;
        // The soak's settings: a 3 s claim, a 2 s timeout that struck once.
        assert_eq!(retry_limit(ms(900), Some(ms(2000))), Some(ms(400)));
        assert_eq!(retry_limit(ms(60_000), Some(ms(2000))), Some(ms(2000)));
        assert_eq!(retry_limit(ms(60_000), None), Some(ms(59_500)));
        assert_eq!(retry_limit(ms(650), Some(ms(2000))), None);
        assert_eq!(
            retry_limit(Duration::MAX, Some(ms(30_000))),
            Some(ms(30_000))
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
