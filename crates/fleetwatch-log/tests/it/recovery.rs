use bytes::Bytes;
use fleetwatch_core::{LogAdmin, LogData, OffsetSpec, ReadLimits, Record, TopicConfig};
use fleetwatch_log::{EmbeddedConfig, EmbeddedLog};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn rec(i: usize) -> Record {
    Record::new(
        Some(Bytes::from(format!("key-{i}"))),
        Some(Bytes::from(format!("value-{i:06}-{}", "x".repeat(100)))),
    )
    .with_timestamp(1_000_000 + i as i64)
}

async fn fill(log: &EmbeddedLog, topic: &str, n: usize, batch: usize) {
    for start in (0..n).step_by(batch) {
        let records: Vec<Record> = (start..(start + batch).min(n)).map(rec).collect();
        log.append(topic, 0, &records).await.unwrap();
    }
}

async fn read_all(log: &EmbeddedLog, topic: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next = log
        .offset_for(topic, 0, OffsetSpec::Earliest)
        .await
        .unwrap();
    loop {
        let b = log
            .read(topic, 0, next, ReadLimits::default())
            .await
            .unwrap();
        if b.records.is_empty() {
            return out;
        }
        for r in &b.records {
            assert_eq!(
                r.record.value.as_deref().unwrap(),
                rec(r.offset as usize).value.as_deref().unwrap(),
                "value at offset {}",
                r.offset
            );
        }
        next = b.next_offset(next);
        out.extend(b.records.iter().map(|r| r.offset));
    }
}

fn small_segments() -> TopicConfig {
    TopicConfig {
        segment_bytes: 16 * 1024,
        ..TopicConfig::with_partitions(1)
    }
}

fn segment_files(dir: &Path, topic: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("topics").join(topic).join("0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn data_survives_clean_and_unclean_restarts_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", small_segments()).await.unwrap();
        fill(&log, "t", 1000, 7).await;
        log.close().await.unwrap();
    }
    assert!(
        segment_files(dir.path(), "t").len() > 5,
        "expected several segments"
    );
    {
        let log = cfg.build().unwrap();
        assert!(log.recovery_cuts().is_empty());
        assert_eq!(read_all(&log, "t").await, (0..1000).collect::<Vec<_>>());
        fill(&log, "t", 1000, 1).await; // offsets 1000.. (values repeat rec(i) by index)
        // dropped without close: unclean
    }
    let log = cfg.build().unwrap();
    assert!(log.recovery_cuts().is_empty());
    assert_eq!(
        log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap(),
        2000
    );
    // timestamps lookups work across segments after recovery
    assert_eq!(
        log.offset_for("t", 0, OffsetSpec::Timestamp(1_000_500))
            .await
            .unwrap(),
        500
    );
}

#[tokio::test]
async fn torn_tail_is_cut_and_everything_before_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .await
            .unwrap();
        fill(&log, "t", 100, 10).await;
    }
    let seg = segment_files(dir.path(), "t").pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    // A torn write: half a batch at the end.
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 50).unwrap();
    let log = cfg.build().unwrap();
    let cuts = log.recovery_cuts();
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert!(cuts[0].reason.contains("truncated"), "{:?}", cuts[0]);
    assert_eq!(read_all(&log, "t").await, (0..90).collect::<Vec<_>>());
    // appends continue right after the cut
    let ack = log.append("t", 0, &[rec(90)]).await.unwrap();
    assert_eq!(ack.offsets, vec![90]);
}

