//! The dense autoencoder: layers of `ndarray` matrices, Adam, mini-batches, early stopping on
//! the validation loss. f32 throughout; one thread (matrixmultiply's sgemm), so a fixed seed
//! gives the same weights bit for bit.
//!
//! The loss is the mean squared error over features and rows (Keras' `mse`); the output layer
//! is linear. Weights start Glorot-uniform, biases zero (Keras' defaults); Adam follows
//! Keras (β₁ 0.9, β₂ 0.999, ε 1e-7, bias correction folded into the step size). Rows are
//! shuffled every epoch. A row's anomaly score is its mean per-feature squared
//! reconstruction error in standardised units.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, s};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// A layer's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^−x).
    Sigmoid,
    /// x.
    Linear,
}

impl Activation {
    /// Parses `relu`, `tanh`, `sigmoid`, `linear`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Some(Activation::Relu),
            "tanh" => Some(Activation::Tanh),
            "sigmoid" => Some(Activation::Sigmoid),
            "linear" | "identity" | "none" => Some(Activation::Linear),
            _ => None,
        }
    }

    /// The valid names.
    pub const NAMES: &'static str = "relu, tanh, sigmoid, linear";

    fn apply(self, z: &mut ArrayViewMut2<'_, f32>) {
        match self {
            Activation::Relu => z.mapv_inplace(|v| v.max(0.0)),
            Activation::Tanh => z.mapv_inplace(f32::tanh),
            Activation::Sigmoid => z.mapv_inplace(|v| 1.0 / (1.0 + (-v).exp())),
            Activation::Linear => {}
        }
    }

    /// Multiplies `grad` by the derivative, computed from the activation's output `a`.
    fn backward(self, a: &ArrayView2<'_, f32>, grad: &mut ArrayViewMut2<'_, f32>) {
        match self {
            Activation::Relu => grad.zip_mut_with(a, |g, &a| {
                if a <= 0.0 {
                    *g = 0.0
                }
            }),
            Activation::Tanh => grad.zip_mut_with(a, |g, &a| *g *= 1.0 - a * a),
            Activation::Sigmoid => grad.zip_mut_with(a, |g, &a| *g *= a * (1.0 - a)),
            Activation::Linear => {}
        }
    }
}

/// One dense layer: `act(x · kernel + bias)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// `inputs × outputs`.
    pub kernel: Array2<f32>,
    /// `outputs`.
    pub bias: Array1<f32>,
    /// The activation.
    pub activation: Activation,
}

/// Training settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// Rows per gradient step.
    pub batch_size: usize,
    /// Passes over the train split at most.
    pub epochs: usize,
    /// Adam's learning rate.
    pub learn_rate: f32,
    /// Stop when the validation loss stops improving.
    pub early_stop: bool,
    /// Smallest relative improvement of the validation loss that counts as progress.
    pub min_rel_progress: f64,
    /// Epochs without progress before stopping.
    pub patience: usize,
    /// Seed of the initial weights and the shuffles.
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            batch_size: 256,
            epochs: 20,
            learn_rate: 0.001,
            early_stop: true,
            min_rel_progress: 0.001,
            patience: 3,
            seed: 42,
        }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    /// Mean loss over the epoch's batches.
    pub train_loss: f64,
    /// Loss over the validation split after the epoch (NaN without one).
    pub val_loss: f64,
    /// Train rows per second in this epoch (the validation pass included in the time).
    pub rows_per_sec: f64,
    /// Wall seconds of the epoch.
    pub seconds: f64,
}

/// What one training step writes, allocated once per fit for batches of up to `rows`.
struct StepBuffers {
    /// `acts[0]` is the batch; `acts[l + 1]` the output of layer `l`.
    acts: Vec<Array2<f32>>,
    /// The loss gradient with respect to each of `acts`.
    grads: Vec<Array2<f32>>,
    /// Kernel gradients, per layer.
    gk: Vec<Array2<f32>>,
    /// Bias gradients, per layer.
    gb: Vec<Array1<f32>>,
}

impl StepBuffers {
    fn new(layers: &[Dense], rows: usize) -> Self {
        let width = layers.first().map_or(0, |l| l.kernel.nrows());
        let acts: Vec<Array2<f32>> = std::iter::once(width)
            .chain(layers.iter().map(|l| l.kernel.ncols()))
            .map(|w| Array2::zeros((rows, w)))
            .collect();
        StepBuffers {
            grads: acts.iter().map(|a| Array2::zeros(a.raw_dim())).collect(),
            acts,
            gk: layers
                .iter()
                .map(|l| Array2::zeros(l.kernel.raw_dim()))
                .collect(),
            gb: layers
                .iter()
                .map(|l| Array1::zeros(l.bias.raw_dim()))
                .collect(),
        }
    }
}

