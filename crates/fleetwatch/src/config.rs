//! The one TOML configuration file. Every key has a default (`fleetwatch config defaults`
//! prints them all); unknown keys are errors, except in `[kafka.client]`, which is passed to
//! librdkafka as it is.

use anyhow::Context;
use fleetwatch_kafka::KafkaConfig;
use fleetwatch_log::EmbeddedConfig;
use fleetwatch_schema::SchemaRegistryConfig;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which `Log` implementation `serve` and the CLI use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The embedded log in `[embedded] data_dir` (no other process needed).
    #[default]
    Embedded,
    /// A Kafka-protocol cluster at `[kafka] bootstrap_servers`.
    Kafka,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `embedded` or `kafka`.
    pub backend: Backend,
}

/// `[http]`: the REST Proxy–compatible HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address; port 0 picks a free port (see `serve --ready-file`).
    pub listen: String,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: usize,
    /// A consumer instance unused for this long is removed (REST Proxy's
    /// `consumer.instance.timeout.ms`).
    pub consumer_instance_timeout_ms: u64,
    /// Session timeout of the group members behind consumer instances.
    pub consumer_session_timeout_ms: u64,
    /// Partitions of topics created implicitly by a produce request to a missing topic;
    /// 0 disables implicit creation (the request then gets 40401).
    pub auto_create_partitions: i32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8082".into(),
            max_request_bytes: 16 * 1024 * 1024,
            consumer_instance_timeout_ms: 300_000,
            consumer_session_timeout_ms: 30_000,
            auto_create_partitions: 0,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[log]`
    pub log: LogSection,
    /// `[embedded]`
    pub embedded: EmbeddedConfig,
    /// `[kafka]` (and `[kafka.client]`)
    pub kafka: KafkaConfig,
    /// `[http]`
    pub http: HttpConfig,
    /// `[schema_registry]`
    pub schema_registry: SchemaRegistryConfig,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone do not.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.embedded.validate()?;
        if self.log.backend == Backend::Kafka && self.kafka.bootstrap_servers.trim().is_empty() {
            anyhow::bail!("kafka.bootstrap_servers must be set when log.backend = \"kafka\"");
        }
        if self.http.max_request_bytes < 1024 {
            anyhow::bail!("http.max_request_bytes must be at least 1024");
        }
        Ok(())
    }

    /// Every key with its default value, as TOML.
    pub fn defaults_toml() -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(&Config::default())?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_round_trip_and_unknown_keys_are_errors() {
        let text = Config::defaults_toml().unwrap();
        assert!(text.contains("listen = \"0.0.0.0:8082\""), "{text}");
        assert_eq!(Config::parse(&text).unwrap(), Config::default());
        let err = Config::parse("[http]\nlisten = \"x\"\nnope = 1\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `nope`"),
            "{err:#}"
        );
        let cfg = Config::parse(
            "[log]\nbackend = \"kafka\"\n[kafka]\nbootstrap_servers = \"h:1\"\n[kafka.client]\n\"security.protocol\" = \"plaintext\"\n",
        )
        .unwrap();
        assert_eq!(cfg.log.backend, Backend::Kafka);
        assert_eq!(cfg.kafka.client["security.protocol"], "plaintext");
    }
}
