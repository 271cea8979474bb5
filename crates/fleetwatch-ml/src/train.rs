//! The training job: options → frozen range → rows → splits → preprocessing (fitted on
//! train) → model → threshold (on validation) → metrics (on test) → bundle.
//!
//! [`train`] does it from the log; [`fit_table`] from rows already in memory (the benchmark
//! and tests), so "excluding log read" is a real boundary.

use crate::bundle::{
    Bundle, Direction, FORMAT_VERSION, Manifest, OutputKind, OutputSpec, Threshold, TrainingInfo,
    WEIGHTS,
};
use crate::data::{self, FrozenRange, RangeSpec, ReadOptions};
use crate::error::{MlError, MlResult};
use crate::eval::{self, Evaluation};
use crate::iforest::IsolationForest;
use crate::kmeans::KMeans;
use crate::labels::LabelIndex;
use crate::model::Model;
use crate::nn::{Autoencoder, EpochReport, Scratch};
use crate::options::{Algorithm, ModelOptions, ThresholdMethod, TrainOn};
use crate::preprocess::Preprocessing;
use crate::split::{self, SplitMethod, Splits};
use crate::table::{Feature, Table};
use fleetwatch_core::{Log, now_ms};
use ndarray::Array2;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// What to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainJob {
    /// The source topic.
    pub topic: String,
    /// Its range.
    pub range: RangeSpec,
    /// The input features.
    pub features: Vec<Feature>,
    /// The options (`model_type` and the rest).
    pub options: BTreeMap<String, Value>,
}

/// What training reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// The range is frozen.
    Frozen(FrozenRange),
    /// Rows are read.
    Read {
        /// Rows.
        rows: usize,
        /// Labelled anomalous rows (when labels are given).
        anomalous: usize,
        /// Seconds reading.
        seconds: f64,
    },
    /// An autoencoder epoch ended.
    Epoch(EpochReport),
    /// The model is fitted.
    Fitted {
        /// Rows fitted on.
        rows: usize,
        /// Seconds, preprocessing and validation included.
        seconds: f64,
    },
}

/// A trained bundle and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Trained {
    /// The bundle (not yet registered).
    pub bundle: Bundle,
    /// Seconds from rows in memory to a bundle: preprocessing, fit, validation, threshold,
    /// test scoring.
    pub fit_seconds: f64,
    /// Train rows per second of `fit_seconds`, per epoch for the autoencoder.
    pub rows_per_sec: f64,
}

/// Trains from the log.
///
/// # Errors
/// Bad options, an empty range or split, a non-numeric feature (column and offset), log
/// errors.
pub async fn train(
    log: &dyn Log,
    job: &TrainJob,
    progress: &mut (dyn FnMut(TrainEvent) + Send),
) -> MlResult<Trained> {
    let opts = ModelOptions::parse(&job.options)?;
    if job.features.is_empty() {
        return Err(MlError::options(
            "no features given: name the fields the model reads",
        ));
    }
    let labels = match &opts.labels_topic {
        Some(t) => Some(LabelIndex::read(log, t).await?),
        None => None,
    };
    let frozen = data::freeze(log, &job.topic, &job.range).await?;
    progress(TrainEvent::Frozen(frozen.clone()));
    let started = Instant::now();
    let read_opts = ReadOptions {
        time_field: opts.split_col.clone(),
        event_id_field: opts.event_id_col.clone(),
    };
    let table = data::read(log, &frozen, &job.features, &read_opts).await?;
    let row_labels = labels.as_ref().map(|l| l.label_rows(&table));
    progress(TrainEvent::Read {
        rows: table.len(),
        anomalous: row_labels
            .as_ref()
            .map_or(0, |l| l.iter().filter(|x| x.is_some()).count()),
        seconds: started.elapsed().as_secs_f64(),
    });
    fit_table(&table, row_labels.as_deref(), &opts, frozen, progress)
}

/// Scores `rows` of a preprocessed matrix.
fn score_rows(model: &Model, x: &Array2<f32>) -> MlResult<Vec<f64>> {
    let mut out = vec![0.0f32; x.nrows()];
    model.score_into(x.view(), &mut out, &mut Scratch::default())?;
    Ok(out.into_iter().map(f64::from).collect())
}

