//! The conformance suite for [`Log`]: the contracts of `crate::log`, written once and run
//! against every backend. A backend's integration tests call
//! [`log_conformance_tests!`](crate::log_conformance_tests) with a function that makes a
//! [`Fixture`]; every check becomes one named test there.
//!
//! A check the backend cannot run because of a known gap of its server (say, a broker without
//! offsets-by-timestamp) prints `SKIPPED <check>: <reason>` and returns; the gap is declared
//! in [`Gaps`], never silently passed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::{
    JoinOptions, Log, LogError, OffsetCommit, OffsetSpec, ReadLimits, Record, TimestampType,
    TopicConfig, TopicPartition,
};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Known gaps of the server behind a backend, each with the reason printed when a check is
/// skipped for it.
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    /// Offsets by timestamp (ListOffsets with a timestamp) unsupported.
    pub offsets_for_times: Option<&'static str>,
    /// Topic deletion unsupported.
    pub delete_topic: Option<&'static str>,
    /// Commit metadata is not stored or not returned by the broker.
    pub commit_metadata: Option<&'static str>,
}

/// What a check needs: the log, a name prefix unique to this test, and timing for groups.
#[derive(Clone)]
pub struct Fixture {
    pub log: Arc<dyn Log>,
    pub prefix: String,
    /// Session timeout for group checks (≈ 6 s against tansu; short on the embedded log).
    pub session_timeout: Duration,
    /// How long to wait for a group to settle before failing.
    pub settle: Duration,
    pub gaps: Gaps,
}

static UNIQUE: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    /// A topic or group name unique to this fixture.
    pub fn name(&self, what: &str) -> String {
        format!(
            "{}-{}-{}",
            self.prefix,
            what,
            UNIQUE.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn skip(&self, check: &str, gap: Option<&'static str>) -> bool {
        if let Some(reason) = gap {
            println!("SKIPPED {check}: {reason}");
            true
        } else {
            false
        }
    }
}

/// Defines one `#[tokio::test]` per conformance check, each calling `$make().await` for its
/// fixture.
#[macro_export]
macro_rules! log_conformance_tests {
    ($make:path) => {
        $crate::log_conformance_tests!(@each $make;
            topic_lifecycle, append_and_read_round_trip, read_limits_and_ranges,
            read_waits_for_new_data, offsets_by_time, unknown_things_are_errors,
            subscription_follows_appends, topic_subscription_wakes_on_any_partition,
            group_members_split_and_take_over,
            group_commits_resume_where_left, group_evicts_silent_member, group_member_seeks,
            concurrent_appenders_keep_every_record);
    };
    (@each $make:path; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $make().await;
                $crate::conformance::$check(&fixture).await;
            }
        )*
    };
}

fn rec(key: &str, value: &str, ts: i64) -> Record {
    Record {
        key: Some(Bytes::copy_from_slice(key.as_bytes())),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Vec::new(),
        timestamp: ts,
        timestamp_type: TimestampType::CreateTime,
    }
}

async fn topic(f: &Fixture, what: &str, partitions: i32) -> String {
    let name = f.name(what);
    f.log
        .create_topic(&name, TopicConfig::with_partitions(partitions))
        .await
        .unwrap();
    name
}

/// Reads a partition from `from` until `n` records are in hand or the deadline passes.
async fn read_n(f: &Fixture, t: &str, p: i32, from: i64, n: usize) -> Vec<crate::ConsumedRecord> {
    let deadline = Instant::now() + f.settle;
    let mut out = Vec::new();
    let mut next = from;
    while out.len() < n && Instant::now() < deadline {
        let batch = f
            .log
            .read(t, p, next, ReadLimits::waiting(Duration::from_millis(500)))
            .await
            .unwrap();
        next = batch.next_offset(next);
        out.extend(batch.records);
    }
    out
}

