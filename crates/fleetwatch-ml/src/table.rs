//! Rows read for training or scoring, column by column, with where each came from.

use serde::{Deserialize, Serialize};

/// The type of a feature column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureType {
    /// A number (integers and decimals are read as `f64`); missing is NaN.
    Float64,
    /// A category, one-hot encoded by the model's preprocessing.
    String,
}

impl FeatureType {
    /// `float64` or `string`.
    pub fn name(self) -> &'static str {
        match self {
            FeatureType::Float64 => "float64",
            FeatureType::String => "string",
        }
    }
}

/// One input feature of a model: a field of the record value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// The field name (matched to the JSON field exactly, then ignoring ASCII case).
    pub name: String,
    /// Its type.
    pub dtype: FeatureType,
}

impl Feature {
    /// A numeric feature.
    pub fn numeric(name: impl Into<String>) -> Self {
        Feature {
            name: name.into(),
            dtype: FeatureType::Float64,
        }
    }

    /// A categorical feature.
    pub fn categorical(name: impl Into<String>) -> Self {
        Feature {
            name: name.into(),
            dtype: FeatureType::String,
        }
    }

    /// Parses `name` or `name:string` / `name:float64` (the CLI's `--features` items).
    ///
    /// # Errors
    /// An empty name or an unknown type.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, dtype) = match text.split_once(':') {
            None => (text, FeatureType::Float64),
            Some((n, "float64" | "double" | "number")) => (n, FeatureType::Float64),
            Some((n, "string" | "category" | "categorical")) => (n, FeatureType::String),
            Some((_, t)) => {
                return Err(format!(
                    "feature {text:?}: unknown type {t:?} (valid: float64, string)"
                ));
            }
        };
        if name.trim().is_empty() {
            return Err(format!("feature {text:?}: empty name"));
        }
        Ok(Feature {
            name: name.trim().to_string(),
            dtype,
        })
    }
}

/// The values of one column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers; missing (absent, `null`) is NaN.
    Numeric(Vec<f64>),
    /// Categories; missing is `None`.
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    fn take(&self, rows: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Categorical(v) => {
                ColumnData::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
        }
    }
}

/// Rows of features with, per row, its event time, event id and log position.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// The features, in model order.
    pub features: Vec<Feature>,
    /// One column per feature.
    pub columns: Vec<ColumnData>,
    /// Event time per row (ms since the epoch): the split column, or the record timestamp.
    pub ts: Vec<i64>,
    /// The `event_id` field per row, when the records have one (labels join on it).
    pub event_ids: Vec<Option<String>>,
    /// (partition, offset) per row.
    pub positions: Vec<(i32, i64)>,
}

impl Table {
    /// An empty table of these features.
    pub fn new(features: Vec<Feature>) -> Self {
        let columns = features
            .iter()
            .map(|f| match f.dtype {
                FeatureType::Float64 => ColumnData::Numeric(Vec::new()),
                FeatureType::String => ColumnData::Categorical(Vec::new()),
            })
            .collect();
        Table {
            features,
            columns,
            ..Default::default()
        }
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// These rows, in this order, as a new table.
    pub fn take(&self, rows: &[usize]) -> Table {
        Table {
            features: self.features.clone(),
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
            ts: rows.iter().map(|&r| self.ts[r]).collect(),
            event_ids: rows.iter().map(|&r| self.event_ids[r].clone()).collect(),
            positions: rows.iter().map(|&r| self.positions[r]).collect(),
        }
    }

    /// Where row `r` came from, for error messages: `partition P offset O`.
    pub fn at(&self, r: usize) -> String {
        match self.positions.get(r) {
            Some((p, o)) => format!("partition {p} offset {o}"),
            None => format!("row {r}"),
        }
    }

    /// A table of numeric columns from row-major values (tests, benchmarks, in-memory data):
    /// `values.len()` must be `rows × names.len()`; timestamps are the row numbers.
    pub fn from_rows(names: &[&str], values: &[f64]) -> Table {
        let width = names.len().max(1);
        let rows = values.len() / width;
        let mut t = Table::new(names.iter().map(|n| Feature::numeric(*n)).collect());
        for (c, col) in t.columns.iter_mut().enumerate() {
            if let ColumnData::Numeric(v) = col {
                v.extend((0..rows).map(|r| values[r * width + c]));
            }
        }
        t.ts = (0..rows as i64).collect();
        t.event_ids = vec![None; rows];
        t.positions = (0..rows as i64).map(|r| (0, r)).collect();
        t
    }
}
