//! `fleetwatch serve`

use crate::cmd::Global;
use clap::Args;
use fleetwatch::serve;
use std::path::PathBuf;

#[derive(Args, Debug)]
/// Arguments.
pub struct ServeArgs {
    /// Overrides `[http] listen` (port 0: any free port); same as `--set http.listen=…`.
    #[arg(long, env = "FLEETWATCH_HTTP_LISTEN")]
    pub http_listen: Option<String>,
    /// Overrides `[schema_registry] listen`; same as `--set schema_registry.listen=…`.
    #[arg(long, env = "FLEETWATCH_SCHEMA_REGISTRY_LISTEN")]
    pub schema_registry_listen: Option<String>,
    /// Overrides `[mqtt] listen`; same as `--set mqtt.listen=…`.
    #[arg(long, env = "FLEETWATCH_MQTT_LISTEN")]
    pub mqtt_listen: Option<String>,
    /// Overrides `[ksql] listen`; same as `--set ksql.listen=…`.
    #[arg(long, env = "FLEETWATCH_KSQL_LISTEN")]
    pub ksql_listen: Option<String>,
    /// Once every listener is bound, write their addresses here as JSON.
    #[arg(long, env = "FLEETWATCH_READY_FILE")]
    pub ready_file: Option<PathBuf>,
}

/// Runs it until a signal or a component failure.
pub fn run(g: &Global, a: ServeArgs) -> anyhow::Result<()> {
    let mut config = g.config()?;
    if let Some(l) = a.http_listen {
        config.http.listen = l;
    }
    if let Some(l) = a.schema_registry_listen {
        config.schema_registry.listen = l;
    }
    if let Some(l) = a.ksql_listen {
        config.ksql.listen = l;
    }
    if let Some(l) = a.mqtt_listen {
        config.mqtt.listen = l;
    }
    crate::cmd::runtime(true)?.block_on(serve::run(config, a.ready_file))
}
