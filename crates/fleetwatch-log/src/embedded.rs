//! [`EmbeddedLog`]: topics of partitions in a directory, implementing the `Log` traits.

use crate::coordinator::Coordinator;
use crate::io::{FileOpener, OsFiles, sync_dir, write_atomic};
use crate::partition::{Partition, PartitionOptions, RecoveryCut, RecoveryStats};
use async_trait::async_trait;
use bytes::Bytes;
use fleetwatch_core::{
    AppendAck, Assignment, GroupConsumer, GroupDescription, GroupOffset, INTERNAL_OFFSETS_TOPIC,
    JoinOptions, LogAdmin, LogData, LogError, LogGroups, LogHealth, LogResult, OffsetCommit,
    OffsetSpec, PartitionBatch, PartitionInfo, ReadBatch, ReadLimits, Record, TopicConfig,
    TopicDescription, TopicPartition, validate_group_id, validate_topic_name,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// When appends are synced to disk (see the crate docs for what an ack means under each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Ack after fdatasync, with group commit.
    Always,
    /// Ack after write(2); fdatasync every `fsync_interval_ms`.
    #[default]
    Interval,
    /// Ack after write(2); never fdatasync (the OS flushes).
    Never,
}

/// Configuration of the embedded log (`[embedded]` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Directory holding all data.
    pub data_dir: PathBuf,
    /// Fsync policy.
    pub fsync: FsyncPolicy,
    /// Sync period under `interval`.
    pub fsync_interval_ms: u64,
    /// Bytes between entries of the sparse indexes.
    pub index_interval_bytes: u64,
    /// How often retention is enforced.
    pub retention_check_interval_ms: u64,
    /// Bytes read from a segment file at a time.
    pub read_chunk_bytes: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            data_dir: PathBuf::from("fleetwatch-data"),
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 50,
            index_interval_bytes: 4096,
            retention_check_interval_ms: 30_000,
            read_chunk_bytes: 1 << 20,
        }
    }
}

