//! Training data by **bounded replay**: a topic and a range, frozen once at the start.
//!
//! [`freeze`] turns a [`RangeSpec`] into exact `[start, end)` offsets per partition: the end
//! is `min(high watermark, offset_for_time(until))` as the log stands at that moment, so rows
//! arriving later are never read, and the frozen range (stored in the bundle) reads the same
//! rows again. [`read`] reads those offsets and decodes the JSON values into a [`Table`]
//! through `fleetwatch-columnar`'s decoder: numeric features as `f64` (missing = NaN),
//! categorical ones as strings, the event time from a field or the record timestamp, and the
//! `event_id` field that labels join on.

use crate::error::{MlError, MlResult};
use crate::table::{ColumnData, Feature, FeatureType, Table};
use crate::time;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use fleetwatch_columnar::{JsonDecoder, JsonOptions, RowDecoder};
use fleetwatch_core::{Log, OffsetSpec, ReadLimits};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `[start, end)` of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    /// The partition.
    pub partition: i32,
    /// First offset read.
    pub start: i64,
    /// One past the last offset read.
    pub end: i64,
}

/// Which records of a topic to train on, before freezing.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeSpec {
    /// Everything the topic holds now.
    All,
    /// Records with `from ≤ timestamp < until` (record timestamps, ms); either side open.
    Time {
        /// Lower bound.
        from_ms: Option<i64>,
        /// Upper bound (exclusive).
        until_ms: Option<i64>,
    },
    /// Exact offsets per partition (a frozen range, e.g. from a bundle).
    Offsets(Vec<PartitionRange>),
}

impl RangeSpec {
    /// Parses the CLI form: `all`; `time:FROM..UNTIL` (either side may be empty; epoch ms or
    /// ISO-8601 UTC); `P:START-END[,P:START-END…]`.
    ///
    /// # Errors
    /// Any other text, quoting it and the valid forms.
    pub fn parse(text: &str) -> MlResult<Self> {
        let forms = "valid: all, time:FROM..UNTIL (epoch ms or ISO-8601 UTC, either may be empty), \
                     P:START-END[,P:START-END…]";
        let t = text.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(RangeSpec::All);
        }
        if let Some(rest) = t.strip_prefix("time:") {
            let (a, b) = rest.split_once("..").ok_or_else(|| {
                MlError::options(format!("range {text:?}: expected FROM..UNTIL ({forms})"))
            })?;
            let side = |s: &str| -> MlResult<Option<i64>> {
                if s.trim().is_empty() {
                    Ok(None)
                } else {
                    time::parse_ms(s)
                        .map(Some)
                        .map_err(|e| MlError::options(format!("range {text:?}: {e}")))
                }
            };
            return Ok(RangeSpec::Time {
                from_ms: side(a)?,
                until_ms: side(b)?,
            });
        }
        let mut out = Vec::new();
        for part in t.split(',') {
            let parsed = part.split_once(':').and_then(|(p, r)| {
                let (s, e) = r.split_once('-')?;
                Some(PartitionRange {
                    partition: p.trim().parse().ok()?,
                    start: s.trim().parse().ok()?,
                    end: e.trim().parse().ok()?,
                })
            });
            out.push(parsed.ok_or_else(|| {
                MlError::options(format!("range {text:?}: cannot read {part:?} ({forms})"))
            })?);
        }
        Ok(RangeSpec::Offsets(out))
    }
}

/// A range frozen against the log: what is read, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenRange {
    /// The topic.
    pub topic: String,
    /// `[start, end)` per partition, every partition of the topic.
    pub partitions: Vec<PartitionRange>,
}

impl FrozenRange {
    /// Records in the range.
    pub fn records(&self) -> i64 {
        self.partitions.iter().map(|p| p.end - p.start).sum()
    }
}

impl std::fmt::Display for FrozenRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.topic)?;
        for (i, p) in self.partitions.iter().enumerate() {
            write!(
                f,
                "{}{}:{}-{}",
                if i == 0 { "@" } else { "," },
                p.partition,
                p.start,
                p.end
            )?;
        }
        Ok(())
    }
}

