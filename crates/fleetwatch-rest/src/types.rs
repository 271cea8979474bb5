//! Request and response bodies of the REST API, shared by the server, the CLI and tests.
//! Shapes follow Confluent REST Proxy v2 (produce, consumers) and v3 (topic admin).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// REST Proxy v2 content type of JSON-embedded records.
pub const CT_JSON_V2: &str = "application/vnd.kafka.json.v2+json";
/// REST Proxy v2 content type of base64 binary records.
pub const CT_BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";
/// REST Proxy v2 content type of responses.
pub const CT_V2: &str = "application/vnd.kafka.v2+json";

/// One header of a produced record: value is base64 (or null), as REST Proxy v3 has it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeaderJson {
    /// Header name.
    pub name: String,
    /// Base64 value, or null.
    pub value: Option<String>,
}

/// One record of a produce request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ProduceRecord {
    /// Key: any JSON (json format) or a base64 string (binary format).
    #[serde(default)]
    pub key: Option<Value>,
    /// Value: as the key.
    #[serde(default)]
    pub value: Option<Value>,
    /// Explicit partition; otherwise by key hash (murmur2) or round-robin.
    #[serde(default)]
    pub partition: Option<i32>,
    /// Record timestamp (ms); default now.
    #[serde(default)]
    pub timestamp: Option<i64>,
    /// Headers (fleetwatch extension).
    #[serde(default)]
    pub headers: Vec<HeaderJson>,
}

/// `POST /topics/{topic}` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProduceRequest {
    /// Records to produce, in order.
    pub records: Vec<ProduceRecord>,
    /// Accepted and ignored (schema formats are not served by this endpoint yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_schema_id: Option<i64>,
    /// As `key_schema_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_schema_id: Option<i64>,
}

/// Where one produced record landed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProduceOffset {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Always null on success (REST Proxy shape).
    pub error_code: Option<u32>,
    /// Always null on success.
    pub error: Option<String>,
}

/// `POST /topics/{topic}` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProduceResponse {
    /// Always null.
    pub key_schema_id: Option<i64>,
    /// Always null.
    pub value_schema_id: Option<i64>,
    /// One per record, in request order.
    pub offsets: Vec<ProduceOffset>,
}

/// `POST /consumers/{group}` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CreateConsumer {
    /// Instance name (default: generated).
    #[serde(default)]
    pub name: Option<String>,
    /// `json` or `binary` (default `binary`).
    #[serde(default)]
    pub format: Option<String>,
    /// `earliest` or `latest` (default `latest`, as Kafka).
    #[serde(default, rename = "auto.offset.reset")]
    pub auto_offset_reset: Option<String>,
    /// `"true"` commits after each records fetch (default `"false"`).
    #[serde(default, rename = "auto.commit.enable")]
    pub auto_commit_enable: Option<String>,
}

/// `POST /consumers/{group}` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreatedConsumer {
    /// Instance id.
    pub instance_id: String,
    /// URL of the instance.
    pub base_uri: String,
}

/// `POST …/subscription` body and `GET …/subscription` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Topics.
    pub topics: Vec<String>,
}

/// A record returned by `GET …/records`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConsumedJson {
    /// Topic.
    pub topic: String,
    /// Key: embedded JSON (json format) or base64 (binary format).
    pub key: Option<Value>,
    /// Value: as the key.
    pub value: Option<Value>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in ms (fleetwatch extension).
    pub timestamp: i64,
}

/// A topic-partition-offset triple (commits, committed offsets).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicPartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset (the next one to consume, as Kafka commits).
    pub offset: i64,
    /// Free-form metadata (always empty).
    #[serde(default)]
    pub metadata: String,
}

/// `POST …/offsets` body (empty commits everything fetched).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct OffsetsBody {
    /// Offsets to commit.
    #[serde(default)]
    pub offsets: Vec<TopicPartitionOffset>,
}

/// A topic and partition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicPartitionJson {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// `GET …/offsets` body and `GET …/assignments` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct PartitionsBody {
    /// Partitions.
    pub partitions: Vec<TopicPartitionJson>,
}

/// `GET /topics/{t}/partitions/{p}/offsets` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// First offset held.
    pub beginning_offset: i64,
    /// High watermark.
    pub end_offset: i64,
}

/// One config entry (v3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka name, e.g. `retention.ms`.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `POST /v3/clusters/{c}/topics` body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreateTopic {
    /// Topic name.
    pub topic_name: String,
    /// Partitions (default 1).
    #[serde(default)]
    pub partitions_count: Option<i32>,
    /// Replication factor (accepted; the embedded log has one copy).
    #[serde(default)]
    pub replication_factor: Option<i32>,
    /// Topic configs.
    #[serde(default)]
    pub configs: Vec<ConfigEntry>,
}

/// A topic as v3 describes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicData {
    /// `KafkaTopic`.
    pub kind: String,
    /// Cluster id.
    pub cluster_id: String,
    /// Name.
    pub topic_name: String,
    /// Partitions.
    pub partitions_count: i32,
    /// Whether fleetwatch uses it internally.
    pub is_internal: bool,
    /// Configs.
    pub configs: Vec<ConfigEntry>,
    /// Offsets per partition (fleetwatch extension).
    pub partitions: Vec<PartitionData>,
}

/// One partition in [`TopicData`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartitionData {
    /// Partition.
    pub partition_id: i32,
    /// First offset held.
    pub beginning_offset: i64,
    /// High watermark.
    pub end_offset: i64,
}

/// A list in v3 shape: `{"kind": "…List", "data": […]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ListOf<T> {
    /// Kind.
    pub kind: String,
    /// Items.
    pub data: Vec<T>,
}

/// One partition of a consumer group with its lag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupLag {
    /// Topic.
    pub topic_name: String,
    /// Partition.
    pub partition_id: i32,
    /// Committed offset.
    pub current_offset: i64,
    /// High watermark.
    pub log_end_offset: i64,
    /// Difference.
    pub lag: i64,
}

/// A consumer group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupData {
    /// Group id.
    pub consumer_group_id: String,
    /// Generation (0 where the backend does not report it).
    pub generation: i32,
    /// Members with their partitions.
    pub consumers: Vec<GroupMember>,
    /// Committed offsets and lag.
    pub lags: Vec<GroupLag>,
}

/// A member of a group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub consumer_id: String,
    /// Client id.
    pub client_id: String,
    /// Owned partitions.
    pub assignments: Vec<TopicPartitionJson>,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Log backend.
    pub backend: String,
    /// What recovery cut at start (embedded log).
    pub recovery_cuts: Vec<String>,
}
