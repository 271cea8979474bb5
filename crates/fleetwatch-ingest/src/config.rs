//! `[mqtt]`: the MQTT proxy's listeners, mapping, security and limits.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// `[[mqtt.publish_map]]`: MQTT topics (a pattern) → a log topic and a record key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRule {
    /// `fleet/{vin}/telemetry`: levels are literals, `{name}` (one level, captured), `+` (one
    /// level) or a final `#` (the rest).
    pub pattern: String,
    /// The log topic.
    pub topic: String,
    /// The record key, a template over the captures and `{clientid}`, `{username}`
    /// (`"{vin}"`); absent: no key (round-robin partitions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Partitions of the log topic when serve creates it (it does at start-up if it is
    /// missing); absent: 1. An existing topic is left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
}

/// `[[mqtt.subscribe_map]]`: MQTT topics devices subscribe to ← records of a log topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRule {
    /// `fleet/{vin}/alerts`: literals and at most one `{name}`, which stands for the record
    /// key; a device subscribing to `fleet/V1/alerts` gets the records keyed `V1`, one
    /// subscribing to `fleet/+/alerts` gets all of them, each on its own key's topic.
    pub pattern: String,
    /// The log topic.
    pub topic: String,
}

/// `[[mqtt.acl]]`: what matching users may publish and subscribe to. Rules are checked in
/// order; the first whose `username` matches decides (none matches: denied). Filters may
/// use `{username}` and `{clientid}`. Without rules every client may do everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclRule {
    /// A username, or `*` (any, including anonymous clients).
    #[serde(default = "any")]
    pub username: String,
    /// Topic filters the user may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topic filters the user may subscribe to (a subscription must lie within one).
    #[serde(default)]
    pub subscribe: Vec<String>,
}

fn any() -> String {
    "*".into()
}

/// `[mqtt.tls]`: the TLS listener runs when both files are set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (server certificate first); empty: none.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1); empty: none.
    pub key_file: String,
}

/// `[mqtt.bridge.tls]`: TLS to the upstream broker (used for `mqtts://` URLs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BridgeTlsConfig {
    /// PEM file of the certificate authorities to trust; empty: the system's
    /// (`/etc/ssl/certs/ca-certificates.crt`).
    pub ca_file: String,
    /// Client certificate chain (PEM) for brokers that require one; empty: none.
    pub cert_file: String,
    /// The client certificate's private key (PEM).
    pub key_file: String,
    /// The name the broker's certificate must carry; empty: the URL's host.
    pub server_name: String,
}

/// `[[mqtt.bridge]]`: subscribe to an existing MQTT broker and append what it delivers,
/// mapped by `[[mqtt.publish_map]]` like a publish to the proxy. Upstream messages are
/// acknowledged (PUBACK) only once their append is durable, so the broker keeps (and
/// redelivers) whatever fleetwatch has not stored — across its restarts too, since the
/// session is persistent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BridgeConfig {
    /// Names the bridge in logs, metrics (`bridge` label) and the `mqtt.bridge` header.
    pub name: String,
    /// The broker: `mqtt://host:port` (default port 1883) or `mqtts://host:port` (8883).
    pub url: String,
    /// The client id at the broker; it names the persistent session, so keep it stable.
    /// Empty: `fleetwatch-bridge-<name>`.
    pub client_id: String,
    /// Topic filters to subscribe to (`+` and `#` allowed).
    pub filters: Vec<String>,
    /// The subscription QoS: 1 (at least once, the default) or 0 (best effort).
    pub qos: u8,
    /// `"5"` (the default) or `"3.1.1"`.
    pub protocol: String,
    /// Username at the broker; empty: none.
    pub username: String,
    /// Password at the broker (prefer `password_env`).
    pub password: String,
    /// Name of an environment variable holding the password.
    pub password_env: String,
    /// Keep-alive asked of the broker, seconds.
    pub keep_alive_s: u16,
    /// MQTT 5 session expiry asked of the broker, seconds: how long it keeps the session
    /// (and queues messages) while fleetwatch is away.
    pub session_expiry_s: u32,
    /// Messages the broker may have unacknowledged at once (MQTT 5 Receive Maximum; reading
    /// pauses at it in 3.1.1 too). Brokers cap it too (Mosquitto: `max_inflight_messages`).
    pub max_inflight: u16,
    /// First reconnect delay, milliseconds; it doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay, milliseconds.
    pub reconnect_max_ms: u64,
    /// TLS settings for `mqtts://`.
    pub tls: BridgeTlsConfig,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            name: String::new(),
            url: String::new(),
            client_id: String::new(),
            filters: Vec::new(),
            qos: 1,
            protocol: "5".into(),
            username: String::new(),
            password: String::new(),
            password_env: String::new(),
            keep_alive_s: 30,
            session_expiry_s: 7 * 24 * 3600,
            max_inflight: 1024,
            reconnect_min_ms: 100,
            reconnect_max_ms: 30_000,
            tls: BridgeTlsConfig::default(),
        }
    }
}

