//! Every error code of the REST Proxy API, reached through the real router (with the common
//! layers) over a real embedded log, table-driven with `Router::oneshot`. A code added to
//! `Code` without a case here fails `every_code_is_reached`.
#![allow(clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use fleetwatch_core::{LogAdmin, TopicConfig};
use fleetwatch_log::io::{FileOpener, OsFiles, SegmentFile};
use fleetwatch_log::{EmbeddedConfig, EmbeddedLog};
use fleetwatch_metrics::Metrics;
use fleetwatch_rest::error::Code;
use fleetwatch_rest::{AppState, RestConfig, RestMetrics, router};
use fleetwatch_server::http::{HttpMetrics, LayerOptions, layers};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use tower::ServiceExt;

/// Segment files whose writes fail with `errno` while it is non-zero; with `only` set, only
/// files whose path contains it fail.
struct Failing(Arc<AtomicI32>, Option<&'static str>);
struct FailingFile(Arc<dyn SegmentFile>, Arc<AtomicI32>);

impl SegmentFile for FailingFile {
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        match self.1.load(Ordering::SeqCst) {
            0 => self.0.write_all_at(buf, pos),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl FileOpener for Failing {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let inner = OsFiles.open(path, create)?;
        let fails = self
            .1
            .is_none_or(|only| path.to_string_lossy().contains(only));
        let switch = if fails {
            self.0.clone()
        } else {
            Arc::new(AtomicI32::new(0))
        };
        Ok(Arc::new(FailingFile(inner, switch)))
    }
}

struct Api {
    app: Router,
    errno: Arc<AtomicI32>,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    api_failing(None).await
}

async fn api_failing(only: Option<&'static str>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let errno = Arc::new(AtomicI32::new(0));
    let log = EmbeddedLog::open_with(
        EmbeddedConfig {
            data_dir: dir.path().to_path_buf(),
            ..EmbeddedConfig::default()
        },
        Arc::new(Failing(errno.clone(), only)),
    )
    .unwrap();
    log.create_topic("t", TopicConfig::with_partitions(2))
        .await
        .unwrap();
    log.create_topic("disk", TopicConfig::with_partitions(1))
        .await
        .unwrap();
    let metrics = Metrics::new();
    let config = RestConfig {
        max_records_per_request: 10,
        ..RestConfig::default()
    };
    let state = AppState::new(Arc::new(log), config, RestMetrics::new(&metrics).unwrap());
    let app = layers(
        router(state),
        &HttpMetrics::new(&metrics).unwrap(),
        LayerOptions {
            server: "http",
            max_body_bytes: 2 << 20,
            max_header_bytes: 4096,
            shape: fleetwatch_rest::error::shape,
        },
    );
    Api {
        app,
        errno,
        _dir: dir,
    }
}

const JSON: &str = "application/vnd.kafka.json.v2+json";
const BIN: &str = "application/vnd.kafka.binary.v2+json";

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        ct: Option<&str>,
        body: &str,
    ) -> (StatusCode, Value) {
        self.call_with(method, uri, ct, body, &[]).await
    }

    async fn call_with(
        &self,
        method: &str,
        uri: &str,
        ct: Option<&str>,
        body: &str,
        headers: &[(&str, String)],
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v)
    }
}

fn code_of(v: &Value) -> Option<u32> {
    v["error_code"].as_u64().map(|c| c as u32)
}

