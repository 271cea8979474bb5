//! Segments: one `.log` file of batches plus its sparse indexes, and the scanner that walks
//! batches in a file (used by recovery, reads and time lookups alike).

use crate::batch::{self, BatchError, BatchHeader, PREFIX_LEN};
use crate::io::{SegmentFile, read_full};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the segment starting at `base`: 20 zero-padded digits, as Kafka names them.
pub(crate) fn segment_file_name(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

/// The in-memory state of one segment.
pub(crate) struct Segment {
    pub base_offset: i64,
    pub file: Arc<dyn SegmentFile>,
    pub path: PathBuf,
    /// Bytes of complete, written batches.
    pub size: u64,
    /// One past the last offset written.
    pub next_offset: i64,
    /// Largest timestamp in the segment (`i64::MIN` while empty).
    pub max_timestamp: i64,
    /// Sparse offset index: (offset − base, byte position) of batch starts, every
    /// `index_interval` bytes.
    pub index: Vec<(u32, u32)>,
    /// Sparse time index: (largest timestamp of every batch before `pos`, `pos`).
    pub time_index: Vec<(i64, u32)>,
    pub bytes_since_index: u64,
}

impl Segment {
    pub fn new(base_offset: i64, file: Arc<dyn SegmentFile>, path: PathBuf) -> Self {
        Segment {
            base_offset,
            file,
            path,
            size: 0,
            next_offset: base_offset,
            max_timestamp: i64::MIN,
            index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_index: 0,
        }
    }

    /// Records a batch written at `pos` in the indexes and the segment's totals.
    pub fn note_batch(&mut self, pos: u64, header: &BatchHeader, index_interval: u64) {
        if self.index.is_empty() || self.bytes_since_index >= index_interval {
            self.index
                .push(((header.base_offset - self.base_offset) as u32, pos as u32));
            self.time_index.push((self.max_timestamp, pos as u32));
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.total_len as u64;
        self.size = pos + header.total_len as u64;
        self.next_offset = header.next_offset();
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
    }

    /// Byte position of the last indexed batch at or before `offset`.
    pub fn position_for_offset(&self, offset: i64) -> u64 {
        let rel = offset.saturating_sub(self.base_offset);
        let i = self.index.partition_point(|(r, _)| i64::from(*r) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.index[i - 1].1)
        }
    }

    /// Byte position from which a scan finds the first record with timestamp ≥ `ts`: no
    /// batch before it holds such a record.
    pub fn position_for_timestamp(&self, ts: i64) -> u64 {
        let i = self
            .time_index
            .partition_point(|(max_before, _)| *max_before < ts);
        if i == 0 {
            0
        } else {
            u64::from(self.time_index[i - 1].1)
        }
    }

    fn index_path(&self) -> PathBuf {
        self.path.with_extension("index")
    }

    /// Writes the sealed segment's indexes and totals to `<base>.index` (best effort: a
    /// missing or damaged index file is rebuilt by scanning).
    pub fn write_index_file(&self) -> io::Result<()> {
        let mut out = Vec::with_capacity(48 + self.index.len() * 8 + self.time_index.len() * 12);
        out.extend_from_slice(b"FWIX");
        out.extend_from_slice(&self.next_offset.to_le_bytes());
        out.extend_from_slice(&self.max_timestamp.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.index.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.time_index.len() as u32).to_le_bytes());
        for (r, p) in &self.index {
            out.extend_from_slice(&r.to_le_bytes());
            out.extend_from_slice(&p.to_le_bytes());
        }
        for (t, p) in &self.time_index {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&p.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        std::fs::write(self.index_path(), out)
    }

    /// Loads `<base>.index` if it is intact and matches the segment file's length.
    pub fn load_index_file(&mut self, file_len: u64) -> bool {
        let Ok(data) = std::fs::read(self.index_path()) else {
            return false;
        };
        let parsed = (|| -> Option<()> {
            if data.len() < 40 || &data[..4] != b"FWIX" {
                return None;
            }
            let (body, crc) = data.split_at(data.len() - 4);
            if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
                return None;
            }
            let i64_at = |i: usize| -> Option<i64> {
                Some(i64::from_le_bytes(body.get(i..i + 8)?.try_into().ok()?))
            };
            let u32_at = |i: usize| -> Option<u32> {
                Some(u32::from_le_bytes(body.get(i..i + 4)?.try_into().ok()?))
            };
            let next_offset = i64_at(4)?;
            let max_ts = i64_at(12)?;
            let size = i64_at(20)? as u64;
            let n_off = u32_at(28)? as usize;
            let n_time = u32_at(32)? as usize;
            if size != file_len || body.len() != 36 + n_off * 8 + n_time * 12 {
                return None;
            }
            let mut index = Vec::with_capacity(n_off);
            for k in 0..n_off {
                index.push((u32_at(36 + k * 8)?, u32_at(40 + k * 8)?));
            }
            let t0 = 36 + n_off * 8;
            let mut time_index = Vec::with_capacity(n_time);
            for k in 0..n_time {
                time_index.push((i64_at(t0 + k * 12)?, u32_at(t0 + k * 12 + 8)?));
            }
            self.next_offset = next_offset;
            self.max_timestamp = max_ts;
            self.size = size;
            self.index = index;
            self.time_index = time_index;
            Some(())
        })();
        parsed.is_some()
    }

    /// Removes the segment's files.
    pub fn remove_files(path: &Path) {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(path.with_extension("index"));
    }
}

