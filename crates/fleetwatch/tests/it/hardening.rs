//! The hostile tester's findings and the platform shape, black-box: supervision, `--set`,
//! internal topics, JSON stored as sent, request bounds and memory, consumer instances that
//! do not wait behind a fetch, connection limits, every error in the API's shape, damage
//! reported as `degraded`.

use fleetwatch_testkit::server::{Server, bin, get_json};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

use crate::api::{JSON_V2, consumer, create_topic, error_of};

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_component_failing_at_run_time_stops_serve_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--set",
            "http.listen=127.0.0.1:0",
            "--set",
            "schema_registry.listen=127.0.0.1:0",
            "--set",
            "mqtt.listen=127.0.0.1:0",
            "--set",
            "ksql.listen=127.0.0.1:0",
            "serve",
        ])
        .env("FLEETWATCH_TEST_FAIL_COMPONENT", "doomed")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "serve exited 0 after a component failed: {stderr}"
    );
    assert!(
        stderr.contains("component doomed failed: failing on purpose"),
        "{stderr}"
    );
    // The rest stopped and the log was closed cleanly.
    assert!(dir.path().join("data/clean-shutdown").exists(), "{stderr}");
}

#[test]
fn set_overrides_config_and_unknown_keys_name_their_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--set", "http.lisen=127.0.0.1:0", "serve"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("unknown config key \"lisen\"") && stderr.contains("listen"),
        "{stderr}"
    );
    let out = Command::new(bin())
        .args(["--log-level", "info,fleetwatch=loud", "config", "defaults"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--log-level"),
        "{out:?}"
    );
}

