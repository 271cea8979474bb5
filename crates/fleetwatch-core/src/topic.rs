//! Topic names, topic configuration and descriptions.

use crate::error::{LogError, LogResult};
use serde::{Deserialize, Serialize};

/// The internal topic holding committed consumer-group offsets (infinite retention).
pub const INTERNAL_OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The internal topic holding Schema Registry state (infinite retention).
pub const INTERNAL_SCHEMAS_TOPIC: &str = "_schemas";

/// The prefix of topics that fleetwatch components keep their own state in (model registry,
/// SQL catalog, connector offsets…). Such topics are internal.
pub const INTERNAL_TOPIC_PREFIX: &str = "_fw_";

/// Whether a topic is internal: `__*` (Kafka's own, e.g. `__consumer_offsets`), `_schemas`
/// and `_fw_*`. Internal topics hold state that components replay at start; a client API
/// must not delete them, produce into them or change their configuration — it refuses with
/// [`LogError::InternalTopic`] (see [`check_client_write`]). The one place that decides.
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__")
        || name == INTERNAL_SCHEMAS_TOPIC
        || name.starts_with(INTERNAL_TOPIC_PREFIX)
}

/// Refuses a client's `operation` ("delete", "produce", "config change") on an internal
/// topic; any other topic passes.
pub fn check_client_write(topic: &str, operation: &str) -> LogResult<()> {
    if is_internal_topic(topic) {
        return Err(LogError::InternalTopic {
            topic: topic.to_string(),
            operation: operation.to_string(),
        });
    }
    Ok(())
}

/// Most partitions a topic may have (each is a directory of files on the embedded log).
pub const MAX_PARTITIONS: i32 = 10_000;

