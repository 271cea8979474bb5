//! `fleetwatch sim`: drives the `fleetwatch-sim` generator and sends its events to a file
//! (`--out`), straight into the `Log` (`--target log`), over MQTT (`mqtt://…`, `mqtts://…`:
//! fleetwatch's proxy or any broker) or to fleetwatch's HTTP ingest (`http://…`).
//!
//! Over the network events go to MQTT topics `fleet/<vin>/telemetry`, `fleet/<vin>/payments`
//! and `fleet/<vin>/labels` (the server's default `publish_map` maps them to `telemetry.raw`,
//! `payments.raw`, `labels`); the key picks the connection, so one car's events stay in order.
//! Pacing: `rate` events per second of wall time (by default the simulated clock follows the
//! wall clock), or as fast as the target takes them.

use anyhow::Context;
use bytes::Bytes;
use fleetwatch_core::partitioner::Partitioner;
use fleetwatch_core::{Log, Record, TimestampType, TopicConfig};
use fleetwatch_ingest::client::{BrokerUrl, ClientTls, MqttClient, Publisher, SYSTEM_CA_FILE};
use fleetwatch_ingest::packet::{Connect, QoS, Version};
use fleetwatch_sim::{AnomalyType, Batch, SimConfig, Simulator, Stream};
use serde::Serialize;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// One event to send: its MQTT topic (the HTTP ingest path), the key that orders it, the
/// payload.
pub type Outgoing = (String, Bytes);

