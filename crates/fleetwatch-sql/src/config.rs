//! `[ksql]` configuration.

use crate::engine::EngineConfig;
use crate::functions::FunctionContext;
use std::time::Duration;

/// `[ksql]`: the SQL engine and its ksqlDB-compatible REST API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KsqlConfig {
    /// Whether the engine and its listener run.
    pub enabled: bool,
    /// Listen address of the REST API (ksqlDB's port 8088 by default; 0 = any free).
    pub listen: String,
    /// `ksql.service.id`: prefixes the command topic and the processing log.
    pub service_id: String,
    /// How often persistent queries checkpoint their positions (ms).
    pub checkpoint_interval_ms: u64,
    /// Largest request body (bytes).
    pub max_request_bytes: usize,
}

impl Default for KsqlConfig {
    fn default() -> Self {
        KsqlConfig {
            enabled: true,
            listen: "0.0.0.0:8088".into(),
            service_id: "default_".into(),
            checkpoint_interval_ms: 500,
            max_request_bytes: 4 * 1024 * 1024,
        }
    }
}

impl KsqlConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.service_id.is_empty()
            || !self
                .service_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(format!(
                "ksql.service_id = {:?}: use letters, digits, '_', '-' or '.'",
                self.service_id
            ));
        }
        if self.checkpoint_interval_ms == 0 {
            return Err("ksql.checkpoint_interval_ms must be at least 1".into());
        }
        Ok(())
    }

    /// The engine's settings.
    pub fn engine(
        &self,
        functions: FunctionContext,
        metrics: Option<crate::metrics::SqlMetrics>,
    ) -> EngineConfig {
        EngineConfig {
            service_id: self.service_id.clone(),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
            default_partitions: 1,
            functions,
            metrics,
        }
    }
}