#[tokio::test]
async fn every_code_is_reached() {
    let a = api().await;
    let c = "/consumers/g/instances/i";
    // A consumer instance, subscribed, for the consumer cases.
    let (st, _) = a
        .call(
            "POST",
            "/consumers/g",
            Some("application/vnd.kafka.v2+json"),
            r#"{"name":"i","format":"json"}"#,
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = a
        .call("POST", "/consumers/g2", None, r#"{"name":"j"}"#)
        .await;
    assert_eq!(st, 200);
    let (st, _) = a
        .call(
            "POST",
            &format!("{c}/subscription"),
            None,
            r#"{"topics":["t"]}"#,
        )
        .await;
    assert_eq!(st, 204);
    let big_value = format!(r#"{{"records":[{{"value":"{}"}}]}}"#, "x".repeat(1_100_000));
    let cases: Vec<(Code, &str, String, Option<&str>, String)> = vec![
        (
            Code::MalformedBody,
            "POST",
            "/topics/t".into(),
            Some(JSON),
            "{not json".into(),
        ),
        (
            Code::InvalidParam,
            "POST",
            format!("{c}/offsets"),
            None,
            r#"{"offsets":[{"topic":"t","partition":0,"offset":-5}]}"#.into(),
        ),
        (
            Code::InternalTopic,
            "DELETE",
            "/v3/clusters/fleetwatch/topics/_schemas".into(),
            None,
            String::new(),
        ),
        (
            Code::NoEndpoint,
            "GET",
            "/nowhere".into(),
            None,
            String::new(),
        ),
        (
            Code::TopicNotFound,
            "GET",
            "/topics/missing".into(),
            None,
            String::new(),
        ),
        (
            Code::PartitionNotFound,
            "POST",
            "/topics/t/partitions/9".into(),
            Some(JSON),
            r#"{"records":[{"value":1}]}"#.into(),
        ),
        (
            Code::InstanceNotFound,
            "GET",
            "/consumers/g/instances/nobody/subscription".into(),
            None,
            String::new(),
        ),
        (
            Code::ClusterNotFound,
            "GET",
            "/v3/clusters/other/topics".into(),
            None,
            String::new(),
        ),
        (
            Code::GroupNotFound,
            "GET",
            "/v3/clusters/fleetwatch/consumer-groups/none".into(),
            None,
            String::new(),
        ),
        (
            Code::MethodNotAllowed,
            "PUT",
            "/topics".into(),
            None,
            String::new(),
        ),
        (
            Code::TopicExists,
            "POST",
            "/v3/clusters/fleetwatch/topics".into(),
            None,
            r#"{"topic_name":"t"}"#.into(),
        ),
        (
            Code::InstanceExists,
            "POST",
            "/consumers/g".into(),
            None,
            r#"{"name":"i"}"#.into(),
        ),
        (
            Code::NotSubscribed,
            "GET",
            "/consumers/g2/instances/j/records".into(),
            None,
            String::new(),
        ),
        (
            Code::TooLarge,
            "POST",
            "/topics/t".into(),
            Some(JSON),
            big_value,
        ),
        (
            Code::TooManyRecords,
            "POST",
            "/topics/t".into(),
            Some(JSON),
            format!(r#"{{"records":[{}]}}"#, ["{}"; 11].join(",")),
        ),
        (
            Code::UnsupportedMedia,
            "POST",
            "/topics/t".into(),
            Some("application/vnd.kafka.avro.v2+json"),
            r#"{"records":[]}"#.into(),
        ),
        (
            Code::OffsetOutOfRange,
            "POST",
            format!("{c}/positions"),
            None,
            String::new(),
        ),
        (
            Code::InvalidTopic,
            "POST",
            "/v3/clusters/fleetwatch/topics".into(),
            None,
            r#"{"topic_name":"bad name"}"#.into(),
        ),
        (
            Code::Conversion,
            "POST",
            "/topics/t".into(),
            Some(BIN),
            r#"{"records":[{"value":"%%%"}]}"#.into(),
        ),
        (
            Code::InvalidConsumerConfig,
            "POST",
            "/consumers/g3".into(),
            None,
            r#"{"format":"avro"}"#.into(),
        ),
        (
            Code::HeadersTooLarge,
            "GET",
            "/topics".into(),
            None,
            String::new(),
        ),
        (
            Code::Storage,
            "POST",
            "/topics/disk".into(),
            Some(JSON),
            r#"{"records":[{"value":1}]}"#.into(),
        ),
        (
            Code::Unavailable,
            "POST",
            "/topics/disk".into(),
            Some(JSON),
            r#"{"records":[{"value":2}]}"#.into(),
        ),
    ];
    // Codes this backend cannot produce, with the reason.
    let unreachable = [(
        Code::Unsupported,
        "only the Kafka backend answers 'not supported'",
    )];
    let mut reached = BTreeSet::new();
    for (want, method, uri, ct, body) in cases {
        let mut headers = Vec::new();
        let mut body = body;
        match want {
            Code::HeadersTooLarge => headers.push(("x-big", "v".repeat(5000))),
            Code::NotAcceptable => {}
            Code::OffsetOutOfRange => {
                // Needs the assignment first (a poll joins), then a seek past the end.
                let (st, _) = a
                    .call("GET", &format!("{c}/records?timeout=200"), None, "")
                    .await;
                assert_eq!(st, 200);
                let (_, asg) = a.call("GET", &format!("{c}/assignments"), None, "").await;
                let p = asg["partitions"][0]["partition"].as_i64().unwrap();
                body = format!(r#"{{"offsets":[{{"topic":"t","partition":{p},"offset":99}}]}}"#);
            }
            Code::Storage => a.errno.store(5, Ordering::SeqCst), // EIO
            Code::Unavailable => a.errno.store(28, Ordering::SeqCst), // ENOSPC
            _ => a.errno.store(0, Ordering::SeqCst),
        }
        let (st, v) = a.call_with(method, &uri, ct, &body, &headers).await;
        a.errno.store(0, Ordering::SeqCst);
        assert_eq!(
            code_of(&v),
            Some(want.number()),
            "{want:?} by {method} {uri}: {st} {v}"
        );
        assert_eq!(st, want.status(), "{want:?}: {v}");
        assert!(
            !v["message"].as_str().unwrap_or("").is_empty(),
            "{want:?}: {v}"
        );
        reached.insert(want.number());
    }
    // 40601: a json consumer asked for binary.
    let (st, v) = a
        .call_with(
            "GET",
            &format!("{c}/records"),
            None,
            "",
            &[("accept", BIN.to_string())],
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::NOT_ACCEPTABLE, Some(40601)),
        "{v}"
    );
    reached.insert(40601);
    for (code, _why) in unreachable {
        reached.insert(code.number());
    }
    let all: BTreeSet<u32> = Code::ALL.iter().map(|c| c.number()).collect();
    assert_eq!(
        reached,
        all,
        "codes without a case: {:?}",
        all.difference(&reached).collect::<Vec<_>>()
    );
}

/// One failing partition fails only its own records; the others are stored and answered with
/// their offsets, in request order.
#[tokio::test]
async fn a_failing_partition_fails_only_its_records() {
    let a = api_failing(Some("/topics/t/1/")).await;
    a.errno.store(5, Ordering::SeqCst);
    let body = r#"{"records":[
        {"value":"a","partition":0},{"value":"b","partition":1},
        {"value":"c","partition":0},{"value":"d","partition":1}]}"#;
    let (st, v) = a.call("POST", "/topics/t", Some(JSON), body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let o = v["offsets"].as_array().unwrap();
    assert_eq!(o.len(), 4);
    assert_eq!(
        (o[0]["partition"].as_i64(), o[0]["offset"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (o[2]["partition"].as_i64(), o[2]["offset"].as_i64()),
        (Some(0), Some(1))
    );
    for i in [1, 3] {
        assert_eq!(o[i]["partition"], 1, "{v}");
        assert_eq!(o[i]["offset"], -1, "{v}");
        assert_eq!(o[i]["error_code"], 50001, "{v}");
        assert!(o[i]["error"].as_str().unwrap().contains("I/O error"), "{v}");
    }
    assert!(
        o[0]["error_code"].is_null() && o[2]["error_code"].is_null(),
        "{v}"
    );
}
