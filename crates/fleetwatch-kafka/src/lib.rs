//! # fleetwatch-kafka — the `Log` trait over a Kafka-protocol cluster
//!
//! The same contracts as the embedded log (`fleetwatch_core::Log`), on Apache Kafka,
//! Redpanda, Confluent Cloud or tansu, through `rdkafka` (librdkafka). Chosen by
//! `[log] backend = "kafka"`; `[kafka] bootstrap_servers` and the free-form `[kafka.client]`
//! table (librdkafka properties, e.g. `security.protocol`) configure it.
//!
//! It must not know the embedded log nor anything above the `Log` trait.
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
//!   long poll on it (`fetch.wait.max.ms`, default 100 here).
//! - Consumer groups are Kafka's own (a consumer with `group.id`, manual commits).
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

use async_trait::async_trait;
use bytes::Bytes;
use fleetwatch_core::{
    AppendAck, Assignment, ConsumedRecord, GroupConsumer, GroupDescription, GroupMemberDescription,
    GroupOffset, Header, JoinOptions, LogAdmin, LogData, LogError, LogGroups, LogResult,
    OffsetCommit, OffsetSpec, PartitionBatch, PartitionInfo, ReadBatch, ReadLimits, Record,
    TimestampType, TopicConfig, TopicDescription, TopicPartition, validate_group_id,
    validate_topic_name,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        }
    }
}

impl KafkaConfig {
    /// Settings pointing at `bootstrap_servers`, defaults elsewhere.
    pub fn at(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            ..Default::default()
        }
    }

    /// Connects (clients are created; the cluster is contacted on first use).
    pub fn build(&self) -> LogResult<KafkaLog> {
        KafkaLog::new(self.clone())
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// The group id of group-less readers (librdkafka wants one for `assign`; readers never
/// join it nor commit).
const READER_GROUP: &str = "__fleetwatch-readers";

fn kafka_err(context: &str, e: KafkaError) -> LogError {
    LogError::Backend(format!("{context}: {e}"))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> LogResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Backend(format!("blocking task failed: {e}")))
}

/// A group-less consumer assigned to one partition, positioned at `next`.
struct Reader {
    consumer: BaseConsumer,
    next: i64,
    /// Highest end offset seen (from records read or watermarks asked).
    known_high: i64,
}

type SharedReader = Arc<Mutex<Reader>>;

struct Inner {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    meta: Arc<BaseConsumer>,
    readers: Mutex<HashMap<(String, i32), SharedReader>>,
    partitions: Mutex<HashMap<String, i32>>,
    member_seq: AtomicU64,
}

/// The Kafka backend. Cheap to clone.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

fn to_consumed(m: &BorrowedMessage<'_>) -> ConsumedRecord {
    let (timestamp, timestamp_type) = match m.timestamp() {
        rdkafka::Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
        rdkafka::Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
        rdkafka::Timestamp::NotAvailable => (-1, TimestampType::CreateTime),
    };
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    key: h.key.to_string(),
                    value: h.value.map(Bytes::copy_from_slice),
                })
                .collect()
        })
        .unwrap_or_default();
    ConsumedRecord {
        partition: m.partition(),
        offset: m.offset(),
        record: Record {
            key: m.key().map(Bytes::copy_from_slice),
            value: m.payload().map(Bytes::copy_from_slice),
            headers,
            timestamp,
            timestamp_type,
        },
    }
}

