//! The only place the embedded log touches files' bytes: a small trait over a segment
//! file, so that tests can inject faults (ENOSPC, EIO, lost unsynced writes) under the real
//! log code.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// A file the log writes at explicit positions and syncs.
#[allow(clippy::len_without_is_empty)]
pub trait SegmentFile: Send + Sync {
    /// Writes all of `buf` at `pos`. On error, bytes at and after `pos` are unspecified
    /// (the log never advances past a failed write, and recovery cuts such bytes).
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Reads into `buf` from `pos`; returns bytes read (0 at end of file).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    /// fdatasync: every byte written so far is on stable storage when this returns Ok.
    fn sync_data(&self) -> io::Result<()>;
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates (or extends) to `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Opens segment files; replaced by a fault-injecting opener in tests.
pub trait FileOpener: Send + Sync {
    /// Opens (creating when `create`) the file at `path` for reading and writing.
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn SegmentFile>>;
}

/// Plain files.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFiles;

impl FileOpener for OsFiles {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(Arc::new(OsFile(f)))
    }
}

struct OsFile(File);

impl SegmentFile for OsFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

/// Reads exactly `buf.len()` bytes at `pos`, or fewer only at end of file.
pub(crate) fn read_full(f: &dyn SegmentFile, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Fsyncs a directory so that entries created or renamed in it are durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Writes a small file atomically: temp file, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
