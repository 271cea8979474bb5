//! The MQTT bridge: fleetwatch subscribes to an existing broker and appends what it
//! delivers, mapped by `[[mqtt.publish_map]]` exactly like a publish to the proxy.
//!
//! Durability is the broker's and the log's together: the bridge connects with a persistent
//! session (3.1.1 clean session off; MQTT 5 session expiry `session_expiry_s`), so the broker
//! queues messages while fleetwatch is away, and it acknowledges each QoS 1 message (PUBACK, in
//! the order received) only once its append is durable. A message read but not yet durable
//! when fleetwatch stops or crashes is redelivered by the broker at the next connect: at least
//! once, duplicates possible after a crash, nothing acknowledged lost.
//!
//! Flow control: at most `max_inflight` messages are unacknowledged (the MQTT 5 Receive
//! Maximum; reading pauses there for 3.1.1), so a slow log slows the broker's sending rather
//! than growing memory. A failed append is never acknowledged: the bridge drops the
//! connection and reconnects (backoff `reconnect_min_ms` doubling to `reconnect_max_ms`), and
//! the broker sends the unacknowledged messages again. A message the log can never take (over
//! the record size limit) or that no rule maps (`unmapped = "reject"`) is acknowledged,
//! counted in `fleetwatch_bridge_dropped_total{reason}` and logged — otherwise it would come
//! back forever.

use crate::client::{BrokerUrl, ClientError, ClientTls, MqttClient, SYSTEM_CA_FILE, version_of};
use crate::config::BridgeConfig;
use crate::conn::record_of;
use crate::mapping::ClientIdentity;
use crate::packet::{Connect, Packet, Publish, QoS, SubscribeFilter, Version, reason};
use crate::server::Shared;
use bytes::Bytes;
use fleetwatch_core::{Header, LogError};
use fleetwatch_metrics::{IntCounter, IntCounterVec, IntGauge, Metrics, MetricsResult};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The bridge metrics, registered once and labelled per bridge.
#[derive(Clone)]
pub struct BridgeMetricsVec {
    connected: fleetwatch_metrics::IntGaugeVec,
    messages: IntCounterVec,
    bytes: IntCounterVec,
    dropped: IntCounterVec,
    connects: IntCounterVec,
    disconnects: IntCounterVec,
}

impl BridgeMetricsVec {
    /// Registers `fleetwatch_bridge_*`.
    pub fn new(m: &Metrics) -> MetricsResult<Self> {
        Ok(BridgeMetricsVec {
            connected: m.gauge(
                "fleetwatch_bridge_connected",
                "1 while the bridge is connected to its upstream broker, else 0.",
                &["bridge"],
            )?,
            messages: m.counter(
                "fleetwatch_bridge_messages_total",
                "Messages received from the upstream broker and appended (durable) to the log.",
                &["bridge"],
            )?,
            bytes: m.counter(
                "fleetwatch_bridge_bytes_total",
                "Payload bytes of the messages appended.",
                &["bridge"],
            )?,
            dropped: m.counter(
                "fleetwatch_bridge_dropped_total",
                "Messages acknowledged upstream but not appended, by reason (unmapped, too_large).",
                &["bridge", "reason"],
            )?,
            connects: m.counter(
                "fleetwatch_bridge_connects_total",
                "Accepted connections (CONNACK 0) to the upstream broker.",
                &["bridge"],
            )?,
            disconnects: m.counter(
                "fleetwatch_bridge_disconnects_total",
                "Connections lost or refused, by reason (connect, refused, lost, append_failed, keep_alive).",
                &["bridge", "reason"],
            )?,
        })
    }

