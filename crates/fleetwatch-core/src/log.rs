//! The `Log` trait: the seam between storage and everything above it.
//!
//! It is split in three small traits — [`LogAdmin`] (topics), [`LogData`] (append, read,
//! offsets) and [`LogGroups`] (consumer groups) — and [`Log`] is all three. Every backend
//! (the embedded log, the Kafka backend) implements them with the contracts written here, and
//! the shared [`crate::conformance`] suite checks those contracts against each.

use crate::error::LogResult;
use crate::record::{ConsumedRecord, Record};
use crate::topic::{TopicConfig, TopicDescription, TopicPartition};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// What an append returns once the records are durable by the backend's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendAck {
    /// The partition written.
    pub partition: i32,
    /// The offset given to each record, in the order they were passed. On the embedded log
    /// they are contiguous; on a shared Kafka cluster other producers may interleave.
    pub offsets: Vec<i64>,
}

impl AppendAck {
    /// Offset of the first record (or `-1` for an empty append).
    pub fn base_offset(&self) -> i64 {
        self.offsets.first().copied().unwrap_or(-1)
    }
}

/// Bounds on one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// At most this many records.
    pub max_records: usize,
    /// About this many bytes of keys and values at most; at least one record is always
    /// returned when one is available, whatever its size.
    pub max_bytes: usize,
    /// When there is nothing at the offset yet, wait up to this long for data to arrive
    /// (woken by the append, never by polling a sleep loop). Zero returns at once.
    pub max_wait: Duration,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_records: 1000,
            max_bytes: 1024 * 1024,
            max_wait: Duration::ZERO,
        }
    }
}

impl ReadLimits {
    /// Default limits that wait up to `max_wait` for new data.
    pub fn waiting(max_wait: Duration) -> Self {
        ReadLimits {
            max_wait,
            ..Default::default()
        }
    }
}

/// The result of a read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadBatch {
    /// Records at or after the asked offset, in offset order (may be empty).
    pub records: Vec<ConsumedRecord>,
    /// Next offset to be written in the partition, when the read was served.
    pub high_watermark: i64,
    /// First offset still held, when the read was served.
    pub log_start_offset: i64,
}

impl ReadBatch {
    /// The offset to read next: one past the last record, or `from` when empty.
    pub fn next_offset(&self, from: i64) -> i64 {
        self.records.last().map_or(from, |r| r.offset + 1)
    }
}

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The first offset still held (log start).
    Earliest,
    /// The high watermark: the next offset to be written.
    Latest,
    /// The first offset whose timestamp is ≥ this (ms since epoch); the high watermark when
    /// no record is that recent.
    Timestamp(i64),
}

/// A partition the backend cannot fully serve: damaged data moved aside, a checksum that
/// failed on read, a write that failed. Its intact records stay readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DegradedPartition {
    /// The partition.
    pub partition: TopicPartition,
    /// What is wrong, naming the file and byte where there is one.
    pub reason: String,
    /// When it was found (ms since the epoch).
    pub since_ms: i64,
}

/// What a backend knows of its own health, for `/health` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogHealth {
    /// Partitions not fully served; empty when all is well.
    pub degraded: Vec<DegradedPartition>,
    /// Things worth knowing that are not faults (e.g. a torn tail cut by recovery after an
    /// unclean stop: only unacknowledged bytes are lost that way).
    pub notes: Vec<String>,
}

impl LogHealth {
    /// `"ok"` or `"degraded"`.
    pub fn status(&self) -> &'static str {
        if self.degraded.is_empty() {
            "ok"
        } else {
            "degraded"
        }
    }
}

/// Topic administration. All operations are durable when they return: a created topic
/// survives a restart, a deleted one does not come back.
#[async_trait]
pub trait LogAdmin: Send + Sync {
    /// Which backend this is (`"embedded"`, `"kafka"`), for logs and `/health`.
    fn backend_name(&self) -> &'static str;

    /// What the backend knows of its health now (cheap: no I/O). The default knows of no
    /// trouble; the embedded log reports damaged partitions and recovery cuts.
    fn health(&self) -> LogHealth {
        LogHealth::default()
    }

