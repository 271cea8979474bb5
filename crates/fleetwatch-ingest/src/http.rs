//! HTTP ingest for devices that cannot speak MQTT: `POST /ingest/{mqtt/topic/path}` with one
//! JSON event (`Content-Type: application/json`) or NDJSON lines (`application/x-ndjson`,
//! `application/jsonl`, or no content type), routed by `[[mqtt.publish_map]]` as if the path
//! were the MQTT topic of a publish.
//!
//! The whole body is checked before anything is appended (a bad line refuses the request
//! with 400 naming the line and column; nothing of it is stored), and the answer comes once
//! the records are durable — every event of one request lands in one partition (the mapping
//! gives one key per topic path), in one append. Bodies over `http.max_request_bytes` get 413
//! from the listener; an event over the topic's record limit gets 413 naming its line.
//! Errors have the REST Proxy's shape on that port: `{"error_code": 40001, "message": …}`.
//!
//! Each record carries the headers a publish would: `mqtt.topic` (the path), `mqtt.client_id`
//! (the `X-Client-Id` request header, or `http`), and `ingest.source: http`.

use crate::mapping::ClientIdentity;
use crate::packet::reason;
use crate::server::Shared;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use fleetwatch_core::{Header, LogError, Record, TimestampType, now_ms};
use serde::Serialize;
use std::sync::Arc;

/// The answer to a request that was stored.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct IngestResponse {
    /// The log topic the events went to.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Offset of the first event.
    pub base_offset: i64,
    /// How many events were stored.
    pub count: usize,
}

/// An HTTP ingest refusal: status, REST-Proxy-style code, message.
#[derive(Debug)]
pub struct IngestError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl IngestError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        IngestError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({"error_code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

/// `POST /ingest/{*topic}` over the MQTT proxy's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ingest/{*topic}", post(ingest))
        .with_state(shared)
}

/// How the body is split into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The whole body is one JSON value.
    One,
    /// One JSON value per line (blank lines skipped).
    Lines,
}

fn framing(headers: &HeaderMap) -> Result<Framing, IngestError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(Framing::Lines);
    };
    let ct = ct.to_str().unwrap_or("");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Framing::One),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/json-lines"
        | "text/plain"
        | "" => Ok(Framing::Lines),
        other => Err(IngestError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            41501,
            format!(
                "Content-Type {other:?} is not supported: use application/json (one event) or application/x-ndjson (one event per line)"
            ),
        )),
    }
}

/// The events of `body`: (line number, bytes). Every one is checked to be JSON.
fn split(body: &Bytes, framing: Framing) -> Result<Vec<(usize, Bytes)>, IngestError> {
    let bad = |line: usize, e: serde_json::Error| {
        IngestError::new(
            StatusCode::BAD_REQUEST,
            40001,
            format!("line {line}: not JSON: {e} (nothing of this request was stored)"),
        )
    };
    let check = |bytes: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map(|_| ());
    let mut out = Vec::new();
    match framing {
        Framing::One => {
            let t = trim(body, 0, body.len());
            if t.is_empty() {
                return Err(empty());
            }
            // Errors count lines from the start of the body.
            check(&t).map_err(|e| bad(e.line(), e))?;
            out.push((1, t));
        }
        Framing::Lines => {
            let mut start = 0;
            for (i, chunk) in body.split(|&b| b == b'\n').enumerate() {
                let end = start + chunk.len();
                let line = trim(body, start, end);
                start = end + 1;
                if line.is_empty() {
                    continue;
                }
                check(&line).map_err(|e| bad(i + 1, e))?;
                out.push((i + 1, line));
            }
            if out.is_empty() {
                return Err(empty());
            }
        }
    }
    Ok(out)
}

fn empty() -> IngestError {
    IngestError::new(
        StatusCode::BAD_REQUEST,
        40001,
        "the body has no event: send one JSON event, or NDJSON (one JSON event per line)",
    )
}

