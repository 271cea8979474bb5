//! The native anomaly models on the simulator's sensor faults at default magnitude, end to
//! end: fleet → embedded log (telemetry + labels) → bounded replay → SEQ split by event
//! time → fit → threshold on validation → metrics on test.
//!
//! What per-event rows can show: a **spike** is visible in the one event it touches, so a
//! model of single events must rank it high; the gradual faults (overheating, tyre leak,
//! battery failure) start below the noise and a stuck sensor repeats a plausible value, so
//! on per-event rows they are not separable (ROC-AUC 0.65 – 0.9, stuck sensor < 0.5, for
//! every model, scikit-learn's included): they need windowed per-car features (SQL part 2).
//! The isolation forest is held to scikit-learn's `IsolationForest` on the very same rows
//! instead of 0.95: it reaches ≈ 0.70 there, and so does ours.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{LABELS, SENSORS, TELEMETRY};
use fleetwatch_core::Log;
use fleetwatch_ml::data::{self, RangeSpec, ReadOptions};
use fleetwatch_ml::eval::Evaluation;
use fleetwatch_ml::labels::LabelIndex;
use fleetwatch_ml::table::{ColumnData, Feature};
use fleetwatch_ml::train::{TrainJob, train};
use fleetwatch_sim::AnomalyType;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

/// scikit-learn 1.9.1 `IsolationForest(n_estimators=100, max_samples=256)` fitted on the
/// train split of [`spike_fleet`]'s rows, ROC-AUC on its test split, mean of
/// `random_state` 0 – 4 (0.679 – 0.720): `tests/fixtures/iforest_reference.py`.
const SKLEARN_IFOREST_AUC: f64 = 0.7049;

fn job(model_type: &str, extra: &[(&str, Value)]) -> TrainJob {
    let mut options: BTreeMap<String, Value> = BTreeMap::new();
    options.insert("model_type".into(), json!(model_type));
    options.insert("data_split_col".into(), json!("ts"));
    options.insert("labels_topic".into(), json!(LABELS));
    for (k, v) in extra {
        options.insert((*k).into(), v.clone());
    }
    TrainJob {
        topic: TELEMETRY.into(),
        range: RangeSpec::All,
        features: SENSORS.iter().map(|s| Feature::numeric(*s)).collect(),
        options,
    }
}

/// 1,000 cars for 5 minutes, 1 % of events in spike episodes (default magnitude).
async fn spike_fleet(log: &dyn Log) {
    let (events, labels) =
        common::write_fleet_with(log, 1000, 300, 1000, 0.01, vec![AnomalyType::Spike], 7).await;
    assert_eq!(events, 300_000);
    assert!(labels > 1000, "{labels} spike episodes");
}

fn show(model: &str, m: &Evaluation) {
    eprintln!(
        "{model}: ROC-AUC {:.4}, AP {:.4} (prevalence {:.4}), P {:.3} R {:.3} at the threshold, {} test rows",
        m.roc_auc, m.average_precision, m.prevalence, m.precision, m.recall, m.rows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_finds_spikes() {
    let (log, _dir) = common::embedded();
    spike_fleet(log.as_ref()).await;
    for (model, extra, target) in [
        ("autoencoder", vec![("max_iterations", json!(10))], 0.95),
        (
            "autoencoder",
            vec![
                ("max_iterations", json!(10)),
                ("train_on", json!("normal_only")),
            ],
            0.95,
        ),
        ("kmeans", vec![], 0.95),
        ("isolation_forest", vec![], SKLEARN_IFOREST_AUC - 0.04),
    ] {
        let trained = train(log.as_ref(), &job(model, &extra), &mut |_| {})
            .await
            .unwrap();
        let m = trained
            .bundle
            .manifest
            .metrics
            .as_ref()
            .expect("labelled: metrics on test");
        show(model, m);
        assert!(
            m.positives > 100,
            "{model}: the test split holds too few spikes ({})",
            m.positives
        );
        assert!(
            m.roc_auc >= target,
            "{model}: ROC-AUC {} < {target}",
            m.roc_auc
        );
        if model == "isolation_forest" {
            assert!(
                m.roc_auc <= SKLEARN_IFOREST_AUC + 0.04,
                "isolation forest: {} far above scikit-learn's {SKLEARN_IFOREST_AUC}: the reference is stale",
                m.roc_auc
            );
        }
        assert_eq!(m.per_type["spike"].positives, m.positives);
    }
}

/// Writes the rows of [`spike_fleet`] to `$FLEETWATCH_DUMP` (CSV: ts, the sensors, label) for
/// `tests/fixtures/iforest_reference.py`. Run by hand:
/// `FLEETWATCH_DUMP=/tmp/sim.csv cargo test -p fleetwatch-ml --test sim_faults -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the scikit-learn reference's input; run by hand"]
async fn dump_spike_rows() {
    let path = std::env::var("FLEETWATCH_DUMP").expect("set FLEETWATCH_DUMP to the CSV to write");
    let (log, _dir) = common::embedded();
    spike_fleet(log.as_ref()).await;
    let fr = data::freeze(log.as_ref(), TELEMETRY, &RangeSpec::All)
        .await
        .unwrap();
    let feats: Vec<Feature> = SENSORS.iter().map(|s| Feature::numeric(*s)).collect();
    let opts = ReadOptions {
        time_field: Some("ts".into()),
        event_id_field: "event_id".into(),
    };
    let t = data::read(log.as_ref(), &fr, &feats, &opts).await.unwrap();
    let labels = LabelIndex::read(log.as_ref(), LABELS)
        .await
        .unwrap()
        .label_rows(&t);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "ts,{},label", SENSORS.join(",")).unwrap();
    for r in 0..t.len() {
        write!(f, "{}", t.ts[r]).unwrap();
        for c in &t.columns {
            if let ColumnData::Numeric(v) = c {
                write!(f, ",{}", v[r]).unwrap();
            }
        }
        writeln!(f, ",{}", labels[r].as_deref().unwrap_or("")).unwrap();
    }
}
