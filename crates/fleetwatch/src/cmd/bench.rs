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
    /// The embedded log's start-up: after an unclean stop (every batch checked) vs a clean one.
    Recovery(BenchRecoveryArgs),
    /// REST Proxy produce requests of 100,000 records: rate, CPU, peak memory per record; and
    /// a 16 MiB body of empty records, which must be refused (413 / 41302).
    Produce(BenchProduceArgs),
    /// MQTT publishes from many loopback connections: fleetwatch's proxy (durable acks,
    /// `interval` and `always` fsync) against the local Mosquitto, QoS 1 and 0.
    Mqtt(BenchMqttArgs),
    /// The simulator: its generator alone on one pinned core (target ≥ 1,000,000 events/s),
    /// for the fleetwatch record and cardata-v1, then its `log` target.
    Sim(BenchSimArgs),
    /// Streaming SQL: filter + projection + PII masking on Arrow batches (target ≥ 5 M
    /// events/s), the JSON and Avro format work, and a persistent query end to end over the
    /// embedded log (target ≥ 1 M events/s), on one pinned core.
    Sql(BenchSqlArgs),
    /// Machine learning: autoencoder 30-16-8-16-30 training on 1,000,000 rows × 30 (10
    /// epochs) against Keras with the same setup, isolation forest and k-means fit times,
    /// operator-only scoring (targets: autoencoder ≥ 2 M rows/s, isolation forest ≥ 1 M),
    /// on one pinned core.
    Ml(BenchMlArgs),
}

#[derive(Args, Debug)]
pub struct BenchMlArgs {
    /// A short run for smoke tests (20,000 rows, 2 epochs).
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Rows in all, 80 % of them train (default 1,000,000).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Autoencoder epochs (default 10).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// A Python with `tensorflow` (tensorflow-cpu) for the Keras comparison; without it the
    /// phase is skipped and says so.
    #[arg(long, env = "FLEETWATCH_KERAS_PYTHON")]
    pub keras_python: Option<PathBuf>,
    /// CPU to pin to (default: the last one; -1: none).
    #[arg(long)]
    pub cpu: Option<i64>,
    /// Where the rows handed to Keras are written.
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchSqlArgs {
    /// A short run for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Events per phase (default 2,000,000; 20,000 with --quick).
    #[arg(long)]
    pub events: Option<usize>,
    /// Rows per Arrow batch.
    #[arg(long, default_value_t = 4096)]
    pub batch_rows: usize,
    /// CPU to pin to (default: the last one; -1: none).
    #[arg(long)]
    pub cpu: Option<i64>,
    /// A directory for the end-to-end phase's log; `none` skips it.
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: String,
}

#[derive(Args, Debug)]
pub struct BenchSimArgs {
    /// A short run for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Cars.
    #[arg(long, default_value_t = 1000)]
    pub cars: u32,
    /// Ticks per phase (default 3600, 60 with --quick).
    #[arg(long)]
    pub ticks: Option<u64>,
    /// CPU to pin to (default: the last one; -1: none).
    #[arg(long)]
    pub cpu: Option<i64>,
    /// A directory for the log phase (a subdirectory is created and removed); `none` skips it.
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: String,
}

#[derive(Args, Debug)]
pub struct BenchMqttArgs {
    /// A short run (1 s phases, 8 connections) for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Connections (default 64; 8 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_CONNECTIONS")]
    pub connections: Option<usize>,
    /// QoS 1 publishes in flight per connection.
    #[arg(long, default_value_t = 256, env = "FLEETWATCH_BENCH_INFLIGHT")]
    pub inflight: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 300, env = "FLEETWATCH_BENCH_PAYLOAD")]
    pub payload: usize,
    /// Seconds per phase (default 10; 1 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_SECONDS")]
    pub seconds: Option<f64>,
    /// Mosquitto to compare with; `none` skips it.
    #[arg(
        long,
        default_value = "127.0.0.1:1883",
        env = "FLEETWATCH_BENCH_MOSQUITTO"
    )]
    pub mosquitto: String,
    /// A directory for the server's log (a temporary subdirectory is created).
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchRecoveryArgs {
    /// A short run (one log of 4 MiB) for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Log sizes, comma-separated: `1GiB`, `512MiB` or plain bytes (default 1GiB,10GiB;
    /// 4MiB with --quick).
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = bench::parse_size,
        env = "FLEETWATCH_BENCH_SIZES"
    )]
    pub sizes: Option<Vec<u64>>,
    /// A directory on the disk to measure (a subdirectory is created and removed).
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: PathBuf,
    /// Value bytes per record.
    #[arg(long, default_value_t = 200, env = "FLEETWATCH_BENCH_RECORD_BYTES")]
    pub record_bytes: usize,
}