    /// Creates a topic with `config.partitions` partitions. Errors: invalid name or config,
    /// [`crate::LogError::TopicExists`].
    async fn create_topic(&self, name: &str, config: TopicConfig) -> LogResult<()>;

    /// Creates the topic unless it exists; an existing topic is left as it is.
    async fn ensure_topic(&self, name: &str, config: TopicConfig) -> LogResult<()> {
        match self.create_topic(name, config).await {
            Ok(()) | Err(crate::LogError::TopicExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Number of partitions of a topic (cheap; cached by backends). Error: unknown topic.
    async fn partition_count(&self, name: &str) -> LogResult<i32> {
        Ok(self.describe_topic(name).await?.partitions.len() as i32)
    }

    /// Names of all topics, sorted, internal ones included.
    async fn list_topics(&self) -> LogResult<Vec<String>>;

    /// Config and per-partition offsets of a topic. Error: unknown topic.
    async fn describe_topic(&self, name: &str) -> LogResult<TopicDescription>;

    /// Deletes a topic and all its data. Error: unknown topic.
    async fn delete_topic(&self, name: &str) -> LogResult<()>;
}

/// Appending and reading records.
#[async_trait]
pub trait LogData: Send + Sync {
    /// Appends `records` to one partition, in order, as one batch: either all are appended
    /// or none is. Returns once they are durable by the backend's policy (embedded: the
    /// configured fsync policy; Kafka: the producer's `acks`). Records are readable, at the
    /// returned offsets, by any reader once this returns. Errors: unknown topic or
    /// partition, a record over the topic's size limit, storage errors — after which
    /// nothing of this batch is visible and earlier acknowledged records are intact.
    async fn append(&self, topic: &str, partition: i32, records: &[Record])
    -> LogResult<AppendAck>;

    /// Reads records of one partition starting at `offset`, in offset order, within
    /// `limits`. `offset` equal to the high watermark waits up to `limits.max_wait` for new
    /// data and returns as soon as some is appended. An offset below the log start or above
    /// the high watermark is [`crate::LogError::OffsetOutOfRange`].
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: ReadLimits,
    ) -> LogResult<ReadBatch>;

    /// Looks up an offset: log start, high watermark, or the first offset at or after a
    /// timestamp.
    async fn offset_for(&self, topic: &str, partition: i32, spec: OffsetSpec) -> LogResult<i64>;

    /// Makes every acknowledged record durable on disk now, whatever the policy.
    async fn flush(&self) -> LogResult<()>;
}

/// How a consumer joins a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOptions {
    /// Group id.
    pub group: String,
    /// Topics to consume; their partitions are shared among the members.
    pub topics: Vec<String>,
    /// A member that does not poll for this long is removed and its partitions reassigned.
    pub session_timeout: Duration,
    /// Free-form client id, reported by `describe_group`.
    pub client_id: String,
    /// Where a partition without a committed offset starts: `Earliest` or `Latest`.
    pub reset: OffsetSpec,
}

impl JoinOptions {
    /// Options with a 10 s session timeout, starting from the earliest offset.
    pub fn new(group: impl Into<String>, topics: Vec<String>) -> Self {
        JoinOptions {
            group: group.into(),
            topics,
            session_timeout: Duration::from_secs(10),
            client_id: "fleetwatch".into(),
            reset: OffsetSpec::Earliest,
        }
    }
}

/// The partitions a member owns in one generation of its group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Generation of the group this assignment belongs to.
    pub generation: i32,
    /// Owned partitions, sorted.
    pub partitions: Vec<TopicPartition>,
}

/// One member of a group, as `describe_group` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMemberDescription {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// The client id it joined with.
    pub client_id: String,
    /// Partitions it owns.
    pub assignment: Vec<TopicPartition>,
}

/// A group's committed position in one partition: the next offset to consume, with the
/// client's free-form metadata (Kafka's `OffsetCommit` metadata string), kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetCommit {
    /// The partition.
    pub partition: TopicPartition,
    /// Next offset to consume.
    pub offset: i64,
    /// Client metadata stored with the commit (`None`: none sent).
    pub metadata: Option<String>,
}

impl OffsetCommit {
    /// A commit of `offset` without metadata.
    pub fn new(partition: TopicPartition, offset: i64) -> Self {
        OffsetCommit {
            partition,
            offset,
            metadata: None,
        }
    }

