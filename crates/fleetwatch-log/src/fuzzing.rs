//! Pure entry points for the fuzz targets under `fuzz/` (not a stable API: hidden from the
//! docs, and nothing in fleetwatch may call it). Each runs real crate code over a byte
//! buffer in memory: the batch header checks used by resynchronisation, and a segment's
//! recovery scan (CRC and offset continuity per batch, resynchronisation after damage).

use crate::io::SegmentFile;
use crate::segment::{Hole, Scanner, Segment, recover_segment};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use crate::batch::{
    HEADER_LEN, MIN_RECORD_LEN, OffsetBound, PREFIX_LEN, peek_len, plausible_header,
};

/// A read-only segment file in memory.
struct MemFile(Mutex<Vec<u8>>);

impl SegmentFile for MemFile {
    fn write_all_at(&self, _buf: &[u8], _pos: u64) -> io::Result<()> {
        Err(io::Error::other("read-only in-memory segment"))
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let d = self.0.lock().map_err(|_| io::Error::other("poisoned"))?;
        let start = usize::try_from(pos).unwrap_or(usize::MAX).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        Ok(n)
    }
    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self
            .0
            .lock()
            .map_err(|_| io::Error::other("poisoned"))?
            .len() as u64)
    }
    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(io::Error::other("read-only in-memory segment"))
    }
}

/// What recovery made of a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// One past the last offset recovered.
    pub next_offset: i64,
    /// End of the last intact batch.
    pub size: u64,
    /// Damaged ranges `[start, end)` followed by intact batches.
    pub damage: Vec<(u64, u64)>,
    /// Damage running to the end with nothing intact after it: `[start, end)`.
    pub tail: Option<(u64, u64)>,
    /// The intact batches a scan that jumps over the damage then finds, as
    /// (position, base offset, next offset, total length).
    pub batches: Vec<(u64, i64, i64, usize)>,
}

/// Runs recovery over `data` as the segment starting at `base_offset` (the next segment
/// starting at `max_next`, if any), then scans the batches it kept, jumping over the
/// damage as reads do.
pub fn recover_bytes(
    data: Vec<u8>,
    base_offset: i64,
    max_next: Option<i64>,
    index_interval: u64,
) -> io::Result<Recovered> {
    let len = data.len() as u64;
    let file: Arc<dyn SegmentFile> = Arc::new(MemFile(Mutex::new(data)));
    let mut seg = Segment::new(base_offset, file.clone(), PathBuf::from("fuzz.log"));
    let found = recover_segment(&mut seg, len, max_next, index_interval)?;
    let holes: Vec<Hole> = found
        .damage
        .iter()
        .map(|d| Hole {
            start: d.start,
            end: d.end,
            lost: None,
            fail_reads: false,
            reason: Arc::from(d.reason.as_str()),
        })
        .collect();
    let mut batches = Vec::new();
    let mut scanner = Scanner::new(&*file, 0, seg.size, 4096, true).with_holes(&holes);
    loop {
        match scanner.next_batch_skipping_holes() {
            Ok(Some((pos, h, _))) => {
                batches.push((pos, h.base_offset, h.next_offset(), h.total_len))
            }
            Ok(None) => break,
            Err(crate::segment::ScanError::Io(e)) => return Err(e),
            Err(crate::segment::ScanError::Batch { pos, error }) => {
                return Err(io::Error::other(format!(
                    "recovered segment does not scan at byte {pos}: {error}"
                )));
            }
        }
    }
    Ok(Recovered {
        next_offset: seg.next_offset,
        size: seg.size,
        damage: found.damage.iter().map(|d| (d.start, d.end)).collect(),
        tail: found.tail.map(|d| (d.start, d.end)),
        batches,
    })
}
