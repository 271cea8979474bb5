//! Opens the configured `Log` backend.

use crate::config::{Backend, Config};
use anyhow::Context;
use fleetwatch_core::Log;
use fleetwatch_log::EmbeddedLog;
use std::sync::Arc;

/// An opened backend: the log, and the embedded log's handle when that is the backend
/// (its maintenance task and clean close belong to whoever opened it).
pub struct Opened {
    /// The log.
    pub log: Arc<dyn Log>,
    /// Set for the embedded backend.
    pub embedded: Option<EmbeddedLog>,
}

impl Opened {
    /// Flushes and closes: writes the embedded log's clean-shutdown marker.
    pub async fn close(&self) -> anyhow::Result<()> {
        match &self.embedded {
            Some(e) => e.close().await.context("closing the embedded log"),
            None => self
                .log
                .flush()
                .await
                .context("flushing the Kafka producer"),
        }
    }
}

/// Opens the backend `config.log.backend` names.
pub fn open(config: &Config) -> anyhow::Result<Opened> {
    match config.log.backend {
        Backend::Embedded => {
            let log = config.embedded.build().with_context(|| {
                format!(
                    "opening the embedded log in {}",
                    config.embedded.data_dir.display()
                )
            })?;
            for cut in log.recovery_cuts() {
                eprintln!(
                    "fleetwatch: recovery cut {} at byte {} ({} bytes dropped): {}",
                    cut.segment, cut.position, cut.bytes_dropped, cut.reason
                );
            }
            Ok(Opened {
                log: Arc::new(log.clone()),
                embedded: Some(log),
            })
        }
        Backend::Kafka => {
            let log = config.kafka.build().with_context(|| {
                format!("connecting to Kafka at {}", config.kafka.bootstrap_servers)
            })?;
            Ok(Opened {
                log: Arc::new(log),
                embedded: None,
            })
        }
    }
}
