//! The one TOML configuration file. Every key has a default (`fleetwatch config defaults`
//! prints them all); unknown keys are errors, except in `[kafka.client]`, which is passed to
//! librdkafka as it is. Any key can be overridden on the command line with
//! `--set section.key=value` (repeatable; the value is TOML, or a bare string).

use anyhow::{Context, bail};
use fleetwatch_ingest::MqttConfig;
#[cfg(feature = "kafka")]
use fleetwatch_kafka::KafkaConfig;
use fleetwatch_log::EmbeddedConfig;
use fleetwatch_rest::RestConfig;
use fleetwatch_schema::SchemaRegistryConfig;
use fleetwatch_server::ConnectionLimits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// `[kafka]` in a build without the `kafka` feature: accepted (so one config file serves
/// both builds) but unused; `log.backend = "kafka"` is refused.
#[cfg(not(feature = "kafka"))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct KafkaConfig {
    /// As in the Kafka build.
    pub bootstrap_servers: String,
    /// As in the Kafka build.
    pub client: BTreeMap<String, String>,
    /// Every other key of the Kafka build.
    #[serde(flatten)]
    pub other: toml::Table,
}

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

/// `[metrics]`: what `/metrics` (on `http.listen`) computes in the background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// How often consumer-group lag is recomputed (a scrape reads the cached values).
    pub lag_refresh_ms: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            lag_refresh_ms: 5000,
        }
    }
}

