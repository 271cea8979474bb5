//! `fleetwatch produce`

use crate::cmd::Global;
use clap::Args;
use fleetwatch::cli;
use std::path::PathBuf;

#[derive(Args, Debug)]
/// Arguments.
pub struct ProduceArgs {
    /// Topic to append to.
    #[arg(long, short = 't', env = "FLEETWATCH_TOPIC")]
    pub topic: String,
    /// Put every record in this partition (default: by key hash, or round-robin).
    #[arg(long, env = "FLEETWATCH_PARTITION")]
    pub partition: Option<i32>,
    /// Split each line into KEY<sep>VALUE at the first occurrence of this separator.
    #[arg(long, env = "FLEETWATCH_KEY_SEPARATOR")]
    pub key_separator: Option<String>,
    /// Lines per append.
    #[arg(long, default_value_t = 1000, env = "FLEETWATCH_BATCH")]
    pub batch: usize,
    /// How each line's value is written: raw bytes, or a JSON document encoded with a
    /// registered schema in the Schema Registry wire format.
    #[arg(long, value_enum, default_value_t = cli::ValueFormat::Raw, env = "FLEETWATCH_VALUE_FORMAT")]
    pub value_format: cli::ValueFormat,
    /// The schema file (.avsc for avro, a JSON Schema for json-sr), registered under
    /// `<topic>-value` unless --subject says otherwise.
    #[arg(long, env = "FLEETWATCH_SCHEMA")]
    pub schema: Option<PathBuf>,
    /// Subject to register the schema under.
    #[arg(long, env = "FLEETWATCH_SUBJECT")]
    pub subject: Option<String>,
}

/// Runs it.
pub fn run(g: &Global, a: ProduceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
    let config = g.config()?;
    if let Some(r) = g.remote(&config) {
        return crate::cmd::runtime(false)?.block_on(r.produce(
            &a.topic,
            a.partition,
            a.key_separator.as_deref(),
            a.batch,
            a.value_format,
            a.schema.as_deref(),
            a.subject.as_deref(),
        ));
    }
    crate::cmd::with_log(&config, |log| async move {
        let encoder = cli::ValueEncoder::new(
            a.value_format,
            log.clone(),
            &a.topic,
            a.schema.as_deref(),
            a.subject.as_deref(),
        )
        .await?;
        cli::produce(
            &*log,
            &a.topic,
            a.partition,
            a.key_separator.as_deref(),
            a.batch,
            &encoder,
        )
        .await
    })
}
