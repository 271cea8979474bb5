//! Evaluation: ROC-AUC, average precision (scikit-learn's step-wise PR-AUC), threshold
//! choice, confusion matrix, score histogram. Scores are "higher = more anomalous"; a row is
//! flagged when its score is **above** the threshold.
//!
//! ROC-AUC and average precision group tied scores as scikit-learn does
//! (`roc_auc_score`, `average_precision_score`), so they agree with it to rounding.

use serde::{Deserialize, Serialize};

/// Rows sorted by descending score, cut at each distinct score: cumulative (true positives,
/// false positives) at each cut.
fn cuts(labels: &[bool], scores: &[f64]) -> Vec<(f64, f64)> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for (i, &r) in idx.iter().enumerate() {
        if labels[r] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last = i + 1 == idx.len() || scores[idx[i + 1]] != scores[r];
        if last {
            out.push((tp, fp));
        }
    }
    out
}

/// Area under the ROC curve; NaN when one class is absent.
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> f64 {
    let c = cuts(labels, scores);
    let Some(&(p, n)) = c.last() else {
        return f64::NAN;
    };
    if p == 0.0 || n == 0.0 {
        return f64::NAN;
    }
    let (mut area, mut prev) = (0.0f64, (0.0f64, 0.0f64));
    for &(tp, fp) in &c {
        area += (fp - prev.1) * (tp + prev.0) / 2.0;
        prev = (tp, fp);
    }
    area / (p * n)
}

/// Average precision: Σ (Rₙ − Rₙ₋₁) Pₙ over the distinct score cuts, descending; NaN without
/// positives.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> f64 {
    let c = cuts(labels, scores);
    let Some(&(p, _)) = c.last() else {
        return f64::NAN;
    };
    if p == 0.0 {
        return f64::NAN;
    }
    let (mut ap, mut prev_recall) = (0.0f64, 0.0f64);
    for &(tp, fp) in &c {
        let recall = tp / p;
        let precision = tp / (tp + fp);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    ap
}

/// The `q`-quantile of `values` with linear interpolation (numpy's default); NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

/// Counts at a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confusion {
    /// Anomalies flagged.
    pub tp: u64,
    /// Normals flagged.
    pub fp: u64,
    /// Normals not flagged.
    pub tn: u64,
    /// Anomalies missed.
    pub r#fn: u64,
}

impl Confusion {
    /// Counts rows with `score > threshold` as flagged.
    pub fn at(labels: &[bool], scores: &[f64], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&l, &s) in labels.iter().zip(scores) {
            match (l, s > threshold) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.r#fn += 1,
            }
        }
        c
    }
    /// tp / (tp + fp); NaN when nothing is flagged.
    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp) as f64
    }
    /// tp / (tp + fn); NaN without anomalies.
    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.r#fn) as f64
    }
    /// The harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// The threshold with the best F1 on labelled rows: a cut between distinct scores
/// (flagging every row scored at or above the chosen one); NaN without positives.
pub fn best_f1_threshold(labels: &[bool], scores: &[f64]) -> f64 {
    threshold_by(labels, scores, |tp, fp, p| {
        let (prec, rec) = (tp / (tp + fp), tp / p);
        if prec + rec == 0.0 {
            0.0
        } else {
            2.0 * prec * rec / (prec + rec)
        }
    })
}

/// The lowest threshold whose precision reaches `target` (so recall is as high as it can be
/// at that precision); NaN when no cut reaches it.
pub fn target_precision_threshold(labels: &[bool], scores: &[f64], target: f64) -> f64 {
    let best = threshold_by(labels, scores, |tp, fp, p| {
        if tp / (tp + fp) >= target {
            tp / p
        } else {
            -1.0
        }
    });
    let c = Confusion::at(labels, scores, best);
    if c.precision() >= target {
        best
    } else {
        f64::NAN
    }
}

