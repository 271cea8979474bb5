//! One partition of the embedded log: its segments, append with the fsync policies and
//! group commit, reads, time lookups, recovery and retention.
//!
//! ## Recovery: what is kept, cut and moved aside
//!
//! After an unclean stop every segment is checked (CRC, offset continuity); after a clean one
//! only the active segment (sealed ones load their index files) — damage in a sealed segment
//! is then found by the read that meets it.
//!
//! - A **torn tail** — an invalid or partial batch at the end of the *last* segment followed
//!   by nothing valid, after an *unclean* stop — is what a crash leaves; it is cut (never
//!   acknowledged under `always`) and reported as a [`RecoveryCut`] (`health().notes`).
//! - **Damage anywhere else** is never deleted. Its bytes are copied to
//!   `<base>-<pos>.corrupt` beside the segment; the scan resynchronises on the next intact
//!   batch (header and CRC check out, base offset ≥ the next offset expected and at most one
//!   higher per [`batch::MIN_RECORD_LEN`] bytes skipped, below the next segment's base; and,
//!   since the CRC does not cover the base offset, not contradicted by the intact batch after
//!   it). The range becomes a *hole* of the segment; the partition is reported in `health().degraded`
//!   naming the segment, the byte range, the copy and the offsets lost. Damage running to the
//!   end of a sealed segment (or of the active one after a clean stop) is copied aside and
//!   then truncated from the segment (a move, not a loss).
//! - A segment whose base offset overlaps the one before it is renamed aside whole.
//!
//! What stays consistent:
//!
//! - **Offsets** never move: every intact batch stays readable at its original offsets. Lost
//!   offsets are never reused, except a torn tail's and a tail moved aside (the log end is one
//!   past the last intact batch).
//! - **The offset index** only ever holds positions of intact batch starts; the first batch
//!   after a hole is always indexed, so a seek past a hole does not scan through it.
//! - **The high watermark** is one past the last intact batch of the last segment. A read at
//!   an offset inside a hole found by recovery continues from the next intact batch; a read
//!   whose first record to serve lies in a hole found *by a read* gets a
//!   [`LogError::Corrupt`] naming the file, byte and the offset where intact records resume
//!   (records before the hole are served first; a reader positioned or seeking past the hole
//!   continues).

use crate::FsyncPolicy;
use crate::batch::{self, OffsetBound};
use crate::io::{FileOpener, SegmentFile, sync_dir};
use crate::segment::{
    Damage, Hole, Item, ScanError, Scanner, Segment, copy_range_to, corrupt_file_name,
    parse_corrupt_file_name, recover_segment, resync, segment_file_name,
};
use fleetwatch_core::{
    ConsumedRecord, DegradedPartition, LogError, LogResult, ReadBatch, ReadLimits, Record,
    TopicConfig, TopicPartition, Watermarks,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// What recovery cut from a partition at start-up: only ever a torn tail at the end of a
/// partition's last segment after an unclean stop.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryCut {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Segment file where the torn tail starts.
    pub segment: String,
    /// Byte position of the first bad byte; everything before it is kept.
    pub position: u64,
    /// Bytes removed (the tail of the last segment).
    pub bytes_dropped: u64,
    /// What was wrong there.
    pub reason: String,
}

/// What start-up recovery checked and how long it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RecoveryStats {
    /// No clean-shutdown marker was found, so every segment was checked.
    pub unclean: bool,
    /// Segments whose every batch was read and checked.
    pub segments_checked: u64,
    /// Bytes of those segments.
    pub bytes_checked: u64,
    /// Segments opened in all.
    pub segments_total: u64,
    /// Bytes of all segments.
    pub bytes_total: u64,
    /// Wall-clock seconds spent opening the log (recovery included).
    pub seconds: f64,
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
    degraded: Mutex<Vec<DegradedPartition>>,
}

/// Damage a read met that no hole covers yet.
pub(crate) struct FreshDamage {
    base: i64,
    pos: u64,
    expected: Option<i64>,
    reason: String,
}

/// Why a read did not return a batch.
pub(crate) enum ReadFail {
    Log(LogError),
    /// Quarantine it (off the async threads) and read again.
    Fresh(FreshDamage),
}