impl EmbeddedConfig {
    /// Default settings on `data_dir`.
    pub fn at(data_dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            ..Default::default()
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> LogResult<()> {
        if self.fsync_interval_ms == 0 {
            return Err(LogError::invalid(
                "embedded.fsync_interval_ms",
                "must be at least 1",
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err(LogError::invalid(
                "embedded.index_interval_bytes",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Opens the log (recovering it) with plain files.
    pub fn build(&self) -> LogResult<EmbeddedLog> {
        EmbeddedLog::open_with(self.clone(), Arc::new(OsFiles))
    }
}

struct Topic {
    config: TopicConfig,
    partitions: Vec<Arc<Partition>>,
    dir: PathBuf,
    /// Bumped whenever one of its partitions' high watermark moves (wakes the group
    /// consumers reading this topic, and only them). Dropped with the topic, which wakes
    /// them too.
    appended: watch::Sender<u64>,
}

impl Topic {
    fn new(config: TopicConfig, partitions: Vec<Arc<Partition>>, dir: PathBuf) -> Self {
        Topic {
            config,
            partitions,
            dir,
            appended: watch::channel(0).0,
        }
    }
}

struct Inner {
    /// Held for the life of the log: one process per data directory.
    _lock: std::fs::File,
    config: EmbeddedConfig,
    opener: Arc<dyn FileOpener>,
    popts: Arc<PartitionOptions>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises topic creation and deletion.
    admin: Mutex<()>,
    coordinator: Coordinator,
    committed: Mutex<Committed>,
    cuts: Vec<RecoveryCut>,
    stats: RecoveryStats,
    deleted_seq: std::sync::atomic::AtomicU64,
}

/// The embedded log. Cheap to clone (shared state).
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

fn topics_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("topics")
}

fn marker(data_dir: &Path) -> PathBuf {
    data_dir.join("clean-shutdown")
}

#[derive(Serialize, Deserialize)]
struct OffsetKey {
    group: String,
    topic: String,
    partition: i32,
}

/// Committed offset and metadata per group and partition.
type Committed = HashMap<String, BTreeMap<TopicPartition, (i64, Option<String>)>>;

#[derive(Serialize, Deserialize)]
struct OffsetValue {
    offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
}

impl EmbeddedLog {
    /// Opens the log at `config.data_dir` with a custom file opener (tests inject faults).
    pub fn open_with(config: EmbeddedConfig, opener: Arc<dyn FileOpener>) -> LogResult<Self> {
        config.validate()?;
        let started = Instant::now();
        let dir = topics_dir(&config.data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = config.data_dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| LogError::io(format!("opening {}", lock_path.display()), e))?;
        if let Err(e) = lock.try_lock() {
            return Err(LogError::invalid(
                "data directory",
                format!(
                    "{} is in use by another fleetwatch process ({e}); stop it, or go through its HTTP API",
                    config.data_dir.display()
                ),
            ));
        }
        let clean_marker = marker(&config.data_dir);
        let clean = clean_marker.exists();
        if clean {
            std::fs::remove_file(&clean_marker)
                .map_err(|e| LogError::io(format!("removing {}", clean_marker.display()), e))?;
            sync_dir(&config.data_dir)
                .map_err(|e| LogError::io(format!("syncing {}", config.data_dir.display()), e))?;
        } else if std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        {
            tracing::info!(dir = %config.data_dir.display(), "no clean-shutdown marker: checking every segment");
        }
        let popts = Arc::new(PartitionOptions {
            policy: config.fsync,
            index_interval: config.index_interval_bytes,
            read_chunk: config.read_chunk_bytes,
        });
        let mut topics = BTreeMap::new();
        let mut cuts = Vec::new();
        let mut stats = RecoveryStats {
            unclean: !clean,
            ..Default::default()
        };
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let path = entry.path();
            if name.contains('~') {
                // Left over from an interrupted create or delete.
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            if validate_topic_name(&name).is_err() {
                continue;
            }
            let meta = path.join("topic.json");
            let text = std::fs::read_to_string(&meta)
                .map_err(|e| LogError::io(format!("reading {}", meta.display()), e))?;
            let config: TopicConfig =
                serde_json::from_str(&text).map_err(|e| LogError::Corrupt {
                    location: meta.display().to_string(),
                    reason: e.to_string(),
                })?;
            let mut partitions = Vec::new();
            for p in 0..config.partitions {
                partitions.push(Arc::new(Partition::open(
                    Arc::from(name.as_str()),
                    p,
                    path.join(p.to_string()),
                    opener.clone(),
                    popts.clone(),
                    !clean,
                    &mut cuts,
                    &mut stats,
                )?));
            }
            topics.insert(name, Arc::new(Topic::new(config, partitions, path)));
        }
        stats.seconds = started.elapsed().as_secs_f64();
        for cut in &cuts {
            tracing::warn!(topic = %cut.topic, partition = cut.partition, segment = %cut.segment,
                position = cut.position, bytes_dropped = cut.bytes_dropped, reason = %cut.reason,
                "recovery cut a torn tail");
        }
        let log = EmbeddedLog {
            inner: Arc::new(Inner {
                _lock: lock,
                config,
                opener,
                popts,
                topics: RwLock::new(topics),
                admin: Mutex::new(()),
                coordinator: Coordinator::default(),
                committed: Mutex::new(HashMap::new()),
                cuts,
                stats,
                deleted_seq: std::sync::atomic::AtomicU64::new(0),
            }),
        };
        log.create_topic_sync(INTERNAL_OFFSETS_TOPIC, TopicConfig::internal(1), true)?;
        log.load_committed()?;
        Ok(log)
    }

    /// The torn tails recovery cut at start-up (empty after a clean shutdown or undamaged
    /// files). Damage elsewhere is never cut: see [`LogAdmin::health`].
    pub fn recovery_cuts(&self) -> &[RecoveryCut] {
        &self.inner.cuts
    }

    /// What start-up recovery checked and how long opening took.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.inner.stats
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &EmbeddedConfig {
        &self.inner.config
    }

    fn topics(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Topic>>> {
        self.inner.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn topic(&self, name: &str) -> LogResult<Arc<Topic>> {
        self.topics()
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))
    }

    fn partition(&self, topic: &str, partition: i32) -> LogResult<(Arc<Topic>, Arc<Partition>)> {
        let t = self.topic(topic)?;
        let p = usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
            .cloned()
            .ok_or_else(|| LogError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                partitions: t.config.partitions,
            })?;
        Ok((t, p))
    }

    fn partitions_of(&self) -> impl Fn(&str) -> i32 + '_ {
        move |t: &str| self.topics().get(t).map_or(0, |t| t.config.partitions)
    }

    fn create_topic_sync(&self, name: &str, config: TopicConfig, exists_ok: bool) -> LogResult<()> {
        validate_topic_name(name)?;
        config.validate()?;
        let _admin = self.inner.admin.lock().unwrap_or_else(|p| p.into_inner());
        if self.topics().contains_key(name) {
            return if exists_ok {
                Ok(())
            } else {
                Err(LogError::TopicExists(name.to_string()))
            };
        }
        let root = topics_dir(&self.inner.config.data_dir);
        // Temporary names do not grow with the topic name: a 249-character topic (Kafka's
        // longest) must fit the file system's 255-byte names in every state.
        let seq = self
            .inner
            .deleted_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = root.join(format!("~creating-{seq}"));
        let dir = root.join(name);
        let io = |what: &str, p: &Path| {
            let ctx = format!("{what} {}", p.display());
            move |e| LogError::io(ctx, e)
        };
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
        let json = serde_json::to_vec_pretty(&config)
            .map_err(|e| LogError::internal(format!("encoding topic config: {e}")))?;
        write_atomic(&tmp.join("topic.json"), &json).map_err(io("writing config in", &tmp))?;
        std::fs::rename(&tmp, &dir).map_err(io("renaming to", &dir))?;
        sync_dir(&root).map_err(io("syncing", &root))?;
        let mut cuts = Vec::new();
        let mut stats = RecoveryStats::default();
        let partitions = (0..config.partitions)
            .map(|p| {
                Partition::open(
                    Arc::from(name),
                    p,
                    dir.join(p.to_string()),
                    self.inner.opener.clone(),
                    self.inner.popts.clone(),
                    false,
                    &mut cuts,
                    &mut stats,
                )
                .map(Arc::new)
            })
            .collect::<LogResult<Vec<_>>>()?;
        self.inner
            .topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                name.to_string(),
                Arc::new(Topic::new(config, partitions, dir)),
            );
        Ok(())
    }

    fn load_committed(&self) -> LogResult<()> {
        let (_, p) = self.partition(INTERNAL_OFFSETS_TOPIC, 0)?;
        let mut offset = p.watermarks().log_start;
        let mut map: HashMap<String, BTreeMap<TopicPartition, (i64, Option<String>)>> =
            HashMap::new();
        loop {
            let batch = p.read_now(
                offset,
                &ReadLimits {
                    max_records: 10_000,
                    max_bytes: 4 << 20,
                    max_wait: Duration::ZERO,
                },
            )?;
            if batch.records.is_empty() {
                break;
            }
            offset = batch.next_offset(offset);
            for r in batch.records {
                let key: Option<OffsetKey> = r
                    .record
                    .key
                    .as_deref()
                    .and_then(|k| serde_json::from_slice(k).ok());
                let value: Option<OffsetValue> = r
                    .record
                    .value
                    .as_deref()
                    .and_then(|v| serde_json::from_slice(v).ok());
                if let (Some(k), Some(v)) = (key, value) {
                    map.entry(k.group).or_default().insert(
                        TopicPartition::new(k.topic, k.partition),
                        (v.offset, v.metadata),
                    );
                }
            }
        }
        *self
            .inner
            .committed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    async fn store_commits(&self, group: &str, offsets: &[OffsetCommit]) -> LogResult<()> {
        // The last entry for a partition wins, and only it is written.
        let mut last: BTreeMap<&TopicPartition, &OffsetCommit> = BTreeMap::new();
        for c in offsets {
            last.insert(&c.partition, c);
        }
        let mut records = Vec::with_capacity(last.len());
        for c in last.values() {
            let tp = &c.partition;
            self.partition(&tp.topic, tp.partition)?;
            let key = serde_json::to_vec(&OffsetKey {
                group: group.to_string(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            })
            .map_err(LogError::internal)?;
            let value = serde_json::to_vec(&OffsetValue {
                offset: c.offset,
                metadata: c.metadata.clone(),
            })
            .map_err(LogError::internal)?;
            records.push(Record::new(
                Some(Bytes::from(key)),
                Some(Bytes::from(value)),
            ));
        }
        let (t, p) = self.partition(INTERNAL_OFFSETS_TOPIC, 0)?;
        p.append(&records, &t.config).await?;
        t.appended.send_modify(|n| *n = n.wrapping_add(1));
        let mut committed = self
            .inner
            .committed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let g = committed.entry(group.to_string()).or_default();
        for c in last.values() {
            g.insert(c.partition.clone(), (c.offset, c.metadata.clone()));
        }
        Ok(())
    }

    /// One receiver per distinct topic among `partitions`, marked seen.
    fn topic_watches(&self, partitions: &[TopicPartition]) -> Vec<watch::Receiver<u64>> {
        let topics = self.topics();
        let mut names: Vec<&str> = partitions.iter().map(|tp| tp.topic.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|n| topics.get(n))
            .map(|t| {
                let mut rx = t.appended.subscribe();
                rx.borrow_and_update();
                rx
            })
            .collect()
    }

    /// Syncs every partition with unsynced data (the `interval` policy's flusher).
    pub async fn sync_all(&self) -> LogResult<()> {
        let parts: Vec<Arc<Partition>> = self
            .topics()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect();
        let mut first_err = None;
        for p in parts {
            if let Err(e) = p.flush().await {
                tracing::error!(topic = %p.topic, partition = p.id, error = %e, "fsync failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Deletes segments past every topic's retention; returns bytes freed.
    pub fn enforce_retention(&self, now_ms: i64) -> u64 {
        let topics: Vec<Arc<Topic>> = self.topics().values().cloned().collect();
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .map(|(t, p)| p.enforce_retention(&t.config, now_ms))
            .sum()
    }

    /// Runs the periodic work — interval fsync and retention — until `cancel` fires. The
    /// caller spawns it and owns its shutdown.
    ///
    /// Returns an error — and the caller (`serve`'s supervisor) must then stop the process —
    /// when an interval fsync fails: acknowledged records might not be on disk, and carrying
    /// on would keep acknowledging writes that are not synced. A failed retention pass is
    /// done again at the next check.
    pub async fn run_maintenance(&self, cancel: CancellationToken) -> LogResult<()> {
        let sync_every = Duration::from_millis(self.inner.config.fsync_interval_ms);
        let retention_every = Duration::from_millis(self.inner.config.retention_check_interval_ms);
        let mut last_retention = Instant::now();
        let mut tick = tokio::time::interval(if self.inner.config.fsync == FsyncPolicy::Interval {
            sync_every
        } else {
            retention_every.min(Duration::from_secs(1))
        });
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            if self.inner.config.fsync == FsyncPolicy::Interval {
                self.sync_all().await?;
            }
            if last_retention.elapsed() >= retention_every {
                last_retention = Instant::now();
                let log = self.clone();
                tokio::task::spawn_blocking(move || {
                    log.enforce_retention(fleetwatch_core::now_ms())
                })
                .await
                .map_err(|e| LogError::internal(format!("retention task failed: {e}")))?;
            }
        }
        Ok(())
    }

    /// Syncs everything, writes index files and the clean-shutdown marker. The log stays
    /// usable, but a later crash is then recovered as unclean only if more is appended…
    /// so call it last.
    pub async fn close(&self) -> LogResult<()> {
        self.sync_all().await?;
        let parts: Vec<Arc<Partition>> = self
            .topics()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect();
        let m = marker(&self.inner.config.data_dir);
        tokio::task::spawn_blocking(move || {
            for p in parts {
                p.close()?;
            }
            write_atomic(&m, b"clean\n")
                .map_err(|e| LogError::io(format!("writing {}", m.display()), e))
        })
        .await
        .map_err(|e| LogError::internal(format!("close task failed: {e}")))?
    }

    /// Bytes on disk per topic-partition.
    pub fn sizes(&self) -> Vec<(TopicPartition, u64, usize)> {
        self.topics()
            .iter()
            .flat_map(|(name, t)| {
                t.partitions.iter().map(move |p| {
                    (
                        TopicPartition::new(name.as_str(), p.id),
                        p.size_bytes(),
                        p.segment_count(),
                    )
                })
            })
            .collect()
    }
}

#[async_trait]
impl LogAdmin for EmbeddedLog {
    fn backend_name(&self) -> &'static str {
        "embedded"
    }

    fn health(&self) -> LogHealth {
        let degraded = self
            .topics()
            .values()
            .flat_map(|t| t.partitions.iter().flat_map(|p| p.degraded()))
            .collect();
        let notes = self
            .inner
            .cuts
            .iter()
            .map(|c| {
                format!(
                    "recovery cut a torn tail of {}-{}: {} at byte {} ({} bytes dropped): {}",
                    c.topic, c.partition, c.segment, c.position, c.bytes_dropped, c.reason
                )
            })
            .collect();
        LogHealth { degraded, notes }
    }

    async fn create_topic(&self, name: &str, config: TopicConfig) -> LogResult<()> {
        // Directory creation, fsyncs and renames: off the async threads.
        let (log, name) = (self.clone(), name.to_string());
        tokio::task::spawn_blocking(move || log.create_topic_sync(&name, config, false))
            .await
            .map_err(|e| LogError::internal(format!("create-topic task failed: {e}")))?
    }

    async fn partition_count(&self, name: &str) -> LogResult<i32> {
        Ok(self.topic(name)?.config.partitions)
    }

    async fn list_topics(&self) -> LogResult<Vec<String>> {
        Ok(self.topics().keys().cloned().collect())
    }

    async fn describe_topic(&self, name: &str) -> LogResult<TopicDescription> {
        let t = self.topic(name)?;
        Ok(TopicDescription {
            name: name.to_string(),
            config: t.config.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let w = p.watermarks();
                    PartitionInfo {
                        partition: p.id,
                        log_start_offset: w.log_start,
                        high_watermark: w.high,
                    }
                })
                .collect(),
        })
    }

    async fn delete_topic(&self, name: &str) -> LogResult<()> {
        if name == INTERNAL_OFFSETS_TOPIC {
            return Err(LogError::invalid(
                "topic",
                format!("{name} is internal and cannot be deleted"),
            ));
        }
        // Renames, fsyncs and the removal run off the async threads.
        let (log, name) = (self.clone(), name.to_string());
        let grave = tokio::task::spawn_blocking(move || {
            let _admin = log.inner.admin.lock().unwrap_or_else(|p| p.into_inner());
            let t = log
                .inner
                .topics
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name)
                .ok_or_else(|| LogError::UnknownTopic(name.clone()))?;
            let seq = log
                .inner
                .deleted_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let grave = t.dir.with_file_name(format!("~deleted-{seq}"));
            std::fs::rename(&t.dir, &grave)
                .map_err(|e| LogError::io(format!("deleting {}", t.dir.display()), e))?;
            let root = topics_dir(&log.inner.config.data_dir);
            sync_dir(&root).map_err(|e| LogError::io(format!("syncing {}", root.display()), e))?;
            // Dropping the topic (here, its last strong reference but readers') closes its
            // watch: group consumers waiting on it wake up.
            drop(t);
            Ok::<_, LogError>(grave)
        })
        .await
        .map_err(|e| LogError::internal(format!("delete-topic task failed: {e}")))??;
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(grave)).await;
        Ok(())
    }
}

#[async_trait]
impl LogData for EmbeddedLog {
    async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> LogResult<AppendAck> {
        let (t, p) = self.partition(topic, partition)?;
        let offsets = p.append(records, &t.config).await?;
        t.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(AppendAck { partition, offsets })
    }

    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: ReadLimits,
    ) -> LogResult<ReadBatch> {
        let (_, p) = self.partition(topic, partition)?;
        let mut rx = p.watch_hw();
        let deadline = tokio::time::Instant::now() + limits.max_wait;
        loop {
            rx.borrow_and_update();
            let batch = p.read_async(offset, &limits).await?;
            if !batch.records.is_empty() || limits.max_wait.is_zero() {
                return Ok(batch);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // Timed out, or the topic was deleted under us.
                Ok(Err(_)) | Err(_) => return Ok(batch),
            }
        }
    }

    async fn offset_for(&self, topic: &str, partition: i32, spec: OffsetSpec) -> LogResult<i64> {
        let (_, p) = self.partition(topic, partition)?;
        let w = p.watermarks();
        match spec {
            OffsetSpec::Earliest => Ok(w.log_start),
            OffsetSpec::Latest => Ok(w.high),
            OffsetSpec::Timestamp(ts) => p.offset_for_timestamp(ts),
        }
    }

    async fn flush(&self) -> LogResult<()> {
        self.sync_all().await
    }
}

#[async_trait]
impl LogGroups for EmbeddedLog {
    async fn join_group(&self, options: JoinOptions) -> LogResult<Box<dyn GroupConsumer>> {
        validate_group_id(&options.group)?;
        if options.topics.is_empty() {
            return Err(LogError::invalid("subscription", "no topics given"));
        }
        for t in &options.topics {
            self.topic(t)?;
        }
        let member_id = self.inner.coordinator.join(&options, &self.partitions_of());
        Ok(Box::new(EmbeddedMember {
            log: self.clone(),
            options,
            member_id,
            generation: -1,
            assignment: Vec::new(),
            positions: BTreeMap::new(),
            next_start: 0,
        }))
    }

    async fn committed_offsets(&self, group: &str) -> LogResult<Vec<OffsetCommit>> {
        let committed = self
            .inner
            .committed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(committed
            .get(group)
            .map(|m| {
                m.iter()
                    .map(|(tp, (o, meta))| OffsetCommit {
                        partition: tp.clone(),
                        offset: *o,
                        metadata: meta.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn list_groups(&self) -> LogResult<Vec<String>> {
        let mut ids = self.inner.coordinator.group_ids();
        ids.extend(
            self.inner
                .committed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned(),
        );
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn describe_group(&self, group: &str) -> LogResult<GroupDescription> {
        let (generation, members) = self
            .inner
            .coordinator
            .describe(group, &self.partitions_of());
        let committed = self.committed_offsets(group).await?;
        let offsets = committed
            .into_iter()
            .filter_map(|c| {
                let (_, p) = self
                    .partition(&c.partition.topic, c.partition.partition)
                    .ok()?;
                Some(GroupOffset {
                    high_watermark: p.watermarks().high,
                    partition: c.partition,
                    committed: c.offset,
                    metadata: c.metadata,
                })
            })
            .collect();
        Ok(GroupDescription {
            group: group.to_string(),
            generation,
            members,
            offsets,
        })
    }
}

/// Resolves when any of the receivers sees a change (or its topic is dropped); never when
/// there are none.
async fn any_changed(rxs: &mut [watch::Receiver<u64>]) {
    use std::future::Future;
    use std::pin::Pin;
    if rxs.is_empty() {
        return std::future::pending().await;
    }
    let mut waits: Vec<Pin<Box<dyn Future<Output = _> + Send + '_>>> = rxs
        .iter_mut()
        .map(|rx| Box::pin(rx.changed()) as Pin<Box<dyn Future<Output = _> + Send + '_>>)
        .collect();
    std::future::poll_fn(|cx| {
        for w in waits.iter_mut() {
            if w.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

struct EmbeddedMember {
    log: EmbeddedLog,
    options: JoinOptions,
    member_id: String,
    generation: i32,
    assignment: Vec<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    /// Where the next poll starts among the owned partitions (round-robin, so that a busy
    /// partition cannot starve the others).
    next_start: usize,
}

impl EmbeddedMember {
    /// Heartbeat; follows a new generation; rejoins if the coordinator dropped us.
    async fn refresh(&mut self) -> LogResult<()> {
        let coordinator = &self.log.inner.coordinator;
        let pof = self.log.partitions_of();
        let (generation, parts) = match coordinator.heartbeat(
            &self.options.group,
            &self.member_id,
            &pof,
        ) {
            Ok(x) => x,
            Err(LogError::UnknownMember { .. }) => {
                tracing::info!(group = %self.options.group, member = %self.member_id, "rejoining after eviction");
                self.member_id = coordinator.join(&self.options, &pof);
                coordinator.heartbeat(&self.options.group, &self.member_id, &pof)?
            }
            Err(e) => return Err(e),
        };
        drop(pof);
        if generation != self.generation {
            self.generation = generation;
            self.positions.retain(|tp, _| parts.contains(tp));
            let committed: HashMap<TopicPartition, i64> = self
                .log
                .committed_offsets(&self.options.group)
                .await?
                .into_iter()
                .map(|c| (c.partition, c.offset))
                .collect();
            for tp in &parts {
                if !self.positions.contains_key(tp) {
                    let pos = match committed.get(tp) {
                        Some(o) => *o,
                        None => {
                            self.log
                                .offset_for(&tp.topic, tp.partition, self.options.reset)
                                .await?
                        }
                    };
                    self.positions.insert(tp.clone(), pos);
                }
            }
            self.assignment = parts;
        }
        Ok(())
    }
}

#[async_trait]
impl GroupConsumer for EmbeddedMember {
    fn member_id(&self) -> String {
        self.member_id.clone()
    }

    async fn assignment(&mut self) -> LogResult<Assignment> {
        self.refresh().await?;
        Ok(Assignment {
            generation: self.generation,
            partitions: self.assignment.clone(),
        })
    }

    async fn poll(&mut self, limits: ReadLimits) -> LogResult<Vec<PartitionBatch>> {
        let deadline = tokio::time::Instant::now() + limits.max_wait;
        let beat = self.options.session_timeout / 3;
        loop {
            self.refresh().await?;
            // Subscribe before reading, so that an append in between is not missed; only
            // to the topics this member reads.
            let mut rxs = self.log.topic_watches(&self.assignment);
            let mut out = Vec::new();
            let mut damaged: Option<LogError> = None;
            let mut budget = limits.max_records;
            let n = self.assignment.len();
            let start = self.next_start % n.max(1);
            self.next_start = self.next_start.wrapping_add(1);
            let order: Vec<TopicPartition> = self
                .assignment
                .iter()
                .cycle()
                .skip(start)
                .take(n)
                .cloned()
                .collect();
            for tp in order {
                if budget == 0 {
                    break;
                }
                let Some(pos) = self.positions.get(&tp).copied() else {
                    continue;
                };
                let lim = ReadLimits {
                    max_records: budget,
                    max_wait: Duration::ZERO,
                    ..limits
                };
                let batch = match self.log.read(&tp.topic, tp.partition, pos, lim).await {
                    Ok(b) => b,
                    Err(LogError::OffsetOutOfRange {
                        log_start,
                        high_watermark,
                        ..
                    }) => {
                        let reset =
                            if self.options.reset == OffsetSpec::Latest || pos > high_watermark {
                                high_watermark
                            } else {
                                log_start
                            };
                        tracing::warn!(group = %self.options.group, topic = %tp.topic, partition = tp.partition,
                            from = pos, to = reset, "position out of range; reset");
                        self.positions.insert(tp.clone(), reset);
                        continue;
                    }
                    // Damage in one partition must not stop the others: serve them, and
                    // report the damage only when there is nothing else to return.
                    Err(e @ LogError::Corrupt { .. }) => {
                        tracing::warn!(group = %self.options.group, topic = %tp.topic, partition = tp.partition,
                            position = pos, error = %e, "damaged data; seek past it to go on");
                        damaged.get_or_insert(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if let Some(last) = batch.records.last() {
                    self.positions.insert(tp.clone(), last.offset + 1);
                    budget -= batch.records.len().min(budget);
                    out.push(PartitionBatch {
                        topic: tp.topic.clone(),
                        records: batch.records,
                    });
                }
            }
            let now = tokio::time::Instant::now();
            if out.is_empty()
                && let Some(e) = damaged
            {
                return Err(e);
            }
            if !out.is_empty() || now >= deadline {
                return Ok(out);
            }
            let wake = deadline.min(now + beat);
            let _ = tokio::time::timeout_at(wake, any_changed(&mut rxs)).await;
        }
    }

    async fn commit(&mut self, offsets: &[OffsetCommit]) -> LogResult<()> {
        self.log.inner.coordinator.check_generation(
            &self.options.group,
            &self.member_id,
            self.generation,
        )?;
        self.log.store_commits(&self.options.group, offsets).await
    }

    async fn seek(&mut self, partition: &TopicPartition, offset: i64) -> LogResult<()> {
        self.refresh().await?;
        if !self.assignment.contains(partition) {
            return Err(LogError::invalid(
                "seek",
                format!(
                    "{}-{} is not assigned to member {} of group {}",
                    partition.topic, partition.partition, self.member_id, self.options.group
                ),
            ));
        }
        self.positions.insert(partition.clone(), offset);
        Ok(())
    }

    async fn commit_position(&mut self) -> LogResult<()> {
        let offsets: Vec<OffsetCommit> = self
            .positions
            .iter()
            .map(|(tp, o)| OffsetCommit::new(tp.clone(), *o))
            .collect();
        self.commit(&offsets).await
    }

    async fn leave(self: Box<Self>) -> LogResult<()> {
        let pof = self.log.partitions_of();
        self.log
            .inner
            .coordinator
            .leave(&self.options.group, &self.member_id, &pof);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn receivers(log: &EmbeddedLog, topic: &str) -> usize {
        log.topic(topic).unwrap().appended.receiver_count()
    }

    /// A group poll waits only on the topics it reads: appends to other topics do not wake
    /// it, appends to any of its partitions do (no sleep loop).
    #[tokio::test]
    async fn group_polls_are_woken_only_by_their_own_topics() {
        let dir = tempfile::tempdir().unwrap();
        let log = EmbeddedConfig::at(dir.path()).build().unwrap();
        log.create_topic("a", TopicConfig::with_partitions(2))
            .await
            .unwrap();
        log.create_topic("b", TopicConfig::with_partitions(1))
            .await
            .unwrap();
        let mut m = log
            .join_group(JoinOptions::new("g", vec!["a".into()]))
            .await
            .unwrap();
        m.assignment().await.unwrap();
        let poller = tokio::spawn(async move {
            let limits = ReadLimits {
                max_wait: Duration::from_secs(30),
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let got = m.poll(limits).await.unwrap();
            (got, started.elapsed())
        });
        while receivers(&log, "a") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(receivers(&log, "b"), 0, "the poller waits on topic b too");
        for _ in 0..20 {
            log.append("b", 0, &[Record::from_value("x")])
                .await
                .unwrap();
        }
        assert!(!poller.is_finished());
        log.append("a", 1, &[Record::from_value("y")])
            .await
            .unwrap();
        let (got, waited) = poller.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].records[0].partition, 1);
        assert!(waited < Duration::from_secs(10), "{waited:?}");
    }
}
