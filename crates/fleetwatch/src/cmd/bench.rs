//! `fleetwatch bench …`: benchmarks print JSON on stdout and a table on stderr.

use clap::{Args, Subcommand};
use fleetwatch::bench;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The embedded log: append on disk vs raw disk speed, append on tmpfs, replay.
    Log(BenchLogArgs),
    /// The schema registry: Avro encode/decode of cardata-v1, schema-id lookups over HTTP.
    Schema(BenchSchemaArgs),
}

#[derive(Args, Debug)]
pub struct BenchSchemaArgs {
    /// A short run for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Records to encode and decode (default 2,000,000; 100,000 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_RECORDS")]
    pub records: Option<usize>,
    /// Seconds of HTTP lookups (default 5; 1 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_HTTP_SECONDS")]
    pub http_seconds: Option<f64>,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32, env = "FLEETWATCH_BENCH_HTTP_CLIENTS")]
    pub http_clients: usize,
}

#[derive(Args, Debug)]
pub struct BenchLogArgs {
    /// A short run (200,000 records) for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Records per phase (default 2,000,000; 200,000 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_RECORDS")]
    pub records: Option<usize>,
    /// Value bytes per record.
    #[arg(long, default_value_t = 200, env = "FLEETWATCH_BENCH_RECORD_BYTES")]
    pub record_bytes: usize,
    /// Records per append.
    #[arg(long, default_value_t = 1000, env = "FLEETWATCH_BENCH_BATCH")]
    pub batch: usize,
    /// A directory on the disk to measure.
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: PathBuf,
    /// A directory on tmpfs.
    #[arg(long, default_value = "/dev/shm", env = "FLEETWATCH_BENCH_TMPFS")]
    pub tmpfs_dir: PathBuf,
    /// The CPU to pin to (-1: do not pin; default: the last CPU, usually the one with the
    /// fewest interrupts).
    #[arg(long, env = "FLEETWATCH_BENCH_CPU", allow_negative_numbers = true)]
    pub cpu: Option<i64>,
}

/// Runs it.
pub fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Log(a) => {
            let cpu = a.cpu.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(0, |n| n.get() as i64 - 1)
            });
            let pinned = cpu >= 0 && bench::pin_to_cpu(cpu as usize);
            let records = a
                .records
                .unwrap_or(if a.quick { 200_000 } else { 2_000_000 });
            anyhow::ensure!(
                a.batch > 0 && records > 0,
                "--records and --batch must be positive"
            );
            let opts = bench::LogBenchOptions {
                records,
                record_bytes: a.record_bytes,
                batch: a.batch,
                dir: a.dir,
                tmpfs_dir: a.tmpfs_dir,
            };
            let report = crate::cmd::runtime(false)?.block_on(bench::run_log(opts, pinned))?;
            eprint!("{}", bench::table(&report));
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Cmd::Schema(a) => {
            let opts = bench::SchemaBenchOptions {
                records: a
                    .records
                    .unwrap_or(if a.quick { 100_000 } else { 2_000_000 }),
                http_seconds: a.http_seconds.unwrap_or(if a.quick { 1.0 } else { 5.0 }),
                http_clients: a.http_clients,
            };
            let report = crate::cmd::runtime(true)?.block_on(bench::run_schema(opts))?;
            eprint!("{}", bench::schema_table(&report));
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}