/// `body[start..end]` without surrounding ASCII whitespace (a zero-copy slice).
fn trim(body: &Bytes, mut start: usize, mut end: usize) -> Bytes {
    while start < end && body[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && body[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    body.slice(start..end)
}

async fn ingest(
    State(shared): State<Arc<Shared>>,
    Path(mqtt_topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<IngestResponse>, IngestError> {
    let client_id = headers
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("http")
        .to_string();
    match shared.check_publish_target(&mqtt_topic, &client_id, None) {
        Ok(()) => {}
        Err(reason::NOT_AUTHORIZED) => {
            shared.metrics.rejected("not_authorized");
            return Err(IngestError::new(
                StatusCode::FORBIDDEN,
                40302,
                format!("not authorized to publish to {mqtt_topic:?} (mqtt.acl, anonymous)"),
            ));
        }
        Err(_) => {
            return Err(IngestError::new(
                StatusCode::BAD_REQUEST,
                40002,
                format!(
                    "{mqtt_topic:?} is not a valid MQTT topic name (no +, #, empty levels at the ends or NUL)"
                ),
            ));
        }
    }
    let events = split(&body, framing(&headers)?)?;
    let identity = ClientIdentity {
        client_id: &client_id,
        username: None,
    };
    let Some(route) = shared.mapping.route(&mqtt_topic, &identity) else {
        shared.metrics.rejected("unmapped");
        return Err(IngestError::new(
            StatusCode::NOT_FOUND,
            40401,
            format!("no mqtt.publish_map rule maps {mqtt_topic:?} (mqtt.unmapped = \"reject\")"),
        ));
    };
    let topic = route.topic.to_string();
    let key = route.key.map(Bytes::from);
    let partition = shared
        .appender
        .partition(&topic, key.as_deref())
        .await
        .map_err(|e| unavailable(&topic, &e))?;
    let headers = [
        ("mqtt.topic", Bytes::copy_from_slice(mqtt_topic.as_bytes())),
        (
            "mqtt.client_id",
            Bytes::copy_from_slice(client_id.as_bytes()),
        ),
        ("ingest.source", Bytes::from_static(b"http")),
    ];
    let ts = now_ms();
    let records: Vec<Record> = events
        .iter()
        .map(|(_, v)| Record {
            key: key.clone(),
            value: Some(v.clone()),
            headers: headers
                .iter()
                .map(|(k, v)| Header {
                    key: (*k).to_string(),
                    value: Some(v.clone()),
                })
                .collect(),
            timestamp: ts,
            timestamp_type: TimestampType::CreateTime,
        })
        .collect();
    let count = records.len();
    let bytes: usize = events.iter().map(|(_, v)| v.len()).sum();
    let result = shared
        .appender
        .submit(&topic, partition, records)
        .await
        .unwrap_or_else(|_| Err(Arc::new(LogError::Closed)));
    match result {
        Ok(offsets) => {
            for (_, v) in &events {
                shared.metrics.message_in(1, v.len());
            }
            tracing::debug!(topic, partition, count, bytes, "HTTP ingest stored");
            Ok(axum::Json(IngestResponse {
                base_offset: offsets.first().copied().unwrap_or(-1),
                topic,
                partition,
                count,
            }))
        }
        Err(e) => match &*e {
            LogError::RecordTooLarge { limit, .. } => {
                shared.metrics.rejected("too_large");
                let (line, len) = events
                    .iter()
                    .find(|(_, v)| v.len() > *limit)
                    .or_else(|| events.iter().max_by_key(|(_, v)| v.len()))
                    .map(|(l, v)| (*l, v.len()))
                    .unwrap_or((0, 0));
                Err(IngestError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    41301,
                    format!(
                        "line {line}: an event of {len} bytes is over the record limit of {limit} bytes of topic {topic:?} (nothing of this request was stored)"
                    ),
                ))
            }
            other => Err(unavailable(&topic, other)),
        },
    }
}

fn unavailable(topic: &str, e: &LogError) -> IngestError {
    IngestError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        50301,
        format!("appending to {topic:?} failed, nothing was stored: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(body: &str) -> Result<Vec<(usize, String)>, String> {
        split(&Bytes::from(body.to_string()), Framing::Lines)
            .map(|v| {
                v.into_iter()
                    .map(|(l, b)| (l, String::from_utf8_lossy(&b).into_owned()))
                    .collect()
            })
            .map_err(|e| e.message)
    }

    #[test]
    fn ndjson_lines_are_numbered_and_blank_lines_skipped() {
        assert_eq!(
            lines("{\"a\":1}\r\n\n  {\"b\":2}  \n").unwrap(),
            vec![(1, "{\"a\":1}".to_string()), (3, "{\"b\":2}".to_string())]
        );
        let e = lines("{\"a\":1}\n{\"b\":\n{\"c\":3}").unwrap_err();
        assert!(e.starts_with("line 2: not JSON"), "{e}");
        assert!(lines(" \n\n").unwrap_err().contains("no event"));
    }

    #[test]
    fn one_json_event_may_span_lines() {
        let b = Bytes::from_static(b"{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n");
        let v = split(&b, Framing::One).unwrap();
        assert_eq!(v.len(), 1);
        assert!(v[0].1.starts_with(b"{") && v[0].1.ends_with(b"}"));
        let bad = Bytes::from_static(b"{\n  \"a\": 1,\n  \"b\": x\n}");
        let e = split(&bad, Framing::One).unwrap_err();
        assert!(e.message.starts_with("line 3:"), "{}", e.message);
    }

    #[test]
    fn content_types() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            framing(&h).map_err(|e| e.status)
        };
        assert_eq!(framing(&HeaderMap::new()).unwrap(), Framing::Lines);
        assert_eq!(
            with("application/json; charset=utf-8").unwrap(),
            Framing::One
        );
        assert_eq!(with("application/x-ndjson").unwrap(), Framing::Lines);
        assert_eq!(
            with("application/xml").unwrap_err(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
