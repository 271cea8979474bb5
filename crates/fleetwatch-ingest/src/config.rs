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
            publish_map: Vec::new(),
            unmapped: "mqtt.unmapped".into(),
            subscribe_map: Vec::new(),
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
        crate::mapping::Mapping::new(self).map(|_| ())
    }
}