impl From<LogError> for ReadFail {
    fn from(e: LogError) -> Self {
        ReadFail::Log(e)
    }
}

struct SegView {
    file: Arc<dyn SegmentFile>,
    path: PathBuf,
    base: i64,
    start: u64,
    start_offset: i64,
    end: u64,
    holes: Arc<Vec<Hole>>,
}

/// What a write needs before it can go ahead.
pub(crate) enum WriteStep {
    /// Written: first offset, one past the last, epoch.
    Done(i64, i64, u64),
    /// The active segment is full: roll first ([`Partition::prepare_roll`]).
    Roll { batch_len: u64 },
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> LogError {
    move |e| LogError::io(what, e)
}

fn damage_reason(path: &Path, d: &Damage, copy: &Path, lost_to: Option<i64>) -> String {
    let lost = match (d.resumes_at.or(lost_to), d.expected) {
        (Some(to), from) if to > from => format!("offsets {from}..{to} lost"),
        (Some(_), _) => "no offsets lost".to_string(),
        (None, from) => format!("offsets from {from} lost"),
    };
    format!(
        "{}: bytes {}..{} are damaged ({}); moved aside to {}; {lost}",
        path.display(),
        d.start,
        d.end,
        d.reason,
        copy.display()
    )
}

impl Partition {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // loses acknowledged data (writes are positional and sizes advance last).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tp(&self) -> TopicPartition {
        TopicPartition::new(self.topic.to_string(), self.id)
    }

    fn report_degraded(&self, reason: String) {
        tracing::error!(topic = %self.topic, partition = self.id, %reason, "partition degraded");
        self.degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(DegradedPartition {
                partition: self.tp(),
                reason,
                since_ms: fleetwatch_core::now_ms(),
            });
    }