pub async fn topic_lifecycle(f: &Fixture) {
    let name = topic(f, "life", 3).await;
    assert!(f.log.list_topics().await.unwrap().contains(&name));
    let d = f.log.describe_topic(&name).await.unwrap();
    assert_eq!(d.name, name);
    assert_eq!(d.partitions.len(), 3);
    assert_eq!(f.log.partition_count(&name).await.unwrap(), 3);
    assert!(d.partitions.iter().all(|p| p.high_watermark == 0));
    match f
        .log
        .create_topic(&name, TopicConfig::with_partitions(1))
        .await
    {
        Err(LogError::TopicExists(t)) => assert_eq!(t, name),
        other => panic!("creating {name} twice gave {other:?}"),
    }
    f.log
        .ensure_topic(&name, TopicConfig::with_partitions(1))
        .await
        .unwrap();
    assert!(matches!(
        f.log.create_topic("bad/name", TopicConfig::default()).await,
        Err(LogError::InvalidTopicName { .. })
    ));
    assert!(
        f.log
            .create_topic(&f.name("zero"), TopicConfig::with_partitions(0))
            .await
            .is_err()
    );
    if f.skip("topic_lifecycle/delete", f.gaps.delete_topic) {
        return;
    }
    f.log.delete_topic(&name).await.unwrap();
    let deadline = Instant::now() + f.settle;
    while f.log.list_topics().await.unwrap().contains(&name) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!f.log.list_topics().await.unwrap().contains(&name));
}

pub async fn append_and_read_round_trip(f: &Fixture) {
    let t = topic(f, "rt", 2).await;
    let mut records = vec![
        rec("k1", "v1", 1_700_000_000_001),
        Record {
            key: None,
            value: Some(Bytes::from_static(b"no key")),
            headers: vec![],
            timestamp: 1_700_000_000_002,
            timestamp_type: TimestampType::CreateTime,
        },
        Record {
            key: Some(Bytes::from_static(b"tombstone")),
            value: None,
            headers: vec![],
            timestamp: 1_700_000_000_003,
            timestamp_type: TimestampType::CreateTime,
        },
        rec("k4", "", 1_700_000_000_004),
    ];
    records[0] = records[0]
        .clone()
        .with_header("h", Some(Bytes::from_static(b"1")))
        .with_header("h", Some(Bytes::from_static(b"2")))
        .with_header("null", None);
    let ack = f.log.append(&t, 1, &records).await.unwrap();
    assert_eq!(ack.partition, 1);
    assert_eq!(ack.offsets, vec![0, 1, 2, 3]);
    let ack2 = f.log.append(&t, 1, &records[..1]).await.unwrap();
    assert_eq!(ack2.offsets, vec![4]);
    let got = read_n(f, &t, 1, 0, 5).await;
    assert_eq!(got.len(), 5);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.partition, 1);
        let want = &records[i % 4];
        assert_eq!(r.record.key, want.key, "key at offset {i}");
        assert_eq!(r.record.value, want.value, "value at offset {i}");
        assert_eq!(r.record.headers, want.headers, "headers at offset {i}");
        assert_eq!(
            r.record.timestamp, want.timestamp,
            "timestamp at offset {i}"
        );
    }
    // partition 0 untouched
    assert_eq!(
        f.log.offset_for(&t, 0, OffsetSpec::Latest).await.unwrap(),
        0
    );
    assert_eq!(
        f.log.offset_for(&t, 1, OffsetSpec::Latest).await.unwrap(),
        5
    );
    f.log.flush().await.unwrap();
}

