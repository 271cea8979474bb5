//! Topics: create, list, describe, delete, partition counts (cached after the first
//! metadata answer).

use crate::backend::{KafkaLog, blocking, close_off_runtime, lock};
use crate::error::{Op, classify, classify_code};
use async_trait::async_trait;
use fleetwatch_core::{
    LogAdmin, LogError, LogResult, PartitionInfo, TopicConfig, TopicDescription,
    validate_topic_name,
};
use rdkafka::admin::{AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use std::time::{Duration, Instant};

impl KafkaLog {
    /// Partition count of a topic (cached after the first metadata answer).
    pub(crate) async fn partition_count(&self, topic: &str) -> LogResult<i32> {
        if let Some(n) = lock(&self.inner.partitions).get(topic) {
            return Ok(*n);
        }
        match self.fetch_partition_count(topic).await? {
            Some(n) => {
                lock(&self.inner.partitions).insert(topic.to_string(), n);
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
                .map_err(|e| classify(&e, &Op::new("fetching metadata of").topic(&t)))?;
            Ok(md
                .topics()
                .iter()
                .find(|mt| mt.name() == t)
                .filter(|mt| mt.error().is_none() && !mt.partitions().is_empty())
                .map(|mt| mt.partitions().len() as i32))
        })
        .await?
    }

    /// The topic's partition count, after checking that `partition` is one of them.
    pub(crate) async fn check_partition(&self, topic: &str, partition: i32) -> LogResult<i32> {
        let n = self.partition_count(topic).await?;
        if partition < 0 || partition >= n {
            return Err(LogError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: n,
            });
        }
        Ok(n)
    }
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
        let op = Op::new("creating topic").topic(name);
        let results = self
            .inner
            .admin
            .create_topics([&nt], &opts)
            .await
            .map_err(|e| classify(&e, &op))?;
        for r in results {
            if let Err((t, code)) = r {
                let op = Op::new("creating topic").topic(&t);
                return Err(classify_code(code, &op, &format!("{op}: {code}")));
            }
        }
        // Wait until metadata shows it, so that an append right after works.
        let deadline = Instant::now() + self.timeout();
        loop {
            if let Some(n) = self.fetch_partition_count(name).await?
                && n == config.partitions
            {
                lock(&self.inner.partitions).insert(name.to_string(), n);
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
                .map_err(|e| classify(&e, &Op::new("listing topics")))
        })
        .await??;
        names.sort();
        Ok(names)
    }

    async fn describe_topic(&self, name: &str) -> LogResult<TopicDescription> {
        let n = self.partition_count(name).await?;
        let mut partitions = Vec::with_capacity(n as usize);
        for p in 0..n {
            let w = self.true_high(name, p).await?;
            partitions.push(PartitionInfo {
                partition: p,
                log_start_offset: w.log_start,
                high_watermark: w.high,
            });
        }
        let mut config = TopicConfig::with_partitions(n);
        let opts = AdminOptions::new().request_timeout(Some(self.timeout()));
        // Brokers may answer only the settings set explicitly (tansu 0.6); the rest keep
        // their defaults here.
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
        let op = Op::new("deleting topic").topic(name);
        let results = self
            .inner
            .admin
            .delete_topics(&[name], &opts)
            .await
            .map_err(|e| classify(&e, &op))?;
        for r in results {
            if let Err((t, code)) = r {
                let op = Op::new("deleting topic").topic(&t);
                return Err(classify_code(code, &op, &format!("{op}: {code}")));
            }
        }
        lock(&self.inner.partitions).remove(name);
        let readers = lock(&self.inner.readers).remove_where(|(t, _)| t == name);
        close_off_runtime(readers).await
    }
}