/// A dense autoencoder.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoencoder {
    /// The layers, input to output.
    pub layers: Vec<Dense>,
}

/// Reusable buffers for scoring (one per thread).
#[derive(Debug, Default)]
pub struct Scratch {
    acts: Vec<Array2<f32>>,
}

impl Autoencoder {
    /// A fresh network `width → hidden… → width`; `activations` has one entry per hidden
    /// layer (the output layer is linear).
    pub fn new(width: usize, hidden: &[usize], activations: &[Activation], seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sizes = vec![width];
        sizes.extend_from_slice(hidden);
        sizes.push(width);
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, io)| {
                let (fan_in, fan_out) = (io[0], io[1]);
                let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
                let kernel =
                    Array2::from_shape_fn((fan_in, fan_out), |_| rng.random_range(-limit..limit));
                Dense {
                    kernel,
                    bias: Array1::zeros(fan_out),
                    activation: activations.get(i).copied().unwrap_or(Activation::Linear),
                }
            })
            .collect();
        Autoencoder { layers }
    }

    /// Inputs (= outputs) per row.
    pub fn width(&self) -> usize {
        self.layers.first().map_or(0, |l| l.kernel.nrows())
    }

    /// Trains on `train`, early-stopping on `val` (may be empty: then every epoch runs and
    /// the last weights are kept). Calls `on_epoch` after each epoch. Keeps the weights of
    /// the best validation epoch.
    pub fn fit(
        &mut self,
        train: ArrayView2<'_, f32>,
        val: ArrayView2<'_, f32>,
        settings: &TrainSettings,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Vec<EpochReport> {
        let n = train.nrows();
        let width = self.width();
        let bs = settings.batch_size.max(1).min(n.max(1));
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ SHUFFLE_STREAM);
        let mut order: Vec<usize> = (0..n).collect();
        let mut batch = Array2::<f32>::zeros((bs, width));
        let mut buffers = StepBuffers::new(&self.layers, bs);
        let mut adam = Adam::new(&self.layers, settings.learn_rate);
        let mut reports = Vec::new();
        let mut best: Option<(f64, Vec<Dense>)> = None;
        let mut stale = 0usize;
        let mut scratch = Scratch::default();
        for epoch in 1..=settings.epochs {
            let started = Instant::now();
            order.shuffle(&mut rng);
            let (mut loss_sum, mut batches) = (0.0f64, 0usize);
            for chunk in order.chunks(bs) {
                let m = chunk.len();
                for (i, &r) in chunk.iter().enumerate() {
                    batch.row_mut(i).assign(&train.row(r));
                }
                loss_sum += self.step(batch.slice(s![..m, ..]), &mut buffers, &mut adam);
                batches += 1;
            }
            let val_loss = if val.nrows() > 0 {
                self.mean_loss(val, &mut scratch)
            } else {
                f64::NAN
            };
            let seconds = started.elapsed().as_secs_f64();
            let report = EpochReport {
                epoch,
                train_loss: loss_sum / batches.max(1) as f64,
                val_loss,
                rows_per_sec: n as f64 / seconds.max(1e-9),
                seconds,
            };
            on_epoch(&report);
            reports.push(report);
            if val.nrows() == 0 {
                continue;
            }
            match &best {
                Some((b, _)) if val_loss >= b * (1.0 - settings.min_rel_progress) => {
                    stale += 1;
                    if settings.early_stop && stale >= settings.patience {
                        break;
                    }
                }
                _ => {
                    stale = 0;
                }
            }
            if best.as_ref().is_none_or(|(b, _)| val_loss < *b) {
                best = Some((val_loss, self.layers.clone()));
            }
        }
        if let Some((_, layers)) = best {
            self.layers = layers;
        }
        reports
    }

    /// One Adam step on a batch; returns the batch loss.
    fn step(&mut self, x: ArrayView2<'_, f32>, buffers: &mut StepBuffers, adam: &mut Adam) -> f64 {
        let StepBuffers {
            acts,
            grads,
            gk,
            gb,
        } = buffers;
        let m = x.nrows();
        let layers = self.layers.len();
        acts[0].slice_mut(s![..m, ..]).assign(&x);
        for (l, layer) in self.layers.iter().enumerate() {
            let (lo, hi) = acts.split_at_mut(l + 1);
            let input = lo[l].slice(s![..m, ..]);
            let mut out = hi[0].slice_mut(s![..m, ..]);
            forward_layer(layer, &input, &mut out);
        }
        // dL/d(output) = 2 (y − x) / (m · d).
        let d = x.ncols();
        let scale = 2.0 / (m * d) as f32;
        let mut loss = 0.0f64;
        {
            let y = acts[layers].slice(s![..m, ..]);
            let mut g = grads[layers].slice_mut(s![..m, ..]);
            ndarray::Zip::from(&mut g)
                .and(&y)
                .and(&x)
                .for_each(|g, &y, &x| {
                    let e = y - x;
                    loss += f64::from(e * e);
                    *g = e * scale;
                });
        }
        for l in (0..layers).rev() {
            let layer = &self.layers[l];
            {
                let a = acts[l + 1].slice(s![..m, ..]);
                let mut g = grads[l + 1].slice_mut(s![..m, ..]);
                layer.activation.backward(&a, &mut g);
            }
            let delta = grads[l + 1].slice(s![..m, ..]);
            let input = acts[l].slice(s![..m, ..]);
            general_mat_mul(1.0, &input.t(), &delta, 0.0, &mut gk[l]);
            gb[l].assign(&delta.sum_axis(Axis(0)));
            if l > 0 {
                let (lo, hi) = grads.split_at_mut(l + 1);
                let mut prev = lo[l].slice_mut(s![..m, ..]);
                general_mat_mul(
                    1.0,
                    &hi[0].slice(s![..m, ..]),
                    &layer.kernel.t(),
                    0.0,
                    &mut prev,
                );
            }
        }
        adam.update(&mut self.layers, gk, gb);
        loss / (m * d) as f64
    }

    /// The mean loss over `x` (the validation loss).
    pub fn mean_loss(&self, x: ArrayView2<'_, f32>, scratch: &mut Scratch) -> f64 {
        let mut scores = vec![0.0f32; x.nrows()];
        self.score_into(x, &mut scores, scratch);
        scores.iter().map(|&s| f64::from(s)).sum::<f64>() / x.nrows().max(1) as f64
    }

    /// Scores every row of `x` into `out`: the mean per-feature squared reconstruction
    /// error. Works in blocks of 1,024 rows through `scratch`.
    pub fn score_into(&self, x: ArrayView2<'_, f32>, out: &mut [f32], scratch: &mut Scratch) {
        const BLOCK: usize = 1024;
        if scratch.acts.len() != self.layers.len() {
            scratch.acts = self
                .layers
                .iter()
                .map(|l| Array2::zeros((BLOCK, l.kernel.ncols())))
                .collect();
        }
        let d = x.ncols() as f32;
        for (b, rows) in out.chunks_mut(BLOCK).enumerate() {
            let m = rows.len();
            let input = x.slice(s![b * BLOCK..b * BLOCK + m, ..]);
            for (l, layer) in self.layers.iter().enumerate() {
                let (lo, hi) = scratch.acts.split_at_mut(l);
                let mut o = hi[0].slice_mut(s![..m, ..]);
                if l == 0 {
                    forward_layer(layer, &input, &mut o);
                } else {
                    forward_layer(layer, &lo[l - 1].slice(s![..m, ..]), &mut o);
                }
            }
            let y = scratch.acts[self.layers.len() - 1].slice(s![..m, ..]);
            for ((o, yr), xr) in rows.iter_mut().zip(y.rows()).zip(input.rows()) {
                let mut acc = 0.0f32;
                for (a, b) in yr.iter().zip(xr.iter()) {
                    let e = a - b;
                    acc += e * e;
                }
                *o = acc / d;
            }
        }
    }
}

