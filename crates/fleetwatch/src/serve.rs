//! `fleetwatch serve`: opens the log, builds and binds every component, reports the
//! listeners in the ready file, runs them under one supervisor until SIGINT/SIGTERM or until
//! any one of them ends or panics, then stops the rest and closes the log cleanly.
//!
//! Components: `http` (REST Proxy API, `/health`, `/metrics`), `schema_registry`, `ksql`
//! (the ksqlDB REST API, with the tasks `ksql_engine` and `ksql_streams`), `mqtt`
//! and `mqtt_tls` (the MQTT proxy, when `[mqtt] enabled`; TLS when certificates are set),
//! and the tasks `log_maintenance` (embedded log), `schema_registry_tailer`,
//! `mqtt_retained[<topic>]`, `mqtt_bridge[<name>]` (one per `[[mqtt.bridge]]`),
//! `consumer_expiry`, `lag_refresh`, `signals`. HTTP ingest (`POST /ingest/…`, when
//! `mqtt.http_ingest`) is a route of `http`.

use crate::backend;
use crate::config::Config;
use crate::metrics::{LogMetrics, MeteredLog};
use crate::ops::{self, Ops};
use anyhow::Context;
use fleetwatch_core::Log;
use fleetwatch_metrics::Metrics;
use fleetwatch_server::http::{HttpMetrics, HttpServer, LayerOptions, layers};
use fleetwatch_server::{BoxError, Component, ConnMetrics, Task, supervise};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long components get to stop after the stop is requested.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Largest Schema Registry request body.
const SCHEMA_REGISTRY_MAX_BODY: usize = 8 * 1024 * 1024;

/// Binds `addr`; an error names the config key it came from and says why.
pub async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    let parsed: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => match tokio::net::lookup_host(addr)
            .await
            .ok()
            .and_then(|mut a| a.next())
        {
            Some(a) => a,
            None => anyhow::bail!(
                "{key} = {addr:?} is not an address (expected HOST:PORT, e.g. 127.0.0.1:8082; port 0 picks a free port)"
            ),
        },
    };
    TcpListener::bind(parsed).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::AddrInUse => "the port is in use".to_string(),
            std::io::ErrorKind::AddrNotAvailable => "it is not an address of this machine".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_string(),
            _ => e.to_string(),
        };
        anyhow::anyhow!("{key} = {addr:?}: cannot listen there: {why}; set {key} to a free address, or port 0 for any free port")
    })
}

/// The address clients should use: a wildcard bind is reported as loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

/// Writes `value` as JSON to `path` through a temporary file and a rename, so a reader sees
/// the whole file or none.
fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(value)?)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes the ready file atomically: `{"http": "127.0.0.1:40123", …}`.
pub fn write_ready_file(
    path: &Path,
    listeners: &BTreeMap<String, SocketAddr>,
) -> anyhow::Result<()> {
    let map: BTreeMap<&str, String> = listeners
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    write_json_atomic(path, &map).context("writing the ready file")?;
    Ok(())
}

async fn signals(cancel: CancellationToken) -> Result<(), BoxError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
        _ = cancel.cancelled() => return Ok(()),
    }
    tracing::info!("stop requested by signal");
    Ok(())
}

/// Raises the soft open-files limit to the hard one (every connection is a descriptor).
#[allow(unsafe_code)]
fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass, nothing else.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let old = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::debug!(from = old, to = lim.rlim_max, "raised the open-files limit");
            }
        }
    }
}

/// Runs the server until a signal arrives or a component ends.
pub async fn run(config: Config, ready_file: Option<PathBuf>) -> anyhow::Result<()> {
    raise_nofile_limit();
    let opened = backend::open(&config)?;
    let result = run_opened(&config, &opened, ready_file).await;
    let closed = opened.close().await;
    match (&result, &closed) {
        (Ok(()), Ok(())) => tracing::info!("stopped cleanly"),
        _ => tracing::warn!("stopped"),
    }
    result.and(closed)
}

