//! The model bundle: `manifest.json` plus blobs (`weights.safetensors` for native models,
//! the original `.onnx` for imported ones). Nothing executable.
//!
//! The manifest says everything needed to use the model: `format_version` (readers refuse
//! another major), algorithm and resolved options, features with dtypes, the fitted
//! preprocessing, the architecture, the output spec `{tensor, direction, kind}`, the
//! threshold, the test metrics, the exact training ranges and split boundaries, the seed,
//! `created_at`, and the size and sha256 of every blob.
//!
//! [`Bundle::digest`] is the bundle's identity: the sha256 of the manifest without
//! `created_at` and `stats` (wall times, rows/s), which includes every blob's sha256. The same
//! seed and range give the same digest.

use crate::data::FrozenRange;
use crate::error::{MlError, MlResult};
use crate::eval::{Evaluation, nan_null};
use crate::model::{Architecture, Model};
use crate::preprocess::Preprocessing;
use crate::split::SplitInfo;
use crate::table::Feature;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The format this code writes.
pub const FORMAT_VERSION: &str = "1.0";

/// The blob of a native model's weights.
pub const WEIGHTS: &str = "weights.safetensors";

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which way the output points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger = more anomalous.
    HigherIsAnomalous,
    /// Smaller = more anomalous (negated to give a score).
    LowerIsAnomalous,
}

/// What the output tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// An anomaly score.
    Score,
    /// A probability of the anomalous class.
    Probability,
    /// A predicted class.
    Label,
    /// A reconstruction of the input (score = mean squared error).
    Reconstruction,
}

/// How the model's output becomes `ANOMALY_SCORE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// The output tensor's name.
    pub tensor: String,
    /// Its direction.
    pub direction: Direction,
    /// Its kind.
    pub kind: OutputKind,
}

/// The threshold of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Rows scoring above it are anomalous.
    #[serde(with = "nan_null")]
    pub value: f64,
    /// `quantile`, `best_f1`, `target_precision`, `given`.
    pub method: String,
    /// The split it was picked on (`validation`; `train` under `NO_SPLIT`).
    pub split: String,
    /// The contamination of the quantile method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contamination: Option<f64>,
}

/// Where the training rows came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The exact range read.
    pub range: FrozenRange,
    /// Rows read.
    pub rows: u64,
    /// Rows the model was fitted on (after `train_on`).
    pub fitted_rows: u64,
    /// The split boundaries.
    pub splits: SplitInfo,
    /// The event-time field (`None`: the record timestamp).
    pub time_field: Option<String>,
    /// The event id field.
    pub event_id_field: String,
    /// The labels topic, if any.
    pub labels_topic: Option<String>,
    /// Validation loss per epoch (autoencoder).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_loss: Vec<f64>,
}

/// A blob's size and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    /// File name in the bundle.
    pub name: String,
    /// Bytes.
    pub bytes: u64,
    /// Hex sha256.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `major.minor`.
    pub format_version: String,
    /// `autoencoder`, `isolation_forest`, `kmeans` (later `onnx`).
    pub algorithm: String,
    /// The resolved options.
    pub options: BTreeMap<String, Value>,
    /// Input features.
    pub features: Vec<Feature>,
    /// The fitted preprocessing (`None`: the model takes the features as they are).
    pub preprocessing: Option<Preprocessing>,
    /// The native model's shape.
    pub architecture: Option<Architecture>,
    /// The output.
    pub output: OutputSpec,
    /// The threshold.
    pub threshold: Threshold,
    /// Metrics on the test split (`None` without one, or without labels).
    pub metrics: Option<Evaluation>,
    /// Training data.
    pub training: Option<TrainingInfo>,
    /// The seed.
    pub seed: Option<u64>,
    /// When the bundle was made (ISO-8601 UTC); not part of the digest.
    pub created_at: String,
    /// Timings (not part of the digest).
    #[serde(default)]
    pub stats: Value,
    /// Every blob.
    pub blobs: Vec<BlobInfo>,
}

