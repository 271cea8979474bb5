//! Preprocessing inside the model: fitted on the train split only, stored in the manifest,
//! applied unchanged at scoring.
//!
//! Per numeric column, in this order: **imputation** (NaN and NULL are both missing; filled
//! with the train mean of the raw values, or a constant), an optional **transform** (`log` =
//! ln(1 + x), refused at fit for a negative value; `signed_log1p` = sign(x)·ln(1 + |x|)),
//! then **standardisation** with the train mean and standard deviation of the transformed
//! values (a constant column gets scale 1). Per categorical column: **one-hot** over the
//! vocabulary seen in the train split (sorted); a missing value is all zeros, an unseen one
//! is all zeros and counted.

use crate::error::{MlError, MlResult};
use crate::table::{ColumnData, Table};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// How missing numbers are filled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method", content = "value")]
pub enum Impute {
    /// The train split's mean of the column.
    Mean,
    /// This value.
    Constant(f64),
}

/// A transform applied before standardisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// None.
    #[default]
    None,
    /// ln(1 + x), x ≥ 0.
    Log,
    /// sign(x) · ln(1 + |x|).
    SignedLog1p,
}

impl Transform {
    #[inline]
    fn apply(self, x: f64) -> f64 {
        match self {
            Transform::None => x,
            Transform::Log => x.ln_1p(),
            Transform::SignedLog1p => x.signum() * x.abs().ln_1p(),
        }
    }
}

/// What to fit (from the model's options).
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessOptions {
    /// How missing numbers are filled.
    pub impute: Impute,
    /// Columns that get `log`.
    pub log: Vec<String>,
    /// Columns that get `signed_log1p`.
    pub signed_log1p: Vec<String>,
    /// Whether numbers are standardised (default true).
    pub standardize: bool,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        PreprocessOptions {
            impute: Impute::Mean,
            log: Vec::new(),
            signed_log1p: Vec::new(),
            standardize: true,
        }
    }
}

/// The fitted transform of one input column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ColumnTransform {
    /// A number: fill, transform, `(x − mean) / scale`.
    Numeric {
        /// The column.
        name: String,
        /// The value a missing one becomes (raw units).
        fill: f64,
        /// The transform.
        transform: Transform,
        /// Train mean after the transform.
        mean: f64,
        /// Train standard deviation after the transform (1 for a constant column, or when
        /// standardisation is off).
        scale: f64,
    },
    /// A category: one output per vocabulary entry.
    OneHot {
        /// The column.
        name: String,
        /// The categories seen in the train split, sorted.
        vocabulary: Vec<String>,
    },
}

impl ColumnTransform {
    /// The column name.
    pub fn name(&self) -> &str {
        match self {
            ColumnTransform::Numeric { name, .. } | ColumnTransform::OneHot { name, .. } => name,
        }
    }

    /// Outputs it produces.
    pub fn width(&self) -> usize {
        match self {
            ColumnTransform::Numeric { .. } => 1,
            ColumnTransform::OneHot { vocabulary, .. } => vocabulary.len(),
        }
    }
}

/// The fitted preprocessing of a model: one transform per feature, in feature order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Per feature.
    pub columns: Vec<ColumnTransform>,
}

/// What applying the preprocessing counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransformStats {
    /// Missing values filled.
    pub missing: u64,
    /// Categories not in the vocabulary (encoded as all zeros).
    pub unseen_categories: u64,
    /// Negative values in a `log` column (treated as missing).
    pub out_of_domain: u64,
}

