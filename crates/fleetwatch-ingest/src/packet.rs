//! The one packet model of the proxy, for MQTT 3.1.1 and 5.0 alike.
//!
//! `rmqtt-codec` frames and parses the wire (its v3 and v5 codecs, chosen by the protocol
//! level of the first CONNECT); [`Codec`] converts its packets into [`Packet`] and back, so
//! the session logic is written once. Reason codes are MQTT 5's numbers ([`reason`]); in
//! 3.1.1, which has none, a failure code on an acknowledgement cannot be sent — the session
//! disconnects instead (see [`Codec::encode`]).

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rmqtt_codec::types::QoS as WireQoS;
use rmqtt_codec::{error::DecodeError, v3, v5, version};
use std::num::{NonZeroU16, NonZeroU32};
use tokio_util::codec::{Decoder, Encoder};

/// MQTT 5 reason codes used by the proxy (also the meaning of 3.1.1's CONNACK codes).
pub mod reason {
    /// Success / granted QoS 0 / normal disconnection.
    pub const SUCCESS: u8 = 0x00;
    /// Unspecified error (a failed append).
    pub const UNSPECIFIED: u8 = 0x80;
    /// Malformed packet.
    pub const MALFORMED: u8 = 0x81;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 0x82;
    /// Unsupported protocol version.
    pub const UNSUPPORTED_VERSION: u8 = 0x84;
    /// Client identifier not valid.
    pub const CLIENT_ID_INVALID: u8 = 0x85;
    /// Bad user name or password.
    pub const BAD_LOGIN: u8 = 0x86;
    /// Not authorized.
    pub const NOT_AUTHORIZED: u8 = 0x87;
    /// Server unavailable.
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    /// Server shutting down.
    pub const SHUTTING_DOWN: u8 = 0x8B;
    /// Keep alive timeout.
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    /// Session taken over (same client id connected again).
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    /// Topic filter invalid.
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    /// Topic name invalid (also: no mapping for it).
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// Packet identifier not found (PUBREL without PUBREC).
    pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
    /// Receive maximum exceeded.
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    /// Topic alias invalid.
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    /// Packet too large.
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// Shared subscriptions not supported.
    pub const SHARED_NOT_SUPPORTED: u8 = 0x9E;
}

/// The protocol level of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// MQTT 3.1 (`MQIsdp`, level 3), served as 3.1.1.
    V3_1,
    /// MQTT 3.1.1 (level 4).
    V3_1_1,
    /// MQTT 5.0 (level 5).
    V5,
}

impl Version {
    /// `3.1`, `3.1.1`, `5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V3_1 => "3.1",
            Version::V3_1_1 => "3.1.1",
            Version::V5 => "5",
        }
    }
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once.
    AtMostOnce = 0,
    /// At least once.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// 0, 1 or 2.
    pub fn level(self) -> u8 {
        self as u8
    }
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2"][self as usize]
    }
    fn from_wire(q: WireQoS) -> QoS {
        match q {
            WireQoS::AtMostOnce => QoS::AtMostOnce,
            WireQoS::AtLeastOnce => QoS::AtLeastOnce,
            WireQoS::ExactlyOnce => QoS::ExactlyOnce,
        }
    }
    fn to_wire(self) -> WireQoS {
        match self {
            QoS::AtMostOnce => WireQoS::AtMostOnce,
            QoS::AtLeastOnce => WireQoS::AtLeastOnce,
            QoS::ExactlyOnce => WireQoS::ExactlyOnce,
        }
    }
}

/// A user property (MQTT 5).
pub type UserProperty = (ByteString, ByteString);

/// A will message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Its topic.
    pub topic: ByteString,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS.
    pub qos: QoS,
    /// Its retain flag.
    pub retain: bool,
    /// MQTT 5 will delay, seconds.
    pub delay_s: u32,
    /// MQTT 5 user properties.
    pub user_properties: Vec<UserProperty>,
}

/// CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol level.
    pub version: Version,
    /// Client id (may be empty: the server assigns one).
    pub client_id: ByteString,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Keep alive, seconds (0: none).
    pub keep_alive: u16,
    /// User name.
    pub username: Option<ByteString>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message.
    pub will: Option<Will>,
    /// MQTT 5 session expiry, seconds (3.1.1: 0 when clean, "never" when not).
    pub session_expiry_s: u32,
    /// MQTT 5 receive maximum of the client (what we may send it unacknowledged).
    pub receive_maximum: u16,
    /// MQTT 5 largest packet the client accepts.
    pub max_packet_size: Option<u32>,
    /// MQTT 5 topic aliases the client accepts from us.
    pub topic_alias_max: u16,
}

