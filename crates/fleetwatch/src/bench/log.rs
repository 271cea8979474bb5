//! `fleetwatch bench log` ([`run`], [`table`]): the embedded log's throughput, as JSON on
//! stdout and a short table on stderr. Measured on one core (the process pins itself), with CPU seconds per
//! million records beside each rate, because these machines are shared and noisy.
//!
//! - `raw_write`: the same number of bytes written sequentially to a plain file on the
//!   same disk, in the same chunk sizes, ending in fdatasync — the disk's own speed;
//! - `append_disk`: `Log::append` under the `interval` policy on that disk, ending in a
//!   flush; `ratio_to_raw` = its bytes/s ÷ raw_write's (target ≥ 0.5);
//! - `append_tmpfs`: the same on tmpfs (`/dev/shm`): the log's CPU cost (target ≥ 2 M/s);
//! - `replay`: reading everything back from the start (target ≥ 5 M/s);
//! - `memory`: resident set size before and after, to show it stays flat as the log grows.

use super::{Phase, Rates, Timer, fresh_dir, round, rss};
use bytes::Bytes;
use fleetwatch_core::{LogAdmin, LogData, OffsetSpec, ReadLimits, Record, TopicConfig};
use fleetwatch_log::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Options of `bench log`.
#[derive(Debug, Clone)]
pub struct LogBenchOptions {
    /// Records per phase.
    pub records: usize,
    /// Value bytes per record.
    pub record_bytes: usize,
    /// Records per append.
    pub batch: usize,
    /// Directory on the disk to measure.
    pub dir: PathBuf,
    /// Directory on tmpfs (skipped when it does not exist).
    pub tmpfs_dir: PathBuf,
}

fn records(o: &LogBenchOptions) -> Vec<Record> {
    let payload = Bytes::from(vec![b'x'; o.record_bytes]);
    (0..o.batch)
        .map(|_| Record::new(None, Some(payload.clone())))
        .collect()
}

/// Appends `o.records` records; returns the phase timing and bytes written to disk.
async fn append_phase(log: &EmbeddedLog, o: &LogBenchOptions) -> anyhow::Result<(Phase, u64)> {
    log.create_topic(
        "bench",
        TopicConfig {
            retention_ms: None,
            segment_bytes: 256 << 20,
            ..TopicConfig::with_partitions(1)
        },
    )
    .await?;
    let batch = records(o);
    let cancel = CancellationToken::new();
    let maint = {
        let log = log.clone();
        let c = cancel.clone();
        tokio::spawn(async move { log.run_maintenance(c).await })
    };
    let timer = Timer::start();
    let mut done = 0;
    while done < o.records {
        let n = o.batch.min(o.records - done);
        log.append("bench", 0, &batch[..n]).await?;
        done += n;
        tokio::task::yield_now().await;
    }
    log.flush().await?;
    let phase = timer.stop();
    cancel.cancel();
    let _ = maint.await;
    let bytes = log
        .sizes()
        .iter()
        .filter(|(tp, _, _)| tp.topic == "bench")
        .map(|x| x.1)
        .sum();
    Ok((phase, bytes))
}

/// Writes `bytes` bytes in `chunk`-sized writes and fdatasyncs.
fn raw_write(dir: &Path, bytes: u64, chunk: usize) -> anyhow::Result<Phase> {
    let path = dir.join("raw.bin");
    let buf = vec![b'x'; chunk.max(1)];
    let timer = Timer::start();
    let mut f = std::fs::File::create(&path)?;
    let mut left = bytes;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    let phase = timer.stop();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(phase)
}