impl BridgeConfig {
    /// The client id used at the broker.
    pub fn effective_client_id(&self) -> String {
        if self.client_id.is_empty() {
            format!("fleetwatch-bridge-{}", self.name)
        } else {
            self.client_id.clone()
        }
    }

    /// Checks one bridge; errors name `mqtt.bridge[i].<key>`.
    pub fn validate(&self, i: usize) -> Result<(), String> {
        let key = |k: &str| format!("mqtt.bridge[{i}].{k}");
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{}: {:?} must be a non-empty name of letters, digits, - and _",
                key("name"),
                self.name
            ));
        }
        crate::client::BrokerUrl::parse(&self.url).map_err(|e| format!("{}: {e}", key("url")))?;
        if self.filters.is_empty() {
            return Err(format!(
                "{}: at least one topic filter is needed",
                key("filters")
            ));
        }
        for f in &self.filters {
            crate::topic::check_topic_filter(f)
                .map_err(|e| format!("{}: {f:?}: {e}", key("filters")))?;
        }
        if self.qos > 1 {
            return Err(format!("{}: {} (use 0 or 1)", key("qos"), self.qos));
        }
        if !matches!(self.protocol.as_str(), "5" | "3.1.1") {
            return Err(format!(
                "{}: {:?} (use \"5\" or \"3.1.1\")",
                key("protocol"),
                self.protocol
            ));
        }
        if self.max_inflight == 0 {
            return Err(format!("{} must be at least 1", key("max_inflight")));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err(format!(
                "{} must be at least 1 and {} at least as large",
                key("reconnect_min_ms"),
                key("reconnect_max_ms")
            ));
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return Err(format!(
                "{}: set both cert_file and key_file, or neither",
                key("tls")
            ));
        }
        Ok(())
    }
}

/// `[mqtt]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Run the MQTT listeners at all.
    pub enabled: bool,
    /// Plain MQTT listener (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// MQTT over TLS listener; runs only when `[mqtt.tls]` names a certificate and key.
    pub tls_listen: String,
    /// Certificates of the TLS listener.
    pub tls: TlsConfig,
    /// Largest packet accepted, in bytes; 0: the log's record limit (1 MiB by default) plus
    /// 64 KiB.
    pub max_packet_size: u32,
    /// QoS 1/2 publishes a client may have unacknowledged at once (MQTT 5 Receive
    /// Maximum); one more is a protocol error.
    pub max_inflight: u16,
    /// Largest keep-alive granted, in seconds (a client asking more, or 0, gets this in MQTT
    /// 5; in 3.1.1 its own value is enforced, 0 meaning none). A client silent for 1.5× its
    /// keep-alive is disconnected.
    pub max_keep_alive_s: u16,
    /// Longest MQTT 5 session expiry granted, in seconds.
    pub max_session_expiry_s: u32,
    /// `user:$argon2id$…` lines (`fleetwatch mqtt passwd` writes them); set: clients must
    /// log in. Empty: anonymous clients are accepted.
    pub password_file: String,
    /// Publish and subscribe permissions.
    pub acl: Vec<AclRule>,
    /// Where publishes go; the first matching rule wins.
    pub publish_map: Vec<PublishRule>,
    /// A publish no rule maps: `reject` (MQTT 5: PUBACK 0x90 topic name invalid; 3.1.1:
    /// disconnect) or the log topic to append it to, keyed by its MQTT topic.
    pub unmapped: String,
    /// What devices may subscribe to.
    pub subscribe_map: Vec<SubscribeRule>,
    /// `POST /ingest/{mqtt/topic}` on the `http` listener: one JSON event or NDJSON lines,
    /// mapped by `publish_map` like a publish (for devices that cannot speak MQTT).
    pub http_ingest: bool,
    /// Brokers to subscribe to (the MQTT bridge).
    pub bridge: Vec<BridgeConfig>,
}