impl Connect {
    /// A clean-start CONNECT of `client_id` without login or will, keep-alive 60 s, for
    /// clients (tests, benchmarks, the bridge); set fields for more.
    pub fn new(version: Version, client_id: &str) -> Connect {
        Connect {
            version,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            session_expiry_s: 0,
            receive_maximum: u16::MAX,
            max_packet_size: None,
            topic_alias_max: 0,
        }
    }
}

/// CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// A stored session was resumed.
    pub session_present: bool,
    /// MQTT 5 reason code ([`reason`]); mapped to 3.1.1's return codes.
    pub code: u8,
    /// MQTT 5: how many unacknowledged QoS 1/2 publishes we accept.
    pub receive_maximum: u16,
    /// MQTT 5: largest packet we accept.
    pub max_packet_size: u32,
    /// MQTT 5: the keep-alive we enforce, when it differs from the client's.
    pub server_keep_alive: Option<u16>,
    /// MQTT 5: the client id we assigned.
    pub assigned_client_id: Option<ByteString>,
    /// MQTT 5: the session expiry we granted, when less than asked.
    pub session_expiry_s: Option<u32>,
    /// MQTT 5: topic aliases we accept.
    pub topic_alias_max: u16,
    /// MQTT 5: a human-readable reason.
    pub reason_string: Option<ByteString>,
}

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Topic (empty with a topic alias in MQTT 5).
    pub topic: ByteString,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Duplicate flag.
    pub dup: bool,
    /// Packet id (QoS 1 and 2).
    pub packet_id: Option<NonZeroU16>,
    /// MQTT 5 topic alias.
    pub topic_alias: Option<NonZeroU16>,
    /// MQTT 5 user properties.
    pub user_properties: Vec<UserProperty>,
    /// MQTT 5 content type.
    pub content_type: Option<ByteString>,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The filter.
    pub filter: ByteString,
    /// Requested QoS.
    pub qos: QoS,
    /// MQTT 5 retain handling: 0 send retained, 1 only for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// A packet of either protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Box<Connect>),
    /// CONNACK.
    ConnAck(Box<ConnAck>),
    /// PUBLISH.
    Publish(Box<Publish>),
    /// PUBACK with a reason code.
    PubAck(NonZeroU16, u8),
    /// PUBREC with a reason code.
    PubRec(NonZeroU16, u8),
    /// PUBREL with a reason code.
    PubRel(NonZeroU16, u8),
    /// PUBCOMP with a reason code.
    PubComp(NonZeroU16, u8),
    /// SUBSCRIBE.
    Subscribe(NonZeroU16, Vec<SubscribeFilter>),
    /// SUBACK: per filter, the granted QoS or a failure reason code.
    SubAck(NonZeroU16, Vec<u8>),
    /// UNSUBSCRIBE.
    Unsubscribe(NonZeroU16, Vec<ByteString>),
    /// UNSUBACK: per filter, a reason code (MQTT 5).
    UnsubAck(NonZeroU16, Vec<u8>),
    /// PINGREQ.
    PingReq,
    /// PINGRESP.
    PingResp,
    /// DISCONNECT with a reason code (MQTT 5) and, from a client, a new session expiry.
    Disconnect(u8, Option<u32>),
    /// AUTH (MQTT 5 enhanced authentication; not supported).
    Auth,
}

impl Packet {
    /// The packet type's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(..) => "PUBACK",
            Packet::PubRec(..) => "PUBREC",
            Packet::PubRel(..) => "PUBREL",
            Packet::PubComp(..) => "PUBCOMP",
            Packet::Subscribe(..) => "SUBSCRIBE",
            Packet::SubAck(..) => "SUBACK",
            Packet::Unsubscribe(..) => "UNSUBSCRIBE",
            Packet::UnsubAck(..) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(..) => "DISCONNECT",
            Packet::Auth => "AUTH",
        }
    }
}

