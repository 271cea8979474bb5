//! Fault injection under the real log code: a segment file that can fail writes with
//! ENOSPC or EIO, fail fsync, and "crash" — dropping every byte not yet fdatasync'd, as an
//! OS crash or power cut would.

use bytes::Bytes;
use fleetwatch_core::{LogAdmin, LogData, LogError, OffsetSpec, ReadLimits, Record, TopicConfig};
use fleetwatch_log::io::{FileOpener, OsFiles, SegmentFile};
use fleetwatch_log::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Switches {
    /// errno to fail writes with (0 = none)
    write_errno: AtomicI32,
    /// fail fdatasync with EIO
    fail_sync: AtomicBool,
    syncs: AtomicU64,
    /// while set, fdatasync blocks (until cleared); `in_sync` counts syncs blocked so
    gate_sync: AtomicBool,
    in_sync: AtomicU64,
    /// threads that opened files
    open_threads: Mutex<Vec<std::thread::ThreadId>>,
}

struct FaultyFile {
    inner: Arc<dyn SegmentFile>,
    sw: Arc<Switches>,
    synced_len: AtomicU64,
}

impl SegmentFile for FaultyFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        match self.sw.write_errno.load(Ordering::SeqCst) {
            0 => self.inner.write_all_at(buf, pos),
            errno => {
                // a partial write before the error, as a full disk gives
                let _ = self.inner.write_all_at(&buf[..buf.len() / 2], pos);
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.sw.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc_eio()));
        }
        if self.sw.gate_sync.load(Ordering::SeqCst) {
            self.sw.in_sync.fetch_add(1, Ordering::SeqCst);
            while self.sw.gate_sync.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        self.inner.sync_data()?;
        self.sw.syncs.fetch_add(1, Ordering::SeqCst);
        self.synced_len.store(self.inner.len()?, Ordering::SeqCst);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        if self.synced_len.load(Ordering::SeqCst) > len {
            self.synced_len.store(len, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn libc_eio() -> i32 {
    5
}
const ENOSPC: i32 = 28;

#[derive(Default)]
struct FaultyOpener {
    sw: Arc<Switches>,
    files: Mutex<Vec<Arc<FaultyFile>>>,
}

impl FileOpener for FaultyOpener {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let inner = OsFiles.open(path, create)?;
        self.sw
            .open_threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        let len = inner.len()?;
        let f = Arc::new(FaultyFile {
            inner,
            sw: self.sw.clone(),
            synced_len: AtomicU64::new(len),
        });
        self.files.lock().unwrap().push(f.clone());
        Ok(f)
    }
}

impl FaultyOpener {
    /// What an OS crash does: every byte written but not synced is gone.
    fn crash(&self) {
        for f in self.files.lock().unwrap().iter() {
            let _ = f.inner.set_len(f.synced_len.load(Ordering::SeqCst));
        }
    }
}

fn rec(i: usize) -> Record {
    Record::new(None, Some(Bytes::from(format!("record-{i}"))))
}

async fn open(dir: &Path, policy: FsyncPolicy) -> (EmbeddedLog, Arc<FaultyOpener>) {
    let opener = Arc::new(FaultyOpener::default());
    let cfg = EmbeddedConfig {
        fsync: policy,
        ..EmbeddedConfig::at(dir)
    };
    let log = EmbeddedLog::open_with(cfg, opener.clone()).unwrap();
    log.ensure_topic("t", TopicConfig::with_partitions(1))
        .await
        .unwrap();
    (log, opener)
}

async fn values(log: &EmbeddedLog) -> Vec<String> {
    let hw = log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap();
    let mut out = Vec::new();
    let mut next = 0;
    while next < hw {
        let b = log.read("t", 0, next, ReadLimits::default()).await.unwrap();
        next = b.next_offset(next);
        out.extend(
            b.records
                .into_iter()
                .map(|r| String::from_utf8(r.record.value.unwrap().to_vec()).unwrap()),
        );
    }
    out
}

/// Appends from several tasks at once; returns what was acknowledged.
async fn concurrent_appends(log: &EmbeddedLog, n_tasks: usize, per_task: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for t in 0..n_tasks {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..per_task {
                let r = rec(t * 10_000 + i);
                log.append("t", 0, std::slice::from_ref(&r)).await.unwrap();
                acked.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_policy_keeps_every_ack_through_an_os_crash_with_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (log, opener) = open(dir.path(), FsyncPolicy::Always).await;
    let acked = concurrent_appends(&log, 8, 50).await;
    let syncs = opener.sw.syncs.load(Ordering::SeqCst);
    assert!(syncs > 0);
    assert!(
        syncs < 400,
        "group commit: 400 concurrent appends should share fsyncs, got {syncs}"
    );
    opener.crash();
    drop(log);
    let (log, _) = open(dir.path(), FsyncPolicy::Always).await;
    let mut got = values(&log).await;
    let mut want = acked;
    got.sort();
    want.sort();
    assert_eq!(got, want, "every acknowledged record survives the crash");
}

#[tokio::test]
async fn never_policy_loses_unsynced_acks_in_an_os_crash() {
    // The same crash under `never` does lose data: the crash model is not a no-op.
    let dir = tempfile::tempdir().unwrap();
    let (log, opener) = open(dir.path(), FsyncPolicy::Never).await;
    for i in 0..20 {
        log.append("t", 0, &[rec(i)]).await.unwrap();
    }
    opener.crash();
    drop(log);
    let (log, _) = open(dir.path(), FsyncPolicy::Never).await;
    assert!(values(&log).await.len() < 20);
}

#[tokio::test]
async fn full_disk_fails_appends_clearly_keeps_acked_data_and_resumes() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::Interval] {
        let dir = tempfile::tempdir().unwrap();
        let (log, opener) = open(dir.path(), policy).await;
        for i in 0..10 {
            log.append("t", 0, &[rec(i)]).await.unwrap();
        }
        opener.sw.write_errno.store(ENOSPC, Ordering::SeqCst);
        for _ in 0..3 {
            match log.append("t", 0, &[rec(999)]).await {
                Err(LogError::Io { context, source }) => {
                    assert!(context.contains("appending to"), "{context}");
                    assert_eq!(source.raw_os_error(), Some(ENOSPC));
                }
                other => panic!("append on a full disk gave {other:?}"),
            }
        }
        assert_eq!(
            log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap(),
            10
        );
        opener.sw.write_errno.store(0, Ordering::SeqCst);
        let ack = log.append("t", 0, &[rec(10)]).await.unwrap();
        assert_eq!(ack.offsets, vec![10], "appends resume where they stopped");
        log.flush().await.unwrap();
        drop(log);
        let (log, _) = open(dir.path(), policy).await;
        let want: Vec<String> = (0..11).map(|i| format!("record-{i}")).collect();
        assert_eq!(values(&log).await, want, "{policy:?}");
    }
}

#[tokio::test]
async fn failed_fsync_under_always_rolls_back_the_unacked_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (log, opener) = open(dir.path(), FsyncPolicy::Always).await;
    for i in 0..5 {
        log.append("t", 0, &[rec(i)]).await.unwrap();
    }
    opener.sw.fail_sync.store(true, Ordering::SeqCst);
    let err = log.append("t", 0, &[rec(99)]).await.unwrap_err();
    assert!(err.to_string().contains("syncing"), "{err}");
    // the failed record is not visible and its offset is reused
    assert_eq!(log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap(), 5);
    opener.sw.fail_sync.store(false, Ordering::SeqCst);
    assert_eq!(
        log.append("t", 0, &[rec(5)]).await.unwrap().offsets,
        vec![5]
    );
    opener.crash();
    drop(log);
    let (log, _) = open(dir.path(), FsyncPolicy::Always).await;
    let want: Vec<String> = (0..6).map(|i| format!("record-{i}")).collect();
    assert_eq!(values(&log).await, want);
}

fn segment_len_sum(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("topics/t/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[tokio::test]
async fn a_failed_write_truncates_its_partial_bytes_at_once() {
    for (errno, policy) in [
        (ENOSPC, FsyncPolicy::Interval),
        (libc_eio(), FsyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (log, opener) = open(dir.path(), policy).await;
        for i in 0..10 {
            log.append("t", 0, &[rec(i)]).await.unwrap();
        }
        let before = segment_len_sum(dir.path());
        opener.sw.write_errno.store(errno, Ordering::SeqCst);
        assert!(log.append("t", 0, &[rec(999)]).await.is_err());
        opener.sw.write_errno.store(0, Ordering::SeqCst);
        assert_eq!(
            segment_len_sum(dir.path()),
            before,
            "partial bytes of the failed write are gone at once"
        );
        log.flush().await.unwrap();
        drop(log); // unclean
        let (log, _) = open(dir.path(), policy).await;
        assert!(
            log.recovery_cuts().is_empty(),
            "no spurious cut: {:?}",
            log.recovery_cuts()
        );
        let want: Vec<String> = (0..10).map(|i| format!("record-{i}")).collect();
        assert_eq!(values(&log).await, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_segment_roll_syncs_outside_the_partition_lock() {
    let dir = tempfile::tempdir().unwrap();
    let opener = Arc::new(FaultyOpener::default());
    let log = EmbeddedLog::open_with(EmbeddedConfig::at(dir.path()), opener.clone()).unwrap();
    let cfg = TopicConfig {
        segment_bytes: 4096,
        ..TopicConfig::with_partitions(1)
    };
    log.create_topic("t", cfg).await.unwrap();
    let big = Record::new(None, Some(Bytes::from(vec![b'x'; 3000])));
    log.append("t", 0, std::slice::from_ref(&big))
        .await
        .unwrap();
    // The next append rolls; its fdatasync of the full segment blocks.
    opener.sw.gate_sync.store(true, Ordering::SeqCst);
    let roller = {
        let log = log.clone();
        tokio::spawn(async move { log.append("t", 0, &[big]).await })
    };
    let entered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while opener.sw.in_sync.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(entered.is_ok(), "the roll never synced");
    // Meanwhile readers and appenders of the partition are not stuck behind it.
    let reader = {
        let log = log.clone();
        tokio::spawn(async move {
            let b = log.read("t", 0, 0, ReadLimits::default()).await.unwrap();
            let w = log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap();
            (b.records.len(), w)
        })
    };
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), reader).await;
    opener.sw.gate_sync.store(false, Ordering::SeqCst);
    let (n, hw) = read
        .expect("a read waited for the roll's fdatasync")
        .unwrap();
    assert_eq!((n, hw), (1, 1));
    assert_eq!(roller.await.unwrap().unwrap().offsets, vec![1]);
    assert_eq!(values(&log).await.len(), 2);
}

#[tokio::test]
async fn topic_creation_touches_files_off_the_async_thread() {
    let dir = tempfile::tempdir().unwrap();
    let opener = Arc::new(FaultyOpener::default());
    let log = EmbeddedLog::open_with(EmbeddedConfig::at(dir.path()), opener.clone()).unwrap();
    opener.sw.open_threads.lock().unwrap().clear();
    // a current-thread runtime: the test's own thread is the only async thread
    log.create_topic("t", TopicConfig::with_partitions(3))
        .await
        .unwrap();
    let me = std::thread::current().id();
    let threads = opener.sw.open_threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 3);
    assert!(
        threads.iter().all(|t| *t != me),
        "segment files created on the async thread"
    );
}