/// Freezes `spec` on `topic` as the log stands now.
///
/// # Errors
/// Unknown topic; offsets outside what the partition holds; an empty range.
pub async fn freeze(log: &dyn Log, topic: &str, spec: &RangeSpec) -> MlResult<FrozenRange> {
    let count = log.partition_count(topic).await?;
    let mut partitions = Vec::with_capacity(count as usize);
    for p in 0..count {
        let log_start = log.offset_for(topic, p, OffsetSpec::Earliest).await?;
        let high = log.offset_for(topic, p, OffsetSpec::Latest).await?;
        let (start, end) = match spec {
            RangeSpec::All => (log_start, high),
            RangeSpec::Time { from_ms, until_ms } => {
                let start = match from_ms {
                    Some(t) => log.offset_for(topic, p, OffsetSpec::Timestamp(*t)).await?,
                    None => log_start,
                };
                let end = match until_ms {
                    Some(t) => high.min(log.offset_for(topic, p, OffsetSpec::Timestamp(*t)).await?),
                    None => high,
                };
                (start.max(log_start), end.max(start))
            }
            RangeSpec::Offsets(list) => match list.iter().find(|r| r.partition == p) {
                None => (high, high),
                Some(r) => {
                    if r.start < log_start || r.end > high || r.start > r.end {
                        return Err(MlError::data(format!(
                            "range {topic} partition {p}: [{}, {}) is outside what it holds, [{log_start}, {high})",
                            r.start, r.end
                        )));
                    }
                    (r.start, r.end)
                }
            },
        };
        partitions.push(PartitionRange {
            partition: p,
            start,
            end,
        });
    }
    if let RangeSpec::Offsets(list) = spec
        && let Some(r) = list
            .iter()
            .find(|r| r.partition < 0 || r.partition >= count)
    {
        return Err(MlError::data(format!(
            "range {topic}: partition {} does not exist (the topic has {count})",
            r.partition
        )));
    }
    let frozen = FrozenRange {
        topic: topic.to_string(),
        partitions,
    };
    if frozen.records() == 0 {
        return Err(MlError::data(format!(
            "the range {frozen} is empty: no records to train on"
        )));
    }
    Ok(frozen)
}

/// How record values become rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// The event-time field (epoch ms or ISO-8601 text); `None`: the record timestamp.
    pub time_field: Option<String>,
    /// The field that names each event (labels join on it).
    pub event_id_field: String,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            time_field: None,
            event_id_field: "event_id".to_string(),
        }
    }
}

/// Reads every record of `range` (tombstones skipped) into a table of `features`, in
/// partition then offset order.
///
/// # Errors
/// A value that is not a JSON object of the features (naming partition, offset and field),
/// a read error.
pub async fn read(
    log: &dyn Log,
    range: &FrozenRange,
    features: &[Feature],
    options: &ReadOptions,
) -> MlResult<Table> {
    let mut fields: Vec<Field> = features
        .iter()
        .map(|f| {
            let t = match f.dtype {
                FeatureType::Float64 => DataType::Float64,
                FeatureType::String => DataType::Utf8,
            };
            Field::new(&f.name, t, true)
        })
        .collect();
    fields.push(Field::new(&options.event_id_field, DataType::Utf8, true));
    if let Some(t) = &options.time_field {
        fields.push(Field::new(
            t,
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ));
    }
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].iter().any(|m| m.eq_ignore_ascii_case(n)) {
            return Err(MlError::options(format!(
                "field {n:?} is named twice (features, event id and time field must differ)"
            )));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let mut decoder = JsonDecoder::new(schema, JsonOptions::default())
        .map_err(|e| MlError::data(format!("decoder: {e}")))?;
    let mut table = Table::new(features.to_vec());
    let limits = ReadLimits {
        max_records: 8192,
        max_bytes: 8 << 20,
        max_wait: Duration::ZERO,
    };
    let mut record_ts = Vec::new();
    for pr in &range.partitions {
        let mut at = pr.start;
        while at < pr.end {
            let batch = log.read(&range.topic, pr.partition, at, limits).await?;
            if batch.records.is_empty() {
                return Err(MlError::data(format!(
                    "{} partition {}: offset {at} could not be read (the range ends at {}, the log at {})",
                    range.topic, pr.partition, pr.end, batch.high_watermark
                )));
            }
            record_ts.clear();
            for c in &batch.records {
                if c.offset >= pr.end {
                    break;
                }
                at = c.offset + 1;
                let Some(value) = &c.record.value else {
                    continue;
                };
                decoder.append(value).map_err(|e| {
                    MlError::data(format!(
                        "{} partition {} offset {}: {e}",
                        range.topic, pr.partition, c.offset
                    ))
                })?;
                record_ts.push(c.record.timestamp);
                table.positions.push((pr.partition, c.offset));
            }
            let rb = decoder.finish();
            append_batch(&mut table, &rb, &record_ts, options.time_field.is_some());
        }
    }
    Ok(table)
}

fn append_batch(table: &mut Table, rb: &RecordBatch, record_ts: &[i64], time_field: bool) {
    let n_feat = table.columns.len();
    for (c, col) in table.columns.iter_mut().enumerate() {
        let a = rb.column(c);
        match col {
            ColumnData::Numeric(v) => {
                let a = a.as_primitive::<Float64Type>();
                v.extend((0..a.len()).map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) }));
            }
            ColumnData::Categorical(v) => {
                let a = a.as_string::<i32>();
                v.extend((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())));
            }
        }
    }
    let ids = rb.column(n_feat).as_string::<i32>();
    table
        .event_ids
        .extend((0..ids.len()).map(|i| (!ids.is_null(i)).then(|| ids.value(i).to_string())));
    if time_field {
        let ts = rb
            .column(n_feat + 1)
            .as_primitive::<TimestampMillisecondType>();
        table.ts.extend((0..ts.len()).map(|i| {
            if ts.is_null(i) {
                record_ts[i]
            } else {
                ts.value(i)
            }
        }));
    } else {
        table.ts.extend_from_slice(record_ts);
    }
}