fn threshold_by(labels: &[bool], scores: &[f64], objective: impl Fn(f64, f64, f64) -> f64) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let p = labels.iter().filter(|&&l| l).count() as f64;
    if p == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut best, mut best_t) = (f64::NEG_INFINITY, f64::NAN);
    for (i, &r) in idx.iter().enumerate() {
        if labels[r] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let next = idx.get(i + 1).map(|&n| scores[n]);
        if next == Some(scores[r]) {
            continue;
        }
        let v = objective(tp, fp, p);
        if v > best {
            best = v;
            // Halfway to the next lower score, so `score > t` flags exactly these rows.
            best_t = match next {
                Some(n) => (scores[r] + n) / 2.0,
                None => scores[r] - (scores[r].abs() * 1e-9).max(1e-12),
            };
        }
    }
    best_t
}

/// A histogram of scores, anomalies and normals counted apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin edges, `bins + 1` of them.
    pub edges: Vec<f64>,
    /// Rows labelled normal (or unlabelled) per bin.
    pub normal: Vec<u64>,
    /// Rows labelled anomalous per bin.
    pub anomalous: Vec<u64>,
}

impl Histogram {
    /// `bins` equal-width bins between the lowest and highest score.
    pub fn new(labels: &[bool], scores: &[f64], bins: usize) -> Self {
        let bins = bins.max(1);
        let lo = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (lo.min(0.0), lo.max(0.0) + 1.0)
        };
        let width = (hi - lo) / bins as f64;
        let edges = (0..=bins).map(|i| lo + width * i as f64).collect();
        let mut h = Histogram {
            edges,
            normal: vec![0; bins],
            anomalous: vec![0; bins],
        };
        for (&l, &s) in labels.iter().zip(scores) {
            let b = (((s - lo) / width) as usize).min(bins - 1);
            if l {
                h.anomalous[b] += 1;
            } else {
                h.normal[b] += 1;
            }
        }
        h
    }
}

/// `f64` fields that may be NaN: written as JSON `null`, read back as NaN.
pub mod nan_null {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises NaN as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    /// Reads `null` as NaN.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// Metrics of one anomaly type: positives = rows of that type, negatives = normal rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeMetrics {
    /// Rows of this type.
    pub positives: u64,
    /// ROC-AUC (NaN without positives).
    #[serde(with = "nan_null")]
    pub roc_auc: f64,
    /// Average precision.
    #[serde(with = "nan_null")]
    pub average_precision: f64,
    /// Share of this type's rows flagged at the threshold.
    #[serde(with = "nan_null")]
    pub recall: f64,
}

/// The evaluation of a model on labelled rows (the test split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows evaluated.
    pub rows: u64,
    /// Anomalous rows.
    pub positives: u64,
    /// positives / rows: the average precision of a random scorer.
    #[serde(with = "nan_null")]
    pub prevalence: f64,
    /// ROC-AUC.
    #[serde(with = "nan_null")]
    pub roc_auc: f64,
    /// Average precision (PR-AUC, step-wise).
    #[serde(with = "nan_null")]
    pub average_precision: f64,
    /// The threshold the counts below use.
    #[serde(with = "nan_null")]
    pub threshold: f64,
    /// Precision at the threshold.
    #[serde(with = "nan_null")]
    pub precision: f64,
    /// Recall at the threshold.
    #[serde(with = "nan_null")]
    pub recall: f64,
    /// F1 at the threshold.
    #[serde(with = "nan_null")]
    pub f1: f64,
    /// Counts at the threshold.
    pub confusion: Confusion,
    /// Scores, anomalies and normals apart.
    pub histogram: Histogram,
    /// Per anomaly type.
    pub per_type: std::collections::BTreeMap<String, TypeMetrics>,
    /// Things to know (a type without positives, no labels at all).
    pub warnings: Vec<String>,
}

