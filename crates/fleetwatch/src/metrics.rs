//! Metrics, defined once: names, labels and help text live here; components record them
//! through [`Metrics`], and `/metrics` encodes them in the Prometheus text format.
//!
//! [`MeteredLog`] wraps any `Log` so that every append and read — whoever makes it: HTTP,
//! CLI, later MQTT and SQL — is counted the same way.

use async_trait::async_trait;
use fleetwatch_core::{
    AppendAck, Assignment, GroupConsumer, GroupDescription, JoinOptions, Log, LogAdmin, LogData,
    LogGroups, LogHealth, LogResult, OffsetCommit, OffsetSpec, PartitionBatch, ReadBatch,
    ReadLimits, Record, TopicConfig, TopicDescription, TopicPartition,
};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder, exponential_buckets,
};
use std::sync::Arc;
use std::time::Instant;

/// Every metric fleetwatch exports (Prometheus text format 0.0.4; names follow Prometheus
/// conventions: `_total` counters, base units).
pub struct Metrics {
    registry: Registry,
    /// Records appended, per topic.
    pub records_in: IntCounterVec,
    /// Key + value bytes appended, per topic.
    pub bytes_in: IntCounterVec,
    /// Records read (reads and group polls), per topic.
    pub records_out: IntCounterVec,
    /// Key + value bytes read, per topic.
    pub bytes_out: IntCounterVec,
    /// Appends that failed, per topic.
    pub append_errors: IntCounterVec,
    /// Time from append call to durable acknowledgement, per topic.
    pub append_latency: HistogramVec,
    /// Committed offset behind the high watermark, per group and partition (set at scrape).
    pub group_lag: IntGaugeVec,
    /// HTTP requests served, per route, method and status.
    pub http_requests: IntCounterVec,
    /// Consumer instances open in the HTTP API.
    pub consumer_instances: IntGauge,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name} is malformed: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name} registered twice: {e}"));
    c
}

