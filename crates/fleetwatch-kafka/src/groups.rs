//! Consumer groups: Kafka's own (a consumer with `group.id`, manual commits), committed
//! offsets and group descriptions.
//!
//! ## Generations
//!
//! A member's [`Assignment::generation`] counts the assignments its client received (one per
//! rebalance it took part in): it grows when the group rebalances, as the contract asks, but
//! it is not the coordinator's generation id. librdkafka keeps that id only inside the
//! member's `rd_kafka_consumer_group_metadata_t` (reachable through FFI only, and this
//! workspace denies `unsafe`), and the DescribeGroups answer of the Kafka protocol carries no
//! generation at all — so [`GroupDescription::generation`] is 0 ("unknown to the backend").
//!
//! ## Committed offsets
//!
//! librdkafka fetches a group's committed offsets only through a client configured with that
//! `group.id`. One such client per group is kept (created on first use, never joining the
//! group), at most `max_offset_clients`, the least recently asked one closed past the cap.
//! Each costs one librdkafka instance's threads (a main thread, an internal one and one per
//! broker it connects to, so about 2 + brokers) and a connection to the group coordinator.

use crate::backend::{KafkaLog, blocking, close_off_runtime, lock};
use crate::data::to_consumed;
use crate::error::{Op, classify};
use async_trait::async_trait;
use fleetwatch_core::{
    Assignment, ConsumedRecord, GroupConsumer, GroupDescription, GroupMemberDescription,
    GroupOffset, JoinOptions, LogError, LogGroups, LogResult, OffsetCommit, PartitionBatch,
    ReadLimits, TopicPartition, validate_group_id,
};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// A client asking for one group's committed offsets.
pub(crate) type OffsetsClient = Arc<BaseConsumer>;

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
    group: String,
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

