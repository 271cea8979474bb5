//! Training's promises: the same seed and range give the same bundle sha256 (from the log,
//! every model type); preprocessing is fitted on the train split only; the threshold comes
//! from validation, never from test; an empty range or a non-numeric feature is refused
//! with a message naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{LABELS, SENSORS, TELEMETRY};
use fleetwatch_ml::bundle::Bundle;
use fleetwatch_ml::data::{FrozenRange, PartitionRange, RangeSpec};
use fleetwatch_ml::options::ModelOptions;
use fleetwatch_ml::preprocess::ColumnTransform;
use fleetwatch_ml::table::{Feature, Table};
use fleetwatch_ml::train::{Scorer, TrainJob, fit_table, train};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn options(model_type: &str, extra: &[(&str, Value)]) -> BTreeMap<String, Value> {
    let mut o: BTreeMap<String, Value> = BTreeMap::new();
    o.insert("model_type".into(), json!(model_type));
    for (k, v) in extra {
        o.insert((*k).into(), v.clone());
    }
    o
}

fn job(model_type: &str, extra: &[(&str, Value)]) -> TrainJob {
    TrainJob {
        topic: TELEMETRY.into(),
        range: RangeSpec::All,
        features: SENSORS.iter().map(|s| Feature::numeric(*s)).collect(),
        options: options(model_type, extra),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_and_range_give_the_same_sha256() {
    let (log, _dir) = common::embedded();
    common::write_fleet(log.as_ref(), 20, 300, 0.02, 3).await;
    for (model, extra) in [
        (
            "autoencoder",
            vec![
                ("max_iterations", json!(3)),
                ("data_split_col", json!("ts")),
            ],
        ),
        ("isolation_forest", vec![("num_trees", json!(20))]),
        (
            "kmeans",
            vec![("num_clusters", json!(4)), ("labels_topic", json!(LABELS))],
        ),
    ] {
        let a = train(log.as_ref(), &job(model, &extra), &mut |_| {})
            .await
            .unwrap()
            .bundle;
        // Rows arriving after the first training are outside the range it froze: training
        // again on that frozen range reads exactly the same rows.
        if model == "autoencoder" {
            common::write_fleet(log.as_ref(), 5, 30, 0.0, 99).await;
        }
        let frozen = a.manifest.training.as_ref().unwrap().range.clone();
        let again = TrainJob {
            range: RangeSpec::Offsets(frozen.partitions.clone()),
            ..job(model, &extra)
        };
        let b = train(log.as_ref(), &again, &mut |_| {})
            .await
            .unwrap()
            .bundle;
        assert_eq!(
            a.digest(),
            b.digest(),
            "{model}: same seed, same range, different bundle"
        );
        assert_eq!(
            a.manifest.blobs, b.manifest.blobs,
            "{model}: the weights' sha256 differ"
        );
        let mut other_seed = extra.clone();
        other_seed.push(("seed", json!(7)));
        let c = TrainJob {
            range: RangeSpec::Offsets(frozen.partitions.clone()),
            ..job(model, &other_seed)
        };
        let c = train(log.as_ref(), &c, &mut |_| {}).await.unwrap().bundle;
        assert_ne!(
            a.manifest.blobs, c.manifest.blobs,
            "{model}: the seed must matter"
        );
        // The bundle written to disk and read back has the same digest.
        let dir = tempfile::tempdir().unwrap();
        a.write_dir(dir.path()).unwrap();
        assert_eq!(Bundle::read_dir(dir.path()).unwrap().digest(), a.digest());
    }
}

/// 10,000 rows in time order of two correlated features; `shift_val`/`shift_test` move the
/// validation (80 – 90 %) and test (last 10 %) rows.
fn shifted_table(shift_val: f64, shift_test: f64) -> Table {
    let mut values = Vec::new();
    for i in 0..10_000 {
        let x = ((i * 7919) % 1000) as f64 / 100.0;
        let y = 2.0 * x + ((i * 104_729) % 97) as f64 / 97.0;
        let s = if i >= 9000 {
            shift_test
        } else if i >= 8000 {
            shift_val
        } else {
            0.0
        };
        values.extend([x + s, y + s]);
    }
    Table::from_rows(&["x", "y"], &values)
}

fn fit(model_type: &str, table: &Table) -> Bundle {
    let extra = match model_type {
        "autoencoder" => vec![("max_iterations", json!(5))],
        "isolation_forest" => vec![("num_trees", json!(30))],
        _ => vec![],
    };
    let opts = ModelOptions::parse(&options(model_type, &extra)).unwrap();
    let range = FrozenRange {
        topic: "t".into(),
        partitions: vec![PartitionRange {
            partition: 0,
            start: 0,
            end: table.len() as i64,
        }],
    };
    fit_table(table, None, &opts, range, &mut |_| {})
        .unwrap()
        .bundle
}

fn means(b: &Bundle) -> Vec<f64> {
    b.manifest
        .preprocessing
        .as_ref()
        .unwrap()
        .columns
        .iter()
        .map(|c| match c {
            ColumnTransform::Numeric { mean, .. } => *mean,
            ColumnTransform::OneHot { .. } => f64::NAN,
        })
        .collect()
}

#[test]
fn preprocessing_is_fitted_on_train_only_and_the_threshold_on_validation() {
    for model in ["autoencoder", "isolation_forest", "kmeans"] {
        let base = fit(model, &shifted_table(0.0, 0.0));
        let test_shifted = fit(model, &shifted_table(0.0, 50.0));
        // The scaler's mean is the train rows' mean: a shifted test split leaves it unchanged.
        let train_mean_x: f64 = (0..8000)
            .map(|i| ((i * 7919) % 1000) as f64 / 100.0)
            .sum::<f64>()
            / 8000.0;
        assert!(
            (means(&base)[0] - train_mean_x).abs() < 1e-9,
            "{model}: stored mean is not the train mean"
        );
        assert_eq!(
            means(&base),
            means(&test_shifted),
            "{model}: the test split moved the scaler"
        );
        // Nothing fitted sees the test rows: same weights, same threshold.
        assert_eq!(
            base.manifest.blobs, test_shifted.manifest.blobs,
            "{model}: test rows changed the weights"
        );
        assert_eq!(
            base.manifest.threshold, test_shifted.manifest.threshold,
            "{model}: the threshold moved with the test split"
        );
        assert_eq!(base.manifest.threshold.split, "validation");
        // ... while the threshold does follow the validation rows: the 99th percentile of
        // their scores, recomputed here from the bundle.
        let val_shifted = fit(model, &shifted_table(50.0, 0.0));
        assert_ne!(
            val_shifted.manifest.threshold.value, base.manifest.threshold.value,
            "{model}"
        );
        let v = shifted_table(50.0, 0.0);
        let scores = Scorer::new(&val_shifted)
            .unwrap()
            .score(&v.take(&(8000..9000).collect::<Vec<_>>()))
            .unwrap();
        let q = fleetwatch_ml::eval::quantile(&scores, 0.99);
        assert!(
            (q - val_shifted.manifest.threshold.value).abs() <= 1e-9 * q.abs().max(1.0),
            "{model}: {q} vs {}",
            val_shifted.manifest.threshold.value
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranges_and_features_are_named() {
    let (log, _dir) = common::embedded();
    common::write_fleet(log.as_ref(), 3, 20, 0.0, 1).await;
    // An empty time range.
    let mut j = job("kmeans", &[]);
    j.range = RangeSpec::parse("time:2020-01-01T00:00:00Z..2020-01-02T00:00:00Z").unwrap();
    let e = train(log.as_ref(), &j, &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(TELEMETRY) && e.contains("empty"), "{e}");
    // A string field read as a number: column and where.
    let mut j = job("kmeans", &[]);
    j.features.push(Feature::numeric("vin"));
    let e = train(log.as_ref(), &j, &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("vin") && e.contains("offset"), "{e}");
    // ... but as a category it is fine (one-hot).
    let mut j = job("kmeans", &[("num_clusters", json!(2))]);
    j.features
        .push(Feature::parse("powertrain:string").unwrap());
    train(log.as_ref(), &j, &mut |_| {}).await.unwrap();
    // Unknown options and model types list the valid ones.
    let e = train(
        log.as_ref(),
        &job("kmeans", &[("num_trees", json!(3))]),
        &mut |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("num_trees") && e.contains("num_clusters"), "{e}");
    let e = train(log.as_ref(), &job("svm", &[]), &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("autoencoder") && e.contains("isolation_forest") && e.contains("kmeans"),
        "{e}"
    );
    // An unknown topic.
    let mut j = job("kmeans", &[]);
    j.topic = "nope".into();
    assert!(train(log.as_ref(), &j, &mut |_| {}).await.is_err());
    // A split too small to hold validation rows.
    let mut j = job("kmeans", &[]);
    j.range = RangeSpec::parse("0:0-1").unwrap();
    let e = train(log.as_ref(), &j, &mut |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(TELEMETRY), "{e}");
}

/// Bounded replay on the Kafka backend (tansu): an event-time bound freezes each partition at
/// `offset_for_time`, later appends are never read, and the stored offsets read the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_replay_on_kafka() {
    let addr = tokio::task::spawn_blocking(fleetwatch_testkit::tansu::bootstrap)
        .await
        .unwrap();
    let log: std::sync::Arc<dyn fleetwatch_core::Log> =
        std::sync::Arc::new(fleetwatch_kafka::KafkaConfig::at(addr).build().unwrap());
    common::write_fleet(log.as_ref(), 20, 120, 0.02, 5).await;
    let mid = fleetwatch_sim::DEFAULT_START_MS + 60_000;
    let mut j = job("kmeans", &[("num_clusters", json!(3))]);
    j.range = RangeSpec::Time {
        from_ms: None,
        until_ms: Some(mid),
    };
    let a = train(log.as_ref(), &j, &mut |_| {}).await.unwrap().bundle;
    let t = a.manifest.training.as_ref().unwrap();
    // 20 cars × 60 ticks before the bound.
    assert_eq!(t.range.records(), 1200, "{}", t.range);
    assert_eq!(t.range.partitions.len(), common::PARTITIONS as usize);
    common::write_fleet(log.as_ref(), 20, 30, 0.0, 6).await; // more rows, also before `mid`
    let again = TrainJob {
        range: RangeSpec::Offsets(t.range.partitions.clone()),
        ..j.clone()
    };
    let b = train(log.as_ref(), &again, &mut |_| {})
        .await
        .unwrap()
        .bundle;
    assert_eq!(
        a.digest(),
        b.digest(),
        "the stored range reads the same rows on Kafka"
    );
    // The bound is a position (Kafka's offset_for_time: the first record at or after it), so
    // late rows appended behind it stay out even of a new freeze; `all` sees them.
    let c = train(log.as_ref(), &j, &mut |_| {}).await.unwrap().bundle;
    assert_eq!(c.manifest.training.as_ref().unwrap().range.records(), 1200);
    let all = train(
        log.as_ref(),
        &TrainJob {
            range: RangeSpec::All,
            ..j.clone()
        },
        &mut |_| {},
    )
    .await
    .unwrap()
    .bundle;
    assert_eq!(
        all.manifest.training.as_ref().unwrap().range.records(),
        20 * 120 + 20 * 30
    );
}

#[test]
fn bundles_refuse_an_unknown_major_and_damaged_blobs() {
    let b = fit("kmeans", &shifted_table(0.0, 0.0));
    let dir = tempfile::tempdir().unwrap();
    b.write_dir(dir.path()).unwrap();
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\"format_version\": \"1.0\""), "{text}");
    // Nothing executable: a JSON manifest and safetensors weights, each blob with its sha256.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["manifest.json", "weights.safetensors"]);
    // A newer minor reads; another major is refused by name.
    std::fs::write(
        &manifest,
        text.replace("\"format_version\": \"1.0\"", "\"format_version\": \"1.4\""),
    )
    .unwrap();
    Bundle::read_dir(dir.path()).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"format_version\": \"1.0\"", "\"format_version\": \"2.0\""),
    )
    .unwrap();
    let e = Bundle::read_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("2.0") && e.contains("1.x"), "{e}");
    // A flipped byte in the weights: the sha256 check names the blob.
    std::fs::write(&manifest, &text).unwrap();
    let w = dir.path().join("weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&w, &bytes).unwrap();
    let e = Bundle::read_dir(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("sha256"),
        "{e}"
    );
}
