//! The claims this backend granted and has not seen released, with the
//! local time each runs out at, so that
//!
//! * a save or a release that failed is tried again only while the claim
//!   that makes the write its worker's is still live, with room for the
//!   retry itself (see `store::retry`);
//! * a save that records the claimed task's output ends that claim in the
//!   same statement, and the worker's release after it is answered here,
//!   with no round trip and no commit (see `store::snapshot`).
//!
//! The time is the claim call's start plus its TTL: never later than the
//! server's expiry, which counts from the statement's own `now()`. An
//! extension adds to it as the statement adds to the stored expiry. Keyed
//! by instance, as claims are (one per workflow). Both memos are bounded
//! ([`HELD_CAPACITY`] entries each, oldest first dropped): a claim with no
//! entry is never retried, never ended by a save, and released by its own
//! statement as before.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sayiir_core::TaskId;

use super::bounded::Bounded;

/// How many granted claims (and claims ended by a save) are remembered.
pub const HELD_CAPACITY: usize = 4096;

/// One granted claim.
struct Held {
    task: TaskId,
    worker: String,
    /// Local time it runs out at; `None` never.
    until: Option<Instant>,
}

/// A claim a save ended, until its worker releases it.
type Ended = (String, TaskId, String);

#[derive(Default)]
struct Memos {
    held: Bounded<String, Held>,
    ended: Bounded<Ended, ()>,
}

/// The claims granted by this backend (see the module docs).
pub(crate) struct HeldClaims {
    inner: Mutex<Memos>,
    capacity: usize,
}

impl Default for HeldClaims {
    fn default() -> Self {
        Self::with_capacity(HELD_CAPACITY)
    }
}

impl HeldClaims {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Memos::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memos> {
        // Every entry is a hint checked by the database (a retry's bound,
        // a save's delete of its own claim): a poisoned map is still one.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A claim on `instance`'s `task` by `worker`, taken by a call that
    /// started at `started`, for `ttl` (`None`: it never expires).
    pub(crate) fn granted(
        &self,
        instance: &str,
        task: TaskId,
        worker: &str,
        started: Instant,
        ttl: Option<Duration>,
    ) {
        let held = Held {
            task,
            worker: worker.to_owned(),
            until: ttl.map(|t| started + t),
        };
        let capacity = self.capacity;
        self.lock().held.insert(instance.to_owned(), held, capacity);
    }

    /// The claim on `instance` was extended by `by`.
    pub(crate) fn extended(&self, instance: &str, by: Duration) {
        if let Some(Held {
            until: Some(until), ..
        }) = self.lock().held.get_mut(&instance.to_owned())
        {
            *until += by;
        }
    }

    /// `worker`'s claim on `instance`'s `task` was released (or found
    /// gone). A claim granted since, on the next task or to another
    /// worker, stays.
    pub(crate) fn released(&self, instance: &str, task: TaskId, worker: &str) {
        let key = instance.to_owned();
        let mut memos = self.lock();
        if memos
            .held
            .get(&key)
            .is_some_and(|h| h.task == task && h.worker == worker)
        {
            memos.held.take(&key);
        }
    }

    /// What is left of the claim this backend granted on `instance`
    /// (`Duration::MAX` when it never expires; `None` when there is none or
    /// it has run out).
    pub(crate) fn left(&self, instance: &str) -> Option<Duration> {
        match self.lock().held.get(&instance.to_owned())? {
            Held { until: None, .. } => Some(Duration::MAX),
            Held {
                until: Some(until), ..
            } => until.checked_duration_since(Instant::now()),
        }
    }

    /// The task and worker of the claim this backend granted on `instance`,
    /// if any: the claim a save of that task's output may end.
    pub(crate) fn holder(&self, instance: &str) -> Option<(TaskId, String)> {
        self.lock()
            .held
            .get(&instance.to_owned())
            .map(|h| (h.task, h.worker.clone()))
    }

