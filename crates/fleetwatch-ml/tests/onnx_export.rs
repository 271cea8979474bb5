//! An exported autoencoder scores in onnxruntime (the reference ONNX runtime, from PyPI)
//! what fleetwatch scores natively: missing values, a `log` column with a negative value,
//! `signed_log1p` and standardisation included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fleetwatch_ml::data::{FrozenRange, PartitionRange};
use fleetwatch_ml::options::ModelOptions;
use fleetwatch_ml::table::Table;
use fleetwatch_ml::train::{Scorer, fit_table};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Command;

fn python() -> String {
    std::env::var("FLEETWATCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn table(rows: usize, seed: u64) -> Table {
    let mut rng = fleetwatch_sim::rng::Rng::seed_from_u64(seed);
    let mut next = move || rng.f64();
    let names = ["speed", "amount", "delta", "temp"];
    let mut v = Vec::with_capacity(rows * 4);
    for i in 0..rows {
        let speed = next() * 120.0;
        let amount = (next() * 4.0).exp() * 3.0; // skewed, positive: log
        let delta = (next() - 0.5) * 400.0; // both signs: signed_log1p
        let temp = 70.0 + speed * 0.2 + next() * 3.0;
        v.extend([speed, amount, delta, temp]);
        if i % 97 == 5 {
            let k = v.len() - 4 + i % 4;
            v[k] = f64::NAN;
        }
    }
    Table::from_rows(&names, &v)
}

#[test]
fn onnxruntime_scores_equal_native_scores() {
    let train = table(5000, 1);
    let mut o: BTreeMap<String, Value> = BTreeMap::new();
    o.insert("model_type".into(), json!("autoencoder"));
    o.insert("hidden_units".into(), json!([6, 2, 6]));
    o.insert("activation_fn".into(), json!(["relu", "tanh", "sigmoid"]));
    o.insert("max_iterations".into(), json!(3));
    o.insert("log_transform".into(), json!(["amount"]));
    o.insert("signed_log1p".into(), json!(["delta"]));
    let opts = ModelOptions::parse(&o).unwrap();
    let range = FrozenRange {
        topic: "t".into(),
        partitions: vec![PartitionRange {
            partition: 0,
            start: 0,
            end: 5000,
        }],
    };
    let bundle = fit_table(&train, None, &opts, range, &mut |_| {})
        .unwrap()
        .bundle;

    // Rows to score: fresh ones, with a negative amount (out of the log's domain: filled) and
    // missing values.
    let mut test = table(300, 2);
    if let fleetwatch_ml::table::ColumnData::Numeric(a) = &mut test.columns[1] {
        a[3] = -5.0;
        a[4] = f64::NAN;
    }
    let native = Scorer::new(&bundle).unwrap().score(&test).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("ae.onnx");
    std::fs::write(&model, fleetwatch_ml::onnx::export(&bundle).unwrap()).unwrap();
    let input = dir.path().join("x.json");
    let rows: Vec<Vec<Value>> = (0..test.len())
        .map(|r| {
            test.columns
                .iter()
                .map(|c| match c {
                    fleetwatch_ml::table::ColumnData::Numeric(v) if v[r].is_nan() => json!("nan"),
                    fleetwatch_ml::table::ColumnData::Numeric(v) => json!(v[r]),
                    fleetwatch_ml::table::ColumnData::Categorical(_) => unreachable!(),
                })
                .collect()
        })
        .collect();
    std::fs::write(&input, serde_json::to_vec(&rows).unwrap()).unwrap();
    let script = r#"
import json, sys
import numpy as np, onnxruntime as ort
x = np.array([[float(v) for v in r] for r in json.load(open(sys.argv[2]))], dtype=np.float32)
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
ins, outs = s.get_inputs(), s.get_outputs()
assert [i.name for i in ins] == ["features"] and ins[0].shape[1] == 4, [(i.name, i.shape) for i in ins]
assert [o.name for o in outs] == ["score"], [(o.name, o.shape) for o in outs]
print(json.dumps([float(v) for v in s.run(None, {"features": x})[0]]))
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .arg(&model)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "onnxruntime failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), native.len());
    for (i, (a, b)) in native.iter().zip(&theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1e-3),
            "row {i}: native {a}, onnxruntime {b}"
        );
    }
    // Every score is a real number (the filled rows too) and they differ (not a constant).
    assert!(native.iter().all(|s| s.is_finite()));
    assert!(native.iter().any(|&s| (s - native[0]).abs() > 1e-6));
}

#[test]
fn only_autoencoders_with_numeric_features_export() {
    let train = table(1000, 3);
    let mut o: BTreeMap<String, Value> = BTreeMap::new();
    o.insert("model_type".into(), json!("kmeans"));
    let opts = ModelOptions::parse(&o).unwrap();
    let range = FrozenRange {
        topic: "t".into(),
        partitions: vec![PartitionRange {
            partition: 0,
            start: 0,
            end: 1000,
        }],
    };
    let b = fit_table(&train, None, &opts, range, &mut |_| {})
        .unwrap()
        .bundle;
    let e = fleetwatch_ml::onnx::export(&b).unwrap_err().to_string();
    assert!(e.contains("autoencoder") && e.contains("kmeans"), "{e}");
}
