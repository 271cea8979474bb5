//! Group commit across connections: every producer of one partition shares one lane.
//!
//! A device publishes a message now and then; thousands of them together make the load.
//! Appending each message on its own would cost one log append (and, under the `always`
//! policy, one fsync) per message. Instead every (topic, partition) has a lane: a task that
//! takes everything queued for it while its previous append was in flight and appends it as
//! one batch, then tells each submitter its offsets. Under load batches grow by themselves;
//! a lone message still goes out at once. A batch refused as a whole for one bad record
//! (over the size limit) is retried job by job, so one device cannot fail the others.

use fleetwatch_core::partitioner::Partitioner;
use fleetwatch_core::{Log, LogError, LogResult, Record};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, oneshot};

/// The offsets one job got (in order), or the error of its append.
pub type JobResult = Result<Vec<i64>, Arc<LogError>>;

/// Most records, and bytes, one lane appends at once.
const MAX_BATCH_RECORDS: usize = 8192;
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

struct Job {
    records: Vec<Record>,
    done: oneshot::Sender<JobResult>,
}

/// Lanes by topic, then partition (looked up by `&str`: no allocation per submit).
type Lanes = HashMap<String, HashMap<i32, mpsc::UnboundedSender<Job>>>;

struct Inner {
    log: Arc<dyn Log>,
    partitioner: Partitioner,
    partitions: RwLock<HashMap<String, i32>>,
    lanes: Mutex<Lanes>,
}

/// Shared by every connection (cheap to clone).
#[derive(Clone)]
pub struct Appender {
    inner: Arc<Inner>,
}