/// The listeners' names, as `[connections.<name>]` and the ready file know them.
pub const LISTENERS: &[&str] = &["http", "schema_registry", "mqtt", "mqtt_tls", "ksql"];

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[log]`
    pub log: LogSection,
    /// `[embedded]`
    pub embedded: EmbeddedConfig,
    /// `[kafka]` (and `[kafka.client]`)
    pub kafka: KafkaConfig,
    /// `[http]`: the REST Proxy API, `/health` and `/metrics`.
    pub http: RestConfig,
    /// `[schema_registry]`
    pub schema_registry: SchemaRegistryConfig,
    /// `[connections.default]` applies to every listener; `[connections.<listener>]`
    /// (`http`, `schema_registry`) replaces it for one.
    pub connections: BTreeMap<String, ConnectionLimits>,
    /// `[metrics]`
    pub metrics: MetricsSection,
    /// `[mqtt]`: the MQTT proxy.
    pub mqtt: MqttConfig,
    /// `[ksql]`: streaming SQL and its ksqlDB-compatible REST API.
    pub ksql: fleetwatch_sql::config::KsqlConfig,
    /// `[pii]`: personal-data functions.
    pub pii: PiiSection,
}

/// `[pii]`
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiSection {
    /// Named keys of `HASH_PII` (lines `name = base64-key`, at least 16 bytes each); unset:
    /// `HASH_PII` fails naming this setting.
    pub hash_key_file: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log: LogSection::default(),
            embedded: EmbeddedConfig::default(),
            kafka: KafkaConfig::default(),
            http: RestConfig::default(),
            schema_registry: SchemaRegistryConfig::default(),
            connections: BTreeMap::from([("default".to_string(), ConnectionLimits::default())]),
            metrics: MetricsSection::default(),
            mqtt: MqttConfig::default(),
            ksql: fleetwatch_sql::config::KsqlConfig::default(),
            pii: PiiSection::default(),
        }
    }
}

/// Tables whose keys are free-form (not checked against the defaults by `--set`).
const FREE_FORM: &[&str] = &["kafka.client", "connections"];

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

    /// The limits of one listener.
    pub fn limits(&self, listener: &str) -> ConnectionLimits {
        self.connections
            .get(listener)
            .or_else(|| self.connections.get("default"))
            .copied()
            .unwrap_or_default()
    }

    /// Checks values that types alone do not; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.embedded.validate()?;
        #[cfg(not(feature = "kafka"))]
        if self.log.backend == Backend::Kafka {
            bail!(
                "log.backend = \"kafka\": this fleetwatch was built without the kafka feature (cargo build --features kafka)"
            );
        }
        if self.log.backend == Backend::Kafka && self.kafka.bootstrap_servers.trim().is_empty() {
            bail!("kafka.bootstrap_servers must be set when log.backend = \"kafka\"");
        }
        self.http.validate().map_err(anyhow::Error::msg)?;
        // Two listeners on one address: say so, rather than "in use" when binding the second.
        self.mqtt.validate().map_err(anyhow::Error::msg)?;
        let mut listens = vec![
            ("http.listen", &self.http.listen),
            ("schema_registry.listen", &self.schema_registry.listen),
        ];
        self.ksql.validate().map_err(anyhow::Error::msg)?;
        if self.ksql.enabled {
            listens.push(("ksql.listen", &self.ksql.listen));
        }
        if self.mqtt.enabled {
            listens.push(("mqtt.listen", &self.mqtt.listen));
            if self.mqtt.tls_files().is_some() {
                listens.push(("mqtt.tls_listen", &self.mqtt.tls_listen));
            }
        }
        for (i, (ka, a)) in listens.iter().enumerate() {
            for (kb, b) in &listens[i + 1..] {
                let port0 = a.rsplit_once(':').is_some_and(|(_, p)| p == "0");
                if a == b && !port0 {
                    bail!("{ka} and {kb} are both {a:?}: each listener needs its own address");
                }
            }
        }
        for (name, limits) in &self.connections {
            if name != "default" && !LISTENERS.contains(&name.as_str()) {
                bail!(
                    "[connections.{name}]: no listener is called {name:?} (listeners: default, {})",
                    LISTENERS.join(", ")
                );
            }
            limits
                .validate(&format!("connections.{name}"))
                .map_err(anyhow::Error::msg)?;
        }
        if self.metrics.lag_refresh_ms < 100 {
            bail!(
                "metrics.lag_refresh_ms = {}: must be at least 100",
                self.metrics.lag_refresh_ms
            );
        }
        Ok(())
    }

    /// Every key with its default value, as TOML.
    pub fn defaults_toml() -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(&Config::default())?)
    }

    /// Applies `--set key=value` overrides in order. The key is a dotted path of the config
    /// file (`schema_registry.listen`); the value is read as TOML (`8`, `true`, `"x"`,
    /// `[1, 2]`) or else as a bare string. An unknown key fails naming the valid keys of its
    /// table; a value of the wrong type fails naming the key. The result is validated.
    pub fn apply_overrides(self, sets: &[String]) -> anyhow::Result<Config> {
        if sets.is_empty() {
            self.validate()?;
            return Ok(self);
        }
        let mut root = toml::Value::try_from(&self)?;
        let defaults = toml::Value::try_from(Config::default())?;
        for set in sets {
            let (key, raw) = set.split_once('=').with_context(|| {
                format!("--set {set:?}: expected KEY=VALUE, e.g. http.listen=127.0.0.1:0")
            })?;
            let key = key.trim();
            let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
                Ok(mut t) => t
                    .remove("v")
                    .unwrap_or(toml::Value::String(raw.to_string())),
                Err(_) => toml::Value::String(raw.to_string()),
            };
            let mut tried = root.clone();
            let typed = !value.is_str();
            set_path(&mut tried, &defaults, key, value)?;
            let parsed: Result<Config, _> = tried.try_into();
            let c = match parsed {
                Ok(c) => c,
                // `5` where a string is expected (e.g. `[kafka.client]` values): the text itself.
                Err(_) if typed => {
                    let mut as_text = root.clone();
                    set_path(
                        &mut as_text,
                        &defaults,
                        key,
                        toml::Value::String(raw.to_string()),
                    )?;
                    as_text.try_into().with_context(|| {
                        format!("--set {key}: {raw:?} is not a valid value for it")
                    })?
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("--set {key}: {raw:?} is not a valid value for it")));
                }
            };
            root = toml::Value::try_from(&c)?;
        }
        let c: Config = root.try_into()?;
        c.validate()?;
        Ok(c)
    }
}

/// Splits a dotted key; a segment in double quotes may contain dots (`kafka.client."linger.ms"`).
fn split_key(key: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in key.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

fn set_path(
    root: &mut toml::Value,
    defaults: &toml::Value,
    key: &str,
    value: toml::Value,
) -> anyhow::Result<()> {
    let parts = split_key(key);
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set {key}: empty key segment");
    }
    let mut cur = root;
    let mut def = Some(defaults);
    for (i, part) in parts.iter().enumerate() {
        let path = parts[..i].join(".");
        let free = FREE_FORM
            .iter()
            .any(|f| path == *f || path.starts_with(&format!("{f}.")));
        let known = def
            .and_then(|d| d.as_table())
            .map(|t| t.contains_key(*part));
        if !free && known == Some(false) {
            let table = def.and_then(|d| d.as_table());
            let keys: Vec<&str> = table
                .map(|t| t.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let at = if path.is_empty() {
                "the top level".to_string()
            } else {
                format!("[{path}]")
            };
            bail!(
                "--set {key}: unknown config key {part:?}; keys in {at}: {}",
                keys.join(", ")
            );
        }
        def = def.and_then(|d| d.get(*part));
        let Some(table) = cur.as_table_mut() else {
            bail!("--set {key}: {path} is not a table");
        };
        if i + 1 == parts.len() {
            table.insert(part.to_string(), value);
            return Ok(());
        }
        cur = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "kafka")]
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

    #[test]
    #[cfg(feature = "kafka")]
    fn set_overrides_any_key_typed_by_the_schema() {
        let c = Config::default()
            .apply_overrides(&[
                "schema_registry.listen=127.0.0.1:0".into(),
                "http.max_request_bytes=4096".into(),
                "log.backend=kafka".into(),
                "kafka.bootstrap_servers=127.0.0.1:9".into(),
                "kafka.client.\"linger.ms\"=5".into(),
                "connections.http.max_connections=7".into(),
            ])
            .unwrap();
        assert_eq!(c.schema_registry.listen, "127.0.0.1:0");
        assert_eq!(c.http.max_request_bytes, 4096);
        assert_eq!(c.log.backend, Backend::Kafka);
        assert_eq!(c.limits("http").max_connections, 7);
        assert_eq!(c.limits("schema_registry"), ConnectionLimits::default());
    }

    #[test]
    fn set_errors_name_the_key_and_its_neighbours() {
        let err = Config::default()
            .apply_overrides(&["http.lisen=127.0.0.1:0".into()])
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("unknown config key \"lisen\""), "{msg}");
        assert!(msg.contains("listen, "), "{msg}");
        let err = Config::default()
            .apply_overrides(&["http.max_request_bytes=lots".into()])
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("http.max_request_bytes"),
            "{err:#}"
        );
        let err = Config::default()
            .apply_overrides(&["connections.kserve.max_connections=7".into()])
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("no listener is called \"kserve\""),
            "{err:#}"
        );
    }

    #[test]
    fn useless_values_are_refused_naming_the_key() {
        for (set, want) in [
            (
                "http.consumer_session_timeout_ms=0",
                "http.consumer_session_timeout_ms",
            ),
            (
                "connections.default.max_connections=0",
                "connections.default.max_connections",
            ),
            ("metrics.lag_refresh_ms=0", "metrics.lag_refresh_ms"),
            (
                "http.auto_create_partitions=100000",
                "http.auto_create_partitions",
            ),
        ] {
            let err = Config::default()
                .apply_overrides(&[set.into()])
                .unwrap_err();
            assert!(format!("{err:#}").contains(want), "{set}: {err:#}");
        }
    }
}