impl KafkaLog {
    /// Creates the clients for `config`.
    pub fn new(config: KafkaConfig) -> LogResult<Self> {
        let mut pc = config.client_config();
        pc.set("partitioner", "murmur2_random")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set(
                "message.max.bytes",
                (config.max_message_bytes + 64 * 1024).to_string(),
            );
        let producer: FutureProducer = pc
            .create()
            .map_err(|e| kafka_err("creating the producer", e))?;
        let admin: AdminClient<DefaultClientContext> = config
            .client_config()
            .create()
            .map_err(|e| kafka_err("creating the admin client", e))?;
        let meta: BaseConsumer = config
            .client_config()
            .set("group.id", READER_GROUP)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| kafka_err("creating the metadata client", e))?;
        Ok(KafkaLog {
            inner: Arc::new(Inner {
                config,
                producer,
                admin,
                meta: Arc::new(meta),
                readers: Mutex::new(HashMap::new()),
                partitions: Mutex::new(HashMap::new()),
                member_seq: AtomicU64::new(0),
            }),
        })
    }

    fn timeout(&self) -> Duration {
        self.inner.config.timeout()
    }

    /// Partition count of a topic (cached after the first metadata answer).
    async fn partition_count(&self, topic: &str) -> LogResult<i32> {
        if let Some(n) = self
            .inner
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
        {
            return Ok(*n);
        }
        let n = self.fetch_partition_count(topic).await?;
        match n {
            Some(n) => {
                self.inner
                    .partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(topic.to_string(), n);
                Ok(n)
            }
            None => Err(LogError::UnknownTopic(topic.to_string())),
        }
    }

    async fn fetch_partition_count(&self, topic: &str) -> LogResult<Option<i32>> {
        let meta = self.inner.meta.clone();
        let t = topic.to_string();
        let timeout = self.timeout();
        blocking(move || {
            let md = meta
                .fetch_metadata(Some(&t), timeout)
                .map_err(|e| kafka_err(&format!("fetching metadata of {t}"), e))?;
            Ok(md
                .topics()
                .iter()
                .find(|mt| mt.name() == t)
                .filter(|mt| mt.error().is_none() && !mt.partitions().is_empty())
                .map(|mt| mt.partitions().len() as i32))
        })
        .await?
    }

    async fn check_partition(&self, topic: &str, partition: i32) -> LogResult<()> {
        let n = self.partition_count(topic).await?;
        if partition < 0 || partition >= n {
            return Err(LogError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: n,
            });
        }
        Ok(())
    }

    fn reader(&self, topic: &str, partition: i32) -> LogResult<Arc<Mutex<Reader>>> {
        let mut readers = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = readers.get(&(topic.to_string(), partition)) {
            return Ok(r.clone());
        }
        let consumer: BaseConsumer = self
            .inner
            .config
            .client_config()
            .set("group.id", READER_GROUP)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "fetch.wait.max.ms",
                self.inner.config.fetch_wait_max_ms.to_string(),
            )
            .create()
            .map_err(|e| kafka_err("creating a reader", e))?;
        let r = Arc::new(Mutex::new(Reader {
            consumer,
            next: -1,
            known_high: -1,
        }));
        readers.insert((topic.to_string(), partition), r.clone());
        Ok(r)
    }

    /// (log start, high watermark) as the broker reports them.
    async fn watermarks(&self, topic: &str, partition: i32) -> LogResult<(i64, i64)> {
        let meta = self.inner.meta.clone();
        let t = topic.to_string();
        let timeout = self.timeout();
        blocking(move || {
            meta.fetch_watermarks(&t, partition, timeout)
                .map_err(|e| kafka_err(&format!("fetching offsets of {t}-{partition}"), e))
        })
        .await?
    }

    /// The high watermark, corrected by reading the last batch where the broker's answer is
    /// only a lower bound (see the crate docs).
    async fn true_high(&self, topic: &str, partition: i32) -> LogResult<(i64, i64)> {
        let (low, high) = self.watermarks(topic, partition).await?;
        if high <= low {
            return Ok((low, high));
        }
        let reader = self.reader(topic, partition)?;
        let t = topic.to_string();
        let timeout = self.timeout();
        let end = blocking(move || -> LogResult<i64> {
            let mut guard = reader.lock().unwrap_or_else(|p| p.into_inner());
            let r = &mut *guard;
            position(r, &t, partition, high - 1)?;
            let mut end = high;
            let deadline = Instant::now() + timeout;
            let mut first = true;
            loop {
                let wait = if first {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    Duration::ZERO
                };
                match r.consumer.poll(wait) {
                    Some(Ok(m)) => {
                        first = false;
                        end = end.max(m.offset() + 1);
                        r.next = m.offset() + 1;
                        r.known_high = r.known_high.max(end);
                    }
                    Some(Err(e)) => return Err(kafka_err(&format!("reading {t}-{partition}"), e)),
                    None => break,
                }
            }
            Ok(end)
        })
        .await??;
        Ok((low, end))
    }
}

