//! Model options, named as BigQuery ML names them where it has a name (`model_type`,
//! `hidden_units`, `activation_fn`, `batch_size`, `max_iterations`, `learn_rate`,
//! `early_stop`, `min_rel_progress`, `num_clusters`, `kmeans_init_method`,
//! `data_split_method`, `data_split_col`, `data_split_eval_fraction`, `contamination`), given
//! as a map of JSON values (the CLI's `--option k=v`, later SQL's `OPTIONS (…)`). Unknown keys
//! and model types are refused with the valid ones listed; the resolved options, defaults
//! filled in, are what the manifest stores.

use crate::error::{MlError, MlResult};
use crate::iforest::ForestSettings;
use crate::kmeans::{Init, KMeansSettings};
use crate::nn::{Activation, TrainSettings};
use crate::preprocess::{Impute, PreprocessOptions};
use crate::split::SplitMethod;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The native algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    /// Dense autoencoder.
    Autoencoder,
    /// Isolation forest.
    IsolationForest,
    /// k-means.
    Kmeans,
}

impl ModelType {
    /// All, in order.
    pub const ALL: [ModelType; 3] = [
        ModelType::Autoencoder,
        ModelType::IsolationForest,
        ModelType::Kmeans,
    ];

    /// `autoencoder`, `isolation_forest`, `kmeans`.
    pub fn name(self) -> &'static str {
        match self {
            ModelType::Autoencoder => "autoencoder",
            ModelType::IsolationForest => "isolation_forest",
            ModelType::Kmeans => "kmeans",
        }
    }

    /// Parses a name (any case).
    ///
    /// # Errors
    /// An unknown name, listing the valid ones.
    pub fn parse(s: &str) -> MlResult<Self> {
        ModelType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                MlError::options(format!(
                    "unknown model_type {s:?} (valid: {})",
                    ModelType::ALL.map(ModelType::name).join(", ")
                ))
            })
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            ModelType::Autoencoder => &[
                "hidden_units",
                "activation_fn",
                "batch_size",
                "max_iterations",
                "learn_rate",
                "early_stop",
                "min_rel_progress",
                "patience",
                "train_on",
            ],
            ModelType::IsolationForest => &["num_trees", "max_samples"],
            ModelType::Kmeans => &[
                "num_clusters",
                "kmeans_init_method",
                "max_iterations",
                "min_rel_progress",
            ],
        }
    }
}

const COMMON: &[&str] = &[
    "model_type",
    "seed",
    "data_split_method",
    "data_split_col",
    "data_split_eval_fraction",
    "contamination",
    "threshold_method",
    "target_precision",
    "impute",
    "impute_value",
    "log_transform",
    "signed_log1p",
    "standardize",
    "event_id_col",
    "labels_topic",
];

/// How the threshold is chosen on the validation split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdMethod {
    /// The (1 − contamination) quantile of validation scores.
    Quantile,
    /// The best F1 on labelled validation rows.
    BestF1,
    /// The lowest threshold reaching this precision on labelled validation rows.
    TargetPrecision(f64),
}

/// Rows the autoencoder trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainOn {
    /// Every train row.
    All,
    /// Train rows labelled normal (needs labels).
    NormalOnly,
}

/// The algorithm's own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Algorithm {
    /// Autoencoder.
    Autoencoder {
        /// Hidden layer widths.
        hidden: Vec<usize>,
        /// Activation per hidden layer.
        activations: Vec<Activation>,
        /// Optimisation.
        settings: TrainSettings,
        /// Rows trained on.
        train_on: TrainOn,
    },
    /// Isolation forest.
    IsolationForest(ForestSettings),
    /// k-means.
    Kmeans(KMeansSettings),
}

