//! The log's metrics, defined once ([`LogMetrics`]: names, labels and help text) and
//! registered in the process's `fleetwatch_metrics::Metrics` like every component's own.
//!
//! [`MeteredLog`] wraps any `Log` so that every append and read — whoever makes it: HTTP,
//! CLI, later MQTT and SQL — is counted the same way.

use async_trait::async_trait;
use fleetwatch_core::{
    AppendAck, Assignment, GroupConsumer, GroupDescription, JoinOptions, Log, LogAdmin, LogData,
    LogGroups, LogHealth, LogResult, OffsetCommit, OffsetSpec, PartitionBatch, ReadBatch,
    ReadLimits, Record, TopicConfig, TopicDescription, TopicPartition,
};
use fleetwatch_metrics::{
    HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Metrics, MetricsResult, latency_buckets,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The log's metrics, whoever appends or reads: HTTP, CLI, later MQTT and SQL.
pub struct LogMetrics {
    /// Records appended, per topic.
    pub records_in: IntCounterVec,
    /// Record bytes appended (`Record::size_bytes`: key, value, headers), per topic.
    pub bytes_in: IntCounterVec,
    /// Records read (reads and group polls), per topic.
    pub records_out: IntCounterVec,
    /// Record bytes read, per topic.
    pub bytes_out: IntCounterVec,
    /// Appends that failed, per topic and whether retriable.
    pub append_errors: IntCounterVec,
    /// Time from append call to durable acknowledgement, per topic.
    pub append_latency: HistogramVec,
    /// Committed offset behind the high watermark, per group and partition (refreshed by
    /// the `lag_refresh` task every `metrics.lag_refresh_ms`).
    pub group_lag: IntGaugeVec,
    /// Partitions the backend reports degraded.
    pub degraded_partitions: IntGauge,
}

impl LogMetrics {
    /// Registers them, and `fleetwatch_build_info`.
    pub fn new(metrics: &Metrics, backend: &str) -> MetricsResult<Self> {
        let info = metrics.gauge(
            "fleetwatch_build_info",
            "Version and log backend of this server.",
            &["version", "backend"],
        )?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION"), backend])
            .set(1);
        Ok(LogMetrics {
            records_in: metrics.counter("fleetwatch_records_in_total", "Records appended to the log.", &["topic"])?,
            bytes_in: metrics.counter(
                "fleetwatch_in_bytes_total",
                "Record bytes (key, value and headers) appended to the log.",
                &["topic"],
            )?,
            records_out: metrics.counter("fleetwatch_records_out_total", "Records read from the log.", &["topic"])?,
            bytes_out: metrics.counter(
                "fleetwatch_out_bytes_total",
                "Record bytes (key, value and headers) read from the log.",
                &["topic"],
            )?,
            append_errors: metrics.counter(
                "fleetwatch_append_errors_total",
                "Appends that failed, per topic and whether the error is retriable.",
                &["topic", "retriable"],
            )?,
            append_latency: metrics.histogram(
                "fleetwatch_append_latency_seconds",
                "Time from an append call to its durable acknowledgement.",
                &["topic"],
                latency_buckets(),
            )?,
            group_lag: metrics.gauge(
                "fleetwatch_consumer_group_lag_records",
                "Records between a group's committed offset and the high watermark.",
                &["group", "topic", "partition"],
            )?,
            degraded_partitions: metrics.gauge1(
                "fleetwatch_log_degraded_partitions",
                "Partitions the log cannot fully serve (damaged data moved aside, failed checksums); see /health.",
            )?,
        })
    }

    /// Recomputes consumer-group lag and the degraded count from the log.
    pub async fn refresh(&self, log: &dyn Log) {
        self.degraded_partitions
            .set(log.health().degraded.len() as i64);
        let Ok(groups) = log.list_groups().await else {
            return;
        };
        self.group_lag.reset();
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

    /// Refreshes every `every` until cancelled (the `lag_refresh` component).
    pub async fn run_refresh(
        self: Arc<Self>,
        log: Arc<dyn Log>,
        every: Duration,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => self.refresh(&*log).await,
            }
        }
    }

    fn count_out(&self, topic: &str, records: &[fleetwatch_core::ConsumedRecord]) {
        if records.is_empty() {
            return;
        }
        let bytes: usize = records.iter().map(|r| r.record.size_bytes()).sum();
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
    metrics: Arc<LogMetrics>,
}

impl MeteredLog {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Log>, metrics: Arc<LogMetrics>) -> Self {
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
                let bytes: usize = records.iter().map(Record::size_bytes).sum();
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
            Err(e) => {
                let retriable = if e.is_retriable() { "true" } else { "false" };
                self.metrics
                    .append_errors
                    .with_label_values(&[topic, retriable])
                    .inc();
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
    metrics: Arc<LogMetrics>,
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
