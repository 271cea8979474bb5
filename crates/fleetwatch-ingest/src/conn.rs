//! One client connection: CONNECT, then publishes in, acknowledgements and deliveries out.
//!
//! The loop reads whatever the socket has, decodes every whole packet in it, and submits the
//! publishes of that read to the [`Appender`](crate::appender::Appender) grouped by partition; their acknowledgements
//! are queued in order and written when the appends are durable, while reading goes on (up
//! to `mqtt.max_inflight` unacknowledged publishes, then reading pauses). Deliveries to
//! subscribers come from `deliver` pumps through a channel. Bad input ends only this
//! connection, with the reason code MQTT 5 has for it.

use crate::appender::JobResult;
use crate::deliver::{Delivery, Pumps};
use crate::mapping::{ClientIdentity, KeySelect};
use crate::packet::{Codec, ConnAck, Connect, Packet, PacketError, Publish, QoS, Version, reason};
use crate::server::Shared;
use crate::session::{Owned, Sub};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use fleetwatch_core::{Header, Record, TimestampType, now_ms};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use std::collections::HashMap;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Topic aliases a MQTT 5 client may use towards us.
const TOPIC_ALIAS_MAX: u16 = 64;
/// Longest a write to a client may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long pending appends may take to finish when the connection ends.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The client sent DISCONNECT (will suppressed unless reason 0x04).
    Disconnect { with_will: bool },
    /// The socket closed or failed.
    Gone,
    /// We close it, with this MQTT 5 reason and metric label.
    Close(u8, &'static str, String),
    /// Another connection took the session.
    TakenOver,
    /// The server stops.
    Shutdown,
}

struct AckInfo {
    id: Option<NonZeroU16>,
    qos: QoS,
    bytes: usize,
    received: Instant,
}

/// What the acknowledgement queue yields, in the order it was queued.
enum Ready {
    /// A job's appends finished.
    Job(JobResult, Vec<AckInfo>),
    /// A packet queued behind earlier acknowledgements.
    Send(Packet),
}

type Pending = FuturesOrdered<BoxFuture<'static, Ready>>;

/// Publishes of one read, per (topic, partition), with their acknowledgements to send.
type Batch = Vec<((String, i32), Vec<Record>, Vec<AckInfo>)>;

struct Conn<'a> {
    shared: &'a Shared,
    codec: Codec,
    version: Version,
    client_id: String,
    username: Option<String>,
    out: BytesMut,
    pending: Pending,
    inflight: usize,
    aliases: HashMap<u16, ByteString>,
    session: Owned,
    pumps: Pumps,
    next_out_id: u16,
    /// QoS 1 deliveries awaiting PUBACK: packet id → where it came from.
    outgoing: HashMap<u16, Delivery>,
    client_receive_max: usize,
}

