//! A small least-recently-used map, the policy of the per-partition reader cache and of the
//! committed-offsets clients. Pure: the caller drops what it evicts (a librdkafka client's
//! drop joins its threads, so callers drop off the async runtime).
//!
//! Capacities are tens of entries, so eviction scans for the oldest entry (O(n)) and a hit
//! is O(1).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

pub(crate) struct Lru<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (u64, V)>,
}

impl<K: Eq + Hash + Clone, V> Lru<K, V> {
    /// A map holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The value of `key`, now the most recently used.
    pub(crate) fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let now = self.tick();
        self.entries.get_mut(key).map(|(used, v)| {
            *used = now;
            &*v
        })
    }

    /// Inserts `key` as the most recently used. Returns what left the map: the previous value
    /// of `key`, or the least recently used entry when the map was full.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        let now = self.tick();
        if let Some((used, old)) = self.entries.get_mut(&key) {
            *used = now;
            let old = std::mem::replace(old, value);
            return Some((key, old));
        }
        let evicted = if self.entries.len() >= self.capacity {
            self.entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
                .and_then(|k| self.entries.remove_entry(&k))
                .map(|(k, (_, v))| (k, v))
        } else {
            None
        };
        self.entries.insert(key, (now, value));
        evicted
    }

    /// Removes and returns every entry whose key matches.
    pub(crate) fn remove_where(&mut self, mut matches: impl FnMut(&K) -> bool) -> Vec<V> {
        let keys: Vec<K> = self
            .entries
            .keys()
            .filter(|k| matches(k))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.entries.remove(&k).map(|(_, v)| v))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `key` is held, without touching its recency.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(3);
        assert!(lru.insert("a", 1).is_none());
        assert!(lru.insert("b", 2).is_none());
        assert!(lru.insert("c", 3).is_none());
        assert_eq!(lru.len(), 3);
        // a is used again: b is now the oldest
        assert_eq!(lru.get("a"), Some(&1));
        assert_eq!(lru.insert("d", 4), Some(("b", 2)));
        assert!(!lru.contains(&"b"));
        assert_eq!(lru.insert("e", 5), Some(("c", 3)));
        assert_eq!(lru.insert("f", 6), Some(("a", 1)));
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get("b"), None);
        for k in ["d", "e", "f"] {
            assert!(lru.contains(&k), "{k}");
        }
    }

    #[test]
    fn a_miss_does_not_change_the_order() {
        let mut lru = Lru::new(2);
        lru.insert(1, "one");
        lru.insert(2, "two");
        assert_eq!(lru.get(&9), None);
        assert_eq!(lru.insert(3, "three"), Some((1, "one")));
    }

    #[test]
    fn replacing_a_key_returns_the_old_value_and_evicts_nothing() {
        let mut lru = Lru::new(2);
        lru.insert("a", 1);
        lru.insert("b", 2);
        assert_eq!(lru.insert("a", 10), Some(("a", 1)));
        assert_eq!(lru.len(), 2);
        // a was refreshed by the replacement: b goes first
        assert_eq!(lru.insert("c", 3), Some(("b", 2)));
        assert_eq!(lru.get("a"), Some(&10));
    }

    #[test]
    fn capacity_one_and_zero() {
        let mut lru = Lru::new(0);
        assert_eq!(lru.capacity(), 1);
        lru.insert("a", 1);
        assert_eq!(lru.insert("b", 2), Some(("a", 1)));
        assert_eq!(lru.len(), 1);
    }

    #[test]
    fn remove_where_takes_matching_entries() {
        let mut lru = Lru::new(8);
        for (t, p) in [("x", 0), ("x", 1), ("y", 0)] {
            lru.insert((t.to_string(), p), p);
        }
        let mut gone = lru.remove_where(|(t, _)| t == "x");
        gone.sort();
        assert_eq!(gone, vec![0, 1]);
        assert_eq!(lru.len(), 1);
        assert!(lru.contains(&("y".to_string(), 0)));
    }
}
