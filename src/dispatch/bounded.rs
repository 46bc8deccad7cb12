//! A map that keeps at most a given number of entries, dropping the oldest
//! insertion first: the memos of the dispatch ([`super::seen`],
//! [`super::held`]) hold hints, so forgetting one costs a check, never
//! correctness, and memory stays flat however long a backend runs.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// A FIFO-bounded map from key to (value, insertion sequence).
pub(super) struct Bounded<K, V> {
    map: HashMap<K, (V, u64)>,
    order: VecDeque<(K, u64)>,
    next: u64,
}

impl<K, V> Default for Bounded<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }
}

impl<K: Clone + Eq + Hash, V> Bounded<K, V> {
    /// Inserts or replaces `key`; past `capacity` entries the oldest
    /// insertions go.
    pub(super) fn insert(&mut self, key: K, value: V, capacity: usize) {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        self.map.insert(key.clone(), (value, seq));
        self.order.push_back((key, seq));
        while self.order.len() > capacity {
            if let Some((old, old_seq)) = self.order.pop_front()
                && self.map.get(&old).is_some_and(|(_, s)| *s == old_seq)
            {
                self.map.remove(&old);
            }
        }
    }

    /// Removes `key`, giving its value.
    pub(super) fn take(&mut self, key: &K) -> Option<V> {
        self.map.remove(key).map(|(value, _)| value)
    }

    /// The value of `key`, to change in place.
    pub(super) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|(value, _)| value)
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(value, _)| value)
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Insertions remembered for eviction (at most the capacity).
    #[cfg(test)]
    pub(super) fn order_len(&self) -> usize {
        self.order.len()
    }
}
