//! # fleetwatch-ml — models trained by replaying the log
//!
//! The native machine-learning core of fleetwatch:
//!
//! - [`data`]: **bounded replay** — a topic and a range (offsets, or an event-time bound)
//!   frozen at the start as exact `[start, end)` per partition, so training again with the
//!   stored range reads the same rows; records decoded into a [`table::Table`].
//! - [`split`]: three **time-ordered splits** by event time across partitions (train /
//!   validation / test), BigQuery ML's `data_split_*` options.
//! - [`preprocess`]: preprocessing **inside the model**, fitted on the train split only.
//! - [`nn`] (dense autoencoder, Adam), [`iforest`] (isolation forest), [`kmeans`]: the native
//!   algorithms, f32 on `ndarray`, every score "higher = more anomalous".
//! - [`eval`]: ROC-AUC, average precision, thresholds, confusion, histograms; [`labels`]
//!   joins the simulator's episode labels to rows by `event_id`.
//! - [`bundle`]: the model bundle — `manifest.json` plus weights in `safetensors`, sha256 of
//!   every blob; nothing executable.
//! - [`registry`]: the model registry in the log (topic `_fw_models`): versions, chunks,
//!   aliases, deletes, a local cache rebuilt from the topic.
//! - [`train`]: the whole training job, from options to a registered bundle.
//! - [`onnx`]: export of an autoencoder, preprocessing included, as an ONNX graph (written
//!   here: exporting needs no ONNX runtime).
//!
//! It depends on the `Log` trait and the row formats only: never on DataFusion or an ONNX
//! runtime (those sit in `fleetwatch-sql` and `fleetwatch-onnx`).

pub mod bundle;
pub mod data;
pub mod error;
pub mod eval;
pub mod iforest;
pub mod kmeans;
pub mod labels;
pub mod model;
pub mod nn;
pub mod onnx;
pub mod options;
pub mod preprocess;
pub mod registry;
pub mod split;
pub mod table;
pub mod time;
pub mod train;

pub use error::{MlError, MlResult};