/// Why bytes could not be read as packets. The message says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Over the packet size limit.
    #[error("packet of {size} bytes is over the limit of {max} bytes (mqtt.max_packet_size)")]
    TooLarge {
        /// Its remaining length.
        size: u32,
        /// The limit.
        max: u32,
    },
    /// The first packet is not a CONNECT, or names an unknown protocol.
    #[error("{0}")]
    BadProtocol(String),
    /// Not a valid packet.
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl PacketError {
    /// The MQTT 5 reason code to disconnect with.
    pub fn reason(&self) -> u8 {
        match self {
            PacketError::TooLarge { .. } => reason::PACKET_TOO_LARGE,
            PacketError::BadProtocol(_) => reason::UNSUPPORTED_VERSION,
            PacketError::Malformed(_) => reason::MALFORMED,
        }
    }

    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            PacketError::TooLarge { .. } => "too_large",
            PacketError::BadProtocol(_) => "bad_protocol",
            PacketError::Malformed(_) => "malformed",
        }
    }

    fn from_decode(e: DecodeError) -> PacketError {
        match e {
            DecodeError::MaxSizeExceeded { size, max } => PacketError::TooLarge { size, max },
            DecodeError::InvalidProtocol | DecodeError::UnsupportedProtocolLevel => {
                PacketError::BadProtocol(format!(
                    "not an MQTT 3.1, 3.1.1 or 5.0 CONNECT ({e}); fleetwatch speaks MQTT 3.1.1 and 5.0"
                ))
            }
            other => PacketError::Malformed(other.to_string()),
        }
    }
}

/// Why a packet could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {packet}: {why}")]
pub struct EncodeError {
    packet: &'static str,
    why: String,
}

enum Inner {
    Detect,
    V3(v3::Codec),
    V5(v5::Codec),
}

/// Decodes and encodes one connection's packets; the version is fixed by its CONNECT.
pub struct Codec {
    inner: Inner,
    version: Option<Version>,
    max_in: u32,
}

impl Codec {
    /// A codec for a new connection accepting packets up to `max_packet_size` bytes.
    pub fn new(max_packet_size: u32) -> Codec {
        Codec {
            inner: Inner::Detect,
            version: None,
            max_in: max_packet_size,
        }
    }

    /// A client-side codec of a known version (for tests, benchmarks and the bridge).
    pub fn client(version: Version, max_packet_size: u32) -> Codec {
        let mut c = Codec::new(max_packet_size);
        c.set_version(version);
        c
    }

    fn set_version(&mut self, v: Version) {
        self.version = Some(v);
        self.inner = match v {
            Version::V5 => Inner::V5(v5::Codec::new(self.max_in, 0)),
            _ => Inner::V3(v3::Codec::new(self.max_in)),
        };
    }

    /// The version, once the CONNECT has been read.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// Sets the largest packet the peer accepts (MQTT 5 CONNECT's maximum packet size).
    pub fn set_max_out(&mut self, max: u32) {
        if let Inner::V5(c) = &mut self.inner {
            c.set_max_outbound_size(max);
        }
    }

    /// The next whole packet in `buf` (consumed), `None` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, PacketError> {
        if let Inner::Detect = self.inner {
            let detected = version::VersionCodec.decode(buf).map_err(|e| match e {
                DecodeError::UnsupportedPacketType => {
                    PacketError::BadProtocol("the first packet must be CONNECT".into())
                }
                e => PacketError::from_decode(e),
            })?;
            let Some(v) = detected else {
                return Ok(None);
            };
            self.set_version(match v {
                version::ProtocolVersion::MQTT5 => Version::V5,
                version::ProtocolVersion::MQTT3 => Version::V3_1_1,
            });
        }
        match &mut self.inner {
            Inner::V3(c) => match c.decode(buf).map_err(PacketError::from_decode)? {
                Some((p, _)) => {
                    let p = from_v3(p)?;
                    if let Packet::Connect(c) = &p {
                        self.version = Some(c.version);
                    }
                    Ok(Some(p))
                }
                None => Ok(None),
            },
            Inner::V5(c) => match c.decode(buf).map_err(PacketError::from_decode)? {
                Some((p, _)) => Ok(Some(from_v5(p)?)),
                None => Ok(None),
            },
            Inner::Detect => Ok(None),
        }
    }

    /// Appends `packet` to `buf`. In 3.1.1 a failure reason code on PUBACK/PUBREC cannot be
    /// expressed: that is an error, and the caller disconnects instead.
    pub fn encode(&mut self, packet: Packet, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let name = packet.name();
        let err = |why: String| EncodeError { packet: name, why };
        match &mut self.inner {
            Inner::V3(c) => {
                let p = to_v3(packet).map_err(err)?;
                c.encode(p, buf).map_err(|e| err(e.to_string()))
            }
            Inner::V5(c) => {
                let p = to_v5(packet).map_err(err)?;
                c.encode(p, buf).map_err(|e| err(e.to_string()))
            }
            Inner::Detect => Err(err("no CONNECT read yet".into())),
        }
    }
}

fn nz(id: u16) -> Result<NonZeroU16, String> {
    NonZeroU16::new(id).ok_or_else(|| "packet id 0".to_string())
}

