//! HTTP serving: hyper connections under the listener's [`ConnectionLimits`], and the layers
//! every HTTP API gets from one function, [`layers`].
//!
//! [`layers`] adds, to any protocol's `Router`: a request counter and latency histogram
//! labelled by `server` and route; a body limit (enforced by the body extractors, which
//! read no more than the limit; their 413 gets the protocol's shape) and a header-size limit
//! answered with 431 in the protocol's error shape; 405 in that shape; a tracing span per request; and a
//! last-resort rewrite of any error answer that is not JSON (an extractor's text/plain
//! rejection, say) into the protocol's shape with the same status and text — so no error of
//! any API is ever an empty or plain-text body.
//!
//! [`HttpServer`] is the [`Component`] that serves a router on a bound listener: HTTP/1.1 and
//! HTTP/2 with prior knowledge (h2c) on one port; on stop, it finishes in-flight requests.

use crate::component::{BoxError, Component};
use crate::conn::{Accepted, Acceptor, ConnMetrics, ConnState, ConnectionLimits, TrackedIo};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fleetwatch_metrics::{HistogramVec, IntCounterVec, Metrics, MetricsResult, latency_buckets};
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

/// Builds an error answer in a protocol's own shape from a status and a message (REST Proxy
/// and Schema Registry: `{"error_code": …, "message": …}`; KServe: `{"error": …}`).
pub type ErrorShape = fn(StatusCode, String) -> Response;

/// Confluent's shape for errors that have no more specific code: the HTTP status as
/// `error_code`, as Confluent's servers answer for unknown paths and methods.
pub fn confluent_error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error_code": status.as_u16(), "message": message})),
    )
        .into_response()
}

/// Request metrics of every HTTP API, labelled by `server`.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Registers them (once per process; clone for each router).
    pub fn new(metrics: &Metrics) -> MetricsResult<Self> {
        Ok(HttpMetrics {
            requests: metrics.counter(
                "fleetwatch_http_requests_total",
                "HTTP requests served, per server, route, method and status.",
                &["server", "route", "method", "status"],
            )?,
            duration: metrics.histogram(
                "fleetwatch_http_request_duration_seconds",
                "Time to answer an HTTP request, per server and route.",
                &["server", "route"],
                latency_buckets(),
            )?,
        })
    }
}

/// What [`layers`] needs to know about one API.
#[derive(Clone)]
pub struct LayerOptions {
    /// The `server` label and log name (`http`, `schema_registry`…).
    pub server: &'static str,
    /// Largest request body (bytes).
    pub max_body_bytes: usize,
    /// Largest request head: URI plus header names and values (bytes).
    pub max_header_bytes: usize,
    /// The protocol's error shape.
    pub shape: ErrorShape,
}

#[derive(Clone)]
struct LayerState {
    opts: LayerOptions,
    metrics: HttpMetrics,
}

async fn common(State(s): State<Arc<LayerState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let head_bytes = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum::<usize>();
    let shape = s.opts.shape;
    let resp = if head_bytes > s.opts.max_header_bytes {
        shape(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "request head of {head_bytes} bytes (URI and headers) exceeds the limit of {} bytes",
                s.opts.max_header_bytes
            ),
        )
    } else {
        let span = tracing::debug_span!("request", server = s.opts.server, %method, route = %route);
        let resp = next.run(req).instrument(span).await;
        shape_stray_error(resp, shape).await
    };
    s.metrics
        .requests
        .with_label_values(&[
            s.opts.server,
            route.as_str(),
            method.as_str(),
            resp.status().as_str(),
        ])
        .inc();
    s.metrics
        .duration
        .with_label_values(&[s.opts.server, route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// An error answer that is not JSON (axum's text/plain rejections, an empty 405) becomes the
/// protocol's shape with the same status and text.
async fn shape_stray_error(resp: Response, shape: ErrorShape) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if is_json {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let message = if text.is_empty() {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
    } else {
        text
    };
    shape(status, message)
}

/// The layers every HTTP API gets: metrics, body and header limits, 405 and stray errors in
/// the protocol's shape, tracing.
pub fn layers(router: Router, metrics: &HttpMetrics, opts: LayerOptions) -> Router {
    let shape = opts.shape;
    let state = Arc::new(LayerState {
        metrics: metrics.clone(),
        opts: opts.clone(),
    });
    router
        .method_not_allowed_fallback(move |method: Method, uri: Uri| async move {
            shape(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} is not allowed on {}", uri.path()),
            )
        })
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state, common))
}

/// An HTTP API served on a bound listener, as a [`Component`].
pub struct HttpServer {
    name: String,
    config_key: String,
    addr: SocketAddr,
    acceptor: Acceptor,
    router: Router,
}

impl HttpServer {
    /// Serves `router` (already given its [`layers`]) on `listener`.
    pub fn new(
        name: impl Into<String>,
        config_key: impl Into<String>,
        listener: tokio::net::TcpListener,
        limits: ConnectionLimits,
        metrics: ConnMetrics,
        router: Router,
    ) -> std::io::Result<Self> {
        let name = name.into();
        let addr = listener.local_addr()?;
        Ok(HttpServer {
            acceptor: Acceptor::new(listener, name.clone(), limits, metrics),
            name,
            config_key: config_key.into(),
            addr,
            router,
        })
    }
}

impl Component for HttpServer {
    fn name(&self) -> &str {
        &self.name
    }
    fn config_key(&self) -> Option<&str> {
        Some(&self.config_key)
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        Some(self.addr)
    }
    fn run(self: Box<Self>, cancel: CancellationToken) -> BoxFuture<'static, Result<(), BoxError>> {
        Box::pin(serve(self.acceptor, self.router, cancel))
    }
}

async fn serve(
    acceptor: Acceptor,
    router: Router,
    cancel: CancellationToken,
) -> Result<(), BoxError> {
    let tracker = TaskTracker::new();
    let acceptor = Arc::new(acceptor);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            acc = acceptor.accept() => {
                let router = router.clone();
                let a = acceptor.clone();
                let c = cancel.clone();
                tracker.spawn(async move { connection(acc, router, &a, c).await });
            }
        }
    }
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Marks an exchange finished when the response is done or the request future is dropped.
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.exchange_finished();
    }
}

async fn connection(acc: Accepted, router: Router, acceptor: &Acceptor, cancel: CancellationToken) {
    let Accepted {
        stream,
        state,
        peer,
        ..
    } = acc;
    let io = TokioIo::new(TrackedIo::new(stream, state.clone()));
    let st = state.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        st.exchange_started();
        let guard = InFlight(st.clone());
        let fut = router.clone().oneshot(req.map(Body::new));
        async move {
            let r = fut.await;
            drop(guard);
            r
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let limits = *acceptor.limits();
    let mut tick = tokio::time::interval(limits.check_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(server = acceptor.server(), %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if let Some(v) = state.verdict(&limits) {
                    if state.mark_closed_by_limit() {
                        acceptor.metrics().refused(acceptor.server(), v);
                    }
                    tracing::debug!(server = acceptor.server(), %peer, reason = v.as_str(), "closing connection");
                    return;
                }
            }
            _ = cancel.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