/// Checks Kafka's topic-name rule: 1 to 249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> LogResult<()> {
    let bad = |reason: &str| {
        Err(LogError::InvalidTopicName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 249 {
        return bad("it is longer than 249 characters");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!(
            "character {c:?} is not allowed (only ASCII letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

/// Checks a consumer-group id: 1 to 255 printable characters without `/`.
pub fn validate_group_id(group: &str) -> LogResult<()> {
    if group.is_empty() || group.len() > 255 || group.chars().any(|c| c.is_control()) {
        return Err(LogError::invalid(
            "group id",
            format!("{group:?} must be 1 to 255 printable characters"),
        ));
    }
    Ok(())
}

/// What happens to old data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CleanupPolicy {
    /// Delete whole segments past the retention limits.
    #[default]
    Delete,
    /// Keep the latest record per key. The setting is stored and reported; the embedded log
    /// does not compact yet, so it behaves as infinite retention for such topics.
    Compact,
}

impl CleanupPolicy {
    /// Kafka's spelling (`delete` / `compact`).
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

/// Per-topic configuration. Every field has a default; names follow Kafka's topic configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicConfig {
    /// Number of partitions (≥ 1).
    pub partitions: i32,
    /// Delete data older than this many milliseconds; `None` keeps it forever (`retention.ms`).
    pub retention_ms: Option<i64>,
    /// Delete the oldest segments once a partition exceeds this many bytes; `None` = no limit
    /// (`retention.bytes`).
    pub retention_bytes: Option<u64>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// Largest record accepted, in bytes (`max.message.bytes`); default 1 MiB.
    pub max_message_bytes: usize,
    /// Roll a new segment file past this size (`segment.bytes`); default 128 MiB.
    pub segment_bytes: u64,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            partitions: 1,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            cleanup_policy: CleanupPolicy::Delete,
            max_message_bytes: 1024 * 1024,
            segment_bytes: 128 * 1024 * 1024,
        }
    }
}

impl TopicConfig {
    /// A default config with `partitions` partitions.
    pub fn with_partitions(partitions: i32) -> Self {
        TopicConfig {
            partitions,
            ..Default::default()
        }
    }

    /// The config of internal topics: infinite retention, delete policy (nothing relies on
    /// compaction for correctness).
    pub fn internal(partitions: i32) -> Self {
        TopicConfig {
            partitions,
            retention_ms: None,
            retention_bytes: None,
            ..Default::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> LogResult<()> {
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err(LogError::invalid(
                "partition count",
                format!("{} is not in 1..=10000", self.partitions),
            ));
        }
        if let Some(ms) = self.retention_ms
            && ms <= 0
        {
            return Err(LogError::invalid(
                "retention_ms",
                format!("{ms} must be positive (omit it for infinite retention)"),
            ));
        }
        if self.max_message_bytes == 0 || self.max_message_bytes > 64 * 1024 * 1024 {
            return Err(LogError::invalid(
                "max_message_bytes",
                format!("{} is not in 1..=67108864", self.max_message_bytes),
            ));
        }
        if !(4096..=1 << 30).contains(&self.segment_bytes) {
            return Err(LogError::invalid(
                "segment_bytes",
                format!("{} is not in 4096..=1073741824", self.segment_bytes),
            ));
        }
        Ok(())
    }

    /// The config as Kafka topic properties (`retention.ms`, `cleanup.policy`, …).
    pub fn to_properties(&self) -> Vec<(String, String)> {
        vec![
            (
                "retention.ms".into(),
                self.retention_ms.unwrap_or(-1).to_string(),
            ),
            (
                "retention.bytes".into(),
                self.retention_bytes
                    .map_or_else(|| "-1".to_string(), |b| b.to_string()),
            ),
            (
                "cleanup.policy".into(),
                self.cleanup_policy.as_str().to_string(),
            ),
            (
                "max.message.bytes".into(),
                self.max_message_bytes.to_string(),
            ),
            ("segment.bytes".into(), self.segment_bytes.to_string()),
        ]
    }

    /// Applies Kafka topic properties on top of this config; unknown names are an error.
    pub fn apply_property(&mut self, name: &str, value: &str) -> LogResult<()> {
        let num = |v: &str| -> LogResult<i64> {
            v.trim()
                .parse::<i64>()
                .map_err(|_| LogError::invalid(name, format!("{v:?} is not a whole number")))
        };
        match name {
            "retention.ms" => {
                let n = num(value)?;
                self.retention_ms = (n >= 0).then_some(n);
            }
            "retention.bytes" => {
                let n = num(value)?;
                self.retention_bytes = (n >= 0).then_some(n as u64);
            }
            "cleanup.policy" => {
                self.cleanup_policy = match value {
                    "delete" => CleanupPolicy::Delete,
                    "compact" => CleanupPolicy::Compact,
                    other => {
                        return Err(LogError::invalid(
                            name,
                            format!("{other:?} is not delete or compact"),
                        ));
                    }
                }
            }
            "max.message.bytes" => self.max_message_bytes = num(value)?.max(0) as usize,
            "segment.bytes" => self.segment_bytes = num(value)?.max(0) as u64,
            other => {
                return Err(LogError::invalid(
                    "topic config",
                    format!("unknown setting {other:?}"),
                ));
            }
        }
        self.validate()
    }
}

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// Makes one.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// The two ends of a partition: the first offset still held and the next to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Watermarks {
    /// First offset still in the log (after retention).
    pub log_start: i64,
    /// Next offset to be written (the high watermark).
    pub high: i64,
}

impl Watermarks {
    /// Records held between the two ends.
    pub fn len(&self) -> i64 {
        (self.high - self.log_start).max(0)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `offset` may be read or positioned at (`log_start..=high`).
    pub fn contains(&self, offset: i64) -> bool {
        (self.log_start..=self.high).contains(&offset)
    }
}

/// The state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// First offset still in the log (after retention).
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub high_watermark: i64,
}

/// What `describe_topic` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Its configuration (as the backend reports it).
    pub config: TopicConfig,
    /// One entry per partition, in partition order.
    pub partitions: Vec<PartitionInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rule() {
        for ok in ["a", "telemetry.raw", "A-b_c.9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            let err = validate_topic_name(bad).expect_err(bad);
            assert!(err.to_string().contains("invalid topic name"), "{err}");
        }
    }

    #[test]
    fn internal_topics_are_decided_in_one_place() {
        for t in [
            "__consumer_offsets",
            "__anything",
            "_schemas",
            "_fw_models",
            "_fw_sql",
        ] {
            assert!(is_internal_topic(t), "{t}");
            let err = check_client_write(t, "delete").unwrap_err();
            assert!(err.to_string().contains("internal"), "{err}");
        }
        for t in ["telemetry.raw", "_schemas2", "schemas", "_private", "fw_x"] {
            assert!(!is_internal_topic(t), "{t}");
            check_client_write(t, "produce").unwrap();
        }
    }

    #[test]
    fn watermarks() {
        let w = Watermarks {
            log_start: 5,
            high: 9,
        };
        assert_eq!(w.len(), 4);
        assert!(w.contains(5) && w.contains(9) && !w.contains(10) && !w.contains(4));
        assert!(Watermarks::default().is_empty());
    }

    #[test]
    fn properties_round_trip() {
        let mut c = TopicConfig::with_partitions(3);
        c.apply_property("retention.ms", "-1").unwrap();
        c.apply_property("cleanup.policy", "compact").unwrap();
        c.apply_property("retention.bytes", "1000000").unwrap();
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.cleanup_policy, CleanupPolicy::Compact);
        let mut d = TopicConfig::with_partitions(3);
        for (k, v) in c.to_properties() {
            d.apply_property(&k, &v).unwrap();
        }
        assert_eq!(c, d);
        assert!(c.apply_property("retention.ms", "soon").is_err());
        assert!(c.apply_property("no.such", "1").is_err());
    }
}
