//! Fleet data in without the proxy: the MQTT bridge from a real Mosquitto (the machine's on
//! 127.0.0.1:1883, and a private one with TLS and logins), and HTTP ingest with Python
//! `requests`.

use crate::api::{metric, py, read_topic};
use fleetwatch_testkit::mosquitto::{mosquitto, private_with};
use fleetwatch_testkit::server::{Server, run_cli};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn start(dir: &Path, config: &str) -> Server {
    let file = dir.join("fleetwatch.toml");
    std::fs::write(&file, config).unwrap();
    Server::start_with_global(&dir.join("data"), &["--config", file.to_str().unwrap()])
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Waits (up to `secs`) for `cond`; panics with `what` otherwise.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `seq` of every record of `topic`, read through the running server (the CLI finds it).
fn seqs_live(data: &Path, topic: &str) -> Vec<u64> {
    let (ok, out, err) = run_cli(data, &["consume", "-t", topic, "--from-beginning"], "");
    assert!(ok, "consume failed: {err}");
    out.lines()
        .filter_map(|l| {
            let r: Value = serde_json::from_str(l).ok()?;
            let v: Value = serde_json::from_str(r["value"].as_str()?).ok()?;
            v["seq"].as_u64()
        })
        .collect()
}

/// Publishes `n` QoS 1 messages `{"seq": i}` to `<prefix>fleet/V<i % 5>/telemetry` at about
/// `rate`/s, each acknowledged by the broker; prints `{"published": n}`.
const PUBLISHER: &str = r#"
import json, sys, time
import paho.mqtt.client as mqtt
host, port, prefix, n, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub-" + prefix.replace("/", "-"), protocol=mqtt.MQTTv311)
c.connect(host, port, keepalive=30)
c.loop_start()
t0 = time.time()
pending = []
for i in range(n):
    pending.append(c.publish(f"{prefix}fleet/V{i % 5}/telemetry", json.dumps({"seq": i}), qos=1))
    if len(pending) >= 10:
        for p in pending: p.wait_for_publish(30)
        pending = []
    delay = t0 + (i + 1) / rate - time.time()
    if delay > 0: time.sleep(delay)
for p in pending: p.wait_for_publish(30)
c.loop_stop(); c.disconnect()
print(json.dumps({"published": n}))
"#;

/// Removes a persistent session from the broker (connect clean, disconnect).
const FORGET_SESSION: &str = r#"
import json, sys
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=sys.argv[3], protocol=mqtt.MQTTv311, clean_session=True)
c.connect(sys.argv[1], int(sys.argv[2]), keepalive=30)
c.disconnect()
print(json.dumps({"ok": True}))
"#;