async fn run_opened(
    config: &Config,
    opened: &backend::Opened,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let log_metrics = Arc::new(LogMetrics::new(&metrics, opened.log.backend_name())?);
    let log: Arc<dyn Log> = Arc::new(MeteredLog::new(opened.log.clone(), log_metrics.clone()));
    let http_metrics = HttpMetrics::new(&metrics)?;
    let conn_metrics = ConnMetrics::new(&metrics)?;
    let mut components: Vec<Box<dyn Component>> = Vec::new();
    if let Some(m) = opened.maintenance() {
        components.push(m);
    }

    // Bind every listener first: a port in use fails start-up naming its key.
    let http = bind(&config.http.listen, "http.listen").await?;
    let sr = bind(&config.schema_registry.listen, "schema_registry.listen").await?;
    let ksql_listener = if config.ksql.enabled {
        Some(bind(&config.ksql.listen, "ksql.listen").await?)
    } else {
        None
    };
    let mqtt_listeners = if config.mqtt.enabled {
        let plain = bind(&config.mqtt.listen, "mqtt.listen").await?;
        let tls = match config.mqtt.tls_files() {
            Some((cert, key)) => Some((
                bind(&config.mqtt.tls_listen, "mqtt.tls_listen").await?,
                fleetwatch_ingest::load_tls(cert, key).map_err(anyhow::Error::msg)?,
            )),
            None => None,
        };
        Some((plain, tls))
    } else {
        None
    };

    let registry = config
        .schema_registry
        .build(log.clone())
        .await
        .context("opening the schema registry (_schemas topic)")?;
    let sql_registry = registry.clone();
    {
        let r = registry.clone();
        components.push(Box::new(Task::new(
            "schema_registry_tailer",
            move |c| async move {
                r.run(c).await;
                Ok::<(), BoxError>(())
            },
        )));
    }
    let rest = fleetwatch_rest::AppState::new(
        log.clone(),
        config.http.clone(),
        fleetwatch_rest::RestMetrics::new(&metrics)?,
    );
    {
        let s = rest.clone();
        components.push(Box::new(Task::new("consumer_expiry", move |c| {
            fleetwatch_rest::run_expiry(s, c)
        })));
    }
    {
        let (m, l) = (log_metrics.clone(), log.clone());
        let every = Duration::from_millis(config.metrics.lag_refresh_ms);
        components.push(Box::new(Task::new("lag_refresh", move |c| async move {
            m.run_refresh(l, every, c).await;
            Ok::<(), BoxError>(())
        })));
    }
    // The MQTT proxy's shared state (mapping, group-commit appender) also serves HTTP ingest
    // and the bridges, so it exists whenever one of the three does.
    let ingest = if config.mqtt.enabled || config.mqtt.http_ingest || !config.mqtt.bridge.is_empty()
    {
        Some(
            fleetwatch_ingest::Shared::new(config.mqtt.clone(), log.clone(), &metrics)
                .await
                .map_err(anyhow::Error::msg)
                .context("starting the MQTT proxy")?,
        )
    } else {
        None
    };
    if let Some(shared) = &ingest
        && !config.mqtt.bridge.is_empty()
    {
        let bm = fleetwatch_ingest::bridge::BridgeMetricsVec::new(&metrics)?;
        for b in &config.mqtt.bridge {
            let bridge = fleetwatch_ingest::bridge::Bridge::new(b.clone(), shared.clone(), &bm)
                .map_err(anyhow::Error::msg)?;
            components.push(Box::new(Task::new(bridge.task_name(), move |c| {
                bridge.run(c)
            })));
        }
    }
    let ops = Arc::new(Ops {
        log: log.clone(),
        metrics: metrics.clone(),
    });
    let http_limits = config.limits("http");
    let mut api = fleetwatch_rest::router(rest).merge(ops::router(ops));
    if let Some(shared) = ingest.as_ref().filter(|_| config.mqtt.http_ingest) {
        api = api.merge(fleetwatch_ingest::http::router(shared.clone()));
    }
    let http_router = layers(
        api,
        &http_metrics,
        LayerOptions {
            server: "http",
            max_body_bytes: config.http.max_request_bytes,
            max_header_bytes: http_limits.max_header_bytes,
            shape: fleetwatch_rest::error::shape,
        },
    );
    components.push(Box::new(HttpServer::new(
        "http",
        "http.listen",
        http,
        http_limits,
        conn_metrics.clone(),
        http_router,
    )?));
    let sr_limits = config.limits("schema_registry");
    let sr_router = layers(
        fleetwatch_schema::http::router(registry),
        &http_metrics,
        LayerOptions {
            server: "schema_registry",
            max_body_bytes: SCHEMA_REGISTRY_MAX_BODY,
            max_header_bytes: sr_limits.max_header_bytes,
            shape: fleetwatch_server::http::confluent_error,
        },
    );
    components.push(Box::new(HttpServer::new(
        "schema_registry",
        "schema_registry.listen",
        sr,
        sr_limits,
        conn_metrics.clone(),
        sr_router,
    )?));

    if let Some(listener) = ksql_listener {
        let hash_keys = match &config.pii.hash_key_file {
            Some(p) => Some(Arc::new(
                fleetwatch_pii::HashKeys::load(p)
                    .map_err(|e| anyhow::anyhow!("pii.hash_key_file: {e}"))?,
            )),
            None => None,
        };
        let engine = fleetwatch_sql::engine::Engine::with_registry(
            log.clone(),
            config.ksql.engine(
                fleetwatch_sql::functions::FunctionContext { hash_keys },
                Some(fleetwatch_sql::metrics::SqlMetrics::new(&metrics)?),
            ),
            Some(sql_registry),
        );
        let restored = engine
            .recover()
            .await
            .map_err(|e| anyhow::anyhow!("starting the SQL engine (command topic): {e}"))?;
        tracing::info!(statements = restored, "SQL engine restored");
        {
            let e = engine.clone();
            components.push(Box::new(Task::new("ksql_engine", move |c| async move {
                e.run(c).await.map_err(|e| Box::new(e) as BoxError)
            })));
        }
        // Open push queries end when the server stops, so the listener can drain.
        let streams_stop = CancellationToken::new();
        {
            let s = streams_stop.clone();
            components.push(Box::new(Task::new("ksql_streams", move |c| async move {
                c.cancelled().await;
                s.cancel();
                Ok::<(), BoxError>(())
            })));
        }
        let limits = config.limits("ksql");
        let router = layers(
            fleetwatch_sql::rest::router(fleetwatch_sql::rest::RestState::new(
                engine,
                streams_stop,
            )),
            &http_metrics,
            LayerOptions {
                server: "ksql",
                max_body_bytes: config.ksql.max_request_bytes,
                max_header_bytes: limits.max_header_bytes,
                shape: fleetwatch_sql::rest::ksql_error,
            },
        );
        components.push(Box::new(HttpServer::new(
            "ksql",
            "ksql.listen",
            listener,
            limits,
            conn_metrics.clone(),
            router,
        )?));
    }

    if let (Some((plain, tls)), Some(shared)) = (mqtt_listeners, ingest) {
        for t in shared.retained_tasks() {
            components.push(Box::new(t));
        }
        components.push(Box::new(fleetwatch_ingest::MqttServer::new(
            "mqtt",
            "mqtt.listen",
            plain,
            None,
            config.limits("mqtt"),
            conn_metrics.clone(),
            shared.clone(),
        )?));
        if let Some((listener, acceptor)) = tls {
            components.push(Box::new(fleetwatch_ingest::MqttServer::new(
                "mqtt_tls",
                "mqtt.tls_listen",
                listener,
                Some(acceptor),
                config.limits("mqtt_tls"),
                conn_metrics.clone(),
                shared,
            )?));
        }
    }

    let cancel = CancellationToken::new();
    {
        components.push(Box::new(Task::new("signals", {
            let stop = cancel.clone();
            move |c| async move {
                signals(c).await?;
                stop.cancel();
                Ok::<(), BoxError>(())
            }
        })));
    }
    let listeners: BTreeMap<String, SocketAddr> = components
        .iter()
        .filter_map(|c| Some((c.name().to_string(), reachable(c.local_addr()?))))
        .collect();
    if let Some(path) = &ready_file {
        write_ready_file(path, &listeners)?;
    }
    // The CLI finds a server that owns the embedded data directory through this file.
    let server_file = (config.log.backend == crate::config::Backend::Embedded)
        .then(|| crate::remote::server_file(&config.embedded.data_dir));
    if let Some(path) = &server_file {
        let url = |k: &str| {
            listeners
                .get(k)
                .map(|a| format!("http://{a}"))
                .unwrap_or_default()
        };
        let f = crate::remote::ServerFile {
            pid: std::process::id(),
            http: url("http"),
            schema_registry: url("schema_registry"),
            ksql: url("ksql"),
        };
        write_json_atomic(path, &f)?;
    }
    let banner: Vec<String> = components
        .iter()
        .filter_map(|c| {
            let scheme = match c.name() {
                "mqtt" => "mqtt",
                "mqtt_tls" => "mqtts",
                _ => "http",
            };
            Some(format!(
                "{} {scheme}://{} ({})",
                c.name(),
                reachable(c.local_addr()?),
                c.config_key().unwrap_or("")
            ))
        })
        .collect();
    eprintln!(
        "fleetwatch {} serving on backend {}: {}",
        env!("CARGO_PKG_VERSION"),
        opened.log.backend_name(),
        banner.join(", ")
    );
    if let Ok(name) = std::env::var("FLEETWATCH_TEST_FAIL_COMPONENT") {
        // For the supervision test: a component that fails at run time, by name.
        components.push(Box::new(Task::new(name, |_c| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err::<(), BoxError>("failing on purpose (FLEETWATCH_TEST_FAIL_COMPONENT)".into())
        })));
    }
    let result = supervise(components, cancel, STOP_GRACE).await;
    if let Some(path) = &server_file {
        let _ = std::fs::remove_file(path);
    }
    result?;
    Ok(())
}
