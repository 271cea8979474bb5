//! `fleetwatch model …` end to end on the embedded log: simulated fleet → train (progress,
//! registration) → list / show / promote / rollback / alias / evaluate / export / delete;
//! bad input named; a registration SIGKILLed mid-upload leaves a consistent registry whose
//! cache is rebuilt from the log.

use fleetwatch_testkit::server::bin;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FEATURES: &str = "speed_kmh,rpm,engine_temp_c,coolant_temp_c,oil_pressure_kpa,battery_v,tyre_fl_kpa,tyre_fr_kpa,tyre_rl_kpa,tyre_rr_kpa,energy_level_pct";

fn fw(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .args(["--log-level", "warn"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(data: &Path, args: &[&str]) -> String {
    let (good, out, err) = fw(data, args);
    assert!(good, "fleetwatch {args:?} failed: {err}");
    out
}

fn json(data: &Path, args: &[&str]) -> Value {
    let out = ok(data, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
}

fn fail(data: &Path, args: &[&str]) -> String {
    let (good, _, err) = fw(data, args);
    assert!(!good, "fleetwatch {args:?} should have failed");
    err
}

fn fleet(data: &Path) {
    ok(
        data,
        &[
            "sim",
            "--target",
            "log",
            "--cars",
            "60",
            "--duration",
            "20m",
            "--anomalies",
            "spike",
            "--sensor-anomaly-rate",
            "0.02",
            "--fraud-rate",
            "0",
            // A fixed start: the same data on every run (the log target starts now otherwise,
            // and the hour of day shapes the fleet).
            "--start",
            "1767225600000",
        ],
    );
}

fn train(data: &Path, name: &str, opts: &[&str]) -> (Value, String) {
    let mut args = vec![
        "model",
        "train",
        name,
        "-t",
        "telemetry.raw",
        "-f",
        FEATURES,
        "-o",
        "data_split_col=ts",
        "-o",
        "labels_topic=labels",
    ];
    for o in opts {
        args.extend(["-o", o]);
    }
    let (good, out, err) = fw(data, &args);
    assert!(good, "train failed: {err}");
    (serde_json::from_str(&out).unwrap(), err)
}

#[test]
fn train_promote_rollback_alias_evaluate_export_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = &dir.path().join("data");
    fleet(d);

    let (s, err) = train(d, "engine", &["model_type=kmeans"]);
    assert!(err.contains("range frozen: telemetry.raw@0:0-"), "{err}");
    assert!(
        err.contains("registered engine@1; production is engine@1"),
        "{err}"
    );
    assert_eq!(
        (s["version"].as_i64(), s["production"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(
        s["metrics_on_test"]["roc_auc"].as_f64().unwrap() > 0.9,
        "{s}"
    );
    assert_eq!(s["threshold"]["split"], "validation");

    let (s, err) = train(
        d,
        "engine",
        &[
            "model_type=autoencoder",
            "max_iterations=3",
            "hidden_units=[8,4,8]",
        ],
    );
    assert_eq!(s["version"].as_i64(), Some(2));
    for e in 1..=3 {
        assert!(
            err.contains(&format!("epoch {e:>3}: loss ")),
            "epoch {e} not shown: {err}"
        );
    }
    assert!(err.contains("val_loss") && err.contains("rows/s"), "{err}");
    assert_eq!(
        s["production"].as_i64(),
        Some(1),
        "a new version does not take production by itself"
    );

    let list = ok(d, &["model", "list"]);
    assert!(
        list.contains("engine") && list.contains("production=1"),
        "{list}"
    );

    assert!(ok(d, &["model", "promote", "engine@2"]).contains("engine@production -> 2"));
    assert!(ok(d, &["model", "rollback", "engine"]).contains("-> 1"));
    ok(
        d,
        &[
            "model",
            "alias",
            "engine",
            "canary",
            "2",
            "--threshold",
            "0.5",
        ],
    );
    let show = json(d, &["model", "show", "engine@canary"]);
    assert_eq!(
        (show["version"].as_i64(), show["threshold"].as_f64()),
        (Some(2), Some(0.5))
    );
    assert_eq!(show["cache"]["verified"], true);
    assert_eq!(show["manifest"]["algorithm"], "autoencoder");
    let model = json(d, &["model", "show", "engine"]);
    assert_eq!(model["production_history"], serde_json::json!([1]));

    // Evaluation on the version's own test split reproduces the numbers training reported.
    let ev = json(d, &["model", "evaluate", "engine@1"]);
    let at_train = &json(d, &["model", "show", "engine@1"])["manifest"]["metrics"];
    assert_eq!(ev["roc_auc"], at_train["roc_auc"]);
    assert_eq!(ev["rows"], at_train["rows"]);
    // Through the alias: its threshold override is used.
    assert_eq!(
        json(d, &["model", "evaluate", "engine@canary"])["threshold"].as_f64(),
        Some(0.5)
    );

    let onnx = dir.path().join("engine.onnx");
    let out = ok(
        d,
        &[
            "model",
            "export",
            "engine@2",
            "--format",
            "onnx",
            "-o",
            onnx.to_str().unwrap(),
        ],
    );
    assert!(out.contains("ONNX opset 17"), "{out}");
    assert!(std::fs::metadata(&onnx).unwrap().len() > 500);
    assert!(
        fail(
            d,
            &[
                "model",
                "export",
                "engine@1",
                "--format",
                "onnx",
                "-o",
                onnx.to_str().unwrap()
            ]
        )
        .contains("autoencoders")
    );

    // Bad input, named.
    assert!(
        fail(
            d,
            &[
                "model",
                "train",
                "Engine",
                "-t",
                "telemetry.raw",
                "-f",
                "rpm",
                "-o",
                "model_type=kmeans"
            ]
        )
        .contains("[a-z0-9_.-]{1,128}")
    );
    let e = fail(
        d,
        &[
            "model",
            "train",
            "x",
            "-t",
            "telemetry.raw",
            "-f",
            "rpm",
            "-o",
            "model_type=svm",
        ],
    );
    assert!(e.contains("autoencoder") && e.contains("kmeans"), "{e}");
    let e = fail(
        d,
        &[
            "model",
            "train",
            "x",
            "-t",
            "telemetry.raw",
            "-f",
            "rpm",
            "-o",
            "model_type=kmeans",
            "-o",
            "epochs=3",
        ],
    );
    assert!(
        e.contains("\"epochs\"") && e.contains("num_clusters"),
        "{e}"
    );
    let e = fail(
        d,
        &[
            "model",
            "train",
            "x",
            "-t",
            "telemetry.raw",
            "-f",
            "vin",
            "-o",
            "model_type=kmeans",
        ],
    );
    assert!(e.contains("vin") && e.contains("offset"), "{e}");
    assert!(fail(d, &["model", "alias", "engine", "7up", "2"]).contains("no leading digit"));
    assert!(fail(d, &["model", "promote", "engine@9"]).contains("no version 9"));

    // Traffic split and the archived flag.
    let e = fail(
        d,
        &[
            "model",
            "traffic",
            "engine",
            "production=9000",
            "canary=2000",
        ],
    );
    assert!(e.contains("11000"), "{e}");
    let out = ok(
        d,
        &[
            "model",
            "traffic",
            "engine",
            "production=9000",
            "canary=1000",
            "--salt",
            "ab-11",
        ],
    );
    assert!(
        out.contains("canary=1000 (10.00 % of routing keys)"),
        "{out}"
    );
    let t = json(d, &["model", "show", "engine"])["traffic"].clone();
    assert_eq!(t["arms"][1]["target"], "canary");
    assert_eq!(t["arms"][1]["weight_bp"], 1000);
    assert_eq!(t["salt"], "ab-11");
    assert!(fail(d, &["model", "archive", "engine@2"]).contains("engine@canary"));
    ok(d, &["model", "traffic", "engine", "--clear"]);
    let t = json(d, &["model", "show", "engine"])["traffic"].clone();
    assert!(t["arms"].as_array().unwrap().is_empty(), "{t}");

    assert!(fail(d, &["model", "delete", "engine@1"]).contains("production"));
    ok(d, &["model", "delete", "engine@2"]);
    let model = json(d, &["model", "show", "engine"]);
    assert!(
        model["aliases"].get("canary").is_none(),
        "the deleted version's aliases go with it"
    );
    ok(d, &["model", "delete", "engine"]);
    assert!(fail(d, &["model", "show", "engine"]).contains("not registered"));
}

#[test]
fn a_sigkilled_registration_leaves_a_consistent_registry() {
    let dir = tempfile::tempdir().unwrap();
    let d = &dir.path().join("data");
    fleet(d);
    // A forest of ~25 MiB: ~50 chunks, an upload long enough to be killed in the middle.
    let (s, _) = train(
        d,
        "forest",
        &["model_type=isolation_forest", "num_trees=50"],
    );
    assert_eq!(s["version"].as_i64(), Some(1));
    for delay_ms in [0u64, 40, 150] {
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(d)
            .args([
                "--log-level",
                "warn",
                "model",
                "train",
                "forest",
                "-t",
                "telemetry.raw",
                "-f",
                FEATURES,
            ])
            .args([
                "-o",
                "model_type=isolation_forest",
                "-o",
                "num_trees=1500",
                "-o",
                "max_samples=1024",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // The upload starts once the model is fitted.
        for l in lines.by_ref() {
            if l.unwrap().starts_with("fitted on") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let m = json(d, &["model", "list", "--json"]);
        let m = m
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "forest")
            .unwrap()
            .clone();
        assert_eq!(
            m["aliases"]["production"]["version"].as_i64(),
            Some(1),
            "production stays on v1"
        );
        for (v, info) in m["versions"].as_object().unwrap() {
            // A version either committed completely (and verifies) or does not exist.
            assert_eq!(info["status"]["state"], "ready", "forest@{v}: {info}");
            let show = json(d, &["model", "show", &format!("forest@{v}")]);
            assert_eq!(show["cache"]["verified"], true);
        }
    }
    let m = json(d, &["model", "show", "forest"]);
    assert!(
        m["versions"].as_object().unwrap().len() < 4,
        "no upload was cut: the kills came too late to test anything"
    );
    // The cache is derived state: wiped, it comes back from the log.
    std::fs::remove_dir_all(d.join("models")).unwrap();
    let show = json(d, &["model", "show", "forest@1"]);
    assert_eq!(show["cache"]["verified"], true);
    assert!(d.join("models/forest/1/manifest.json").is_file());
    assert!(d.join("models/forest/1/weights.safetensors").is_file());
}