fn from_v3(p: v3::Packet) -> Result<Packet, PacketError> {
    Ok(match p {
        v3::Packet::Connect(c) => Packet::Connect(Box::new(Connect {
            version: if c.protocol.level() == 3 {
                Version::V3_1
            } else {
                Version::V3_1_1
            },
            client_id: c.client_id,
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            username: c.username,
            password: c.password,
            will: c.last_will.map(|w| Will {
                topic: w.topic,
                payload: w.message,
                qos: QoS::from_wire(w.qos),
                retain: w.retain,
                delay_s: 0,
                user_properties: Vec::new(),
            }),
            session_expiry_s: if c.clean_session { 0 } else { u32::MAX },
            receive_maximum: u16::MAX,
            max_packet_size: None,
            topic_alias_max: 0,
        })),
        v3::Packet::Publish(p) => Packet::Publish(Box::new(Publish {
            topic: p.topic,
            payload: p.payload,
            qos: QoS::from_wire(p.qos),
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id,
            topic_alias: None,
            user_properties: Vec::new(),
            content_type: None,
        })),
        v3::Packet::PublishAck { packet_id } => Packet::PubAck(packet_id, 0),
        v3::Packet::PublishReceived { packet_id } => Packet::PubRec(packet_id, 0),
        v3::Packet::PublishRelease { packet_id } => Packet::PubRel(packet_id, 0),
        v3::Packet::PublishComplete { packet_id } => Packet::PubComp(packet_id, 0),
        v3::Packet::Subscribe {
            packet_id,
            topic_filters,
        } => Packet::Subscribe(
            packet_id,
            topic_filters
                .into_iter()
                .map(|(filter, qos)| SubscribeFilter {
                    filter,
                    qos: QoS::from_wire(qos),
                    retain_handling: 0,
                })
                .collect(),
        ),
        v3::Packet::Unsubscribe {
            packet_id,
            topic_filters,
        } => Packet::Unsubscribe(packet_id, topic_filters),
        v3::Packet::PingRequest => Packet::PingReq,
        v3::Packet::PingResponse => Packet::PingResp,
        v3::Packet::Disconnect => Packet::Disconnect(0, None),
        v3::Packet::ConnectAck(a) => Packet::ConnAck(Box::new(ConnAck {
            session_present: a.session_present,
            code: match a.return_code {
                v3::ConnectAckReason::ConnectionAccepted => reason::SUCCESS,
                v3::ConnectAckReason::UnacceptableProtocolVersion => reason::UNSUPPORTED_VERSION,
                v3::ConnectAckReason::IdentifierRejected => reason::CLIENT_ID_INVALID,
                v3::ConnectAckReason::ServiceUnavailable => reason::SERVER_UNAVAILABLE,
                v3::ConnectAckReason::BadUserNameOrPassword => reason::BAD_LOGIN,
                _ => reason::NOT_AUTHORIZED,
            },
            ..ConnAck::accepted()
        })),
        v3::Packet::SubscribeAck { packet_id, status } => Packet::SubAck(
            packet_id,
            status
                .into_iter()
                .map(|s| match s {
                    v3::SubscribeReturnCode::Success(q) => q.value(),
                    v3::SubscribeReturnCode::Failure => reason::UNSPECIFIED,
                })
                .collect(),
        ),
        v3::Packet::UnsubscribeAck { packet_id } => Packet::UnsubAck(packet_id, Vec::new()),
    })
}