    /// A save ended the claim on `instance`'s `task` by `worker`: its
    /// release has nothing left to do.
    pub(crate) fn ended(&self, instance: &str, task: TaskId, worker: &str) {
        self.released(instance, task, worker);
        let capacity = self.capacity;
        self.lock()
            .ended
            .insert((instance.to_owned(), task, worker.to_owned()), (), capacity);
    }

    /// Whether a save ended this claim (and forgets it): the release is
    /// then answered without a statement.
    pub(crate) fn take_ended(&self, instance: &str, task: TaskId, worker: &str) -> bool {
        self.lock()
            .ended
            .take(&(instance.to_owned(), task, worker.to_owned()))
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    /// Whether the claim on `instance` has at least `room` left.
    fn live_for(held: &HeldClaims, instance: &str, room: Duration) -> bool {
        held.left(instance).is_some_and(|left| left >= room)
    }

    #[test]
    fn a_claim_is_live_until_its_ttl_from_the_call_and_an_extension_adds() {
        let held = HeldClaims::default();
        let now = Instant::now();
        held.granted("wf", TaskId::from("a"), "w", now, Some(10 * SEC));
        assert!(live_for(&held, "wf", 5 * SEC));
        assert!(!live_for(&held, "wf", 11 * SEC));
        held.extended("wf", 10 * SEC);
        assert!(live_for(&held, "wf", 15 * SEC));
        assert!(!live_for(&held, "other", Duration::ZERO));
        held.released("wf", TaskId::from("b"), "w");
        assert!(live_for(&held, "wf", Duration::ZERO));
        held.released("wf", TaskId::from("a"), "w");
        assert!(!live_for(&held, "wf", Duration::ZERO));
    }

    #[test]
    fn a_claim_without_ttl_is_always_live_and_an_old_one_never() {
        let held = HeldClaims::default();
        held.granted("forever", TaskId::from("a"), "w", Instant::now(), None);
        assert!(live_for(&held, "forever", 1000 * SEC));
        if let Some(long_ago) = Instant::now().checked_sub(20 * SEC) {
            held.granted("gone", TaskId::from("a"), "w", long_ago, Some(10 * SEC));
            assert!(!live_for(&held, "gone", Duration::ZERO));
        }
    }

    #[test]
    fn the_memo_stays_bounded() {
        let held = HeldClaims::with_capacity(2);
        for i in 0..10 {
            held.granted(
                &format!("wf{i}"),
                TaskId::from("a"),
                "w",
                Instant::now(),
                Some(SEC),
            );
        }
        assert_eq!(held.lock().held.len(), 2);
        assert!(live_for(&held, "wf9", Duration::ZERO));
        assert!(!live_for(&held, "wf0", Duration::ZERO));
    }

    #[test]
    fn a_claim_a_save_ended_is_released_once_and_a_new_claim_does_not_hide_it() {
        let held = HeldClaims::default();
        let (a, b) = (TaskId::from("a"), TaskId::from("b"));
        held.granted("wf", a, "w1", Instant::now(), Some(10 * SEC));
        assert_eq!(held.holder("wf"), Some((a, "w1".to_owned())));
        held.ended("wf", a, "w1");
        assert_eq!(held.holder("wf"), None);
        // Another worker of this process claims the next task before the
        // first one releases: its release is still answered from the memo.
        held.granted("wf", b, "w2", Instant::now(), Some(10 * SEC));
        assert!(!held.take_ended("wf", a, "w2"));
        assert!(held.take_ended("wf", a, "w1"));
        assert!(!held.take_ended("wf", a, "w1"));
        assert_eq!(held.holder("wf"), Some((b, "w2".to_owned())));
    }

    #[test]
    fn the_ended_memo_stays_bounded() {
        let held = HeldClaims::with_capacity(2);
        for i in 0..10 {
            held.ended(&format!("wf{i}"), TaskId::from("a"), "w");
        }
        assert_eq!(held.lock().ended.len(), 2);
        assert!(held.take_ended("wf9", TaskId::from("a"), "w"));
        assert!(!held.take_ended("wf0", TaskId::from("a"), "w"));
    }
}