/// Assigns the reader at `offset` unless it is already there.
fn position(r: &mut Reader, topic: &str, partition: i32, offset: i64) -> LogResult<()> {
    if r.next == offset {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| kafka_err("building an assignment", e))?;
    r.consumer
        .assign(&tpl)
        .map_err(|e| kafka_err(&format!("assigning {topic}-{partition}"), e))?;
    r.next = offset;
    Ok(())
}

#[async_trait]
impl LogAdmin for KafkaLog {
    fn backend_name(&self) -> &'static str {
        "kafka"
    }

    async fn create_topic(&self, name: &str, config: TopicConfig) -> LogResult<()> {
        validate_topic_name(name)?;
        config.validate()?;
        let props = config.to_properties();
        let rf = if self.inner.config.replication_factor > 0 {
            TopicReplication::Fixed(self.inner.config.replication_factor)
        } else {
            TopicReplication::Fixed(-1)
        };
        let mut nt = NewTopic::new(name, config.partitions, rf);
        for (k, v) in &props {
            if k != "segment.bytes" {
                nt = nt.set(k, v);
            }
        }
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout()));
        let results = self
            .inner
            .admin
            .create_topics([&nt], &opts)
            .await
            .map_err(|e| kafka_err(&format!("creating topic {name}"), e))?;
        for r in results {
            if let Err((t, code)) = r {
                return Err(match code {
                    RDKafkaErrorCode::TopicAlreadyExists => LogError::TopicExists(t),
                    RDKafkaErrorCode::InvalidPartitions
                    | RDKafkaErrorCode::InvalidReplicationFactor
                    | RDKafkaErrorCode::InvalidConfig
                    | RDKafkaErrorCode::InvalidTopic => {
                        LogError::invalid(format!("topic {t}"), code.to_string())
                    }
                    other => LogError::Backend(format!("creating topic {t}: {other}")),
                });
            }
        }
        // Wait until metadata shows it, so that an append right after works.
        let deadline = Instant::now() + self.timeout();
        loop {
            if let Some(n) = self.fetch_partition_count(name).await?
                && n == config.partitions
            {
                self.inner
                    .partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.to_string(), n);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LogError::Timeout(format!(
                    "topic {name} was created but metadata does not show it yet"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn partition_count(&self, name: &str) -> LogResult<i32> {
        KafkaLog::partition_count(self, name).await
    }

    async fn list_topics(&self) -> LogResult<Vec<String>> {
        let meta = self.inner.meta.clone();
        let timeout = self.timeout();
        let mut names = blocking(move || {
            meta.fetch_metadata(None, timeout)
                .map(|md| {
                    md.topics()
                        .iter()
                        .map(|t| t.name().to_string())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| kafka_err("listing topics", e))
        })
        .await??;
        names.sort();
        Ok(names)
    }

    async fn describe_topic(&self, name: &str) -> LogResult<TopicDescription> {
        let n = self.partition_count(name).await?;
        let mut partitions = Vec::with_capacity(n as usize);
        for p in 0..n {
            let (low, high) = self.true_high(name, p).await?;
            partitions.push(PartitionInfo {
                partition: p,
                log_start_offset: low,
                high_watermark: high,
            });
        }
        let mut config = TopicConfig::with_partitions(n);
        let opts = AdminOptions::new().request_timeout(Some(self.timeout()));
        if let Ok(results) = self
            .inner
            .admin
            .describe_configs([&ResourceSpecifier::Topic(name)], &opts)
            .await
        {
            for res in results.into_iter().flatten() {
                for e in res.entries {
                    if let Some(v) = e.value
                        && let Err(err) = config.apply_property(&e.name, &v)
                    {
                        tracing::debug!(topic = name, setting = %e.name, error = %err, "ignored topic setting");
                    }
                }
            }
        }
        config.partitions = n;
        Ok(TopicDescription {
            name: name.to_string(),
            config,
            partitions,
        })
    }

    async fn delete_topic(&self, name: &str) -> LogResult<()> {
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout()));
        let results = self
            .inner
            .admin
            .delete_topics(&[name], &opts)
            .await
            .map_err(|e| kafka_err(&format!("deleting topic {name}"), e))?;
        for r in results {
            if let Err((t, code)) = r {
                return Err(match code {
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                        LogError::UnknownTopic(t)
                    }
                    other => LogError::Backend(format!("deleting topic {t}: {other}")),
                });
            }
        }
        self.inner
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(t, _), _| t != name);
        Ok(())
    }
}