/// Trains on rows in memory (`labels`: per row its anomaly type, `None` = normal).
///
/// # Errors
/// As [`train`], without the log.
pub fn fit_table(
    table: &Table,
    labels: Option<&[Option<String>]>,
    opts: &ModelOptions,
    range: FrozenRange,
    progress: &mut (dyn FnMut(TrainEvent) + Send),
) -> MlResult<Trained> {
    let started = Instant::now();
    let splits: Splits = split::split(
        table,
        opts.split_method,
        opts.eval_fraction,
        &range.to_string(),
    )?;
    let pre = Preprocessing::fit(table, &splits.train, &opts.preprocess)?;
    let mut fit_rows = splits.train.clone();
    if let Algorithm::Autoencoder {
        train_on: TrainOn::NormalOnly,
        ..
    } = &opts.algorithm
    {
        let l = labels.ok_or_else(|| {
            MlError::options("train_on = 'normal_only' needs labels: set labels_topic")
        })?;
        fit_rows.retain(|&r| l[r].is_none());
        if fit_rows.is_empty() {
            return Err(MlError::data(format!(
                "train_on = 'normal_only': the train split of {range} has no normal rows"
            )));
        }
    }
    let (x_fit, _) = pre.apply(table, Some(&fit_rows))?;
    let (x_val, _) = pre.apply(table, Some(&splits.val))?;
    let mut val_loss = Vec::new();
    let model = match &opts.algorithm {
        Algorithm::Autoencoder {
            hidden,
            activations,
            settings,
            ..
        } => {
            let mut ae = Autoencoder::new(pre.width(), hidden, activations, opts.seed);
            let reports = ae.fit(x_fit.view(), x_val.view(), settings, &mut |r| {
                progress(TrainEvent::Epoch(r.clone()))
            });
            val_loss = reports
                .iter()
                .map(|r| r.val_loss)
                .filter(|v| v.is_finite())
                .collect();
            Model::Autoencoder(ae)
        }
        Algorithm::IsolationForest(s) => {
            Model::IsolationForest(IsolationForest::fit(x_fit.view(), s))
        }
        Algorithm::Kmeans(s) => Model::Kmeans(KMeans::fit(x_fit.view(), s).0),
    };
    // The threshold: on validation; only NO_SPLIT (which has none) falls back to train.
    // The train rows are already preprocessed unless `normal_only` kept fewer of them.
    let train_x;
    let (thr_rows, thr_split, thr_x) = if !splits.val.is_empty() {
        (&splits.val, "validation", &x_val)
    } else if fit_rows.len() == splits.train.len() {
        (&splits.train, "train", &x_fit)
    } else {
        train_x = pre.apply(table, Some(&splits.train))?.0;
        (&splits.train, "train", &train_x)
    };
    let thr_scores = score_rows(&model, thr_x)?;
    let thr_labels: Option<Vec<bool>> =
        labels.map(|l| thr_rows.iter().map(|&r| l[r].is_some()).collect());
    let need_labels = |m: &str| {
        MlError::options(format!(
            "threshold_method = '{m}' needs labels: set labels_topic"
        ))
    };
    let threshold = match opts.threshold {
        ThresholdMethod::Quantile => Threshold {
            value: eval::quantile(&thr_scores, 1.0 - opts.contamination),
            method: "quantile".into(),
            split: thr_split.into(),
            contamination: Some(opts.contamination),
        },
        ThresholdMethod::BestF1 => Threshold {
            value: eval::best_f1_threshold(
                thr_labels
                    .as_deref()
                    .ok_or_else(|| need_labels("best_f1"))?,
                &thr_scores,
            ),
            method: "best_f1".into(),
            split: thr_split.into(),
            contamination: None,
        },
        ThresholdMethod::TargetPrecision(p) => Threshold {
            value: eval::target_precision_threshold(
                thr_labels
                    .as_deref()
                    .ok_or_else(|| need_labels("target_precision"))?,
                &thr_scores,
                p,
            ),
            method: "target_precision".into(),
            split: thr_split.into(),
            contamination: None,
        },
    };
    if !threshold.value.is_finite() {
        return Err(MlError::data(format!(
            "no threshold could be picked by {} on the {thr_split} split of {range} (no anomalous rows there?)",
            threshold.method
        )));
    }
    // Every reported number: on test.
    let metrics = match labels {
        Some(l) if !splits.test.is_empty() => {
            let (x_test, _) = pre.apply(table, Some(&splits.test))?;
            let scores = score_rows(&model, &x_test)?;
            let test_labels: Vec<Option<String>> =
                splits.test.iter().map(|&r| l[r].clone()).collect();
            let mut types: Vec<&str> = l.iter().flatten().map(String::as_str).collect();
            types.sort_unstable();
            types.dedup();
            Some(Evaluation::new(
                &scores,
                &test_labels,
                threshold.value,
                &types,
            ))
        }
        _ => None,
    };
    let fit_seconds = started.elapsed().as_secs_f64();
    let epochs = val_loss.len().max(1);
    let rows_per_sec = fit_rows.len() as f64 * epochs as f64 / fit_seconds.max(1e-9);
    progress(TrainEvent::Fitted {
        rows: fit_rows.len(),
        seconds: fit_seconds,
    });
    let manifest = Manifest {
        format_version: FORMAT_VERSION.into(),
        algorithm: opts.model_type.name().into(),
        options: opts.resolved.clone(),
        features: table.features.clone(),
        preprocessing: Some(pre),
        architecture: Some(model.architecture()),
        output: OutputSpec {
            tensor: "score".into(),
            direction: Direction::HigherIsAnomalous,
            kind: OutputKind::Score,
        },
        threshold,
        metrics,
        training: Some(TrainingInfo {
            range,
            rows: table.len() as u64,
            fitted_rows: fit_rows.len() as u64,
            splits: splits.info.clone(),
            time_field: opts.split_col.clone(),
            event_id_field: opts.event_id_col.clone(),
            labels_topic: opts.labels_topic.clone(),
            val_loss,
        }),
        seed: Some(opts.seed),
        created_at: crate::time::format_ms(now_ms()),
        stats: json!({ "fit_seconds": fit_seconds, "rows_per_sec": rows_per_sec }),
        blobs: Vec::new(),
    };
    let mut blobs = BTreeMap::new();
    blobs.insert(WEIGHTS.to_string(), model.to_safetensors()?);
    Ok(Trained {
        bundle: Bundle::new(manifest, blobs),
        fit_seconds,
        rows_per_sec,
    })
}