impl Preprocessing {
    /// Fits on the rows `train` of `table`.
    ///
    /// # Errors
    /// A negative value in a `log` column (naming column and position), a `log` or
    /// `signed_log1p` column that is not a numeric feature, or no train rows.
    pub fn fit(table: &Table, train: &[usize], opts: &PreprocessOptions) -> MlResult<Self> {
        if train.is_empty() {
            return Err(MlError::data("preprocessing: the train split has no rows"));
        }
        for name in opts.log.iter().chain(&opts.signed_log1p) {
            let numeric = table
                .features
                .iter()
                .zip(&table.columns)
                .any(|(f, c)| f.name == *name && matches!(c, ColumnData::Numeric(_)));
            if !numeric {
                return Err(MlError::options(format!(
                    "log transform of {name:?}: not a numeric feature of the model"
                )));
            }
        }
        let mut columns = Vec::with_capacity(table.columns.len());
        for (feature, col) in table.features.iter().zip(&table.columns) {
            let name = feature.name.clone();
            match col {
                ColumnData::Numeric(v) => {
                    let transform = if opts.log.contains(&name) {
                        Transform::Log
                    } else if opts.signed_log1p.contains(&name) {
                        Transform::SignedLog1p
                    } else {
                        Transform::None
                    };
                    let (mut sum, mut n) = (0.0f64, 0usize);
                    for &r in train {
                        let x = v[r];
                        if x.is_nan() {
                            continue;
                        }
                        if transform == Transform::Log && x < 0.0 {
                            return Err(MlError::data(format!(
                                "column {name:?} has the negative value {x} at {} and cannot take \
                                 the log transform (use signed_log1p)",
                                table.at(r)
                            )));
                        }
                        sum += x;
                        n += 1;
                    }
                    let fill = match opts.impute {
                        Impute::Constant(c) => c,
                        Impute::Mean if n > 0 => sum / n as f64,
                        Impute::Mean => 0.0,
                    };
                    if transform == Transform::Log && fill < 0.0 {
                        return Err(MlError::options(format!(
                            "column {name:?}: the imputed value {fill} is negative and cannot take \
                             the log transform"
                        )));
                    }
                    let value = |r: usize| {
                        let x = v[r];
                        transform.apply(if x.is_nan() { fill } else { x })
                    };
                    let mean = train.iter().map(|&r| value(r)).sum::<f64>() / train.len() as f64;
                    let var = train
                        .iter()
                        .map(|&r| (value(r) - mean).powi(2))
                        .sum::<f64>()
                        / train.len() as f64;
                    let std = var.sqrt();
                    let (mean, scale) = if !opts.standardize {
                        (0.0, 1.0)
                    } else if std > 1e-12 && std.is_finite() {
                        (mean, std)
                    } else {
                        (mean, 1.0)
                    };
                    columns.push(ColumnTransform::Numeric {
                        name,
                        fill,
                        transform,
                        mean,
                        scale,
                    });
                }
                ColumnData::Categorical(v) => {
                    let vocabulary: BTreeSet<&str> =
                        train.iter().filter_map(|&r| v[r].as_deref()).collect();
                    columns.push(ColumnTransform::OneHot {
                        name,
                        vocabulary: vocabulary.into_iter().map(str::to_string).collect(),
                    });
                }
            }
        }
        Ok(Preprocessing { columns })
    }