fn base_of(seg: &Path) -> i64 {
    seg.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

fn overwrite(path: &Path, at: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(bytes).unwrap();
}

fn corrupt_files(dir: &Path, topic: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("topics").join(topic).join("0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "corrupt"))
        .collect();
    v.sort();
    v
}

/// The offsets missing from `kept` (sorted) within 0..end.
fn missing(kept: &[i64], end: i64) -> Vec<i64> {
    (0..end)
        .filter(|o| kept.binary_search(o).is_err())
        .collect()
}

#[tokio::test]
async fn corrupt_byte_in_an_old_segment_is_moved_aside_and_every_later_batch_kept() {
    use fleetwatch_core::LogAdmin;
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", small_segments()).await.unwrap();
        fill(&log, "t", 600, 5).await;
    }
    let segs = segment_files(dir.path(), "t");
    assert!(segs.len() >= 3);
    let victim = &segs[1];
    let base = base_of(victim);
    overwrite(victim, 3000, b"\xff\xfe\xfd");
    let log = cfg.build().unwrap();
    assert!(log.recovery_cuts().is_empty(), "{:?}", log.recovery_cuts());
    let health = log.health();
    assert!(health.notes.is_empty(), "{health:?}");
    assert_eq!(health.degraded.len(), 1, "{health:?}");
    let reason = &health.degraded[0].reason;
    assert_eq!(health.degraded[0].partition.topic, "t");
    assert!(
        reason.contains(&format!("{base:020}.log")) && reason.contains(".corrupt"),
        "{reason}"
    );
    let copies = corrupt_files(dir.path(), "t");
    assert_eq!(copies.len(), 1);
    assert!(reason.contains(copies[0].file_name().unwrap().to_str().unwrap()));
    assert_eq!(segment_files(dir.path(), "t"), segs, "no segment deleted");
    // Only the one damaged batch (5 records) is gone; everything after it is read at its
    // original offsets.
    let kept = read_all(&log, "t").await;
    let lost = missing(&kept, 600);
    assert_eq!(lost.len(), 5, "{lost:?}");
    assert!(lost[0] > base && lost[4] == lost[0] + 4, "{lost:?}");
    assert!(
        reason.contains(&format!("offsets {}..{} lost", lost[0], lost[4] + 1)),
        "{reason}"
    );
    assert_eq!(*kept.last().unwrap(), 599);
    // A read inside the lost range continues from the next intact batch.
    let b = log
        .read("t", 0, lost[2], ReadLimits::default())
        .await
        .unwrap();
    assert_eq!(b.records[0].offset, lost[4] + 1);
    // Appends go on after the last offset.
    assert_eq!(
        log.append("t", 0, &[rec(600)]).await.unwrap().offsets,
        vec![600]
    );
    log.close().await.unwrap();
    drop(log);
    // Known damage is still reported and skipped after a clean and an unclean restart.
    for clean in [true, false] {
        let log = cfg.build().unwrap();
        assert_eq!(
            log.health().degraded.len(),
            1,
            "clean={clean}: {:?}",
            log.health()
        );
        let kept = read_all(&log, "t").await;
        assert_eq!(missing(&kept, 601), lost, "clean={clean}");
        assert_eq!(corrupt_files(dir.path(), "t").len(), 1);
        if clean {
            drop(log); // unclean next time
        } else {
            log.close().await.unwrap();
        }
    }
}

#[tokio::test]
async fn garbage_in_the_middle_of_a_big_segment_keeps_what_follows() {
    use fleetwatch_core::LogAdmin;
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .await
            .unwrap();
        fill(&log, "t", 20_000, 10).await;
    }
    let seg = segment_files(dir.path(), "t").pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    assert!(len > 2_000_000, "{len}");
    overwrite(&seg, len / 2, &[0xad; 16]);
    let log = cfg.build().unwrap();
    assert!(log.recovery_cuts().is_empty(), "{:?}", log.recovery_cuts());
    assert_eq!(log.health().degraded.len(), 1);
    let kept = read_all(&log, "t").await;
    let lost = missing(&kept, 20_000);
    assert!(!lost.is_empty() && lost.len() <= 20, "{} lost", lost.len());
    assert_eq!(*kept.last().unwrap(), 19_999);
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        len,
        "nothing truncated"
    );
}

#[tokio::test]
async fn a_torn_tail_is_a_note_not_a_fault_and_damage_before_it_is_kept() {
    use fleetwatch_core::LogAdmin;
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .await
            .unwrap();
        fill(&log, "t", 100, 10).await;
    }
    let seg = segment_files(dir.path(), "t").pop().unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 50)
        .unwrap();
    overwrite(&seg, 100, b"\x00\x00\x00"); // and damage in the first batch
    let log = cfg.build().unwrap();
    assert_eq!(log.recovery_cuts().len(), 1);
    let h = log.health();
    assert_eq!(h.notes.len(), 1, "{h:?}");
    assert!(h.notes[0].contains("torn tail"), "{h:?}");
    assert_eq!(h.degraded.len(), 1, "{h:?}");
    assert_eq!(read_all(&log, "t").await, (10..90).collect::<Vec<_>>());
}

#[tokio::test]
async fn recovery_statistics_say_what_was_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", small_segments()).await.unwrap();
        fill(&log, "t", 600, 5).await;
        log.close().await.unwrap();
    }
    let s = cfg.build().unwrap().recovery_stats();
    assert!(!s.unclean);
    assert!(s.segments_total > 5, "{s:?}");
    assert!(s.segments_checked < s.segments_total, "{s:?}");
    // dropped without close: unclean
    let s = cfg.build().unwrap().recovery_stats();
    assert!(s.unclean);
    assert_eq!(s.segments_checked, s.segments_total, "{s:?}");
    assert_eq!(s.bytes_checked, s.bytes_total, "{s:?}");
    assert!(s.bytes_total > 600 * 100 && s.seconds > 0.0, "{s:?}");
}