fn from_v5(p: v5::Packet) -> Result<Packet, PacketError> {
    Ok(match p {
        v5::Packet::Connect(c) => Packet::Connect(Box::new(Connect {
            version: Version::V5,
            client_id: c.client_id,
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            username: c.username,
            password: c.password,
            will: c.last_will.map(|w| Will {
                topic: w.topic,
                payload: w.message,
                qos: QoS::from_wire(w.qos),
                retain: w.retain,
                delay_s: w.will_delay_interval_sec.unwrap_or(0),
                user_properties: w.user_properties,
            }),
            session_expiry_s: c.session_expiry_interval_secs,
            receive_maximum: c.receive_max.map(NonZeroU16::get).unwrap_or(u16::MAX),
            max_packet_size: c.max_packet_size.map(NonZeroU32::get),
            topic_alias_max: c.topic_alias_max,
        })),
        v5::Packet::Publish(p) => {
            let props = p.properties.unwrap_or_default();
            Packet::Publish(Box::new(Publish {
                topic: p.topic,
                payload: p.payload,
                qos: QoS::from_wire(p.qos),
                retain: p.retain,
                dup: p.dup,
                packet_id: p.packet_id,
                topic_alias: props.topic_alias,
                user_properties: props.user_properties,
                content_type: props.content_type,
            }))
        }
        v5::Packet::PublishAck(a) => Packet::PubAck(a.packet_id, a.reason_code as u8),
        v5::Packet::PublishReceived(a) => Packet::PubRec(a.packet_id, a.reason_code as u8),
        v5::Packet::PublishRelease(a) => Packet::PubRel(a.packet_id, a.reason_code as u8),
        v5::Packet::PublishComplete(a) => Packet::PubComp(a.packet_id, a.reason_code as u8),
        v5::Packet::Subscribe(s) => Packet::Subscribe(
            s.packet_id,
            s.topic_filters
                .into_iter()
                .map(|(filter, o)| SubscribeFilter {
                    filter,
                    qos: QoS::from_wire(o.qos),
                    retain_handling: o.retain_handling as u8,
                })
                .collect(),
        ),
        v5::Packet::Unsubscribe(u) => Packet::Unsubscribe(u.packet_id, u.topic_filters),
        v5::Packet::PingRequest => Packet::PingReq,
        v5::Packet::PingResponse => Packet::PingResp,
        v5::Packet::Disconnect(d) => {
            Packet::Disconnect(d.reason_code as u8, d.session_expiry_interval_secs)
        }
        v5::Packet::Auth(_) => Packet::Auth,
        v5::Packet::ConnectAck(a) => Packet::ConnAck(Box::new(ConnAck {
            session_present: a.session_present,
            code: a.reason_code as u8,
            receive_maximum: a.receive_max.get(),
            max_packet_size: a.max_packet_size.unwrap_or(0),
            server_keep_alive: a.server_keepalive_sec,
            assigned_client_id: a.assigned_client_id,
            session_expiry_s: a.session_expiry_interval_secs,
            topic_alias_max: a.topic_alias_max,
            reason_string: a.reason_string,
        })),
        v5::Packet::SubscribeAck(a) => {
            Packet::SubAck(a.packet_id, a.status.into_iter().map(|s| s as u8).collect())
        }
        v5::Packet::UnsubscribeAck(a) => {
            Packet::UnsubAck(a.packet_id, a.status.into_iter().map(|s| s as u8).collect())
        }
    })
}

impl ConnAck {
    /// An accepting CONNACK with no extras.
    pub fn accepted() -> ConnAck {
        ConnAck {
            session_present: false,
            code: reason::SUCCESS,
            receive_maximum: u16::MAX,
            max_packet_size: 0,
            server_keep_alive: None,
            assigned_client_id: None,
            session_expiry_s: None,
            topic_alias_max: 0,
            reason_string: None,
        }
    }
}

