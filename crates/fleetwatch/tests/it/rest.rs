//! The HTTP API, black-box: REST Proxy v2 produce and consumers, v3 topic admin, errors in
//! Confluent's shape, `/health` and `/metrics`.

use fleetwatch_testkit::server::{Server, get_json};
use serde_json::{Value, json};

use crate::api::{JSON_V2, create_topic, error_of};

const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";

#[tokio::test]
async fn produce_and_consume_through_rest_proxy_v2() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    create_topic(&c, &s, "rest.telemetry", 3).await;

    // JSON format: keyed records land on murmur2(serialized key) partitions.
    let r = c
        .post(s.url("/topics/rest.telemetry"))
        .header("Content-Type", JSON_V2)
        .body(r#"{"records":[{"key":"car-1","value":{"speed":88.5}},{"key":"car-1","value":{"speed":90}},{"value":[1,2,3]}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.kafka.v2+json");
    let body: Value = r.json().await.unwrap();
    let offsets = body["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 3);
    let p = fleetwatch_core::partitioner::partition_for_key(b"\"car-1\"", 3);
    assert_eq!(offsets[0]["partition"], p);
    assert_eq!(offsets[1]["partition"], p);
    assert_eq!(
        offsets[1]["offset"].as_i64().unwrap(),
        offsets[0]["offset"].as_i64().unwrap() + 1
    );
    assert!(offsets[0]["error_code"].is_null());

    // Binary format, explicit partition.
    let r = c
        .post(s.url("/topics/rest.telemetry/partitions/2"))
        .header("Content-Type", BINARY_V2)
        .json(&json!({"records": [{"key": "a2V5", "value": "AAEC/w=="}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["offsets"][0]["partition"], 2);

    // A consumer instance reads everything back, commits, and the commit is visible.
    let r = c
        .post(s.url("/consumers/dash"))
        .header("Content-Type", "application/vnd.kafka.v2+json")
        .json(&json!({"name": "c1", "format": "json", "auto.offset.reset": "earliest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["instance_id"], "c1");
    assert!(
        created["base_uri"]
            .as_str()
            .unwrap()
            .ends_with("/consumers/dash/instances/c1")
    );
    let inst = s.url("/consumers/dash/instances/c1");
    let r = c
        .post(format!("{inst}/subscription"))
        .json(&json!({"topics": ["rest.telemetry"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut got: Vec<Value> = Vec::new();
    for _ in 0..20 {
        let r = c
            .get(format!("{inst}/records?timeout=500"))
            .header("Accept", JSON_V2)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        got.extend(r.json::<Vec<Value>>().await.unwrap());
        if got.len() >= 4 {
            break;
        }
    }
    assert_eq!(got.len(), 4, "{got:?}");
    let speeds: Vec<&Value> = got
        .iter()
        .filter(|r| r["key"] == "car-1")
        .map(|r| &r["value"]["speed"])
        .collect();
    assert_eq!(speeds, vec![&json!(88.5), &json!(90)]);
    assert!(
        got.iter()
            .any(|r| r["value"] == json!([1, 2, 3]) && r["key"].is_null())
    );
    // The binary record is shown in JSON format as its (non-JSON) bytes, not dropped.
    assert!(got.iter().any(|r| r["partition"] == 2));
    let r = c.post(format!("{inst}/offsets")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(format!("{inst}/offsets")).send().await.unwrap();
    let committed: Value = r.json().await.unwrap();
    let total: i64 = committed["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["offset"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 4, "{committed}");
    let r = c.get(format!("{inst}/assignments")).send().await.unwrap();
    let a: Value = r.json().await.unwrap();
    assert_eq!(a["partitions"].as_array().unwrap().len(), 3);

    // Seek back to the beginning of partition p: its records come again.
    let r = c
        .post(format!("{inst}/positions/beginning"))
        .json(&json!({"partitions": [{"topic": "rest.telemetry", "partition": p}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let again: Vec<Value> = get_json(&c, format!("{inst}/records?timeout=500")).await;
    assert!(
        again.iter().all(|r| r["partition"] == p) && again.len() >= 2,
        "{again:?}"
    );
    assert_eq!(again[0]["offset"], 0);
    let r = c
        .post(format!("{inst}/positions"))
        .json(&json!({"offsets": [{"topic": "rest.telemetry", "partition": p, "offset": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let again: Vec<Value> = get_json(&c, format!("{inst}/records?timeout=500")).await;
    assert_eq!(again[0]["offset"], 1);
    let (st, code, _) = error_of(
        c.post(format!("{inst}/positions"))
            .json(&json!({"offsets": [{"topic": "other", "partition": 0, "offset": 1}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (409, 40903));

    // Group lag and admin views.
    let r = c
        .get(s.url("/v3/clusters/fleetwatch/consumer-groups/dash"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let g: Value = r.json().await.unwrap();
    assert!(
        g["lags"].as_array().unwrap().iter().all(|l| l["lag"] == 0),
        "{g}"
    );
    let r = c
        .get(s.url("/topics/rest.telemetry/partitions/2/offsets"))
        .send()
        .await
        .unwrap();
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["beginning_offset"], 0);
    assert!(o["end_offset"].as_i64().unwrap() >= 1);

    let r = c.delete(inst.clone()).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (status, code, msg) =
        error_of(c.get(format!("{inst}/records")).send().await.unwrap()).await;
    assert_eq!((status, code), (404, 40403), "{msg}");
}

#[tokio::test]
async fn bad_requests_get_confluent_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &["--log-level", "error"]);
    let c = reqwest::Client::new();
    create_topic(&c, &s, "t", 2).await;
    let post = |path: &str, ct: &str, body: String| {
        c.post(s.url(path))
            .header("Content-Type", ct)
            .body(body)
            .send()
    };

    let (st, code, msg) = error_of(
        post(
            "/topics/missing",
            JSON_V2,
            r#"{"records":[{"value":1}]}"#.into(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((st, code), (404, 40401));
    assert!(msg.contains("missing"), "{msg}");

    let (st, code, msg) = error_of(
        post("/topics/t", JSON_V2, r#"{"records":[{"value":1}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (400, 40001));
    assert!(msg.contains("line 1 column"), "names where: {msg}");

    let (st, code, _) = error_of(
        post(
            "/topics/t",
            JSON_V2,
            r#"{"records":[{"value":1,"partition":7}]}"#.into(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((st, code), (404, 40402));

    let (st, code, msg) = error_of(
        post(
            "/topics/t",
            BINARY_V2,
            r#"{"records":[{"value":"not base64!"}]}"#.into(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((st, code), (422, 42203));
    assert!(msg.contains("records[0].value"), "{msg}");

    let (st, code, _) = error_of(
        post("/topics/t", "text/plain", "hello".into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (415, 41501));
    let (st, code, msg) = error_of(
        post(
            "/topics/t",
            "application/vnd.kafka.avro.v2+json",
            "{}".into(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((st, code), (415, 41501), "{msg}");

    // A record over the 1 MiB default limit is refused whole.
    let big = "x".repeat(1_100_000);
    let (st, code, msg) = error_of(
        post(
            "/topics/t/partitions/0",
            JSON_V2,
            json!({"records": [{"value": "ok"}, {"value": big}]}).to_string(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((st, code), (413, 41301), "{msg}");
    // A body over http.max_request_bytes (16 MiB) too.
    // (its own client: the server closes a connection whose body it did not read)
    let huge = "y".repeat(17 * 1024 * 1024);
    let r = reqwest::Client::new()
        .post(s.url("/topics/t"))
        .header("Content-Type", JSON_V2)
        .body(json!({"records": [{"value": huge}]}).to_string())
        .send()
        .await
        .unwrap();
    let (st, code, _) = error_of(r).await;
    assert_eq!((st, code), (413, 41301));

    // Topic admin errors.
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": "bad name"}))
        .send()
        .await
        .unwrap();
    let (st, code, msg) = error_of(r).await;
    assert_eq!((st, code), (422, 42201));
    assert!(msg.contains("bad name"), "{msg}");
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, 40901);
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": "u", "configs": [{"name": "retention.ms", "value": "soon"}]}))
        .send()
        .await
        .unwrap();
    let (st, code, msg) = error_of(r).await;
    assert_eq!((st, code), (422, 42201));
    assert!(msg.contains("retention.ms"), "{msg}");

    // Consumers: unknown instance, records before subscribing, duplicate name.
    let r = c
        .get(s.url("/consumers/g/instances/nobody/records"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, 40403);
    c.post(s.url("/consumers/g"))
        .json(&json!({"name": "a"}))
        .send()
        .await
        .unwrap();
    let r = c
        .post(s.url("/consumers/g"))
        .json(&json!({"name": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, 40902);
    let r = c
        .get(s.url("/consumers/g/instances/a/records"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, 40903);
    let r = c
        .post(s.url("/consumers/g"))
        .json(&json!({"format": "avro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1, 42204);
    let r = c.get(s.url("/no/such/endpoint")).send().await.unwrap();
    assert_eq!(error_of(r).await.0, 404);

    // Nothing of the refused requests was stored; the server still works.
    let r = post(
        "/topics/t/partitions/0",
        JSON_V2,
        r#"{"records":[{"value":"after"}]}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["offsets"][0]["offset"], 0,
        "refused records must not take offsets"
    );
    let h: Value = get_json(&c, s.url("/health")).await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["backend"], "embedded");
}

#[tokio::test]
async fn metrics_count_traffic_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    create_topic(&c, &s, "m", 1).await;
    for _ in 0..3 {
        let r = c
            .post(s.url("/topics/m"))
            .header("Content-Type", JSON_V2)
            .body(r#"{"records":[{"value":"abcd"},{"value":"efgh"}]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("fleetwatch_records_in_total{topic=\"m\"} 6"),
        "{text}"
    );
    assert!(
        text.contains("fleetwatch_in_bytes_total{topic=\"m\"} 36"),
        "{text}"
    );
    assert!(
        text.contains("fleetwatch_append_latency_seconds_count{topic=\"m\"} 3"),
        "{text}"
    );
    assert!(text.contains("fleetwatch_http_requests_total{method=\"POST\",route=\"/topics/{topic}\",server=\"http\",status=\"200\"} 3"), "{text}");
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; .ci/run installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn ready_file_port_zero_clean_stop_and_port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let addr = s.base.trim_start_matches("http://").to_string();
    // A second server on the same port fails, naming the config key.
    let out = std::process::Command::new(fleetwatch_testkit::server::bin())
        .arg("--data-dir")
        .arg(dir.path().join("other"))
        .args([
            "serve",
            "--http-listen",
            &addr,
            "--schema-registry-listen",
            "127.0.0.1:0",
            "--ksql-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.listen"), "{err}");
    // SIGTERM stops it cleanly: the log is closed with its clean-shutdown marker.
    let data = s.dir.clone();
    assert!(s.stop().success());
    assert!(data.join("clean-shutdown").exists());
}

#[tokio::test]
async fn produce_to_a_missing_topic_creates_it_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fleetwatch.toml");
    std::fs::write(&cfg, "[http]\nauto_create_partitions = 3\n").unwrap();
    let s = Server::start_with_global(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/topics/created.on.demand"))
        .header("Content-Type", JSON_V2)
        .body(r#"{"records":[{"value":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = get_json(
        &c,
        s.url("/v3/clusters/fleetwatch/topics/created.on.demand"),
    )
    .await;
    assert_eq!(t["partitions_count"], 3);
}

#[tokio::test]
async fn a_damaged_log_tail_is_cut_reported_and_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let c = reqwest::Client::new();
    create_topic(&c, &s, "d", 1).await;
    for i in 0..5 {
        let r = c
            .post(s.url("/topics/d"))
            .header("Content-Type", JSON_V2)
            .body(format!(r#"{{"records":[{{"value":{i}}}]}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(s.stop().success());
    // tear the last batch, as a crash in the middle of a write would
    let seg = data.join("topics/d/0/00000000000000000000.log");
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    std::fs::remove_file(data.join("clean-shutdown")).unwrap();
    let s = Server::start(&data, &[]);
    let h: Value = get_json(&c, s.url("/health")).await;
    assert_eq!(h["status"], "ok");
    let cuts = h["recovery_cuts"].as_array().unwrap();
    assert_eq!(cuts.len(), 1, "{h}");
    assert!(
        cuts[0]
            .as_str()
            .unwrap()
            .contains("00000000000000000000.log"),
        "{h}"
    );
    let o: Value = get_json(&c, s.url("/topics/d/partitions/0/offsets")).await;
    assert_eq!(
        o["end_offset"], 4,
        "the four whole batches before the damage are kept"
    );
}

#[tokio::test]
async fn bad_offsets_in_commits_and_seeks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    create_topic(&c, &s, "o", 1).await;
    c.post(s.url("/consumers/g"))
        .json(&json!({"name": "i"}))
        .send()
        .await
        .unwrap();
    let inst = s.url("/consumers/g/instances/i");
    let r = c
        .post(format!("{inst}/subscription"))
        .json(&json!({"topics": ["o"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let body = json!({"offsets": [{"topic": "o", "partition": 0, "offset": -5}]});
    let (st, code, msg) = error_of(
        c.post(format!("{inst}/offsets"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (400, 40002));
    assert!(msg.contains("-5"), "{msg}");
    let (st, code, _) = error_of(
        c.post(format!("{inst}/positions"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (400, 40002));
    let (st, code, _) = error_of(
        c.post(format!("{inst}/positions"))
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (400, 40001));
}