impl KafkaLog {
    /// The committed-offsets client of `group`, created on first use (see the module doc).
    async fn offsets_client(&self, group: &str) -> LogResult<OffsetsClient> {
        if let Some(c) = lock(&self.inner.offsets_clients).get(group) {
            return Ok(c.clone());
        }
        let fresh: OffsetsClient = Arc::new(
            self.inner
                .config
                .offsets_config(group)
                .create()
                .map_err(|e| classify(&e, &Op::new("creating an offsets client").group(group)))?,
        );
        let (client, closed) = {
            let mut clients = lock(&self.inner.offsets_clients);
            match clients.get(group) {
                Some(c) => (c.clone(), Some(fresh)),
                None => {
                    let evicted = clients
                        .insert(group.to_string(), fresh.clone())
                        .map(|(_, c)| c);
                    (fresh, evicted)
                }
            }
        };
        close_off_runtime(closed.into_iter().collect()).await?;
        Ok(client)
    }
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
        let seq = self.inner.member_seq.fetch_add(1, Ordering::Relaxed);
        let op = Op::new("joining").group(&options.group);
        let consumer: BaseConsumer<GroupContext> = self
            .inner
            .config
            .member_config(&options)
            .create_with_context(GroupContext {
                generation: AtomicI32::new(0),
            })
            .map_err(|e| classify(&e, &op))?;
        let topics: Vec<&str> = options.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| classify(&e, &op))?;
        Ok(Box::new(KafkaMember {
            consumer: Arc::new(consumer),
            group: options.group.clone(),
            member_id: format!("{}-{seq}", options.client_id),
            timeout: self.timeout(),
            positions: BTreeMap::new(),
            pending: Vec::new(),
        }))
    }

    async fn committed_offsets(&self, group: &str) -> LogResult<Vec<OffsetCommit>> {
        validate_group_id(group)?;
        let consumer = self.offsets_client(group).await?;
        let timeout = self.timeout();
        let g = group.to_string();
        blocking(move || -> LogResult<Vec<OffsetCommit>> {
            // Serve the client's queued events (errors, logs): nothing else polls it.
            while consumer.poll(Duration::ZERO).is_some() {}
            let md = consumer
                .fetch_metadata(None, timeout)
                .map_err(|e| classify(&e, &Op::new("listing topics").group(&g)))?;
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
                .map_err(|e| classify(&e, &Op::new("fetching committed offsets").group(&g)))?;
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
                .map_err(|e| classify(&e, &Op::new("listing groups")))
        })
        .await??;
        names.sort();
        Ok(names)
    }

    /// Members and their assignments as the coordinator reports them, committed offsets and
    /// (refined) high watermarks. The generation is 0: see the module doc.
    async fn describe_group(&self, group: &str) -> LogResult<GroupDescription> {
        let meta = self.inner.meta.clone();
        let timeout = self.timeout();
        let g = group.to_string();
        let members = blocking(move || -> LogResult<Vec<GroupMemberDescription>> {
            let gl = meta
                .fetch_group_list(Some(&g), timeout)
                .map_err(|e| classify(&e, &Op::new("describing").group(&g)))?;
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
            let w = self
                .true_high(&c.partition.topic, c.partition.partition)
                .await?;
            offsets.push(GroupOffset {
                partition: c.partition,
                committed: c.offset,
                metadata: c.metadata,
                high_watermark: w.high,
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
    fn generation(&self) -> i32 {
        self.consumer.context().generation.load(Ordering::SeqCst)
    }

    fn op<'a>(&'a self, what: &'a str) -> Op<'a> {
        Op::new(what)
            .group(&self.group)
            .member(&self.member_id, self.generation())
    }

    /// Polls once (serving rebalance callbacks) and keeps any record for the next `poll`.
    async fn serve_callbacks(&mut self) -> LogResult<()> {
        let consumer = self.consumer.clone();
        let got = blocking(move || match consumer.poll(Duration::ZERO) {
            Some(Ok(m)) => Ok(Some((m.topic().to_string(), to_consumed(&m)))),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        })
        .await?
        .map_err(|e| classify(&e, &self.op("polling")))?;
        if let Some(rec) = got {
            self.pending.push(rec);
        }
        Ok(())
    }

    fn current_assignment(&self) -> LogResult<Vec<TopicPartition>> {
        let tpl = self
            .consumer
            .assignment()
            .map_err(|e| classify(&e, &self.op("reading the assignment")))?;
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
            generation: self.generation(),
            partitions: self.current_assignment()?,
        })
    }

    async fn poll(&mut self, limits: ReadLimits) -> LogResult<Vec<PartitionBatch>> {
        let consumer = self.consumer.clone();
        let mut got = std::mem::take(&mut self.pending);
        let already = got.len();
        let polled = blocking(
            move || -> Result<Vec<(String, ConsumedRecord)>, KafkaError> {
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
                        Some(Err(e)) => return Err(e),
                        None => break,
                    }
                }
                Ok(out)
            },
        )
        .await?;
        let polled = match polled {
            Ok(p) => p,
            Err(e) => {
                // keep what was taken for the next poll
                self.pending = got;
                return Err(classify(&e, &self.op("polling")));
            }
        };
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
                .map_err(|e| classify(&e, &self.op("building a commit")))?;
            if let (Some(meta), Some(mut elem)) =
                (&c.metadata, tpl.find_partition(&tp.topic, tp.partition))
            {
                elem.set_metadata(meta.clone());
            }
        }
        let consumer = self.consumer.clone();
        blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await?
            .map_err(|e| classify(&e, &self.op("committing offsets")))
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
        // ("erroneous state"), or a fetch started meanwhile supersedes the seek ("Local:
        // Outdated"); keep polling (stashing what arrives) until it can seek.
        let stashed = blocking(
            move || -> Result<Vec<(String, ConsumedRecord)>, (KafkaError, bool)> {
                let deadline = Instant::now() + timeout;
                let mut stash = Vec::new();
                loop {
                    match consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), timeout) {
                        Ok(()) => return Ok(stash),
                        Err(KafkaError::Seek(e))
                            if e.contains("Erroneous state")
                                || e.contains("State")
                                || e.contains("Outdated") =>
                        {
                            if Instant::now() > deadline {
                                return Err((KafkaError::Seek(e), true));
                            }
                            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                                stash.push((m.topic().to_string(), to_consumed(&m)));
                            }
                        }
                        Err(e) => return Err((e, false)),
                    }
                }
            },
        )
        .await?;
        let stashed = match stashed {
            Ok(s) => s,
            Err((_, true)) => {
                return Err(LogError::Timeout(format!(
                    "seeking {}-{} to {offset}: the consumer never reached a fetch position",
                    partition.topic, partition.partition
                )));
            }
            Err((e, false)) => {
                let op = self
                    .op("seeking")
                    .partition(&partition.topic, partition.partition)
                    .offset(offset);
                return Err(classify(&e, &op));
            }
        };
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