/// `always` policy: `writers` tasks each appending one record at a time; group commit lets
/// concurrent appenders share an fdatasync. Returns (phase, records).
async fn always_phase(
    dir: &Path,
    o: &LogBenchOptions,
    writers: usize,
) -> anyhow::Result<(Phase, usize)> {
    let d = fresh_dir(dir, "always")?;
    let log = EmbeddedConfig {
        fsync: FsyncPolicy::Always,
        ..EmbeddedConfig::at(&d)
    }
    .build()?;
    log.create_topic("bench", TopicConfig::with_partitions(1))
        .await?;
    let per_writer = (o.records / 100).clamp(100, 2_000) / writers.max(1) + 1;
    let payload = Bytes::from(vec![b'x'; o.record_bytes]);
    let timer = Timer::start();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let log = log.clone();
        let rec = Record::new(None, Some(payload.clone()));
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_writer {
                log.append("bench", 0, std::slice::from_ref(&rec)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let phase = timer.stop();
    drop(log);
    let _ = std::fs::remove_dir_all(&d);
    Ok((phase, per_writer * writers))
}

/// `append_disk_always_single_records`: one record per append under `always`, many writers.
#[derive(Debug, Clone, Serialize)]
pub struct AlwaysSingleRecords {
    /// Concurrent appenders.
    pub writers: usize,
    /// Records appended in all.
    pub records: usize,
    /// Records per wall-clock second.
    pub records_per_sec: f64,
    /// Mean wall time of one acknowledged append, ms.
    pub mean_ack_latency_ms: f64,
    /// CPU seconds per million records.
    pub cpu_seconds_per_million: f64,
}

/// Resident memory across the phases, KiB (the tmpfs fields only when tmpfs was measured).
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// Before the first phase.
    pub rss_start_kib: u64,
    /// After the disk phase.
    pub rss_after_disk_phase_kib: u64,
    /// After the tmpfs append phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_tmpfs_phase_kib: Option<u64>,
    /// Peak of the whole run.
    pub rss_peak_kib: u64,
    /// Bytes of log one phase writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_bytes_per_phase: Option<u64>,
}

/// The targets the figures are read against.
#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    /// Append on disk ÷ raw disk speed.
    pub ratio_to_raw: &'static str,
    /// Append on tmpfs.
    pub append_tmpfs_records_per_sec: &'static str,
    /// Replay.
    pub replay_records_per_sec: &'static str,
}

/// What [`run`] measured (the module doc says what each phase is).
#[derive(Debug, Clone, Serialize)]
pub struct LogReport {
    /// `"log"`.
    pub bench: &'static str,
    /// Records per phase.
    pub records: usize,
    /// Value bytes per record.
    pub record_bytes: usize,
    /// Records per append.
    pub batch: usize,
    /// Whether the process was pinned to one CPU.
    pub pinned_to_one_cpu: bool,
    /// Fsync policy of the append phases.
    pub fsync: &'static str,
    /// The disk directory measured.
    pub disk_dir: String,
    /// Plain sequential writes of the same bytes, ending in fdatasync.
    pub raw_write: Rates,
    /// `Log::append` on that disk.
    pub append_disk: Rates,
    /// append_disk's bytes/s ÷ raw_write's.
    pub ratio_to_raw: f64,
    /// One record per append under `always`.
    pub append_disk_always_single_records: AlwaysSingleRecords,
    /// `Log::append` on tmpfs (null when the tmpfs directory does not exist).
    pub append_tmpfs: Option<Rates>,
    /// Reading the tmpfs log back from the start (null without tmpfs).
    pub replay: Option<Rates>,
    /// Resident memory.
    pub memory: Memory,
    /// Targets.
    pub targets: Targets,
}

/// Replays partition 0 of `bench` from the start; returns the records read.
async fn replay_all(log: &EmbeddedLog) -> anyhow::Result<usize> {
    let mut next = log.offset_for("bench", 0, OffsetSpec::Earliest).await?;
    let mut count = 0usize;
    let limits = ReadLimits {
        max_records: 100_000,
        max_bytes: 8 << 20,
        ..Default::default()
    };
    loop {
        let b = log.read("bench", 0, next, limits).await?;
        if b.records.is_empty() {
            break;
        }
        count += b.records.len();
        next = b.next_offset(next);
    }
    Ok(count)
}

