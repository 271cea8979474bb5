//! `fleetwatch sim` end to end: reproducible data sets, the log target, and the MQTT and
//! HTTP targets into a running server through its default mapping.

use crate::api::read_topic;
use fleetwatch_testkit::server::{Server, bin};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

fn sim(data: &Path, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(["--log-level", "warn", "sim"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), summary, stderr)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn out_files_are_reproducible_by_seed_and_match_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = |n: &str| d.join(n).to_str().unwrap().to_string();
    let common = ["--cars", "30", "--duration", "20m", "--fraud-rate", "0.2"];
    let (ok, s1, e) = sim(
        &d.join("data"),
        &[&common[..], &["--out", &file("a"), "--seed", "9"]].concat(),
    );
    assert!(ok, "{e}");
    let (ok, _, e) = sim(
        &d.join("data"),
        &[&common[..], &["--out", &file("b"), "--seed", "9"]].concat(),
    );
    assert!(ok, "{e}");
    let (ok, _, e) = sim(
        &d.join("data"),
        &[&common[..], &["--out", &file("c"), "--seed", "10"]].concat(),
    );
    assert!(ok, "{e}");
    let (a, b, c) = (
        std::fs::read(d.join("a")).unwrap(),
        std::fs::read(d.join("b")).unwrap(),
        std::fs::read(d.join("c")).unwrap(),
    );
    assert_eq!(a, b, "same seed, same bytes");
    assert_ne!(a, c, "another seed, other data");
    let lines: Vec<Value> = String::from_utf8(a)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, s1["total_events"].as_u64().unwrap());
    for stream in ["telemetry", "payments", "labels"] {
        let n = lines.iter().filter(|l| l["stream"] == stream).count() as u64;
        assert_eq!(n, s1["events"][stream].as_u64().unwrap(), "{stream}");
    }
    // 30 cars × 20 min at 1 s.
    assert_eq!(s1["events"]["telemetry"], 30 * 1200);
    assert_eq!(
        s1["sim_start_ms"], 1_767_225_600_000i64,
        "--out starts at a fixed time"
    );
}

#[test]
fn the_log_target_appends_every_stream_keyed_by_vin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, s, e) = sim(
        &data,
        &[
            "--target",
            "log",
            "--cars",
            "20",
            "--duration",
            "30m",
            "--sensor-anomaly-rate",
            "0.05",
        ],
    );
    assert!(ok, "{e}");
    let telemetry = block_on(read_topic(&data, "telemetry.raw"));
    let payments = block_on(read_topic(&data, "payments.raw"));
    let labels = block_on(read_topic(&data, "labels"));
    assert_eq!(
        telemetry.len() as u64,
        s["events"]["telemetry"].as_u64().unwrap()
    );
    assert_eq!(
        payments.len() as u64,
        s["events"]["payments"].as_u64().unwrap()
    );
    assert_eq!(labels.len() as u64, s["events"]["labels"].as_u64().unwrap());
    assert!(!labels.is_empty(), "{s}");
    let ids: HashSet<String> = telemetry
        .iter()
        .chain(&payments)
        .map(|r| {
            let v: Value = serde_json::from_slice(r.record.value.as_ref().unwrap()).unwrap();
            let key = std::str::from_utf8(r.record.key.as_ref().unwrap()).unwrap();
            assert_eq!(v["vin"], key);
            assert_eq!(
                v["ts"].as_i64().unwrap(),
                r.record.timestamp,
                "record time = event time"
            );
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    for l in &labels {
        let v: Value = serde_json::from_slice(l.record.value.as_ref().unwrap()).unwrap();
        assert!(
            ids.contains(v["event_id"].as_str().unwrap()),
            "label of a missing event: {v}"
        );
    }
}

#[test]
fn mqtt_and_http_targets_land_in_the_default_mapped_topics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let mqtt = format!("mqtt://{}", s.addr("mqtt"));
    let common = ["--cars", "25", "--duration", "5m", "--rate", "0"];
    let (ok, m, e) = sim(
        &dir.path().join("x"),
        &[&common[..], &["--target", &mqtt, "--seed", "1"]].concat(),
    );
    assert!(ok, "{e}");
    let (ok, h, e) = sim(
        &dir.path().join("x"),
        &[&common[..], &["--target", &s.url(""), "--seed", "2"]].concat(),
    );
    assert!(ok, "{e}");
    s.stop();
    let telemetry = block_on(read_topic(&data, "telemetry.raw"));
    let want =
        m["events"]["telemetry"].as_u64().unwrap() + h["events"]["telemetry"].as_u64().unwrap();
    assert_eq!(telemetry.len() as u64, want);
    let payments = block_on(read_topic(&data, "payments.raw"));
    let want =
        m["events"]["payments"].as_u64().unwrap() + h["events"]["payments"].as_u64().unwrap();
    assert_eq!(payments.len() as u64, want);
    let sources: HashSet<bool> = telemetry
        .iter()
        .map(|r| r.record.headers.iter().any(|h| h.key == "ingest.source"))
        .collect();
    assert_eq!(sources.len(), 2, "some came over MQTT, some over HTTP");
}

#[test]
fn bad_flags_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("o").to_str().unwrap().to_string();
    for (args, want) in [
        (vec!["--out", out.as_str()], "--out needs a bound"),
        (
            vec!["--target", "ftp://x", "--events", "1"],
            "--target \"ftp://x\"",
        ),
        (
            vec!["--out", out.as_str(), "--duration", "soon"],
            "--duration \"soon\"",
        ),
        (
            vec![
                "--out",
                out.as_str(),
                "--events",
                "5",
                "--anomalies",
                "gremlins",
            ],
            "--anomalies \"gremlins\"",
        ),
        (
            vec!["--out", out.as_str(), "--events", "5", "--schema", "nope"],
            "--schema \"nope\"",
        ),
        (
            vec!["--out", out.as_str(), "--events", "5", "--cars", "0"],
            "cars",
        ),
        (
            vec!["--target", "mqtt://127.0.0.1:1", "--events", "5"],
            "127.0.0.1:1",
        ),
    ] {
        let (ok, _, err) = sim(&data, &args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
