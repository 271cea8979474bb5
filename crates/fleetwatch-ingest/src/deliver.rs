//! Subscribe back: records of subscribe-mapped log topics delivered to MQTT clients.
//!
//! Each connection with subscriptions runs one pump per log topic it reads: a task following
//! the topic's partitions from the session's positions, keeping the records whose key a
//! subscription selects, and handing them to the connection through a bounded channel (so a
//! slow client slows its pump, never the server). A persistent session (clean start off, or
//! an MQTT 5 session expiry) is a consumer group per log topic, `mqtt-session.<client
//! id>.<topic>`: its committed offsets are the delivery positions, advanced only past
//! records the client acknowledged (QoS 1) or was sent (QoS 0), and its commit metadata
//! holds the subscriptions, so both survive a restart of the server.
//!
//! Retained messages are the last record per key of a subscribe-mapped topic, from an index
//! ([`Retained`]) a server task keeps by following each such topic from its start: key →
//! (partition, offset) in memory, the records themselves stay in the log.

use crate::mapping::{KeySelect, SubRule};
use crate::packet::QoS;
use bytes::Bytes;
use fleetwatch_core::{
    GroupConsumer, JoinOptions, Log, LogError, LogResult, OffsetCommit, OffsetSpec, ReadLimits,
    TopicPartition, TopicSubscription,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One record to send to the client.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Index of the subscribe rule (= the pump).
    pub rule: usize,
    /// The MQTT topic it goes out on.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS it is sent with.
    pub qos: QoS,
    /// Sent as a retained message (not tracked for positions).
    pub retain: bool,
    /// Where it is in the log.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

enum Msg {
    Record(Delivery),
    Progress(usize, Vec<(i32, i64)>),
}

/// Subscriptions of one pump: filter → (what it selects, granted QoS).
pub type Selects = Arc<RwLock<Vec<(String, KeySelect, QoS)>>>;

/// Commit metadata of a persistent session's group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct StoredSession {
    /// Filter and granted QoS (0/1) per subscription.
    pub filters: Vec<(String, u8)>,
    /// Session expiry, seconds.
    pub expiry_s: u32,
    /// When the session was last seen connected, ms since the epoch.
    pub seen_ms: i64,
}

impl StoredSession {
    /// Whether it has expired at `now_ms`.
    pub fn expired(&self, now: i64) -> bool {
        self.expiry_s != u32::MAX && now - self.seen_ms > i64::from(self.expiry_s) * 1000
    }
}

/// The group of a persistent session's positions in `topic`.
pub fn session_group(client_id: &str, topic: &str) -> String {
    format!("mqtt-session.{client_id}.{topic}")
}

struct Track {
    rule: SubRule,
    selects: Selects,
    task: tokio::task::JoinHandle<()>,
    unacked: HashMap<i32, BTreeSet<i64>>,
    progress: HashMap<i32, i64>,
    group: Option<Box<dyn GroupConsumer>>,
    dirty: bool,
}

impl Drop for Track {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The pumps of one connection.
pub struct Pumps {
    log: Arc<dyn Log>,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    tracks: HashMap<usize, Track>,
    retained: std::collections::VecDeque<Delivery>,
    last_commit: Instant,
}

impl Pumps {
    /// No pumps yet.
    pub fn new(log: Arc<dyn Log>) -> Pumps {
        let (tx, rx) = mpsc::channel(512);
        Pumps {
            log,
            tx,
            rx,
            tracks: HashMap::new(),
            retained: Default::default(),
            last_commit: Instant::now(),
        }
    }

    /// The next record to deliver (cancel-safe; pending for ever without subscriptions).
    pub async fn next(&mut self) -> Option<Delivery> {
        if let Some(d) = self.retained.pop_front() {
            return Some(d);
        }
        loop {
            match self.rx.recv().await? {
                Msg::Record(d) => {
                    if !self.tracks.contains_key(&d.rule) {
                        continue;
                    }
                    return Some(d);
                }
                Msg::Progress(rule, positions) => {
                    if let Some(t) = self.tracks.get_mut(&rule) {
                        for (p, o) in positions {
                            t.progress.insert(p, o);
                        }
                        t.dirty = true;
                    }
                }
            }
        }
    }

    /// Queues retained messages to go out before anything else.
    pub fn push_retained(&mut self, d: Delivery) {
        self.retained.push_back(d);
    }

    /// A delivery was written to the client: a QoS 1 one stays unacknowledged until
    /// [`Pumps::acked`].
    pub fn sent(&mut self, d: &Delivery) {
        if d.retain || d.qos == QoS::AtMostOnce {
            return;
        }
        if let Some(t) = self.tracks.get_mut(&d.rule) {
            t.unacked.entry(d.partition).or_default().insert(d.offset);
        }
    }