#[test]
fn bridge_from_mosquitto_keeps_every_message_across_a_fleetwatch_kill_in_mid_stream() {
    let broker = mosquitto();
    let dir = tempfile::tempdir().unwrap();
    let prefix = &broker.prefix;
    let client_id = format!("fw-bridge-{}", prefix.replace('/', "-"));
    let config = format!(
        r#"
[mqtt]
unmapped = "reject"
[[mqtt.publish_map]]
pattern = "{prefix}fleet/{{vin}}/telemetry"
topic = "bridged"
key = "{{vin}}"
[[mqtt.bridge]]
name = "edge"
url = "mqtt://{addr}"
client_id = "{client_id}"
filters = ["{prefix}fleet/#"]
session_expiry_s = 300
reconnect_min_ms = 50
reconnect_max_ms = 400
"#,
        addr = broker.addr
    );
    let s = start(dir.path(), &config);
    let connected = "fleetwatch_bridge_connected{bridge=\"edge\"}";
    wait_for(20, "the bridge to connect", || {
        metric(&s, connected) == Some(1.0)
    });
    // The subscription is made right after CONNACK; give the SUBACK a moment.
    std::thread::sleep(Duration::from_millis(300));

    let n = 1500u64;
    let mut publisher = Command::new(fleetwatch_testkit::tansu::python())
        .arg("-c")
        .arg(PUBLISHER)
        .args([
            &broker.addr.ip().to_string(),
            &broker.addr.port().to_string(),
            prefix,
            &n.to_string(),
            "250",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let data = dir.path().join("data");
    wait_for(20, "the first bridged messages", || {
        metric(&s, "fleetwatch_bridge_messages_total{bridge=\"edge\"}").is_some_and(|v| v >= 100.0)
    });
    // SIGKILL in mid-stream: whatever was read but not yet durable was never acknowledged.
    s.kill();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        publisher.try_wait().unwrap().is_none(),
        "the stream must still be running at the restart (a slower machine needs a longer stream)"
    );
    let s = start(dir.path(), &config);
    let out = publisher.wait_with_output().unwrap();
    assert!(out.status.success(), "publisher failed");
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["published"], n);
    wait_for(60, "every message to be bridged", || {
        let mut got = seqs_live(&data, "bridged");
        got.sort_unstable();
        got.dedup();
        got.len() as u64 == n
    });
    assert_eq!(metric(&s, connected), Some(1.0));
    assert!(metric(&s, "fleetwatch_bridge_connects_total{bridge=\"edge\"}").unwrap() >= 1.0);
    s.stop();

    let records = block_on(read_topic(&data, "bridged"));
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &records {
        let v: Value = serde_json::from_slice(r.record.value.as_ref().unwrap()).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        *count.entry(seq).or_default() += 1;
        // Keyed by the VIN of the topic, with the bridge and the original topic as headers.
        let key = String::from_utf8(r.record.key.clone().unwrap().to_vec()).unwrap();
        assert_eq!(key, format!("V{}", seq % 5));
        let h = |k: &str| {
            r.record
                .headers
                .iter()
                .find(|h| h.key == k)
                .and_then(|h| h.value.clone())
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
        };
        assert_eq!(h("mqtt.bridge").as_deref(), Some("edge"));
        assert_eq!(
            h("mqtt.topic"),
            Some(format!("{prefix}fleet/V{}/telemetry", seq % 5))
        );
    }
    assert_eq!(
        count.len() as u64,
        n,
        "every published message is in the log"
    );
    let dups: usize = count.values().map(|c| c - 1).sum();
    eprintln!("bridged {n} messages across a SIGKILL: {dups} redelivered duplicates");
    let _ = py(
        FORGET_SESSION,
        &[
            &broker.addr.ip().to_string(),
            &broker.addr.port().to_string(),
            &client_id,
        ],
    );
}