/// Mixed into the shuffle seed so its stream differs from the initialisation's.
const SHUFFLE_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

fn forward_layer(layer: &Dense, input: &ArrayView2<'_, f32>, out: &mut ArrayViewMut2<'_, f32>) {
    for mut row in out.rows_mut() {
        row.assign(&layer.bias);
    }
    general_mat_mul(1.0, input, &layer.kernel, 1.0, out);
    layer.activation.apply(out);
}

/// Adam's moment estimates, one pair per parameter tensor.
struct Adam {
    lr: f32,
    t: i32,
    mk: Vec<Array2<f32>>,
    vk: Vec<Array2<f32>>,
    mb: Vec<Array1<f32>>,
    vb: Vec<Array1<f32>>,
}

impl Adam {
    const B1: f32 = 0.9;
    const B2: f32 = 0.999;
    const EPS: f32 = 1e-7;

    fn new(layers: &[Dense], lr: f32) -> Self {
        Adam {
            lr,
            t: 0,
            mk: layers
                .iter()
                .map(|l| Array2::zeros(l.kernel.raw_dim()))
                .collect(),
            vk: layers
                .iter()
                .map(|l| Array2::zeros(l.kernel.raw_dim()))
                .collect(),
            mb: layers
                .iter()
                .map(|l| Array1::zeros(l.bias.raw_dim()))
                .collect(),
            vb: layers
                .iter()
                .map(|l| Array1::zeros(l.bias.raw_dim()))
                .collect(),
        }
    }