#[async_trait]
impl LogData for KafkaLog {
    async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> LogResult<AppendAck> {
        self.check_partition(topic, partition).await?;
        let limit = self.inner.config.max_message_bytes;
        for r in records {
            let size = r.size_bytes();
            if size > limit {
                return Err(LogError::RecordTooLarge {
                    topic: topic.to_string(),
                    size,
                    limit,
                });
            }
        }
        let mut futures = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for h in &r.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .partition(partition)
                .timestamp(r.timestamp)
                .headers(headers);
            if let Some(k) = r.key.as_deref() {
                fr = fr.key(k);
            }
            if let Some(v) = r.value.as_deref() {
                fr = fr.payload(v);
            }
            loop {
                match self.inner.producer.send_result(fr) {
                    Ok(f) => {
                        futures.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        fr = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => {
                        return Err(kafka_err(&format!("producing to {topic}-{partition}"), e));
                    }
                }
            }
        }
        let mut offsets = Vec::with_capacity(futures.len());
        for f in futures {
            match f.await {
                Ok(Ok(d)) => offsets.push(d.offset),
                Ok(Err((e, _))) => {
                    return Err(kafka_err(&format!("producing to {topic}-{partition}"), e));
                }
                Err(_) => return Err(LogError::Backend("the producer was dropped".into())),
            }
        }
        Ok(AppendAck { partition, offsets })
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: ReadLimits,
    ) -> LogResult<ReadBatch> {
        self.check_partition(topic, partition).await?;
        let reader = self.reader(topic, partition)?;
        let (next, known_high) = {
            let r = reader.lock().unwrap_or_else(|p| p.into_inner());
            (r.next, r.known_high)
        };
        // A read that does not continue the last one is checked against the log's range;
        // one at the known end asks the broker whether more has come.
        let (low, high) = if next == offset && offset < known_high {
            (-1, known_high)
        } else {
            let (low, high) = self.watermarks(topic, partition).await?;
            let high = if offset > high {
                self.true_high(topic, partition).await?.1
            } else {
                high
            };
            if offset < low || offset > high {
                return Err(LogError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    log_start: low,
                    high_watermark: high,
                });
            }
            (low, high)
        };
        let t = topic.to_string();
        let request_timeout = self.timeout();
        let (records, high) = blocking(move || -> LogResult<(Vec<ConsumedRecord>, i64)> {
            let mut guard = reader.lock().unwrap_or_else(|p| p.into_inner());
            let r = &mut *guard;
            position(r, &t, partition, offset)?;
            r.known_high = r.known_high.max(high);
            // Wait for data known to exist for up to a request timeout, else max_wait.
            let first_wait = if offset < r.known_high {
                request_timeout.max(limits.max_wait)
            } else {
                limits.max_wait
            };
            let mut out = Vec::new();
            let mut bytes = 0usize;
            let deadline = Instant::now() + first_wait;
            while out.len() < limits.max_records && bytes < limits.max_bytes {
                let wait = if out.is_empty() {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    Duration::ZERO
                };
                match r.consumer.poll(wait) {
                    Some(Ok(m)) => {
                        if m.offset() < r.next {
                            continue;
                        }
                        bytes += m.payload_len() + m.key().map_or(0, <[u8]>::len);
                        r.next = m.offset() + 1;
                        r.known_high = r.known_high.max(r.next);
                        out.push(to_consumed(&m));
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => {
                        return Err(kafka_err(
                            &format!("reading {t}-{partition} at {offset}"),
                            e,
                        ));
                    }
                    None => break,
                }
            }
            Ok((out, r.known_high))
        })
        .await??;
        Ok(ReadBatch {
            records,
            high_watermark: high.max(offset),
            log_start_offset: low.max(0),
        })
    }

