//! The per-partition reader cache is bounded (`max_cached_readers`): reading more partitions
//! than the cap, round after round, closes and recreates readers and still returns every
//! record once, in order, with the refined high watermark of multi-record batches.

use bytes::Bytes;
use fleetwatch_core::{LogAdmin, LogData, OffsetSpec, ReadLimits, Record, TopicConfig};
use fleetwatch_kafka::KafkaConfig;
use fleetwatch_testkit::tansu::bootstrap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_partitions_than_cached_readers_read_correctly() {
    let log = KafkaConfig {
        max_cached_readers: 2,
        ..KafkaConfig::at(bootstrap())
    }
    .build()
    .unwrap();
    let topic = format!("readers-cap-{}", std::process::id());
    let partitions = 5;
    log.create_topic(&topic, TopicConfig::with_partitions(partitions))
        .await
        .unwrap();
    let base_ts = 1_700_000_000_000;
    // Two multi-record batches per partition: tansu reports their high watermark low.
    for p in 0..partitions {
        for b in 0..2 {
            let batch: Vec<Record> = (0..4)
                .map(|i| {
                    let n = b * 4 + i;
                    Record::new(
                        Some(Bytes::from(format!("k{p}"))),
                        Some(Bytes::from(format!("p{p}-{n}"))),
                    )
                    .with_timestamp(base_ts + n as i64 * 1000)
                })
                .collect();
            let ack = log.append(&topic, p, &batch).await.unwrap();
            assert_eq!(
                ack.offsets,
                (b * 4..b * 4 + 4).map(i64::from).collect::<Vec<_>>()
            );
        }
    }
    for round in 0..3 {
        for p in 0..partitions {
            // continue from the middle on later rounds: the evicted reader re-seeks
            let from = i64::from(round * 2);
            let mut next = from;
            let mut got = Vec::new();
            while got.len() < (8 - from) as usize {
                let b = log
                    .read(
                        &topic,
                        p,
                        next,
                        ReadLimits::waiting(Duration::from_millis(500)),
                    )
                    .await
                    .unwrap();
                assert!(
                    !b.records.is_empty(),
                    "round {round}: {topic}-{p} at {next} read nothing"
                );
                assert_eq!(b.high_watermark, 8, "round {round}, partition {p}");
                for r in &b.records {
                    assert_eq!(r.offset, next, "round {round}, partition {p}");
                    next += 1;
                    got.push(r.record.value.clone().unwrap());
                }
            }
            let want: Vec<Bytes> = (from..8)
                .map(|n| Bytes::from(format!("p{p}-{n}")))
                .collect();
            assert_eq!(got, want, "round {round}, partition {p}");
            assert_eq!(
                log.offset_for(&topic, p, OffsetSpec::Latest).await.unwrap(),
                8
            );
            assert_eq!(
                log.offset_for(&topic, p, OffsetSpec::Timestamp(base_ts + 5500))
                    .await
                    .unwrap(),
                6
            );
        }
    }
}