/// Serves one accepted connection until it ends.
pub async fn serve<S>(
    shared: Arc<Shared>,
    mut io: S,
    connect_deadline: Duration,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut codec = Codec::new(shared.max_packet);
    let connect = match tokio::time::timeout(
        connect_deadline,
        read_connect(&mut io, &mut codec, &mut inbuf),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            shared.metrics.rejected(e.label());
            tracing::debug!(error = %e, "MQTT connection refused before CONNECT");
            if codec.version() == Some(Version::V5) {
                let mut out = BytesMut::new();
                let _ = codec.encode(Packet::Disconnect(e.reason(), None), &mut out);
                let _ = io.write_all(&out).await;
            }
            return;
        }
        Err(_) => {
            shared.metrics.rejected("connect_timeout");
            return;
        }
    };
    let version = connect.version;
    let mut out = BytesMut::new();
    let refuse = |code: u8, codec: &mut Codec, out: &mut BytesMut| {
        let _ = codec.encode(
            Packet::ConnAck(Box::new(ConnAck {
                code,
                ..ConnAck::accepted()
            })),
            out,
        );
    };

    // Client id.
    let mut assigned = None;
    let client_id = if connect.client_id.is_empty() {
        if !connect.clean_start && version != Version::V5 {
            shared.metrics.rejected("client_id");
            refuse(reason::CLIENT_ID_INVALID, &mut codec, &mut out);
            let _ = io.write_all(&out).await;
            return;
        }
        let id = format!("fw-{:016x}", rand_id());
        assigned = Some(ByteString::from(id.clone()));
        id
    } else {
        connect.client_id.to_string()
    };

    // Login.
    let username = connect.username.as_ref().map(|u| u.to_string());
    if !shared
        .security
        .login(username.as_deref(), connect.password.clone())
        .await
    {
        shared.metrics.rejected("bad_login");
        tracing::info!(
            client_id,
            username = username.as_deref().unwrap_or(""),
            "MQTT login refused"
        );
        refuse(reason::BAD_LOGIN, &mut codec, &mut out);
        let _ = io.write_all(&out).await;
        return;
    }
    if let Some(w) = &connect.will
        && let Err(code) = shared.check_publish_target(&w.topic, &client_id, username.as_deref())
    {
        shared.metrics.rejected("not_authorized");
        refuse(
            if code == reason::TOPIC_NAME_INVALID {
                reason::TOPIC_NAME_INVALID
            } else {
                reason::NOT_AUTHORIZED
            },
            &mut codec,
            &mut out,
        );
        let _ = io.write_all(&out).await;
        return;
    }

    // Session.
    let expiry = if version == Version::V5 {
        connect
            .session_expiry_s
            .min(shared.config.max_session_expiry_s)
    } else if connect.clean_start {
        0
    } else {
        u32::MAX
    };
    let Some(session) = shared
        .sessions
        .take(&client_id, connect.clean_start, expiry)
        .await
    else {
        shared.metrics.rejected("session_busy");
        refuse(reason::SERVER_UNAVAILABLE, &mut codec, &mut out);
        let _ = io.write_all(&out).await;
        return;
    };

    // Keep-alive: 1.5 × what we grant.
    let max_ka = shared.config.max_keep_alive_s;
    let (keep_alive, server_ka) =
        if version == Version::V5 && (connect.keep_alive == 0 || connect.keep_alive > max_ka) {
            (max_ka, Some(max_ka))
        } else {
            (connect.keep_alive, None)
        };
    let restored = match shared
        .restore_session(&client_id, &session, connect.clean_start)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(client_id, error = %e, "could not read the stored MQTT session");
            false
        }
    };
    let ack = ConnAck {
        session_present: session.present || restored,
        code: reason::SUCCESS,
        receive_maximum: shared.config.max_inflight,
        max_packet_size: shared.max_packet,
        server_keep_alive: server_ka,
        assigned_client_id: assigned,
        session_expiry_s: (version == Version::V5 && expiry != connect.session_expiry_s)
            .then_some(expiry),
        topic_alias_max: TOPIC_ALIAS_MAX,
        reason_string: None,
    };
    if let Some(max) = connect.max_packet_size {
        codec.set_max_out(max);
    }
    if codec
        .encode(Packet::ConnAck(Box::new(ack)), &mut out)
        .is_err()
    {
        return;
    }
    if write_out(&mut io, &mut out).await.is_err() {
        return;
    }
    shared.metrics.clients.inc();
    tracing::debug!(
        client_id,
        version = version.as_str(),
        "MQTT client connected"
    );

    let kicked = session.kicked.clone();
    let mut conn = Conn {
        shared: &shared,
        codec,
        version,
        client_id: client_id.clone(),
        username,
        out,
        pending: FuturesOrdered::new(),
        inflight: 0,
        aliases: HashMap::new(),
        pumps: Pumps::new(shared.log.clone()),
        session,
        next_out_id: 0,
        outgoing: HashMap::new(),
        client_receive_max: usize::from(connect.receive_maximum.max(1)),
    };
    conn.resume_subscriptions().await;
    let end = conn
        .run(&mut io, &mut inbuf, keep_alive, &cancel, &kicked)
        .await;
    conn.finish(&mut io, end, *connect).await;
    shared.metrics.clients.dec();
}

async fn read_connect<S: AsyncRead + Unpin>(
    io: &mut S,
    codec: &mut Codec,
    buf: &mut BytesMut,
) -> Result<Box<Connect>, PacketError> {
    loop {
        if let Some(p) = codec.decode(buf)? {
            return match p {
                Packet::Connect(c) => Ok(c),
                other => Err(PacketError::BadProtocol(format!(
                    "the first packet must be CONNECT, not {}",
                    other.name()
                ))),
            };
        }
        match io.read_buf(buf).await {
            Ok(0) | Err(_) => {
                return Err(PacketError::Malformed(
                    "connection closed before CONNECT".into(),
                ));
            }
            Ok(_) => {}
        }
    }
}

