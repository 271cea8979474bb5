//! The `fleetwatch` command: parses arguments and dispatches to the `fleetwatch` library.

use fleetwatch::config::{Backend, Config};
use fleetwatch::{backend, bench, cli, serve};
/// mimalloc: the log's read path hands out slices of large, short-lived buffers; glibc's
/// malloc returns those to the OS and page-faults them back on every read (replay ran 4×
/// slower with it, measured by `fleetwatch bench log`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// fleetwatch: streaming machine learning for connected fleets.
#[derive(Parser, Debug)]
#[command(name = "fleetwatch", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// TOML config file (every key has a default: `fleetwatch config defaults`).
    #[arg(long, short = 'c', global = true, env = "FLEETWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `[embedded] data_dir`.
    #[arg(long, global = true, env = "FLEETWATCH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Overrides `[log] backend`.
    #[arg(long, global = true, env = "FLEETWATCH_BACKEND", value_enum)]
    backend: Option<Backend>,
    /// Overrides `[kafka] bootstrap_servers`.
    #[arg(long, global = true, env = "FLEETWATCH_KAFKA_BOOTSTRAP")]
    bootstrap_servers: Option<String>,
    /// Overrides any config key: `--set schema_registry.listen=127.0.0.1:0` (repeatable;
    /// the value is TOML or a bare string; `FLEETWATCH_SET` takes several separated by `;`).
    #[arg(
        long = "set",
        global = true,
        value_name = "KEY=VALUE",
        env = "FLEETWATCH_SET",
        value_delimiter = ';'
    )]
    set: Vec<String>,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `fleetwatch_log=debug`.
    #[arg(long, global = true, env = "FLEETWATCH_LOG", default_value = "info")]
    log_level: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: the HTTP API (REST Proxy v2) over the configured log.
    Serve(ServeArgs),
    /// Create, list, describe or delete topics.
    Topics {
        #[command(subcommand)]
        cmd: TopicsCmd,
    },
    /// Append stdin lines to a topic, one record per line.
    Produce(ProduceArgs),
    /// Print records of a topic as JSON lines.
    Consume(ConsumeArgs),
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Benchmarks (JSON on stdout, a table on stderr).
    Bench {
        #[command(subcommand)]
        cmd: BenchCmd,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Overrides `[http] listen` (port 0: any free port); same as `--set http.listen=…`.
    #[arg(long, env = "FLEETWATCH_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// Overrides `[schema_registry] listen`; same as `--set schema_registry.listen=…`.
    #[arg(long, env = "FLEETWATCH_SCHEMA_REGISTRY_LISTEN")]
    schema_registry_listen: Option<String>,
    /// Once every listener is bound, write their addresses here as JSON.
    #[arg(long, env = "FLEETWATCH_READY_FILE")]
    ready_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum TopicsCmd {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long, short = 'p', default_value_t = 1, env = "FLEETWATCH_PARTITIONS")]
        partitions: i32,
        /// Topic setting NAME=VALUE (Kafka names: retention.ms, retention.bytes,
        /// cleanup.policy, max.message.bytes, segment.bytes); repeatable.
        #[arg(
            long = "topic-config",
            value_name = "NAME=VALUE",
            env = "FLEETWATCH_TOPIC_CONFIG",
            value_delimiter = ','
        )]
        settings: Vec<String>,
    },
    /// List topic names.
    List,
    /// Show a topic's partitions, offsets and settings (JSON).
    Describe {
        /// Topic name.
        name: String,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        name: String,
    },
}

#[derive(Args, Debug)]
struct ProduceArgs {
    /// Topic to append to.
    #[arg(long, short = 't', env = "FLEETWATCH_TOPIC")]
    topic: String,
    /// Put every record in this partition (default: by key hash, or round-robin).
    #[arg(long, env = "FLEETWATCH_PARTITION")]
    partition: Option<i32>,
    /// Split each line into KEY<sep>VALUE at the first occurrence of this separator.
    #[arg(long, env = "FLEETWATCH_KEY_SEPARATOR")]
    key_separator: Option<String>,
    /// Lines per append.
    #[arg(long, default_value_t = 1000, env = "FLEETWATCH_BATCH")]
    batch: usize,
    /// How each line's value is written: raw bytes, or a JSON document encoded with a
    /// registered schema in the Schema Registry wire format.
    #[arg(long, value_enum, default_value_t = cli::ValueFormat::Raw, env = "FLEETWATCH_VALUE_FORMAT")]
    value_format: cli::ValueFormat,
    /// The schema file (.avsc for avro, a JSON Schema for json-sr), registered under
    /// `<topic>-value` unless --subject says otherwise.
    #[arg(long, env = "FLEETWATCH_SCHEMA")]
    schema: Option<PathBuf>,
    /// Subject to register the schema under.
    #[arg(long, env = "FLEETWATCH_SUBJECT")]
    subject: Option<String>,
}

