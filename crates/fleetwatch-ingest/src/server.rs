//! The MQTT listeners as `serve` components, and what their connections share.

use crate::appender::Appender;
use crate::auth::{Acl, PasswordFile};
use crate::config::MqttConfig;
use crate::deliver::{Retained, StoredSession, open_group, stored_session};
use crate::mapping::Mapping;
use crate::metrics::MqttMetrics;
use crate::packet::reason;
use crate::session::{Owned, SessionStore, Sub};
use bytes::Bytes;
use fleetwatch_core::{Log, OffsetCommit, TopicConfig, TopicPartition};
use fleetwatch_metrics::Metrics;
use fleetwatch_server::conn::Acceptor;
use fleetwatch_server::{BoxError, Component, ConnMetrics, ConnectionLimits, Task};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Logins and permissions.
pub struct Security {
    passwords: Option<Arc<PasswordFile>>,
    acl: Acl,
}

impl Security {
    /// Whether this login is accepted (password checks run on a blocking thread).
    pub async fn login(&self, username: Option<&str>, password: Option<Bytes>) -> bool {
        let Some(file) = &self.passwords else {
            return true;
        };
        let (Some(user), Some(pass)) = (username, password) else {
            return false;
        };
        let (file, user) = (file.clone(), user.to_string());
        tokio::task::spawn_blocking(move || file.verify(&user, &pass))
            .await
            .unwrap_or(false)
    }

    /// Whether the client may subscribe to `filter`.
    pub fn can_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        self.acl.can_subscribe(username, client_id, filter)
    }
}

/// What every connection of the proxy shares.
pub struct Shared {
    /// `[mqtt]`.
    pub config: MqttConfig,
    /// The parsed mapping.
    pub mapping: Mapping,
    /// The group-commit appender.
    pub appender: Appender,
    /// The log.
    pub log: Arc<dyn Log>,
    /// Sessions by client id.
    pub sessions: SessionStore,
    /// Metrics.
    pub metrics: MqttMetrics,
    /// Logins and ACLs.
    pub security: Security,
    /// Largest packet accepted.
    pub max_packet: u32,
    /// The retained-message index.
    pub retained: Arc<Retained>,
}

impl Shared {
    /// Builds the shared state: parses the mapping, reads the password file, creates the
    /// mapped topics that do not exist yet. Errors name the config key.
    pub async fn new(
        config: MqttConfig,
        log: Arc<dyn Log>,
        metrics: &Metrics,
    ) -> Result<Arc<Shared>, String> {
        config.validate()?;
        let mapping = Mapping::new(&config)?;
        let passwords = match config.passwords() {
            Some(p) => Some(Arc::new(
                PasswordFile::load(p).map_err(|e| format!("mqtt.password_file: {e}"))?,
            )),
            None => None,
        };
        let acl = Acl::new(&config.acl)?;
        for t in mapping.topics() {
            let partitions = config
                .publish_map
                .iter()
                .filter(|r| r.topic == t)
                .filter_map(|r| r.partitions)
                .max()
                .unwrap_or(1);
            log.ensure_topic(t, TopicConfig::with_partitions(partitions))
                .await
                .map_err(|e| format!("creating the mapped topic {t:?}: {e}"))?;
        }
        let max_packet = config.packet_limit(TopicConfig::default().max_message_bytes);
        Ok(Arc::new(Shared {
            mapping,
            appender: Appender::new(log.clone()),
            log,
            sessions: SessionStore::default(),
            metrics: MqttMetrics::new(metrics).map_err(|e| e.to_string())?,
            security: Security { passwords, acl },
            max_packet,
            retained: Arc::new(Retained::default()),
            config,
        }))
    }

    /// Whether a client may publish to MQTT topic `topic`: `Err(reason)` if the name is
    /// invalid or the ACL forbids it.
    pub fn check_publish_target(
        &self,
        topic: &str,
        client_id: &str,
        username: Option<&str>,
    ) -> Result<(), u8> {
        if crate::topic::check_topic_name(topic).is_err() {
            return Err(reason::TOPIC_NAME_INVALID);
        }
        if !self.security.acl.can_publish(username, client_id, topic) {
            return Err(reason::NOT_AUTHORIZED);
        }
        Ok(())
    }