impl Metrics {
    /// Registers every metric. Panics only on a malformed definition in this file (a
    /// programming error caught by the unit test).
    #[allow(clippy::expect_used)]
    pub fn new(backend: &str) -> Self {
        let registry = Registry::new();
        let records_in = counter(
            &registry,
            "fleetwatch_records_in_total",
            "Records appended to the log.",
            &["topic"],
        );
        let bytes_in = counter(
            &registry,
            "fleetwatch_in_bytes_total",
            "Key and value bytes appended to the log.",
            &["topic"],
        );
        let records_out = counter(
            &registry,
            "fleetwatch_records_out_total",
            "Records read from the log.",
            &["topic"],
        );
        let bytes_out = counter(
            &registry,
            "fleetwatch_out_bytes_total",
            "Key and value bytes read from the log.",
            &["topic"],
        );
        let append_errors = counter(
            &registry,
            "fleetwatch_append_errors_total",
            "Appends that failed.",
            &["topic"],
        );
        let http_requests = counter(
            &registry,
            "fleetwatch_http_requests_total",
            "HTTP requests served.",
            &["route", "method", "status"],
        );
        let append_latency = HistogramVec::new(
            HistogramOpts::new(
                "fleetwatch_append_latency_seconds",
                "Time from an append call to its durable acknowledgement.",
            )
            .buckets(exponential_buckets(0.000_01, 2.0, 20).expect("valid buckets")),
            &["topic"],
        )
        .expect("valid histogram");
        registry
            .register(Box::new(append_latency.clone()))
            .expect("registered once");
        let group_lag = IntGaugeVec::new(
            Opts::new(
                "fleetwatch_consumer_group_lag_records",
                "Records between a group's committed offset and the high watermark.",
            ),
            &["group", "topic", "partition"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(group_lag.clone()))
            .expect("registered once");
        let consumer_instances = IntGauge::new(
            "fleetwatch_consumer_instances",
            "Consumer instances open in the HTTP API.",
        )
        .expect("valid gauge");
        registry
            .register(Box::new(consumer_instances.clone()))
            .expect("registered once");
        let info = IntGaugeVec::new(
            Opts::new(
                "fleetwatch_build_info",
                "Version and log backend of this server.",
            ),
            &["version", "backend"],
        )
        .expect("valid gauge");
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), backend])
            .set(1);
        registry.register(Box::new(info)).expect("registered once");
        Metrics {
            registry,
            records_in,
            bytes_in,
            records_out,
            bytes_out,
            append_errors,
            append_latency,
            group_lag,
            http_requests,
            consumer_instances,
        }
    }

    /// Recomputes consumer-group lag from the log (called at scrape time).
    pub async fn refresh_lag(&self, log: &dyn Log) {
        self.group_lag.reset();
        let Ok(groups) = log.list_groups().await else {
            return;
        };
        for g in groups {
            let Ok(desc) = log.describe_group(&g).await else {
                continue;
            };
            for o in desc.offsets {
                self.group_lag
                    .with_label_values(&[
                        g.as_str(),
                        o.partition.topic.as_str(),
                        &o.partition.partition.to_string(),
                    ])
                    .set(o.lag());
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn count_out(&self, topic: &str, records: &[fleetwatch_core::ConsumedRecord]) {
        if records.is_empty() {
            return;
        }
        let bytes: usize = records
            .iter()
            .map(|r| {
                r.record.key.as_ref().map_or(0, |k| k.len())
                    + r.record.value.as_ref().map_or(0, |v| v.len())
            })
            .sum();
        self.records_out
            .with_label_values(&[topic])
            .inc_by(records.len() as u64);
        self.bytes_out
            .with_label_values(&[topic])
            .inc_by(bytes as u64);
    }
}

/// A `Log` that records metrics for everything passing through it.
pub struct MeteredLog {
    inner: Arc<dyn Log>,
    metrics: Arc<Metrics>,
}

impl MeteredLog {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Log>, metrics: Arc<Metrics>) -> Self {
        MeteredLog { inner, metrics }
    }
}

#[async_trait]
impl LogAdmin for MeteredLog {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn health(&self) -> LogHealth {
        self.inner.health()
    }
    async fn create_topic(&self, name: &str, config: TopicConfig) -> LogResult<()> {
        self.inner.create_topic(name, config).await
    }
    async fn partition_count(&self, name: &str) -> LogResult<i32> {
        self.inner.partition_count(name).await
    }
    async fn list_topics(&self) -> LogResult<Vec<String>> {
        self.inner.list_topics().await
    }
    async fn describe_topic(&self, name: &str) -> LogResult<TopicDescription> {
        self.inner.describe_topic(name).await
    }
    async fn delete_topic(&self, name: &str) -> LogResult<()> {
        self.inner.delete_topic(name).await
    }
}

#[async_trait]
impl LogData for MeteredLog {
    async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> LogResult<AppendAck> {
        let started = Instant::now();
        let result = self.inner.append(topic, partition, records).await;
        match &result {
            Ok(_) => {
                let bytes: usize = records
                    .iter()
                    .map(|r| {
                        r.key.as_ref().map_or(0, |k| k.len())
                            + r.value.as_ref().map_or(0, |v| v.len())
                    })
                    .sum();
                self.metrics
                    .records_in
                    .with_label_values(&[topic])
                    .inc_by(records.len() as u64);
                self.metrics
                    .bytes_in
                    .with_label_values(&[topic])
                    .inc_by(bytes as u64);
                self.metrics
                    .append_latency
                    .with_label_values(&[topic])
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(_) => {
                self.metrics.append_errors.with_label_values(&[topic]).inc();
            }
        }
        result
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: ReadLimits,
    ) -> LogResult<ReadBatch> {
        let batch = self.inner.read(topic, partition, offset, limits).await?;
        self.metrics.count_out(topic, &batch.records);
        Ok(batch)
    }

    async fn offset_for(&self, topic: &str, partition: i32, spec: OffsetSpec) -> LogResult<i64> {
        self.inner.offset_for(topic, partition, spec).await
    }

    async fn flush(&self) -> LogResult<()> {
        self.inner.flush().await
    }
}

#[async_trait]
impl LogGroups for MeteredLog {
    async fn join_group(&self, options: JoinOptions) -> LogResult<Box<dyn GroupConsumer>> {
        let inner = self.inner.join_group(options).await?;
        Ok(Box::new(MeteredMember {
            inner,
            metrics: self.metrics.clone(),
        }))
    }
    async fn committed_offsets(&self, group: &str) -> LogResult<Vec<OffsetCommit>> {
        self.inner.committed_offsets(group).await
    }
    async fn list_groups(&self) -> LogResult<Vec<String>> {
        self.inner.list_groups().await
    }
    async fn describe_group(&self, group: &str) -> LogResult<GroupDescription> {
        self.inner.describe_group(group).await
    }
}

struct MeteredMember {
    inner: Box<dyn GroupConsumer>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl GroupConsumer for MeteredMember {
    fn member_id(&self) -> String {
        self.inner.member_id()
    }
    async fn assignment(&mut self) -> LogResult<Assignment> {
        self.inner.assignment().await
    }
    async fn poll(&mut self, limits: ReadLimits) -> LogResult<Vec<PartitionBatch>> {
        let batches = self.inner.poll(limits).await?;
        for b in &batches {
            self.metrics.count_out(&b.topic, &b.records);
        }
        Ok(batches)
    }
    async fn commit(&mut self, offsets: &[OffsetCommit]) -> LogResult<()> {
        self.inner.commit(offsets).await
    }
    async fn seek(&mut self, partition: &TopicPartition, offset: i64) -> LogResult<()> {
        self.inner.seek(partition, offset).await
    }
    async fn commit_position(&mut self) -> LogResult<()> {
        self.inner.commit_position().await
    }
    async fn leave(self: Box<Self>) -> LogResult<()> {
        self.inner.leave().await
    }
}
