//! The claims this backend granted and has not seen released, with the
//! local time each runs out at, so that a save or a release that failed
//! is tried again only while the claim that makes the write its worker's
//! is still live, with room for the retry itself (see `store::retry`).
//!
//! The time is the claim call's start plus its TTL: never later than the
//! server's expiry, which counts from the statement's own `now()`. An
//! extension adds to it as the statement adds to the stored expiry. Keyed
//! by instance, as claims are (one per workflow). Bounded
//! ([`HELD_CAPACITY`] entries, oldest first dropped): a claim with no entry
//! is never retried.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::bounded::Bounded;

/// How many granted claims are remembered.
pub const HELD_CAPACITY: usize = 4096;

/// The claims granted by this backend (see the module docs).
pub(crate) struct HeldClaims {
    inner: Mutex<Bounded<String, Option<Instant>>>,
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
            inner: Mutex::new(Bounded::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bounded<String, Option<Instant>>> {
        // Every entry is only a bound on a retry: a poisoned map is still
        // one.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A claim on `instance` taken by a call that started at `started`,
    /// for `ttl` (`None`: it never expires).
    pub(crate) fn granted(&self, instance: &str, started: Instant, ttl: Option<Duration>) {
        let until = ttl.map(|t| started + t);
        let capacity = self.capacity;
        self.lock().insert(instance.to_owned(), until, capacity);
    }

    /// The claim on `instance` was extended by `by`.
    pub(crate) fn extended(&self, instance: &str, by: Duration) {
        if let Some(Some(until)) = self.lock().get_mut(&instance.to_owned()) {
            *until += by;
        }
    }

    /// The claim on `instance` was released (or found gone).
    pub(crate) fn released(&self, instance: &str) {
        self.lock().take(&instance.to_owned());
    }

    /// Whether a claim this backend granted on `instance` is live for at
    /// least `room` more.
    pub(crate) fn live_for(&self, instance: &str, room: Duration) -> bool {
        match self.lock().get(&instance.to_owned()) {
            Some(None) => true,
            Some(Some(until)) => until
                .checked_duration_since(Instant::now())
                .is_some_and(|left| left >= room),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_claim_is_live_until_its_ttl_from_the_call_and_an_extension_adds() {
        let held = HeldClaims::default();
        let now = Instant::now();
        held.granted("wf", now, Some(10 * SEC));
        assert!(held.live_for("wf", 5 * SEC));
        assert!(!held.live_for("wf", 11 * SEC));
        held.extended("wf", 10 * SEC);
        assert!(held.live_for("wf", 15 * SEC));
        assert!(!held.live_for("other", Duration::ZERO));
        held.released("wf");
        assert!(!held.live_for("wf", Duration::ZERO));
    }

    #[test]
    fn a_claim_without_ttl_is_always_live_and_an_old_one_never() {
        let held = HeldClaims::default();
        held.granted("forever", Instant::now(), None);
        assert!(held.live_for("forever", 1000 * SEC));
        if let Some(long_ago) = Instant::now().checked_sub(20 * SEC) {
            held.granted("gone", long_ago, Some(10 * SEC));
            assert!(!held.live_for("gone", Duration::ZERO));
        }
    }

    #[test]
    fn the_memo_stays_bounded() {
        let held = HeldClaims::with_capacity(2);
        for i in 0..10 {
            held.granted(&format!("wf{i}"), Instant::now(), Some(SEC));
        }
        assert_eq!(held.lock().len(), 2);
        assert!(held.live_for("wf9", Duration::ZERO));
        assert!(!held.live_for("wf0", Duration::ZERO));
    }
}
