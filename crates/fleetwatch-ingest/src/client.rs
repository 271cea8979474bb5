//! A small MQTT client over the same packet model as the proxy: the bridge subscribes
//! with it, the simulator and benchmarks publish with it.
//!
//! It is deliberately thin — connect (TCP or TLS, login, session flags), then packets in and
//! out — because its users differ in what they acknowledge and when: the bridge sends a
//! PUBACK only after the append is durable, a publisher keeps a window of packets in
//! flight. [`MqttClient::next`] is cancellation-safe, so it can sit in a `select!` beside
//! other work.

use crate::packet::{Codec, ConnAck, Connect, Packet, PacketError, QoS, Version, reason};
use bytes::BytesMut;
use std::num::NonZeroU16;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

/// What can go wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL or TLS settings are unusable.
    #[error("{0}")]
    Config(String),
    /// Connecting, reading or writing failed.
    #[error("{addr}: {source}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The broker sent bytes that are not MQTT.
    #[error("{addr}: malformed packet from the broker: {source}")]
    Packet {
        /// `host:port`.
        addr: String,
        /// The cause.
        source: PacketError,
    },
    /// The broker refused the CONNECT.
    #[error("{addr}: CONNECT refused: {why}")]
    Refused {
        /// `host:port`.
        addr: String,
        /// The reason, in words.
        why: String,
    },
    /// The broker closed the connection (or did not answer in time).
    #[error("{addr}: {why}")]
    Closed {
        /// `host:port`.
        addr: String,
        /// What happened.
        why: String,
    },
}