    /// Reads a persistent session's subscriptions back from the log when memory has none
    /// (after a restart); a clean start erases what is stored. `Ok(true)`: a stored session
    /// was resumed.
    pub async fn restore_session(
        &self,
        client_id: &str,
        session: &Owned,
        clean: bool,
    ) -> Result<bool, String> {
        let mut restored = false;
        for rule in self.mapping.subscribe_rules() {
            let Some(stored) = stored_session(&self.log, client_id, &rule.topic).await else {
                continue;
            };
            if stored.filters.is_empty() {
                continue;
            }
            if clean || stored.expired(fleetwatch_core::now_ms()) {
                // Erase it: an empty subscription list at the current positions.
                let (mut g, positions) = open_group(&self.log, client_id, &rule.topic)
                    .await
                    .map_err(|e| e.to_string())?;
                let meta = serde_json::to_string(&StoredSession::default()).unwrap_or_default();
                let commits: Vec<OffsetCommit> = positions
                    .into_iter()
                    .map(|(p, o)| {
                        OffsetCommit::new(TopicPartition::new(rule.topic.clone(), p), o)
                            .with_metadata(meta.clone())
                    })
                    .collect();
                g.commit(&commits).await.map_err(|e| e.to_string())?;
                let _ = g.leave().await;
                continue;
            }
            if session.present {
                continue;
            }
            let mut st = session.state();
            for (f, q) in stored.filters {
                let qos = if q >= 1 {
                    crate::packet::QoS::AtLeastOnce
                } else {
                    crate::packet::QoS::AtMostOnce
                };
                st.subs.insert(f, Sub { qos });
                restored = true;
            }
        }
        Ok(restored)
    }

    /// The tasks that keep the retained index of every subscribe-mapped topic.
    pub fn retained_tasks(self: &Arc<Self>) -> Vec<Task> {
        let mut topics: Vec<String> = self
            .mapping
            .subscribe_rules()
            .iter()
            .map(|r| r.topic.clone())
            .collect();
        topics.sort();
        topics.dedup();
        topics
            .into_iter()
            .map(|t| {
                let (r, log) = (self.retained.clone(), self.log.clone());
                Task::new(format!("mqtt_retained[{t}]"), move |c| async move {
                    r.follow(log, t, c).await;
                    Ok::<(), BoxError>(())
                })
            })
            .collect()
    }
}

/// Reads a PEM certificate chain and key into a TLS acceptor; errors name the file.
pub fn load_tls(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("mqtt.tls.cert_file {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("mqtt.tls.cert_file {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "mqtt.tls.cert_file {}: no CERTIFICATE in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("mqtt.tls.key_file {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("mqtt.tls: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One MQTT listener (plain or TLS) as a component.
pub struct MqttServer {
    name: String,
    key: String,
    acceptor: Acceptor,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl MqttServer {
    /// A listener named `name` (`mqtt`, `mqtt_tls`) configured by `key`.
    pub fn new(
        name: &str,
        key: &str,
        listener: TcpListener,
        tls: Option<TlsAcceptor>,
        limits: ConnectionLimits,
        conn_metrics: ConnMetrics,
        shared: Arc<Shared>,
    ) -> std::io::Result<MqttServer> {
        let addr = listener.local_addr()?;
        Ok(MqttServer {
            name: name.to_string(),
            key: key.to_string(),
            acceptor: Acceptor::new(listener, name, limits, conn_metrics),
            tls,
            shared,
            addr,
        })
    }
}

impl Component for MqttServer {
    fn name(&self) -> &str {
        &self.name
    }
    fn config_key(&self) -> Option<&str> {
        Some(&self.key)
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }
    fn run(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> {
        Box::pin(async move {
            let mut conns = JoinSet::new();
            let connect_timeout = Duration::from_millis(self.acceptor.limits().header_timeout_ms);
            loop {
                let accepted = tokio::select! {
                    _ = cancel.cancelled() => break,
                    a = self.acceptor.accept() => a,
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                };
                let shared = self.shared.clone();
                let c = cancel.child_token();
                let tls = self.tls.clone();
                conns.spawn(async move {
                    let stream = accepted.stream;
                    match tls {
                        None => crate::conn::serve(shared, stream, connect_timeout, c).await,
                        Some(tls) => {
                            match tokio::time::timeout(connect_timeout, tls.accept(stream)).await {
                                Ok(Ok(s)) => crate::conn::serve(shared, s, connect_timeout, c).await,
                                Ok(Err(e)) => {
                                    shared.metrics.rejected("tls");
                                    tracing::debug!(peer = %accepted.peer, error = %e, "TLS handshake failed");
                                }
                                Err(_) => shared.metrics.rejected("connect_timeout"),
                            }
                        }
                    }
                });
            }
            // Stopping: connections finish their pending appends and say goodbye.
            let drained = tokio::time::timeout(Duration::from_secs(12), async {
                while conns.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                conns.abort_all();
            }
            Ok(())
        })
    }
}
