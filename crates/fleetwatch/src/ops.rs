//! `/health` and `/metrics`, served on `http.listen` next to the REST Proxy API (one place
//! to scrape and probe; the Schema Registry port serves only its own API).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fleetwatch_core::Log;
use fleetwatch_metrics::Metrics;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One degraded partition in `/health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DegradedJson {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// What is wrong, naming the file and byte where there is one.
    pub reason: String,
    /// When it was found (ms since the epoch).
    pub since_ms: i64,
}

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    /// `ok`, `degraded` (some partition cannot be fully served; the rest works) or
    /// `unavailable` (the backend does not answer).
    pub status: String,
    /// Log backend.
    pub backend: String,
    /// What recovery cut at start (torn tails after an unclean stop; only unacknowledged
    /// bytes are lost that way).
    pub recovery_cuts: Vec<String>,
    /// Partitions not fully served.
    pub degraded: Vec<DegradedJson>,
}

/// What the ops routes read.
pub struct Ops {
    /// The log.
    pub log: Arc<dyn Log>,
    /// Every metric of the process.
    pub metrics: Metrics,
}

async fn health(State(ops): State<Arc<Ops>>) -> Response {
    let reachable = ops.log.list_topics().await.is_ok();
    let h = ops.log.health();
    let status = if !reachable {
        "unavailable"
    } else {
        h.status()
    };
    let body = Health {
        status: status.into(),
        backend: ops.log.backend_name().into(),
        recovery_cuts: h.notes,
        degraded: h
            .degraded
            .into_iter()
            .map(|d| DegradedJson {
                topic: d.partition.topic,
                partition: d.partition.partition,
                reason: d.reason,
                since_ms: d.since_ms,
            })
            .collect(),
    };
    let code = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.metrics.encode(),
    )
        .into_response()
}

/// The `/health` and `/metrics` routes.
pub fn router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(ops)
}