/// Runs the benchmark (`pinned`: whether the caller pinned the process to one CPU).
pub async fn run(o: LogBenchOptions, pinned: bool) -> anyhow::Result<LogReport> {
    let rss0 = rss().rss_kib;
    let disk = fresh_dir(&o.dir, "disk")?;
    let cfg = |d: &Path| EmbeddedConfig {
        fsync: FsyncPolicy::Interval,
        ..EmbeddedConfig::at(d)
    };
    let log = cfg(&disk).build()?;
    let (append_disk, disk_bytes) = append_phase(&log, &o).await?;
    drop(log);
    let rss_after_disk = rss().rss_kib;
    let _ = std::fs::remove_dir_all(&disk);
    let chunk = (disk_bytes / (o.records as u64 / o.batch as u64).max(1)) as usize;
    let raw = raw_write(&o.dir, disk_bytes, chunk)?;
    let raw_bps = disk_bytes as f64 / raw.seconds;
    let writers = 16;
    let (always, always_records) = always_phase(&o.dir, &o, writers).await?;
    let disk_bps = disk_bytes as f64 / append_disk.seconds;
    let mut memory = Memory {
        rss_start_kib: rss0,
        rss_after_disk_phase_kib: rss_after_disk,
        rss_after_tmpfs_phase_kib: None,
        rss_peak_kib: 0,
        log_bytes_per_phase: None,
    };
    let (mut append_tmpfs, mut replay) = (None, None);
    if o.tmpfs_dir.is_dir() {
        let tmp = fresh_dir(&o.tmpfs_dir, "tmpfs")?;
        let log = cfg(&tmp).build()?;
        let (append, bytes) = append_phase(&log, &o).await?;
        memory.rss_after_tmpfs_phase_kib = Some(rss().rss_kib);
        memory.log_bytes_per_phase = Some(bytes);
        let timer = Timer::start();
        let count = replay_all(&log).await?;
        let replayed = timer.stop();
        anyhow::ensure!(
            count == o.records,
            "replay read {count} of {} records",
            o.records
        );
        drop(log);
        let _ = std::fs::remove_dir_all(&tmp);
        append_tmpfs = Some(Rates::of(&append, o.records, bytes));
        replay = Some(Rates::of(&replayed, o.records, bytes));
    }
    memory.rss_peak_kib = rss().hwm_kib;
    Ok(LogReport {
        bench: "log",
        records: o.records,
        record_bytes: o.record_bytes,
        batch: o.batch,
        pinned_to_one_cpu: pinned,
        fsync: "interval",
        disk_dir: o.dir.display().to_string(),
        raw_write: Rates::of(&raw, o.records, disk_bytes),
        append_disk: Rates::of(&append_disk, o.records, disk_bytes),
        ratio_to_raw: round(disk_bps / raw_bps),
        append_disk_always_single_records: AlwaysSingleRecords {
            writers,
            records: always_records,
            records_per_sec: round(always_records as f64 / always.seconds),
            mean_ack_latency_ms: round(
                always.seconds * 1000.0 / (always_records as f64 / writers as f64),
            ),
            cpu_seconds_per_million: round(always.cpu / (always_records as f64 / 1e6)),
        },
        append_tmpfs,
        replay,
        memory,
        targets: Targets {
            ratio_to_raw: ">= 0.5",
            append_tmpfs_records_per_sec: ">= 2000000",
            replay_records_per_sec: ">= 5000000",
        },
    })
}

/// The short table printed to stderr.
pub fn table(r: &LogReport) -> String {
    let row = |name: &str, v: &Rates| {
        format!(
            "{name:<14} {:>14} rec/s {:>10} MiB/s {:>8} cpu-s/M\n",
            v.records_per_sec, v.mib_per_sec, v.cpu_seconds_per_million
        )
    };
    let mut s = String::new();
    s.push_str(&row("raw_write", &r.raw_write));
    s.push_str(&row("append_disk", &r.append_disk));
    if let Some(v) = &r.append_tmpfs {
        s.push_str(&row("append_tmpfs", v));
    }
    if let Some(v) = &r.replay {
        s.push_str(&row("replay", v));
    }
    s.push_str(&format!(
        "ratio append_disk / raw_write: {}\n",
        r.ratio_to_raw
    ));
    let a = &r.append_disk_always_single_records;
    s.push_str(&format!(
        "fsync=always, {} writers, one record per append: {} rec/s, {} ms per ack\n",
        a.writers, a.records_per_sec, a.mean_ack_latency_ms
    ));
    s
}