impl Evaluation {
    /// Evaluates `scores` against per-row anomaly types (`None` = normal) at `threshold`;
    /// `types` lists the types to report (each gets a row, NaN and a warning without
    /// positives).
    pub fn new(scores: &[f64], labels: &[Option<String>], threshold: f64, types: &[&str]) -> Self {
        let is_pos: Vec<bool> = labels.iter().map(Option::is_some).collect();
        let positives = is_pos.iter().filter(|&&p| p).count() as u64;
        let confusion = Confusion::at(&is_pos, scores, threshold);
        let mut warnings = Vec::new();
        if positives == 0 {
            warnings.push(
                "no anomalous rows in the evaluated split: ROC-AUC and average precision are NaN"
                    .to_string(),
            );
        }
        let mut names: Vec<String> = types.iter().map(|s| s.to_string()).collect();
        for l in labels.iter().flatten() {
            if !names.contains(l) {
                names.push(l.clone());
            }
        }
        let mut per_type = std::collections::BTreeMap::new();
        for name in names {
            let (mut l, mut s) = (Vec::new(), Vec::new());
            for (lab, &sc) in labels.iter().zip(scores) {
                match lab {
                    None => {
                        l.push(false);
                        s.push(sc);
                    }
                    Some(t) if *t == name => {
                        l.push(true);
                        s.push(sc);
                    }
                    Some(_) => {}
                }
            }
            let pos = l.iter().filter(|&&p| p).count() as u64;
            if pos == 0 {
                warnings.push(format!(
                    "anomaly type {name}: no positives in the evaluated split, its metrics are NaN"
                ));
            }
            let c = Confusion::at(&l, &s, threshold);
            per_type.insert(
                name,
                TypeMetrics {
                    positives: pos,
                    roc_auc: roc_auc(&l, &s),
                    average_precision: average_precision(&l, &s),
                    recall: c.recall(),
                },
            );
        }
        Evaluation {
            rows: scores.len() as u64,
            positives,
            prevalence: positives as f64 / scores.len() as f64,
            roc_auc: roc_auc(&is_pos, scores),
            average_precision: average_precision(&is_pos, scores),
            threshold,
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            confusion,
            histogram: Histogram::new(&is_pos, scores, 20),
            per_type,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_by_hand() {
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75,
        // average_precision_score(...) = 0.8333…
        let l = [false, false, true, true];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!((roc_auc(&l, &s) - 0.75).abs() < 1e-12);
        assert!((average_precision(&l, &s) - 5.0 / 6.0).abs() < 1e-12);
        // Ties: one cut for equal scores.
        let s = [0.5, 0.5, 0.5, 0.5];
        assert_eq!(roc_auc(&l, &s), 0.5);
        assert_eq!(average_precision(&l, &s), 0.5);
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_nan());
    }

    #[test]
    fn thresholds() {
        let l = [false, false, false, true, true];
        let s = [0.1, 0.2, 0.6, 0.5, 0.9];
        let t = best_f1_threshold(&l, &s);
        let c = Confusion::at(&l, &s, t);
        assert_eq!((c.tp, c.fp, c.r#fn), (2, 1, 0), "t = {t}");
        let t = target_precision_threshold(&l, &s, 1.0);
        let c = Confusion::at(&l, &s, t);
        assert_eq!((c.tp, c.fp), (1, 0), "t = {t}");
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 1.0), 3.0);
    }

    #[test]
    fn histogram_counts_every_row() {
        let h = Histogram::new(&[true, false, false], &[1.0, 0.0, 0.5], 4);
        assert_eq!(h.anomalous, [0, 0, 0, 1]);
        assert_eq!(h.normal, [1, 0, 1, 0]);
        assert_eq!(h.edges.len(), 5);
    }

    #[test]
    fn a_type_without_positives_is_nan_with_a_warning() {
        let labels = vec![
            None,
            Some("spike".to_string()),
            None,
            Some("spike".to_string()),
        ];
        let ev = Evaluation::new(
            &[0.1, 0.9, 0.2, 0.8],
            &labels,
            0.5,
            &["spike", "stuck_sensor"],
        );
        assert_eq!(ev.per_type["spike"].roc_auc, 1.0);
        assert_eq!(ev.per_type["spike"].positives, 2);
        let stuck = &ev.per_type["stuck_sensor"];
        assert!(stuck.roc_auc.is_nan() && stuck.average_precision.is_nan());
        assert!(
            ev.warnings.iter().any(|w| w.contains("stuck_sensor")),
            "{:?}",
            ev.warnings
        );
        // NaN goes out as null, and comes back as NaN.
        let json = serde_json::to_value(&ev).unwrap();
        assert!(json["per_type"]["stuck_sensor"]["roc_auc"].is_null());
        let back: Evaluation = serde_json::from_value(json).unwrap();
        assert!(back.per_type["stuck_sensor"].roc_auc.is_nan());
        assert_eq!(ev.prevalence, 0.5);
        assert_eq!((ev.confusion.tp, ev.confusion.fp), (2, 0));
    }
}