    /// What is wrong with this partition (empty when all is well).
    pub fn degraded(&self) -> Vec<DegradedPartition> {
        self.degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Opens (or creates) the partition in `dir`, recovering its segments (see the module
    /// doc). `scan_all` checks every batch of every segment (after an unclean shutdown);
    /// otherwise sealed segments load their index files and only the active one is scanned.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        topic: Arc<str>,
        id: i32,
        dir: PathBuf,
        opener: Arc<dyn FileOpener>,
        opts: Arc<PartitionOptions>,
        scan_all: bool,
        cuts: &mut Vec<RecoveryCut>,
        stats: &mut RecoveryStats,
    ) -> LogResult<Partition> {
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut bases: Vec<i64> = Vec::new();
        let mut known: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();
        for e in std::fs::read_dir(&dir)
            .map_err(io_err(format!("listing {}", dir.display())))?
            .filter_map(|e| e.ok())
        {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if let Some(b) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<i64>().ok())
            {
                bases.push(b);
            } else if let Some((b, pos)) = parse_corrupt_file_name(&name) {
                let len = e.metadata().map_or(0, |m| m.len());
                known.entry(b).or_default().push((pos, pos + len));
            }
        }
        bases.sort_unstable();
        let part = Partition {
            topic,
            id,
            dir: dir.clone(),
            opener: opener.clone(),
            opts: opts.clone(),
            state: Mutex::new(State {
                segments: Vec::new(),
                log_end: 0,
                hw: 0,
                log_start: 0,
                synced_offset: 0,
                epoch: 0,
                buf: Vec::new(),
            }),
            sync_lock: tokio::sync::Mutex::new(()),
            hw_tx: watch::channel(0).0,
            degraded: Mutex::new(Vec::new()),
        };
        let mut segments: Vec<Segment> = Vec::new();
        let mut expected_next: Option<i64> = None;
        for (i, base) in bases.iter().copied().enumerate() {
            let path = dir.join(segment_file_name(base, "log"));
            let file = opener
                .open(&path, false)
                .map_err(io_err(format!("opening {}", path.display())))?;
            let len = file
                .len()
                .map_err(io_err(format!("reading the size of {}", path.display())))?;
            stats.segments_total += 1;
            stats.bytes_total += len;
            if let Some(n) = expected_next {
                if base < n {
                    // Overlaps the segment before: move the whole file aside.
                    let aside = dir.join(corrupt_file_name(base, 0));
                    std::fs::rename(&path, &aside)
                        .map_err(io_err(format!("moving {} aside", path.display())))?;
                    let _ = std::fs::remove_file(path.with_extension("index"));
                    sync_dir(&dir).map_err(io_err(format!("syncing {}", dir.display())))?;
                    part.report_degraded(format!(
                        "{}: starts at offset {base} but the segment before ends at {n}; moved aside to {}",
                        path.display(),
                        aside.display()
                    ));
                    continue;
                }
                if base > n {
                    part.report_degraded(format!(
                        "{}: offsets {n}..{base} before this segment are missing",
                        path.display()
                    ));
                }
            }
            let mut seg = Segment::new(base, file, path.clone());
            seg.synced_size = len;
            for (start, end) in known.get(&base).into_iter().flatten().copied() {
                let copy = dir.join(corrupt_file_name(base, start));
                part.report_degraded(format!(
                    "{}: bytes {start}..{end} were found damaged earlier and moved aside to {}",
                    path.display(),
                    copy.display()
                ));
                if start < len {
                    seg.add_hole(Hole {
                        start,
                        end: end.min(len),
                        lost: None,
                        fail_reads: false,
                        reason: Arc::from("damaged bytes moved aside"),
                    });
                }
            }
            let last = i + 1 == bases.len();
            if !scan_all && !last && seg.load_index_file(len) {
                seg.bytes_since_index = u64::MAX / 2;
                expected_next = Some(seg.next_offset);
                segments.push(seg);
                continue;
            }
            stats.segments_checked += 1;
            stats.bytes_checked += len;
            let max_next = bases.get(i + 1).copied();
            let found = recover_segment(&mut seg, len, max_next, opts.index_interval)
                .map_err(io_err(format!("recovering {}", path.display())))?;
            let changed = !found.damage.is_empty() || found.tail.is_some();
            for d in &found.damage {
                let copy = dir.join(corrupt_file_name(base, d.start));
                copy_range_to(&*seg.file, d.start, d.end, &copy).map_err(io_err(format!(
                    "moving damaged bytes to {}",
                    copy.display()
                )))?;
                part.report_degraded(damage_reason(&path, d, &copy, None));
                seg.add_hole(Hole {
                    start: d.start,
                    end: d.end,
                    lost: d.resumes_at.map(|to| (d.expected, to)),
                    fail_reads: false,
                    reason: Arc::from(d.reason.as_str()),
                });
            }
            if let Some(t) = &found.tail {
                if last && scan_all {
                    cuts.push(RecoveryCut {
                        topic: part.topic.to_string(),
                        partition: id,
                        segment: path.display().to_string(),
                        position: t.start,
                        bytes_dropped: len - t.start,
                        reason: t.reason.clone(),
                    });
                } else {
                    let copy = dir.join(corrupt_file_name(base, t.start));
                    copy_range_to(&*seg.file, t.start, t.end, &copy).map_err(io_err(format!(
                        "moving damaged bytes to {}",
                        copy.display()
                    )))?;
                    part.report_degraded(damage_reason(&path, t, &copy, max_next));
                }
                seg.file.set_len(t.start).map_err(io_err(format!(
                    "cutting {} at {}",
                    path.display(),
                    t.start
                )))?;
                seg.file
                    .sync_data()
                    .map_err(io_err(format!("syncing {}", path.display())))?;
            }
            // Holes at or past the end of what is kept no longer exist in the file.
            let size = seg.size;
            Arc::make_mut(&mut seg.holes).retain(|h| h.start < size);
            if let Some(h) = seg.holes.last()
                && h.end > seg.size
            {
                seg.size = h.end;
            }
            seg.synced_size = seg.size;
            if changed {
                let _ = std::fs::remove_file(seg.index_path());
                if !last && let Err(e) = seg.write_index_file() {
                    tracing::warn!(segment = %path.display(), error = %e, "could not write index file; it will be rebuilt at start");
                }
            }
            expected_next = Some(seg.next_offset);
            segments.push(seg);
        }
        // An empty last segment (left by a cut at position 0) is kept only if it is the first.
        while segments.len() > 1
            && segments
                .last()
                .is_some_and(|s| s.size == 0 && s.holes.is_empty())
        {
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
        {
            let mut st = part.lock();
            st.segments = segments;
            st.log_end = log_end;
            st.hw = log_end;
            st.log_start = log_start;
            st.synced_offset = log_end;
        }
        part.hw_tx.send_replace(log_end);
        Ok(part)
    }

    /// Opens a new active segment at `log_end`. The old one must be synced already (unless
    /// the policy is `never`); if it is not, it is synced here, under the lock — only
    /// retention's roll of an expired segment takes that path; appends sync first, outside
    /// the lock ([`Partition::prepare_roll`]). Returns the old segment's index file (path,
    /// bytes) for the caller to write once the lock is released.
    fn roll(&self, st: &mut State) -> LogResult<Option<(PathBuf, Vec<u8>)>> {
        let policy = self.opts.policy;
        let mut index = None;
        if let Some(old) = st.segments.last_mut() {
            if policy != FsyncPolicy::Never && old.synced_size < old.size {
                old.file
                    .sync_data()
                    .map_err(io_err(format!("syncing {}", old.path.display())))?;
                old.synced_size = old.size;
                st.synced_offset = st.synced_offset.max(old.next_offset);
            }
            index = Some((old.index_path(), old.index_file_bytes()));
        }
        let base = st.log_end;
        let path = self.dir.join(segment_file_name(base, "log"));
        let file = self
            .opener
            .open(&path, true)
            .map_err(io_err(format!("creating {}", path.display())))?;
        sync_dir(&self.dir).map_err(io_err(format!("syncing {}", self.dir.display())))?;
        st.segments.push(Segment::new(base, file, path));
        Ok(index)
    }

    fn needs_roll(st: &State, batch_len: u64, config: &TopicConfig) -> bool {
        st.segments
            .last()
            .is_none_or(|s| s.size > 0 && s.size + batch_len > config.segment_bytes)
    }

    /// Makes room for a batch of `batch_len` bytes: syncs the full active segment *outside*
    /// the partition lock (readers and appenders of the partition go on meanwhile), then
    /// rolls under the lock (creating the next file and syncing the directory: metadata
    /// only). Blocking: call it off the async threads.
    pub fn prepare_roll(&self, batch_len: u64, config: &TopicConfig) -> LogResult<()> {
        loop {
            let (file, path, size, next, epoch, base) = {
                let mut st = self.lock();
                if !Self::needs_roll(&st, batch_len, config) {
                    return Ok(());
                }
                let seg = st
                    .segments
                    .last()
                    .ok_or_else(|| LogError::internal("partition has no active segment"))?;
                if self.opts.policy == FsyncPolicy::Never || seg.synced_size >= seg.size {
                    let index = self.roll(&mut st)?;
                    drop(st);
                    if let Some((path, bytes)) = index
                        && let Err(e) = std::fs::write(&path, bytes)
                    {
                        tracing::warn!(index = %path.display(), error = %e, "could not write index file; it will be rebuilt at start");
                    }
                    return Ok(());
                }
                (
                    seg.file.clone(),
                    seg.path.clone(),
                    seg.size,
                    seg.next_offset,
                    st.epoch,
                    seg.base_offset,
                )
            };
            file.sync_data()
                .map_err(io_err(format!("syncing {}", path.display())))?;
            let mut st = self.lock();
            if st.epoch == epoch {
                if let Some(seg) = st.segments.iter_mut().find(|s| s.base_offset == base) {
                    seg.synced_size = seg.synced_size.max(size);
                }
                st.synced_offset = st.synced_offset.max(next);
                if self.opts.policy == FsyncPolicy::Always && st.hw < next {
                    st.hw = next;
                    self.hw_tx.send_replace(next);
                }
            }
        }
    }

    /// Writes one batch unless the active segment must roll first. Nothing changes when it
    /// fails: a failed write's partial bytes are truncated at once.
    fn write(&self, records: &[Record], config: &TopicConfig) -> LogResult<WriteStep> {
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
            if Self::needs_roll(st, buf.len() as u64, config) {
                return Ok(None);
            }
            let seg = st
                .segments
                .last_mut()
                .ok_or_else(|| LogError::internal("partition has no active segment"))?;
            let pos = seg.size;
            if let Err(e) = seg.file.write_all_at(&buf, pos) {
                // Bytes at and after `pos` are unspecified after a failed write: drop them
                // now, so that they are neither read nor reported as a torn tail later.
                if let Err(t) = seg.file.set_len(pos) {
                    self.report_degraded(format!(
                        "{}: a failed write left bytes after byte {pos} that could not be truncated ({t}); they are cut at the next start",
                        seg.path.display()
                    ));
                }
                return Err(LogError::io(
                    format!("appending to {}", seg.path.display()),
                    e,
                ));
            }
            let header = batch::decode_header(&buf, false)
                .map_err(|e| LogError::internal(format!("encoded batch did not decode: {e}")))?;
            seg.note_batch(pos, &header, self.opts.index_interval);
            Ok(Some(header.next_offset()))
        })();
        let batch_len = buf.len() as u64;
        st.buf = buf;
        let Some(end) = result? else {
            return Ok(WriteStep::Roll { batch_len });
        };
        st.log_end = end;
        if self.opts.policy != FsyncPolicy::Always {
            st.hw = end;
            self.hw_tx.send_replace(end);
        }
        Ok(WriteStep::Done(base, end, st.epoch))
    }

    /// Appends a batch and returns its offsets once durable by the policy.
    pub async fn append(
        self: &Arc<Self>,
        records: &[Record],
        config: &TopicConfig,
    ) -> LogResult<Vec<i64>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (base, end, epoch) = loop {
            match self.write(records, config)? {
                WriteStep::Done(base, end, epoch) => break (base, end, epoch),
                WriteStep::Roll { batch_len } => {
                    let (p, c) = (self.clone(), config.clone());
                    tokio::task::spawn_blocking(move || p.prepare_roll(batch_len, &c))
                        .await
                        .map_err(|e| LogError::internal(format!("roll task failed: {e}")))??;
                }
            }
        };
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
        let (target, size, file, path) = {
            let mut st = self.lock();
            if epoch.is_some_and(|e| e != st.epoch) {
                return Err(LogError::Backend(format!(
                    "{}-{}: the batch was rolled back after a failed fsync; retry",
                    self.topic, self.id
                )));
            }
            if st.synced_offset >= end {
                if self.opts.policy == FsyncPolicy::Always && st.hw < end {
                    st.hw = end;
                    self.hw_tx.send_replace(end);
                }
                return Ok(());
            }
            let Some(seg) = st.segments.last() else {
                return Ok(());
            };
            (st.log_end, seg.size, seg.file.clone(), seg.path.clone())
        };
        let sync_file = file.clone();
        let synced = tokio::task::spawn_blocking(move || sync_file.sync_data())
            .await
            .map_err(|e| LogError::internal(format!("fsync task failed: {e}")))?;
        let mut st = self.lock();
        match synced {
            Ok(()) => {
                st.synced_offset = st.synced_offset.max(target);
                if let Some(seg) = st.segments.last_mut()
                    && Arc::ptr_eq(&seg.file, &file)
                {
                    seg.synced_size = seg.synced_size.max(size);
                }
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
            let holes = seg.holes.clone();
            let mut scanner =
                Scanner::new(&*file, start, seg.size, 1 << 16, false).with_holes(&holes);
            while let Ok(Some((p, h, _))) = scanner.next_batch_skipping_holes() {
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
            seg.synced_size = seg.synced_size.min(pos);
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

    /// The partition's two ends.
    pub fn watermarks(&self) -> Watermarks {
        let st = self.lock();
        Watermarks {
            log_start: st.log_start,
            high: st.hw,
        }
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn watch_hw(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Reads without waiting, quarantining damage it meets on this thread (blocking: for
    /// start-up and other synchronous callers).
    pub fn read_now(&self, offset: i64, limits: &ReadLimits) -> LogResult<ReadBatch> {
        for _ in 0..16 {
            match self.try_read(offset, limits) {
                Ok(b) => return Ok(b),
                Err(ReadFail::Log(e)) => return Err(e),
                Err(ReadFail::Fresh(d)) => self.quarantine(d)?,
            }
        }
        Err(LogError::internal(format!(
            "{}-{}: damage found on read kept moving",
            self.topic, self.id
        )))
    }

    /// Reads without waiting; damage it meets is quarantined on the blocking pool, so that
    /// the async threads (and readers of other partitions) go on meanwhile.
    pub async fn read_async(
        self: &Arc<Self>,
        offset: i64,
        limits: &ReadLimits,
    ) -> LogResult<ReadBatch> {
        for _ in 0..16 {
            match self.try_read(offset, limits) {
                Ok(b) => return Ok(b),
                Err(ReadFail::Log(e)) => return Err(e),
                Err(ReadFail::Fresh(d)) => {
                    let p = self.clone();
                    tokio::task::spawn_blocking(move || p.quarantine(d))
                        .await
                        .map_err(|e| {
                            LogError::internal(format!("quarantine task failed: {e}"))
                        })??;
                }
            }
        }
        Err(LogError::internal(format!(
            "{}-{}: damage found on read kept moving",
            self.topic, self.id
        )))
    }

    fn try_read(&self, offset: i64, limits: &ReadLimits) -> Result<ReadBatch, ReadFail> {
        let (hw, log_start, segs) = {
            let st = self.lock();
            if offset < st.log_start || offset > st.hw {
                return Err(LogError::OffsetOutOfRange {
                    topic: self.topic.to_string(),
                    partition: self.id,
                    offset,
                    log_start: st.log_start,
                    high_watermark: st.hw,
                }
                .into());
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
            let segs: Vec<SegView> = st.segments[first..]
                .iter()
                .take(4)
                .enumerate()
                .map(|(i, s)| {
                    let (start, start_offset) = if i == 0 {
                        s.index_entry_for_offset(offset)
                    } else {
                        (0, s.base_offset)
                    };
                    SegView {
                        file: s.file.clone(),
                        path: s.path.clone(),
                        base: s.base_offset,
                        start,
                        start_offset,
                        end: s.size,
                        holes: s.holes.clone(),
                    }
                })
                .collect();
            (st.hw, st.log_start, segs)
        };
        let mut records = Vec::with_capacity(limits.max_records.min(4096));
        let mut bytes = 0usize;
        'segments: for v in &segs {
            let chunk = self.opts.read_chunk.min(limits.max_bytes).max(4096);
            let mut scanner =
                Scanner::new(&*v.file, v.start, v.end, chunk, true).with_holes(&v.holes);
            let mut expected = Some(v.start_offset);
            loop {
                let fresh = |pos: u64, expected: Option<i64>, reason: String| {
                    ReadFail::Fresh(FreshDamage {
                        base: v.base,
                        pos,
                        expected,
                        reason,
                    })
                };
                let item = match scanner.next_item() {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(ScanError::Io(e)) => {
                        return Err(
                            LogError::io(format!("reading {}-{}", self.topic, self.id), e).into(),
                        );
                    }
                    Err(ScanError::Batch { pos, error }) => {
                        if !records.is_empty() {
                            break 'segments;
                        }
                        return Err(fresh(pos, expected, error.to_string()));
                    }
                };
                let (pos, header, data) = match item {
                    Item::Hole(h) => {
                        if h.fail_reads {
                            if !records.is_empty() {
                                break 'segments;
                            }
                            let resume = h.lost.map_or(i64::MAX, |(_, to)| to);
                            if offset < resume {
                                return Err(self.hole_error(&v.path, h).into());
                            }
                        }
                        expected = None;
                        continue;
                    }
                    Item::Batch(pos, header, data) => (pos, header, data),
                };
                if let Some(e) = expected
                    && header.base_offset != e
                {
                    if !records.is_empty() {
                        break 'segments;
                    }
                    return Err(fresh(
                        pos,
                        expected,
                        format!(
                            "batch at offset {} where {e} was expected",
                            header.base_offset
                        ),
                    ));
                }
                expected = Some(header.next_offset());
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
                if let Err(e) = batch::decode_records(data, &header, self.id, offset, &mut records)
                {
                    return Err(LogError::Corrupt {
                        location: format!(
                            "{}-{} at byte {pos} of {}",
                            self.topic,
                            self.id,
                            v.path.display()
                        ),
                        reason: e.to_string(),
                    }
                    .into());
                }
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

    fn hole_error(&self, path: &Path, h: &Hole) -> LogError {
        let lost = match h.lost {
            Some((from, to)) => format!(
                "; offsets {from}..{to} are lost, intact records resume at offset {to} (seek there)"
            ),
            None => String::new(),
        };
        LogError::Corrupt {
            location: format!(
                "{}-{} at byte {} of {}",
                self.topic,
                self.id,
                h.start,
                path.display()
            ),
            reason: format!("{}{lost}", h.reason),
        }
    }

    /// Turns damage a read met into a hole: finds the next intact batch, copies the damaged
    /// bytes aside, reports the partition degraded. Blocking; holds the partition lock only
    /// to look the segment up and to add the hole.
    fn quarantine(&self, d: FreshDamage) -> LogResult<()> {
        let (file, path, end, next) = {
            let st = self.lock();
            let Some(seg) = st.segments.iter().find(|s| s.base_offset == d.base) else {
                return Ok(()); // deleted by retention meanwhile
            };
            if seg.holes.iter().any(|h| h.start <= d.pos && d.pos < h.end) {
                return Ok(()); // another reader was first
            }
            (
                seg.file.clone(),
                seg.path.clone(),
                seg.size,
                seg.next_offset,
            )
        };
        let bound = OffsetBound {
            min_base: d.expected.unwrap_or(d.base),
            per_byte: d.expected.is_some(),
            max_next: Some(next),
        };
        let found = resync(&*file, d.pos, end, &bound)
            .map_err(io_err(format!("reading {}", path.display())))?;
        let (hole_end, resumes_at) = match found {
            Some((at, h)) => (at, h.base_offset),
            None => (end, next),
        };
        let from = d.expected.unwrap_or(d.base);
        let copy = self.dir.join(corrupt_file_name(d.base, d.pos));
        let saved = match copy_range_to(&*file, d.pos, hole_end, &copy) {
            Ok(()) => format!("copied to {}", copy.display()),
            Err(e) => format!("could not be copied to {} ({e})", copy.display()),
        };
        let reason = format!(
            "{}: checksum failure found on read: bytes {}..{hole_end} are damaged ({}), {saved}; offsets {from}..{resumes_at} lost, intact records resume at offset {resumes_at}",
            path.display(),
            d.pos,
            d.reason
        );
        {
            let mut st = self.lock();
            if let Some(seg) = st.segments.iter_mut().find(|s| s.base_offset == d.base) {
                seg.add_hole(Hole {
                    start: d.pos,
                    end: hole_end,
                    lost: Some((from, resumes_at)),
                    fail_reads: true,
                    reason: Arc::from(d.reason.as_str()),
                });
            }
        }
        self.report_degraded(reason);
        Ok(())
    }

    /// First offset whose timestamp is ≥ `ts`, or the high watermark.
    pub fn offset_for_timestamp(&self, ts: i64) -> LogResult<i64> {
        let (hw, candidates) = {
            let st = self.lock();
            type Candidate = (Arc<dyn SegmentFile>, u64, u64, Arc<Vec<Hole>>);
            let c: Vec<Candidate> = st
                .segments
                .iter()
                .filter(|s| s.max_timestamp >= ts)
                .map(|s| {
                    (
                        s.file.clone(),
                        s.position_for_timestamp(ts),
                        s.size,
                        s.holes.clone(),
                    )
                })
                .collect();
            (st.hw, c)
        };
        for (file, start, end, holes) in candidates {
            let mut scanner = Scanner::new(&*file, start, end, 1 << 16, false).with_holes(&holes);
            while let Some((_, header, data)) = scanner
                .next_batch_skipping_holes()
                .map_err(|e| self.scan_error(e))?
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
                && let Err(e) = self.roll(&mut st).map(|index| {
                    if let Some((path, bytes)) = index {
                        let _ = std::fs::write(path, bytes);
                    }
                })
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