async fn write_out<S: AsyncWrite + Unpin>(io: &mut S, out: &mut BytesMut) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(WRITE_TIMEOUT, io.write_all(out)).await {
        Ok(r) => {
            out.clear();
            r
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out",
        )),
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl Conn<'_> {
    fn identity(&self) -> ClientIdentity<'_> {
        ClientIdentity {
            client_id: &self.client_id,
            username: self.username.as_deref(),
        }
    }

    fn send(&mut self, p: Packet) -> Result<(), End> {
        self.codec
            .encode(p, &mut self.out)
            .map_err(|e| End::Close(reason::UNSPECIFIED, "encode", e.to_string()))
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        inbuf: &mut BytesMut,
        keep_alive: u16,
        cancel: &CancellationToken,
        kicked: &CancellationToken,
    ) -> End {
        let ka = (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500));
        let mut last_heard = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Packets already read with the CONNECT.
        if let Err(e) = self.process(inbuf).await {
            return e;
        }
        loop {
            if let Err(e) = write_out(io, &mut self.out).await {
                tracing::debug!(client_id = self.client_id, error = %e, "MQTT write failed");
                return End::Gone;
            }
            let can_read = self.inflight < usize::from(self.shared.config.max_inflight);
            let can_deliver = self.outgoing.len() < self.client_receive_max;
            if inbuf.capacity() - inbuf.len() < 4096 {
                inbuf.reserve(16 * 1024);
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return End::Shutdown,
                _ = kicked.cancelled() => return End::TakenOver,
                Some(ready) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Err(e) = self.ready(ready) {
                        return e;
                    }
                }
                r = io.read_buf(inbuf), if can_read => {
                    match r {
                        Ok(0) => return End::Gone,
                        Ok(_) => {
                            last_heard = Instant::now();
                            if let Err(e) = self.process(inbuf).await {
                                return e;
                            }
                        }
                        Err(_) => return End::Gone,
                    }
                }
                Some(d) = self.pumps.next(), if can_deliver => {
                    if let Err(e) = self.deliver(d) {
                        return e;
                    }
                }
                _ = tick.tick() => {
                    if let Some(ka) = ka && last_heard.elapsed() > ka {
                        return End::Close(reason::KEEP_ALIVE_TIMEOUT, "keep_alive", format!("nothing heard for 1.5 × keep-alive ({keep_alive} s)"));
                    }
                    self.commit(false).await;
                }
            }
        }
    }

    /// Decodes and handles every whole packet in `inbuf`.
    async fn process(&mut self, inbuf: &mut BytesMut) -> Result<(), End> {
        // Publishes of this read, grouped by (topic, partition), in arrival order.
        let mut batch: Batch = Vec::new();
        let result = loop {
            let packet = match self.codec.decode(inbuf) {
                Ok(Some(p)) => p,
                Ok(None) => break Ok(()),
                Err(e) => break Err(End::Close(e.reason(), e.label(), e.to_string())),
            };
            match packet {
                Packet::Publish(p) => {
                    if let Err(e) = self.publish(*p, &mut batch).await {
                        break Err(e);
                    }
                }
                Packet::PubRel(id, _) => {
                    let known = self.session.state().qos2.remove(&id.get());
                    // Flush what is batched first, so PUBCOMP follows earlier PUBRECs.
                    self.submit(std::mem::take(&mut batch));
                    let code = if known {
                        reason::SUCCESS
                    } else {
                        reason::PACKET_ID_NOT_FOUND
                    };
                    self.queue_ack(Packet::PubComp(id, code));
                }
                Packet::PubAck(id, _) => {
                    if let Some(d) = self.outgoing.remove(&id.get()) {
                        self.pumps.acked(&d);
                    }
                }
                Packet::PubRec(id, _) => {
                    // We send QoS ≤ 1 only; answer as the protocol asks.
                    self.outgoing.remove(&id.get());
                    if let Err(e) = self.send(Packet::PubRel(id, reason::PACKET_ID_NOT_FOUND)) {
                        break Err(e);
                    }
                }
                Packet::PubComp(..) => {}
                Packet::Subscribe(id, filters) => {
                    self.submit(std::mem::take(&mut batch));
                    if let Err(e) = self.subscribe(id, filters).await {
                        break Err(e);
                    }
                }
                Packet::Unsubscribe(id, filters) => {
                    self.submit(std::mem::take(&mut batch));
                    if let Err(e) = self.unsubscribe(id, filters).await {
                        break Err(e);
                    }
                }
                Packet::PingReq => {
                    self.submit(std::mem::take(&mut batch));
                    self.queue_ack(Packet::PingResp);
                }
                Packet::Disconnect(code, expiry) => {
                    if let Some(e) = expiry
                        && self.version == Version::V5
                    {
                        self.session.state().expiry_s =
                            e.min(self.shared.config.max_session_expiry_s);
                    }
                    break Err(End::Disconnect {
                        with_will: code == 0x04,
                    });
                }
                Packet::Connect(_) => {
                    break Err(End::Close(
                        reason::PROTOCOL_ERROR,
                        "protocol_error",
                        "a second CONNECT on one connection".into(),
                    ));
                }
                Packet::Auth => {
                    break Err(End::Close(
                        reason::PROTOCOL_ERROR,
                        "protocol_error",
                        "AUTH (enhanced authentication) is not supported".into(),
                    ));
                }
                other => {
                    break Err(End::Close(
                        reason::PROTOCOL_ERROR,
                        "protocol_error",
                        format!("{} is not sent by clients", other.name()),
                    ));
                }
            }
        };
        self.submit(batch);
        result
    }

    /// One PUBLISH: checks it, adds it to `batch` (or answers it at once).
    async fn publish(&mut self, mut p: Publish, batch: &mut Batch) -> Result<(), End> {
        let received = Instant::now();
        // Topic aliases (MQTT 5).
        if let Some(alias) = p.topic_alias {
            if alias.get() > TOPIC_ALIAS_MAX {
                return Err(End::Close(
                    reason::TOPIC_ALIAS_INVALID,
                    "protocol_error",
                    format!("topic alias {alias} is over the maximum {TOPIC_ALIAS_MAX}"),
                ));
            }
            if p.topic.is_empty() {
                match self.aliases.get(&alias.get()) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return Err(End::Close(
                            reason::TOPIC_ALIAS_INVALID,
                            "protocol_error",
                            format!("topic alias {alias} was never set"),
                        ));
                    }
                }
            } else {
                self.aliases.insert(alias.get(), p.topic.clone());
            }
        }
        if p.qos == QoS::ExactlyOnce
            && let Some(id) = p.packet_id
            && self.session.state().qos2.contains(&id.get())
        {
            // A resend of a publish already durable: acknowledge, append nothing.
            self.submit(std::mem::take(batch));
            self.queue_ack(Packet::PubRec(id, reason::SUCCESS));
            return Ok(());
        }
        if let Err(code) =
            self.shared
                .check_publish_target(&p.topic, &self.client_id, self.username.as_deref())
        {
            let label = if code == reason::NOT_AUTHORIZED {
                "not_authorized"
            } else {
                "unmapped"
            };
            return self.refuse_publish(&p, code, label, batch);
        }
        let Some(route) = self.shared.mapping.route(&p.topic, &self.identity()) else {
            return self.refuse_publish(&p, reason::TOPIC_NAME_INVALID, "unmapped", batch);
        };
        let topic = route.topic.to_string();
        let key = route.key.map(Bytes::from);
        let partition = match self.shared.appender.partition(&topic, key.as_deref()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(topic, error = %e, "MQTT publish: no partition");
                return self.refuse_publish(&p, reason::UNSPECIFIED, "append_failed", batch);
            }
        };
        let bytes = p.payload.len();
        let record = record_of(&p, key, &self.client_id);
        let info = AckInfo {
            id: p.packet_id,
            qos: p.qos,
            bytes,
            received,
        };
        self.inflight += 1;
        let k = (topic, partition);
        match batch.iter_mut().find(|(bk, _, _)| *bk == k) {
            Some((_, recs, acks)) => {
                recs.push(record);
                acks.push(info);
            }
            None => batch.push((k, vec![record], vec![info])),
        }
        Ok(())
    }

    fn refuse_publish(
        &mut self,
        p: &Publish,
        code: u8,
        label: &'static str,
        batch: &mut Batch,
    ) -> Result<(), End> {
        self.shared.metrics.rejected(label);
        let why = match code {
            reason::NOT_AUTHORIZED => format!("not authorized to publish to {:?}", p.topic),
            reason::TOPIC_NAME_INVALID => format!(
                "no mqtt.publish_map rule maps {:?} (mqtt.unmapped = \"reject\")",
                p.topic
            ),
            _ => format!("publish to {:?} could not be appended", p.topic),
        };
        tracing::debug!(client_id = self.client_id, why, "MQTT publish refused");
        match (self.version, p.qos, p.packet_id) {
            (Version::V5, QoS::AtLeastOnce, Some(id)) => {
                self.submit(std::mem::take(batch));
                self.queue_ack(Packet::PubAck(id, code));
                Ok(())
            }
            (Version::V5, QoS::ExactlyOnce, Some(id)) => {
                self.submit(std::mem::take(batch));
                self.queue_ack(Packet::PubRec(id, code));
                Ok(())
            }
            // QoS 0 in MQTT 5: nothing to answer on; dropped and counted.
            (Version::V5, _, _) => Ok(()),
            // MQTT 3.1.1 cannot say no to a publish: disconnect without acknowledging.
            _ => Err(End::Close(code, label, why)),
        }
    }

    /// Hands the batched publishes to the appender and queues their acknowledgements.
    fn submit(&mut self, batch: Batch) {
        for ((topic, partition), records, acks) in batch {
            let rx = self.shared.appender.submit(&topic, partition, records);
            self.pending.push_back(Box::pin(async move {
                let r = rx
                    .await
                    .unwrap_or_else(|_| Err(Arc::new(fleetwatch_core::LogError::Closed)));
                Ready::Job(r, acks)
            }));
        }
    }

    /// Queues a packet behind every pending acknowledgement (so order is kept).
    fn queue_ack(&mut self, p: Packet) {
        if self.pending.is_empty() {
            if let Err(e) = self.send(p) {
                tracing::debug!(client_id = self.client_id, error = ?e, "MQTT encode failed");
            }
        } else {
            self.pending
                .push_back(Box::pin(async move { Ready::Send(p) }));
        }
    }

    /// What the acknowledgement queue yielded: a job's acknowledgements, or a queued packet.
    fn ready(&mut self, ready: Ready) -> Result<(), End> {
        match ready {
            Ready::Job(result, acks) => self.acknowledge(result, acks),
            Ready::Send(p) => self.send(p),
        }
    }

    /// A job's appends are durable (or failed): write its acknowledgements.
    fn acknowledge(&mut self, result: JobResult, acks: Vec<AckInfo>) -> Result<(), End> {
        self.inflight -= acks.len();
        match result {
            Ok(_) => {
                for a in acks {
                    self.shared.metrics.message_in(a.qos as usize, a.bytes);
                    let Some(id) = a.id else { continue };
                    let p = match a.qos {
                        QoS::AtLeastOnce => Packet::PubAck(id, reason::SUCCESS),
                        QoS::ExactlyOnce => {
                            self.session.state().qos2.insert(id.get());
                            Packet::PubRec(id, reason::SUCCESS)
                        }
                        QoS::AtMostOnce => continue,
                    };
                    self.send(p)?;
                    self.shared
                        .metrics
                        .ack_latency
                        .observe(a.received.elapsed().as_secs_f64());
                }
                Ok(())
            }
            Err(e) => {
                self.shared.metrics.rejected("append_failed");
                tracing::warn!(client_id = self.client_id, error = %e, "MQTT publish not appended");
                if self.version != Version::V5 {
                    return Err(End::Close(
                        reason::UNSPECIFIED,
                        "append_failed",
                        format!("append failed: {e}"),
                    ));
                }
                for a in acks {
                    let Some(id) = a.id else { continue };
                    let p = match a.qos {
                        QoS::AtLeastOnce => Packet::PubAck(id, reason::UNSPECIFIED),
                        _ => Packet::PubRec(id, reason::UNSPECIFIED),
                    };
                    self.send(p)?;
                }
                Ok(())
            }
        }
    }
}

