//! The CLI: topics, produce from stdin, consume as JSON lines (from the beginning, an
//! offset, a timestamp, a group), config defaults, and one-line errors.

use fleetwatch_testkit::server::run_cli;
use serde_json::Value;

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn topics_produce_consume_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = run_cli(
        d,
        &[
            "topics",
            "create",
            "cars",
            "-p",
            "3",
            "--topic-config",
            "retention.ms=60000",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("created topic cars"));
    let (ok, out, _) = run_cli(d, &["topics", "list"], "");
    assert!(ok);
    assert!(out.lines().any(|l| l == "cars"), "{out}");
    let input: String = (0..30)
        .map(|i| format!("car-{}:reading-{i}\n", i % 5))
        .collect();
    let (ok, _, err) = run_cli(
        d,
        &[
            "produce",
            "-t",
            "cars",
            "--key-separator",
            ":",
            "--batch",
            "7",
        ],
        &input,
    );
    assert!(ok, "{err}");
    assert!(err.contains("produced 30 record(s)"), "{err}");

    let (ok, out, err) = run_cli(
        d,
        &[
            "consume",
            "-t",
            "cars",
            "--from-beginning",
            "--idle-timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok, "{err}");
    let recs = lines(&out);
    assert_eq!(recs.len(), 30);
    for r in &recs {
        let key = r["key"].as_str().unwrap();
        assert_eq!(
            r["partition"].as_i64().unwrap() as i32,
            fleetwatch_core::partitioner::partition_for_key(key.as_bytes(), 3),
            "keyed records follow Kafka's partitioner"
        );
    }
    // per key, values keep their order
    for k in 0..5 {
        let vals: Vec<i64> = recs
            .iter()
            .filter(|r| r["key"] == format!("car-{k}"))
            .map(|r| r["value"].as_str().unwrap()[8..].parse().unwrap())
            .collect();
        let mut sorted = vals.clone();
        sorted.sort();
        assert_eq!(vals, sorted);
        assert_eq!(vals.len(), 6);
    }

    let (ok, out, _) = run_cli(
        d,
        &[
            "consume",
            "-t",
            "cars",
            "--partition",
            "0",
            "--offset",
            "2",
            "--idle-timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok);
    let recs = lines(&out);
    assert!(recs.iter().all(|r| r["partition"] == 0));
    assert_eq!(recs.first().unwrap()["offset"], 2);

    let (ok, out, _) = run_cli(d, &["topics", "describe", "cars"], "");
    assert!(ok);
    let desc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(desc["configs"]["retention.ms"], "60000");
    let total: i64 = desc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 30);
}

#[test]
fn consume_by_timestamp_and_as_a_group_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run_cli(d, &["topics", "create", "t"], "").0);
    assert!(run_cli(d, &["produce", "-t", "t"], "a\nb\n").0);
    std::thread::sleep(std::time::Duration::from_millis(30));
    let cut = fleetwatch_core::now_ms();
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert!(run_cli(d, &["produce", "-t", "t"], "c\nd\n").0);
    let (ok, out, _) = run_cli(
        d,
        &[
            "consume",
            "-t",
            "t",
            "--timestamp",
            &cut.to_string(),
            "--idle-timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok);
    let vals: Vec<String> = lines(&out)
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(vals, vec!["c", "d"]);

    let (ok, out, _) = run_cli(
        d,
        &[
            "consume",
            "-t",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "-n",
            "3",
            "--idle-timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok);
    assert_eq!(lines(&out).len(), 3);
    let (ok, out, _) = run_cli(
        d,
        &[
            "consume",
            "-t",
            "t",
            "--group",
            "g",
            "--idle-timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok);
    let vals: Vec<String> = lines(&out)
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(vals, vec!["d"], "the group resumes after its commit");
}

#[test]
fn bad_input_gets_a_one_line_reason_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = run_cli(d, &["produce", "-t", "nope"], "x\n");
    assert!(!ok);
    assert!(err.contains("unknown topic \"nope\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    assert!(run_cli(d, &["topics", "create", "t", "-p", "2"], "").0);
    let (ok, _, err) = run_cli(
        d,
        &["produce", "-t", "t", "--key-separator", "="],
        "k=v\nno separator here\n",
    );
    assert!(!ok);
    assert!(err.contains("stdin line 2"), "{err}");
    let (ok, _, err) = run_cli(d, &["produce", "-t", "t", "--partition", "5"], "x\n");
    assert!(!ok);
    assert!(err.contains("--partition 5"), "{err}");
    let (ok, _, err) = run_cli(d, &["topics", "create", "bad/name"], "");
    assert!(!ok);
    assert!(err.contains("invalid topic name"), "{err}");
    let (ok, _, err) = run_cli(
        d,
        &["topics", "create", "u", "--topic-config", "retention.ms"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("NAME=VALUE"), "{err}");
    let (ok, _, err) = run_cli(
        d,
        &["consume", "-t", "t", "--offset", "99", "--partition", "0"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("out of range"), "{err}");
    let (ok, _, err) = run_cli(d, &["consume", "--no-such-flag"], "");
    assert!(!ok);
    assert!(err.contains("--no-such-flag"), "{err}");
    let bad_cfg = dir.path().join("bad.toml");
    std::fs::write(&bad_cfg, "[http]\nlisten = 5\n").unwrap();
    let (ok, _, err) = run_cli(
        d,
        &["--config", bad_cfg.to_str().unwrap(), "topics", "list"],
        "",
    );
    assert!(!ok);
    assert!(err.contains("bad.toml") && err.contains("listen"), "{err}");
}

#[test]
fn config_defaults_prints_every_key_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run_cli(dir.path(), &["config", "defaults"], "");
    assert!(ok);
    for key in [
        "[log]",
        "backend = \"embedded\"",
        "[embedded]",
        "fsync = \"interval\"",
        "fsync_interval_ms = 50",
        "[kafka]",
        "bootstrap_servers",
        "[http]",
        "listen = \"0.0.0.0:8082\"",
    ] {
        assert!(out.contains(key), "missing {key} in\n{out}");
    }
    let path = dir.path().join("fleetwatch.toml");
    std::fs::write(&path, &out).unwrap();
    let (ok, _, err) = run_cli(
        dir.path(),
        &["--config", path.to_str().unwrap(), "topics", "list"],
        "",
    );
    assert!(ok, "{err}");
}