/// A manifest and its blobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The manifest.
    pub manifest: Manifest,
    /// Blob bytes by name.
    pub blobs: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// A bundle of `manifest` (its `blobs` list is filled from `blobs`).
    pub fn new(mut manifest: Manifest, blobs: BTreeMap<String, Vec<u8>>) -> Self {
        manifest.blobs = blobs
            .iter()
            .map(|(name, b)| BlobInfo {
                name: name.clone(),
                bytes: b.len() as u64,
                sha256: sha256_hex(b),
            })
            .collect();
        Bundle { manifest, blobs }
    }

    /// The manifest as stored (pretty JSON).
    ///
    /// # Errors
    /// Never in practice (serde_json on plain data).
    pub fn manifest_json(&self) -> MlResult<Vec<u8>> {
        serde_json::to_vec_pretty(&self.manifest)
            .map_err(|e| MlError::bundle(format!("manifest: {e}")))
    }

    /// The bundle's identity (see the module doc).
    pub fn digest(&self) -> String {
        let mut m = self.manifest.clone();
        m.created_at = String::new();
        m.stats = Value::Null;
        sha256_hex(&serde_json::to_vec(&m).unwrap_or_default())
    }

    /// Checks the format version and every blob against the manifest.
    ///
    /// # Errors
    /// Unknown major version, a blob missing, of another size or digest.
    pub fn verify(&self) -> MlResult<()> {
        check_format(&self.manifest.format_version)?;
        for b in &self.manifest.blobs {
            let bytes = self
                .blobs
                .get(&b.name)
                .ok_or_else(|| MlError::bundle(format!("blob {} is missing", b.name)))?;
            if bytes.len() as u64 != b.bytes {
                return Err(MlError::bundle(format!(
                    "blob {}: {} bytes, the manifest says {}",
                    b.name,
                    bytes.len(),
                    b.bytes
                )));
            }
            let got = sha256_hex(bytes);
            if got != b.sha256 {
                return Err(MlError::bundle(format!(
                    "blob {}: sha256 {got} does not match the manifest's {}",
                    b.name, b.sha256
                )));
            }
        }
        Ok(())
    }

    /// The native model in the bundle.
    ///
    /// # Errors
    /// No architecture (not a native model), weights that do not load.
    pub fn model(&self) -> MlResult<Model> {
        let arch = self.manifest.architecture.as_ref().ok_or_else(|| {
            MlError::bundle(format!(
                "a {} bundle has no native model",
                self.manifest.algorithm
            ))
        })?;
        let w = self
            .blobs
            .get(WEIGHTS)
            .ok_or_else(|| MlError::bundle(format!("blob {WEIGHTS} is missing")))?;
        Model::from_safetensors(arch, w)
    }

    /// Writes `manifest.json` and the blobs into `dir` (created), each through a temporary
    /// file renamed into place and synced.
    ///
    /// # Errors
    /// I/O, naming the file.
    pub fn write_dir(&self, dir: &Path) -> MlResult<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MlError::io(format!("creating {}", dir.display()), e))?;
        for (name, bytes) in &self.blobs {
            write_synced(&dir.join(name), bytes)?;
        }
        // The manifest last: a directory with a manifest is complete.
        write_synced(&dir.join("manifest.json"), &self.manifest_json()?)
    }

    /// Reads a bundle written by [`Bundle::write_dir`] and verifies it.
    ///
    /// # Errors
    /// I/O, a bad manifest, a blob that does not match.
    pub fn read_dir(dir: &Path) -> MlResult<Self> {
        let path = dir.join("manifest.json");
        let bytes = std::fs::read(&path)
            .map_err(|e| MlError::io(format!("reading {}", path.display()), e))?;
        let manifest = parse_manifest(&bytes)?;
        let mut blobs = BTreeMap::new();
        for b in &manifest.blobs {
            if b.name.contains('/') || b.name.contains("..") {
                return Err(MlError::bundle(format!(
                    "blob name {:?} is not a plain file name",
                    b.name
                )));
            }
            let p = dir.join(&b.name);
            blobs.insert(
                b.name.clone(),
                std::fs::read(&p)
                    .map_err(|e| MlError::io(format!("reading {}", p.display()), e))?,
            );
        }
        let bundle = Bundle { manifest, blobs };
        bundle.verify()?;
        Ok(bundle)
    }
}

/// Refuses a format version whose major this code does not know.
///
/// # Errors
/// Another major, or not `major.minor`.
pub fn check_format(version: &str) -> MlResult<()> {
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(1) => Ok(()),
        _ => Err(MlError::bundle(format!(
            "bundle format_version {version:?} is not supported (this build reads 1.x)"
        ))),
    }
}

/// Parses `manifest.json`, checking the format version first.
///
/// # Errors
/// Not JSON, unknown major version, fields missing.
pub fn parse_manifest(bytes: &[u8]) -> MlResult<Manifest> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| MlError::bundle(format!("manifest.json: {e}")))?;
    manifest_from_value(v)
}

/// A manifest already parsed as JSON (the registry's events carry it inline), checking the
/// format version first.
///
/// # Errors
/// Unknown major version, fields missing.
pub fn manifest_from_value(v: Value) -> MlResult<Manifest> {
    let version = v
        .get("format_version")
        .and_then(Value::as_str)
        .unwrap_or("missing");
    check_format(version)?;
    serde_json::from_value(v).map_err(|e| MlError::bundle(format!("manifest.json: {e}")))
}

fn write_synced(path: &Path, bytes: &[u8]) -> MlResult<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let io = |e| MlError::io(format!("writing {}", path.display()), e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