    /// Model inputs per row.
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnTransform::width).sum()
    }

    /// The names of the model inputs (`col` for a number, `col=value` per category).
    pub fn output_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.width());
        for c in &self.columns {
            match c {
                ColumnTransform::Numeric { name, .. } => out.push(name.clone()),
                ColumnTransform::OneHot { name, vocabulary } => {
                    out.extend(vocabulary.iter().map(|v| format!("{name}={v}")))
                }
            }
        }
        out
    }

    /// Applies the transform to `rows` of `table` (all rows when `None`), row-major.
    ///
    /// # Errors
    /// The table's columns do not match the features the preprocessing was fitted on.
    pub fn apply(
        &self,
        table: &Table,
        rows: Option<&[usize]>,
    ) -> MlResult<(Array2<f32>, TransformStats)> {
        if table.columns.len() != self.columns.len() {
            return Err(MlError::data(format!(
                "the model takes {} features, the input has {}",
                self.columns.len(),
                table.columns.len()
            )));
        }
        let n = rows.map_or(table.len(), <[usize]>::len);
        let width = self.width();
        let mut out = Array2::<f32>::zeros((n, width));
        let mut stats = TransformStats::default();
        let all: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all = (0..table.len()).collect();
                &all
            }
        };
        let data = out
            .as_slice_mut()
            .ok_or_else(|| MlError::data("internal: output not contiguous"))?;
        let mut at = 0usize;
        for (t, col) in self.columns.iter().zip(&table.columns) {
            match (t, col) {
                (
                    ColumnTransform::Numeric {
                        fill,
                        transform,
                        mean,
                        scale,
                        ..
                    },
                    ColumnData::Numeric(v),
                ) => {
                    let inv = 1.0 / scale;
                    for (i, &r) in rows.iter().enumerate() {
                        let mut x = v[r];
                        if x.is_nan() {
                            stats.missing += 1;
                            x = *fill;
                        } else if *transform == Transform::Log && x < 0.0 {
                            stats.out_of_domain += 1;
                            x = *fill;
                        }
                        data[i * width + at] = ((transform.apply(x) - mean) * inv) as f32;
                    }
                    at += 1;
                }
                (ColumnTransform::OneHot { vocabulary, .. }, ColumnData::Categorical(v)) => {
                    for (i, &r) in rows.iter().enumerate() {
                        match v[r].as_deref() {
                            None => stats.missing += 1,
                            Some(s) => match vocabulary.binary_search_by(|e| e.as_str().cmp(s)) {
                                Ok(k) => data[i * width + at + k] = 1.0,
                                Err(_) => stats.unseen_categories += 1,
                            },
                        }
                    }
                    at += vocabulary.len();
                }
                (t, _) => {
                    return Err(MlError::data(format!(
                        "feature {:?}: the input column has another type than at training",
                        t.name()
                    )));
                }
            }
        }
        Ok((out, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Feature;

    fn table() -> Table {
        let mut t = Table::from_rows(
            &["a", "b"],
            &[1.0, 10.0, 3.0, f64::NAN, 5.0, 30.0, 100.0, 40.0],
        );
        t.features.push(Feature::categorical("c"));
        t.columns.push(ColumnData::Categorical(vec![
            Some("x".into()),
            Some("y".into()),
            None,
            Some("z".into()),
        ]));
        t
    }

    #[test]
    fn fitted_on_train_rows_only() {
        let t = table();
        let p = Preprocessing::fit(&t, &[0, 1, 2], &PreprocessOptions::default()).unwrap();
        let ColumnTransform::Numeric { mean, scale, .. } = &p.columns[0] else {
            panic!()
        };
        assert!(
            (mean - 3.0).abs() < 1e-12,
            "row 3 (100) must not count: {mean}"
        );
        assert!((scale - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // b: the missing value is filled with the train mean of the others (20).
        let ColumnTransform::Numeric { fill, .. } = &p.columns[1] else {
            panic!()
        };
        assert_eq!(*fill, 20.0);
        let ColumnTransform::OneHot { vocabulary, .. } = &p.columns[2] else {
            panic!()
        };
        assert_eq!(vocabulary, &["x", "y"]);
        assert_eq!(p.width(), 4);
        let (x, stats) = p.apply(&t, None).unwrap();
        assert_eq!(stats.missing, 2);
        assert_eq!(stats.unseen_categories, 1, "z was not in train");
        assert_eq!(x.row(3).to_vec()[2..], [0.0, 0.0]);
        assert_eq!(x.row(0).to_vec()[2..], [1.0, 0.0]);
        assert_eq!(x[[1, 1]], 0.0, "a filled mean standardises to 0");
    }

    #[test]
    fn log_refuses_negative_values_naming_the_column() {
        let t = Table::from_rows(&["amount"], &[1.0, -2.0, 3.0]);
        let opts = PreprocessOptions {
            log: vec!["amount".into()],
            ..Default::default()
        };
        let e = Preprocessing::fit(&t, &[0, 1, 2], &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"amount\"") && e.contains("offset 1") && e.contains("signed_log1p"),
            "{e}"
        );
        let opts = PreprocessOptions {
            signed_log1p: vec!["amount".into()],
            ..Default::default()
        };
        let p = Preprocessing::fit(&t, &[0, 1, 2], &opts).unwrap();
        let (x, _) = p.apply(&t, None).unwrap();
        assert!(x[[1, 0]] < 0.0);
    }

    #[test]
    fn constant_imputation_and_no_standardisation() {
        let t = Table::from_rows(&["a"], &[f64::NAN, 2.0]);
        let opts = PreprocessOptions {
            impute: Impute::Constant(-1.0),
            standardize: false,
            ..Default::default()
        };
        let p = Preprocessing::fit(&t, &[0, 1], &opts).unwrap();
        let (x, _) = p.apply(&t, None).unwrap();
        assert_eq!(x.as_slice().unwrap(), &[-1.0, 2.0]);
    }
}