    async fn offset_for(&self, topic: &str, partition: i32, spec: OffsetSpec) -> LogResult<i64> {
        self.check_partition(topic, partition).await?;
        match spec {
            OffsetSpec::Earliest => Ok(self.watermarks(topic, partition).await?.0),
            OffsetSpec::Latest => Ok(self.true_high(topic, partition).await?.1),
            OffsetSpec::Timestamp(ts) => {
                let meta = self.inner.meta.clone();
                let t = topic.to_string();
                let timeout = self.timeout();
                let answer = blocking(move || -> LogResult<i64> {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(&t, partition, Offset::Offset(ts))
                        .map_err(|e| kafka_err("building a lookup", e))?;
                    let res = meta.offsets_for_times(tpl, timeout).map_err(|e| {
                        kafka_err(&format!("looking up {t}-{partition} at {ts}"), e)
                    })?;
                    Ok(res
                        .elements()
                        .first()
                        .and_then(|e| match e.offset() {
                            Offset::Offset(o) => Some(o),
                            _ => None,
                        })
                        .unwrap_or(-1))
                })
                .await??;
                let (low, high) = self.true_high(topic, partition).await?;
                let mut next = if answer < 0 {
                    high
                } else {
                    answer.clamp(low, high)
                };
                // Refine: the first record at or after the answer whose timestamp is ≥ ts.
                while next < high {
                    let batch = self
                        .read(topic, partition, next, ReadLimits::default())
                        .await?;
                    if let Some(r) = batch.records.iter().find(|r| r.record.timestamp >= ts) {
                        return Ok(r.offset);
                    }
                    if batch.records.is_empty() {
                        break;
                    }
                    next = batch.next_offset(next);
                }
                Ok(high)
            }
        }
    }

    async fn flush(&self) -> LogResult<()> {
        let producer = self.inner.producer.clone();
        let timeout = self.timeout();
        blocking(move || {
            rdkafka::producer::Producer::flush(&producer, timeout)
                .map_err(|e| kafka_err("flushing the producer", e))
        })
        .await?
    }
}

/// Counts generations as the client sees them: one per assignment received.
struct GroupContext {
    generation: AtomicI32,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}

struct KafkaMember {
    consumer: Arc<BaseConsumer<GroupContext>>,
    member_id: String,
    timeout: Duration,
    positions: BTreeMap<TopicPartition, i64>,
    pending: Vec<(String, ConsumedRecord)>,
}

/// Parses a consumer-protocol assignment (`MemberAssignment`): version, then topics with
/// their partitions.
fn parse_assignment(bytes: &[u8]) -> Vec<TopicPartition> {
    fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
        let (head, rest) = b.split_first_chunk::<N>()?;
        *b = rest;
        Some(*head)
    }
    let mut b = bytes;
    let mut out = Vec::new();
    // A truncated assignment yields the partitions read before the damage.
    let _complete: Option<()> = (|| {
        take::<2>(&mut b)?;
        let topics = i32::from_be_bytes(take::<4>(&mut b)?);
        for _ in 0..topics.max(0) {
            let len = i16::from_be_bytes(take::<2>(&mut b)?).max(0) as usize;
            let name = String::from_utf8_lossy(b.get(..len)?).to_string();
            b = &b[len..];
            let n = i32::from_be_bytes(take::<4>(&mut b)?);
            for _ in 0..n.max(0) {
                out.push(TopicPartition::new(
                    name.clone(),
                    i32::from_be_bytes(take::<4>(&mut b)?),
                ));
            }
        }
        Some(())
    })();
    out.sort();
    out
}

