//! Append, read, offsets, and the per-partition reader cache.
//!
//! A read is served by a group-less consumer assigned to that partition and left where the
//! last read ended, so sequential reads stream without re-seeking. At most
//! `max_cached_readers` are kept; the least recently read one is closed past the cap
//! (off the async runtime: closing joins its threads). A reader in use when it is evicted
//! finishes its read and closes after it. Readers run with `auto.offset.reset = error`: a
//! position that retention removed under a continuing read is `OffsetOutOfRange` with the
//! current range, never a silent jump to the end.

use crate::backend::{KafkaLog, blocking, close_off_runtime, lock};
use crate::error::{Op, classify};
use crate::refine::{self, TimeScan};
use async_trait::async_trait;
use bytes::Bytes;
use fleetwatch_core::{
    AppendAck, ConsumedRecord, Header, LogData, LogError, LogResult, OffsetSpec, ReadBatch,
    ReadLimits, Record, TimestampType, Watermarks,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A group-less consumer assigned to one partition, positioned at `next`.
pub(crate) struct Reader {
    consumer: BaseConsumer,
    next: i64,
    /// Highest end offset seen (from records read or watermarks asked).
    known_high: i64,
}

pub(crate) type SharedReader = Arc<Mutex<Reader>>;

pub(crate) fn to_consumed(m: &BorrowedMessage<'_>) -> ConsumedRecord {
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

/// Assigns the reader at `offset` unless it is already there.
fn position(r: &mut Reader, topic: &str, partition: i32, offset: i64) -> LogResult<()> {
    if r.next == offset {
        return Ok(());
    }
    let op = || {
        Op::new("assigning")
            .partition(topic, partition)
            .offset(offset)
    };
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| classify(&e, &op()))?;
    r.consumer.assign(&tpl).map_err(|e| classify(&e, &op()))?;
    r.next = offset;
    Ok(())
}

impl KafkaLog {
    /// The cached reader of a partition, or a new one (evicting the least recently used
    /// past `max_cached_readers`).
    async fn reader(&self, topic: &str, partition: i32) -> LogResult<SharedReader> {
        let key = (topic.to_string(), partition);
        if let Some(r) = lock(&self.inner.readers).get(&key) {
            return Ok(r.clone());
        }
        let consumer: BaseConsumer = self.inner.config.reader_config().create().map_err(|e| {
            classify(
                &e,
                &Op::new("creating a reader of").partition(topic, partition),
            )
        })?;
        let fresh = Arc::new(Mutex::new(Reader {
            consumer,
            next: -1,
            known_high: -1,
        }));
        let (reader, closed) = {
            let mut readers = lock(&self.inner.readers);
            match readers.get(&key) {
                // another read created one meanwhile: use it, close ours
                Some(r) => (r.clone(), Some(fresh)),
                None => {
                    let evicted = readers.insert(key, fresh.clone()).map(|(_, r)| r);
                    (fresh, evicted)
                }
            }
        };
        close_off_runtime(closed.into_iter().collect()).await?;
        Ok(reader)
    }

    /// The range as the broker reports it.
    async fn watermarks(&self, topic: &str, partition: i32) -> LogResult<Watermarks> {
        let meta = self.inner.meta.clone();
        let t = topic.to_string();
        let timeout = self.timeout();
        blocking(move || {
            meta.fetch_watermarks(&t, partition, timeout)
                .map(|(log_start, high)| Watermarks { log_start, high })
                .map_err(|e| classify(&e, &Op::new("fetching offsets of").partition(&t, partition)))
        })
        .await?
    }

    /// The range, its high watermark corrected by reading the last batch where the broker's
    /// answer is only a lower bound (see [`crate::refine`]).
    pub(crate) async fn true_high(&self, topic: &str, partition: i32) -> LogResult<Watermarks> {
        let reported = self.watermarks(topic, partition).await?;
        let Some(probe) = refine::high_probe(reported) else {
            return Ok(reported);
        };
        let reader = self.reader(topic, partition).await?;
        let t = topic.to_string();
        let timeout = self.timeout();
        blocking(move || -> LogResult<Watermarks> {
            let mut guard = lock(&reader);
            let r = &mut *guard;
            position(r, &t, partition, probe)?;
            let deadline = Instant::now() + timeout;
            let mut read = Vec::new();
            loop {
                // Wait for the probe's batch; take what came with it without waiting more.
                let wait = if read.is_empty() {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    Duration::ZERO
                };
                match r.consumer.poll(wait) {
                    Some(Ok(m)) => {
                        read.push(m.offset());
                        r.next = m.offset() + 1;
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => {
                        let op = Op::new("reading")
                            .partition(&t, partition)
                            .offset(probe)
                            .range(reported);
                        return Err(classify(&e, &op));
                    }
                    None => break,
                }
            }
            let w = refine::refined_high(reported, read);
            r.known_high = r.known_high.max(w.high);
            Ok(w)
        })
        .await?
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
        let partitions = self.check_partition(topic, partition).await?;
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
        let op = |size: usize| {
            Op::new("producing to")
                .partition(topic, partition)
                .partitions(partitions)
                .record(size, limit)
        };
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
                        futures.push((f, r.size_bytes()));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        fr = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(classify(&e, &op(r.size_bytes()))),
                }
            }
        }
        let mut offsets = Vec::with_capacity(futures.len());
        for (f, size) in futures {
            match f.await {
                Ok(Ok(d)) => offsets.push(d.offset),
                Ok(Err((e, _))) => return Err(classify(&e, &op(size))),
                Err(_) => return Err(classify(&KafkaError::Canceled, &op(size))),
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
        let reader = self.reader(topic, partition).await?;
        let (next, known_high) = {
            let r = lock(&reader);
            (r.next, r.known_high)
        };
        // A read that does not continue the last one is checked against the log's range;
        // one at the known end asks the broker whether more has come.
        let checked: Option<Watermarks> = if next == offset && offset < known_high {
            None
        } else {
            let mut w = self.watermarks(topic, partition).await?;
            if offset > w.high {
                w = self.true_high(topic, partition).await?;
            }
            if !w.contains(offset) {
                return Err(LogError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    log_start: w.log_start,
                    high_watermark: w.high,
                });
            }
            Some(w)
        };
        let known = checked.map_or(known_high, |w| w.high);
        let t = topic.to_string();
        let request_timeout = self.timeout();
        let (records, high) = blocking(move || -> LogResult<(Vec<ConsumedRecord>, i64)> {
            let mut guard = lock(&reader);
            let r = &mut *guard;
            position(r, &t, partition, offset)?;
            r.known_high = r.known_high.max(known);
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
                        // Re-assign on the next read, wherever this one left the consumer.
                        r.next = -1;
                        // Out of range under a continuing read (retention, truncation): say
                        // what the range is now.
                        let range = checked.or_else(|| {
                            r.consumer
                                .fetch_watermarks(&t, partition, request_timeout)
                                .ok()
                                .map(|(log_start, high)| Watermarks { log_start, high })
                        });
                        let mut op = Op::new("reading").partition(&t, partition).offset(offset);
                        if let Some(w) = range {
                            op = op.range(w);
                        }
                        return Err(classify(&e, &op));
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
            log_start_offset: checked.map_or(0, |w| w.log_start.max(0)),
        })
    }

    async fn offset_for(&self, topic: &str, partition: i32, spec: OffsetSpec) -> LogResult<i64> {
        self.check_partition(topic, partition).await?;
        match spec {
            OffsetSpec::Earliest => Ok(self.watermarks(topic, partition).await?.log_start),
            OffsetSpec::Latest => Ok(self.true_high(topic, partition).await?.high),
            OffsetSpec::Timestamp(ts) => {
                let meta = self.inner.meta.clone();
                let t = topic.to_string();
                let timeout = self.timeout();
                let answer = blocking(move || -> LogResult<Option<i64>> {
                    let op = || Op::new("looking up by time").partition(&t, partition);
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition_offset(&t, partition, Offset::Offset(ts))
                        .map_err(|e| classify(&e, &op()))?;
                    let res = meta
                        .offsets_for_times(tpl, timeout)
                        .map_err(|e| classify(&e, &op()))?;
                    Ok(res.elements().first().and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    }))
                })
                .await??;
                let range = self.true_high(topic, partition).await?;
                let mut from = refine::timestamp_scan_start(answer, range);
                loop {
                    if from >= range.high {
                        return Ok(range.high);
                    }
                    let batch = self
                        .read(topic, partition, from, ReadLimits::default())
                        .await?;
                    let read = batch.records.iter().map(|r| (r.offset, r.record.timestamp));
                    match refine::timestamp_scan_step(ts, from, range, read) {
                        TimeScan::Found(o) | TimeScan::End(o) => return Ok(o),
                        TimeScan::ReadFrom(next) => from = next,
                    }
                }
            }
        }
    }

    async fn flush(&self) -> LogResult<()> {
        let producer = self.inner.producer.clone();
        let timeout = self.timeout();
        blocking(move || {
            rdkafka::producer::Producer::flush(&producer, timeout)
                .map_err(|e| classify(&e, &Op::new("flushing the producer")))
        })
        .await?
    }
}
