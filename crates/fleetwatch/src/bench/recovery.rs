//! `fleetwatch bench recovery` ([`run`], [`table`]): how long the embedded log takes to
//! start after an unclean stop (every segment re-checked: CRC of every batch, offset
//! continuity), and after a clean one for comparison, for logs of given sizes.
//!
//! For each size: a fresh directory, one partition, batches of 1000 records of
//! `record_bytes` value bytes appended until the log holds that many bytes, synced; then the
//! log is dropped without `close` (no clean-shutdown marker: an unclean stop), reopened and
//! timed; then closed cleanly, reopened and timed again; then the directory is removed.
//! The data was just written, so it is mostly in the page cache: the figures are the cost
//! of checking, not of reading a cold disk. `cpu_seconds` is the process's user + system
//! time during the start-up, and `bytes_per_sec` is bytes checked per wall-clock second.

use super::{Timer, human_bytes, round};
use bytes::Bytes;
use fleetwatch_core::{LogAdmin, LogData, Record, TopicConfig};
use fleetwatch_log::{EmbeddedConfig, EmbeddedLog, FsyncPolicy, RecoveryStats};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Options of `bench recovery`.
#[derive(Debug, Clone)]
pub struct RecoveryBenchOptions {
    /// Log sizes to measure, in bytes.
    pub sizes_bytes: Vec<u64>,
    /// Directory on the disk to measure (a subdirectory is created and removed).
    pub dir: PathBuf,
    /// Value bytes per record.
    pub record_bytes: usize,
}

/// One start-up measured.
#[derive(Debug, Clone, Serialize)]
pub struct StartupRun {
    /// The log found no clean-shutdown marker (so it checked every segment).
    pub unclean: bool,
    /// Wall-clock seconds to open the log (as the log measured it).
    pub seconds: f64,
    /// CPU seconds of the process while opening it.
    pub cpu_seconds: f64,
    /// Segments whose every batch was checked.
    pub segments_checked: u64,
    /// Bytes of those segments.
    pub bytes_checked: u64,
    /// Segments in the log.
    pub segments_total: u64,
    /// Bytes checked per second of start-up.
    pub bytes_per_sec: f64,
}

/// One log size.
#[derive(Debug, Clone, Serialize)]
pub struct RecoverySize {
    /// Size asked for.
    pub size_bytes: u64,
    /// Bytes of segments actually written.
    pub written_bytes: u64,
    /// Records written.
    pub records: u64,
    /// Seconds spent writing them.
    pub write_seconds: f64,
    /// Start-up after an unclean stop.
    pub unclean: StartupRun,
    /// Start-up after a clean stop.
    pub clean: StartupRun,
}

/// What `run_recovery` measured.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// `"recovery"`.
    pub bench: &'static str,
    /// The directory measured in.
    pub dir: String,
    /// Fsync policy while writing (`never`: the writes are only the set-up).
    pub fsync: &'static str,
    /// Value bytes per record.
    pub record_bytes: usize,
    /// Records per append.
    pub batch_records: usize,
    /// One entry per size, in the order given.
    pub sizes: Vec<RecoverySize>,
}

const BATCH: usize = 1000;

fn run_of(stats: RecoveryStats, cpu_seconds: f64) -> StartupRun {
    StartupRun {
        unclean: stats.unclean,
        seconds: round(stats.seconds),
        cpu_seconds: round(cpu_seconds),
        segments_checked: stats.segments_checked,
        bytes_checked: stats.bytes_checked,
        segments_total: stats.segments_total,
        bytes_per_sec: if stats.seconds > 0.0 {
            round(stats.bytes_checked as f64 / stats.seconds)
        } else {
            0.0
        },
    }
}

/// Opens the log; returns it, its recovery stats and the CPU seconds the opening took.
async fn open(cfg: &EmbeddedConfig) -> anyhow::Result<(EmbeddedLog, RecoveryStats, f64)> {
    let cfg = cfg.clone();
    let timer = Timer::start();
    let log = tokio::task::spawn_blocking(move || cfg.build()).await??;
    let cpu = timer.stop().cpu;
    let stats = log.recovery_stats();
    Ok((log, stats, cpu))
}

fn topic_bytes(log: &EmbeddedLog) -> u64 {
    log.sizes()
        .iter()
        .filter(|(tp, _, _)| tp.topic == "bench")
        .map(|(_, b, _)| *b)
        .sum()
}

