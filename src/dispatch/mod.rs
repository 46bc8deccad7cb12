//! Handing tasks to workers: the finder behind `find_available_tasks` and
//! `find_hinted_task`, its periodic maintenance (due parks, pending
//! requests nobody applies, crash recovery), the memo of the workflow
//! revision each answer was read at, which `claim_task` checks, and the
//! memo of the claims this backend granted, which bounds the retry of a
//! failed save or release.

mod bounded;
mod finder;
mod held;
mod maintenance;
mod seen;

pub(crate) use finder::{MAINTENANCE_EVERY, Poll, retry_transient};
pub(crate) use held::HeldClaims;
pub(crate) use seen::SeenRevisions;