impl Appender {
    /// An appender over `log`. Lanes are tasks of the current Tokio runtime.
    pub fn new(log: Arc<dyn Log>) -> Appender {
        Appender {
            inner: Arc::new(Inner {
                log,
                partitioner: Partitioner::new(),
                partitions: RwLock::new(HashMap::new()),
                lanes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The partition of a record with `key` in `topic` (Kafka's murmur2; round-robin
    /// without a key). The partition count is cached.
    pub async fn partition(&self, topic: &str, key: Option<&[u8]>) -> LogResult<i32> {
        let cached = self
            .inner
            .partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .copied();
        let n = match cached {
            Some(n) => n,
            None => {
                let n = self.inner.log.partition_count(topic).await?;
                self.inner
                    .partitions
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(topic.to_string(), n);
                n
            }
        };
        Ok(self.inner.partitioner.partition(key, n))
    }

    /// Queues `records` for one partition; the receiver gets their offsets once they are
    /// durable (by the log's policy), or the error.
    pub fn submit(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<Record>,
    ) -> oneshot::Receiver<JobResult> {
        let (done, rx) = oneshot::channel();
        let mut job = Job { records, done };
        // A lane that ended (its runtime is gone) is replaced once.
        for _ in 0..2 {
            let lane = self.lane(topic, partition);
            match lane.send(job) {
                Ok(()) => return rx,
                Err(mpsc::error::SendError(j)) => {
                    job = j;
                    if let Some(t) = self
                        .inner
                        .lanes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_mut(topic)
                    {
                        t.remove(&partition);
                    }
                }
            }
        }
        let _ = job
            .done
            .send(Err(Arc::new(LogError::internal("append lane unavailable"))));
        rx
    }

    fn lane(&self, topic: &str, partition: i32) -> mpsc::UnboundedSender<Job> {
        let mut lanes = self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = lanes.get(topic).and_then(|t| t.get(&partition)) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = self.inner.clone();
        tokio::spawn(run_lane(inner, topic.to_string(), partition, rx));
        lanes
            .entry(topic.to_string())
            .or_default()
            .insert(partition, tx.clone());
        tx
    }
}

async fn run_lane(
    inner: Arc<Inner>,
    topic: String,
    partition: i32,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut jobs: Vec<Job> = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut count = first.records.len();
        let mut bytes: usize = first.records.iter().map(Record::size_bytes).sum();
        jobs.push(first);
        while count < MAX_BATCH_RECORDS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    count += j.records.len();
                    bytes += j.records.iter().map(Record::size_bytes).sum::<usize>();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let lens: Vec<usize> = jobs.iter().map(|j| j.records.len()).collect();
        for j in &mut jobs {
            records.append(&mut j.records);
        }
        let result = inner.log.append(&topic, partition, &records).await;
        match result {
            Ok(ack) if ack.offsets.len() == records.len() => {
                let mut at = 0;
                for (j, n) in jobs.drain(..).zip(lens) {
                    let _ = j.done.send(Ok(ack.offsets[at..at + n].to_vec()));
                    at += n;
                }
                records.clear();
            }
            Ok(ack) => {
                let e = Arc::new(LogError::internal(format!(
                    "append of {} records returned {} offsets",
                    records.len(),
                    ack.offsets.len()
                )));
                records.clear();
                for j in jobs.drain(..) {
                    let _ = j.done.send(Err(e.clone()));
                }
            }
            Err(e) if jobs.len() > 1 && matches!(e, LogError::RecordTooLarge { .. }) => {
                // One job's record spoiled the batch: append job by job.
                let mut rest = std::mem::take(&mut records).into_iter();
                for (j, n) in jobs.drain(..).zip(lens) {
                    let mine: Vec<Record> = rest.by_ref().take(n).collect();
                    let r = inner.log.append(&topic, partition, &mine).await;
                    let _ = j.done.send(r.map(|a| a.offsets).map_err(Arc::new));
                }
            }
            Err(e) => {
                if matches!(
                    e,
                    LogError::UnknownTopic(_) | LogError::UnknownPartition { .. }
                ) {
                    // The topic changed: look its partition count up again.
                    inner
                        .partitions
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&topic);
                }
                let e = Arc::new(e);
                records.clear();
                for j in jobs.drain(..) {
                    let _ = j.done.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use fleetwatch_core::{OffsetSpec, ReadLimits, TopicConfig};

    async fn log() -> (tempfile::TempDir, Arc<dyn Log>) {
        let dir = tempfile::tempdir().unwrap();
        let log = fleetwatch_log::EmbeddedConfig::at(dir.path())
            .build()
            .unwrap();
        let log: Arc<dyn Log> = Arc::new(log);
        log.create_topic(
            "t",
            TopicConfig {
                partitions: 2,
                max_message_bytes: 1000,
                ..TopicConfig::default()
            },
        )
        .await
        .unwrap();
        (dir, log)
    }

    #[tokio::test]
    async fn concurrent_jobs_share_appends_and_each_gets_its_own_offsets() {
        let (_d, log) = log().await;
        let a = Appender::new(log.clone());
        let mut rx = Vec::new();
        for i in 0..200u32 {
            let recs = (0..3)
                .map(|k| Record::from_value(Bytes::from(format!("{i}-{k}"))))
                .collect();
            rx.push((i, a.submit("t", 1, recs)));
        }
        for (i, r) in rx {
            let offsets = r.await.unwrap().unwrap();
            assert_eq!(offsets.len(), 3);
            let got = log
                .read("t", 1, offsets[0], ReadLimits::default())
                .await
                .unwrap();
            let v: Vec<_> = got.records[..3]
                .iter()
                .map(|r| r.record.value.clone().unwrap())
                .collect();
            assert_eq!(
                v,
                (0..3)
                    .map(|k| Bytes::from(format!("{i}-{k}")))
                    .collect::<Vec<_>>(),
                "job {i} got the offsets of its own records"
            );
        }
        assert_eq!(
            log.offset_for("t", 1, OffsetSpec::Latest).await.unwrap(),
            600
        );
    }

    #[tokio::test]
    async fn an_oversized_record_fails_only_its_own_job() {
        let (_d, log) = log().await;
        let a = Appender::new(log.clone());
        let good1 = a.submit("t", 0, vec![Record::from_value(Bytes::from_static(b"ok1"))]);
        let bad = a.submit(
            "t",
            0,
            vec![Record::from_value(Bytes::from(vec![0u8; 5000]))],
        );
        let good2 = a.submit("t", 0, vec![Record::from_value(Bytes::from_static(b"ok2"))]);
        assert!(good1.await.unwrap().is_ok());
        let e = bad.await.unwrap().unwrap_err();
        assert!(matches!(*e, LogError::RecordTooLarge { .. }), "{e}");
        assert!(good2.await.unwrap().is_ok());
        assert_eq!(log.offset_for("t", 0, OffsetSpec::Latest).await.unwrap(), 2);
        let e = a
            .submit(
                "nope",
                0,
                vec![Record::from_value(Bytes::from_static(b"x"))],
            )
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(*e, LogError::UnknownTopic(_)), "{e}");
    }

    #[tokio::test]
    async fn partitions_follow_the_key() {
        let (_d, log) = log().await;
        let a = Appender::new(log);
        let p = a.partition("t", Some(b"VIN1")).await.unwrap();
        assert_eq!(
            p,
            fleetwatch_core::partitioner::partition_for_key(b"VIN1", 2)
        );
        assert!(a.partition("nope", None).await.is_err());
    }
}
