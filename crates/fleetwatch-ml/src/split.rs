//! Time-ordered splits by **event time** across all partitions, with BigQuery ML's options:
//! `data_split_method = 'SEQ' | 'NO_SPLIT'`, `data_split_col` (the event-time field; default
//! the record timestamp), `data_split_eval_fraction` (default 0.2, halved into validation and
//! test).
//!
//! `SEQ` orders rows by (event time, partition, offset) and cuts at event times: train is
//! everything before the first boundary, validation up to the second, test the rest, so
//! rows with the same time never straddle two splits. Validation serves early stopping and
//! the threshold; test serves every reported number.

use crate::error::{MlError, MlResult};
use crate::table::Table;
use serde::{Deserialize, Serialize};

/// How rows are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SplitMethod {
    /// By event time: train, then validation, then test.
    Seq,
    /// Everything is train; no validation (no early stopping; the threshold from train
    /// scores) and no test metrics.
    NoSplit,
}

/// One split's extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitExtent {
    /// Rows.
    pub rows: usize,
    /// Earliest event time (ms), `None` when empty.
    pub from_ts: Option<i64>,
    /// Latest event time (ms), `None` when empty.
    pub to_ts: Option<i64>,
}

/// The splits' boundaries, as stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitInfo {
    /// The method.
    pub method: SplitMethod,
    /// The fraction given to validation + test.
    pub eval_fraction: f64,
    /// Validation starts at this event time (ms).
    pub val_from_ts: Option<i64>,
    /// Test starts at this event time (ms).
    pub test_from_ts: Option<i64>,
    /// Train.
    pub train: SplitExtent,
    /// Validation.
    pub val: SplitExtent,
    /// Test.
    pub test: SplitExtent,
}

/// Row indices of each split.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// Train rows, in time order.
    pub train: Vec<usize>,
    /// Validation rows.
    pub val: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
    /// What is stored.
    pub info: SplitInfo,
}

fn extent(table: &Table, rows: &[usize]) -> SplitExtent {
    SplitExtent {
        rows: rows.len(),
        from_ts: rows.iter().map(|&r| table.ts[r]).min(),
        to_ts: rows.iter().map(|&r| table.ts[r]).max(),
    }
}

/// Splits `table`; `what` names the range in errors.
///
/// # Errors
/// A fraction outside (0, 1) for `SEQ`; a split without rows (naming the range).
pub fn split(
    table: &Table,
    method: SplitMethod,
    eval_fraction: f64,
    what: &str,
) -> MlResult<Splits> {
    let mut order: Vec<usize> = (0..table.len()).collect();
    order.sort_by_key(|&r| (table.ts[r], table.positions[r]));
    if table.is_empty() {
        return Err(MlError::data(format!("the range {what} has no rows")));
    }
    if method == SplitMethod::NoSplit {
        let info = SplitInfo {
            method,
            eval_fraction: 0.0,
            val_from_ts: None,
            test_from_ts: None,
            train: extent(table, &order),
            val: extent(table, &[]),
            test: extent(table, &[]),
        };
        return Ok(Splits {
            train: order,
            val: Vec::new(),
            test: Vec::new(),
            info,
        });
    }
    if !(eval_fraction > 0.0 && eval_fraction < 1.0) {
        return Err(MlError::options(format!(
            "data_split_eval_fraction = {eval_fraction}: must be between 0 and 1 (exclusive)"
        )));
    }
    let n = order.len();
    let n_eval = ((n as f64) * eval_fraction).round() as usize;
    let n_train = n - n_eval;
    let n_val = n_eval / 2;
    // Cut at event times: the boundary is the time of the first row past each count.
    let val_from = order.get(n_train).map(|&r| table.ts[r]);
    let test_from = order.get(n_train + n_val).map(|&r| table.ts[r]);
    let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
    for &r in &order {
        let t = table.ts[r];
        if val_from.is_none_or(|v| t < v) {
            train.push(r);
        } else if test_from.is_none_or(|v| t < v) {
            val.push(r);
        } else {
            test.push(r);
        }
    }
    for (name, rows) in [("train", &train), ("validation", &val), ("test", &test)] {
        if rows.is_empty() {
            return Err(MlError::data(format!(
                "the {name} split of {what} has no rows ({n} rows in all, data_split_eval_fraction \
                 {eval_fraction}; rows with the same event time stay in one split)"
            )));
        }
    }
    let info = SplitInfo {
        method,
        eval_fraction,
        val_from_ts: val_from,
        test_from_ts: test_from,
        train: extent(table, &train),
        val: extent(table, &val),
        test: extent(table, &test),
    };
    Ok(Splits {
        train,
        val,
        test,
        info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_event_time_across_partitions() {
        let mut t = Table::from_rows(&["x"], &(0..100).map(f64::from).collect::<Vec<_>>());
        // Two partitions interleaved: event time, not offset, decides.
        for r in 0..100 {
            t.positions[r] = ((r % 2) as i32, (r / 2) as i64);
            t.ts[r] = 1000 - r as i64;
        }
        let s = split(&t, SplitMethod::Seq, 0.2, "t").unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (80, 10, 10));
        let max_train = s.train.iter().map(|&r| t.ts[r]).max().unwrap();
        let min_val = s.val.iter().map(|&r| t.ts[r]).min().unwrap();
        assert!(max_train < min_val);
        assert!(s.test.contains(&0), "the latest row is in test");
        let e = split(
            &Table::from_rows(&["x"], &[1.0, 2.0]),
            SplitMethod::Seq,
            0.2,
            "topic@0:0-2",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("topic@0:0-2") && e.contains("no rows"), "{e}");
    }
}