pub async fn read_limits_and_ranges(f: &Fixture) {
    let t = topic(f, "lim", 1).await;
    let records: Vec<Record> = (0..100)
        .map(|i| rec(&format!("k{i}"), &format!("value-{i}"), 1_000 + i))
        .collect();
    f.log.append(&t, 0, &records).await.unwrap();
    let all = read_n(f, &t, 0, 0, 100).await;
    assert_eq!(all.len(), 100);
    let batch = f
        .log
        .read(
            &t,
            0,
            42,
            ReadLimits {
                max_records: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!batch.records.is_empty() && batch.records.len() <= 5);
    assert_eq!(batch.records[0].offset, 42);
    assert_eq!(
        batch.records[0].record.value.as_deref(),
        Some(&b"value-42"[..])
    );
    assert_eq!(batch.high_watermark, 100);
    let at_end = f.log.read(&t, 0, 100, ReadLimits::default()).await.unwrap();
    assert!(at_end.records.is_empty());
    match f.log.read(&t, 0, 101, ReadLimits::default()).await {
        Err(LogError::OffsetOutOfRange { offset: 101, .. }) => {}
        other => panic!("reading past the high watermark gave {other:?}"),
    }
}

pub async fn read_waits_for_new_data(f: &Fixture) {
    let t = topic(f, "wait", 1).await;
    let log = f.log.clone();
    let t2 = t.clone();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        log.read(&t2, 0, 0, ReadLimits::waiting(Duration::from_secs(30)))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.log.append(&t, 0, &[rec("k", "woken", 5)]).await.unwrap();
    let batch = reader.await.unwrap().unwrap();
    assert_eq!(
        batch.records.len(),
        1,
        "the waiting read returned no record"
    );
    assert_eq!(
        batch.records[0].record.value.as_deref(),
        Some(&b"woken"[..])
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the read was not woken by the append"
    );
}

pub async fn offsets_by_time(f: &Fixture) {
    let t = topic(f, "time", 1).await;
    let base = 1_700_000_000_000;
    let records: Vec<Record> = (0..10).map(|i| rec("k", "v", base + i * 1000)).collect();
    f.log.append(&t, 0, &records).await.unwrap();
    assert_eq!(
        f.log.offset_for(&t, 0, OffsetSpec::Earliest).await.unwrap(),
        0
    );
    assert_eq!(
        f.log.offset_for(&t, 0, OffsetSpec::Latest).await.unwrap(),
        10
    );
    if f.skip("offsets_by_time/timestamp", f.gaps.offsets_for_times) {
        return;
    }
    let at = |ts| f.log.offset_for(&t, 0, OffsetSpec::Timestamp(ts));
    assert_eq!(at(base).await.unwrap(), 0);
    assert_eq!(at(base + 3500).await.unwrap(), 4);
    assert_eq!(at(base + 9000).await.unwrap(), 9);
    assert_eq!(at(base + 9001).await.unwrap(), 10);
    assert_eq!(at(0).await.unwrap(), 0);
}

pub async fn unknown_things_are_errors(f: &Fixture) {
    let missing = f.name("missing");
    assert!(matches!(
        f.log.append(&missing, 0, &[rec("k", "v", 1)]).await,
        Err(LogError::UnknownTopic(_))
    ));
    assert!(matches!(
        f.log.read(&missing, 0, 0, ReadLimits::default()).await,
        Err(LogError::UnknownTopic(_))
    ));
    assert!(matches!(
        f.log.describe_topic(&missing).await,
        Err(LogError::UnknownTopic(_))
    ));
    assert!(matches!(
        f.log.partition_count(&missing).await,
        Err(LogError::UnknownTopic(_))
    ));
    let t = topic(f, "parts", 2).await;
    assert!(matches!(
        f.log.append(&t, 2, &[rec("k", "v", 1)]).await,
        Err(LogError::UnknownPartition { partition: 2, .. })
    ));
    assert!(matches!(
        f.log.read(&t, -1, 0, ReadLimits::default()).await,
        Err(LogError::UnknownPartition { .. })
    ));
    let big = Record::from_value(vec![0u8; 2 * 1024 * 1024]);
    match f.log.append(&t, 0, &[big]).await {
        Err(LogError::RecordTooLarge { size, .. }) => assert!(size >= 2 * 1024 * 1024),
        other => panic!("a 2 MiB record gave {other:?}"),
    }
    // nothing of the refused batch is visible
    assert_eq!(
        f.log.offset_for(&t, 0, OffsetSpec::Latest).await.unwrap(),
        0
    );
}

pub async fn subscription_follows_appends(f: &Fixture) {
    let t = topic(f, "sub", 1).await;
    let mut sub = crate::Subscription::new(f.log.clone(), &t, 0, 0);
    let log = f.log.clone();
    let t2 = t.clone();
    let writer = tokio::spawn(async move {
        for i in 0..5 {
            log.append(&t2, 0, &[rec("k", &format!("m{i}"), i)])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + f.settle;
    while seen.len() < 5 && Instant::now() < deadline {
        for r in sub
            .next_batch(ReadLimits::waiting(Duration::from_secs(1)))
            .await
            .unwrap()
        {
            seen.push(String::from_utf8(r.record.value.unwrap().to_vec()).unwrap());
        }
    }
    writer.await.unwrap();
    assert_eq!(seen, vec!["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(sub.position(), 5);
}

pub async fn topic_subscription_wakes_on_any_partition(f: &Fixture) {
    use futures::StreamExt;
    let t = topic(f, "multi", 3).await;
    let mut sub = crate::TopicSubscription::new(f.log.clone(), &t, vec![(0, 0), (1, 0), (2, 0)]);
    // Nothing there: a zero wait answers at once, empty.
    assert!(
        sub.next_batch(ReadLimits::default())
            .await
            .unwrap()
            .is_empty()
    );
    let log = f.log.clone();
    let t2 = t.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        log.append(&t2, 2, &[rec("k", "late", 1)]).await.unwrap();
    });
    let started = Instant::now();
    let got = sub
        .next_batch(ReadLimits::waiting(Duration::from_secs(30)))
        .await
        .unwrap();
    writer.await.unwrap();
    // Woken by the append to partition 2, not by the 30 s wait running out.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].partition, got[0].offset), (2, 0));
    assert_eq!(sub.positions(), &[(0, 0), (1, 0), (2, 1)]);
    // Data in several partitions is all served, rotating.
    for p in 0..3 {
        f.log
            .append(&t, p, &[rec("k", &format!("p{p}"), 2)])
            .await
            .unwrap();
    }
    let mut values = Vec::new();
    let deadline = Instant::now() + f.settle;
    while values.len() < 3 && Instant::now() < deadline {
        for r in sub
            .next_batch(ReadLimits::waiting(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            values.push(String::from_utf8(r.record.value.unwrap().to_vec()).unwrap());
        }
    }
    values.sort();
    assert_eq!(values, vec!["p0", "p1", "p2"]);
    // The one-partition subscription as a stream of batches.
    let stream = crate::Subscription::new(f.log.clone(), &t, 2, 0)
        .into_stream(ReadLimits::waiting(Duration::from_millis(200)));
    let batches: Vec<_> = stream.take(1).collect().await;
    let offsets: Vec<i64> = batches[0]
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, vec![0, 1]);
}

fn join(f: &Fixture, group: &str, topics: &[String], client: &str) -> JoinOptions {
    let mut o = JoinOptions::new(group, topics.to_vec());
    o.session_timeout = f.session_timeout;
    o.client_id = client.into();
    o
}

/// Polls every member until `done` holds for their assignments, or fails after `settle`.
async fn settle(
    f: &Fixture,
    members: &mut [&mut Box<dyn crate::GroupConsumer>],
    what: &str,
    done: impl Fn(&[Vec<TopicPartition>]) -> bool,
) {
    let deadline = Instant::now() + f.settle;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last.clear();
        for m in members.iter_mut() {
            m.poll(ReadLimits::waiting(Duration::from_millis(100)))
                .await
                .unwrap();
            last.push(m.assignment().await.unwrap().partitions);
        }
        if done(&last) {
            return;
        }
    }
    panic!("group did not settle ({what}): last assignments {last:?}");
}

pub async fn group_members_split_and_take_over(f: &Fixture) {
    let t = topic(f, "grp", 4).await;
    let group = f.name("g");
    let topics = vec![t.clone()];
    let mut a = f
        .log
        .join_group(join(f, &group, &topics, "a"))
        .await
        .unwrap();
    settle(f, &mut [&mut a], "a alone owns 4", |s| s[0].len() == 4).await;
    let mut b = f
        .log
        .join_group(join(f, &group, &topics, "b"))
        .await
        .unwrap();
    settle(f, &mut [&mut a, &mut b], "a and b split 4", |s| {
        let mut all: Vec<_> = s.concat();
        all.sort();
        all.dedup();
        s[0].len() == 2 && s[1].len() == 2 && all.len() == 4
    })
    .await;
    let desc = f.log.describe_group(&group).await.unwrap();
    assert_eq!(desc.group, group);
    b.leave().await.unwrap();
    settle(f, &mut [&mut a], "a takes all back", |s| s[0].len() == 4).await;
    a.leave().await.unwrap();
}

pub async fn group_commits_resume_where_left(f: &Fixture) {
    let t = topic(f, "commit", 1).await;
    let group = f.name("g");
    let topics = vec![t.clone()];
    let first: Vec<Record> = (0..10).map(|i| rec("k", &format!("a{i}"), i)).collect();
    f.log.append(&t, 0, &first).await.unwrap();
    let mut a = f
        .log
        .join_group(join(f, &group, &topics, "a"))
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + f.settle;
    while got.len() < 10 && Instant::now() < deadline {
        for b in a
            .poll(ReadLimits::waiting(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            assert_eq!(b.topic, t);
            got.extend(b.records.into_iter().map(|r| r.offset));
        }
    }
    assert_eq!(got, (0..10).collect::<Vec<i64>>());
    a.commit_position().await.unwrap();
    let committed = f.log.committed_offsets(&group).await.unwrap();
    assert_eq!(
        committed,
        vec![OffsetCommit::new(TopicPartition::new(&t, 0), 10)]
    );
    a.leave().await.unwrap();

    let second: Vec<Record> = (0..3).map(|i| rec("k", &format!("b{i}"), i)).collect();
    f.log.append(&t, 0, &second).await.unwrap();
    let mut b = f
        .log
        .join_group(join(f, &group, &topics, "b"))
        .await
        .unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + f.settle;
    while values.len() < 3 && Instant::now() < deadline {
        for batch in b
            .poll(ReadLimits::waiting(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            values.extend(
                batch
                    .records
                    .into_iter()
                    .map(|r| (r.offset, r.record.value)),
            );
        }
    }
    let want: Vec<(i64, Option<Bytes>)> = (0..3)
        .map(|i| (10 + i, Some(Bytes::from(format!("b{i}")))))
        .collect();
    assert_eq!(values, want, "the new member did not resume at the commit");
    // Several entries for one partition: the last wins; metadata is kept as sent.
    let tp = TopicPartition::new(&t, 0);
    b.commit(&[
        OffsetCommit::new(tp.clone(), 11).with_metadata("first"),
        OffsetCommit::new(tp.clone(), 12).with_metadata("ckpt {\"epoch\": 3} ü"),
    ])
    .await
    .unwrap();
    let meta = if f.skip(
        "group_commits_resume_where_left/metadata",
        f.gaps.commit_metadata,
    ) {
        None
    } else {
        Some("ckpt {\"epoch\": 3} ü")
    };
    let mut committed = f.log.committed_offsets(&group).await.unwrap();
    if meta.is_none() {
        committed.iter_mut().for_each(|c| c.metadata = None);
    }
    assert_eq!(
        committed,
        vec![OffsetCommit {
            partition: tp.clone(),
            offset: 12,
            metadata: meta.map(String::from)
        }]
    );
    let desc = f.log.describe_group(&group).await.unwrap();
    assert!(
        desc.offsets.iter().any(|o| o.partition.topic == t
            && o.committed == 12
            && o.high_watermark == 13
            && o.lag() == 1
            && (meta.is_none() || o.metadata.as_deref() == meta)),
        "describe_group offsets/lag: {:?}",
        desc.offsets
    );
    b.leave().await.unwrap();
}

pub async fn group_evicts_silent_member(f: &Fixture) {
    let t = topic(f, "evict", 2).await;
    let group = f.name("g");
    let topics = vec![t.clone()];
    let mut a = f
        .log
        .join_group(join(f, &group, &topics, "a"))
        .await
        .unwrap();
    let mut b = f
        .log
        .join_group(join(f, &group, &topics, "b"))
        .await
        .unwrap();
    settle(f, &mut [&mut a, &mut b], "a and b split 2", |s| {
        s[0].len() == 1 && s[1].len() == 1
    })
    .await;
    // b goes silent without leaving: after its session timeout a owns both.
    let silent = b;
    settle(f, &mut [&mut a], "a takes over after b's timeout", |s| {
        s[0].len() == 2
    })
    .await;
    drop(silent);
    a.leave().await.unwrap();
}

pub async fn concurrent_appenders_keep_every_record(f: &Fixture) {
    let t = topic(f, "conc", 1).await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let log = f.log.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..25 {
                let batch: Vec<Record> = (0..4)
                    .map(|j| rec(&format!("w{w}"), &format!("{w}-{i}-{j}"), 1))
                    .collect();
                offsets.extend(log.append(&t, 0, &batch).await.unwrap().offsets);
            }
            offsets
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let offs = task.await.unwrap();
        assert!(
            offs.windows(2).all(|w| w[0] < w[1]),
            "a writer's offsets went backwards"
        );
        all.extend(offs);
    }
    all.sort();
    assert_eq!(all, (0..400).collect::<Vec<i64>>());
    let got = read_n(f, &t, 0, 0, 400).await;
    assert_eq!(got.len(), 400);
    // each writer's records are in the order it wrote them
    for w in 0..4 {
        let mine: Vec<String> = got
            .iter()
            .filter(|r| r.record.key.as_deref() == Some(format!("w{w}").as_bytes()))
            .map(|r| String::from_utf8(r.record.value.clone().unwrap().to_vec()).unwrap())
            .collect();
        let want: Vec<String> = (0..25)
            .flat_map(|i| (0..4).map(move |j| format!("{w}-{i}-{j}")))
            .collect();
        assert_eq!(mine, want);
    }
}

pub async fn group_member_seeks(f: &Fixture) {
    let t = topic(f, "seek", 1).await;
    let other = topic(f, "seek-other", 1).await;
    let records: Vec<Record> = (0..6).map(|i| rec("k", &format!("s{i}"), i)).collect();
    f.log.append(&t, 0, &records).await.unwrap();
    let group = f.name("g");
    let mut m = f
        .log
        .join_group(join(f, &group, std::slice::from_ref(&t), "a"))
        .await
        .unwrap();
    settle(f, &mut [&mut m], "member owns the partition", |s| {
        s[0].len() == 1
    })
    .await;
    let tp = TopicPartition::new(&t, 0);
    m.seek(&tp, 4).await.unwrap();
    let mut offsets = Vec::new();
    let deadline = Instant::now() + f.settle;
    while offsets.len() < 2 && Instant::now() < deadline {
        for b in m
            .poll(ReadLimits::waiting(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            offsets.extend(b.records.iter().map(|r| r.offset));
        }
    }
    assert_eq!(offsets, vec![4, 5], "poll after seek(4)");
    m.seek(&tp, 1).await.unwrap();
    let mut again = Vec::new();
    let deadline = Instant::now() + f.settle;
    while again.len() < 5 && Instant::now() < deadline {
        for b in m
            .poll(ReadLimits::waiting(Duration::from_millis(200)))
            .await
            .unwrap()
        {
            again.extend(b.records.iter().map(|r| r.offset));
        }
    }
    assert_eq!(again, vec![1, 2, 3, 4, 5], "poll after seek(1)");
    let err = m.seek(&TopicPartition::new(&other, 0), 0).await;
    assert!(
        err.is_err(),
        "seeking a partition the member does not own must fail"
    );
    m.leave().await.unwrap();
}
