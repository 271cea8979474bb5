//! `fleetwatch bench ml`: training and operator-only scoring of the native models, on one
//! pinned core, with Keras (tensorflow-cpu, one thread) on the same data as the yardstick.
//!
//! Data: `rows` × 30 features made from 8 latent factors (a fixed random mix, a `tanh`
//! on a third of them, noise), in time order, so an 8-unit bottleneck has something to
//! learn. Phases (each figure says what it includes):
//!
//! - `autoencoder_fit`: 30-16-8-16-30, ReLU, Adam (lr 1e-3), batch 256, `epochs` epochs (no
//!   early stop), SEQ split 80/10/10 — from rows in memory to the bundle: preprocessing
//!   fitted and applied, every epoch with its validation pass, the threshold, test scoring.
//!   No log read. Rows/s = train rows × epochs / wall seconds.
//! - `keras_fit` (when a Python with tensorflow is given): the same architecture,
//!   initialiser (Glorot uniform), optimizer, batch size and epochs on the same
//!   standardised train and validation rows, `model.fit` timed alone, TF limited to one
//!   thread on the same core. Target: fleetwatch faster, final val loss within 5 %.
//! - `isolation_forest_fit` (100 trees, ψ = 256) and `kmeans_fit` (k = 8): fit times.
//! - `*_score`: operator-only scoring (preprocessed f32 rows already in memory, no JSON):
//!   targets autoencoder ≥ 2,000,000 rows/s, isolation forest ≥ 1,000,000.

use crate::bench::{Rates, Timer, round};
use fleetwatch_ml::data::{FrozenRange, PartitionRange};
use fleetwatch_ml::iforest::{ForestSettings, IsolationForest};
use fleetwatch_ml::kmeans::{KMeans, KMeansSettings};
use fleetwatch_ml::model::Model;
use fleetwatch_ml::nn::Scratch;
use fleetwatch_ml::options::ModelOptions;
use fleetwatch_ml::split::{self, SplitMethod};
use fleetwatch_ml::table::Table;
use fleetwatch_ml::train::{TrainEvent, fit_table};
use ndarray::Array2;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Features of the benchmark's rows.
pub const WIDTH: usize = 30;
const LATENT: usize = 8;

