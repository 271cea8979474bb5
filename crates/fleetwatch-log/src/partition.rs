//! One partition of the embedded log: its segments, append with the fsync policies and
//! group commit, reads, time lookups, recovery and retention.

use crate::FsyncPolicy;
use crate::batch;
use crate::io::{FileOpener, SegmentFile, sync_dir};
use crate::segment::{ScanError, Scanner, Segment, segment_file_name};
use fleetwatch_core::{
    ConsumedRecord, LogError, LogResult, ReadBatch, ReadLimits, Record, TopicConfig,
};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// What recovery cut from a partition at start-up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryCut {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Segment file where the damage starts.
    pub segment: String,
    /// Byte position of the first bad byte; everything before it is kept.
    pub position: u64,
    /// Bytes removed (this segment's tail plus any later segments).
    pub bytes_dropped: u64,
    /// What was wrong there.
    pub reason: String,
}

pub(crate) struct PartitionOptions {
    pub policy: FsyncPolicy,
    pub index_interval: u64,
    pub read_chunk: usize,
}

struct State {
    segments: Vec<Segment>,
    /// Next offset to write.
    log_end: i64,
    /// Next offset readers may see (≤ log_end; < log_end only while an `always` sync runs).
    hw: i64,
    log_start: i64,
    /// Offset below which everything is on stable storage.
    synced_offset: i64,
    /// Bumped when unsynced writes are rolled back after a failed fsync.
    epoch: u64,
    buf: Vec<u8>,
}