    fn update(&mut self, layers: &mut [Dense], gk: &[Array2<f32>], gb: &[Array1<f32>]) {
        self.t += 1;
        let lr_t = self.lr * (1.0 - Self::B2.powi(self.t)).sqrt() / (1.0 - Self::B1.powi(self.t));
        let step = |w: &mut f32, m: &mut f32, v: &mut f32, g: f32| {
            *m = Self::B1 * *m + (1.0 - Self::B1) * g;
            *v = Self::B2 * *v + (1.0 - Self::B2) * g * g;
            *w -= lr_t * *m / (v.sqrt() + Self::EPS);
        };
        for (l, layer) in layers.iter_mut().enumerate() {
            ndarray::Zip::from(&mut layer.kernel)
                .and(&mut self.mk[l])
                .and(&mut self.vk[l])
                .and(&gk[l])
                .for_each(|w, m, v, &g| step(w, m, v, g));
            ndarray::Zip::from(&mut layer.bias)
                .and(&mut self.mb[l])
                .and(&mut self.vb[l])
                .and(&gb[l])
                .for_each(|w, m, v, &g| step(w, m, v, g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows on a 2-D plane inside 6-D space: a bottleneck of 2 reconstructs them.
    fn plane(n: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Array2::zeros((n, 6));
        for mut row in x.rows_mut() {
            let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
            row.assign(&ndarray::arr1(&[a, b, a + b, a - b, 0.5 * a, -b]));
        }
        x
    }

    #[test]
    fn learns_a_plane_and_scores_off_plane_rows_higher() {
        let train = plane(4000, 1);
        let val = plane(500, 2);
        let mut ae = Autoencoder::new(6, &[4, 2, 4], &[Activation::Tanh; 3], 7);
        let settings = TrainSettings {
            epochs: 30,
            batch_size: 64,
            learn_rate: 0.01,
            ..Default::default()
        };
        let reports = ae.fit(train.view(), val.view(), &settings, &mut |_| {});
        let first = reports.first().unwrap().val_loss;
        let last = reports
            .iter()
            .map(|r| r.val_loss)
            .fold(f64::INFINITY, f64::min);
        assert!(last < first * 0.2, "val loss {first} → {last}");
        let off = ndarray::arr2(&[[1.0f32, 1.0, -2.0, 2.0, -0.5, 1.0]]);
        let mut s = [0.0f32; 1];
        ae.score_into(off.view(), &mut s, &mut Scratch::default());
        let mut on = vec![0.0f32; 500];
        ae.score_into(val.view(), &mut on, &mut Scratch::default());
        let max_on = on.iter().copied().fold(0.0, f32::max);
        assert!(
            s[0] > 5.0 * max_on,
            "off-plane {} vs on-plane max {max_on}",
            s[0]
        );
    }

    #[test]
    fn same_seed_same_weights() {
        let train = plane(1000, 1);
        let run = || {
            let mut ae = Autoencoder::new(6, &[3], &[Activation::Relu], 3);
            let settings = TrainSettings {
                epochs: 3,
                ..Default::default()
            };
            ae.fit(
                train.view(),
                train.slice(s![..100, ..]),
                &settings,
                &mut |_| {},
            );
            ae
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = plane(8, 5);
        let ae = Autoencoder::new(6, &[3], &[Activation::Tanh], 11);
        let loss = |ae: &Autoencoder| {
            let mut s = vec![0.0f32; 8];
            ae.score_into(x.view(), &mut s, &mut Scratch::default());
            s.iter().map(|&v| f64::from(v)).sum::<f64>() / 8.0
        };
        // One step with a tiny learning rate moves each weight against its gradient; check the
        // analytic gradient of one kernel entry against a central difference instead.
        let mut buffers = StepBuffers::new(&ae.layers, 8);
        let mut frozen = ae.clone();
        let mut adam = Adam::new(&ae.layers, 0.0);
        frozen.step(x.view(), &mut buffers, &mut adam);
        for (l, i, j) in [(0, 2, 1), (1, 0, 4)] {
            let h = 1e-2f32;
            let mut plus = ae.clone();
            plus.layers[l].kernel[[i, j]] += h;
            let mut minus = ae.clone();
            minus.layers[l].kernel[[i, j]] -= h;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(h));
            let analytic = f64::from(buffers.gk[l][[i, j]]);
            assert!(
                (numeric - analytic).abs() < 1e-3 + 0.02 * analytic.abs(),
                "{numeric} vs {analytic}"
            );
        }
    }
}
