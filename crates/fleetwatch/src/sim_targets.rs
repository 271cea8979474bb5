//! Where `fleetwatch sim` sends events over the network: an MQTT broker (fleetwatch's proxy
//! or any other) and fleetwatch's HTTP ingest. Both take events as `(MQTT topic, key,
//! payload)`; the key picks the connection, so one car's events stay in order.

use anyhow::Context;
use bytes::Bytes;
use fleetwatch_ingest::client::{BrokerUrl, ClientTls, MqttClient, Publisher, SYSTEM_CA_FILE};
use fleetwatch_ingest::packet::{Connect, QoS, Version};
use std::hash::{Hash, Hasher};
use std::time::Duration;
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
        Ok(())
    }

    /// Posts what is queued; returns how many events were stored.
    pub async fn finish(mut self) -> anyhow::Result<u64> {
        self.flush().await?;
        Ok(self.sent)
    }
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
