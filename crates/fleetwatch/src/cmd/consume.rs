//! `fleetwatch consume`

use crate::cmd::Global;
use clap::Args;
use fleetwatch::cli;
use std::time::Duration;

#[derive(Args, Debug)]
/// Arguments.
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, short = 't', env = "FLEETWATCH_TOPIC")]
    pub topic: String,
    /// Only this partition.
    #[arg(long, env = "FLEETWATCH_PARTITION")]
    pub partition: Option<i32>,
    /// Start at the first record held (default: only new records).
    #[arg(long, env = "FLEETWATCH_FROM_BEGINNING", conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (with --partition, or the same offset in every partition).
    #[arg(long, env = "FLEETWATCH_OFFSET", conflicts_with = "timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (ms since the epoch).
    #[arg(long, env = "FLEETWATCH_TIMESTAMP")]
    pub timestamp: Option<i64>,
    /// Consume as a member of this consumer group, committing as it goes.
    #[arg(long, short = 'g', env = "FLEETWATCH_GROUP", conflicts_with_all = ["offset", "timestamp", "partition"])]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'n', env = "FLEETWATCH_MAX_MESSAGES")]
    pub max_messages: Option<usize>,
    /// Keep waiting for new records (default: stop after --idle-timeout-ms without any).
    #[arg(long, short = 'f', env = "FLEETWATCH_FOLLOW")]
    pub follow: bool,
    /// Stop after this long without new records (unless --follow).
    #[arg(long, default_value_t = 1000, env = "FLEETWATCH_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: u64,
    /// Decode values: raw, or Schema Registry wire format (avro and json-sr both decode
    /// by the schema id each message carries).
    #[arg(long, value_enum, default_value_t = cli::ValueFormat::Raw, env = "FLEETWATCH_VALUE_FORMAT")]
    pub value_format: cli::ValueFormat,
}

/// Runs it.
pub fn run(g: &Global, a: ConsumeArgs) -> anyhow::Result<()> {
    let config = g.config()?;
    let start = if a.from_beginning {
        cli::Start::Beginning
    } else if let Some(o) = a.offset {
        cli::Start::Offset(o)
    } else if let Some(t) = a.timestamp {
        cli::Start::Timestamp(t)
    } else {
        cli::Start::Latest
    };
    if let Some(r) = g.remote(&config) {
        return crate::cmd::runtime(false)?.block_on(r.consume(
            &a.topic,
            a.partition,
            start,
            a.group.as_deref(),
            a.max_messages,
            a.follow,
            Duration::from_millis(a.idle_timeout_ms),
            a.value_format,
        ));
    }
    crate::cmd::with_log(&config, |log| async move {
        let decoder = if a.value_format == cli::ValueFormat::Raw {
            None
        } else {
            Some(
                fleetwatch_schema::SchemaRegistryConfig::default()
                    .build(log.clone())
                    .await?,
            )
        };
        cli::consume(
            log.clone(),
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
    })
}