fn to_v3(p: Packet) -> Result<v3::Packet, String> {
    let ok = |code: u8, what: &str| {
        if code < 0x80 {
            Ok(())
        } else {
            Err(format!(
                "MQTT 3.1.1 has no failure {what} (reason 0x{code:02x})"
            ))
        }
    };
    Ok(match p {
        Packet::ConnAck(a) => v3::Packet::ConnectAck(v3::ConnectAck {
            session_present: a.session_present,
            return_code: match a.code {
                reason::SUCCESS => v3::ConnectAckReason::ConnectionAccepted,
                reason::UNSUPPORTED_VERSION => v3::ConnectAckReason::UnacceptableProtocolVersion,
                reason::CLIENT_ID_INVALID => v3::ConnectAckReason::IdentifierRejected,
                reason::BAD_LOGIN => v3::ConnectAckReason::BadUserNameOrPassword,
                reason::NOT_AUTHORIZED => v3::ConnectAckReason::NotAuthorized,
                _ => v3::ConnectAckReason::ServiceUnavailable,
            },
        }),
        Packet::Publish(p) => v3::Packet::Publish(Box::new(rmqtt_codec::types::Publish {
            dup: p.dup,
            retain: p.retain,
            qos: p.qos.to_wire(),
            topic: p.topic,
            packet_id: p.packet_id,
            payload: p.payload,
            properties: None,
        })),
        Packet::PubAck(id, c) => {
            ok(c, "PUBACK")?;
            v3::Packet::PublishAck { packet_id: id }
        }
        Packet::PubRec(id, c) => {
            ok(c, "PUBREC")?;
            v3::Packet::PublishReceived { packet_id: id }
        }
        Packet::PubRel(id, _) => v3::Packet::PublishRelease { packet_id: id },
        Packet::PubComp(id, _) => v3::Packet::PublishComplete { packet_id: id },
        Packet::SubAck(id, codes) => v3::Packet::SubscribeAck {
            packet_id: id,
            status: codes
                .into_iter()
                .map(|c| match c {
                    0 => v3::SubscribeReturnCode::Success(WireQoS::AtMostOnce),
                    1 => v3::SubscribeReturnCode::Success(WireQoS::AtLeastOnce),
                    2 => v3::SubscribeReturnCode::Success(WireQoS::ExactlyOnce),
                    _ => v3::SubscribeReturnCode::Failure,
                })
                .collect(),
        },
        Packet::UnsubAck(id, _) => v3::Packet::UnsubscribeAck { packet_id: id },
        Packet::PingResp => v3::Packet::PingResponse,
        Packet::PingReq => v3::Packet::PingRequest,
        Packet::Disconnect(..) => v3::Packet::Disconnect,
        Packet::Connect(c) => v3::Packet::Connect(Box::new(v3::Connect {
            protocol: rmqtt_codec::types::Protocol(if c.version == Version::V3_1 { 3 } else { 4 }),
            clean_session: c.clean_start,
            keep_alive: c.keep_alive,
            last_will: c.will.map(|w| v3::LastWill {
                qos: w.qos.to_wire(),
                retain: w.retain,
                topic: w.topic,
                message: w.payload,
            }),
            client_id: c.client_id,
            username: c.username,
            password: c.password,
            cert: None,
        })),
        Packet::Subscribe(id, filters) => v3::Packet::Subscribe {
            packet_id: id,
            topic_filters: filters
                .into_iter()
                .map(|f| (f.filter, f.qos.to_wire()))
                .collect(),
        },
        Packet::Unsubscribe(id, filters) => v3::Packet::Unsubscribe {
            packet_id: id,
            topic_filters: filters,
        },
        Packet::Auth => return Err("MQTT 3.1.1 has no AUTH".into()),
    })
}