    /// Attaches metadata.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }
}

/// A group's committed offset in one partition next to that partition's high watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The committed offset (next to consume).
    pub committed: i64,
    /// Metadata stored with the commit.
    pub metadata: Option<String>,
    /// The partition's high watermark when described.
    pub high_watermark: i64,
}

impl GroupOffset {
    /// Records between the commit and the high watermark (never negative).
    pub fn lag(&self) -> i64 {
        (self.high_watermark - self.committed).max(0)
    }
}

/// A consumer group's members and offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// Current generation (0 when no member is active, or unknown to the backend).
    pub generation: i32,
    /// Active members.
    pub members: Vec<GroupMemberDescription>,
    /// Committed offset and high watermark per partition with a commit.
    pub offsets: Vec<GroupOffset>,
}

/// Consumer groups: membership with generations, session timeouts, assignment of
/// partitions among members, and committed offsets.
#[async_trait]
pub trait LogGroups: Send + Sync {
    /// Joins (or creates) a group. The returned member owns a share of the topics'
    /// partitions, which changes as members join, leave or time out.
    async fn join_group(&self, options: JoinOptions) -> LogResult<Box<dyn GroupConsumer>>;

    /// Committed offsets of a group (the next offset to consume per partition, with the
    /// metadata committed alongside), sorted by partition.
    async fn committed_offsets(&self, group: &str) -> LogResult<Vec<OffsetCommit>>;

    /// Groups known to the backend, sorted.
    async fn list_groups(&self) -> LogResult<Vec<String>>;

    /// Members, assignments, committed offsets and lag of a group.
    async fn describe_group(&self, group: &str) -> LogResult<GroupDescription>;
}

/// Records one poll returned from one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionBatch {
    /// Topic.
    pub topic: String,
    /// Records in offset order (their `partition` field says which).
    pub records: Vec<ConsumedRecord>,
}

/// A member of a consumer group. Dropping it without [`GroupConsumer::leave`] lets its
/// session time out.
#[async_trait]
pub trait GroupConsumer: Send {
    /// Member id given by the coordinator.
    fn member_id(&self) -> String;

    /// The current assignment. Calling it also heartbeats and picks up rebalances.
    async fn assignment(&mut self) -> LogResult<Assignment>;

    /// Heartbeats, follows rebalances and returns the next records of the owned partitions,
    /// waiting up to `limits.max_wait` when none is available. A partition newly owned
    /// starts at the group's committed offset, or at the `reset` position without one.
    async fn poll(&mut self, limits: ReadLimits) -> LogResult<Vec<PartitionBatch>>;

    /// Commits, for each partition, the next offset to consume and its metadata. Durable
    /// when it returns. Several entries for one partition: the last one wins, and only it is
    /// written. A commit from a member that is no longer in the group, or from a stale
    /// generation, is an error.
    async fn commit(&mut self, offsets: &[OffsetCommit]) -> LogResult<()>;

    /// Moves the position of an owned partition: the next `poll` reads it from `offset`.
    /// Error: the partition is not owned by this member now.
    async fn seek(&mut self, partition: &TopicPartition, offset: i64) -> LogResult<()>;

    /// Commits the position reached by `poll` on every owned partition.
    async fn commit_position(&mut self) -> LogResult<()>;

    /// Leaves the group at once; its partitions go to the remaining members.
    async fn leave(self: Box<Self>) -> LogResult<()>;
}

/// Everything a backend provides.
pub trait Log: LogAdmin + LogData + LogGroups {}
impl<T: LogAdmin + LogData + LogGroups + ?Sized> Log for T {}

/// Follows one partition from an offset: each [`Subscription::next_batch`] returns the
/// next records, waiting (woken by appends, not by polling) when it has caught up.
pub struct Subscription {
    log: Arc<dyn Log>,
    topic: String,
    partition: i32,
    offset: i64,
}

impl Subscription {
    /// Starts at `offset`.
    pub fn new(log: Arc<dyn Log>, topic: impl Into<String>, partition: i32, offset: i64) -> Self {
        Subscription {
            log,
            topic: topic.into(),
            partition,
            offset,
        }
    }