#[tokio::test]
async fn retention_by_size_and_time_deletes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedConfig::at(dir.path()).build().unwrap();
    let cfg = TopicConfig {
        retention_bytes: Some(40 * 1024),
        retention_ms: None,
        ..small_segments()
    };
    log.create_topic("sized", cfg).await.unwrap();
    fill(&log, "sized", 2000, 10).await;
    let before = log
        .offset_for("sized", 0, OffsetSpec::Earliest)
        .await
        .unwrap();
    assert_eq!(before, 0);
    let freed = log.enforce_retention(fleetwatch_core::now_ms());
    assert!(freed > 0);
    let start = log
        .offset_for("sized", 0, OffsetSpec::Earliest)
        .await
        .unwrap();
    assert!(start > 0);
    let size: u64 = log
        .sizes()
        .iter()
        .filter(|(tp, _, _)| tp.topic == "sized")
        .map(|x| x.1)
        .sum();
    assert!(size < 60 * 1024, "size {size}");
    // reading below the log start is an error naming the range; from the start works
    assert!(
        log.read("sized", 0, 0, ReadLimits::default())
            .await
            .is_err()
    );
    let all = read_all(&log, "sized").await;
    assert_eq!(*all.first().unwrap(), start);
    assert_eq!(*all.last().unwrap(), 1999);

    let timed = TopicConfig {
        retention_ms: Some(60_000),
        ..small_segments()
    };
    log.create_topic("timed", timed).await.unwrap();
    fill(&log, "timed", 500, 10).await; // timestamps around 1970: all expired
    log.enforce_retention(fleetwatch_core::now_ms());
    let start = log
        .offset_for("timed", 0, OffsetSpec::Earliest)
        .await
        .unwrap();
    let segs = segment_files(dir.path(), "timed");
    assert_eq!(segs.len(), 1, "only the active segment remains");
    assert!(start > 0);
    assert_eq!(
        log.offset_for("timed", 0, OffsetSpec::Latest)
            .await
            .unwrap(),
        500
    );
}

#[tokio::test]
async fn committed_offsets_survive_restart() {
    use fleetwatch_core::{JoinOptions, LogGroups, OffsetCommit, TopicPartition};
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", TopicConfig::with_partitions(2))
            .await
            .unwrap();
        let mut m = log
            .join_group(JoinOptions::new("g", vec!["t".into()]))
            .await
            .unwrap();
        m.assignment().await.unwrap();
        m.commit(&[OffsetCommit::new(TopicPartition::new("t", 1), 42)])
            .await
            .unwrap();
    }
    let log = cfg.build().unwrap();
    assert_eq!(
        log.committed_offsets("g").await.unwrap(),
        vec![OffsetCommit::new(TopicPartition::new("t", 1), 42)]
    );
    assert_eq!(log.list_groups().await.unwrap(), vec!["g".to_string()]);
}

#[tokio::test]
async fn a_data_dir_is_opened_by_one_log_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    let first = cfg.build().unwrap();
    let err = cfg.build().err().expect("second open must fail");
    assert!(err.to_string().contains("in use by another"), "{err}");
    drop(first);
    cfg.build().unwrap();
}

#[tokio::test]
async fn a_busy_partition_does_not_starve_the_others_in_a_group_poll() {
    use fleetwatch_core::{JoinOptions, LogGroups};
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedConfig::at(dir.path()).build().unwrap();
    log.create_topic("t", TopicConfig::with_partitions(2))
        .await
        .unwrap();
    let busy: Vec<Record> = (0..5000).map(rec).collect();
    log.append("t", 0, &busy).await.unwrap();
    log.append("t", 1, &[rec(1)]).await.unwrap();
    let mut m = log
        .join_group(JoinOptions::new("g", vec!["t".into()]))
        .await
        .unwrap();
    let mut seen_quiet = false;
    for _ in 0..4 {
        let limits = ReadLimits {
            max_records: 100,
            ..Default::default()
        };
        for b in m.poll(limits).await.unwrap() {
            seen_quiet |= b.records.iter().any(|r| r.partition == 1);
        }
    }
    assert!(
        seen_quiet,
        "partition 1 was never polled while partition 0 had a backlog"
    );
}