fn lane_of(key: &str, lanes: usize) -> usize {
    // FNV-1a: a documented hash, the same on every run and platform.
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    key.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

struct Fnv(u64);
impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Options of the MQTT target.
#[derive(Debug, Clone)]
pub struct MqttOptions {
    /// `mqtt://host:port` or `mqtts://…`.
    pub url: String,
    /// Connections (each a client `<client_prefix>-<i>`); cars are spread over them by key.
    pub connections: usize,
    /// 0 or 1.
    pub qos: u8,
    /// QoS 1 publishes unacknowledged per connection.
    pub window: usize,
    /// Client id prefix.
    pub client_prefix: String,
    /// Login.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// CA file for `mqtts://` (default: the system's).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Publishes events over MQTT: a task per connection, fed through a bounded channel (so a
/// slow broker slows the simulator instead of filling memory).
pub struct MqttTarget {
    lanes: Vec<mpsc::Sender<Vec<Outgoing>>>,
    batches: Vec<Vec<Outgoing>>,
    tasks: JoinSet<anyhow::Result<u64>>,
}

impl MqttTarget {
    /// Connects every connection (MQTT 5, clean start) before returning.
    pub async fn connect(opts: &MqttOptions) -> anyhow::Result<MqttTarget> {
        let url = BrokerUrl::parse(&opts.url).map_err(anyhow::Error::msg)?;
        let tls = if url.tls {
            let ca = opts
                .ca_file
                .clone()
                .unwrap_or_else(|| SYSTEM_CA_FILE.into());
            Some(std::sync::Arc::new(ClientTls::new(&ca, None, &url.host)?))
        } else {
            None
        };
        let qos = if opts.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let mut lanes = Vec::new();
        let mut tasks = JoinSet::new();
        for i in 0..opts.connections.max(1) {
            let mut c = Connect::new(Version::V5, &format!("{}-{i}", opts.client_prefix));
            c.keep_alive = 60;
            c.username = opts.username.as_deref().map(Into::into);
            c.password = opts.password.clone().map(Bytes::from);
            let tls_ref = tls.as_deref();
            let (client, _) = MqttClient::connect(&url, tls_ref, c, Duration::from_secs(10))
                .await
                .with_context(|| format!("sim: connecting to {}", opts.url))?;
            let mut publisher = Publisher::new(client, qos, opts.window);
            let (tx, mut rx) = mpsc::channel::<Vec<Outgoing>>(4);
            tasks.spawn(async move {
                let mut sent = 0u64;
                while let Some(batch) = rx.recv().await {
                    for (topic, payload) in batch {
                        publisher.publish(&topic, payload).await?;
                        sent += 1;
                    }
                    publisher.flush().await?;
                }
                publisher.close().await?;
                Ok(sent)
            });
            lanes.push(tx);
        }
        Ok(MqttTarget {
            batches: vec![Vec::new(); lanes.len()],
            lanes,
            tasks,
        })
    }

    /// Queues one event (sent on [`flush`](Self::flush)).
    pub fn push(&mut self, topic: String, key: &str, payload: Bytes) {
        let i = lane_of(key, self.lanes.len());
        self.batches[i].push((topic, payload));
    }

    /// Hands the queued events to their connections (waits while they are behind).
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        for (i, lane) in self.lanes.iter().enumerate() {
            if self.batches[i].is_empty() {
                continue;
            }
            let batch = std::mem::take(&mut self.batches[i]);
            if lane.send(batch).await.is_err() {
                // The connection's task ended: its error says why.
                return Err(self.failure().await);
            }
        }
        Ok(())
    }

    async fn failure(&mut self) -> anyhow::Error {
        while let Some(r) = self.tasks.join_next().await {
            match r {
                Ok(Err(e)) => return e,
                Err(e) => return anyhow::anyhow!("sim: an MQTT connection task failed: {e}"),
                Ok(Ok(_)) => {}
            }
        }
        anyhow::anyhow!("sim: an MQTT connection closed")
    }

    /// Sends what is queued, waits for every acknowledgement, disconnects; returns how many
    /// events were published.
    pub async fn finish(mut self) -> anyhow::Result<u64> {
        self.flush().await?;
        self.lanes.clear();
        let mut sent = 0;
        while let Some(r) = self.tasks.join_next().await {
            sent += r.context("sim: an MQTT connection task failed")??;
        }
        Ok(sent)
    }
}

/// Sends events to fleetwatch's HTTP ingest: one NDJSON request per (topic path) and flush,
/// up to `concurrency` requests at once.
pub struct HttpTarget {
    base: String,
    client: reqwest::Client,
    concurrency: usize,
    bodies: std::collections::BTreeMap<String, Vec<u8>>,
    sent: u64,
    queued: u64,
    last_flush: Instant,
}

impl HttpTarget {
    /// Checks `base` (`http://host:port`) answers `/health`.
    pub async fn connect(base: &str, concurrency: usize) -> anyhow::Result<HttpTarget> {
        let base = base.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let r = client
            .get(format!("{base}/health"))
            .send()
            .await
            .with_context(|| format!("sim: {base} does not answer"))?;
        anyhow::ensure!(
            r.status().is_success() || r.status().as_u16() == 503,
            "sim: {base}/health answered {}",
            r.status()
        );
        Ok(HttpTarget {
            base,
            client,
            concurrency: concurrency.max(1),
            bodies: Default::default(),
            sent: 0,
            queued: 0,
            last_flush: Instant::now(),
        })
    }

    /// Queues one event under its topic path.
    pub fn push(&mut self, topic: &str, payload: &[u8]) {
        let body = self.bodies.entry(topic.to_string()).or_default();
        body.extend_from_slice(payload);
        body.push(b'\n');
        self.queued += 1;
    }

    /// Posts every queued body; an error answer fails with its message.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        use futures::StreamExt;
        let bodies = std::mem::take(&mut self.bodies);
        let requests = bodies.into_iter().map(|(topic, body)| {
            let url = format!("{}/ingest/{topic}", self.base);
            let c = self.client.clone();
            async move {
                let r = c
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .with_context(|| format!("sim: POST {url}"))?;
                let status = r.status();
                if !status.is_success() {
                    let text = r.text().await.unwrap_or_default();
                    anyhow::bail!("sim: POST {url} answered {status}: {text}");
                }
                Ok::<(), anyhow::Error>(())
            }
        });
        let mut results = futures::stream::iter(requests).buffer_unordered(self.concurrency);
        while let Some(r) = results.next().await {
            r?;
        }
        self.sent += std::mem::take(&mut self.queued);
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Posts what is queued; returns how many events were stored.
    pub async fn finish(mut self) -> anyhow::Result<u64> {
        self.flush().await?;
        Ok(self.sent)
    }
}

/// Where the events go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A JSON-lines file: `{"stream":"telemetry","key":"<vin>","value":{…}}` per event.
    File(PathBuf),
    /// Straight into the configured log.
    Log,
    /// An MQTT broker.
    Mqtt(MqttOptions),
    /// fleetwatch's HTTP ingest at this base URL, with this many requests at once.
    Http(String, usize),
}