fn to_v5(p: Packet) -> Result<v5::Packet, String> {
    let code = |c: u8| c;
    Ok(match p {
        Packet::ConnAck(a) => v5::Packet::ConnectAck(Box::new(v5::ConnectAck {
            session_present: a.session_present,
            reason_code: v5::ConnectAckReason::try_from(a.code)
                .unwrap_or(v5::ConnectAckReason::UnspecifiedError),
            session_expiry_interval_secs: a.session_expiry_s,
            receive_max: NonZeroU16::new(a.receive_maximum).unwrap_or(NonZeroU16::MAX),
            max_packet_size: (a.max_packet_size > 0).then_some(a.max_packet_size),
            assigned_client_id: a.assigned_client_id,
            topic_alias_max: a.topic_alias_max,
            retain_available: true,
            wildcard_subscription_available: true,
            subscription_identifiers_available: false,
            shared_subscription_available: false,
            server_keepalive_sec: a.server_keep_alive,
            reason_string: a.reason_string,
            ..v5::ConnectAck::default()
        })),
        Packet::Publish(p) => v5::Packet::Publish(Box::new(rmqtt_codec::types::Publish {
            dup: p.dup,
            retain: p.retain,
            qos: p.qos.to_wire(),
            topic: p.topic,
            packet_id: p.packet_id,
            payload: p.payload,
            properties: Some(v5::PublishProperties {
                topic_alias: p.topic_alias,
                user_properties: p.user_properties,
                content_type: p.content_type,
                ..v5::PublishProperties::default()
            }),
        })),
        Packet::PubAck(id, c) => v5::Packet::PublishAck(v5::PublishAck {
            packet_id: id,
            reason_code: v5::PublishAckReason::try_from(code(c))
                .unwrap_or(v5::PublishAckReason::UnspecifiedError),
            ..v5::PublishAck::default()
        }),
        Packet::PubRec(id, c) => v5::Packet::PublishReceived(v5::PublishAck {
            packet_id: id,
            reason_code: v5::PublishAckReason::try_from(code(c))
                .unwrap_or(v5::PublishAckReason::UnspecifiedError),
            ..v5::PublishAck::default()
        }),
        Packet::PubRel(id, c) => v5::Packet::PublishRelease(v5::PublishAck2 {
            packet_id: id,
            reason_code: v5::PublishAck2Reason::try_from(c)
                .unwrap_or(v5::PublishAck2Reason::PacketIdNotFound),
            ..v5::PublishAck2::default()
        }),
        Packet::PubComp(id, c) => v5::Packet::PublishComplete(v5::PublishAck2 {
            packet_id: id,
            reason_code: v5::PublishAck2Reason::try_from(c)
                .unwrap_or(v5::PublishAck2Reason::PacketIdNotFound),
            ..v5::PublishAck2::default()
        }),
        Packet::SubAck(id, codes) => v5::Packet::SubscribeAck(v5::SubscribeAck {
            packet_id: id,
            properties: Vec::new(),
            reason_string: None,
            status: codes
                .into_iter()
                .map(|c| {
                    v5::SubscribeAckReason::try_from(c)
                        .unwrap_or(v5::SubscribeAckReason::UnspecifiedError)
                })
                .collect(),
        }),
        Packet::UnsubAck(id, codes) => v5::Packet::UnsubscribeAck(v5::UnsubscribeAck {
            packet_id: id,
            properties: Vec::new(),
            reason_string: None,
            status: codes
                .into_iter()
                .map(|c| {
                    v5::UnsubscribeAckReason::try_from(c)
                        .unwrap_or(v5::UnsubscribeAckReason::UnspecifiedError)
                })
                .collect(),
        }),
        Packet::PingResp => v5::Packet::PingResponse,
        Packet::PingReq => v5::Packet::PingRequest,
        Packet::Disconnect(c, expiry) => v5::Packet::Disconnect(v5::Disconnect {
            reason_code: v5::DisconnectReasonCode::try_from(c)
                .unwrap_or(v5::DisconnectReasonCode::UnspecifiedError),
            session_expiry_interval_secs: expiry,
            ..v5::Disconnect::default()
        }),
        Packet::Connect(c) => v5::Packet::Connect(Box::new(v5::Connect {
            clean_start: c.clean_start,
            keep_alive: c.keep_alive,
            session_expiry_interval_secs: c.session_expiry_s,
            receive_max: NonZeroU16::new(c.receive_maximum),
            max_packet_size: c.max_packet_size.and_then(NonZeroU32::new),
            topic_alias_max: c.topic_alias_max,
            last_will: c.will.map(|w| v5::LastWill {
                qos: w.qos.to_wire(),
                retain: w.retain,
                topic: w.topic,
                message: w.payload,
                will_delay_interval_sec: (w.delay_s > 0).then_some(w.delay_s),
                correlation_data: None,
                message_expiry_interval: None,
                content_type: None,
                user_properties: w.user_properties,
                is_utf8_payload: None,
                response_topic: None,
            }),
            client_id: c.client_id,
            username: c.username,
            password: c.password,
            ..v5::Connect::default()
        })),
        Packet::Subscribe(id, filters) => v5::Packet::Subscribe(v5::Subscribe {
            packet_id: id,
            id: None,
            user_properties: Vec::new(),
            topic_filters: filters
                .into_iter()
                .map(|f| {
                    (
                        f.filter,
                        v5::SubscriptionOptions {
                            qos: f.qos.to_wire(),
                            no_local: false,
                            retain_as_published: false,
                            retain_handling: match f.retain_handling {
                                1 => v5::RetainHandling::AtSubscribeNew,
                                2 => v5::RetainHandling::NoAtSubscribe,
                                _ => v5::RetainHandling::AtSubscribe,
                            },
                        },
                    )
                })
                .collect(),
        }),
        Packet::Unsubscribe(id, filters) => v5::Packet::Unsubscribe(v5::Unsubscribe {
            packet_id: id,
            user_properties: Vec::new(),
            topic_filters: filters,
        }),
        Packet::Auth => v5::Packet::Auth(v5::Auth::default()),
    })
}