#[tokio::test]
async fn reads_check_checksums_and_name_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedConfig::at(dir.path()).build().unwrap();
    log.create_topic("t", small_segments()).await.unwrap();
    fill(&log, "t", 600, 5).await;
    // bit rot in the first segment while the log is open (recovery cannot see it)
    let first = segment_files(dir.path(), "t").remove(0);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    f.seek(SeekFrom::Start(200)).unwrap();
    f.write_all(b"\x00\x01\x02").unwrap();
    drop(f);
    let err = log
        .read("t", 0, 0, ReadLimits::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("corrupt") && msg.contains("checksum") && msg.contains("t-0"),
        "{msg}"
    );
    // data in other segments is still served
    let b = log.read("t", 0, 599, ReadLimits::default()).await.unwrap();
    assert_eq!(b.records[0].offset, 599);
}

#[tokio::test]
async fn damage_in_a_sealed_segment_after_a_clean_stop_is_served_around() {
    use fleetwatch_core::{LogAdmin, LogError};
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", small_segments()).await.unwrap();
        fill(&log, "t", 600, 5).await;
        log.close().await.unwrap();
    }
    let segs = segment_files(dir.path(), "t");
    let victim = &segs[1];
    let base = base_of(victim);
    let next_base = base_of(&segs[2]);
    overwrite(victim, 8000, b"\x00\x01\x02");
    // clean stop: the sealed segment is not scanned, the damage is found by reads
    let log = cfg.build().unwrap();
    assert!(log.health().degraded.is_empty());
    // every intact batch before the damage is served
    let mut next = base;
    let mut served = Vec::new();
    let err = loop {
        match log.read("t", 0, next, ReadLimits::default()).await {
            Ok(b) => {
                assert!(!b.records.is_empty());
                served.extend(b.records.iter().map(|r| r.offset));
                next = b.next_offset(next);
            }
            Err(e) => break e,
        }
    };
    assert_eq!(served, (base..next).collect::<Vec<_>>());
    assert!(next > base && next < next_base, "{next}");
    // the error comes when the damaged batch is the first thing to serve, names the file
    // and byte, and says where intact records resume
    assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{base:020}.log")) && msg.contains("at byte"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("resume at offset {}", next + 5)),
        "{msg}"
    );
    // it stays an error there (nothing silently skipped) ...
    assert!(
        log.read("t", 0, next + 2, ReadLimits::default())
            .await
            .is_err()
    );
    // ... reads before it still work ...
    let b = log.read("t", 0, base, ReadLimits::default()).await.unwrap();
    assert_eq!(b.records[0].offset, base);
    // ... and a reader seeking past it goes on, through the rest of the segment and beyond
    let mut from = next + 5;
    let mut rest = Vec::new();
    loop {
        let b = log.read("t", 0, from, ReadLimits::default()).await.unwrap();
        if b.records.is_empty() {
            break;
        }
        rest.extend(b.records.iter().map(|r| r.offset));
        from = b.next_offset(from);
    }
    assert_eq!(rest, (next + 5..600).collect::<Vec<_>>());
    // and the partition is reported degraded, with file and byte
    let h = log.health();
    assert_eq!(h.degraded.len(), 1, "{h:?}");
    let reason = &h.degraded[0].reason;
    assert!(
        reason.contains("checksum failure found on read")
            && reason.contains(&format!("{base:020}.log")),
        "{reason}"
    );
    assert_eq!(corrupt_files(dir.path(), "t").len(), 1);
}

#[tokio::test]
async fn damage_in_one_partition_does_not_stop_a_group_poll_of_the_others() {
    use fleetwatch_core::{JoinOptions, LogGroups};
    let dir = tempfile::tempdir().unwrap();
    let cfg = EmbeddedConfig::at(dir.path());
    {
        let log = cfg.build().unwrap();
        log.create_topic("t", TopicConfig::with_partitions(2))
            .await
            .unwrap();
        log.append("t", 0, &[rec(0), rec(1)]).await.unwrap();
        log.append("t", 1, &[rec(0), rec(1)]).await.unwrap();
        log.close().await.unwrap();
    }
    // bit rot in partition 0's first batch while the log is open: found on read
    let log = cfg.build().unwrap();
    let p0 = dir.path().join("topics/t/0").join(format!("{:020}.log", 0));
    overwrite(&p0, 40, b"\xff");
    log.append("t", 0, &[rec(2)]).await.unwrap();
    let mut m = log
        .join_group(JoinOptions::new("g", vec!["t".into()]))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        if let Ok(batches) = m.poll(ReadLimits::default()).await {
            for b in batches {
                got.extend(b.records.iter().map(|r| (r.partition, r.offset)));
            }
        }
    }
    got.sort();
    assert!(got.contains(&(1, 0)) && got.contains(&(1, 1)), "{got:?}");
}