/// The default `publish_map`: the topics the simulator (`fleetwatch sim`) publishes, keyed by
/// the car's VIN, four partitions each.
pub fn default_publish_map() -> Vec<PublishRule> {
    [
        ("fleet/{vin}/telemetry", "telemetry.raw"),
        ("fleet/{vin}/payments", "payments.raw"),
        ("fleet/{vin}/labels", "labels"),
    ]
    .into_iter()
    .map(|(pattern, topic)| PublishRule {
        pattern: pattern.into(),
        topic: topic.into(),
        key: Some("{vin}".into()),
        partitions: Some(4),
    })
    .collect()
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: true,
            listen: "0.0.0.0:1883".into(),
            tls_listen: "0.0.0.0:8883".into(),
            tls: TlsConfig::default(),
            max_packet_size: 0,
            max_inflight: 1024,
            max_keep_alive_s: 600,
            max_session_expiry_s: 7 * 24 * 3600,
            password_file: String::new(),
            acl: Vec::new(),
            publish_map: default_publish_map(),
            unmapped: "mqtt.unmapped".into(),
            subscribe_map: Vec::new(),
            http_ingest: true,
            bridge: Vec::new(),
        }
    }
}

impl MqttConfig {
    /// The TLS listener's certificate and key, when it is configured.
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        (!self.tls.cert_file.is_empty() && !self.tls.key_file.is_empty()).then(|| {
            (
                Path::new(&self.tls.cert_file),
                Path::new(&self.tls.key_file),
            )
        })
    }

    /// The password file, when logins are required.
    pub fn passwords(&self) -> Option<&Path> {
        (!self.password_file.is_empty()).then(|| Path::new(&self.password_file))
    }

    /// The effective packet limit, given the log's record limit.
    pub fn packet_limit(&self, max_record_bytes: usize) -> u32 {
        if self.max_packet_size > 0 {
            self.max_packet_size
        } else {
            u32::try_from(max_record_bytes + 64 * 1024).unwrap_or(u32::MAX)
        }
    }

    /// Checks what types alone do not; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_inflight == 0 {
            return Err("mqtt.max_inflight must be at least 1".into());
        }
        if self.max_keep_alive_s == 0 {
            return Err("mqtt.max_keep_alive_s must be at least 1".into());
        }
        if self.max_packet_size != 0 && self.max_packet_size < 1024 {
            return Err("mqtt.max_packet_size must be 0 (automatic) or at least 1024".into());
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return Err("mqtt.tls: set both cert_file and key_file, or neither".into());
        }
        if self.unmapped.trim().is_empty() {
            return Err("mqtt.unmapped must be \"reject\" or a topic name".into());
        }
        crate::auth::Acl::new(&self.acl)?;
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.publish_map.iter().enumerate() {
            if let Some(n) = r.partitions
                && !(1..=10_000).contains(&n)
            {
                return Err(format!(
                    "mqtt.publish_map[{i}].partitions: {n} (use 1 to 10000)"
                ));
            }
        }
        for (i, b) in self.bridge.iter().enumerate() {
            b.validate(i)?;
            if !names.insert(b.name.as_str()) {
                return Err(format!(
                    "mqtt.bridge[{i}].name: {:?} is used by an earlier bridge",
                    b.name
                ));
            }
        }
        crate::mapping::Mapping::new(self).map(|_| ())
    }
}