#[test]
fn bridge_over_tls_with_a_login_and_a_refused_bridge_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = d.join("mosquitto.passwd");
    let out = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["edge", "s3cret"])
        .output()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tls_port = fleetwatch_testkit::free_addr().port();
    let broker = private_with(&format!(
        "listener {tls_port} 127.0.0.1\nallow_anonymous false\npassword_file {}\ncertfile {}\nkeyfile {}\n",
        passwd.display(),
        cert.display(),
        key.display()
    ));
    let prefix = &broker.prefix;
    let bridge = |name: &str, password: &str| {
        format!(
            r#"
[[mqtt.bridge]]
name = "{name}"
url = "mqtts://localhost:{tls_port}"
filters = ["{prefix}fleet/#"]
username = "edge"
password = "{password}"
reconnect_min_ms = 50
reconnect_max_ms = 200
[mqtt.bridge.tls]
ca_file = "{cert}"
"#,
            cert = cert.display()
        )
    };
    let config = format!(
        "[mqtt]\nunmapped = \"reject\"\n[[mqtt.publish_map]]\npattern = \"{prefix}fleet/{{vin}}/telemetry\"\ntopic = \"secure\"\nkey = \"{{vin}}\"\n{}{}",
        bridge("good", "s3cret"),
        bridge("wrong", "not-it")
    );
    let s = start(d, &config);
    wait_for(20, "the good bridge to connect over TLS", || {
        metric(&s, "fleetwatch_bridge_connected{bridge=\"good\"}") == Some(1.0)
    });
    wait_for(20, "the wrong password to be refused", || {
        metric(
            &s,
            "fleetwatch_bridge_disconnects_total{bridge=\"wrong\",reason=\"refused\"}",
        )
        .is_some_and(|v| v >= 1.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    let publish = |topic: String, payload: &Path| {
        let out = Command::new("mosquitto_pub")
            .args(["-h", "localhost", "-p", &tls_port.to_string(), "--cafile"])
            .arg(&cert)
            .args(["-u", "edge", "-P", "s3cret", "-q", "1", "-t"])
            .arg(topic)
            .arg("-f")
            .arg(payload)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Neither an unmapped topic nor a message over the log's record limit may stall the
    // bridge (unacknowledged, they would come back forever): dropped, acknowledged, counted.
    let big = d.join("big");
    std::fs::write(&big, vec![b'x'; 1_100_000]).unwrap();
    publish(format!("{prefix}fleet/unmapped/other"), &big);
    publish(format!("{prefix}fleet/BIG/telemetry"), &big);
    for i in 0..5 {
        let f = d.join(format!("m{i}"));
        std::fs::write(&f, format!("{{\"i\":{i}}}")).unwrap();
        publish(format!("{prefix}fleet/CAR{i}/telemetry"), &f);
    }
    wait_for(20, "five messages over TLS", || {
        metric(&s, "fleetwatch_bridge_messages_total{bridge=\"good\"}") == Some(5.0)
    });
    for reason in ["unmapped", "too_large"] {
        let sample =
            format!("fleetwatch_bridge_dropped_total{{bridge=\"good\",reason=\"{reason}\"}}");
        assert_eq!(metric(&s, &sample), Some(1.0), "{sample}");
    }
    assert_eq!(
        metric(&s, "fleetwatch_bridge_connected{bridge=\"wrong\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&s, "fleetwatch_bridge_messages_total{bridge=\"wrong\"}"),
        Some(0.0)
    );
    s.stop();
    let records = block_on(read_topic(&d.join("data"), "secure"));
    let mut keys: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.record.key.clone().unwrap().to_vec()).unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["CAR0", "CAR1", "CAR2", "CAR3", "CAR4"]);
}

#[test]
fn bridge_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "url = \"http://x:1\"\nfilters = [\"a/#\"]",
            "mqtt.bridge[0].url",
        ),
        ("url = \"mqtt://127.0.0.1:1\"", "mqtt.bridge[0].filters"),
        (
            "url = \"mqtt://127.0.0.1:1\"\nfilters = [\"a/#/b\"]",
            "mqtt.bridge[0].filters",
        ),
        (
            "url = \"mqtt://127.0.0.1:1\"\nfilters = [\"a\"]\nqos = 2",
            "mqtt.bridge[0].qos",
        ),
        (
            "url = \"mqtt://127.0.0.1:1\"\nfilters = [\"a\"]\npassword_env = \"FW_TEST_NO_SUCH_VARIABLE\"",
            "password_env",
        ),
    ];
    for (body, key) in cases {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, format!("[[mqtt.bridge]]\nname = \"b\"\n{body}\n")).unwrap();
        let out = Command::new(fleetwatch_testkit::server::bin())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&file)
            .args([
                "serve",
                "--http-listen",
                "127.0.0.1:0",
                "--schema-registry-listen",
            ])
            .args([
                "127.0.0.1:0",
                "--mqtt-listen",
                "127.0.0.1:0",
                "--ksql-listen",
                "127.0.0.1:0",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{body}: started");
        assert!(err.contains(key), "{body}: {err}");
    }
}

/// HTTP ingest cases through `requests`; prints each answer's status and JSON.
const INGEST: &str = r#"
import json, sys, requests
base = sys.argv[1]
out = {}
def post(name, path, data, ct):
    h = {"X-Client-Id": "gateway-7"}
    if ct: h["Content-Type"] = ct
    r = requests.post(base + "/ingest/" + path, data=data, headers=h, timeout=30)
    try: body = r.json()
    except Exception: body = r.text
    out[name] = {"status": r.status_code, "body": body}