/// Log topics of the `log` target, by stream (the server's default mapping's names).
#[derive(Debug, Clone)]
pub struct LogTopics {
    /// Telemetry.
    pub telemetry: String,
    /// Payments.
    pub payments: String,
    /// Labels.
    pub labels: String,
    /// Partitions of topics created.
    pub partitions: i32,
}

impl Default for LogTopics {
    fn default() -> Self {
        LogTopics {
            telemetry: "telemetry.raw".into(),
            payments: "payments.raw".into(),
            labels: "labels".into(),
            partitions: 4,
        }
    }
}

/// One simulation run.
#[derive(Debug, Clone)]
pub struct SimRun {
    /// The generator's settings.
    pub config: SimConfig,
    /// Where events go.
    pub target: Target,
    /// Events per wall-clock second; `None`: as fast as the target takes them.
    pub rate: Option<f64>,
    /// Stop after the tick that reaches this many events.
    pub max_events: Option<u64>,
    /// Stop after this many ticks (simulated duration / interval).
    pub max_ticks: Option<u64>,
    /// For the `log` target.
    pub topics: LogTopics,
}

/// What a run did (printed as JSON by the command).
#[derive(Debug, Clone, Serialize)]
pub struct SimSummary {
    /// Where the events went.
    pub target: String,
    /// The seed.
    pub seed: u64,
    /// Events per stream.
    pub events: BTreeMap<&'static str, u64>,
    /// All events.
    pub total_events: u64,
    /// Labelled episodes per anomaly type.
    pub episodes: BTreeMap<&'static str, u64>,
    /// Simulated time of the first tick, epoch ms.
    pub sim_start_ms: i64,
    /// Simulated time after the last tick, epoch ms.
    pub sim_end_ms: i64,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// Events per wall second.
    pub events_per_sec: f64,
}

fn stream_topic(s: Stream) -> &'static str {
    match s {
        Stream::Telemetry => "telemetry",
        Stream::Payment => "payments",
        Stream::Label => "labels",
    }
}

enum Sink {
    File(std::io::BufWriter<std::fs::File>, PathBuf),
    Log(
        Arc<dyn Log>,
        LogTopics,
        Partitioner,
        BTreeMap<(usize, i32), Vec<Record>>,
    ),
    Mqtt(MqttTarget),
    Http(HttpTarget),
}

impl Sink {
    async fn send(&mut self, batch: &Batch) -> anyhow::Result<()> {
        match self {
            Sink::File(w, path) => {
                for e in batch.iter() {
                    w.write_all(b"{\"stream\":\"")?;
                    w.write_all(stream_topic(e.stream).as_bytes())?;
                    w.write_all(b"\",\"key\":\"")?;
                    w.write_all(e.key.as_bytes())?;
                    w.write_all(b"\",\"value\":")?;
                    w.write_all(e.json)?;
                    w.write_all(b"}\n")
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            Sink::Log(log, topics, partitioner, groups) => {
                let names = [&topics.telemetry, &topics.payments, &topics.labels];
                for e in batch.iter() {
                    let i = match e.stream {
                        Stream::Telemetry => 0,
                        Stream::Payment => 1,
                        Stream::Label => 2,
                    };
                    let key = Bytes::copy_from_slice(e.key.as_bytes());
                    let p = partitioner.partition(Some(&key), topics.partitions);
                    groups.entry((i, p)).or_default().push(Record {
                        key: Some(key),
                        value: Some(Bytes::copy_from_slice(e.json)),
                        headers: Vec::new(),
                        timestamp: e.ts_ms,
                        timestamp_type: TimestampType::CreateTime,
                    });
                }
                for ((i, p), records) in std::mem::take(groups) {
                    log.append(names[i], p, &records)
                        .await
                        .with_context(|| format!("appending to {}[{p}]", names[i]))?;
                }
            }
            Sink::Mqtt(m) => {
                for e in batch.iter() {
                    let topic = format!("fleet/{}/{}", e.key, stream_topic(e.stream));
                    m.push(topic, e.key, Bytes::copy_from_slice(e.json));
                }
                m.flush().await?;
            }
            Sink::Http(h) => {
                for e in batch.iter() {
                    let topic = format!("fleet/{}/{}", e.key, stream_topic(e.stream));
                    h.push(&topic, e.json);
                }
                // Bigger bodies, fewer requests: at most a second or 5,000 events late.
                if h.queued >= 5000 || h.last_flush.elapsed() >= Duration::from_secs(1) {
                    h.flush().await?;
                }
            }
        }
        Ok(())
    }

    async fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::File(mut w, path) => w
                .flush()
                .with_context(|| format!("writing {}", path.display())),
            Sink::Log(log, ..) => Ok(log.flush().await?),
            Sink::Mqtt(m) => m.finish().await.map(|_| ()),
            Sink::Http(h) => h.finish().await.map(|_| ()),
        }
    }
}

