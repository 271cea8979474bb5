//! `[http]`: the REST Proxy API's settings.

use serde::{Deserialize, Serialize};

/// `[http]`: the REST Proxy–compatible HTTP API (also serving `/health` and `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestConfig {
    /// Listen address; port 0 picks a free port (see `serve --ready-file`).
    pub listen: String,
    /// Largest request body accepted, in bytes (413 / 41301 over it).
    pub max_request_bytes: usize,
    /// Most records in one produce request (413 / 41302 over it). Bounds the memory a
    /// request can take: at its peak the server holds about 600 bytes per record beyond the body
    /// (`fleetwatch bench produce`).
    pub max_records_per_request: usize,
    /// A consumer instance unused for this long is removed (REST Proxy's
    /// `consumer.instance.timeout.ms`).
    pub consumer_instance_timeout_ms: u64,
    /// Session timeout of the group members behind consumer instances.
    pub consumer_session_timeout_ms: u64,
    /// Longest a records fetch waits for data, whatever `timeout` it asks for (REST Proxy's
    /// `consumer.request.timeout.ms`).
    pub consumer_request_timeout_ms: u64,
    /// Partitions of topics created implicitly by a produce request to a missing topic;
    /// 0 disables implicit creation (the request then gets 40401).
    pub auto_create_partitions: i32,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            listen: "0.0.0.0:8082".into(),
            max_request_bytes: 16 * 1024 * 1024,
            max_records_per_request: 100_000,
            consumer_instance_timeout_ms: 300_000,
            consumer_session_timeout_ms: 30_000,
            consumer_request_timeout_ms: 30_000,
            auto_create_partitions: 0,
        }
    }
}

impl RestConfig {
    /// Checks values that would make the API useless; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        let at_least = |key: &str, v: u64, min: u64| {
            if v < min {
                Err(format!("http.{key} = {v}: must be at least {min}"))
            } else {
                Ok(())
            }
        };
        at_least("max_request_bytes", self.max_request_bytes as u64, 1024)?;
        at_least(
            "max_records_per_request",
            self.max_records_per_request as u64,
            1,
        )?;
        at_least(
            "consumer_instance_timeout_ms",
            self.consumer_instance_timeout_ms,
            1000,
        )?;
        at_least(
            "consumer_session_timeout_ms",
            self.consumer_session_timeout_ms,
            100,
        )?;
        at_least(
            "consumer_request_timeout_ms",
            self.consumer_request_timeout_ms,
            1,
        )?;
        if self.consumer_session_timeout_ms > 3_600_000 {
            return Err(format!(
                "http.consumer_session_timeout_ms = {}: at most 3600000 (one hour)",
                self.consumer_session_timeout_ms
            ));
        }
        if !(0..=fleetwatch_core::MAX_PARTITIONS).contains(&self.auto_create_partitions) {
            return Err(format!(
                "http.auto_create_partitions = {}: must be 0 (off) to {}",
                self.auto_create_partitions,
                fleetwatch_core::MAX_PARTITIONS
            ));
        }
        Ok(())
    }
}
