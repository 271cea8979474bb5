//! Produce routing, written once for every producer of records: the REST Proxy, the CLI,
//! and next MQTT, HTTP ingest, SQL output, connectors and the replicator.
//!
//! [`plan`] is the pure part: each record's partition (the one asked for, checked; else
//! Kafka's murmur2 of the key; else round-robin) and the per-partition batches, each keeping
//! the request order of its records. [`produce`] appends the batches concurrently through the
//! [`Log`] — one all-or-nothing append per partition — and maps every acknowledgement back to
//! request order: record *i* of the request gets outcome *i*. A failing partition fails only
//! its own records (their outcome carries the shared error); the others are acknowledged.
//! Clients may not write into internal topics ([`crate::is_internal_topic`]): [`produce`]
//! refuses them; components that own such a topic append to it directly.

use crate::error::{LogError, LogResult};
use crate::log::Log;
use crate::partitioner::Partitioner;
use crate::record::Record;
use crate::topic::check_client_write;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A record to produce, with the partition the producer asked for (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRecord {
    /// `Some(p)`: exactly this partition; `None`: by key hash, or round-robin without a key.
    pub partition: Option<i32>,
    /// The record.
    pub record: Record,
}

impl From<Record> for ProduceRecord {
    fn from(record: Record) -> Self {
        ProduceRecord {
            partition: None,
            record,
        }
    }
}

/// The records of one partition, in request order, with their positions in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlan {
    /// Partition.
    pub partition: i32,
    /// Index in the request of each record below.
    pub indices: Vec<usize>,
    /// The records.
    pub records: Vec<Record>,
}

/// Routes records to partitions of a topic with `partitions` partitions. Errors: a record
/// asking for a partition the topic does not have (naming the record's index).
pub fn plan(
    topic: &str,
    records: Vec<ProduceRecord>,
    partitions: i32,
    partitioner: &Partitioner,
) -> Result<Vec<PartitionPlan>, (usize, LogError)> {
    let mut by_partition: BTreeMap<i32, PartitionPlan> = BTreeMap::new();
    for (i, r) in records.into_iter().enumerate() {
        let partition = match r.partition {
            Some(p) if (0..partitions).contains(&p) => p,
            Some(p) => {
                return Err((
                    i,
                    LogError::UnknownPartition {
                        topic: topic.to_string(),
                        partition: p,
                        partitions,
                    },
                ));
            }
            None => partitioner.partition(r.record.key.as_deref(), partitions),
        };
        let entry = by_partition
            .entry(partition)
            .or_insert_with(|| PartitionPlan {
                partition,
                indices: Vec::new(),
                records: Vec::new(),
            });
        entry.indices.push(i);
        entry.records.push(r.record);
    }
    Ok(by_partition.into_values().collect())
}

/// What happened to one record of a produce request.
#[derive(Debug, Clone)]
pub struct RecordOutcome {
    /// The partition it was routed to.
    pub partition: i32,
    /// Its offset, or the error of its partition's append (shared by that batch's records).
    pub result: Result<i64, Arc<LogError>>,
}

/// Routes and appends `records` to `topic`, in request order. The outer error is for the
/// request as a whole (internal topic, unknown topic, a record asking for a missing
/// partition — then nothing is appended); per-partition append failures are per record.
pub async fn produce(
    log: &dyn Log,
    partitioner: &Partitioner,
    topic: &str,
    records: Vec<ProduceRecord>,
) -> LogResult<Vec<RecordOutcome>> {
    check_client_write(topic, "produce")?;
    let partitions = log.partition_count(topic).await?;
    let total = records.len();
    let plans = plan(topic, records, partitions, partitioner).map_err(|(_, e)| e)?;
    let appended = futures_join(
        plans
            .iter()
            .map(|p| log.append(topic, p.partition, &p.records)),
    )
    .await;
    let mut out: Vec<Option<RecordOutcome>> = vec![None; total];
    for (p, result) in plans.into_iter().zip(appended) {
        match result {
            Ok(ack) => {
                if ack.offsets.len() != p.indices.len() {
                    let e = Arc::new(LogError::internal(format!(
                        "append to {topic}-{} acknowledged {} offsets for {} records",
                        p.partition,
                        ack.offsets.len(),
                        p.indices.len()
                    )));
                    for i in p.indices {
                        out[i] = Some(RecordOutcome {
                            partition: p.partition,
                            result: Err(e.clone()),
                        });
                    }
                    continue;
                }
                for (i, o) in p.indices.into_iter().zip(ack.offsets) {
                    out[i] = Some(RecordOutcome {
                        partition: p.partition,
                        result: Ok(o),
                    });
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for i in p.indices {
                    out[i] = Some(RecordOutcome {
                        partition: p.partition,
                        result: Err(e.clone()),
                    });
                }
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.ok_or_else(|| LogError::internal(format!("record {i} of the request was not routed")))
        })
        .collect()
}

/// Awaits all futures concurrently, keeping their order (a tiny `join_all`, so that core
/// needs no futures dependency).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn keyed(key: &str) -> ProduceRecord {
        Record::new(
            Some(Bytes::from(key.to_string())),
            Some(Bytes::from_static(b"v")),
        )
        .into()
    }

    /// Placement equals Kafka's Java client: `toPositive(murmur2(key)) % partitions`, with
    /// the hashes of Kafka's UtilsTest.
    #[test]
    fn keys_land_where_kafka_puts_them() {
        let java: [(&str, i32); 4] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("abc", 479_470_107),
        ];
        for n in [1, 3, 6, 7, 12, 100] {
            let recs: Vec<ProduceRecord> = java.iter().map(|(k, _)| keyed(k)).collect();
            let plans = plan("t", recs, n, &Partitioner::new()).unwrap();
            for (i, (_, hash)) in java.iter().enumerate() {
                let want = (*hash & 0x7fff_ffff) % n;
                let got = plans
                    .iter()
                    .find(|p| p.indices.contains(&i))
                    .unwrap()
                    .partition;
                assert_eq!(got, want, "key {i} with {n} partitions");
            }
        }
    }

    #[test]
    fn batches_keep_request_order_and_asked_partitions_are_checked() {
        let mut recs: Vec<ProduceRecord> = (0..6)
            .map(|i| ProduceRecord {
                partition: Some(i % 2),
                record: Record::from_value(format!("v{i}")),
            })
            .collect();
        let plans = plan("t", recs.clone(), 2, &Partitioner::new()).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].indices, vec![0, 2, 4]);
        assert_eq!(plans[1].indices, vec![1, 3, 5]);
        assert_eq!(plans[1].records[2].value.as_deref(), Some(&b"v5"[..]));
        recs[3].partition = Some(9);
        let (i, e) = plan("t", recs, 2, &Partitioner::new()).unwrap_err();
        assert_eq!(i, 3);
        assert!(matches!(
            e,
            LogError::UnknownPartition {
                partition: 9,
                partitions: 2,
                ..
            }
        ));
    }

    #[test]
    fn unkeyed_records_rotate_over_partitions() {
        let recs: Vec<ProduceRecord> = (0..6)
            .map(|i| Record::from_value(format!("{i}")).into())
            .collect();
        let plans = plan("t", recs, 3, &Partitioner::new()).unwrap();
        let sizes: Vec<usize> = plans.iter().map(|p| p.records.len()).collect();
        assert_eq!(sizes, vec![2, 2, 2]);
    }
}