    fn for_bridge(&self, name: &str) -> BridgeMetrics {
        BridgeMetrics {
            connected: self.connected.with_label_values(&[name]),
            messages: self.messages.with_label_values(&[name]),
            bytes: self.bytes.with_label_values(&[name]),
            dropped_unmapped: self.dropped.with_label_values(&[name, "unmapped"]),
            dropped_too_large: self.dropped.with_label_values(&[name, "too_large"]),
            connects: self.connects.with_label_values(&[name]),
            disconnects: self.disconnects.clone(),
            name: name.to_string(),
        }
    }
}

struct BridgeMetrics {
    connected: IntGauge,
    messages: IntCounter,
    bytes: IntCounter,
    dropped_unmapped: IntCounter,
    dropped_too_large: IntCounter,
    connects: IntCounter,
    disconnects: IntCounterVec,
    name: String,
}

impl BridgeMetrics {
    fn disconnected(&self, reason: &str) {
        self.connected.set(0);
        self.disconnects
            .with_label_values(&[self.name.as_str(), reason])
            .inc();
    }
}

/// One bridge, ready to run (as a `serve` task).
pub struct Bridge {
    config: BridgeConfig,
    url: BrokerUrl,
    tls: Option<ClientTls>,
    password: Option<Bytes>,
    client_id: String,
    name_bytes: Bytes,
    shared: Arc<Shared>,
    metrics: BridgeMetrics,
}

/// Why one connection ended.
enum End {
    /// Shutdown asked for: stop.
    Cancelled,
    /// Reconnect (after the backoff), for this reason (a metrics label) and cause.
    Reconnect(&'static str, String),
}

/// A message's fate, in arrival order: its acknowledgement waits for everything before it.
struct Done {
    /// The packet id to acknowledge (QoS 1 and 2).
    ack: Option<(NonZeroU16, QoS)>,
    /// The append's result (`Ok` for a message dropped on purpose).
    result: Result<(), Arc<LogError>>,
    /// Payload bytes appended; `None` for a dropped message.
    appended: Option<usize>,
}

impl Bridge {
    /// Checks the bridge's settings (TLS files, password variable); errors name the key.
    pub fn new(
        config: BridgeConfig,
        shared: Arc<Shared>,
        metrics: &BridgeMetricsVec,
    ) -> Result<Bridge, String> {
        let key = format!("mqtt.bridge.{}", config.name);
        let url = BrokerUrl::parse(&config.url).map_err(|e| format!("{key}.url: {e}"))?;
        let tls = if url.tls {
            let ca = if config.tls.ca_file.is_empty() {
                SYSTEM_CA_FILE
            } else {
                config.tls.ca_file.as_str()
            };
            let client = (!config.tls.cert_file.is_empty()).then(|| {
                (
                    Path::new(config.tls.cert_file.as_str()),
                    Path::new(config.tls.key_file.as_str()),
                )
            });
            let name = if config.tls.server_name.is_empty() {
                url.host.as_str()
            } else {
                config.tls.server_name.as_str()
            };
            Some(
                ClientTls::new(Path::new(ca), client, name)
                    .map_err(|e| format!("{key}.tls: {e}"))?,
            )
        } else {
            None
        };
        let password = if !config.password_env.is_empty() {
            let v = std::env::var(&config.password_env).map_err(|_| {
                format!(
                    "{key}.password_env: the environment variable {:?} is not set",
                    config.password_env
                )
            })?;
            Some(Bytes::from(v))
        } else if !config.password.is_empty() {
            Some(Bytes::from(config.password.clone()))
        } else {
            None
        };
        Ok(Bridge {
            client_id: config.effective_client_id(),
            name_bytes: Bytes::copy_from_slice(config.name.as_bytes()),
            metrics: metrics.for_bridge(&config.name),
            url,
            tls,
            password,
            shared,
            config,
        })
    }

    /// The component name: `mqtt_bridge[<name>]`.
    pub fn task_name(&self) -> String {
        format!("mqtt_bridge[{}]", self.config.name)
    }