/// A bundle ready to score: preprocessing, model, threshold.
#[derive(Debug, Clone)]
pub struct Scorer {
    /// The preprocessing (`None`: features go in as they are).
    pub preprocessing: Option<Preprocessing>,
    /// The model.
    pub model: Model,
    /// The threshold.
    pub threshold: f64,
}

impl Scorer {
    /// Loads the native model of a (verified) bundle.
    ///
    /// # Errors
    /// Not a native bundle, weights that do not load.
    pub fn new(bundle: &Bundle) -> MlResult<Self> {
        Ok(Scorer {
            preprocessing: bundle.manifest.preprocessing.clone(),
            model: bundle.model()?,
            threshold: bundle.manifest.threshold.value,
        })
    }

    /// Scores the rows of `table` (features in model order).
    ///
    /// # Errors
    /// Columns that do not match the model.
    pub fn score(&self, table: &Table) -> MlResult<Vec<f64>> {
        let p = self.preprocessing.as_ref().ok_or_else(|| {
            MlError::data("a bundle without preprocessing cannot score a table of features")
        })?;
        score_rows(&self.model, &p.apply(table, None)?.0)
    }
}

/// Evaluates a bundle again: on the test split of its own range (same rows, same split), or
/// on every row of `range` when one is given.
///
/// # Errors
/// No labels topic, an empty range, read errors.
pub async fn evaluate(
    log: &dyn Log,
    bundle: &Bundle,
    range: Option<(&str, RangeSpec)>,
    labels_topic: Option<&str>,
) -> MlResult<Evaluation> {
    let m = &bundle.manifest;
    let training = m
        .training
        .as_ref()
        .ok_or_else(|| MlError::bundle("the bundle has no training information"))?;
    let labels_topic = labels_topic
        .or(training.labels_topic.as_deref())
        .ok_or_else(|| MlError::options("evaluation needs labels: give a labels topic"))?;
    let labels = LabelIndex::read(log, labels_topic).await?;
    let scorer = Scorer::new(bundle)?;
    let read_opts = ReadOptions {
        time_field: training.time_field.clone(),
        event_id_field: training.event_id_field.clone(),
    };
    let (table, rows) = match range {
        None => {
            let frozen = data::freeze(
                log,
                &training.range.topic,
                &RangeSpec::Offsets(training.range.partitions.clone()),
            )
            .await?;
            let table = data::read(log, &frozen, &m.features, &read_opts).await?;
            let s = split::split(
                &table,
                training.splits.method,
                training.splits.eval_fraction,
                &frozen.to_string(),
            )?;
            if s.info.method == SplitMethod::NoSplit {
                return Err(MlError::options(
                    "the model was trained with data_split_method = 'NO_SPLIT': it has no test split; give a range to evaluate on",
                ));
            }
            (table, s.test)
        }
        Some((topic, spec)) => {
            let frozen = data::freeze(log, topic, &spec).await?;
            let table = data::read(log, &frozen, &m.features, &read_opts).await?;
            let n = table.len();
            (table, (0..n).collect())
        }
    };
    let t = table.take(&rows);
    let scores = scorer.score(&t)?;
    let row_labels = labels.label_rows(&t);
    let mut types: Vec<String> = row_labels.iter().flatten().cloned().collect();
    types.sort_unstable();
    types.dedup();
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    Ok(Evaluation::new(
        &scores,
        &row_labels,
        scorer.threshold,
        &types,
    ))
}