async fn one_size(opts: &RecoveryBenchOptions, size: u64) -> anyhow::Result<RecoverySize> {
    let dir = opts.dir.join(format!(
        "fleetwatch-bench-recovery-{}-{size}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let cfg = EmbeddedConfig {
        fsync: FsyncPolicy::Never,
        ..EmbeddedConfig::at(&dir)
    };
    let payload = Bytes::from(vec![b'x'; opts.record_bytes]);
    let batch: Vec<Record> = (0..BATCH)
        .map(|_| Record::new(None, Some(payload.clone())))
        .collect();
    let started = Instant::now();
    let (log, _, _) = open(&cfg).await?;
    let topic = TopicConfig {
        retention_ms: None,
        retention_bytes: None,
        ..TopicConfig::with_partitions(1)
    };
    log.create_topic("bench", topic).await?;
    let mut records = 0u64;
    let mut written = 0u64;
    while written < size {
        log.append("bench", 0, &batch).await?;
        records += BATCH as u64;
        if records.is_multiple_of(BATCH as u64 * 64) {
            written = topic_bytes(&log);
        } else {
            // estimate between exact looks, so that small sizes stop close to the target
            written += (opts.record_bytes as u64 + 4) * BATCH as u64;
        }
    }
    log.flush().await?;
    let written = topic_bytes(&log);
    let write_seconds = started.elapsed().as_secs_f64();
    drop(log); // no close: unclean
    let (log, unclean, unclean_cpu) = open(&cfg).await?;
    log.close().await?;
    drop(log);
    let (log, clean, clean_cpu) = open(&cfg).await?;
    log.close().await?;
    drop(log);
    std::fs::remove_dir_all(&dir)?;
    Ok(RecoverySize {
        size_bytes: size,
        written_bytes: written,
        records,
        write_seconds: round(write_seconds),
        unclean: run_of(unclean, unclean_cpu),
        clean: run_of(clean, clean_cpu),
    })
}

/// Measures start-up after an unclean and a clean stop for each size (see the module doc).
pub async fn run(opts: RecoveryBenchOptions) -> anyhow::Result<RecoveryReport> {
    anyhow::ensure!(
        !opts.sizes_bytes.is_empty(),
        "bench recovery: no sizes to measure"
    );
    let mut sizes = Vec::with_capacity(opts.sizes_bytes.len());
    for &size in &opts.sizes_bytes {
        sizes.push(one_size(&opts, size).await?);
    }
    Ok(RecoveryReport {
        bench: "recovery",
        dir: opts.dir.display().to_string(),
        fsync: "never",
        record_bytes: opts.record_bytes,
        batch_records: BATCH,
        sizes,
    })
}

/// The short table of `bench recovery`: one row per size and stop.
pub fn table(r: &RecoveryReport) -> String {
    let mib = |b: f64| b / (1024.0 * 1024.0);
    let mut s = format!(
        "{:<10} {:<8} {:>10} {:>8} {:>12} {:>10} {:>10}\n",
        "size", "stop", "start-up s", "cpu-s", "checked", "segments", "MiB/s"
    );
    for z in &r.sizes {
        for (stop, run) in [("unclean", &z.unclean), ("clean", &z.clean)] {
            s.push_str(&format!(
                "{:<10} {:<8} {:>10.3} {:>8.3} {:>12} {:>4}/{:<5} {:>10.1}\n",
                human_bytes(z.written_bytes),
                stop,
                run.seconds,
                run.cpu_seconds,
                human_bytes(run.bytes_checked),
                run.segments_checked,
                run.segments_total,
                mib(run.bytes_per_sec),
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_small_run_checks_every_byte_after_an_unclean_stop() {
        let dir = tempfile::tempdir().unwrap();
        let r = run(RecoveryBenchOptions {
            sizes_bytes: vec![1 << 20],
            dir: dir.path().to_path_buf(),
            record_bytes: 100,
        })
        .await
        .unwrap();
        let s = &r.sizes[0];
        assert!(s.written_bytes >= 1 << 20, "{s:?}");
        assert!(s.unclean.unclean && !s.clean.unclean, "{s:?}");
        assert!(s.unclean.bytes_checked >= s.written_bytes, "{s:?}");
        assert!(s.clean.bytes_checked <= s.unclean.bytes_checked, "{s:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "cleaned up"
        );
        let t = table(&r);
        assert_eq!(t.lines().count(), 3, "{t}");
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["sizes"][0]["unclean"]["bytes_per_sec"].is_number());
    }
}