    /// The client acknowledged a QoS 1 delivery.
    pub fn acked(&mut self, d: &Delivery) {
        if let Some(t) = self.tracks.get_mut(&d.rule)
            && let Some(set) = t.unacked.get_mut(&d.partition)
        {
            set.remove(&d.offset);
            t.dirty = true;
        }
    }

    /// The selections of rule `rule`'s pump, if it runs.
    pub fn selects(&self, rule: usize) -> Option<&Selects> {
        self.tracks.get(&rule).map(|t| &t.selects)
    }

    /// Starts the pump of `rule` from `positions` (partition → next offset); `group`: the
    /// persistent session's consumer, for commits.
    pub fn start(
        &mut self,
        index: usize,
        rule: SubRule,
        selects: Selects,
        positions: Vec<(i32, i64)>,
        group: Option<Box<dyn GroupConsumer>>,
    ) {
        let task = tokio::spawn(run_pump(
            self.log.clone(),
            index,
            rule.clone(),
            selects.clone(),
            positions.clone(),
            self.tx.clone(),
        ));
        self.tracks.insert(
            index,
            Track {
                rule,
                selects,
                task,
                unacked: HashMap::new(),
                progress: positions.into_iter().collect(),
                group,
                dirty: true,
            },
        );
    }

    /// Stops the pump of `rule` (commit its positions first).
    pub fn stop(&mut self, rule: usize) {
        self.tracks.remove(&rule);
    }

    /// Whether [`Pumps::commit`] has anything to do now: a persistent pump, and (unless
    /// `force`) a second since the last commit.
    pub fn commit_due(&self, force: bool) -> bool {
        self.tracks.values().any(|t| t.group.is_some())
            && (force || self.last_commit.elapsed() >= Duration::from_secs(1))
    }

    /// Commits the positions of persistent pumps, with the session's subscriptions as
    /// metadata; also keeps their groups alive. Callers check [`Pumps::commit_due`] first.
    pub async fn commit(&mut self, force: bool, stored: &HashMap<usize, StoredSession>) {
        self.last_commit = Instant::now();
        for (rule, t) in self.tracks.iter_mut() {
            let Some(group) = t.group.as_mut() else {
                continue;
            };
            if !t.dirty && !force {
                let _ = group.assignment().await;
                continue;
            }
            let meta = serde_json::to_string(&stored.get(rule).cloned().unwrap_or_default())
                .unwrap_or_default();
            let mut commits = Vec::new();
            for (&p, &prog) in &t.progress {
                let at = t
                    .unacked
                    .get(&p)
                    .and_then(|s| s.first().copied())
                    .map_or(prog, |first| first.min(prog));
                commits.push(
                    OffsetCommit::new(TopicPartition::new(t.rule.topic.clone(), p), at)
                        .with_metadata(meta.clone()),
                );
            }
            match group.commit(&commits).await {
                Ok(()) => t.dirty = false,
                Err(e) => {
                    tracing::warn!(topic = t.rule.topic, error = %e, "MQTT session commit failed")
                }
            }
        }
    }

