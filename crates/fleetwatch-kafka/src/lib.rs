//! # fleetwatch-kafka — the `Log` trait over a Kafka-protocol cluster
//!
//! The same contracts as the embedded log (`fleetwatch_core::Log`), on Apache Kafka,
//! Redpanda, Confluent Cloud or tansu, through `rdkafka` (librdkafka). Chosen by
//! `[log] backend = "kafka"`; `[kafka] bootstrap_servers` and the free-form `[kafka.client]`
//! table (librdkafka properties, e.g. `security.protocol`) configure it.
//!
//! It must not know the embedded log nor anything above the `Log` trait.
//!
//! ## Modules
//!
//! | module | owns |
//! |---|---|
//! | `config` | [`KafkaConfig`] (validated by `build`) and the librdkafka configuration of each kind of client |
//! | `backend` | [`KafkaLog`]: the clients it holds, blocking calls off the async runtime |
//! | `admin` | topics (`LogAdmin`), cached partition counts |
//! | `data` | append, read, offsets (`LogData`), the bounded per-partition reader cache |
//! | `groups` | group members, commits, committed offsets, describe (`LogGroups`) |
//! | `refine` | the broker-gap refinements, pure (see below) |
//! | `error` | librdkafka errors → `LogError`, one table |
//! | `lru` | the least-recently-used policy of the client caches, pure |
//!
//! ## How the contracts map to Kafka
//!
//! - `append` produces every record of the batch to the given partition with an idempotent-
//!   safe producer (`acks=all`) and returns when all are acknowledged. Sizes are checked
//!   before anything is sent, so a refused batch leaves nothing behind. Keyed partitioning
//!   in the layers above uses Kafka's murmur2; the producer is configured with
//!   `partitioner = murmur2_random` so that librdkafka agrees when it partitions.
//! - `read` keeps one assigned (group-less) consumer per partition, positioned where the
//!   last read ended, so sequential reads stream without re-seeking; a waiting read is a
//!   long poll on it (`fetch.wait.max.ms`, default 100 here). At most `max_cached_readers`
//!   (default 64) are kept, the least recently read closed past the cap.
//! - Consumer groups are Kafka's own (a consumer with `group.id`, manual commits). Committed
//!   offsets are asked through one long-lived client per group id, at most
//!   `max_offset_clients` (default 4). `describe_group` reports generation 0: neither the
//!   protocol's DescribeGroups nor librdkafka's safe API gives the coordinator's generation.
//!
//! ## Threads
//!
//! Every librdkafka client runs its own threads (about 2 + one per broker it talks to): one
//! producer, one admin and one metadata client, up to `max_cached_readers` readers, up to
//! `max_offset_clients` committed-offsets clients, and one consumer per group member.
//!
//! ## Errors
//!
//! librdkafka's errors are classified once (`error::classify`): transport failures,
//! timeouts, leaders and coordinators moving or loading are retriable
//! (`LogError::Backend` / `Timeout`); invalid configuration, unknown topics or partitions,
//! records too large and offsets out of range are their non-retriable variants; a client
//! in a fatal state is `LogError::Internal`.
//!
//! ## Broker gaps handled here
//!
//! Two answers of some brokers (seen on tansu 0.6) are only lower bounds, so the backend
//! refines them by reading, which costs one fetch and changes nothing on a broker that
//! answers exactly:
//! - the high watermark after a multi-record batch may be reported as the batch's base
//!   offset + 1: the backend reads the last batch to find the true end;
//! - ListOffsets by timestamp may answer a batch's base offset (or 0 past the end): the
//!   backend scans forward from the answer to the first record at or after the timestamp.

mod admin;
mod backend;
mod config;
mod data;
mod error;
mod groups;
mod lru;
mod refine;

#[cfg(test)]
mod mock_tests;

pub use backend::KafkaLog;
pub use config::KafkaConfig;
