//! The revision each finder answer was read at, so that a claim made from
//! a copy the workflow has since moved past is refused.
//!
//! `claim_task` receives only (instance, task, worker). Under a
//! `PooledWorker` with `batch_size > 1`, an entry found while a loop body
//! was at iteration k can reach its claim after another worker has run
//! iteration k and the loop has come back to the same task for k + 1: the
//! position and membership match again, so nothing in the claim itself
//! tells the two apart, and the runtime would run the body with the old
//! input and save its old copy over the new one. The finders run in the
//! same process as the claims they lead to, so the backend remembers the
//! workflow revision each answer was read at and the claim statement
//! refuses when the workflow row has moved on since.
//!
//! Entries are keyed by (worker, instance, task) for `find_available_tasks`
//! and by (instance, task) for `find_hinted_task`, which is not told the
//! worker; a claim uses its own worker's entry first and removes both. The
//! memo is bounded ([`SEEN_CAPACITY`] entries per kind, oldest dropped
//! first): a claim with no entry is checked as before, on position and
//! membership only.

use std::sync::Mutex;

use sayiir_core::TaskId;

use super::bounded::Bounded;

/// How many finder answers are remembered per kind of key.
pub const SEEN_CAPACITY: usize = 4096;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    worker: Option<String>,
    instance: String,
    task: TaskId,
}

#[derive(Default)]
struct Both {
    found: Bounded<Key, i64>,
    hinted: Bounded<Key, i64>,
}

/// The revisions finder answers were read at (see the module docs).
pub(crate) struct SeenRevisions {
    inner: Mutex<Both>,
    capacity: usize,
}

impl Default for SeenRevisions {
    fn default() -> Self {
        Self::with_capacity(SEEN_CAPACITY)
    }
}

impl SeenRevisions {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Both::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Both> {
        // A panic while holding this lock cannot leave the maps
        // inconsistent in a way that matters: every entry is only a hint.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a `find_available_tasks` answer for `worker`.
    pub(crate) fn found(&self, worker: &str, instance: &str, task: TaskId, revision: i64) {
        let key = Key {
            worker: Some(worker.to_owned()),
            instance: instance.to_owned(),
            task,
        };
        let capacity = self.capacity;
        self.lock().found.insert(key, revision, capacity);
    }

    /// Records a `find_hinted_task` answer (no worker is known).
    pub(crate) fn hinted(&self, instance: &str, task: TaskId, revision: i64) {
        let key = Key {
            worker: None,
            instance: instance.to_owned(),
            task,
        };
        let capacity = self.capacity;
        self.lock().hinted.insert(key, revision, capacity);
    }

    /// The revision `worker`'s copy of the task was read at, if known,
    /// forgetting it (and any hinted entry for the task).
    pub(crate) fn take(&self, worker: &str, instance: &str, task: TaskId) -> Option<i64> {
        let mut both = self.lock();
        let mut key = Key {
            worker: Some(worker.to_owned()),
            instance: instance.to_owned(),
            task,
        };
        let own = both.found.take(&key);
        key.worker = None;
        let hinted = both.hinted.take(&key);
        own.or(hinted)
    }

    /// Entries held (both kinds).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let both = self.lock();
        both.found.len() + both.hinted.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> TaskId {
        TaskId::from(format!("t{n}").as_str())
    }

    #[test]
    fn a_workers_own_entry_wins_and_a_claim_forgets_both() {
        let seen = SeenRevisions::default();
        seen.hinted("wf", t(1), 7);
        seen.found("w1", "wf", t(1), 5);
        assert_eq!(seen.take("w2", "wf", t(2)), None);
        assert_eq!(seen.take("w1", "wf", t(1)), Some(5));
        assert_eq!(seen.take("w1", "wf", t(1)), None);
        assert_eq!(seen.len(), 0);
    }

    #[test]
    fn a_hinted_entry_serves_any_worker() {
        let seen = SeenRevisions::default();
        seen.hinted("wf", t(1), 3);
        assert_eq!(seen.take("w9", "wf", t(1)), Some(3));
    }

    #[test]
    fn a_newer_answer_replaces_an_older_one() {
        let seen = SeenRevisions::default();
        seen.found("w", "wf", t(1), 1);
        seen.found("w", "wf", t(1), 4);
        assert_eq!(seen.take("w", "wf", t(1)), Some(4));
    }

    #[test]
    fn the_memo_stays_bounded_and_drops_the_oldest() {
        let seen = SeenRevisions::with_capacity(3);
        for i in 0..10u8 {
            seen.found("w", "wf", t(i), i64::from(i));
            seen.hinted("wf", t(i), i64::from(i));
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(seen.take("w", "wf", t(0)), None);
        assert_eq!(seen.take("w", "wf", t(9)), Some(9));
        // Re-inserting one key many times does not grow the order queue
        // past the bound.
        let seen = SeenRevisions::with_capacity(2);
        for i in 0..100 {
            seen.found("w", "wf", t(1), i);
        }
        assert_eq!(seen.lock().found.order_len(), 2);
        assert_eq!(seen.take("w", "wf", t(1)), Some(99));
    }
}
