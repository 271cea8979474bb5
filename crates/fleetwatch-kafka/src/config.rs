//! `[kafka]` configuration and the librdkafka client configurations built from it — one
//! function per kind of client, so what each client is set to is written once and tested
//! without a broker.

use crate::backend::KafkaLog;
use fleetwatch_core::{JoinOptions, LogError, LogResult, OffsetSpec};
use rdkafka::config::ClientConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[kafka]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// librdkafka properties passed through as they are (`[kafka.client]`).
    pub client: BTreeMap<String, String>,
    /// Replication factor of topics fleetwatch creates (`-1`: the broker's default).
    pub replication_factor: i32,
    /// Timeout of metadata, admin and offset requests.
    pub request_timeout_ms: u64,
    /// Largest record accepted by `append` (checked before sending).
    pub max_message_bytes: usize,
    /// How long a read's fetch may wait at the broker for data.
    pub fetch_wait_max_ms: u64,
    /// At most this many per-partition readers are kept (> 0). Each is a librdkafka consumer
    /// with its own threads (about 2 + one per broker it talks to) and fetch buffers; past
    /// the cap the least recently read partition's reader is closed, and reading that
    /// partition again costs one new consumer and a seek.
    pub max_cached_readers: usize,
    /// At most this many clients for committed offsets are kept, one per group id (> 0;
    /// librdkafka asks for a group's offsets only as a member of that group id). Each costs
    /// the threads of one librdkafka client (about 2 + one per broker). Set it to at least the
    /// number of groups `/metrics` describes, or scrapes create and close clients.
    pub max_offset_clients: usize,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            client: BTreeMap::new(),
            replication_factor: -1,
            request_timeout_ms: 10_000,
            max_message_bytes: 1024 * 1024,
            fetch_wait_max_ms: 100,
            max_cached_readers: 64,
            max_offset_clients: 4,
        }
    }
}

/// The group id of group-less readers (librdkafka wants one for `assign`; readers never
/// join it nor commit).
pub(crate) const READER_GROUP: &str = "__fleetwatch-readers";

impl KafkaConfig {
    /// Settings pointing at `bootstrap_servers`, defaults elsewhere.
    pub fn at(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            ..Default::default()
        }
    }

    /// Checks values that types alone do not (`build` calls it).
    pub fn validate(&self) -> LogResult<()> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(LogError::invalid(
                "kafka.bootstrap_servers",
                "must name at least one host:port",
            ));
        }
        if self.max_cached_readers == 0 {
            return Err(LogError::invalid(
                "kafka.max_cached_readers",
                "must be at least 1",
            ));
        }
        if self.max_offset_clients == 0 {
            return Err(LogError::invalid(
                "kafka.max_offset_clients",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Validates, then creates the clients (the cluster is contacted on first use).
    pub fn build(&self) -> LogResult<KafkaLog> {
        KafkaLog::new(self.clone())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// `bootstrap.servers` and the `[kafka.client]` properties; each client's own settings
    /// below are set after them and win.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }

    /// The one producer: every append, `acks=all`, Kafka's murmur2 when it partitions, and
    /// room for a full record plus its batch overhead.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut c = self.client_config();
        c.set("partitioner", "murmur2_random")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set(
                "message.max.bytes",
                (self.max_message_bytes + 64 * 1024).to_string(),
            );
        c
    }

    /// The metadata client (topics, watermarks, lookups by time, group lists).
    pub(crate) fn metadata_config(&self) -> ClientConfig {
        let mut c = self.client_config();
        c.set("group.id", READER_GROUP)
            .set("enable.auto.commit", "false");
        c
    }

    /// A group-less reader of one partition (`assign`, never `subscribe`). A position that
    /// falls out of the log's range (retention under a reader) is an error, never a silent
    /// jump to the end.
    pub(crate) fn reader_config(&self) -> ClientConfig {
        let mut c = self.metadata_config();
        c.set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string());
        c
    }

    /// A client asking for `group`'s committed offsets (it never joins the group).
    pub(crate) fn offsets_config(&self, group: &str) -> ClientConfig {
        let mut c = self.client_config();
        c.set("group.id", group).set("enable.auto.commit", "false");
        c
    }

    /// A member of a consumer group: manual commits, a member that stops polling for a
    /// session timeout leaves.
    pub(crate) fn member_config(&self, options: &JoinOptions) -> ClientConfig {
        let session = options.session_timeout.as_millis().max(1000);
        let reset = match options.reset {
            OffsetSpec::Latest => "latest",
            _ => "earliest",
        };
        let mut c = self.client_config();
        c.set("group.id", &options.group)
            .set("client.id", &options.client_id)
            .set("session.timeout.ms", session.to_string())
            // a member that stops polling leaves, as the contract says
            .set("max.poll.interval.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 4).max(100).to_string())
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", reset)
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_caps_are_not() {
        KafkaConfig::default().validate().unwrap();
        for bad in [
            KafkaConfig {
                max_cached_readers: 0,
                ..KafkaConfig::default()
            },
            KafkaConfig {
                max_offset_clients: 0,
                ..KafkaConfig::default()
            },
            KafkaConfig::at(" "),
        ] {
            let err = bad.validate().unwrap_err();
            assert!(matches!(err, LogError::Invalid { .. }), "{err:?}");
            assert!(bad.build().is_err());
        }
        let err = KafkaConfig {
            max_cached_readers: 0,
            ..KafkaConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("max_cached_readers"), "{err}");
    }

    #[test]
    fn keys_have_defaults_and_unknown_keys_are_refused() {
        let c: KafkaConfig =
            serde_json::from_str(r#"{"bootstrap_servers":"h:1","max_cached_readers":2}"#).unwrap();
        assert_eq!(c.max_cached_readers, 2);
        assert_eq!(c.max_offset_clients, 4);
        assert_eq!(c.fetch_wait_max_ms, 100);
        assert!(serde_json::from_str::<KafkaConfig>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn client_properties_pass_through_and_the_backend_settings_win() {
        let mut c = KafkaConfig::at("h:1");
        c.client
            .insert("security.protocol".into(), "sasl_ssl".into());
        c.client.insert("acks".into(), "1".into());
        let p = c.producer_config();
        assert_eq!(p.get("bootstrap.servers"), Some("h:1"));
        assert_eq!(p.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("partitioner"), Some("murmur2_random"));
        assert_eq!(p.get("message.max.bytes"), Some("1114112"));
        let r = c.reader_config();
        assert_eq!(r.get("group.id"), Some(READER_GROUP));
        assert_eq!(r.get("enable.auto.commit"), Some("false"));
        assert_eq!(r.get("fetch.wait.max.ms"), Some("100"));
        assert_eq!(r.get("auto.offset.reset"), Some("error"));
        assert_eq!(c.offsets_config("g").get("group.id"), Some("g"));
        let mut j = JoinOptions::new("g", vec!["t".into()]);
        j.session_timeout = Duration::from_millis(6000);
        j.reset = OffsetSpec::Latest;
        let m = c.member_config(&j);
        assert_eq!(m.get("session.timeout.ms"), Some("6000"));
        assert_eq!(m.get("max.poll.interval.ms"), Some("6000"));
        assert_eq!(m.get("heartbeat.interval.ms"), Some("1500"));
        assert_eq!(m.get("auto.offset.reset"), Some("latest"));
        assert_eq!(m.get("security.protocol"), Some("sasl_ssl"));
    }
}