    /// Connects, bridges, reconnects with backoff, until `cancel`.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), ClientError> {
        let min = Duration::from_millis(self.config.reconnect_min_ms);
        let max = Duration::from_millis(self.config.reconnect_max_ms);
        let mut delay = min;
        let mut attempt: u64 = 0;
        loop {
            let started = Instant::now();
            match self.connection(&cancel).await {
                End::Cancelled => {
                    self.metrics.connected.set(0);
                    return Ok(());
                }
                End::Reconnect(label, why) => {
                    self.metrics.disconnected(label);
                    // A connection that lived a while starts the backoff afresh.
                    if started.elapsed() > max {
                        delay = min;
                    }
                    attempt += 1;
                    // Spread reconnects of many instances: up to +50 %, deterministic per try.
                    let jitter = delay.mul_f64(
                        0.5 * ((attempt.wrapping_mul(0x9E37_79B9) % 1000) as f64 / 1000.0),
                    );
                    let wait = delay + jitter;
                    tracing::warn!(
                        bridge = self.config.name,
                        broker = self.url.authority(),
                        why,
                        retry_in_ms = wait.as_millis() as u64,
                        "MQTT bridge disconnected"
                    );
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                    delay = (delay * 2).min(max);
                }
            }
        }
    }

    fn connect_packet(&self) -> Connect {
        let version = version_of(&self.config.protocol);
        let mut c = Connect::new(version, &self.client_id);
        c.clean_start = false;
        c.keep_alive = self.config.keep_alive_s;
        c.username =
            (!self.config.username.is_empty()).then(|| self.config.username.as_str().into());
        c.password = self.password.clone();
        if version == Version::V5 {
            c.session_expiry_s = self.config.session_expiry_s;
            c.receive_maximum = self.config.max_inflight;
        }
        c
    }

    /// One connection: CONNECT, SUBSCRIBE, then messages until it ends.
    async fn connection(&self, cancel: &CancellationToken) -> End {
        let timeout = Duration::from_secs(10);
        let connect =
            MqttClient::connect(&self.url, self.tls.as_ref(), self.connect_packet(), timeout);
        let connected = tokio::select! {
            _ = cancel.cancelled() => return End::Cancelled,
            c = connect => c,
        };
        let (mut client, ack) = match connected {
            Ok(c) => c,
            Err(e @ ClientError::Refused { .. }) => {
                return End::Reconnect("refused", e.to_string());
            }
            Err(e) => return End::Reconnect("connect", e.to_string()),
        };
        self.metrics.connects.inc();
        self.metrics.connected.set(1);
        tracing::info!(
            bridge = self.config.name,
            broker = client.addr(),
            session_present = ack.session_present,
            "MQTT bridge connected"
        );
        // Subscribing again on a present session is harmless; MQTT 5's retain handling 1 keeps
        // the broker from resending retained messages for subscriptions it already has.
        let qos = if self.config.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let sub_id = client.packet_id();
        let filters = self
            .config
            .filters
            .iter()
            .map(|f| SubscribeFilter {
                filter: f.as_str().into(),
                qos,
                retain_handling: 1,
            })
            .collect();
        if let Err(e) = client.send(Packet::Subscribe(sub_id, filters)) {
            return End::Reconnect("lost", e.to_string());
        }
        if let Err(e) = client.flush().await {
            return End::Reconnect("lost", e.to_string());
        }
        let keep_alive = Duration::from_secs(u64::from(
            ack.server_keep_alive
                .unwrap_or(self.config.keep_alive_s)
                .max(1),
        ));
        let mut state = Conn {
            bridge: self,
            client,
            pending: FuturesOrdered::new(),
            inflight: 0,
            limit: usize::from(self.config.max_inflight),
            sub_id,
            last_in: Instant::now(),
            last_out: Instant::now(),
        };
        state.run(cancel, keep_alive).await
    }
}

type Pending = FuturesOrdered<BoxFuture<'static, Done>>;

