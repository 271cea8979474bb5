//! Fast tests of the backend against librdkafka's in-process mock cluster
//! (`rdkafka::mocking::MockCluster`; topics created with `MockCluster::create_topic`, since
//! its brokers do not serve CreateTopics). The real-broker conformance suite is in
//! `tests/it`.

use crate::KafkaConfig;
use crate::backend::lock;
use bytes::Bytes;
use fleetwatch_core::{
    JoinOptions, LogData, LogError, LogGroups, OffsetCommit, OffsetSpec, ReadLimits, Record,
    TopicPartition,
};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cluster(topics: &[(&str, i32)]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).unwrap();
    for (t, n) in topics {
        mock.create_topic(t, *n, 1).unwrap();
    }
    mock
}

fn rec(i: usize) -> Record {
    Record::new(
        Some(Bytes::from(format!("k{i}"))),
        Some(Bytes::from(format!("v{i}"))),
    )
    .with_header("i", Some(Bytes::from(i.to_string())))
}

/// Reads `n` records of a partition from `from`.
async fn read_n(log: &crate::KafkaLog, t: &str, p: i32, from: i64, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = from;
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.len() < n && Instant::now() < deadline {
        let b = log
            .read(t, p, next, ReadLimits::waiting(Duration::from_millis(200)))
            .await
            .unwrap();
        for r in &b.records {
            assert_eq!(r.offset, next, "offsets in order, none skipped");
            next += 1;
            let v = r.record.value.as_deref().unwrap_or_default();
            out.push(String::from_utf8_lossy(v).to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_read_and_offsets() {
    let mock = cluster(&[("t", 2)]);
    let log = KafkaConfig::at(mock.bootstrap_servers()).build().unwrap();
    let batch: Vec<Record> = (0..5).map(rec).collect();
    let ack = log.append("t", 1, &batch).await.unwrap();
    assert_eq!(ack.offsets, vec![0, 1, 2, 3, 4]);
    let got = read_n(&log, "t", 1, 0, 5).await;
    assert_eq!(got, (0..5).map(|i| format!("v{i}")).collect::<Vec<_>>());
    // a read from the middle re-seeks the cached reader
    assert_eq!(read_n(&log, "t", 1, 3, 2).await, vec!["v3", "v4"]);
    let b = log.read("t", 1, 0, ReadLimits::default()).await.unwrap();
    assert_eq!(b.records[0].record.headers[0].key, "i");
    assert_eq!(b.high_watermark, 5);
    assert_eq!(log.offset_for("t", 1, OffsetSpec::Latest).await.unwrap(), 5);
    assert_eq!(
        log.offset_for("t", 1, OffsetSpec::Earliest).await.unwrap(),
        0
    );
    assert_eq!(log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap(), 0);
    assert!(matches!(
        log.read("t", 1, 9, ReadLimits::default()).await,
        Err(LogError::OffsetOutOfRange {
            high_watermark: 5,
            ..
        })
    ));
    assert!(matches!(
        log.append("t", 2, &[rec(0)]).await,
        Err(LogError::UnknownPartition { partitions: 2, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_cache_is_bounded_and_evicted_readers_come_back() {
    let mock = cluster(&[("r", 5)]);
    let config = KafkaConfig {
        max_cached_readers: 2,
        ..KafkaConfig::at(mock.bootstrap_servers())
    };
    let log = config.build().unwrap();
    for p in 0..5 {
        let batch: Vec<Record> = (0..3).map(|i| rec(p as usize * 10 + i)).collect();
        log.append("r", p, &batch).await.unwrap();
    }
    for round in 0..2 {
        for p in 0..5 {
            let want: Vec<String> = (0..3)
                .map(|i| format!("v{}", p as usize * 10 + i))
                .collect();
            assert_eq!(
                read_n(&log, "r", p, 0, 3).await,
                want,
                "round {round}, partition {p}"
            );
            assert!(lock(&log.inner.readers).len() <= 2);
        }
    }
    assert_eq!(lock(&log.inner.readers).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_read_back_through_one_client_per_group() {
    let mock = cluster(&[("c", 2)]);
    let config = KafkaConfig {
        max_offset_clients: 2,
        ..KafkaConfig::at(mock.bootstrap_servers())
    };
    let log = config.build().unwrap();
    let mut options = JoinOptions::new("g1", vec!["c".into()]);
    options.session_timeout = Duration::from_millis(6000);
    let mut member = log.join_group(options).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().await.unwrap().partitions.len() < 2 {
        assert!(Instant::now() < deadline, "the mock group never assigned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(member.assignment().await.unwrap().generation >= 1);
    let tp = TopicPartition::new("c", 1);
    member
        .commit(&[
            OffsetCommit::new(tp.clone(), 3),
            OffsetCommit::new(tp.clone(), 7),
        ])
        .await
        .unwrap();
    let got = log.committed_offsets("g1").await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((&got[0].partition, got[0].offset), (&tp, 7));
    // the same client answers again; other groups get their own, at most two in all
    let first = lock(&log.inner.offsets_clients).get("g1").cloned().unwrap();
    log.committed_offsets("g1").await.unwrap();
    let again = lock(&log.inner.offsets_clients).get("g1").cloned().unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    for g in ["g2", "g3"] {
        assert!(log.committed_offsets(g).await.unwrap().is_empty());
    }
    assert_eq!(lock(&log.inner.offsets_clients).len(), 2);
    assert!(lock(&log.inner.offsets_clients).get("g1").is_none());
    // an evicted group's offsets are still answered (by a new client)
    assert_eq!(log.committed_offsets("g1").await.unwrap()[0].offset, 7);
    // The mock brokers serve neither ListGroups nor DescribeGroups: classified as such.
    assert!(matches!(
        log.describe_group("g1").await,
        Err(LogError::Unsupported(_))
    ));
    member.leave().await.unwrap();
}
