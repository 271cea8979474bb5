//! Opens the configured `Log` backend: the log everything above uses, plus a lifecycle
//! handle (its maintenance task, its clean close) that only `serve` and the CLI's own
//! shutdown touch. Nothing above this file holds the concrete backend.

use crate::config::{Backend, Config};
use anyhow::Context;
use fleetwatch_core::Log;
use fleetwatch_log::EmbeddedLog;
use fleetwatch_server::{Component, Task};
use futures::future::BoxFuture;
use std::sync::Arc;

/// What only the opener of a backend does with it.
trait Lifecycle: Send + Sync {
    /// The backend's background work, if any (the embedded log's interval fsync and
    /// retention).
    fn maintenance(&self) -> Option<Box<dyn Component>>;
    /// Flushes and closes (the embedded log writes its clean-shutdown marker).
    fn close(&self) -> BoxFuture<'_, anyhow::Result<()>>;
}

struct Embedded(EmbeddedLog);

impl Lifecycle for Embedded {
    fn maintenance(&self) -> Option<Box<dyn Component>> {
        let e = self.0.clone();
        Some(Box::new(Task::new(
            "log_maintenance",
            move |cancel| async move { e.run_maintenance(cancel).await },
        )))
    }
    fn close(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { self.0.close().await.context("closing the embedded log") })
    }
}

#[cfg(feature = "kafka")]
struct Kafka(Arc<dyn Log>);

#[cfg(feature = "kafka")]
impl Lifecycle for Kafka {
    fn maintenance(&self) -> Option<Box<dyn Component>> {
        None
    }
    fn close(&self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { self.0.flush().await.context("flushing the Kafka producer") })
    }
}

/// An opened backend.
pub struct Opened {
    /// The log.
    pub log: Arc<dyn Log>,
    lifecycle: Box<dyn Lifecycle>,
}

impl Opened {
    /// The backend's maintenance task, to be run (and supervised) by `serve`.
    pub fn maintenance(&self) -> Option<Box<dyn Component>> {
        self.lifecycle.maintenance()
    }

    /// Flushes and closes.
    pub async fn close(&self) -> anyhow::Result<()> {
        self.lifecycle.close().await
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
            for d in fleetwatch_core::LogAdmin::health(&log).degraded {
                eprintln!(
                    "fleetwatch: partition {}-{} is degraded: {}",
                    d.partition.topic, d.partition.partition, d.reason
                );
            }
            Ok(Opened {
                log: Arc::new(log.clone()),
                lifecycle: Box::new(Embedded(log)),
            })
        }
        #[cfg(feature = "kafka")]
        Backend::Kafka => open_kafka(config),
        #[cfg(not(feature = "kafka"))]
        Backend::Kafka => anyhow::bail!(
            "log.backend = \"kafka\": this fleetwatch was built without the kafka feature"
        ),
    }
}

#[cfg(feature = "kafka")]
fn open_kafka(config: &Config) -> anyhow::Result<Opened> {
    let log: Arc<dyn Log> =
        Arc::new(config.kafka.build().with_context(|| {
            format!("connecting to Kafka at {}", config.kafka.bootstrap_servers)
        })?);
    Ok(Opened {
        log: log.clone(),
        lifecycle: Box::new(Kafka(log)),
    })
}