#[async_trait]
impl LogGroups for KafkaLog {
    async fn join_group(&self, options: JoinOptions) -> LogResult<Box<dyn GroupConsumer>> {
        validate_group_id(&options.group)?;
        if options.topics.is_empty() {
            return Err(LogError::invalid("subscription", "no topics given"));
        }
        for t in &options.topics {
            self.partition_count(t).await?;
        }
        let session = options.session_timeout.as_millis().max(1000);
        let reset = match options.reset {
            OffsetSpec::Latest => "latest",
            _ => "earliest",
        };
        let seq = self.inner.member_seq.fetch_add(1, Ordering::Relaxed);
        let consumer: BaseConsumer<GroupContext> = self
            .inner
            .config
            .client_config()
            .set("group.id", &options.group)
            .set("client.id", &options.client_id)
            .set("session.timeout.ms", session.to_string())
            // a member that stops polling leaves, as the contract says
            .set("max.poll.interval.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 4).max(100).to_string())
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", reset)
            .set(
                "fetch.wait.max.ms",
                self.inner.config.fetch_wait_max_ms.to_string(),
            )
            .create_with_context(GroupContext {
                generation: AtomicI32::new(0),
            })
            .map_err(|e| kafka_err("creating a group consumer", e))?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| kafka_err(&format!("subscribing to {topics:?}"), e))?;
        Ok(Box::new(KafkaMember {
            consumer: Arc::new(consumer),
            member_id: format!("{}-{seq}", options.client_id),
            timeout: self.timeout(),
            positions: BTreeMap::new(),
            pending: Vec::new(),
        }))
    }

    async fn committed_offsets(&self, group: &str) -> LogResult<Vec<OffsetCommit>> {
        validate_group_id(group)?;
        let consumer: BaseConsumer = self
            .inner
            .config
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| kafka_err("creating an offsets client", e))?;
        let timeout = self.timeout();
        blocking(move || -> LogResult<Vec<OffsetCommit>> {
            let md = consumer
                .fetch_metadata(None, timeout)
                .map_err(|e| kafka_err("listing topics", e))?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics() {
                if t.name().starts_with("__") {
                    continue;
                }
                for p in t.partitions() {
                    tpl.add_partition(t.name(), p.id());
                }
            }
            let res = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| kafka_err("fetching committed offsets", e))?;
            let mut out: Vec<OffsetCommit> = res
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(OffsetCommit {
                        partition: TopicPartition::new(e.topic(), e.partition()),
                        offset: o,
                        metadata: Some(e.metadata().to_string()).filter(|m| !m.is_empty()),
                    }),
                    _ => None,
                })
                .collect();
            out.sort_by(|a, b| a.partition.cmp(&b.partition));
            Ok(out)
        })
        .await?
    }

    async fn list_groups(&self) -> LogResult<Vec<String>> {
        let meta = self.inner.meta.clone();
        let timeout = self.timeout();
        let mut names = blocking(move || {
            meta.fetch_group_list(None, timeout)
                .map(|gl| {
                    gl.groups()
                        .iter()
                        .map(|g| g.name().to_string())
                        .collect::<Vec<_>>()
                })
                .map_err(|e| kafka_err("listing groups", e))
        })
        .await??;
        names.sort();
        Ok(names)
    }

    async fn describe_group(&self, group: &str) -> LogResult<GroupDescription> {
        let meta = self.inner.meta.clone();
        let timeout = self.timeout();
        let g = group.to_string();
        let members = blocking(move || -> LogResult<Vec<GroupMemberDescription>> {
            let gl = meta
                .fetch_group_list(Some(&g), timeout)
                .map_err(|e| kafka_err(&format!("describing group {g}"), e))?;
            Ok(gl
                .groups()
                .iter()
                .filter(|gi| gi.name() == g)
                .flat_map(|gi| gi.members())
                .map(|m| GroupMemberDescription {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    assignment: m.assignment().map(parse_assignment).unwrap_or_default(),
                })
                .collect())
        })
        .await??;
        let committed = self.committed_offsets(group).await?;
        let mut offsets = Vec::with_capacity(committed.len());
        for c in committed {
            let (_, hw) = self
                .true_high(&c.partition.topic, c.partition.partition)
                .await?;
            offsets.push(GroupOffset {
                partition: c.partition,
                committed: c.offset,
                metadata: c.metadata,
                high_watermark: hw,
            });
        }
        Ok(GroupDescription {
            group: group.to_string(),
            generation: 0,
            members,
            offsets,
        })
    }
}