#[derive(Args, Debug)]
struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, short = 't', env = "FLEETWATCH_TOPIC")]
    topic: String,
    /// Only this partition.
    #[arg(long, env = "FLEETWATCH_PARTITION")]
    partition: Option<i32>,
    /// Start at the first record held (default: only new records).
    #[arg(long, env = "FLEETWATCH_FROM_BEGINNING", conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Start at this offset (with --partition, or the same offset in every partition).
    #[arg(long, env = "FLEETWATCH_OFFSET", conflicts_with = "timestamp")]
    offset: Option<i64>,
    /// Start at the first record at or after this time (ms since the epoch).
    #[arg(long, env = "FLEETWATCH_TIMESTAMP")]
    timestamp: Option<i64>,
    /// Consume as a member of this consumer group, committing as it goes.
    #[arg(long, short = 'g', env = "FLEETWATCH_GROUP", conflicts_with_all = ["offset", "timestamp", "partition"])]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'n', env = "FLEETWATCH_MAX_MESSAGES")]
    max_messages: Option<usize>,
    /// Keep waiting for new records (default: stop after --idle-timeout-ms without any).
    #[arg(long, short = 'f', env = "FLEETWATCH_FOLLOW")]
    follow: bool,
    /// Stop after this long without new records (unless --follow).
    #[arg(long, default_value_t = 1000, env = "FLEETWATCH_IDLE_TIMEOUT_MS")]
    idle_timeout_ms: u64,
    /// Decode values: raw, or Schema Registry wire format (avro and json-sr both decode
    /// by the schema id each message carries).
    #[arg(long, value_enum, default_value_t = cli::ValueFormat::Raw, env = "FLEETWATCH_VALUE_FORMAT")]
    value_format: cli::ValueFormat,
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Print every configuration key with its default value (TOML).
    Defaults,
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// The embedded log: append on disk vs raw disk speed, append on tmpfs, replay.
    Log(BenchLogArgs),
    /// The schema registry: Avro encode/decode of cardata-v1, schema-id lookups over HTTP.
    Schema(BenchSchemaArgs),
}

#[derive(Args, Debug)]
struct BenchSchemaArgs {
    /// A short run for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    quick: bool,
    /// Records to encode and decode (default 2,000,000; 100,000 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_RECORDS")]
    records: Option<usize>,
    /// Seconds of HTTP lookups (default 5; 1 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_HTTP_SECONDS")]
    http_seconds: Option<f64>,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32, env = "FLEETWATCH_BENCH_HTTP_CLIENTS")]
    http_clients: usize,
}

#[derive(Args, Debug)]
struct BenchLogArgs {
    /// A short run (200,000 records) for smoke tests.
    #[arg(long, env = "FLEETWATCH_BENCH_QUICK")]
    quick: bool,
    /// Records per phase (default 2,000,000; 200,000 with --quick).
    #[arg(long, env = "FLEETWATCH_BENCH_RECORDS")]
    records: Option<usize>,
    /// Value bytes per record.
    #[arg(long, default_value_t = 200, env = "FLEETWATCH_BENCH_RECORD_BYTES")]
    record_bytes: usize,
    /// Records per append.
    #[arg(long, default_value_t = 1000, env = "FLEETWATCH_BENCH_BATCH")]
    batch: usize,
    /// A directory on the disk to measure.
    #[arg(long, default_value = "/var/tmp", env = "FLEETWATCH_BENCH_DIR")]
    dir: PathBuf,
    /// A directory on tmpfs.
    #[arg(long, default_value = "/dev/shm", env = "FLEETWATCH_BENCH_TMPFS")]
    tmpfs_dir: PathBuf,
    /// The CPU to pin to (-1: do not pin; default: the last CPU, usually the one with the
    /// fewest interrupts).
    #[arg(long, env = "FLEETWATCH_BENCH_CPU", allow_negative_numbers = true)]
    cpu: Option<i64>,
}