    /// The next offset this subscription will read.
    pub fn position(&self) -> i64 {
        self.offset
    }

    /// The next records, waiting up to `limits.max_wait` for some to arrive.
    pub async fn next_batch(&mut self, limits: ReadLimits) -> LogResult<Vec<ConsumedRecord>> {
        let batch = self
            .log
            .read(&self.topic, self.partition, self.offset, limits)
            .await?;
        self.offset = batch.next_offset(self.offset);
        Ok(batch.records)
    }

    /// The records as a stream of non-empty batches, for ever (each read waits up to
    /// `limits.max_wait`, woken by appends); an error ends the stream after it is yielded.
    pub fn into_stream(
        self,
        limits: ReadLimits,
    ) -> impl futures::Stream<Item = LogResult<Vec<ConsumedRecord>>> + Send {
        TopicSubscription::new(self.log, self.topic, vec![(self.partition, self.offset)])
            .into_stream(limits)
    }
}

/// Follows several partitions of one topic at once: each [`TopicSubscription::next_batch`]
/// returns the next records of whichever partitions have some, and when none has, waits
/// until an append to *any* of them (or `max_wait`) — racing one waiting read per partition,
/// never a sleep loop. Partitions are served in rotation so a busy one cannot starve the
/// others.
pub struct TopicSubscription {
    log: Arc<dyn Log>,
    topic: String,
    positions: Vec<(i32, i64)>,
    next: usize,
}

impl TopicSubscription {
    /// Follows `topic` from these `(partition, offset)` positions.
    pub fn new(log: Arc<dyn Log>, topic: impl Into<String>, positions: Vec<(i32, i64)>) -> Self {
        TopicSubscription {
            log,
            topic: topic.into(),
            positions,
            next: 0,
        }
    }

    /// The next offset to read, per partition.
    pub fn positions(&self) -> &[(i32, i64)] {
        &self.positions
    }

    /// The next records (at most `limits.max_records` in all), waiting up to
    /// `limits.max_wait` when every partition is caught up.
    pub async fn next_batch(&mut self, limits: ReadLimits) -> LogResult<Vec<ConsumedRecord>> {
        let n = self.positions.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let now = ReadLimits {
            max_wait: std::time::Duration::ZERO,
            ..limits
        };
        for k in 0..n {
            let i = (self.next + k) % n;
            if out.len() >= limits.max_records {
                break;
            }
            let (p, pos) = self.positions[i];
            let batch = self
                .log
                .read(
                    &self.topic,
                    p,
                    pos,
                    ReadLimits {
                        max_records: limits.max_records - out.len(),
                        ..now
                    },
                )
                .await?;
            self.positions[i].1 = batch.next_offset(pos);
            out.extend(batch.records);
        }
        self.next = (self.next + 1) % n;
        if !out.is_empty() || limits.max_wait.is_zero() {
            return Ok(out);
        }
        // Everyone is caught up: race one waiting read per partition; the first answer wins
        // and the others are dropped (a read waiting for data holds nothing).
        let reads: Vec<_> = self
            .positions
            .iter()
            .enumerate()
            .map(|(i, &(p, pos))| {
                let log = self.log.clone();
                let topic = self.topic.clone();
                Box::pin(async move { (i, pos, log.read(&topic, p, pos, limits).await) })
            })
            .collect();
        let ((i, pos, result), _, _) = futures::future::select_all(reads).await;
        let batch = result?;
        self.positions[i].1 = batch.next_offset(pos);
        Ok(batch.records)
    }

    /// The records as a stream of non-empty batches, for ever (each read waits up to
    /// `limits.max_wait`, woken by appends); an error ends the stream after it is yielded.
    pub fn into_stream(
        self,
        limits: ReadLimits,
    ) -> impl futures::Stream<Item = LogResult<Vec<ConsumedRecord>>> + Send {
        futures::stream::unfold(Some(self), move |state| async move {
            let mut sub = state?;
            loop {
                match sub.next_batch(limits).await {
                    Ok(b) if b.is_empty() => continue,
                    Ok(b) => return Some((Ok(b), Some(sub))),
                    Err(e) => return Some((Err(e), None)),
                }
            }
        })
    }
}