/// Runs a simulation until its bound (or Ctrl-C); `log` is needed for [`Target::Log`].
pub async fn run(run: SimRun, log: Option<Arc<dyn Log>>) -> anyhow::Result<SimSummary> {
    let mut sim = Simulator::new(run.config.clone()).map_err(|e| anyhow::anyhow!("sim: {e}"))?;
    let target_name = match &run.target {
        Target::File(p) => p.display().to_string(),
        Target::Log => "log".to_string(),
        Target::Mqtt(o) => o.url.clone(),
        Target::Http(u, _) => u.clone(),
    };
    let mut sink = match run.target {
        Target::File(path) => {
            let f = std::fs::File::create(&path)
                .with_context(|| format!("--out {}", path.display()))?;
            Sink::File(std::io::BufWriter::with_capacity(1 << 20, f), path)
        }
        Target::Log => {
            let log = log.context("the log target needs the log")?;
            let t = &run.topics;
            for name in [&t.telemetry, &t.payments, &t.labels] {
                log.ensure_topic(name, TopicConfig::with_partitions(t.partitions))
                    .await
                    .with_context(|| format!("creating topic {name}"))?;
            }
            Sink::Log(log, t.clone(), Partitioner::new(), BTreeMap::new())
        }
        Target::Mqtt(o) => Sink::Mqtt(MqttTarget::connect(&o).await?),
        Target::Http(base, c) => Sink::Http(HttpTarget::connect(&base, c).await?),
    };
    let start = Instant::now();
    let sim_start_ms = sim.now_ms();
    let mut batch = Batch::new();
    let mut sent = 0u64;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut stopped = false;
    loop {
        let ticks = sim.stats().ticks;
        if run.max_ticks.is_some_and(|m| ticks >= m)
            || run.max_events.is_some_and(|m| sent >= m)
            || stopped
        {
            break;
        }
        batch.clear();
        sim.tick(&mut batch);
        sent += batch.len() as u64;
        sink.send(&batch).await?;
        if let Some(rate) = run.rate.filter(|r| *r > 0.0) {
            let due = start + Duration::from_secs_f64(sent as f64 / rate);
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = &mut stop => stopped = true,
            }
        }
    }
    batch.clear();
    sim.finish(&mut batch);
    sink.send(&batch).await?;
    sink.finish().await?;
    let wall = start.elapsed().as_secs_f64();
    let st = sim.stats();
    Ok(SimSummary {
        target: target_name,
        seed: run.config.seed,
        events: BTreeMap::from([
            ("telemetry", st.telemetry),
            ("payments", st.payments),
            ("labels", st.labels),
        ]),
        total_events: st.events(),
        episodes: AnomalyType::ALL
            .iter()
            .map(|t| (t.name(), st.episodes[t.index()]))
            .filter(|(_, n)| *n > 0)
            .collect(),
        sim_start_ms,
        sim_end_ms: sim.now_ms(),
        wall_seconds: wall,
        events_per_sec: st.events() as f64 / wall.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_takes_the_same_lane() {
        let a = lane_of("WVWZZZ1JZXW000001", 16);
        for _ in 0..10 {
            assert_eq!(lane_of("WVWZZZ1JZXW000001", 16), a);
        }
        let used: std::collections::HashSet<usize> =
            (0..1000).map(|i| lane_of(&format!("VIN{i}"), 16)).collect();
        assert_eq!(used.len(), 16, "keys spread over every lane");
    }
}