struct Conn<'b> {
    bridge: &'b Bridge,
    client: MqttClient,
    pending: Pending,
    inflight: usize,
    limit: usize,
    sub_id: NonZeroU16,
    last_in: Instant,
    last_out: Instant,
}

impl Conn<'_> {
    async fn run(&mut self, cancel: &CancellationToken, keep_alive: Duration) -> End {
        let mut tick = tokio::time::interval(keep_alive / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let can_read = self.inflight < self.limit;
            let step = tokio::select! {
                biased;
                _ = cancel.cancelled() => return self.drain().await,
                Some(done) = self.pending.next(), if !self.pending.is_empty() => self.done(done),
                p = self.client.next(), if can_read => match p {
                    Ok(p) => {
                        self.last_in = Instant::now();
                        self.packets(p).await
                    }
                    Err(e) => Err(End::Reconnect("lost", e.to_string())),
                },
                _ = tick.tick() => self.keep_alive(keep_alive),
            };
            if let Err(end) = step {
                return end;
            }
            if let Err(e) = self.client.flush().await {
                return End::Reconnect("lost", e.to_string());
            }
        }
    }

    fn keep_alive(&mut self, keep_alive: Duration) -> Result<(), End> {
        if self.last_in.elapsed() > keep_alive + keep_alive / 2 {
            return Err(End::Reconnect(
                "keep_alive",
                format!(
                    "nothing from the broker for {} ms (keep-alive {} s)",
                    self.last_in.elapsed().as_millis(),
                    keep_alive.as_secs()
                ),
            ));
        }
        if self.last_out.elapsed() >= keep_alive / 2 {
            self.send(Packet::PingReq)?;
        }
        Ok(())
    }

    fn send(&mut self, p: Packet) -> Result<(), End> {
        self.last_out = Instant::now();
        self.client
            .send(p)
            .map_err(|e| End::Reconnect("lost", e.to_string()))
    }

    /// The packet just read and every whole one already buffered behind it: publishes are
    /// grouped by partition into one submit each.
    async fn packets(&mut self, first: Packet) -> Result<(), End> {
        let mut batch: Vec<Publish> = Vec::new();
        let mut next = Some(first);
        while let Some(p) = next.take() {
            match p {
                Packet::Publish(p) => batch.push(*p),
                other => {
                    self.submit(std::mem::take(&mut batch)).await;
                    self.control(other)?;
                }
            }
            if self.inflight + batch.len() < self.limit {
                next = self
                    .client
                    .try_next()
                    .map_err(|e| End::Reconnect("lost", e.to_string()))?;
            }
        }
        self.submit(batch).await;
        Ok(())
    }

    fn control(&mut self, p: Packet) -> Result<(), End> {
        match p {
            Packet::SubAck(id, codes) if id == self.sub_id => {
                for (f, c) in self.bridge.config.filters.iter().zip(&codes) {
                    if *c >= 0x80 {
                        return Err(End::Reconnect(
                            "refused",
                            format!(
                                "the broker refused the subscription to {f:?} (reason code 0x{c:02X})"
                            ),
                        ));
                    }
                }
                tracing::info!(
                    bridge = self.bridge.config.name,
                    filters = ?self.bridge.config.filters,
                    "MQTT bridge subscribed"
                );
                Ok(())
            }
            Packet::PubRel(id, _) => self.send(Packet::PubComp(id, reason::SUCCESS)),
            Packet::PingResp | Packet::SubAck(..) | Packet::UnsubAck(..) => Ok(()),
            Packet::Disconnect(code, _) => Err(End::Reconnect(
                "lost",
                format!("the broker sent DISCONNECT (reason code 0x{code:02X})"),
            )),
            other => Err(End::Reconnect(
                "lost",
                format!("unexpected {} from the broker", other.name()),
            )),
        }
    }

    /// Routes and submits `batch`, one appender job per message (the partition's lane
    /// appends all queued jobs as one batch, and a record the log refuses fails only its own
    /// job); queues each message's outcome in arrival order.
    async fn submit(&mut self, batch: Vec<Publish>) {
        let b = self.bridge;
        let identity = ClientIdentity {
            client_id: &b.client_id,
            username: (!b.config.username.is_empty()).then_some(b.config.username.as_str()),
        };
        for p in batch {
            self.inflight += 1;
            let ack = ack_of(&p);
            let Some(route) = b.shared.mapping.route(&p.topic, &identity) else {
                b.metrics.dropped_unmapped.inc();
                tracing::warn!(
                    bridge = b.config.name,
                    topic = %p.topic,
                    "MQTT bridge: no mqtt.publish_map rule maps this topic (mqtt.unmapped = \"reject\"): acknowledged and dropped"
                );
                let d = Done {
                    ack,
                    result: Ok(()),
                    appended: None,
                };
                self.pending.push_back(Box::pin(async move { d }));
                continue;
            };
            let topic = route.topic;
            let key = route.key.map(Bytes::from);
            let partition = match b.shared.appender.partition(topic, key.as_deref()).await {
                Ok(n) => n,
                Err(e) => {
                    let d = Done {
                        ack,
                        result: Err(Arc::new(e)),
                        appended: None,
                    };
                    self.pending.push_back(Box::pin(async move { d }));
                    continue;
                }
            };
            let bytes = p.payload.len();
            let mut record = record_of(&p, key, &b.client_id);
            record.headers.push(Header {
                key: "mqtt.bridge".into(),
                value: Some(b.name_bytes.clone()),
            });
            let rx = b.shared.appender.submit(topic, partition, vec![record]);
            self.pending.push_back(Box::pin(async move {
                let result = rx
                    .await
                    .unwrap_or_else(|_| Err(Arc::new(LogError::Closed)))
                    .map(|_| ());
                Done {
                    ack,
                    result,
                    appended: Some(bytes),
                }
            }));
        }
    }

    /// A message's append finished (they finish in arrival order): acknowledge it upstream,
    /// or, if it failed, drop the connection so the broker sends it again.
    fn done(&mut self, d: Done) -> Result<(), End> {
        self.inflight -= 1;
        let m = &self.bridge.metrics;
        match d.result {
            Ok(()) => {
                if let Some(bytes) = d.appended {
                    m.messages.inc();
                    m.bytes.inc_by(bytes as u64);
                }
            }
            Err(e) if matches!(*e, LogError::RecordTooLarge { .. }) => {
                m.dropped_too_large.inc();
                tracing::warn!(bridge = self.bridge.config.name, error = %e, "MQTT bridge: message dropped (the log can never take it)");
            }
            Err(e) => {
                return Err(End::Reconnect(
                    "append_failed",
                    format!("append failed, the broker will redeliver: {e}"),
                ));
            }
        }
        match d.ack {
            Some((id, QoS::AtLeastOnce)) => self.send(Packet::PubAck(id, reason::SUCCESS)),
            Some((id, QoS::ExactlyOnce)) => self.send(Packet::PubRec(id, reason::SUCCESS)),
            _ => Ok(()),
        }
    }

    /// Shutdown: acknowledge what becomes durable, then DISCONNECT keeping the session.
    async fn drain(&mut self) -> End {
        let deadline = tokio::time::sleep(Duration::from_secs(5));
        tokio::pin!(deadline);
        while !self.pending.is_empty() {
            tokio::select! {
                _ = &mut deadline => break,
                Some(d) = self.pending.next() => {
                    if self.done(d).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = self.send(Packet::Disconnect(reason::SUCCESS, None));
        let _ = self.client.flush().await;
        End::Cancelled
    }
}

fn ack_of(p: &Publish) -> Option<(NonZeroU16, QoS)> {
    match (p.qos, p.packet_id) {
        (QoS::AtMostOnce, _) | (_, None) => None,
        (q, Some(id)) => Some((id, q)),
    }
}