#[derive(Args, Debug)]
pub struct BenchProduceArgs {
    /// A short run (2 large requests) for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    pub quick: bool,
    /// Large requests to measure (default 10; 2 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_REQUESTS")]
    pub requests: Option<usize>,
    /// Records per request (at most http.max_records_per_request, 100,000).
    #[arg(
        long,
        default_value_t = 100_000,
        env = "FLEETWATCH_BENCH_RECORDS_PER_REQUEST"
    )]
    pub records_per_request: usize,
    /// Partitions of the topic produced to.
    #[arg(long, default_value_t = 1, env = "FLEETWATCH_BENCH_PARTITIONS")]
    pub partitions: i32,
    /// A directory for the log (a temporary subdirectory is created and removed).
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    pub dir: PathBuf,
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
            let opts = bench::log::LogBenchOptions {
                records,
                record_bytes: a.record_bytes,
                batch: a.batch,
                dir: a.dir,
                tmpfs_dir: a.tmpfs_dir,
            };
            let report = crate::cmd::runtime(false)?.block_on(bench::log::run(opts, pinned))?;
            bench::print(&report, bench::log::table)
        }
        Cmd::Schema(a) => {
            let opts = bench::schema::SchemaBenchOptions {
                records: a
                    .records
                    .unwrap_or(if a.quick { 100_000 } else { 2_000_000 }),
                http_seconds: a.http_seconds.unwrap_or(if a.quick { 1.0 } else { 5.0 }),
                http_clients: a.http_clients,
            };
            let report = crate::cmd::runtime(true)?.block_on(bench::schema::run(opts))?;
            bench::print(&report, bench::schema::table)
        }
        Cmd::Recovery(a) => {
            let sizes_bytes = a.sizes.unwrap_or_else(|| {
                if a.quick {
                    vec![4 << 20]
                } else {
                    vec![1 << 30, 10 << 30]
                }
            });
            anyhow::ensure!(a.record_bytes > 0, "--record-bytes must be positive");
            let opts = bench::recovery::RecoveryBenchOptions {
                sizes_bytes,
                dir: a.dir,
                record_bytes: a.record_bytes,
            };
            let report = crate::cmd::runtime(false)?.block_on(bench::recovery::run(opts))?;
            bench::print(&report, bench::recovery::table)
        }
        Cmd::Produce(a) => {
            let opts = bench::produce::ProduceBenchOptions {
                requests: a.requests.unwrap_or(if a.quick { 2 } else { 10 }),
                records_per_request: a.records_per_request,
                partitions: a.partitions,
                dir: a.dir,
            };
            let report = crate::cmd::runtime(true)?.block_on(bench::produce::run(opts))?;
            bench::print(&report, bench::produce::table)
        }
        Cmd::Sim(a) => {
            let cpu = a.cpu.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(0, |n| n.get() as i64 - 1)
            });
            let pinned = cpu >= 0 && bench::pin_to_cpu(cpu as usize);
            let opts = bench::sim::SimBenchOptions {
                cars: a.cars.max(1),
                ticks: a.ticks.unwrap_or(if a.quick { 60 } else { 3600 }).max(1),
                dir: (a.dir != "none").then(|| PathBuf::from(&a.dir)),
                pinned,
            };
            let report = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(bench::sim::run(opts))?;
            bench::print(&report, bench::sim::table)
        }
        Cmd::Ml(a) => {
            let cpu = a.cpu.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(0, |n| n.get() as i64 - 1)
            });
            let pinned = cpu >= 0 && bench::pin_to_cpu(cpu as usize);
            let opts = bench::ml::MlBenchOptions {
                rows: a.rows.unwrap_or(if a.quick { 20_000 } else { 1_000_000 }),
                epochs: a.epochs.unwrap_or(if a.quick { 2 } else { 10 }).max(1),
                keras_python: a.keras_python,
                cpu: pinned.then_some(cpu as usize),
                dir: a.dir,
            };
            let report = bench::ml::run(&opts)?;
            bench::print(&report, bench::ml::table)
        }
        Cmd::Sql(a) => {
            let cpu = a.cpu.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(0, |n| n.get() as i64 - 1)
            });
            let pinned = cpu >= 0 && bench::pin_to_cpu(cpu as usize);
            let opts = bench::sql::SqlBenchOptions {
                events: a
                    .events
                    .unwrap_or(if a.quick { 20_000 } else { 2_000_000 })
                    .max(1),
                batch_rows: a.batch_rows.max(1),
                dir: (a.dir != "none").then(|| PathBuf::from(&a.dir)),
                pinned,
            };
            let report = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(bench::sql::run(opts))?;
            bench::print(&report, bench::sql::table)
        }
        Cmd::Mqtt(a) => {
            let mosquitto = match a.mosquitto.as_str() {
                "none" | "" => None,
                m => Some(
                    m.parse()
                        .map_err(|e| anyhow::anyhow!("--mosquitto {m:?}: {e}"))?,
                ),
            };
            let opts = bench::mqtt::MqttBenchOptions {
                connections: a.connections.unwrap_or(if a.quick { 8 } else { 64 }),
                inflight: a.inflight.max(1),
                payload: a.payload,
                seconds: a.seconds.unwrap_or(if a.quick { 1.0 } else { 10.0 }),
                server_bin: std::env::current_exe()?,
                dir: a.dir,
                mosquitto,
            };
            let report = crate::cmd::runtime(false)?.block_on(bench::mqtt::run(opts))?;
            bench::print(&report, bench::mqtt::table)
        }
    }
}
