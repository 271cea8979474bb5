//! Key partitioning compatible with Kafka's Java client (and librdkafka's `murmur2_random`):
//! `(murmur2(key) & 0x7fffffff) % partitions`, seed `0x9747b28c`. Records without a key are
//! spread round-robin by the caller's counter.

use std::sync::atomic::{AtomicU32, Ordering};

/// Kafka's `Utils.murmur2` (32-bit MurmurHash2, seed `0x9747b28c`), as a signed value like Java.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len() as u32;
    let mut h: u32 = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a key.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    ((murmur2(key) & 0x7fff_ffff) as u32 % partitions.max(1) as u32) as i32
}

/// Picks partitions: by key hash when there is a key, round-robin otherwise.
#[derive(Debug, Default)]
pub struct Partitioner {
    next: AtomicU32,
}

impl Partitioner {
    /// A partitioner whose round-robin starts at partition 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The partition for a record with this key in a topic with `partitions` partitions.
    pub fn partition(&self, key: Option<&[u8]>, partitions: i32) -> i32 {
        match key {
            Some(k) => partition_for_key(k, partitions),
            None => (self.next.fetch_add(1, Ordering::Relaxed) % partitions.max(1) as u32) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Kafka's own vectors: UtilsTest.testMurmur2 in the Java client.
    #[test]
    fn murmur2_matches_kafka_test_vectors() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, want) in cases {
            assert_eq!(murmur2(input), want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn unkeyed_records_rotate() {
        let p = Partitioner::new();
        let got: Vec<i32> = (0..6).map(|_| p.partition(None, 3)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
    }

    proptest! {
        #[test]
        fn keyed_partition_is_in_range_and_stable(key in proptest::collection::vec(any::<u8>(), 0..64), n in 1i32..500) {
            let p = partition_for_key(&key, n);
            prop_assert!((0..n).contains(&p));
            prop_assert_eq!(p, partition_for_key(&key, n));
        }
    }
}