impl KafkaMember {
    /// Polls once (serving rebalance callbacks) and keeps any record for the next `poll`.
    async fn serve_callbacks(&mut self) -> LogResult<()> {
        let consumer = self.consumer.clone();
        let got = blocking(move || match consumer.poll(Duration::ZERO) {
            Some(Ok(m)) => Ok(Some((m.topic().to_string(), to_consumed(&m)))),
            Some(Err(e)) => Err(kafka_err("polling the group consumer", e)),
            None => Ok(None),
        })
        .await??;
        if let Some(rec) = got {
            self.pending.push(rec);
        }
        Ok(())
    }

    fn current_assignment(&self) -> LogResult<Vec<TopicPartition>> {
        let tpl = self
            .consumer
            .assignment()
            .map_err(|e| kafka_err("reading the assignment", e))?;
        let mut v: Vec<TopicPartition> = tpl
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition()))
            .collect();
        v.sort();
        Ok(v)
    }
}

#[async_trait]
impl GroupConsumer for KafkaMember {
    fn member_id(&self) -> String {
        self.member_id.clone()
    }

    async fn assignment(&mut self) -> LogResult<Assignment> {
        self.serve_callbacks().await?;
        Ok(Assignment {
            generation: self.consumer.context().generation.load(Ordering::SeqCst),
            partitions: self.current_assignment()?,
        })
    }

    async fn poll(&mut self, limits: ReadLimits) -> LogResult<Vec<PartitionBatch>> {
        let consumer = self.consumer.clone();
        let mut got = std::mem::take(&mut self.pending);
        let already = got.len();
        let polled = blocking(move || -> LogResult<Vec<(String, ConsumedRecord)>> {
            let mut out = Vec::new();
            let deadline = Instant::now() + limits.max_wait;
            while already + out.len() < limits.max_records {
                let wait = if already + out.len() == 0 {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    Duration::ZERO
                };
                match consumer.poll(wait) {
                    Some(Ok(m)) => out.push((m.topic().to_string(), to_consumed(&m))),
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => return Err(kafka_err("polling the group consumer", e)),
                    None => break,
                }
            }
            Ok(out)
        })
        .await??;
        got.extend(polled);
        let mut batches: Vec<PartitionBatch> = Vec::new();
        for (topic, rec) in got {
            self.positions
                .insert(TopicPartition::new(&topic, rec.partition), rec.offset + 1);
            match batches.iter_mut().find(|b| {
                b.topic == topic
                    && b.records
                        .first()
                        .is_some_and(|r| r.partition == rec.partition)
            }) {
                Some(b) => b.records.push(rec),
                None => batches.push(PartitionBatch {
                    topic,
                    records: vec![rec],
                }),
            }
        }
        Ok(batches)
    }