/// The record a publish becomes: payload as value, the mapped key, and the MQTT facts as
/// headers (`mqtt.topic`, `mqtt.qos`, `mqtt.client_id`, `mqtt.packet_id`, `mqtt.retain`,
/// then MQTT 5 user properties under their own names).
pub(crate) fn record_of(p: &Publish, key: Option<Bytes>, client_id: &str) -> Record {
    let mut headers = Vec::with_capacity(4 + p.user_properties.len());
    let h = |k: &str, v: Bytes| Header {
        key: k.to_string(),
        value: Some(v),
    };
    headers.push(h("mqtt.topic", p.topic.as_bytes().clone()));
    headers.push(h(
        "mqtt.qos",
        Bytes::from_static([b"0", b"1", b"2"][p.qos as usize]),
    ));
    headers.push(h(
        "mqtt.client_id",
        Bytes::copy_from_slice(client_id.as_bytes()),
    ));
    if let Some(id) = p.packet_id {
        headers.push(h("mqtt.packet_id", Bytes::from(id.get().to_string())));
    }
    if p.retain {
        headers.push(h("mqtt.retain", Bytes::from_static(b"1")));
    }
    if let Some(ct) = &p.content_type {
        headers.push(h("mqtt.content_type", ct.as_bytes().clone()));
    }
    for (k, v) in &p.user_properties {
        headers.push(h(k, v.as_bytes().clone()));
    }
    Record {
        key,
        value: Some(p.payload.clone()),
        headers,
        timestamp: now_ms(),
        timestamp_type: TimestampType::CreateTime,
    }
}