post("one", "fleet/VIN1/telemetry", json.dumps({"event_id": "e1", "speed": 50}, indent=2), "application/json")
post("ndjson", "fleet/VIN2/telemetry", "\n".join(json.dumps({"event_id": f"n{i}"}) for i in range(3)) + "\n", "application/x-ndjson")
post("no_type", "fleet/VIN3/telemetry", '{"event_id": "t1"}\n{"event_id": "t2"}', None)
post("bad_line", "fleet/VIN4/telemetry", '{"event_id": "b1"}\n{"event_id": \n{"event_id": "b3"}\n', "application/x-ndjson")
post("empty", "fleet/VIN4/telemetry", "\n\n", "application/x-ndjson")
post("unmapped", "nowhere/VIN5", '{"a": 1}', "application/json")
post("wildcard", "fleet/+/telemetry", '{"a": 1}', "application/json")
post("xml", "fleet/VIN6/telemetry", "<a/>", "application/xml")
post("too_large_body", "fleet/VIN7/telemetry", "[" + ",".join(["1"] * 3_000_000) + "]", "application/json")
post("too_large_event", "fleet/VIN8/telemetry", '{"ok": 1}\n"' + "x" * 1_100_000 + '"\n', "application/x-ndjson")
print(json.dumps(out))
"#;

#[test]
fn http_ingest_one_event_or_ndjson_routed_by_the_mapping_with_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[http]
max_request_bytes = 4194304
[mqtt]
unmapped = "reject"
[[mqtt.publish_map]]
pattern = "fleet/{vin}/telemetry"
topic = "telemetry.raw"
key = "{vin}"
"#;
    let s = start(dir.path(), config);
    let out = py(INGEST, &[&s.url("")]);
    let status = |k: &str| out[k]["status"].as_u64().unwrap();
    let message = |k: &str| {
        out[k]["body"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(status("one"), 200, "{out}");
    assert_eq!(out["one"]["body"]["topic"], "telemetry.raw");
    assert_eq!(out["one"]["body"]["count"], 1);
    assert_eq!(status("ndjson"), 200, "{out}");
    assert_eq!(out["ndjson"]["body"]["count"], 3);
    assert_eq!(status("no_type"), 200, "{out}");
    assert_eq!(out["no_type"]["body"]["count"], 2);
    assert_eq!(status("bad_line"), 400, "{out}");
    assert_eq!(out["bad_line"]["body"]["error_code"], 40001);
    assert!(message("bad_line").starts_with("line 2: not JSON"), "{out}");
    assert_eq!(status("empty"), 400);
    assert_eq!(status("unmapped"), 404);
    assert!(message("unmapped").contains("nowhere/VIN5"), "{out}");
    assert_eq!(status("wildcard"), 400);
    assert_eq!(status("xml"), 415);
    assert_eq!(status("too_large_body"), 413, "{out}");
    assert_eq!(status("too_large_event"), 413, "{out}");
    assert!(message("too_large_event").starts_with("line 2:"), "{out}");
    assert!(
        metric(&s, "fleetwatch_mqtt_messages_in_total{qos=\"1\"}").unwrap() >= 6.0,
        "HTTP events count as ingested messages"
    );
    s.stop();

    let records = block_on(read_topic(&dir.path().join("data"), "telemetry.raw"));
    let ids: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(r.record.value.as_ref().unwrap()).unwrap();
            let key = String::from_utf8(r.record.key.clone().unwrap().to_vec()).unwrap();
            (key, v["event_id"].as_str().unwrap().to_string())
        })
        .collect();
    let mut ids = ids;
    ids.sort();
    let want: Vec<(String, String)> = [
        ("VIN1", "e1"),
        ("VIN2", "n0"),
        ("VIN2", "n1"),
        ("VIN2", "n2"),
        ("VIN3", "t1"),
        ("VIN3", "t2"),
    ]
    .iter()
    .map(|(k, e)| (k.to_string(), e.to_string()))
    .collect();
    assert_eq!(
        ids, want,
        "only the accepted requests were stored, none of a refused one"
    );
    let h = &records[0].record.headers;
    let get = |k: &str| {
        h.iter()
            .find(|x| x.key == k)
            .and_then(|x| x.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    };
    assert_eq!(get("ingest.source").as_deref(), Some("http"));
    assert_eq!(get("mqtt.client_id").as_deref(), Some("gateway-7"));
}