    async fn commit(&mut self, offsets: &[OffsetCommit]) -> LogResult<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        // The last entry for a partition wins (one element per partition in the request).
        let mut last: BTreeMap<&TopicPartition, &OffsetCommit> = BTreeMap::new();
        for c in offsets {
            last.insert(&c.partition, c);
        }
        let mut tpl = TopicPartitionList::new();
        for c in last.values() {
            let tp = &c.partition;
            tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(c.offset))
                .map_err(|e| kafka_err("building a commit", e))?;
            if let (Some(meta), Some(mut elem)) =
                (&c.metadata, tpl.find_partition(&tp.topic, tp.partition))
            {
                elem.set_metadata(meta.clone());
            }
        }
        let consumer = self.consumer.clone();
        blocking(move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| kafka_err("committing offsets", e))
        })
        .await?
    }

    async fn seek(&mut self, partition: &TopicPartition, offset: i64) -> LogResult<()> {
        self.serve_callbacks().await?;
        if !self.current_assignment()?.contains(partition) {
            return Err(LogError::invalid(
                "seek",
                format!(
                    "{}-{} is not assigned to member {}",
                    partition.topic, partition.partition, self.member_id
                ),
            ));
        }
        let consumer = self.consumer.clone();
        let tp = partition.clone();
        let timeout = self.timeout;
        // Right after an assignment librdkafka may still be fetching the start position
        // ("erroneous state"); keep polling (stashing what arrives) until it can seek.
        let stashed = blocking(move || -> LogResult<Vec<(String, ConsumedRecord)>> {
            let deadline = Instant::now() + timeout;
            let mut stash = Vec::new();
            loop {
                match consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), timeout) {
                    Ok(()) => return Ok(stash),
                    Err(KafkaError::Seek(e)) if e.contains("Erroneous state") || e.contains("State") => {
                        if Instant::now() > deadline {
                            return Err(LogError::Timeout(format!(
                                "seeking {}-{} to {offset}: the consumer never reached a fetch position",
                                tp.topic, tp.partition
                            )));
                        }
                        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                            stash.push((m.topic().to_string(), to_consumed(&m)));
                        }
                    }
                    Err(e) => {
                        return Err(kafka_err(&format!("seeking {}-{} to {offset}", tp.topic, tp.partition), e));
                    }
                }
            }
        })
        .await??;
        self.pending.extend(stashed);
        self.pending
            .retain(|(t, r)| !(t == &partition.topic && r.partition == partition.partition));
        self.positions.insert(partition.clone(), offset);
        Ok(())
    }

    async fn commit_position(&mut self) -> LogResult<()> {
        let owned = self.current_assignment()?;
        let offsets: Vec<OffsetCommit> = self
            .positions
            .iter()
            .filter(|(tp, _)| owned.contains(tp))
            .map(|(tp, o)| OffsetCommit::new(tp.clone(), *o))
            .collect();
        self.commit(&offsets).await
    }

    async fn leave(self: Box<Self>) -> LogResult<()> {
        let consumer = self.consumer;
        let timeout = self.timeout;
        blocking(move || {
            consumer.unsubscribe();
            // Serve the revocation so the group rebalances now, then close on drop.
            let deadline = Instant::now() + timeout.min(Duration::from_secs(2));
            while Instant::now() < deadline {
                if consumer
                    .assignment()
                    .map(|a| a.count() == 0)
                    .unwrap_or(true)
                {
                    break;
                }
                let _ = consumer.poll(Duration::from_millis(50));
            }
            drop(consumer);
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_consumer_protocol_assignment() {
        let mut b = vec![0u8, 1];
        b.extend(1i32.to_be_bytes());
        b.extend(3i16.to_be_bytes());
        b.extend(b"abc");
        b.extend(2i32.to_be_bytes());
        b.extend(1i32.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend((-1i32).to_be_bytes()); // user data: null
        assert_eq!(
            parse_assignment(&b),
            vec![TopicPartition::new("abc", 0), TopicPartition::new("abc", 1)]
        );
        assert!(parse_assignment(&[1]).is_empty());
    }
}