/// Where and why a scan stopped early.
#[derive(Debug)]
pub(crate) enum ScanError {
    /// Bad bytes at `pos`.
    Batch { pos: u64, error: BatchError },
    /// The file could not be read.
    Io(io::Error),
}

/// Walks the batches of a file from a position, reading in chunks; batch bytes are slices
/// of the chunk (no copy per record).
pub(crate) struct Scanner<'a> {
    file: &'a dyn SegmentFile,
    pos: u64,
    end: u64,
    chunk: usize,
    verify: bool,
    window: Bytes,
    window_pos: u64,
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a dyn SegmentFile, pos: u64, end: u64, chunk: usize, verify: bool) -> Self {
        Scanner {
            file,
            pos,
            end,
            chunk: chunk.max(4096),
            verify,
            window: Bytes::new(),
            window_pos: pos,
        }
    }

    fn available(&self) -> usize {
        let win_end = self.window_pos + self.window.len() as u64;
        if self.pos >= self.window_pos && self.pos <= win_end {
            (win_end - self.pos) as usize
        } else {
            0
        }
    }

    fn refill(&mut self, need: usize) -> Result<(), ScanError> {
        let want = need.max(self.chunk).min((self.end - self.pos) as usize);
        let mut buf = vec![0u8; want];
        let n = read_full(self.file, &mut buf, self.pos).map_err(ScanError::Io)?;
        buf.truncate(n);
        self.window = Bytes::from(buf);
        self.window_pos = self.pos;
        Ok(())
    }

    /// The next batch: its position, header and bytes.
    pub fn next_batch(&mut self) -> Result<Option<(u64, BatchHeader, Bytes)>, ScanError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let remaining = (self.end - self.pos) as usize;
        if self.available() < PREFIX_LEN.min(remaining) || self.available() == 0 {
            self.refill(PREFIX_LEN)?;
        }
        let at = self.pos;
        let truncated = move |have: usize, need: usize| ScanError::Batch {
            pos: at,
            error: BatchError::Truncated { need, have },
        };
        let off = (self.pos - self.window_pos) as usize;
        let Some(total) = batch::peek_len(&self.window[off..]) else {
            return Err(truncated(remaining, PREFIX_LEN));
        };
        if total > remaining {
            return Err(truncated(remaining, total));
        }
        if self.available() < total {
            self.refill(total)?;
        }
        let off = (self.pos - self.window_pos) as usize;
        if self.window.len() - off < total {
            return Err(truncated(self.window.len() - off, total));
        }
        let bytes = self.window.slice(off..off + total);
        let header =
            batch::decode_header(&bytes, self.verify).map_err(|error| ScanError::Batch {
                pos: self.pos,
                error,
            })?;
        let pos = self.pos;
        self.pos += total as u64;
        Ok(Some((pos, header, bytes)))
    }
}
