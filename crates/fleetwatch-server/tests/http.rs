//! The HTTP server's limits and common layers, on a real loopback socket.
#![allow(clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use fleetwatch_metrics::{Metrics, lint};
use fleetwatch_server::http::{HttpMetrics, HttpServer, LayerOptions, confluent_error, layers};
use fleetwatch_server::{Component, ConnMetrics, ConnectionLimits};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Running {
    addr: SocketAddr,
    metrics: Metrics,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: ConnectionLimits) -> Running {
    let metrics = Metrics::new();
    let router = Router::new()
        .route("/hello", get(|| async { "hi" }))
        .route(
            "/echo",
            axum::routing::post(|b: axum::body::Bytes| async move { b }),
        )
        .route(
            "/n/{n}",
            get(|Path(n): Path<u32>| async move { n.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }),
        );
    let router = layers(
        router,
        &HttpMetrics::new(&metrics).unwrap(),
        LayerOptions {
            server: "test",
            max_body_bytes: 1024,
            max_header_bytes: 2048,
            shape: confluent_error,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = HttpServer::new(
        "test",
        "test.listen",
        listener,
        limits,
        ConnMetrics::new(&metrics).unwrap(),
        router,
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let task = tokio::spawn(async move {
        Box::new(server).run(c).await.unwrap();
    });
    Running {
        addr,
        metrics,
        cancel,
        task,
    }
}

/// Reads until EOF or `limit`; returns what was read and whether EOF came.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 3,
        header_timeout_ms: 200,
        idle_timeout_ms: 500,
        max_header_bytes: 2048,
    }
}

#[tokio::test]
async fn silent_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let r = start(limits()).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(r.addr).await.unwrap();
    let mut half = TcpStream::connect(r.addr).await.unwrap();
    half.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent connection stayed open");
    let (_, closed) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent request stayed open");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "closed before the timeout"
    );
    let text = r.metrics.encode();
    assert!(
        text.contains(
            r#"fleetwatch_connections_refused_total{reason="header_timeout",server="test"} 2"#
        ),
        "{text}"
    );
    r.cancel.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn idle_keep_alive_is_closed_but_a_slow_answer_is_not() {
    let r = start(limits()).await;
    let mut s = TcpStream::connect(r.addr).await.unwrap();
    // A request whose answer takes longer than the header timeout is not cut.
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("done"));
    let idle_from = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "an idle keep-alive connection stayed open");
    assert!(
        idle_from.elapsed() >= Duration::from_millis(450),
        "closed before idle_timeout"
    );
    assert!(
        r.metrics
            .encode()
            .contains(r#"reason="idle_timeout",server="test"} 1"#)
    );
    r.cancel.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_counted() {
    let r = start(ConnectionLimits {
        header_timeout_ms: 5_000,
        ..limits()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(r.addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(r.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    assert!(closed, "the 4th connection was not refused");
    assert!(
        r.metrics
            .encode()
            .contains(r#"reason="limit",server="test"} 1"#)
    );
    // A freed slot is usable again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let body = reqwest::get(format!("http://{}/hello", r.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "hi");
    r.cancel.cancel();
    r.task.await.unwrap();
}

#[tokio::test]
async fn every_error_has_the_protocol_shape() {
    let r = start(limits()).await;
    let c = reqwest::Client::new();
    let base = format!("http://{}", r.addr);
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            c.post(format!("{base}/hello")),
            StatusCode::METHOD_NOT_ALLOWED,
            "method POST is not allowed on /hello",
        ),
        (
            c.get(format!("{base}/n/abc")),
            StatusCode::BAD_REQUEST,
            "Cannot parse",
        ),
        (
            c.get(format!("{base}/nowhere")),
            StatusCode::NOT_FOUND,
            "HTTP 404 Not Found",
        ),
        (
            c.get(format!("{base}/hello"))
                .header("x-big", "v".repeat(3000)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "exceeds the limit of 2048 bytes",
        ),
        (
            c.post(format!("{base}/echo")).body("x".repeat(2000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit exceeded",
        ),
    ];
    for (req, status, want) in cases {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status.as_u16());
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error_code"], status.as_u16(), "{body}");
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
    let text = r.metrics.encode();
    assert!(
        text.contains(r#"fleetwatch_http_requests_total{method="POST",route="/hello",server="test",status="405"} 1"#),
        "{text}"
    );
    assert_eq!(lint(&text), Vec::<String>::new());
    r.cancel.cancel();
    r.task.await.unwrap();
}