/// Options.
#[derive(Debug, Clone)]
pub struct MlBenchOptions {
    /// Rows in all (80 % train).
    pub rows: usize,
    /// Autoencoder epochs.
    pub epochs: usize,
    /// A Python with tensorflow for the Keras phase (`None`: skipped).
    pub keras_python: Option<PathBuf>,
    /// The CPU the process is pinned to (Keras is pinned there too).
    pub cpu: Option<usize>,
    /// Where the rows handed to Keras are written (a subdirectory, removed after).
    pub dir: PathBuf,
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct MlPhase {
    /// Its name.
    pub name: String,
    /// What the figure includes.
    pub includes: &'static str,
    /// Rows processed (train rows × epochs for a fit).
    pub rows: u64,
    /// Rates (records = rows).
    pub rates: Rates,
}

/// The Keras comparison.
#[derive(Debug, Clone, Serialize)]
pub struct KerasComparison {
    /// TensorFlow's version.
    pub tensorflow: String,
    /// `model.fit` wall seconds.
    pub seconds: f64,
    /// Train rows × epochs / seconds.
    pub rows_per_sec: f64,
    /// CPU seconds of the Python process during `fit`, per million train rows × epochs.
    pub cpu_seconds_per_million: f64,
    /// Val loss after each epoch.
    pub val_loss: Vec<f64>,
    /// fleetwatch's wall seconds for the same epochs (its whole fit) / Keras's.
    pub fleetwatch_time_ratio: f64,
    /// |fleetwatch final val loss − Keras's| / Keras's.
    pub val_loss_relative_difference: f64,
    /// fleetwatch faster and val loss within 5 %.
    pub target_met: bool,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct MlBenchReport {
    /// Rows in all.
    pub rows: usize,
    /// Features.
    pub features: usize,
    /// Train rows.
    pub train_rows: usize,
    /// Epochs.
    pub epochs: usize,
    /// Pinned to one CPU.
    pub pinned: bool,
    /// Phases.
    pub phases: Vec<MlPhase>,
    /// fleetwatch's val loss after each epoch.
    pub autoencoder_val_loss: Vec<f64>,
    /// Lloyd iterations k-means took.
    pub kmeans_iterations: usize,
    /// The Keras phase, or why it was skipped.
    pub keras: Value,
    /// Autoencoder scoring ≥ 2 M rows/s.
    pub autoencoder_score_target_met: bool,
    /// Isolation forest scoring ≥ 1 M rows/s.
    pub isolation_forest_score_target_met: bool,
}

/// The benchmark's rows: `rows` × [`WIDTH`] from 8 latent factors.
pub fn rows(rows: usize) -> Table {
    // The simulator's generator: the same rows on every run and machine.
    let mut rng = fleetwatch_sim::rng::Rng::seed_from_u64(20_261_204);
    let mix: Vec<f64> = (0..LATENT * WIDTH).map(|_| rng.noise() * 0.6).collect();
    let names: Vec<String> = (0..WIDTH).map(|i| format!("f{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut values = Vec::with_capacity(rows * WIDTH);
    let mut z = [0.0f64; LATENT];
    for _ in 0..rows {
        for v in &mut z {
            *v = rng.noise();
        }
        for j in 0..WIDTH {
            let mut s: f64 = (0..LATENT).map(|k| z[k] * mix[k * WIDTH + j]).sum();
            if j % 3 == 0 {
                s = s.tanh() * 2.0;
            }
            values.push(10.0 + 3.0 * j as f64 + s + rng.noise() * 0.1);
        }
    }
    Table::from_rows(&names, &values)
}

fn phase(name: &str, includes: &'static str, rows: usize, t: &Timer) -> MlPhase {
    let p = t.stop();
    MlPhase {
        name: name.into(),
        includes,
        rows: rows as u64,
        rates: Rates::of(&p, rows, 0),
    }
}

/// Operator-only scoring of `model` over all of `x`, at least once and for at least a second.
fn score_phase(name: &str, includes: &'static str, model: &Model, x: &Array2<f32>) -> MlPhase {
    let mut out = vec![0.0f32; x.nrows()];
    let mut scratch = Scratch::default();
    // Warm-up; the width was checked when the model was fitted on these rows.
    let _ = model.score_into(x.view(), &mut out, &mut scratch);
    let t = Timer::start();
    let mut passes = 0;
    let p = loop {
        let _ = model.score_into(x.view(), &mut out, &mut scratch);
        passes += 1;
        let p = t.stop();
        if p.seconds >= 1.0 || passes >= 20 {
            break p;
        }
    };
    let n = x.nrows() * passes;
    MlPhase {
        name: name.into(),
        includes,
        rows: n as u64,
        rates: Rates::of(&p, n, 0),
    }
}

const KERAS: &str = r#"
import json, os, resource, sys, time
cpu = int(sys.argv[5])
if cpu >= 0:
    os.sched_setaffinity(0, {cpu})
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.keras.utils.set_random_seed(42)
width, epochs = int(sys.argv[3]), int(sys.argv[4])
train = np.fromfile(sys.argv[1], dtype="<f4").reshape(-1, width)
val = np.fromfile(sys.argv[2], dtype="<f4").reshape(-1, width)
model = tf.keras.Sequential([
    tf.keras.Input(shape=(width,)),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(8, activation="relu"),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(width, activation="linear"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
def cpu_now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, t0 = cpu_now(), time.perf_counter()
h = model.fit(train, train, batch_size=256, epochs=epochs, shuffle=True, validation_data=(val, val), verbose=0)
seconds, cpu_s = time.perf_counter() - t0, cpu_now() - c0
print(json.dumps({"tensorflow": tf.__version__, "seconds": seconds, "cpu_seconds": cpu_s, "val_loss": h.history["val_loss"]}))
"#;

fn write_f32(path: &Path, x: &Array2<f32>) -> anyhow::Result<()> {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Runs the benchmark.
///
/// # Errors
/// Fitting errors; the Keras phase's Python failing (its stderr is reported).
pub fn run(opts: &MlBenchOptions) -> anyhow::Result<MlBenchReport> {
    let table = rows(opts.rows.max(100));
    let mut options: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in [
        ("model_type", json!("autoencoder")),
        ("hidden_units", json!([16, 8, 16])),
        ("activation_fn", json!("relu")),
        ("batch_size", json!(256)),
        ("learn_rate", json!(0.001)),
        ("max_iterations", json!(opts.epochs)),
        ("early_stop", json!(false)),
    ] {
        options.insert(k.into(), v);
    }
    let mopts = ModelOptions::parse(&options)?;
    let range = FrozenRange {
        topic: "bench".into(),
        partitions: vec![PartitionRange {
            partition: 0,
            start: 0,
            end: table.len() as i64,
        }],
    };
    let t = Timer::start();
    let trained = fit_table(&table, None, &mopts, range, &mut |e| {
        if let TrainEvent::Epoch(r) = e {
            tracing::info!(
                epoch = r.epoch,
                loss = r.train_loss,
                val_loss = r.val_loss,
                rows_per_sec = r.rows_per_sec,
                "epoch"
            );
        }
    })?;
    let fit_seconds = t.stop().seconds;
    let bundle = trained.bundle;
    let training = bundle
        .manifest
        .training
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no training info"))?;
    let train_rows = training.fitted_rows as usize;
    let epochs = training.val_loss.len();
    let mut phases = vec![phase(
        "autoencoder_fit",
        "preprocessing fit + apply, every epoch with its validation pass, threshold, test scoring; no log read",
        train_rows * epochs,
        &t,
    )];
    let val_loss = training.val_loss.clone();

    // The rows every other phase uses, preprocessed as the bundle does.
    let pre = bundle
        .manifest
        .preprocessing
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no preprocessing"))?;
    let splits = split::split(&table, SplitMethod::Seq, 0.2, "bench")?;
    let (x_train, _) = pre.apply(&table, Some(&splits.train))?;
    let (x_val, _) = pre.apply(&table, Some(&splits.val))?;
    let (x_all, _) = pre.apply(&table, None)?;

    let ae = bundle.model()?;
    phases.push(score_phase(
        "autoencoder_score",
        "forward pass + reconstruction error on preprocessed f32 rows in memory",
        &ae,
        &x_all,
    ));

    let t = Timer::start();
    let forest = IsolationForest::fit(
        x_train.view(),
        &ForestSettings {
            num_trees: 100,
            max_samples: 256,
            seed: 42,
        },
    );
    phases.push(phase(
        "isolation_forest_fit",
        "100 trees, ψ = 256, on the train rows",
        x_train.nrows(),
        &t,
    ));
    let forest = Model::IsolationForest(forest);
    phases.push(score_phase(
        "isolation_forest_score",
        "100 tree walks per row on preprocessed f32 rows in memory",
        &forest,
        &x_all,
    ));

    let t = Timer::start();
    let (km, fit) = KMeans::fit(
        x_train.view(),
        &KMeansSettings {
            num_clusters: 8,
            ..KMeansSettings::default()
        },
    );
    phases.push(phase(
        "kmeans_fit",
        "k = 8, k-means++ init, Lloyd iterations to convergence, on the train rows",
        x_train.nrows(),
        &t,
    ));
    let km = Model::Kmeans(km);
    phases.push(score_phase(
        "kmeans_score",
        "distance to the nearest of 8 centroids on preprocessed f32 rows in memory",
        &km,
        &x_all,
    ));

    let keras = match &opts.keras_python {
        None => {
            json!({"skipped": "no Python with tensorflow given (--keras-python or FLEETWATCH_KERAS_PYTHON)"})
        }
        Some(py) => {
            let dir = crate::bench::fresh_dir(&opts.dir, "ml")?;
            let (tp, vp) = (dir.join("train.f32"), dir.join("val.f32"));
            write_f32(&tp, &x_train)?;
            write_f32(&vp, &x_val)?;
            let out = std::process::Command::new(py)
                .arg("-c")
                .arg(KERAS)
                .arg(&tp)
                .arg(&vp)
                .arg(WIDTH.to_string())
                .arg(epochs.to_string())
                .arg(opts.cpu.map_or(-1, |c| c as i64).to_string())
                .output();
            let _ = std::fs::remove_dir_all(&dir);
            let out = out?;
            anyhow::ensure!(
                out.status.success(),
                "the Keras phase failed ({}): {}",
                py.display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            let k: Value = serde_json::from_slice(&out.stdout)?;
            let seconds = k["seconds"].as_f64().unwrap_or(f64::NAN);
            let kval: Vec<f64> = k["val_loss"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            let ours = val_loss.last().copied().unwrap_or(f64::NAN);
            let theirs = kval.last().copied().unwrap_or(f64::NAN);
            let rel = (ours - theirs).abs() / theirs;
            let work = (x_train.nrows() * epochs) as f64;
            let c = KerasComparison {
                tensorflow: k["tensorflow"].as_str().unwrap_or("").into(),
                seconds: round(seconds),
                rows_per_sec: round(work / seconds),
                cpu_seconds_per_million: round(
                    k["cpu_seconds"].as_f64().unwrap_or(f64::NAN) / (work / 1e6),
                ),
                val_loss: kval,
                fleetwatch_time_ratio: round(fit_seconds / seconds),
                val_loss_relative_difference: (rel * 1e4).round() / 1e4,
                target_met: fit_seconds < seconds && rel <= 0.05,
            };
            serde_json::to_value(c)?
        }
    };
    let rate = |name: &str| {
        phases
            .iter()
            .find(|p| p.name == name)
            .map_or(0.0, |p| p.rates.records_per_sec)
    };
    Ok(MlBenchReport {
        rows: table.len(),
        features: WIDTH,
        train_rows,
        epochs,
        pinned: opts.cpu.is_some(),
        autoencoder_score_target_met: rate("autoencoder_score") >= 2_000_000.0,
        isolation_forest_score_target_met: rate("isolation_forest_score") >= 1_000_000.0,
        phases,
        autoencoder_val_loss: val_loss,
        kmeans_iterations: fit.iterations,
        keras,
    })
}

/// The table printed on stderr.
pub fn table(r: &MlBenchReport) -> String {
    let mut s = format!(
        "ml: {} rows × {} features ({} train), {} epochs, pinned: {}\n{:<28} {:>14} {:>10} {:>16}\n",
        r.rows,
        r.features,
        r.train_rows,
        r.epochs,
        r.pinned,
        "phase",
        "rows/s",
        "seconds",
        "CPU s / M rows"
    );
    for p in &r.phases {
        s += &format!(
            "{:<28} {:>14.0} {:>10.3} {:>16.3}\n",
            p.name, p.rates.records_per_sec, p.rates.seconds, p.rates.cpu_seconds_per_million
        );
    }
    if r.keras.get("seconds").is_some() {
        s += &format!(
            "{:<28} {:>14.0} {:>10.3} {:>16.3}\nkeras: fleetwatch/keras time {:.3}, val loss {:.5} vs {:.5} ({:.2} % apart), target met: {}\n",
            format!(
                "keras_fit (tf {})",
                r.keras["tensorflow"].as_str().unwrap_or("")
            ),
            r.keras["rows_per_sec"].as_f64().unwrap_or(0.0),
            r.keras["seconds"].as_f64().unwrap_or(0.0),
            r.keras["cpu_seconds_per_million"].as_f64().unwrap_or(0.0),
            r.keras["fleetwatch_time_ratio"].as_f64().unwrap_or(0.0),
            r.autoencoder_val_loss.last().copied().unwrap_or(f64::NAN),
            r.keras["val_loss"]
                .as_array()
                .and_then(|a| a.last())
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
            r.keras["val_loss_relative_difference"]
                .as_f64()
                .unwrap_or(0.0)
                * 100.0,
            r.keras["target_met"],
        );
    } else {
        s += &format!("keras: {}\n", r.keras["skipped"]);
    }
    s += &format!(
        "targets: autoencoder scoring ≥ 2 M/s: {}, isolation forest scoring ≥ 1 M/s: {}\n",
        r.autoencoder_score_target_met, r.isolation_forest_score_target_met
    );
    s
}