fn load_config(g: &Global) -> anyhow::Result<Config> {
    let mut config = match &g.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &g.data_dir {
        config.embedded.data_dir = d.clone();
    }
    if let Some(b) = g.backend {
        config.log.backend = b;
    }
    if let Some(s) = &g.bootstrap_servers {
        config.kafka.bootstrap_servers = s.clone();
    }
    let config = config.apply_overrides(&g.set)?;
    config.validate()?;
    Ok(config)
}

fn runtime(multi: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().context("starting the async runtime")
}

fn main() {
    let cli = Cli::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&cli.global.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "fleetwatch: error: --log-level {:?} is not a log filter ({e}); use e.g. info, debug or fleetwatch_log=debug",
                cli.global.log_level
            );
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Err(e) = run(cli) {
        // One line: the error and its causes.
        eprintln!("fleetwatch: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Config {
            cmd: ConfigCmd::Defaults,
        } => {
            print!("{}", Config::defaults_toml()?);
            Ok(())
        }
        Command::Bench {
            cmd: BenchCmd::Log(a),
        } => {
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
            let report = runtime(false)?.block_on(bench::run_log(opts, pinned))?;
            eprint!("{}", bench::table(&report));
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Bench {
            cmd: BenchCmd::Schema(a),
        } => {
            let opts = bench::SchemaBenchOptions {
                records: a
                    .records
                    .unwrap_or(if a.quick { 100_000 } else { 2_000_000 }),
                http_seconds: a.http_seconds.unwrap_or(if a.quick { 1.0 } else { 5.0 }),
                http_clients: a.http_clients,
            };
            let report = runtime(true)?.block_on(bench::run_schema(opts))?;
            eprint!("{}", bench::schema_table(&report));
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Serve(a) => {
            let mut config = load_config(&cli.global)?;
            if let Some(l) = a.http_listen {
                config.http.listen = l;
            }
            if let Some(l) = a.schema_registry_listen {
                config.schema_registry.listen = l;
            }
            runtime(true)?.block_on(serve::run(config, a.ready_file))
        }
        command => {
            let config = load_config(&cli.global)?;
            runtime(true)?.block_on(async move {
                let opened = backend::open(&config)?;
                let log = &*opened.log;
                let result = match command {
                    Command::Topics { cmd } => match cmd {
                        TopicsCmd::Create {
                            name,
                            partitions,
                            settings,
                        } => cli::topics_create(log, &name, partitions, &settings).await,
                        TopicsCmd::List => {
                            for t in log.list_topics().await? {
                                println!("{t}");
                            }
                            Ok(())
                        }
                        TopicsCmd::Describe { name } => cli::topics_describe(log, &name).await,
                        TopicsCmd::Delete { name } => {
                            log.delete_topic(&name).await?;
                            println!("deleted topic {name}");
                            Ok(())
                        }
                    },
                    Command::Produce(a) => {
                        anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
                        let encoder = cli::ValueEncoder::new(
                            a.value_format,
                            opened.log.clone(),
                            &a.topic,
                            a.schema.as_deref(),
                            a.subject.as_deref(),
                        )
                        .await?;
                        cli::produce(
                            log,
                            &a.topic,
                            a.partition,
                            a.key_separator.as_deref(),
                            a.batch,
                            &encoder,
                        )
                        .await
                    }
                    Command::Consume(a) => {
                        let start = if a.from_beginning {
                            cli::Start::Beginning
                        } else if let Some(o) = a.offset {
                            cli::Start::Offset(o)
                        } else if let Some(t) = a.timestamp {
                            cli::Start::Timestamp(t)
                        } else {
                            cli::Start::Latest
                        };
                        let decoder = if a.value_format == cli::ValueFormat::Raw {
                            None
                        } else {
                            Some(
                                fleetwatch_schema::SchemaRegistryConfig::default()
                                    .build(opened.log.clone())
                                    .await?,
                            )
                        };
                        cli::consume(
                            log,
                            cli::ConsumeOptions {
                                decoder,
                                topic: a.topic,
                                partition: a.partition,
                                start,
                                group: a.group,
                                max_messages: a.max_messages,
                                follow: a.follow,
                                idle_timeout: Duration::from_millis(a.idle_timeout_ms),
                            },
                        )
                        .await
                    }
                    _ => unreachable!("handled above"),
                };
                let closed = opened.close().await;
                result.and(closed)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