pub(crate) struct Partition {
    pub topic: Arc<str>,
    pub id: i32,
    dir: PathBuf,
    opener: Arc<dyn FileOpener>,
    opts: Arc<PartitionOptions>,
    state: Mutex<State>,
    sync_lock: tokio::sync::Mutex<()>,
    hw_tx: watch::Sender<i64>,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> LogError {
    move |e| LogError::io(what, e)
}

impl Partition {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // loses acknowledged data (writes are positional and sizes advance last).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens (or creates) the partition in `dir`, recovering its segments. `scan_all`
    /// checks every batch of every segment (after an unclean shutdown); otherwise sealed
    /// segments load their index files and only the active one is scanned.
    pub fn open(
        topic: Arc<str>,
        id: i32,
        dir: PathBuf,
        opener: Arc<dyn FileOpener>,
        opts: Arc<PartitionOptions>,
        scan_all: bool,
        cuts: &mut Vec<RecoveryCut>,
    ) -> LogResult<Partition> {
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut bases: Vec<i64> = std::fs::read_dir(&dir)
            .map_err(io_err(format!("listing {}", dir.display())))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse::<i64>().ok()
            })
            .collect();
        bases.sort_unstable();
        let mut segments: Vec<Segment> = Vec::new();
        let mut expected_next: Option<i64> = None;
        let mut stop_at: Option<usize> = None;
        for (i, base) in bases.iter().copied().enumerate() {
            let path = dir.join(segment_file_name(base, "log"));
            let file = opener
                .open(&path, false)
                .map_err(io_err(format!("opening {}", path.display())))?;
            let len = file
                .len()
                .map_err(io_err(format!("reading the size of {}", path.display())))?;
            let mut seg = Segment::new(base, file, path.clone());
            if let Some(n) = expected_next
                && n != base
            {
                cuts.push(RecoveryCut {
                    topic: topic.to_string(),
                    partition: id,
                    segment: path.display().to_string(),
                    position: 0,
                    bytes_dropped: len,
                    reason: format!("segment starts at offset {base}, expected {n}"),
                });
                stop_at = Some(i);
                break;
            }
            let last = i + 1 == bases.len();
            if !scan_all && !last && seg.load_index_file(len) {
                expected_next = Some(seg.next_offset);
                segments.push(seg);
                continue;
            }
            let file = seg.file.clone();
            let mut scanner = Scanner::new(&*file, 0, len, 1 << 20, true);
            let mut damage: Option<(u64, String)> = None;
            loop {
                match scanner.next_batch() {
                    Ok(Some((pos, header, _))) => {
                        if header.base_offset != seg.next_offset {
                            damage = Some((
                                pos,
                                format!(
                                    "batch at offset {} where {} was expected",
                                    header.base_offset, seg.next_offset
                                ),
                            ));
                            break;
                        }
                        seg.note_batch(pos, &header, opts.index_interval);
                    }
                    Ok(None) => break,
                    Err(ScanError::Batch { pos, error }) => {
                        damage = Some((pos, error.to_string()));
                        break;
                    }
                    Err(ScanError::Io(e)) => {
                        return Err(LogError::io(format!("recovering {}", path.display()), e));
                    }
                }
            }
            if let Some((pos, reason)) = damage {
                let later: u64 = bases[i + 1..]
                    .iter()
                    .filter_map(|b| {
                        std::fs::metadata(dir.join(segment_file_name(*b, "log")))
                            .ok()
                            .map(|m| m.len())
                    })
                    .sum();
                cuts.push(RecoveryCut {
                    topic: topic.to_string(),
                    partition: id,
                    segment: path.display().to_string(),
                    position: pos,
                    bytes_dropped: len - pos + later,
                    reason,
                });
                seg.file
                    .set_len(pos)
                    .map_err(io_err(format!("cutting {} at {pos}", path.display())))?;
                seg.file
                    .sync_data()
                    .map_err(io_err(format!("syncing {}", path.display())))?;
                let _ = std::fs::remove_file(path.with_extension("index"));
                segments.push(seg);
                stop_at = Some(i + 1);
                break;
            }
            expected_next = Some(seg.next_offset);
            segments.push(seg);
        }
        if let Some(from) = stop_at {
            for b in &bases[from..] {
                Segment::remove_files(&dir.join(segment_file_name(*b, "log")));
            }
        }
        // An empty segment left by a cut at position 0 is kept only if it is the first.
        while segments.len() > 1 && segments.last().is_some_and(|s| s.size == 0) {
            if let Some(s) = segments.pop() {
                Segment::remove_files(&s.path);
            }
        }
        if segments.is_empty() {
            let path = dir.join(segment_file_name(0, "log"));
            let file = opener
                .open(&path, true)
                .map_err(io_err(format!("creating {}", path.display())))?;
            sync_dir(&dir).map_err(io_err(format!("syncing {}", dir.display())))?;
            segments.push(Segment::new(0, file, path));
        }
        let log_start = segments[0].base_offset;
        let log_end = segments.last().map_or(0, |s| s.next_offset);
        let (hw_tx, _) = watch::channel(log_end);
        Ok(Partition {
            topic,
            id,
            dir,
            opener,
            opts,
            state: Mutex::new(State {
                segments,
                log_end,
                hw: log_end,
                log_start,
                synced_offset: log_end,
                epoch: 0,
                buf: Vec::new(),
            }),
            sync_lock: tokio::sync::Mutex::new(()),
            hw_tx,
        })
    }

    /// Opens a new active segment at `log_end`; the old one is synced (unless the policy is
    /// `never`) and its index file written.
    fn roll(&self, st: &mut State) -> LogResult<()> {
        let policy = self.opts.policy;
        if let Some(old) = st.segments.last() {
            if policy != FsyncPolicy::Never {
                old.file
                    .sync_data()
                    .map_err(io_err(format!("syncing {}", old.path.display())))?;
                st.synced_offset = st.synced_offset.max(old.next_offset);
            }
            if let Err(e) = old.write_index_file() {
                tracing::warn!(segment = %old.path.display(), error = %e, "could not write index file; it will be rebuilt at start");
            }
        }
        let base = st.log_end;
        let path = self.dir.join(segment_file_name(base, "log"));
        let file = self
            .opener
            .open(&path, true)
            .map_err(io_err(format!("creating {}", path.display())))?;
        sync_dir(&self.dir).map_err(io_err(format!("syncing {}", self.dir.display())))?;
        st.segments.push(Segment::new(base, file, path));
        Ok(())
    }

    /// Writes one batch; returns (first offset, one past the last, epoch). Nothing changes
    /// when it fails.
    fn write(&self, records: &[Record], config: &TopicConfig) -> LogResult<(i64, i64, u64)> {
        for r in records {
            let size = r.size_bytes();
            if size > config.max_message_bytes {
                return Err(LogError::RecordTooLarge {
                    topic: self.topic.to_string(),
                    size,
                    limit: config.max_message_bytes,
                });
            }
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        let base = st.log_end;
        let mut buf = std::mem::take(&mut st.buf);
        buf.clear();
        batch::encode(&mut buf, base, records);
        let result = (|| {
            let needs_roll = st
                .segments
                .last()
                .is_none_or(|s| s.size > 0 && s.size + buf.len() as u64 > config.segment_bytes);
            if needs_roll {
                self.roll(st)?;
            }
            let seg = st
                .segments
                .last_mut()
                .ok_or_else(|| LogError::Backend("partition has no active segment".into()))?;
            let pos = seg.size;
            seg.file
                .write_all_at(&buf, pos)
                .map_err(io_err(format!("appending to {}", seg.path.display())))?;
            let header = batch::decode_header(&buf, false)
                .map_err(|e| LogError::Backend(format!("encoded batch did not decode: {e}")))?;
            seg.note_batch(pos, &header, self.opts.index_interval);
            Ok(header.next_offset())
        })();
        st.buf = buf;
        let end = result?;
        st.log_end = end;
        if self.opts.policy != FsyncPolicy::Always {
            st.hw = end;
            self.hw_tx.send_replace(end);
        }
        Ok((base, end, st.epoch))
    }

    /// Appends a batch and returns its offsets once durable by the policy.
    pub async fn append(&self, records: &[Record], config: &TopicConfig) -> LogResult<Vec<i64>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (base, end, epoch) = self.write(records, config)?;
        if self.opts.policy == FsyncPolicy::Always {
            self.sync_until(end, Some(epoch)).await?;
        }
        Ok((base..end).collect())
    }

    /// Group commit: makes everything up to `end` durable with one fdatasync shared by all
    /// appenders waiting at the same time. With `always`, a failed sync rolls back every
    /// unsynced (so unacknowledged) batch, and fails each appender whose batch went.
    async fn sync_until(&self, end: i64, epoch: Option<u64>) -> LogResult<()> {
        let _turn = self.sync_lock.lock().await;
        let (target, file, path) = {
            let st = self.lock();
            if epoch.is_some_and(|e| e != st.epoch) {
                return Err(LogError::Backend(format!(
                    "{}-{}: the batch was rolled back after a failed fsync; retry",
                    self.topic, self.id
                )));
            }
            if st.synced_offset >= end {
                return Ok(());
            }
            let Some(seg) = st.segments.last() else {
                return Ok(());
            };
            (st.log_end, seg.file.clone(), seg.path.clone())
        };
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| LogError::Backend(format!("fsync task failed: {e}")))?;
        let mut st = self.lock();
        match synced {
            Ok(()) => {
                st.synced_offset = st.synced_offset.max(target);
                if self.opts.policy == FsyncPolicy::Always && st.hw < target {
                    st.hw = target;
                    self.hw_tx.send_replace(target);
                }
                Ok(())
            }
            Err(e) => {
                if self.opts.policy == FsyncPolicy::Always {
                    self.roll_back_unsynced(&mut st);
                }
                Err(LogError::io(format!("syncing {}", path.display()), e))
            }
        }
    }

    /// Drops every batch past the synced offset (they were never acknowledged).
    fn roll_back_unsynced(&self, st: &mut State) {
        let keep = st.synced_offset;
        st.epoch += 1;
        // A roll syncs the segment it closes, so only the active segment holds unsynced data.
        if let Some(seg) = st.segments.last_mut()
            && seg.next_offset > keep
        {
            let cut = seg
                .index
                .partition_point(|(r, _)| seg.base_offset + i64::from(*r) < keep);
            // Positions of batch starts are only indexed sparsely: rescan from the last
            // indexed batch before `keep` to find the exact byte position.
            let start = if cut == 0 {
                0
            } else {
                u64::from(seg.index[cut - 1].1)
            };
            let mut pos = start;
            let file = seg.file.clone();
            let mut scanner = Scanner::new(&*file, start, seg.size, 1 << 16, false);
            while let Ok(Some((p, h, _))) = scanner.next_batch() {
                if h.base_offset >= keep {
                    pos = p;
                    break;
                }
                pos = p + h.total_len as u64;
            }
            seg.index.truncate(cut);
            seg.time_index.truncate(cut);
            let _ = seg.file.set_len(pos);
            seg.size = pos;
            seg.next_offset = keep;
            seg.bytes_since_index = u64::MAX / 2;
        }
        st.log_end = keep;
    }

    /// fdatasync of the active segment if anything is unsynced (interval flusher, `flush`).
    pub async fn flush(&self) -> LogResult<()> {
        let end = self.lock().log_end;
        self.sync_until(end, None).await
    }

    /// High watermark, log start.
    pub fn offsets(&self) -> (i64, i64) {
        let st = self.lock();
        (st.hw, st.log_start)
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn watch_hw(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Reads without waiting.
    pub fn read_now(&self, offset: i64, limits: &ReadLimits) -> LogResult<ReadBatch> {
        let (hw, log_start, segs) = {
            let st = self.lock();
            if offset < st.log_start || offset > st.hw {
                return Err(LogError::OffsetOutOfRange {
                    topic: self.topic.to_string(),
                    partition: self.id,
                    offset,
                    log_start: st.log_start,
                    high_watermark: st.hw,
                });
            }
            if offset == st.hw || limits.max_records == 0 {
                return Ok(ReadBatch {
                    records: Vec::new(),
                    high_watermark: st.hw,
                    log_start_offset: st.log_start,
                });
            }
            let first = st
                .segments
                .partition_point(|s| s.base_offset <= offset)
                .saturating_sub(1);
            let segs: Vec<(Arc<dyn SegmentFile>, u64, u64)> = st.segments[first..]
                .iter()
                .take(4)
                .enumerate()
                .map(|(i, s)| {
                    let start = if i == 0 {
                        s.position_for_offset(offset)
                    } else {
                        0
                    };
                    (s.file.clone(), start, s.size)
                })
                .collect();
            (st.hw, st.log_start, segs)
        };
        let mut records = Vec::with_capacity(limits.max_records.min(4096));
        let mut bytes = 0usize;
        'segments: for (file, start, end) in segs {
            let chunk = self.opts.read_chunk.min(limits.max_bytes).max(4096);
            let mut scanner = Scanner::new(&*file, start, end, chunk, true);
            loop {
                let item = scanner.next_batch().map_err(|e| self.scan_error(e))?;
                let Some((pos, header, data)) = item else {
                    break;
                };
                if header.next_offset() <= offset {
                    continue;
                }
                if header.base_offset >= hw {
                    break 'segments;
                }
                if !records.is_empty()
                    && (bytes + data.len() > limits.max_bytes
                        || records.len() >= limits.max_records)
                {
                    break 'segments;
                }
                bytes += data.len();
                batch::decode_records(data, &header, self.id, offset, &mut records).map_err(
                    |e| LogError::Corrupt {
                        location: format!("{}-{} at byte {pos}", self.topic, self.id),
                        reason: e.to_string(),
                    },
                )?;
                if records.len() >= limits.max_records {
                    break 'segments;
                }
            }
        }
        records.truncate(limits.max_records);
        while records.last().is_some_and(|r| r.offset >= hw) {
            records.pop();
        }
        Ok(ReadBatch {
            records,
            high_watermark: hw,
            log_start_offset: log_start,
        })
    }

    fn scan_error(&self, e: ScanError) -> LogError {
        match e {
            ScanError::Io(e) => LogError::io(format!("reading {}-{}", self.topic, self.id), e),
            ScanError::Batch { pos, error } => LogError::Corrupt {
                location: format!("{}-{} at byte {pos}", self.topic, self.id),
                reason: error.to_string(),
            },
        }
    }

    /// First offset whose timestamp is ≥ `ts`, or the high watermark.
    pub fn offset_for_timestamp(&self, ts: i64) -> LogResult<i64> {
        let (hw, candidates) = {
            let st = self.lock();
            let c: Vec<(Arc<dyn SegmentFile>, u64, u64)> = st
                .segments
                .iter()
                .filter(|s| s.max_timestamp >= ts)
                .map(|s| (s.file.clone(), s.position_for_timestamp(ts), s.size))
                .collect();
            (st.hw, c)
        };
        for (file, start, end) in candidates {
            let mut scanner = Scanner::new(&*file, start, end, 1 << 16, false);
            while let Some((_, header, data)) =
                scanner.next_batch().map_err(|e| self.scan_error(e))?
            {
                if header.base_offset >= hw {
                    return Ok(hw);
                }
                if header.max_timestamp < ts {
                    continue;
                }
                let mut out: Vec<ConsumedRecord> = Vec::new();
                batch::decode_records(data, &header, self.id, 0, &mut out).map_err(|e| {
                    LogError::Corrupt {
                        location: format!("{}-{}", self.topic, self.id),
                        reason: e.to_string(),
                    }
                })?;
                if let Some(r) = out
                    .iter()
                    .find(|r| r.record.timestamp >= ts && r.offset < hw)
                {
                    return Ok(r.offset);
                }
            }
        }
        Ok(hw)
    }

    /// Deletes sealed segments past the topic's retention; returns bytes freed.
    pub fn enforce_retention(&self, config: &TopicConfig, now_ms: i64) -> u64 {
        if config.cleanup_policy == fleetwatch_core::CleanupPolicy::Compact {
            return 0;
        }
        let mut removed = Vec::new();
        {
            let mut st = self.lock();
            // An active segment whose every record has expired is rolled, so that a quiet
            // topic does not keep old data forever in its only segment.
            let cutoff = config.retention_ms.map(|ms| now_ms.saturating_sub(ms));
            if let (Some(cutoff), Some(active)) = (cutoff, st.segments.last())
                && active.size > 0
                && active.next_offset <= st.hw
                && active.max_timestamp < cutoff
                && let Err(e) = self.roll(&mut st)
            {
                tracing::warn!(topic = %self.topic, partition = self.id, error = %e, "could not roll an expired segment");
            }
            let mut total: u64 = st.segments.iter().map(|s| s.size).sum();
            while st.segments.len() > 1 {
                let first = &st.segments[0];
                // Never delete what readers cannot see yet.
                if first.next_offset > st.hw {
                    break;
                }
                let expired = cutoff.is_some_and(|c| first.max_timestamp < c);
                let oversize = config
                    .retention_bytes
                    .is_some_and(|limit| total - first.size >= limit);
                if !(expired || oversize) {
                    break;
                }
                total -= first.size;
                removed.push(st.segments.remove(0));
                st.log_start = st.segments[0].base_offset;
            }
        }
        let mut freed = 0;
        for s in removed {
            freed += s.size;
            tracing::info!(topic = %self.topic, partition = self.id, segment = %s.path.display(), "retention deleted segment");
            Segment::remove_files(&s.path);
        }
        freed
    }

    /// Writes index files for every sealed segment and syncs the active one (clean close).
    pub fn close(&self) -> LogResult<()> {
        let st = self.lock();
        for s in &st.segments {
            if let Err(e) = s.write_index_file() {
                tracing::warn!(segment = %s.path.display(), error = %e, "could not write index file");
            }
        }
        if let Some(s) = st.segments.last() {
            s.file
                .sync_data()
                .map_err(io_err(format!("syncing {}", s.path.display())))?;
        }
        Ok(())
    }

    /// Total bytes in the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.iter().map(|s| s.size).sum()
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.lock().segments.len()
    }
}