/// Every option, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// The model type.
    pub model_type: ModelType,
    /// Seed of everything random.
    pub seed: u64,
    /// Split method.
    pub split_method: SplitMethod,
    /// The event-time field (`None`: record timestamp).
    pub split_col: Option<String>,
    /// Validation + test fraction.
    pub eval_fraction: f64,
    /// Share of anomalies expected (the quantile threshold).
    pub contamination: f64,
    /// Threshold method.
    pub threshold: ThresholdMethod,
    /// Preprocessing.
    pub preprocess: PreprocessOptions,
    /// The event id field.
    pub event_id_col: String,
    /// Topic of labels (the simulator's label stream) for evaluation and `normal_only`.
    pub labels_topic: Option<String>,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// What the manifest stores: every key with its value.
    pub resolved: BTreeMap<String, Value>,
}

struct Reader<'a> {
    map: &'a BTreeMap<String, Value>,
    resolved: BTreeMap<String, Value>,
}

impl Reader<'_> {
    fn raw(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }
    fn bad(key: &str, v: &Value, want: &str) -> MlError {
        MlError::options(format!("option {key} = {v}: expected {want}"))
    }
    fn f64(
        &mut self,
        key: &str,
        default: f64,
        valid: impl Fn(f64) -> bool,
        want: &str,
    ) -> MlResult<f64> {
        let v = match self.raw(key) {
            None => default,
            Some(v) => {
                let x = v
                    .as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                x.filter(|x| valid(*x))
                    .ok_or_else(|| Self::bad(key, v, want))?
            }
        };
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }
    fn usize(&mut self, key: &str, default: usize, min: usize, max: usize) -> MlResult<usize> {
        let v = match self.raw(key) {
            None => default,
            Some(v) => {
                let x = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
                x.map(|x| x as usize)
                    .filter(|x| (min..=max).contains(x))
                    .ok_or_else(|| Self::bad(key, v, &format!("an integer in {min}..={max}")))?
            }
        };
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }
    fn bool(&mut self, key: &str, default: bool) -> MlResult<bool> {
        let v = match self.raw(key) {
            None => default,
            Some(v) => v
                .as_bool()
                .or_else(|| v.as_str().and_then(|s| s.to_ascii_lowercase().parse().ok()))
                .ok_or_else(|| Self::bad(key, v, "true or false"))?,
        };
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }
    fn string(&mut self, key: &str, default: Option<&str>) -> MlResult<Option<String>> {
        let v = match self.raw(key) {
            None => default.map(str::to_string),
            Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(Self::bad(key, v, "a string")),
        };
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }
    /// A list: a JSON array, or a comma-separated string.
    fn list(&mut self, key: &str, default: &[&str]) -> MlResult<Vec<String>> {
        let v: Vec<String> = match self.raw(key) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(Self::bad(key, other, "a list of names or numbers")),
                })
                .collect::<MlResult<_>>()?,
            Some(Value::String(s)) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            Some(Value::Number(n)) => vec![n.to_string()],
            Some(v) => return Err(Self::bad(key, v, "a list")),
        };
        self.resolved.insert(key.into(), json!(v));
        Ok(v)
    }
}