/// A broker address: `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883); a bare
/// `host:port` is plain MQTT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
    /// TLS or not.
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses a broker URL; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else if url.contains("://") {
            return Err(format!("{url:?}: the scheme must be mqtt:// or mqtts://"));
        } else {
            (false, url)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') {
            return Err(format!(
                "{url:?}: expected mqtt://host:port (no path), e.g. mqtt://127.0.0.1:1883"
            ));
        }
        let default = if tls { 8883 } else { 1883 };
        let (host, port) = match rest.rsplit_once(':') {
            // `[::1]:1883` or `host:1883`, but not a bare IPv6 address.
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: {p:?} is not a port number"))?,
            ),
            _ => (rest, default),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(BrokerUrl {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// `host:port`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// TLS to a broker: whom to trust, and an optional client certificate.
pub struct ClientTls {
    connector: TlsConnector,
    server_name: rustls::pki_types::ServerName<'static>,
}

/// The system's CA bundle (Debian's `ca-certificates`), used when no `ca_file` is given.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

impl ClientTls {
    /// Trusts the CAs in `ca_file` (PEM); presents `cert`/`key` when given; checks the
    /// broker's certificate against `server_name`. Errors name the file.
    pub fn new(
        ca_file: &Path,
        client: Option<(&Path, &Path)>,
        server_name: &str,
    ) -> Result<ClientTls, ClientError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let cfg = |m: String| ClientError::Config(m);
        let mut roots = rustls::RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| cfg(format!("CA file {}: {e}", ca_file.display())))?;
        for c in cas {
            let c = c.map_err(|e| cfg(format!("CA file {}: {e}", ca_file.display())))?;
            roots
                .add(c)
                .map_err(|e| cfg(format!("CA file {}: {e}", ca_file.display())))?;
        }
        if roots.is_empty() {
            return Err(cfg(format!(
                "CA file {}: no CERTIFICATE in it",
                ca_file.display()
            )));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| cfg(e.to_string()))?
        .with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect::<Result<_, _>>())
                    .map_err(|e| cfg(format!("client certificate {}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| cfg(format!("client key {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| cfg(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| cfg(format!("TLS server name {server_name:?}: {e}")))?;
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// A byte stream to a broker (TCP or TLS over TCP).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to a broker, after an accepted CONNECT.
pub struct MqttClient {
    io: Pin<Box<dyn Io>>,
    codec: Codec,
    rbuf: BytesMut,
    wbuf: BytesMut,
    next_id: u16,
    addr: String,
}

impl MqttClient {
    /// Connects to `url`, sends `connect` and waits for the CONNACK (all within `timeout`).
    /// A refusing CONNACK is [`ClientError::Refused`] naming the reason.
    pub async fn connect(
        url: &BrokerUrl,
        tls: Option<&ClientTls>,
        connect: Connect,
        timeout: Duration,
    ) -> Result<(MqttClient, ConnAck), ClientError> {
        let addr = url.authority();
        let closed = |why: &str| ClientError::Closed {
            addr: addr.clone(),
            why: why.to_string(),
        };
        let run = async {
            let io_err = |source| ClientError::Io {
                addr: addr.clone(),
                source,
            };
            let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
                .await
                .map_err(io_err)?;
            tcp.set_nodelay(true).map_err(io_err)?;
            let io: Pin<Box<dyn Io>> = match (url.tls, tls) {
                (true, Some(t)) => Box::pin(
                    t.connector
                        .connect(t.server_name.clone(), tcp)
                        .await
                        .map_err(io_err)?,
                ),
                (true, None) => {
                    return Err(ClientError::Config(format!(
                        "{addr}: mqtts:// needs TLS settings"
                    )));
                }
                (false, _) => Box::pin(tcp),
            };
            let mut client = MqttClient {
                io,
                codec: Codec::client(connect.version, u32::MAX),
                rbuf: BytesMut::with_capacity(16 * 1024),
                wbuf: BytesMut::with_capacity(16 * 1024),
                next_id: 0,
                addr: addr.clone(),
            };
            client.send(Packet::Connect(Box::new(connect)))?;
            client.flush().await?;
            match client.next().await? {
                Packet::ConnAck(ack) if ack.code == reason::SUCCESS => Ok((client, *ack)),
                Packet::ConnAck(ack) => Err(ClientError::Refused {
                    addr: addr.clone(),
                    why: refusal(ack.code, ack.reason_string.as_deref()),
                }),
                other => Err(closed(&format!("expected CONNACK, got {}", other.name()))),
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(closed(&format!(
                "no CONNACK within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// `host:port` of the broker.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// A fresh packet id (1…65535, wrapping).
    pub fn packet_id(&mut self) -> NonZeroU16 {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        NonZeroU16::new(self.next_id).unwrap_or(NonZeroU16::MIN)
    }

    /// Queues `p` for the next [`flush`](Self::flush).
    pub fn send(&mut self, p: Packet) -> Result<(), ClientError> {
        self.codec
            .encode(p, &mut self.wbuf)
            .map_err(|e| ClientError::Config(format!("{}: {e}", self.addr)))
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.wbuf.len()
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = self.io.write_all(&self.wbuf).await;
        self.wbuf.clear();
        r.map_err(|source| ClientError::Io {
            addr: self.addr.clone(),
            source,
        })?;
        self.io.flush().await.map_err(|source| ClientError::Io {
            addr: self.addr.clone(),
            source,
        })
    }

    /// The next packet from the broker. Cancellation-safe: bytes read stay buffered.
    pub async fn next(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(p) = self.try_next()? {
                return Ok(p);
            }
            let n = self
                .io
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|source| ClientError::Io {
                    addr: self.addr.clone(),
                    source,
                })?;
            if n == 0 {
                return Err(ClientError::Closed {
                    addr: self.addr.clone(),
                    why: "the broker closed the connection".into(),
                });
            }
        }
    }

    /// A packet already buffered, if a whole one is.
    pub fn try_next(&mut self) -> Result<Option<Packet>, ClientError> {
        self.codec
            .decode(&mut self.rbuf)
            .map_err(|source| ClientError::Packet {
                addr: self.addr.clone(),
                source,
            })
    }

    /// Sends DISCONNECT (normal) and closes.
    pub async fn disconnect(mut self) {
        if self.send(Packet::Disconnect(reason::SUCCESS, None)).is_ok() {
            let _ = self.flush().await;
        }
        let _ = self.io.shutdown().await;
    }
}

/// Publishes over one connection keeping up to `window` QoS 1 messages unacknowledged
/// (QoS 0: no acknowledgements, only TCP back-pressure). A publish the broker refuses (an MQTT
/// 5 PUBACK reason code ≥ 0x80) is an error naming the code.
pub struct Publisher {
    client: MqttClient,
    window: usize,
    inflight: usize,
    qos: QoS,
    acked: u64,
}

impl Publisher {
    /// Publishes at `qos` (0 or 1) over `client`.
    pub fn new(client: MqttClient, qos: QoS, window: usize) -> Publisher {
        Publisher {
            client,
            window: window.max(1),
            inflight: 0,
            qos,
            acked: 0,
        }
    }

    /// Queues one publish; waits for acknowledgements while the window is full. Writes are
    /// batched: bytes go out when 64 KiB are queued, the window is full, or on
    /// [`flush`](Self::flush).
    pub async fn publish(&mut self, topic: &str, payload: bytes::Bytes) -> Result<(), ClientError> {
        if self.qos != QoS::AtMostOnce {
            while self.inflight >= self.window {
                self.client.flush().await?;
                let p = self.client.next().await?;
                self.handle(p)?;
            }
        }
        let packet_id = (self.qos != QoS::AtMostOnce).then(|| self.client.packet_id());
        self.client
            .send(Packet::Publish(Box::new(crate::packet::Publish {
                topic: topic.into(),
                payload,
                qos: self.qos,
                retain: false,
                dup: false,
                packet_id,
                topic_alias: None,
                user_properties: Vec::new(),
                content_type: None,
            })))?;
        if packet_id.is_some() {
            self.inflight += 1;
        }
        if self.client.pending_bytes() >= 64 * 1024 {
            self.client.flush().await?;
        }
        Ok(())
    }

    fn handle(&mut self, p: Packet) -> Result<(), ClientError> {
        match p {
            Packet::PubAck(_, code) if code >= 0x80 => Err(ClientError::Refused {
                addr: self.client.addr.clone(),
                why: format!(
                    "a publish was refused with reason code 0x{code:02X}{}",
                    if code == reason::TOPIC_NAME_INVALID {
                        " (topic name invalid: is the topic in the server's mqtt.publish_map?)"
                    } else if code == reason::NOT_AUTHORIZED {
                        " (not authorized)"
                    } else {
                        ""
                    }
                ),
            }),
            Packet::PubAck(..) => {
                self.inflight = self.inflight.saturating_sub(1);
                self.acked += 1;
                Ok(())
            }
            Packet::Disconnect(code, _) => Err(ClientError::Closed {
                addr: self.client.addr.clone(),
                why: format!("the broker sent DISCONNECT (reason code 0x{code:02X})"),
            }),
            _ => Ok(()),
        }
    }

    /// Writes everything queued, without waiting for acknowledgements.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        self.client.flush().await?;
        while let Some(p) = self.client.try_next()? {
            self.handle(p)?;
        }
        Ok(())
    }

    /// Writes everything and waits until every QoS 1 publish is acknowledged.
    pub async fn finish(&mut self) -> Result<(), ClientError> {
        self.client.flush().await?;
        while self.inflight > 0 {
            let p = self.client.next().await?;
            self.handle(p)?;
        }
        Ok(())
    }

    /// Publishes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Waits for every acknowledgement, then disconnects.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.finish().await?;
        self.client.disconnect().await;
        Ok(())
    }
}

/// A CONNACK refusal in words (MQTT 5 reason codes; 3.1.1 return codes are mapped to them).
fn refusal(code: u8, reason_string: Option<&str>) -> String {
    let what = match code {
        reason::BAD_LOGIN => "bad user name or password",
        reason::NOT_AUTHORIZED => "not authorized",
        reason::CLIENT_ID_INVALID => "client identifier not valid",
        reason::UNSUPPORTED_VERSION => "unsupported protocol version",
        reason::SERVER_UNAVAILABLE => "server unavailable",
        _ => "refused",
    };
    match reason_string {
        Some(r) => format!("{what} (reason code 0x{code:02X}: {r})"),
        None => format!("{what} (reason code 0x{code:02X})"),
    }
}

/// The protocol version of a config string (`"5"`, `"3.1.1"`).
pub fn version_of(protocol: &str) -> Version {
    if protocol == "3.1.1" {
        Version::V3_1_1
    } else {
        Version::V5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = |s: &str| BrokerUrl::parse(s);
        assert_eq!(
            u("mqtt://127.0.0.1:1884"),
            Ok(BrokerUrl {
                host: "127.0.0.1".into(),
                port: 1884,
                tls: false
            })
        );
        assert_eq!(u("mqtts://broker.example").map(|b| b.port), Ok(8883));
        assert_eq!(u("mqtt://broker").map(|b| b.port), Ok(1883));
        assert_eq!(
            u("localhost:1999").map(|b| (b.tls, b.port)),
            Ok((false, 1999))
        );
        assert_eq!(
            u("mqtt://[::1]:1883").map(|b| b.authority()),
            Ok("[::1]:1883".into())
        );
        assert!(u("http://x:1").unwrap_err().contains("mqtt:// or mqtts://"));
        assert!(u("mqtt://x:port").unwrap_err().contains("not a port"));
        assert!(u("mqtt://x:1/path").unwrap_err().contains("no path"));
        assert!(u("mqtt://").is_err());
    }

    #[test]
    fn packet_ids_wrap_and_skip_zero() {
        let mut c = MqttClient {
            io: Box::pin(tokio::io::duplex(64).0),
            codec: Codec::client(Version::V5, 1024),
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            next_id: u16::MAX - 1,
            addr: "x:1".into(),
        };
        assert_eq!(c.packet_id().get(), u16::MAX);
        assert_eq!(c.packet_id().get(), 1);
    }
}
