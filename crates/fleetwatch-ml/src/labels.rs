//! Ground truth: the simulator's episode labels joined to rows by `event_id`.
//!
//! A label names an episode by its first event (`<vin>-t-<seq>` or `<vin>-p-<seq>`) and how
//! many events it spans; a car's events of one stream are numbered consecutively, so the
//! episode is the events `<vin>-t-<seq>` … `<vin>-t-<seq + events − 1>`. An event in no
//! episode is normal.

use crate::error::{MlError, MlResult};
use crate::table::Table;
use fleetwatch_core::{Log, OffsetSpec, ReadLimits};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Deserialize)]
struct LabelEvent {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    events: u64,
}

/// Splits `prefix-seq` at the last `-`.
fn split_id(id: &str) -> Option<(&str, u64)> {
    let (prefix, seq) = id.rsplit_once('-')?;
    Some((prefix, seq.parse().ok()?))
}

/// Episodes by event-id prefix: sorted `(first seq, last seq, type)`.
#[derive(Debug, Clone, Default)]
pub struct LabelIndex {
    episodes: HashMap<String, Vec<(u64, u64, String)>>,
    /// Labels read.
    pub labels: usize,
}

impl LabelIndex {
    /// Adds one label event (the JSON the simulator writes).
    ///
    /// # Errors
    /// Not a label: naming what is missing.
    pub fn add_json(&mut self, value: &[u8]) -> Result<(), String> {
        let l: LabelEvent =
            serde_json::from_slice(value).map_err(|e| format!("not a label event: {e}"))?;
        let (prefix, first) = split_id(&l.event_id).ok_or_else(|| {
            format!(
                "label event_id {:?} is not <prefix>-<sequence number>",
                l.event_id
            )
        })?;
        let last = first + l.events.max(1) - 1;
        self.episodes
            .entry(prefix.to_string())
            .or_default()
            .push((first, last, l.kind));
        self.labels += 1;
        Ok(())
    }

    fn seal(&mut self) {
        for v in self.episodes.values_mut() {
            v.sort();
        }
    }

    /// Reads every label the topic holds now.
    ///
    /// # Errors
    /// Unknown topic, a record that is not a label (naming partition and offset).
    pub async fn read(log: &dyn Log, topic: &str) -> MlResult<Self> {
        let mut index = LabelIndex::default();
        let limits = ReadLimits {
            max_records: 8192,
            max_bytes: 8 << 20,
            max_wait: Duration::ZERO,
        };
        for p in 0..log.partition_count(topic).await? {
            let end = log.offset_for(topic, p, OffsetSpec::Latest).await?;
            let mut at = log.offset_for(topic, p, OffsetSpec::Earliest).await?;
            while at < end {
                let batch = log.read(topic, p, at, limits).await?;
                if batch.records.is_empty() {
                    break;
                }
                for c in batch.records {
                    at = c.offset + 1;
                    if let Some(v) = &c.record.value {
                        index.add_json(v).map_err(|e| {
                            MlError::data(format!(
                                "labels {topic} partition {p} offset {}: {e}",
                                c.offset
                            ))
                        })?;
                    }
                }
            }
        }
        index.seal();
        Ok(index)
    }

    /// Builds an index from label JSON values (tests, files).
    ///
    /// # Errors
    /// A value that is not a label.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, String> {
        let mut index = LabelIndex::default();
        for v in values {
            index.add_json(v)?;
        }
        index.seal();
        Ok(index)
    }

    /// The anomaly type of the event, `None` for a normal one.
    pub fn label(&self, event_id: &str) -> Option<&str> {
        let (prefix, seq) = split_id(event_id)?;
        let v = self.episodes.get(prefix)?;
        let i = v.partition_point(|e| e.0 <= seq);
        v[..i]
            .iter()
            .rev()
            .take(8)
            .find(|e| e.1 >= seq)
            .map(|e| e.2.as_str())
    }

    /// Per row of `table`: its anomaly type, `None` when normal (or without event id).
    pub fn label_rows(&self, table: &Table) -> Vec<Option<String>> {
        table
            .event_ids
            .iter()
            .map(|id| {
                id.as_deref()
                    .and_then(|id| self.label(id))
                    .map(str::to_string)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_cover_consecutive_events() {
        let idx = LabelIndex::from_values([
            br#"{"event_id":"V1-t-10","key":"V1","type":"spike","kind":"sensor","start_ts":0,"end_ts":0,"events":3}"#.as_slice(),
            br#"{"event_id":"V1-p-10","key":"V1","type":"unusual_amount","kind":"fraud","start_ts":0,"end_ts":0,"events":1}"#.as_slice(),
        ])
        .unwrap();
        assert_eq!(idx.label("V1-t-9"), None);
        assert_eq!(idx.label("V1-t-10"), Some("spike"));
        assert_eq!(idx.label("V1-t-12"), Some("spike"));
        assert_eq!(idx.label("V1-t-13"), None);
        assert_eq!(idx.label("V1-p-10"), Some("unusual_amount"));
        assert_eq!(idx.label("V2-t-10"), None);
        assert!(
            LabelIndex::from_values([b"{}".as_slice()])
                .unwrap_err()
                .contains("not a label")
        );
    }
}