impl ModelOptions {
    /// Resolves `map` (keys case-insensitive).
    ///
    /// # Errors
    /// A missing or unknown `model_type`, an unknown key (listing the valid ones for the
    /// type), a value of the wrong kind or out of range.
    pub fn parse(map: &BTreeMap<String, Value>) -> MlResult<Self> {
        let map: BTreeMap<String, Value> = map
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let model_type = match map.get("model_type") {
            Some(Value::String(s)) => ModelType::parse(s)?,
            Some(v) => {
                return Err(MlError::options(format!(
                    "option model_type = {v}: expected a string"
                )));
            }
            None => {
                return Err(MlError::options(format!(
                    "option model_type is required (valid: {})",
                    ModelType::ALL.map(ModelType::name).join(", ")
                )));
            }
        };
        let valid: Vec<&str> = COMMON.iter().chain(model_type.keys()).copied().collect();
        if let Some(k) = map.keys().find(|k| !valid.contains(&k.as_str())) {
            let mut sorted = valid.clone();
            sorted.sort_unstable();
            return Err(MlError::options(format!(
                "unknown option {k:?} for model_type '{}' (valid: {})",
                model_type.name(),
                sorted.join(", ")
            )));
        }
        let mut r = Reader {
            map: &map,
            resolved: BTreeMap::new(),
        };
        r.resolved
            .insert("model_type".into(), json!(model_type.name()));
        let seed = r.usize("seed", 42, 0, usize::MAX)? as u64;
        let split_method = match r
            .string("data_split_method", Some("SEQ"))?
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("SEQ") => SplitMethod::Seq,
            Some("NO_SPLIT") => SplitMethod::NoSplit,
            other => {
                return Err(MlError::options(format!(
                    "option data_split_method = {other:?}: valid are 'SEQ', 'NO_SPLIT'"
                )));
            }
        };
        let split_col = r.string("data_split_col", None)?;
        let eval_fraction = r.f64(
            "data_split_eval_fraction",
            0.2,
            |x| x > 0.0 && x < 1.0,
            "a number between 0 and 1",
        )?;
        let contamination = r.f64(
            "contamination",
            0.01,
            |x| x > 0.0 && x < 0.5,
            "a number between 0 and 0.5",
        )?;
        let threshold = match r.string("threshold_method", Some("quantile"))?.as_deref() {
            Some("quantile") => ThresholdMethod::Quantile,
            Some("best_f1") => ThresholdMethod::BestF1,
            Some("target_precision") => ThresholdMethod::TargetPrecision(r.f64(
                "target_precision",
                0.9,
                |x| x > 0.0 && x <= 1.0,
                "a number in (0, 1]",
            )?),
            other => {
                return Err(MlError::options(format!(
                    "option threshold_method = {other:?}: valid are 'quantile', 'best_f1', 'target_precision'"
                )));
            }
        };
        let impute = match r.string("impute", Some("mean"))?.as_deref() {
            Some("mean") => Impute::Mean,
            Some("constant") => {
                Impute::Constant(r.f64("impute_value", 0.0, f64::is_finite, "a number")?)
            }
            other => {
                return Err(MlError::options(format!(
                    "option impute = {other:?}: valid are 'mean', 'constant'"
                )));
            }
        };
        let preprocess = PreprocessOptions {
            impute,
            log: r.list("log_transform", &[])?,
            signed_log1p: r.list("signed_log1p", &[])?,
            standardize: r.bool("standardize", true)?,
        };
        let event_id_col = r
            .string("event_id_col", Some("event_id"))?
            .unwrap_or_else(|| "event_id".into());
        let labels_topic = r.string("labels_topic", None)?;
        let algorithm = match model_type {
            ModelType::Autoencoder => {
                let hidden = r
                    .list("hidden_units", &["16", "8", "16"])?
                    .iter()
                    .map(|h| h.parse::<usize>().ok().filter(|h| (1..=4096).contains(h)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        MlError::options(
                            "option hidden_units: expected a list of layer widths in 1..=4096",
                        )
                    })?;
                let names = r.list("activation_fn", &["relu"])?;
                let mut activations = names
                    .iter()
                    .map(|a| {
                        Activation::parse(a).ok_or_else(|| {
                            MlError::options(format!(
                                "option activation_fn: unknown {a:?} (valid: {})",
                                Activation::NAMES
                            ))
                        })
                    })
                    .collect::<MlResult<Vec<_>>>()?;
                if activations.len() == 1 {
                    activations = vec![activations[0]; hidden.len()];
                } else if activations.len() != hidden.len() {
                    return Err(MlError::options(format!(
                        "option activation_fn: one activation, or one per hidden layer ({} layers, {} given)",
                        hidden.len(),
                        activations.len()
                    )));
                }
                let settings = TrainSettings {
                    batch_size: r.usize("batch_size", 256, 1, 1 << 20)?,
                    epochs: r.usize("max_iterations", 20, 1, 100_000)?,
                    learn_rate: r.f64(
                        "learn_rate",
                        0.001,
                        |x| x > 0.0 && x < 10.0,
                        "a positive number",
                    )? as f32,
                    early_stop: r.bool("early_stop", true)?,
                    min_rel_progress: r.f64(
                        "min_rel_progress",
                        0.001,
                        |x| (0.0..1.0).contains(&x),
                        "a number in [0, 1)",
                    )?,
                    patience: r.usize("patience", 3, 1, 1000)?,
                    seed,
                };
                let train_on = match r.string("train_on", Some("all"))?.as_deref() {
                    Some("all") => TrainOn::All,
                    Some("normal_only") => TrainOn::NormalOnly,
                    other => {
                        return Err(MlError::options(format!(
                            "option train_on = {other:?}: valid are 'all', 'normal_only'"
                        )));
                    }
                };
                Algorithm::Autoencoder {
                    hidden,
                    activations,
                    settings,
                    train_on,
                }
            }
            ModelType::IsolationForest => Algorithm::IsolationForest(ForestSettings {
                num_trees: r.usize("num_trees", 100, 1, 10_000)?,
                max_samples: r.usize("max_samples", 256, 2, 1 << 20)?,
                seed,
            }),
            ModelType::Kmeans => Algorithm::Kmeans(KMeansSettings {
                num_clusters: r.usize("num_clusters", 8, 1, 10_000)?,
                init: match r.string("kmeans_init_method", Some("kmeans++"))?.as_deref() {
                    Some("kmeans++" | "kmeans_plus_plus") => Init::KmeansPlusPlus,
                    Some("random") => Init::Random,
                    other => {
                        return Err(MlError::options(format!(
                            "option kmeans_init_method = {other:?}: valid are 'kmeans++', 'random'"
                        )));
                    }
                },
                max_iterations: r.usize("max_iterations", 50, 1, 100_000)?,
                min_rel_progress: r.f64(
                    "min_rel_progress",
                    1e-4,
                    |x| (0.0..1.0).contains(&x),
                    "a number in [0, 1)",
                )?,
                seed,
            }),
        };
        Ok(ModelOptions {
            model_type,
            seed,
            split_method,
            split_col,
            eval_fraction,
            contamination,
            threshold,
            preprocess,
            event_id_col,
            labels_topic,
            algorithm,
            resolved: r.resolved,
        })
    }
}

