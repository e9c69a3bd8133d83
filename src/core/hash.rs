//! A fast hasher for the topic trees' level maps.
//!
//! Level lookups happen for every level of every routed topic, so SipHash (the std default)
//! shows up in profiles. This is a multiply-rotate hash over 8-byte words with a per-process
//! random seed. It is not collision-resistant against a determined adversary; what a client
//! can put into the maps is bounded by its subscriptions and retained topics, which the
//! broker's limits bound.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

/// A map from one topic level to a value, as the subscription and retained trees use.
pub type LevelMap<V> = HashMap<Box<str>, V, BuildLevelHasher>;

/// Builds `LevelHasher`s with this process's seed.
#[derive(Clone, Debug)]
pub struct BuildLevelHasher {
    seed: u64,
}

impl Default for BuildLevelHasher {
    fn default() -> Self {
        thread_local! {
            static SEED: u64 = RandomState::new().hash_one(0x0070_6970_6974_u64);
        }
        BuildLevelHasher {
            seed: SEED.with(|s| *s),
        }
    }
}

impl BuildHasher for BuildLevelHasher {
    type Hasher = LevelHasher;

    fn build_hasher(&self) -> LevelHasher {
        LevelHasher { hash: self.seed }
    }
}

/// The hasher state.
#[derive(Debug)]
pub struct LevelHasher {
    hash: u64,
}

const K: u64 = 0x517c_c1b7_2722_0a95;

impl LevelHasher {
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for LevelHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(word) ^ ((tail.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.mix(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(s: &str) -> u64 {
        BuildLevelHasher::default().hash_one(s)
    }

    #[test]
    fn distinguishes_levels() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "sensor",
            "sensors",
            "sensor\0",
            "0123456789abcdef",
        ];
        for (i, a) in words.iter().enumerate() {
            for b in &words[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(hash("same"), hash("same"));
    }

    #[test]
    fn works_as_a_map() {
        let mut m: LevelMap<u32> = LevelMap::default();
        m.insert("x".into(), 1);
        assert_eq!(m.get("x"), Some(&1));
        assert_eq!(m.get("y"), None);
    }
}