    /// Leaves every group (after a last commit by the caller).
    pub async fn close(&mut self) {
        for (_, mut t) in self.tracks.drain() {
            if let Some(g) = t.group.take() {
                let _ = g.leave().await;
            }
        }
    }
}

async fn run_pump(
    log: Arc<dyn Log>,
    index: usize,
    rule: SubRule,
    selects: Selects,
    positions: Vec<(i32, i64)>,
    tx: mpsc::Sender<Msg>,
) {
    let mut sub = TopicSubscription::new(log.clone(), rule.topic.clone(), positions);
    let limits = ReadLimits {
        max_records: 256,
        max_wait: Duration::from_millis(500),
        ..ReadLimits::default()
    };
    loop {
        let batch = match sub.next_batch(limits).await {
            Ok(b) => b,
            Err(LogError::OffsetOutOfRange { .. }) => {
                // Retention passed the position: go on from the log start.
                let mut fixed = Vec::new();
                for &(p, _) in sub.positions() {
                    let start = log
                        .offset_for(&rule.topic, p, OffsetSpec::Earliest)
                        .await
                        .unwrap_or(0);
                    fixed.push((p, start));
                }
                sub = TopicSubscription::new(log.clone(), rule.topic.clone(), fixed);
                continue;
            }
            Err(e) => {
                tracing::warn!(topic = rule.topic, error = %e, "MQTT delivery read failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for r in batch {
            let Some(value) = r.record.value.clone() else {
                continue;
            };
            let key = r.record.key.as_deref();
            let qos = {
                let sel = selects.read().unwrap_or_else(|p| p.into_inner());
                sel.iter()
                    .filter(|(_, s, _)| match s {
                        KeySelect::All => true,
                        KeySelect::Key(k) => key == Some(k.as_bytes()),
                    })
                    .map(|(_, _, q)| *q)
                    .max()
            };
            let Some(qos) = qos else { continue };
            let Some(topic) = rule.topic_for(key) else {
                continue;
            };
            let d = Delivery {
                rule: index,
                topic,
                payload: value,
                qos,
                retain: false,
                partition: r.partition,
                offset: r.offset,
            };
            if tx.send(Msg::Record(d)).await.is_err() {
                return;
            }
        }
        if tx
            .send(Msg::Progress(index, sub.positions().to_vec()))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Where a persistent session's pump starts, and its group: joins the session's group
/// and reads its committed offsets (the high watermark where there are none).
pub async fn open_group(
    log: &Arc<dyn Log>,
    client_id: &str,
    topic: &str,
) -> LogResult<(Box<dyn GroupConsumer>, Vec<(i32, i64)>)> {
    let group = session_group(client_id, topic);
    let committed = log.committed_offsets(&group).await.unwrap_or_default();
    let mut opts = JoinOptions::new(group, vec![topic.to_string()]);
    opts.session_timeout = Duration::from_secs(30);
    opts.client_id = client_id.to_string();
    opts.reset = OffsetSpec::Latest;
    let mut consumer = log.join_group(opts).await?;
    let _ = consumer.assignment().await?;
    let positions = positions_of(log, topic, &committed).await?;
    Ok((consumer, positions))
}

/// Positions from committed offsets (latest where none).
pub async fn positions_of(
    log: &Arc<dyn Log>,
    topic: &str,
    committed: &[OffsetCommit],
) -> LogResult<Vec<(i32, i64)>> {
    let n = log.partition_count(topic).await?;
    let mut out = Vec::with_capacity(n as usize);
    for p in 0..n {
        let c = committed
            .iter()
            .find(|c| c.partition.topic == topic && c.partition.partition == p);
        let at = match c {
            Some(c) => c.offset,
            None => log.offset_for(topic, p, OffsetSpec::Latest).await?,
        };
        out.push((p, at));
    }
    Ok(out)
}

/// The stored session of `client_id` in `topic`'s group, if any.
pub async fn stored_session(
    log: &Arc<dyn Log>,
    client_id: &str,
    topic: &str,
) -> Option<StoredSession> {
    let committed = log
        .committed_offsets(&session_group(client_id, topic))
        .await
        .ok()?;
    committed
        .iter()
        .filter_map(|c| c.metadata.as_deref())
        .find_map(|m| serde_json::from_str::<StoredSession>(m).ok())
}

/// Key → (partition, offset) of its last record.
type KeyIndex = RwLock<HashMap<Bytes, (i32, i64)>>;

/// Last record per key of each subscribe-mapped topic: key → (partition, offset).
#[derive(Default)]
pub struct Retained {
    topics: RwLock<HashMap<String, Arc<KeyIndex>>>,
}

impl Retained {
    /// Where the records to send as retained for `select` are, in `topic`.
    pub fn lookup(&self, topic: &str, select: &KeySelect) -> Vec<(i32, i64)> {
        let Some(index) = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
        else {
            return Vec::new();
        };
        let index = index.read().unwrap_or_else(|p| p.into_inner());
        match select {
            KeySelect::Key(k) => index.get(k.as_bytes()).copied().into_iter().collect(),
            KeySelect::All => index.values().copied().collect(),
        }
    }

    /// Follows `topic` from its start for ever, keeping the index (run as a server task).
    pub async fn follow(
        self: Arc<Self>,
        log: Arc<dyn Log>,
        topic: String,
        cancel: CancellationToken,
    ) {
        let index: Arc<KeyIndex> = Arc::default();
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.clone(), index.clone());
        let mut positions = Vec::new();
        let n = loop {
            match log.partition_count(&topic).await {
                Ok(n) => break n,
                Err(_) => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        for p in 0..n {
            positions.push((
                p,
                log.offset_for(&topic, p, OffsetSpec::Earliest)
                    .await
                    .unwrap_or(0),
            ));
        }
        let mut sub = TopicSubscription::new(log.clone(), topic.clone(), positions);
        let limits = ReadLimits {
            max_records: 4096,
            max_wait: Duration::from_millis(500),
            ..ReadLimits::default()
        };
        loop {
            let batch = tokio::select! {
                _ = cancel.cancelled() => return,
                b = sub.next_batch(limits) => b,
            };
            match batch {
                Ok(records) => {
                    if records.is_empty() {
                        continue;
                    }
                    let mut idx = index.write().unwrap_or_else(|p| p.into_inner());
                    for r in records {
                        let Some(k) = r.record.key else { continue };
                        if r.record.value.is_none() {
                            idx.remove(&k);
                        } else {
                            idx.insert(k, (r.partition, r.offset));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(topic, error = %e, "retained index: read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