/// Parses the CLI's `key=value`: the value as JSON when it is JSON, else as a string.
///
/// # Errors
/// No `=`.
pub fn parse_option(text: &str) -> MlResult<(String, Value)> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| MlError::options(format!("option {text:?}: expected key=value")))?;
    let v = v.trim();
    let value =
        serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.trim_matches('\'').to_string()));
    Ok((k.trim().to_ascii_lowercase(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[&str]) -> MlResult<ModelOptions> {
        let map = pairs.iter().map(|p| parse_option(p).unwrap()).collect();
        ModelOptions::parse(&map)
    }

    #[test]
    fn defaults_resolve_and_bad_input_names_the_valid_values() {
        let o = opts(&["model_type=autoencoder"]).unwrap();
        let Algorithm::Autoencoder {
            hidden, settings, ..
        } = &o.algorithm
        else {
            panic!()
        };
        assert_eq!(hidden, &[16, 8, 16]);
        assert_eq!(settings.batch_size, 256);
        assert_eq!(o.resolved["hidden_units"], json!(["16", "8", "16"]));
        let e = opts(&["model_type=random_forest"]).unwrap_err().to_string();
        assert!(e.contains("autoencoder, isolation_forest, kmeans"), "{e}");
        let e = opts(&["model_type=kmeans", "num_trees=3"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option \"num_trees\"") && e.contains("num_clusters"),
            "{e}"
        );
        let e = opts(&["model_type=kmeans", "num_clusters=zero"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("num_clusters"), "{e}");
        let o = opts(&[
            "model_type=isolation_forest",
            "num_trees=50",
            "data_split_method=NO_SPLIT",
        ])
        .unwrap();
        assert_eq!(o.split_method, SplitMethod::NoSplit);
        assert!(matches!(
            o.algorithm,
            Algorithm::IsolationForest(ForestSettings { num_trees: 50, .. })
        ));
        let o = opts(&[
            "model_type=autoencoder",
            "hidden_units=[8,4,8]",
            "activation_fn=tanh",
        ])
        .unwrap();
        assert!(
            matches!(&o.algorithm, Algorithm::Autoencoder { activations, .. } if activations.len() == 3)
        );
    }
}
