//! Isolation forest (Liu, Ting & Zhou 2008): random axis-aligned splits isolate outliers in
//! few steps. Score = 2^(−E[h(x)] / c(ψ)), higher = more anomalous, in (0, 1].
//!
//! Trees live in flat arrays (what the bundle stores): per node a feature, a threshold and
//! the index of its left child (the right child is the next node); a leaf points at itself
//! with threshold +∞ and holds its depth plus c(size), the expected path length of the
//! points it did not isolate. Scoring walks a tree for a block of rows at a time, each step
//! branch-free (`next = left + (x > threshold)`), for exactly the tree's depth: a leaf's
//! self-loop absorbs the extra steps. NaN goes left.

use ndarray::ArrayView2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The average path length of an unsuccessful binary-search-tree search among `n` points:
/// the normaliser c(n) of the isolation forest paper.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_901_532_9) - 2.0 * (n - 1.0) / n
        }
    }
}

/// One node of a tree, what a walk step reads (one load, not three).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// The feature split on (0 for a leaf).
    pub feature: u32,
    /// Go right when `x > threshold` (+∞ for a leaf).
    pub threshold: f32,
    /// The left child's index (a leaf: itself); the right child is `left + 1`.
    pub left: u32,
}

/// A fitted forest.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    /// The nodes of every tree (the bundle stores their fields as three arrays).
    pub nodes: Vec<Node>,
    /// Per node: for a leaf, depth + c(leaf size); 0 for a split.
    pub value: Vec<f32>,
    /// Per tree: its root's index.
    pub roots: Vec<u32>,
    /// Per tree: its depth (steps a walk takes).
    pub depths: Vec<u32>,
    /// ψ, the rows each tree was grown on.
    pub sample_size: usize,
    /// Inputs per row.
    pub width: usize,
}

/// Fit settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ForestSettings {
    /// Trees.
    pub num_trees: usize,
    /// Rows per tree (ψ), at most the rows given.
    pub max_samples: usize,
    /// Seed.
    pub seed: u64,
}

impl Default for ForestSettings {
    fn default() -> Self {
        ForestSettings {
            num_trees: 100,
            max_samples: 256,
            seed: 42,
        }
    }
}

impl IsolationForest {
    /// Grows the forest on the rows of `x`.
    pub fn fit(x: ArrayView2<'_, f32>, settings: &ForestSettings) -> Self {
        let n = x.nrows();
        let width = x.ncols();
        let psi = settings.max_samples.clamp(1, n.max(1));
        let limit = (psi as f64).log2().ceil().max(1.0) as u32;
        let mut f = IsolationForest {
            nodes: Vec::new(),
            value: Vec::new(),
            roots: Vec::with_capacity(settings.num_trees),
            depths: Vec::with_capacity(settings.num_trees),
            sample_size: psi,
            width,
        };
        let mut all: Vec<usize> = (0..n).collect();
        for t in 0..settings.num_trees {
            let mut rng = ChaCha8Rng::seed_from_u64(settings.seed.wrapping_add(t as u64));
            // A sample without replacement: a partial Fisher–Yates shuffle.
            for i in 0..psi.min(n) {
                let j = rng.random_range(i..n);
                all.swap(i, j);
            }
            let mut sample: Vec<usize> = all[..psi.min(n)].to_vec();
            let root = f.push_leaf();
            f.roots.push(root);
            let depth = f.grow(x, root, &mut sample, 0, limit, &mut rng);
            f.depths.push(depth);
        }
        f
    }

    fn push_leaf(&mut self) -> u32 {
        let i = self.nodes.len() as u32;
        self.nodes.push(Node {
            feature: 0,
            threshold: f32::INFINITY,
            left: i,
        });
        self.value.push(0.0);
        i
    }

    /// Grows node `at` over `rows`; returns the depth of its subtree's deepest leaf.
    fn grow(
        &mut self,
        x: ArrayView2<'_, f32>,
        at: u32,
        rows: &mut [usize],
        depth: u32,
        limit: u32,
        rng: &mut ChaCha8Rng,
    ) -> u32 {
        let leaf = |f: &mut Self, size: usize| {
            f.value[at as usize] = (f64::from(depth) + c_factor(size)) as f32;
            depth
        };
        if depth >= limit || rows.len() <= 1 {
            return leaf(self, rows.len());
        }
        // The features that vary here, and their ranges.
        let mut candidates: Vec<(u32, f32, f32)> = Vec::new();
        for q in 0..self.width {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &r in rows.iter() {
                let v = x[[r, q]];
                if v < lo {
                    lo = v;
                }
                if v > hi {
                    hi = v;
                }
            }
            if hi > lo {
                candidates.push((q as u32, lo, hi));
            }
        }
        if candidates.is_empty() {
            return leaf(self, rows.len());
        }
        let (q, lo, hi) = candidates[rng.random_range(0..candidates.len())];
        let mut p = lo + rng.random::<f32>() * (hi - lo);
        if p >= hi {
            p = lo; // rounding: keep both sides non-empty
        }
        // Partition: `x ≤ p` left, `x > p` right.
        let mut split = 0;
        for i in 0..rows.len() {
            if x[[rows[i], q as usize]] <= p {
                rows.swap(i, split);
                split += 1;
            }
        }
        let l = self.push_leaf();
        let r = self.push_leaf();
        debug_assert_eq!(r, l + 1);
        self.nodes[at as usize] = Node {
            feature: q,
            threshold: p,
            left: l,
        };
        let (left_rows, right_rows) = rows.split_at_mut(split);
        let dl = self.grow(x, l, left_rows, depth + 1, limit, rng);
        let dr = self.grow(x, r, right_rows, depth + 1, limit, rng);
        dl.max(dr)
    }

