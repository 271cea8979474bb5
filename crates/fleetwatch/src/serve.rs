//! `fleetwatch serve`: opens the log, binds every listener, reports them in the ready file,
//! serves until SIGINT/SIGTERM, then stops every task it started and closes the log cleanly.

use crate::api::{self, AppState};
use crate::backend;
use crate::config::Config;
use crate::metrics::{MeteredLog, Metrics};
use anyhow::Context;
use fleetwatch_core::Log;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds `addr`; an error names the config key it came from.
pub async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{key} = {addr:?}: cannot listen there (in use by another process, or not a local address); set {key} to a free address, or port 0 for any free port"))
}

/// The address clients should use: a wildcard bind is reported as loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// Writes the ready file atomically: `{"http": "127.0.0.1:40123", …}`.
pub fn write_ready_file(path: &Path, listeners: &BTreeMap<&str, SocketAddr>) -> anyhow::Result<()> {
    let map: BTreeMap<&str, String> = listeners.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&map)?)
        .with_context(|| format!("writing ready file {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("writing ready file {}", path.display()))?;
    Ok(())
}

async fn shutdown_signal(cancel: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
        _ = cancel.cancelled() => {}
    }
    cancel.cancel();
}

/// Runs the server until a signal arrives.
pub async fn run(config: Config, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    let opened = backend::open(&config)?;
    let metrics = Arc::new(Metrics::new(opened.log.backend_name()));
    let log: Arc<dyn Log> = Arc::new(MeteredLog::new(opened.log.clone(), metrics.clone()));
    let cuts = opened
        .embedded
        .as_ref()
        .map(|e| {
            e.recovery_cuts()
                .iter()
                .map(|c| format!("{} at byte {}: {}", c.segment, c.position, c.reason))
                .collect()
        })
        .unwrap_or_default();
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    if let Some(e) = opened.embedded.clone() {
        let c = cancel.child_token();
        tasks.push(tokio::spawn(async move { e.run_maintenance(c).await }));
    }
    let http = bind(&config.http.listen, "http.listen").await?;
    let http_addr = reachable(http.local_addr()?);
    let sr = bind(&config.schema_registry.listen, "schema_registry.listen").await?;
    let sr_addr = reachable(sr.local_addr()?);
    let registry = config
        .schema_registry
        .build(log.clone())
        .await
        .context("opening the schema registry (_schemas topic)")?;
    {
        let r = registry.clone();
        let c = cancel.child_token();
        tasks.push(tokio::spawn(async move { r.run(c).await }));
    }
    let state = AppState::new(log, metrics, config.http.clone(), cuts);
    {
        let s = state.clone();
        let c = cancel.child_token();
        tasks.push(tokio::spawn(async move { api::run_expiry(s, c).await }));
    }
    let mut listeners = BTreeMap::new();
    listeners.insert("http", http_addr);
    listeners.insert("schema_registry", sr_addr);
    if let Some(path) = &ready_file {
        write_ready_file(path, &listeners)?;
    }
    eprintln!(
        "fleetwatch {} serving on backend {}: HTTP (REST Proxy API) http://{http_addr}, Schema Registry http://{sr_addr}",
        env!("CARGO_PKG_VERSION"),
        opened.log.backend_name()
    );
    let signals = tokio::spawn(shutdown_signal(cancel.clone()));
    let stopped = |c: CancellationToken| async move { c.cancelled().await };
    // Either server ending (an error) stops the other.
    let rest = async {
        let r = axum::serve(http, api::router(state))
            .with_graceful_shutdown(stopped(cancel.clone()))
            .await;
        cancel.cancel();
        r
    };
    let schema = async {
        let r = axum::serve(sr, fleetwatch_schema::http::router(registry))
            .with_graceful_shutdown(stopped(cancel.clone()))
            .await;
        cancel.cancel();
        r
    };
    let (a, b) = tokio::join!(rest, schema);
    let result = a
        .context("HTTP server failed")
        .and(b.context("schema registry server failed"));
    signals.abort();
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    opened.close().await?;
    tracing::info!("stopped cleanly");
    result
}
