//! One module per subcommand: its arguments (clap) and how it runs. The work itself is in
//! the `fleetwatch` library (`cli`, `serve`, `bench`).

pub mod bench;
pub mod config;
pub mod consume;
pub mod model;
pub mod mqtt;
pub mod produce;
pub mod serve;
pub mod sim;
pub mod sql;
pub mod topics;

use anyhow::Context;
use clap::Args;
use fleetwatch::backend;
use fleetwatch::config::{Backend, Config};
use fleetwatch_core::Log;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

/// Options every subcommand takes.
#[derive(Args, Debug)]
pub struct Global {
    /// TOML config file (every key has a default: `fleetwatch config defaults`).
    #[arg(long, short = 'c', global = true, env = "FLEETWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `[embedded] data_dir`.
    #[arg(long, global = true, env = "FLEETWATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides `[log] backend`.
    #[arg(long, global = true, env = "FLEETWATCH_BACKEND", value_enum)]
    pub backend: Option<Backend>,
    /// Overrides `[kafka] bootstrap_servers`.
    #[arg(long, global = true, env = "FLEETWATCH_KAFKA_BOOTSTRAP")]
    pub bootstrap_servers: Option<String>,
    /// Go through this running server's REST Proxy API (e.g. `http://127.0.0.1:8082`)
    /// instead of opening the log. Without it, a `serve` that owns the embedded data
    /// directory is found and used.
    #[arg(long, global = true, env = "FLEETWATCH_SERVER")]
    pub server: Option<String>,
    /// The Schema Registry of `--server` (for `--value-format avro|json-sr`).
    #[arg(long, global = true, env = "FLEETWATCH_SERVER_REGISTRY")]
    pub server_registry: Option<String>,
    /// Overrides any config key: `--set schema_registry.listen=127.0.0.1:0` (repeatable;
    /// the value is TOML or a bare string; `FLEETWATCH_SET` takes several separated by `;`).
    #[arg(
        long = "set",
        global = true,
        value_name = "KEY=VALUE",
        env = "FLEETWATCH_SET",
        value_delimiter = ';'
    )]
    pub set: Vec<String>,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `fleetwatch_log=debug`.
    #[arg(long, global = true, env = "FLEETWATCH_LOG", default_value = "info")]
    pub log_level: String,
}

impl Global {
    /// The running server to go through, if any: `--server`, or a live `serve` that owns
    /// the embedded data directory.
    pub fn remote(&self, config: &Config) -> Option<fleetwatch::remote::Remote> {
        if let Some(url) = &self.server {
            return Some(fleetwatch::remote::Remote::new(
                url.clone(),
                self.server_registry.clone(),
            ));
        }
        if config.log.backend != Backend::Embedded {
            return None;
        }
        let f = fleetwatch::remote::running_server(&config.embedded.data_dir)?;
        tracing::info!(server = %f.http, "a server owns the data directory: going through its HTTP API");
        Some(fleetwatch::remote::Remote::new(
            f.http,
            Some(f.schema_registry),
        ))
    }

    /// The configuration: the file (or defaults), then the flags, then `--set`.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            config.embedded.data_dir = d.clone();
        }
        if let Some(b) = self.backend {
            config.log.backend = b;
        }
        if let Some(s) = &self.bootstrap_servers {
            config.kafka.bootstrap_servers = s.clone();
        }
        // Validated there, after the flags above and `--set`.
        config.apply_overrides(&self.set)
    }
}

/// A tokio runtime (multi-threaded or not).
pub fn runtime(multi: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().context("starting the async runtime")
}

/// Opens the configured log, runs `f` on it and closes the log cleanly whatever `f` did.
pub fn with_log<F, Fut>(config: &Config, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Log>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    runtime(true)?.block_on(async move {
        let opened = backend::open(config)?;
        let result = f(opened.log.clone()).await;
        let closed = opened.close().await;
        result.and(closed)
    })
}