    /// Trees.
    pub fn num_trees(&self) -> usize {
        self.roots.len()
    }

    /// Scores every row of `x` into `out`.
    ///
    /// Rows go in blocks small enough to stay in L1/L2 while every tree walks them (the
    /// trees, a few KiB each, come from cache too); inside a block, eight rows walk a tree
    /// side by side so their dependent loads overlap.
    pub fn score_into(&self, x: ArrayView2<'_, f32>, out: &mut [f32]) {
        const LANES: usize = 8;
        const BLOCK: usize = 256;
        let width = self.width;
        let norm = -1.0 / c_factor(self.sample_size).max(f64::MIN_POSITIVE);
        let trees = self.num_trees().max(1) as f64;
        let data = x.as_standard_layout();
        let data = data.as_slice().unwrap_or(&[]);
        let nodes = &self.nodes[..];
        let mut sums = [0.0f32; BLOCK];
        for (b, out) in out.chunks_mut(BLOCK).enumerate() {
            let m = out.len();
            let rows = &data[b * BLOCK * width..(b * BLOCK + m) * width];
            let sums = &mut sums[..m];
            sums.fill(0.0);
            for (&root, &depth) in self.roots.iter().zip(&self.depths) {
                let mut r = 0;
                while r + LANES <= m {
                    let lane_rows = &rows[r * width..(r + LANES) * width];
                    let mut idx = [root; LANES];
                    for _ in 0..depth {
                        for (k, i) in idx.iter_mut().enumerate() {
                            let n = nodes[*i as usize];
                            let v = lane_rows[k * width + n.feature as usize];
                            *i = n.left + u32::from(v > n.threshold);
                        }
                    }
                    for (k, i) in idx.iter().enumerate() {
                        sums[r + k] += self.value[*i as usize];
                    }
                    r += LANES;
                }
                for (row, sum) in sums.iter_mut().enumerate().skip(r) {
                    let mut n = root as usize;
                    for _ in 0..depth {
                        let node = nodes[n];
                        let v = rows[row * width + node.feature as usize];
                        n = (node.left + u32::from(v > node.threshold)) as usize;
                    }
                    *sum += self.value[n];
                }
            }
            for (o, s) in out.iter_mut().zip(sums.iter()) {
                *o = 2f64.powf(f64::from(*s) / trees * norm) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn c_factor_matches_the_paper() {
        assert_eq!(c_factor(1), 0.0);
        assert_eq!(c_factor(2), 1.0);
        // c(256) ≈ 10.24 (the usual ψ).
        assert!((c_factor(256) - 10.2448).abs() < 1e-3, "{}", c_factor(256));
    }

    #[test]
    fn outliers_score_higher_and_fits_repeat() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut x = Array2::<f32>::zeros((2000, 4));
        x.mapv_inplace(|_| rng.random_range(-1.0..1.0));
        let s = ForestSettings::default();
        let f = IsolationForest::fit(x.view(), &s);
        assert_eq!(
            f,
            IsolationForest::fit(x.view(), &s),
            "same seed, same forest"
        );
        assert!(f.depths.iter().all(|&d| d <= 8));
        let probe = ndarray::arr2(&[[0.0f32, 0.0, 0.0, 0.0], [6.0, -6.0, 5.0, 0.0]]);
        let mut out = [0.0f32; 2];
        f.score_into(probe.view(), &mut out);
        assert!(out[1] > 0.6 && out[0] < 0.5, "{out:?}");
        // The lane path and the remainder path agree.
        let mut all = vec![0.0f32; 2000];
        f.score_into(x.view(), &mut all);
        let mut one = [0.0f32; 1];
        f.score_into(x.slice(ndarray::s![1999..2000, ..]), &mut one);
        assert_eq!(one[0], all[1999]);
        f.score_into(x.slice(ndarray::s![8..9, ..]), &mut one);
        assert_eq!(one[0], all[8]);
    }

    #[test]
    fn constant_data_makes_single_leaf_trees() {
        let x = Array2::<f32>::ones((50, 3));
        let f = IsolationForest::fit(
            x.view(),
            &ForestSettings {
                num_trees: 3,
                ..Default::default()
            },
        );
        assert_eq!(f.nodes.len(), 3);
        let mut out = [0.0f32; 1];
        f.score_into(x.slice(ndarray::s![..1, ..]), &mut out);
        // E[h] = c(50) → score 2^(−c(50)/c(50)) = 0.5.
        assert!((out[0] - 0.5).abs() < 1e-6, "{}", out[0]);
    }
}