impl Conn<'_> {
    /// Whether this session outlives its connection (and so lives in the log).
    fn persistent(&self) -> bool {
        self.session.state().expiry_s > 0
    }

    /// What the session looks like in its groups' commit metadata, for rule `rule`.
    fn stored(&self, rule: usize) -> crate::deliver::StoredSession {
        let st = self.session.state();
        let filters = st
            .subs
            .iter()
            .filter(|(f, _)| {
                self.shared.mapping.subscribe_rules()[rule]
                    .select(f)
                    .is_some()
            })
            .map(|(f, s)| (f.clone(), s.qos.level()))
            .collect();
        crate::deliver::StoredSession {
            filters,
            expiry_s: st.expiry_s,
            seen_ms: now_ms(),
        }
    }

    async fn commit(&mut self, force: bool) {
        if !self.pumps.commit_due(force) {
            return;
        }
        let rules: Vec<usize> = (0..self.shared.mapping.subscribe_rules().len()).collect();
        let stored: HashMap<usize, crate::deliver::StoredSession> =
            rules.iter().map(|&r| (r, self.stored(r))).collect();
        self.pumps.commit(force, &stored).await;
    }

    /// Makes the pump of `rule` follow the session's filters that select from it; starts it
    /// when needed.
    async fn ensure_pump(&mut self, rule: usize) -> Result<(), String> {
        let r = self.shared.mapping.subscribe_rules()[rule].clone();
        let selects: Vec<(String, KeySelect, QoS)> = self
            .session
            .state()
            .subs
            .iter()
            .filter_map(|(f, s)| r.select(f).map(|k| (f.clone(), k, s.qos)))
            .collect();
        if let Some(sel) = self.pumps.selects(rule) {
            if selects.is_empty() {
                self.commit(true).await;
                self.pumps.stop(rule);
            } else if let Ok(mut s) = sel.write() {
                *s = selects;
            }
            return Ok(());
        }
        if selects.is_empty() {
            return Ok(());
        }
        let log = self.shared.log.clone();
        let (group, positions) = if self.persistent() {
            let (g, p) = crate::deliver::open_group(&log, &self.client_id, &r.topic)
                .await
                .map_err(|e| e.to_string())?;
            (Some(g), p)
        } else {
            let p = crate::deliver::positions_of(&log, &r.topic, &[])
                .await
                .map_err(|e| e.to_string())?;
            (None, p)
        };
        self.pumps.start(
            rule,
            r,
            Arc::new(std::sync::RwLock::new(selects)),
            positions,
            group,
        );
        Ok(())
    }

    /// Starts the pumps of a resumed session's subscriptions.
    async fn resume_subscriptions(&mut self) {
        let rules: Vec<usize> = {
            let st = self.session.state();
            (0..self.shared.mapping.subscribe_rules().len())
                .filter(|&i| {
                    st.subs
                        .keys()
                        .any(|f| self.shared.mapping.subscribe_rules()[i].select(f).is_some())
                })
                .collect()
        };
        for r in rules {
            if let Err(e) = self.ensure_pump(r).await {
                tracing::warn!(
                    client_id = self.client_id,
                    error = e,
                    "MQTT session: cannot resume delivery"
                );
            }
        }
        self.commit(true).await;
    }

    async fn subscribe(
        &mut self,
        id: NonZeroU16,
        filters: Vec<crate::packet::SubscribeFilter>,
    ) -> Result<(), End> {
        let mut codes = Vec::with_capacity(filters.len());
        let mut touched = Vec::new();
        for f in filters {
            let filter = f.filter.to_string();
            let code = if let Err(e) = crate::topic::check_topic_filter(&filter) {
                tracing::debug!(client_id = self.client_id, error = %e, "MQTT subscribe refused");
                self.shared.metrics.rejected("bad_filter");
                if filter.starts_with("$share/") {
                    reason::SHARED_NOT_SUPPORTED
                } else {
                    reason::TOPIC_FILTER_INVALID
                }
            } else if !self.shared.security.can_subscribe(
                self.username.as_deref(),
                &self.client_id,
                &filter,
            ) {
                self.shared.metrics.rejected("not_authorized");
                reason::NOT_AUTHORIZED
            } else {
                let rules: Vec<usize> = self
                    .shared
                    .mapping
                    .subscribe_rules()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.select(&filter).is_some())
                    .map(|(i, _)| i)
                    .collect();
                if rules.is_empty() {
                    // Nothing is mapped there: MQTT 5 says why; 3.1.1 gets a failure.
                    self.shared.metrics.rejected("unmapped");
                    reason::TOPIC_FILTER_INVALID
                } else {
                    let qos = f.qos.min(QoS::AtLeastOnce);
                    let new = self
                        .session
                        .state()
                        .subs
                        .insert(filter.clone(), Sub { qos })
                        .is_none();
                    let send_retained = f.retain_handling == 0 || (f.retain_handling == 1 && new);
                    for r in rules {
                        touched.push(r);
                        if send_retained {
                            self.queue_retained(r, &filter, qos).await;
                        }
                    }
                    qos.level()
                }
            };
            codes.push(code);
        }
        for r in touched {
            if let Err(e) = self.ensure_pump(r).await {
                tracing::warn!(
                    client_id = self.client_id,
                    error = e,
                    "MQTT subscribe: cannot start delivery"
                );
            }
        }
        self.commit(true).await;
        self.queue_ack(Packet::SubAck(id, codes));
        Ok(())
    }

    async fn queue_retained(&mut self, rule: usize, filter: &str, qos: QoS) {
        let r = self.shared.mapping.subscribe_rules()[rule].clone();
        let Some(select) = r.select(filter) else {
            return;
        };
        for (partition, offset) in self.shared.retained.lookup(&r.topic, &select) {
            let limits = fleetwatch_core::ReadLimits {
                max_records: 1,
                ..fleetwatch_core::ReadLimits::default()
            };
            let Ok(batch) = self
                .shared
                .log
                .read(&r.topic, partition, offset, limits)
                .await
            else {
                continue;
            };
            let Some(rec) = batch.records.into_iter().find(|c| c.offset == offset) else {
                continue;
            };
            let (Some(value), Some(topic)) =
                (rec.record.value, r.topic_for(rec.record.key.as_deref()))
            else {
                continue;
            };
            self.pumps.push_retained(Delivery {
                rule,
                topic,
                payload: value,
                qos,
                retain: true,
                partition,
                offset,
            });
        }
    }

    async fn unsubscribe(&mut self, id: NonZeroU16, filters: Vec<ByteString>) -> Result<(), End> {
        let mut codes = Vec::with_capacity(filters.len());
        let mut touched = Vec::new();
        for f in filters {
            let removed = self.session.state().subs.remove(&f.to_string()).is_some();
            codes.push(if removed { reason::SUCCESS } else { 0x11 });
            for (i, r) in self.shared.mapping.subscribe_rules().iter().enumerate() {
                if r.select(&f).is_some() {
                    touched.push(i);
                }
            }
        }
        for r in touched {
            if let Err(e) = self.ensure_pump(r).await {
                tracing::warn!(client_id = self.client_id, error = e, "MQTT unsubscribe");
            }
        }
        self.commit(true).await;
        self.queue_ack(Packet::UnsubAck(id, codes));
        Ok(())
    }

    fn deliver(&mut self, d: Delivery) -> Result<(), End> {
        let packet_id = if d.qos == QoS::AtMostOnce {
            None
        } else {
            // Next free packet id.
            loop {
                self.next_out_id = self.next_out_id.wrapping_add(1);
                if self.next_out_id != 0 && !self.outgoing.contains_key(&self.next_out_id) {
                    break;
                }
            }
            NonZeroU16::new(self.next_out_id)
        };
        let bytes = d.payload.len();
        self.send(Packet::Publish(Box::new(Publish {
            topic: ByteString::from(d.topic.clone()),
            payload: d.payload.clone(),
            qos: d.qos,
            retain: d.retain,
            dup: false,
            packet_id,
            topic_alias: None,
            user_properties: Vec::new(),
            content_type: None,
        })))?;
        self.shared.metrics.message_out(d.qos as usize, bytes);
        self.pumps.sent(&d);
        if let Some(id) = packet_id {
            self.outgoing.insert(id.get(), d);
        }
        Ok(())
    }

    /// The connection ends: finish pending appends (their acks go out if the socket is still
    /// there), append the will unless the client disconnected normally, commit delivery
    /// positions, release the session.
    async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        io: &mut S,
        end: End,
        connect: Connect,
    ) {
        let drain = async {
            while let Some(ready) = self.pending.next().await {
                let _ = self.ready(ready);
            }
        };
        if tokio::time::timeout(DRAIN_WAIT, drain).await.is_err() {
            tracing::warn!(
                client_id = self.client_id,
                "MQTT: pending appends did not finish at disconnect"
            );
        }
        let (will, farewell) = match &end {
            End::Disconnect { with_will } => (*with_will, None),
            End::Gone => (true, None),
            End::Close(code, label, why) => {
                self.shared.metrics.rejected(label);
                tracing::info!(
                    client_id = self.client_id,
                    reason = format!("0x{code:02x}"),
                    why,
                    "MQTT connection closed"
                );
                (true, Some(*code))
            }
            End::TakenOver => {
                self.shared.metrics.rejected("taken_over");
                (true, Some(reason::SESSION_TAKEN_OVER))
            }
            End::Shutdown => (false, Some(reason::SHUTTING_DOWN)),
        };
        if let Some(code) = farewell
            && self.version == Version::V5
        {
            let _ = self.send(Packet::Disconnect(code, None));
        }
        let _ = write_out(io, &mut self.out).await;
        let _ = io.shutdown().await;
        if will && let Some(w) = connect.will {
            self.append_will(w).await;
        }
        self.commit(true).await;
        self.pumps.close().await;
        let Conn {
            shared,
            session,
            client_id,
            ..
        } = self;
        shared.sessions.release(&client_id, session);
    }

    async fn append_will(&mut self, w: crate::packet::Will) {
        let p = Publish {
            topic: w.topic,
            payload: w.payload,
            qos: w.qos,
            retain: w.retain,
            dup: false,
            packet_id: None,
            topic_alias: None,
            user_properties: w.user_properties,
            content_type: None,
        };
        let Some(route) = self.shared.mapping.route(&p.topic, &self.identity()) else {
            return;
        };
        let topic = route.topic.to_string();
        let key = route.key.map(Bytes::from);
        let Ok(partition) = self.shared.appender.partition(&topic, key.as_deref()).await else {
            return;
        };
        let mut record = record_of(&p, key, &self.client_id);
        record.headers.push(Header {
            key: "mqtt.will".into(),
            value: Some(Bytes::from_static(b"1")),
        });
        match self
            .shared
            .appender
            .submit(&topic, partition, vec![record])
            .await
        {
            Ok(Ok(_)) => self.shared.metrics.wills.inc(),
            other => {
                tracing::warn!(client_id = self.client_id, result = ?other.map(|r| r.map(|_| ())), "MQTT will not appended")
            }
        }
    }
}
