//! # fleetwatch-core — the model every other crate stands on
//!
//! Owns the types that travel between layers: [`Record`] (key, value, ordered headers,
//! timestamp and its type, as Kafka has them), topic names and configuration
//! ([`TopicConfig`]), Kafka-compatible key partitioning ([`partitioner`]), the error type
//! ([`LogError`]) and the [`Log`] trait — the seam between storage and everything above it.
//!
//! It must not know any storage engine, network protocol, codec or runtime detail beyond
//! `tokio` time types: the embedded log (`fleetwatch-log`) and the Kafka backend
//! (`fleetwatch-kafka`) implement [`Log`]; compute and edge crates only use it.
//!
//! The [`conformance`] module holds the one test-suite for [`Log`], written once and run
//! against every backend by that backend's integration tests.

pub mod conformance;
mod error;
mod log;
pub mod partitioner;
pub mod produce;
mod record;
mod topic;

pub use error::{LogError, LogResult};
pub use log::{
    AppendAck, Assignment, DegradedPartition, GroupConsumer, GroupDescription,
    GroupMemberDescription, GroupOffset, JoinOptions, Log, LogAdmin, LogData, LogGroups, LogHealth,
    OffsetCommit, OffsetSpec, PartitionBatch, ReadBatch, ReadLimits, Subscription,
    TopicSubscription,
};
pub use record::{ConsumedRecord, Header, Record, TimestampType, now_ms};
pub use topic::{
    CleanupPolicy, INTERNAL_OFFSETS_TOPIC, INTERNAL_SCHEMAS_TOPIC, INTERNAL_TOPIC_PREFIX,
    MAX_PARTITIONS, PartitionInfo, TopicConfig, TopicDescription, TopicPartition, Watermarks,
    check_client_write, is_internal_topic, validate_group_id, validate_topic_name,
};
