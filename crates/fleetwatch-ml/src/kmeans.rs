//! k-means (Lloyd's iterations) with k-means++ or random initialisation, seeded. Score =
//! Euclidean distance to the nearest centroid (higher = more anomalous).

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the first centroids are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// k-means++ (Arthur & Vassilvitskii 2007): each next centroid drawn with probability
    /// proportional to the squared distance to the nearest chosen one.
    KmeansPlusPlus,
    /// k distinct rows drawn uniformly.
    Random,
}

/// Fit settings.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansSettings {
    /// k.
    pub num_clusters: usize,
    /// Initialisation.
    pub init: Init,
    /// Lloyd iterations at most.
    pub max_iterations: usize,
    /// Stop when the inertia improves by less than this, relatively.
    pub min_rel_progress: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for KMeansSettings {
    fn default() -> Self {
        KMeansSettings {
            num_clusters: 8,
            init: Init::KmeansPlusPlus,
            max_iterations: 50,
            min_rel_progress: 1e-4,
            seed: 42,
        }
    }
}

/// A fitted clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// `k × width`.
    pub centroids: Array2<f32>,
}

/// What fitting did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansFit {
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Sum of squared distances to the nearest centroid at the end.
    pub inertia: f64,
}

#[inline]
fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

impl KMeans {
    /// Clusters the rows of `x` (k is capped at the number of rows).
    pub fn fit(x: ArrayView2<'_, f32>, settings: &KMeansSettings) -> (Self, KMeansFit) {
        let x = x.as_standard_layout();
        let (n, d) = (x.nrows(), x.ncols());
        let rows: Vec<&[f32]> = (0..n)
            .map(|r| &x.as_slice().unwrap_or(&[])[r * d..(r + 1) * d])
            .collect();
        let k = settings.num_clusters.clamp(1, n.max(1));
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
        let mut centroids = Array2::<f32>::zeros((k, d));
        if n == 0 {
            return (
                KMeans { centroids },
                KMeansFit {
                    iterations: 0,
                    inertia: 0.0,
                },
            );
        }
        match settings.init {
            Init::Random => {
                let mut idx: Vec<usize> = (0..n).collect();
                for c in 0..k {
                    let j = rng.random_range(c..n);
                    idx.swap(c, j);
                    centroids.row_mut(c).assign(&ndarray::aview1(rows[idx[c]]));
                }
            }
            Init::KmeansPlusPlus => {
                let first = rng.random_range(0..n);
                centroids.row_mut(0).assign(&ndarray::aview1(rows[first]));
                let mut best: Vec<f32> = rows.iter().map(|r| dist2(r, rows[first])).collect();
                for c in 1..k {
                    let total: f64 = best.iter().map(|&v| f64::from(v)).sum();
                    let pick = if total > 0.0 {
                        let mut target = rng.random::<f64>() * total;
                        let mut chosen = n - 1;
                        for (i, &v) in best.iter().enumerate() {
                            target -= f64::from(v);
                            if target <= 0.0 {
                                chosen = i;
                                break;
                            }
                        }
                        chosen
                    } else {
                        rng.random_range(0..n)
                    };
                    centroids.row_mut(c).assign(&ndarray::aview1(rows[pick]));
                    for (b, r) in best.iter_mut().zip(&rows) {
                        *b = b.min(dist2(r, rows[pick]));
                    }
                }
            }
        }
        let mut assign = vec![0usize; n];
        let mut last = f64::INFINITY;
        let mut fit = KMeansFit {
            iterations: 0,
            inertia: 0.0,
        };
        for it in 1..=settings.max_iterations.max(1) {
            let mut inertia = 0.0f64;
            for (a, r) in assign.iter_mut().zip(&rows) {
                let (mut bi, mut bd) = (0, f32::INFINITY);
                for (c, cent) in centroids.rows().into_iter().enumerate() {
                    let dd = dist2(r, cent.as_slice().unwrap_or(&[]));
                    if dd < bd {
                        bd = dd;
                        bi = c;
                    }
                }
                *a = bi;
                inertia += f64::from(bd);
            }
            let mut sums = vec![0.0f64; k * d];
            let mut counts = vec![0usize; k];
            for (&a, r) in assign.iter().zip(&rows) {
                counts[a] += 1;
                for (s, &v) in sums[a * d..(a + 1) * d].iter_mut().zip(r.iter()) {
                    *s += f64::from(v);
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    for j in 0..d {
                        centroids[[c, j]] = (sums[c * d + j] / counts[c] as f64) as f32;
                    }
                }
                // An empty cluster keeps its centroid.
            }
            fit = KMeansFit {
                iterations: it,
                inertia,
            };
            if last.is_finite() && (last - inertia) <= settings.min_rel_progress * last {
                break;
            }
            last = inertia;
        }
        (KMeans { centroids }, fit)
    }

    /// Scores every row of `x` into `out`: the distance to the nearest centroid.
    pub fn score_into(&self, x: ArrayView2<'_, f32>, out: &mut [f32]) {
        let cents = self.centroids.as_standard_layout();
        let d = cents.ncols();
        let cents = cents.as_slice().unwrap_or(&[]);
        let x = x.as_standard_layout();
        let data = x.as_slice().unwrap_or(&[]);
        for (o, row) in out.iter_mut().zip(data.chunks_exact(d.max(1))) {
            let mut best = f32::INFINITY;
            for c in cents.chunks_exact(d.max(1)) {
                best = best.min(dist2(row, c));
            }
            *o = best.sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_separated_clusters_and_scores_distance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let centers = [[0.0f32, 0.0], [10.0, 10.0], [-10.0, 10.0]];
        let mut x = Array2::<f32>::zeros((900, 2));
        for (i, mut row) in x.rows_mut().into_iter().enumerate() {
            let c = centers[i % 3];
            row[0] = c[0] + rng.random_range(-1.0..1.0);
            row[1] = c[1] + rng.random_range(-1.0..1.0);
        }
        let s = KMeansSettings {
            num_clusters: 3,
            ..Default::default()
        };
        let (m, fit) = KMeans::fit(x.view(), &s);
        assert_eq!(m, KMeans::fit(x.view(), &s).0, "same seed, same centroids");
        assert!(fit.inertia < 900.0, "{fit:?}");
        for c in centers {
            let near = m
                .centroids
                .rows()
                .into_iter()
                .any(|r| (r[0] - c[0]).abs() < 0.2 && (r[1] - c[1]).abs() < 0.2);
            assert!(near, "{c:?} not found in {:?}", m.centroids);
        }
        let probe = ndarray::arr2(&[[0.0f32, 3.0], [0.0, 0.0]]);
        let mut out = [0.0f32; 2];
        m.score_into(probe.view(), &mut out);
        assert!((out[0] - 3.0).abs() < 0.2 && out[1] < 0.2, "{out:?}");
    }
}
