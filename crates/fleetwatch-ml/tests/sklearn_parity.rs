//! ROC-AUC and average precision equal scikit-learn's (1.9.1: `roc_auc_score`,
//! `average_precision_score`) to 1e-9 on a committed score file with ties and several
//! anomaly types (`tests/fixtures/make_scores.py` made both files).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fleetwatch_ml::eval::{Evaluation, average_precision, roc_auc};
use serde_json::Value;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn rows() -> (Vec<f64>, Vec<Option<String>>) {
    let text = fixture("scores.csv");
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for line in text.lines().skip(1) {
        let (s, l) = line.split_once(',').unwrap();
        scores.push(s.parse::<f64>().unwrap());
        labels.push((!l.is_empty()).then(|| l.to_string()));
    }
    (scores, labels)
}

fn close(what: &str, ours: f64, theirs: &Value) {
    let theirs = theirs.as_f64().unwrap();
    assert!(
        (ours - theirs).abs() <= 1e-9,
        "{what}: fleetwatch {ours} vs scikit-learn {theirs}"
    );
}

#[test]
fn roc_auc_and_average_precision_equal_scikit_learn() {
    let expected: Value = serde_json::from_str(&fixture("sklearn_expected.json")).unwrap();
    let (scores, labels) = rows();
    assert_eq!(scores.len(), 5000);
    let pos: Vec<bool> = labels.iter().map(Option::is_some).collect();
    // There are ties: the step-wise grouping matters.
    let mut distinct = scores.clone();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    assert!(
        distinct.len() < scores.len() / 2,
        "the fixture must have many tied scores"
    );

    close(
        "roc_auc",
        roc_auc(&pos, &scores),
        &expected["all"]["roc_auc"],
    );
    close(
        "average_precision",
        average_precision(&pos, &scores),
        &expected["all"]["average_precision"],
    );

    // The same through the evaluation, overall and per type (negatives = normals only).
    let types = ["overheating", "spike", "stuck_sensor"];
    let ev = Evaluation::new(&scores, &labels, 1.0, &types);
    close(
        "evaluation roc_auc",
        ev.roc_auc,
        &expected["all"]["roc_auc"],
    );
    close(
        "evaluation average_precision",
        ev.average_precision,
        &expected["all"]["average_precision"],
    );
    for t in types {
        let m = &ev.per_type[t];
        close(
            &format!("{t} roc_auc"),
            m.roc_auc,
            &expected["per_type"][t]["roc_auc"],
        );
        close(
            &format!("{t} average_precision"),
            m.average_precision,
            &expected["per_type"][t]["average_precision"],
        );
    }
    let positives = pos.iter().filter(|&&p| p).count() as u64;
    assert_eq!(ev.positives, positives);
    assert!((ev.prevalence - positives as f64 / 5000.0).abs() < 1e-12);
}