/// A packet id from a number (0 is not one).
pub fn packet_id(id: u16) -> Result<NonZeroU16, PacketError> {
    nz(id).map_err(PacketError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(version: Version) -> Connect {
        Connect {
            version,
            client_id: "car-1".into(),
            clean_start: false,
            keep_alive: 30,
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"p")),
            will: Some(Will {
                topic: "fleet/car-1/status".into(),
                payload: Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: false,
                delay_s: 0,
                user_properties: Vec::new(),
            }),
            session_expiry_s: if version == Version::V5 { 60 } else { u32::MAX },
            receive_maximum: if version == Version::V5 {
                100
            } else {
                u16::MAX
            },
            max_packet_size: None,
            topic_alias_max: 0,
        }
    }

    fn roundtrip(version: Version, packets: Vec<Packet>) {
        let mut client = Codec::client(version, 1 << 20);
        let mut wire = BytesMut::new();
        for p in &packets {
            client.encode(p.clone(), &mut wire).unwrap();
        }
        let mut server = Codec::new(1 << 20);
        let mut got = Vec::new();
        while let Some(p) = server.decode(&mut wire).unwrap() {
            got.push(p);
        }
        assert_eq!(got, packets, "{version:?}");
        assert_eq!(server.version(), Some(version));
    }

    fn publish(qos: QoS, props: bool) -> Packet {
        Packet::Publish(Box::new(Publish {
            topic: "fleet/V1/telemetry".into(),
            payload: Bytes::from_static(b"{\"speed\":88}"),
            qos,
            retain: false,
            dup: false,
            packet_id: (qos != QoS::AtMostOnce).then(|| NonZeroU16::new(7).unwrap()),
            topic_alias: None,
            user_properties: if props {
                vec![("trip".into(), "42".into())]
            } else {
                Vec::new()
            },
            content_type: None,
        }))
    }

    #[test]
    fn both_versions_decode_into_one_model() {
        let id = NonZeroU16::new(7).unwrap();
        for (v, props) in [(Version::V3_1_1, false), (Version::V5, true)] {
            roundtrip(
                v,
                vec![
                    Packet::Connect(Box::new(connect(v))),
                    publish(QoS::AtMostOnce, props),
                    publish(QoS::AtLeastOnce, props),
                    publish(QoS::ExactlyOnce, props),
                    Packet::PubRel(id, 0),
                    Packet::PubAck(id, 0),
                    Packet::Subscribe(
                        id,
                        vec![SubscribeFilter {
                            filter: "fleet/V1/alerts".into(),
                            qos: QoS::AtLeastOnce,
                            retain_handling: 0,
                        }],
                    ),
                    Packet::Unsubscribe(id, vec!["fleet/V1/alerts".into()]),
                    Packet::PingReq,
                    Packet::Disconnect(0, None),
                ],
            );
        }
    }

    #[test]
    fn mqtt_3_1_is_detected_and_served_as_3() {
        // rmqtt-codec's client side always writes level 4, so the 3.1 CONNECT is by hand.
        let mut wire = BytesMut::from(&b"\x10\x10\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x02c1"[..]);
        let mut server = Codec::new(1 << 20);
        match server.decode(&mut wire).unwrap() {
            Some(Packet::Connect(c)) => {
                assert_eq!((c.version, c.client_id.as_ref()), (Version::V3_1, "c1"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.version(), Some(Version::V3_1));
    }

    #[test]
    fn a_failure_ack_cannot_be_sent_in_3_1_1() {
        let mut c = Codec::client(Version::V3_1_1, 1 << 20);
        let mut b = BytesMut::new();
        let id = NonZeroU16::new(1).unwrap();
        let e = c
            .encode(Packet::PubAck(id, reason::UNSPECIFIED), &mut b)
            .unwrap_err();
        assert!(e.to_string().contains("no failure PUBACK"), "{e}");
        let mut c5 = Codec::client(Version::V5, 1 << 20);
        c5.encode(Packet::PubAck(id, reason::UNSPECIFIED), &mut b)
            .unwrap();
        let mut s = Codec::client(Version::V5, 1 << 20);
        assert_eq!(
            s.decode(&mut b).unwrap(),
            Some(Packet::PubAck(id, reason::UNSPECIFIED))
        );
    }

    #[test]
    fn bad_input_is_named() {
        let mut c = Codec::new(1 << 20);
        let e = c
            .decode(&mut BytesMut::from(&b"\x30\x05\x00\x01ahi"[..]))
            .unwrap_err();
        assert_eq!(e.label(), "bad_protocol", "{e}");
        let mut c = Codec::new(1 << 20);
        let e = c
            .decode(&mut BytesMut::from(
                &b"\x10\x10\x00\x04MQTT\x09\x02\x00\x3c\x00\x04abcd"[..],
            ))
            .unwrap_err();
        assert_eq!(e.label(), "bad_protocol", "{e}");
        assert!(e.to_string().contains("3.1.1 and 5.0"), "{e}");
        // Too large: refused from the fixed header, before the body arrives.
        let mut c = Codec::client(Version::V3_1_1, 1024);
        let e = c
            .decode(&mut BytesMut::from(&b"\x30\xff\xff\x03"[..]))
            .unwrap_err();
        assert_eq!(
            e,
            PacketError::TooLarge {
                size: 65535,
                max: 1024
            }
        );
        assert_eq!(e.reason(), reason::PACKET_TOO_LARGE);
        // Truncated: waits for more.
        let mut c = Codec::client(Version::V3_1_1, 1024);
        assert_eq!(
            c.decode(&mut BytesMut::from(&b"\x30\x0a\x00"[..])).unwrap(),
            None
        );
    }
}