#[tokio::test]
async fn internal_topics_cannot_be_deleted_written_or_created_by_clients() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    for (req, what) in [
        (
            c.delete(s.url("/v3/clusters/fleetwatch/topics/_schemas")),
            "delete _schemas",
        ),
        (
            c.delete(s.url("/v3/clusters/fleetwatch/topics/__consumer_offsets")),
            "delete offsets",
        ),
        (
            c.post(s.url("/topics/_schemas"))
                .header("Content-Type", JSON_V2)
                .body(r#"{"records":[{"value":1}]}"#),
            "produce _schemas",
        ),
        (
            c.post(s.url("/topics/__consumer_offsets/partitions/0"))
                .header("Content-Type", JSON_V2)
                .body(r#"{"records":[{"value":1}]}"#),
            "produce offsets",
        ),
        (
            c.post(s.url("/v3/clusters/fleetwatch/topics"))
                .json(&json!({"topic_name": "_fw_models"})),
            "create _fw_",
        ),
    ] {
        let (st, code, msg) = error_of(req.send().await.unwrap()).await;
        assert_eq!((st, code), (403, 40301), "{what}: {msg}");
        assert!(msg.contains("internal"), "{what}: {msg}");
    }
    // The longest topic name Kafka allows fits the file system, temporary files included.
    let long = "t".repeat(249);
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": long, "partitions_count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .post(s.url(&format!("/topics/{long}")))
        .header("Content-Type", JSON_V2)
        .body(r#"{"records":[{"value":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .delete(s.url(&format!("/v3/clusters/fleetwatch/topics/{long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, code, _) = error_of(
        c.post(s.url("/v3/clusters/fleetwatch/topics"))
            .json(&json!({"topic_name": "t".repeat(250)}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (422, 42201));
    // _schemas is still there and the registry still works after the attempts.
    let topics: Vec<String> = get_json(&c, s.url("/topics")).await;
    assert!(topics.contains(&"_schemas".to_string()), "{topics:?}");
}

#[tokio::test]
async fn embedded_json_is_stored_and_served_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    create_topic(&c, &s, "j", 1).await;
    let value = r#"{"z":18446744073709551616,"a":1,"a":2,"f":1.000000000000000000001,"s":"é"}"#;
    let r = c
        .post(s.url("/topics/j"))
        .header("Content-Type", JSON_V2)
        .body(format!(
            r#"{{"records":[{{"key":[3, 2,1],"value":{value}}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let base = consumer(
        &c,
        &s,
        "jg",
        json!({"format": "json", "auto.offset.reset": "earliest"}),
    )
    .await;
    let r = c
        .post(format!("{base}/subscription"))
        .json(&json!({"topics": ["j"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut text = String::new();
    for _ in 0..20 {
        text = c
            .get(format!("{base}/records?timeout=500"))
            .header("Accept", JSON_V2)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.len() > 2 {
            break;
        }
    }
    assert!(text.contains(&format!(r#""value":{value}"#)), "{text}");
    assert!(text.contains(r#""key":[3, 2,1]"#), "{text}");

    // Commit metadata is kept and returned; many entries for one partition: the last wins.
    let r = c
        .post(format!("{base}/offsets"))
        .json(&json!({"offsets": [
            {"topic": "j", "partition": 0, "offset": 0, "metadata": "first"},
            {"topic": "j", "partition": 0, "offset": 1, "metadata": "ckpt-7"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let o: Value = get_json(&c, format!("{base}/offsets")).await;
    assert_eq!(
        o["offsets"],
        json!([{"topic": "j", "partition": 0, "offset": 1, "metadata": "ckpt-7"}])
    );

    // A seek past the end is 41601, not a silent move to the end.
    let (st, code, msg) = error_of(
        c.post(format!("{base}/positions"))
            .json(&json!({"offsets": [{"topic": "j", "partition": 0, "offset": 99}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (416, 41601), "{msg}");
}

#[tokio::test]
async fn produce_requests_are_bounded_in_records_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let pid = s.child.id();
    let c = reqwest::Client::new();
    create_topic(&c, &s, "m", 4).await;
    // Warm up, so that one-time allocations are not counted.
    let small = format!(
        r#"{{"records":[{}]}}"#,
        vec![r#"{"value":{"n":1}}"#; 1000].join(",")
    );
    for _ in 0..3 {
        let r = c
            .post(s.url("/topics/m"))
            .header("Content-Type", JSON_V2)
            .body(small.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // 16 MiB of 5.6 M empty records: refused while parsing, without the memory they would take.
    let before = rss_kib(pid, "VmHWM:");
    let mut empty = String::with_capacity(16 << 20);
    empty.push_str(r#"{"records":["#);
    while empty.len() < (16 << 20) - 16 {
        empty.push_str("{},");
    }
    empty.push_str("{}]}");
    let body_kib = empty.len() as u64 / 1024;
    let (st, code, msg) = error_of(
        c.post(s.url("/topics/m"))
            .header("Content-Type", JSON_V2)
            .body(empty)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (413, 41302), "{msg}");
    assert!(
        msg.contains("http.max_records_per_request (100000)"),
        "{msg}"
    );
    let after = rss_kib(pid, "VmHWM:");
    // The stated bound (README): a request's peak stays under 2x its body + 800 B per record;
    // a refused one is cut off at http.max_records_per_request records.
    assert!(
        after.saturating_sub(before) <= 2 * body_kib + 100_000 * 800 / 1024,
        "peak grew {} KiB for a {body_kib} KiB body",
        after - before
    );
    // 100,000 records of ~150 bytes (the most one request may carry) are accepted, within
    // the same bound.
    let rec = format!(
        r#"{{"key":"car-{{}}","value":{{"speed":88.5,"rpm":2500,"vin":"{}"}}}}"#,
        "W".repeat(80)
    );
    let mut big = String::from(r#"{"records":["#);
    for i in 0..100_000 {
        if i > 0 {
            big.push(',');
        }
        big.push_str(&rec.replace("{}", &i.to_string()));
    }
    big.push_str("]}");
    let body_kib = big.len() as u64 / 1024;
    let before = rss_kib(pid, "VmHWM:");
    let r = c
        .post(s.url("/topics/m"))
        .header("Content-Type", JSON_V2)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["offsets"].as_array().unwrap().len(), 100_000);
    let after = rss_kib(pid, "VmHWM:");
    eprintln!(
        "produce of {body_kib} KiB: peak RSS grew {} KiB",
        after.saturating_sub(before)
    );
    assert!(
        after.saturating_sub(before) <= 2 * body_kib + 100_000 * 800 / 1024,
        "peak grew {} KiB for a {body_kib} KiB body",
        after - before
    );
}

#[tokio::test]
async fn a_long_fetch_holds_up_neither_delete_nor_subscription_reads_and_timeouts_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_global(
        &dir.path().join("data"),
        &["--set", "http.consumer_request_timeout_ms=3000"],
    );
    let c = reqwest::Client::new();
    create_topic(&c, &s, "w", 1).await;
    let base = consumer(&c, &s, "wg", json!({"format": "binary"})).await;
    let r = c
        .post(format!("{base}/subscription"))
        .json(&json!({"topics": ["w"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // A timeout far past the cap answers (empty) after the cap.
    let t0 = Instant::now();
    let recs: Vec<Value> =
        get_json(&c, format!("{base}/records?timeout=18446744073709551615")).await;
    assert!(recs.is_empty());
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(30),
        "{took:?}"
    );
    // One that does not parse is a JSON 400.
    let (st, code, _) = error_of(
        c.get(format!("{base}/records?timeout=99999999999999999999999"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, code), (400, 40001));
    // While a fetch waits, reading the subscription, committing and deleting do not wait for it.
    let fetch = {
        let (c, url) = (c.clone(), format!("{base}/records?timeout=3000"));
        tokio::spawn(async move {
            let t0 = Instant::now();
            let st = c.get(url).send().await.unwrap().status().as_u16();
            (st, t0.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    let sub: Value = get_json(&c, format!("{base}/subscription")).await;
    assert_eq!(sub["topics"], json!(["w"]));
    let r = c
        .post(format!("{base}/offsets"))
        .json(&json!({"offsets": [{"topic": "w", "partition": 0, "offset": 0}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c.delete(&base).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "waited {:?} behind a fetch",
        t0.elapsed()
    );
    // The fetch gave way (answering what it had) instead of holding the others for 3 s.
    let (st, waited) = fetch.await.unwrap();
    assert!(st == 200 || st == 404, "{st}");
    assert!(
        waited < Duration::from_millis(2500),
        "the fetch held on for {waited:?}"
    );
}

#[tokio::test]
async fn connections_are_limited_and_silent_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_global(
        &dir.path().join("data"),
        &[
            "--set",
            "connections.default.header_timeout_ms=300",
            "--set",
            "connections.http.max_connections=3",
            "--set",
            "connections.http.header_timeout_ms=300",
        ],
    );
    let addr = s.base.trim_start_matches("http://").to_string();
    let read_closed = |mut t: tokio::net::TcpStream| async move {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), t.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };
    // A silent connection is closed after the header timeout.
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(read_closed(silent).await, "a silent connection stayed open");
    // Over the cap: closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(
        read_closed(extra).await,
        "a connection over the cap was served"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = reqwest::Client::new();
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"fleetwatch_connections_refused_total{reason="limit",server="http"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"reason="header_timeout",server="http"}"#),
        "{text}"
    );
    // The whole registry follows the naming rules.
    assert_eq!(fleetwatch_metrics::lint(&text), Vec::<String>::new());
}

#[tokio::test]
async fn every_error_of_every_api_has_its_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    for (req, status) in [
        (c.get(s.url("/topics/t/partitions/abc")), 400),
        (c.put(s.url("/topics")), 405),
        (c.get(s.url("/no/such/path")), 404),
        (
            c.get(s.url("/topics"))
                .header("x-big", "v".repeat(70 * 1024)),
            431,
        ),
        (c.get(format!("{}/schemas/ids/abc", s.registry)), 0),
        (c.put(format!("{}/schemas/ids/1", s.registry)), 405),
    ] {
        let r = req.send().await.unwrap();
        let got = r.status().as_u16();
        if status != 0 {
            assert_eq!(got, status);
        }
        assert!(got >= 400, "{got}");
        let (_, code, msg) = error_of(r).await;
        assert!(code >= 400, "{code} {msg}");
        assert!(!msg.is_empty());
    }
}

#[tokio::test]
async fn damage_in_an_old_segment_is_kept_aside_and_reported_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": "d", "partitions_count": 1, "configs": [{"name": "segment.bytes", "value": "4096"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    for i in 0..60 {
        let r = c
            .post(s.url("/topics/d"))
            .header("Content-Type", JSON_V2)
            .body(format!(
                r#"{{"records":[{{"value":{{"i":{i},"pad":"{}"}}}}]}}"#,
                "x".repeat(200)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(s.stop().success());
    let mut segs: Vec<_> = std::fs::read_dir(data.join("topics/d/0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{segs:?}");
    // Flip one byte in the middle of the second segment, then start as after a crash.
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&segs[1], bytes).unwrap();
    std::fs::remove_file(data.join("clean-shutdown")).unwrap();
    let s = Server::start(&data, &[]);
    let h: Value = get_json(&c, s.url("/health")).await;
    assert_eq!(h["status"], "degraded", "{h}");
    let reason = h["degraded"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(segs[1].file_name().unwrap().to_str().unwrap()),
        "{reason}"
    );
    let text = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = text;
    // Every later segment is still there, and the last record is still served.
    let o: Value = get_json(&c, s.url("/topics/d/partitions/0/offsets")).await;
    assert_eq!(o["end_offset"], 60, "{o}");
}

#[tokio::test]
async fn the_cli_works_beside_a_running_server() {
    use fleetwatch_testkit::server::run_cli;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    // The server owns the data directory; the CLI goes through its HTTP API.
    let (ok, out, err) = run_cli(&data, &["topics", "create", "cars", "-p", "3"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("created topic cars with 3 partition(s)"),
        "{out}"
    );
    let lines: String = (0..30)
        .map(|i| format!("car-{i}\t{{\"n\":{i}}}\n"))
        .collect();
    let (ok, _, err) = run_cli(
        &data,
        &[
            "produce",
            "-t",
            "cars",
            "--key-separator",
            "\t",
            "--batch",
            "7",
        ],
        &lines,
    );
    assert!(ok, "{err}");
    assert!(err.contains("produced 30 record(s) to cars"), "{err}");
    let (ok, out, err) = run_cli(
        &data,
        &["consume", "-t", "cars", "--from-beginning", "-n", "30"],
        "",
    );
    assert!(ok, "{err}");
    let got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 30, "{out}");
    // Keys landed where Kafka's partitioner puts them, as without a server.
    for r in &got {
        let key = r["key"].as_str().unwrap();
        let want = fleetwatch_core::partitioner::partition_for_key(key.as_bytes(), 3);
        assert_eq!(r["partition"], want, "{r}");
    }
    let (ok, out, err) = run_cli(&data, &["topics", "describe", "cars"], "");
    assert!(ok, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let total: i64 = d["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 30, "{d}");
    // Avro through the server's Schema Registry, both ways.
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/cardata-v1.avsc");
    let (ok, _, err) = run_cli(&data, &["topics", "create", "avro"], "");
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(schema).unwrap();
    let fields: Value = serde_json::from_str(&text).unwrap();
    let mut doc = serde_json::Map::new();
    for f in fields["fields"].as_array().unwrap() {
        let v = match f["type"].as_str() {
            Some("string") => json!("c1"),
            Some("int") | Some("long") => json!(7),
            _ => json!(1.5),
        };
        doc.insert(f["name"].as_str().unwrap().to_string(), v);
    }
    let line = format!("{}\n", Value::Object(doc.clone()));
    let (ok, _, err) = run_cli(
        &data,
        &[
            "produce",
            "-t",
            "avro",
            "--value-format",
            "avro",
            "--schema",
            schema,
        ],
        &line,
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run_cli(
        &data,
        &[
            "consume",
            "-t",
            "avro",
            "--from-beginning",
            "-n",
            "1",
            "--value-format",
            "avro",
        ],
        "",
    );
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert!(r["schema_id"].as_i64().is_some(), "{r}");
    for (k, v) in &doc {
        assert_eq!(&r["value"][k], v, "{r}");
    }
    let (ok, _, err) = run_cli(&data, &["topics", "delete", "_schemas"], "");
    assert!(!ok && err.contains("internal"), "{err}");
    // Once the server stops, the CLI opens the log itself again.
    assert!(s.stop().success());
    assert!(!data.join("server.json").exists());
    let (ok, out, err) = run_cli(&data, &["topics", "list"], "");
    assert!(ok, "{err}");
    assert!(out.contains("cars"), "{out}");
}

#[tokio::test]
async fn reading_the_subscription_or_offsets_keeps_an_instance_alive() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_global(
        &dir.path().join("data"),
        &["--set", "http.consumer_instance_timeout_ms=1000"],
    );
    let c = reqwest::Client::new();
    let base = consumer(&c, &s, "kg", json!({})).await;
    // 3 s of reads only (twice the timeout): the instance stays.
    for i in 0..10 {
        let path = if i % 2 == 0 {
            "subscription"
        } else {
            "offsets"
        };
        let r = c.get(format!("{base}/{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} after {i} reads");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Left alone, it expires.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let (st, code, _) = error_of(c.get(format!("{base}/subscription")).send().await.unwrap()).await;
    assert_eq!((st, code), (404, 40403));
}
