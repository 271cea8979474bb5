//! Replays every committed corpus file through its target, checks the seeds made by the
//! encoders are committed, and runs each target on a bounded number of pseudo-random and
//! mutated inputs from a fixed seed — the stable-Rust half of the fuzzing (`cargo test`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fleetwatch_fuzz::{TARGETS, seeds};
use std::path::{Path, PathBuf};

/// Inputs per target in [`random_and_mutated_inputs`].
const RUNS: usize = 2_000;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

#[test]
fn every_corpus_file_replays() {
    for (name, target) in TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            eprintln!("replay {}", f.display());
            target(&data);
        }
    }
}

#[test]
fn seeds_are_committed() {
    let write = std::env::var_os("FLEETWATCH_FUZZ_WRITE_SEEDS").is_some();
    for s in seeds::all() {
        assert!(TARGETS.iter().any(|(t, _)| *t == s.target), "{}", s.target);
        let path = corpus_dir(s.target).join(s.name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &s.bytes).unwrap();
            continue;
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == s.bytes,
            "{} differs from what the encoders make: rerun with FLEETWATCH_FUZZ_WRITE_SEEDS=1",
            path.display()
        );
    }
}

/// xorshift64*: tiny, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const INTERESTING_8: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'[', b'{', b'\\'];
const INTERESTING_64: [i64; 6] = [0, -1, 1, i64::MAX, i64::MIN, i64::MAX - 1];

/// A few AFL-style mutations of `input` (with `others` to splice from).
fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = v.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING_8[rng.below(INTERESTING_8.len())];
            }
            2 if len >= 9 => {
                // often at byte 1: the base offset of the log targets' first batch
                let i = if rng.below(3) == 0 {
                    1
                } else {
                    rng.below(len - 7)
                };
                let x = INTERESTING_64[rng.below(INTERESTING_64.len())];
                v[i..i + 8].copy_from_slice(&x.to_le_bytes());
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins = rng.bytes(n);
                v.splice(i..i, ins);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                v.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let dup = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, dup);
            }
            6 if !others.is_empty() => {
                let o = &others[rng.below(others.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(o.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&o[from..]);
            }
            7 => v.truncate(rng.below(len + 1)),
            8 if len > 0 => {
                // the mode byte of the log and produce targets
                v[0] = rng.next() as u8;
            }
            _ => {}
        }
    }
    v
}

#[test]
fn random_and_mutated_inputs() {
    for (name, target) in TARGETS {
        let dir = corpus_dir(name);
        let corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for i in 0..RUNS {
            let input = if i % 4 == 0 || corpus.is_empty() {
                let n = rng.below(512);
                rng.bytes(n)
            } else {
                let base = &corpus[rng.below(corpus.len())];
                mutate(&mut rng, base, &corpus)
            };
            let r = std::panic::catch_unwind(|| target(&input));
            if r.is_err() {
                let out = std::env::temp_dir().join(format!("fleetwatch-fuzz-{name}-{i}"));
                std::fs::write(&out, &input).unwrap();
                panic!(
                    "target {name} panicked on input {i}, saved to {}",
                    out.display()
                );
            }
        }
    }
}
