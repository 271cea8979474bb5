//! The MQTT proxy with real clients: Python paho-mqtt 2.x (3.1.1 and 5) and Debian's
//! mosquitto_pub / mosquitto_sub, against `fleetwatch serve`.

use crate::api::{http, py, read_topic};
use fleetwatch_testkit::server::{Server, run_cli};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const CONFIG: &str = r#"
[mqtt]
unmapped = "reject"
max_packet_size = 4096
[[mqtt.publish_map]]
pattern = "fleet/{vin}/telemetry"
topic = "telemetry.raw"
key = "{vin}"
[[mqtt.publish_map]]
pattern = "fleet/{vin}/status"
topic = "status"
key = "{vin}"
[[mqtt.subscribe_map]]
pattern = "fleet/{vin}/alerts"
topic = "alerts"
"#;

fn start(dir: &Path, extra_config: &str) -> Server {
    let config = dir.join("fleetwatch.toml");
    std::fs::write(&config, format!("{CONFIG}\n{extra_config}")).unwrap();
    Server::start_with_global(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

/// Every record of `topic`, read from the data directory (the server must be stopped).
fn records(data: &Path, topic: &str) -> Vec<Value> {
    let (ok, out, err) = run_cli(data, &["consume", "-t", topic, "--from-beginning"], "");
    assert!(ok, "consume failed: {err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn header<'a>(r: &'a Value, k: &str) -> Option<&'a str> {
    r["headers"]
        .as_array()?
        .iter()
        .find(|h| h["key"] == k)
        .and_then(|h| h["value"].as_str())
}

const PUBLISHER: &str = r#"
import json, sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
host, port = sys.argv[1], int(sys.argv[2])
out = {}
for name, proto in (("v311", mqtt.MQTTv311), ("v5", mqtt.MQTTv5)):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="car-" + name, protocol=proto)
    acks = {}
    c.on_publish = lambda cl, ud, mid, rc, props: acks.__setitem__(mid, int(rc.value) if hasattr(rc, "value") else int(rc))
    c.connect(host, port, keepalive=30)
    c.loop_start()
    for qos in (0, 1, 2):
        props = None
        if proto == mqtt.MQTTv5:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = ("trip", "42")
        info = c.publish(f"fleet/VIN-{name}/telemetry", json.dumps({"qos": qos, "v": name}), qos=qos, properties=props)
        info.wait_for_publish(10)
        out[f"{name}_q{qos}"] = info.is_published()
    if proto == mqtt.MQTTv5:
        # Unmapped: refused with 0x90 (topic name invalid), the connection stays.
        info = c.publish("nowhere/at/all", b"x", qos=1)
        info.wait_for_publish(10)
        time.sleep(0.2)
        out["unmapped_rc"] = acks.get(info.mid)
        info = c.publish("fleet/VIN-v5/telemetry", b"after", qos=1)
        info.wait_for_publish(10)
        out["after_unmapped"] = info.is_published()
    c.loop_stop()
    c.disconnect()
print(json.dumps(out))
"#;

#[test]
fn paho_publishes_qos_0_1_2_over_3_1_1_and_5_into_the_mapped_topic_with_key_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    let mqtt = s.addr("mqtt");
    let out = py(
        PUBLISHER,
        &[&mqtt.ip().to_string(), &mqtt.port().to_string()],
    );
    for k in [
        "v311_q0",
        "v311_q1",
        "v311_q2",
        "v5_q0",
        "v5_q1",
        "v5_q2",
        "after_unmapped",
    ] {
        assert_eq!(out[k], true, "{k}: {out}");
    }
    assert_eq!(out["unmapped_rc"], 0x90, "{out}");
    let metrics = http("GET", &s.url("/metrics"), "", String::new());
    for line in [
        "fleetwatch_mqtt_messages_in_total{qos=\"0\"} 2",
        "fleetwatch_mqtt_messages_in_total{qos=\"1\"} 3",
        "fleetwatch_mqtt_messages_in_total{qos=\"2\"} 2",
        "fleetwatch_mqtt_ack_latency_seconds_count 5",
        "fleetwatch_mqtt_rejected_total{reason=\"unmapped\"} 1",
        "fleetwatch_connections_accepted_total{server=\"mqtt\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    s.stop();
    let recs = records(&dir.path().join("data"), "telemetry.raw");
    assert_eq!(recs.len(), 7, "{recs:#?}");
    for name in ["v311", "v5"] {
        for qos in 0..3 {
            let r = recs
                .iter()
                .find(|r| {
                    r["value"].as_str().is_some_and(|v| {
                        serde_json::from_str::<Value>(v).ok()
                            == Some(serde_json::json!({"qos": qos, "v": name}))
                    })
                })
                .unwrap_or_else(|| panic!("{name} qos {qos} missing: {recs:#?}"));
            assert_eq!(r["key"], format!("VIN-{name}"));
            assert_eq!(
                header(r, "mqtt.topic"),
                Some(format!("fleet/VIN-{name}/telemetry").as_str())
            );
            assert_eq!(header(r, "mqtt.qos"), Some(qos.to_string().as_str()));
            assert_eq!(
                header(r, "mqtt.client_id"),
                Some(format!("car-{name}").as_str())
            );
            assert_eq!(header(r, "mqtt.packet_id").is_some(), qos > 0, "{r}");
            assert_eq!(header(r, "trip"), (name == "v5").then_some("42"), "{r}");
        }
    }
}

const BAD_CLIENTS: &str = r#"
import json, socket, sys, time
import paho.mqtt.client as mqtt
host, port = sys.argv[1], int(sys.argv[2])
out = {}
good = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="good", protocol=mqtt.MQTTv5)
good.connect(host, port)
good.loop_start()
# Garbage instead of CONNECT: closed.
s = socket.create_connection((host, port)); s.sendall(b"\x30\x05\x00\x01ahi"); s.settimeout(5)
out["garbage_closed"] = s.recv(100) in (b"",)
# A wrong protocol level: CONNACK refusing, or closed.
s = socket.create_connection((host, port)); s.sendall(b"\x10\x10\x00\x04MQTT\x09\x02\x00\x3c\x00\x04abcd"); s.settimeout(5)
out["bad_level_closed"] = len(s.recv(100)) <= 4
# Oversized publish in MQTT 5: DISCONNECT 0x95.
reasons = []
big = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="big", protocol=mqtt.MQTTv5)
big.on_disconnect = lambda c, ud, flags, rc, props: reasons.append(int(rc.value))
big.connect(host, port)
big.loop_start()
big.publish("fleet/V1/telemetry", b"x" * 10000, qos=1)
for _ in range(50):
    if reasons: break
    time.sleep(0.1)
big.loop_stop()
out["oversized_reason"] = reasons[0] if reasons else None
# The well-behaved client still works.
info = good.publish("fleet/V9/telemetry", b"still fine", qos=1)
info.wait_for_publish(10)
out["good_still_works"] = info.is_published()
good.loop_stop(); good.disconnect()
print(json.dumps(out))
"#;

#[test]
fn bad_input_ends_only_that_connection_with_the_right_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    let mqtt = s.addr("mqtt");
    let out = py(
        BAD_CLIENTS,
        &[&mqtt.ip().to_string(), &mqtt.port().to_string()],
    );
    assert_eq!(out["garbage_closed"], true, "{out}");
    assert_eq!(out["bad_level_closed"], true, "{out}");
    assert_eq!(out["oversized_reason"], 0x95, "{out}");
    assert_eq!(out["good_still_works"], true, "{out}");
    let metrics = http("GET", &s.url("/metrics"), "", String::new());
    assert!(
        metrics.contains("fleetwatch_mqtt_rejected_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fleetwatch_mqtt_rejected_total{reason=\"bad_protocol\"}"),
        "{metrics}"
    );
    s.stop();
    let recs = records(&dir.path().join("data"), "telemetry.raw");
    assert_eq!(recs.len(), 1, "only the good publish: {recs:#?}");
}

const SUBSCRIBER: &str = r#"
import json, sys, time
import paho.mqtt.client as mqtt
host, port, cid, clean, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", float(sys.argv[5])
got = []
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=cid, clean_session=clean, protocol=mqtt.MQTTv311)
c.on_message = lambda cl, ud, m: got.append({"topic": m.topic, "payload": m.payload.decode(), "retain": bool(m.retain)})
flags = {}
c.on_connect = lambda cl, ud, fl, rc: (flags.update(fl), cl.subscribe("fleet/V1/alerts", qos=1) if sys.argv[6] == "sub" else None)
c.connect(host, port)
c.loop_start()
time.sleep(seconds)
c.loop_stop()
c.disconnect()
print(json.dumps({"got": got, "session_present": flags.get("session present", 0)}))
"#;

fn produce_alert(s: &Server, key: &str, value: &str) {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD;
    let body = serde_json::json!({"records": [{"key": b.encode(key), "value": b.encode(value)}]});
    let r = http(
        "POST",
        &s.url("/topics/alerts"),
        "application/vnd.kafka.binary.v2+json",
        body.to_string(),
    );
    assert!(r.contains("offsets"), "{r}");
}

#[test]
fn subscribe_back_with_retained_messages_and_a_persistent_session_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    produce_alert(&s, "V1", "old");
    produce_alert(&s, "V2", "other car");
    std::thread::sleep(std::time::Duration::from_millis(800)); // the retained index follows
    let m = s.addr("mqtt");
    let (host, port) = (m.ip().to_string(), m.port().to_string());
    // A persistent session subscribes: the retained alert of its car comes at once.
    let first = {
        let h = host.clone();
        let p = port.clone();
        std::thread::spawn(move || py(SUBSCRIBER, &[&h, &p, "dash-1", "0", "2.5", "sub"]))
    };
    std::thread::sleep(std::time::Duration::from_millis(1200));
    produce_alert(&s, "V1", "live");
    produce_alert(&s, "V2", "not mine");
    let first = first.join().unwrap();
    let got: Vec<(String, bool)> = first["got"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["payload"].as_str().unwrap().to_string(),
                g["retain"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("old".to_string(), true), ("live".to_string(), false)],
        "{first}"
    );
    // Offline: an alert arrives; the server restarts.
    produce_alert(&s, "V1", "while away");
    s.stop();
    let s = Server::start_with_global(
        &dir.path().join("data"),
        &[
            "--config",
            dir.path().join("fleetwatch.toml").to_str().unwrap(),
        ],
    );
    let m = s.addr("mqtt");
    let again = py(
        SUBSCRIBER,
        &[
            &m.ip().to_string(),
            &m.port().to_string(),
            "dash-1",
            "0",
            "1.5",
            "nosub",
        ],
    );
    assert_eq!(again["session_present"], 1, "{again}");
    let got: Vec<&str> = again["got"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["payload"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        vec!["while away"],
        "the stored session resumes where it was: {again}"
    );
}

#[test]
fn a_will_is_appended_when_a_client_vanishes_and_mosquitto_clients_work() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    let m = s.addr("mqtt");
    let port = m.port().to_string();
    // mosquitto_pub, QoS 1 and 2.
    for q in ["1", "2"] {
        let out = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-q",
                q,
                "-t",
                "fleet/M1/telemetry",
                "-m",
            ])
            .arg(format!("q{q}"))
            .output()
            .expect("mosquitto_pub (Debian mosquitto-clients)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A client with a will, killed without DISCONNECT.
    let mut child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "fleet/W1/alerts",
            "--will-topic",
            "fleet/W1/status",
            "--will-payload",
            "offline",
            "--will-qos",
            "1",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(700));
    s.stop();
    let data = dir.path().join("data");
    let t: Vec<String> = records(&data, "telemetry.raw")
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(t, vec!["q1", "q2"]);
    let st = records(&data, "status");
    assert_eq!(st.len(), 1, "{st:#?}");
    assert_eq!(st[0]["value"], "offline");
    assert_eq!(st[0]["key"], "W1");
    assert_eq!(header(&st[0], "mqtt.will"), Some("1"));
}

const ACL_CHECK: &str = r#"
import json, sys, time
import paho.mqtt.client as mqtt
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
acks = {}
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="acl-" + user, protocol=mqtt.MQTTv5)
c.username_pw_set(user, pw)
c.on_publish = lambda cl, ud, mid, rc, props: acks.__setitem__(mid, int(rc.value))
subs = {}
c.on_subscribe = lambda cl, ud, mid, rcs, props: subs.__setitem__(mid, [int(r.value) for r in rcs])
c.connect(host, port)
c.loop_start()
own = c.publish(f"fleet/{user}/telemetry", b"mine", qos=1); own.wait_for_publish(10)
other = c.publish("fleet/someone-else/telemetry", b"not mine", qos=1); other.wait_for_publish(10)
r1, m1 = c.subscribe(f"fleet/{user}/alerts", qos=1)
r2, m2 = c.subscribe("fleet/+/alerts", qos=1)
time.sleep(0.5)
c.loop_stop(); c.disconnect()
print(json.dumps({"own": acks.get(own.mid), "other": acks.get(other.mid), "sub_own": subs.get(m1), "sub_all": subs.get(m2)}))
"#;

#[test]
fn tls_logins_from_a_password_file_and_acls_with_username_substitution() {
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
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
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
    let pw = d.join("passwd");
    let data = d.join("data");
    for (user, pass) in [("car1", "pw-one"), ("car2", "pw-two")] {
        let (ok, _, err) = run_cli(
            &data,
            &["mqtt", "passwd", "--file", pw.to_str().unwrap(), user],
            &format!("{pass}\n"),
        );
        assert!(ok && err.contains(&format!("added {user}")), "{err}");
    }
    let config = d.join("fleetwatch.toml");
    std::fs::write(
        &config,
        format!(
            "{CONFIG}\n[[mqtt.acl]]\nusername = \"*\"\npublish = [\"fleet/{{username}}/#\"]\nsubscribe = [\"fleet/{{username}}/alerts\"]\n"
        ),
    )
    .unwrap();
    let s = Server::start_with_global(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--set",
            &format!("mqtt.password_file={}", pw.display()),
            "--set",
            &format!("mqtt.tls.cert_file={}", cert.display()),
            "--set",
            &format!("mqtt.tls.key_file={}", key.display()),
            "--set",
            "mqtt.tls_listen=127.0.0.1:0",
        ],
    );
    let tls = s.addr("mqtt_tls").port().to_string();
    let publish = |user: &str, pass: &str, msg: &str| {
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &tls, "--cafile"])
            .arg(&cert)
            .args([
                "-u",
                user,
                "-P",
                pass,
                "-q",
                "1",
                "-t",
                &format!("fleet/{user}/telemetry"),
                "-m",
                msg,
            ])
            .output()
            .unwrap()
    };
    let ok = publish("car1", "pw-one", "over tls");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = publish("car1", "wrong", "refused");
    assert!(!bad.status.success(), "a wrong password is refused");
    let no_tls = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &tls,
            "-q",
            "1",
            "-t",
            "fleet/car1/telemetry",
            "-m",
            "plain on tls",
            "-u",
            "car1",
            "-P",
            "pw-one",
        ])
        .output()
        .unwrap();
    assert!(!no_tls.status.success(), "plain MQTT on the TLS port fails");
    let m = s.addr("mqtt");
    let acl = py(
        ACL_CHECK,
        &[&m.ip().to_string(), &m.port().to_string(), "car2", "pw-two"],
    );
    assert_eq!(acl["own"], 0, "{acl}");
    assert_eq!(acl["other"], 0x87, "not authorized: {acl}");
    assert_eq!(acl["sub_own"], serde_json::json!([1]), "{acl}");
    assert_eq!(acl["sub_all"], serde_json::json!([0x87]), "{acl}");
    s.stop();
    let recs: Vec<(String, String)> = records(&data, "telemetry.raw")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().into(),
                r["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        recs,
        vec![
            ("car1".into(), "over tls".into()),
            ("car2".into(), "mine".into())
        ]
    );
}

/// Publishes QoS 1 messages `m<n>` from `first` on in windows of 32 until the connection
/// fails; returns the numbers whose PUBACK arrived, and the next number.
fn publish_until_cut(addr: std::net::SocketAddr, first: u64) -> (Vec<u64>, u64) {
    use bytes::BytesMut;
    use fleetwatch_ingest::packet::{Codec, Connect, Packet, Publish, QoS, Version};
    use std::io::{Read, Write};
    let mut acked = Vec::new();
    let mut n = first;
    let Ok(mut sock) = std::net::TcpStream::connect(addr) else {
        return (acked, n);
    };
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut codec = Codec::client(Version::V3_1_1, u32::MAX);
    let mut out = BytesMut::new();
    let connect = Connect::new(Version::V3_1_1, "killer");
    codec
        .encode(Packet::Connect(Box::new(connect)), &mut out)
        .unwrap();
    let mut inbuf = BytesMut::new();
    let read_packet = |sock: &mut std::net::TcpStream, codec: &mut Codec, inbuf: &mut BytesMut| loop {
        if let Ok(Some(p)) = codec.decode(inbuf) {
            return Some(p);
        }
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(k) => inbuf.extend_from_slice(&chunk[..k]),
        }
    };
    if sock.write_all(&out).is_err() {
        return (acked, n);
    }
    out.clear();
    if !matches!(
        read_packet(&mut sock, &mut codec, &mut inbuf),
        Some(Packet::ConnAck(_))
    ) {
        return (acked, n);
    }
    loop {
        let mut window = std::collections::HashMap::new();
        for pid in 1..=32u16 {
            window.insert(pid, n);
            codec
                .encode(
                    Packet::Publish(Box::new(Publish {
                        topic: format!("fleet/K{}/telemetry", n % 5).into(),
                        payload: format!("m{n}").into(),
                        qos: QoS::AtLeastOnce,
                        retain: false,
                        dup: false,
                        packet_id: std::num::NonZeroU16::new(pid),
                        topic_alias: None,
                        user_properties: Vec::new(),
                        content_type: None,
                    })),
                    &mut out,
                )
                .unwrap();
            n += 1;
        }
        if sock.write_all(&out).is_err() {
            return (acked, n);
        }
        out.clear();
        while !window.is_empty() {
            match read_packet(&mut sock, &mut codec, &mut inbuf) {
                Some(Packet::PubAck(id, 0)) => {
                    if let Some(m) = window.remove(&id.get()) {
                        acked.push(m);
                    }
                }
                Some(_) => {}
                None => return (acked, n),
            }
        }
    }
}

#[test]
fn every_puback_survives_sigkill_loops_under_mqtt_load() {
    let loops: usize = std::env::var("FLEETWATCH_KILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fleetwatch.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut acked = Vec::new();
    let mut next = 0u64;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..loops {
        let s = Server::start_with_global(&data, &["--config", config.to_str().unwrap()]);
        let addr = s.addr("mqtt");
        let from = next;
        let publisher = std::thread::spawn(move || publish_until_cut(addr, from));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(150 + seed % 300));
        s.kill();
        let (got, n) = publisher.join().unwrap();
        acked.extend(got);
        next = n;
    }
    assert!(!acked.is_empty(), "no PUBACK at all");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stored: std::collections::HashSet<String> = rt
        .block_on(read_topic(&data, "telemetry.raw"))
        .into_iter()
        .map(|r| String::from_utf8(r.record.value.unwrap().to_vec()).unwrap())
        .collect();
    for m in &acked {
        assert!(stored.contains(&format!("m{m}")), "PUBACKed m{m} is lost");
    }
    println!(
        "mqtt kill loop: {loops} SIGKILLs, {} PUBACKed messages all present",
        acked.len()
    );
}

const EDGES: &str = r#"
import json, socket, sys, time, urllib.request
import paho.mqtt.client as mqtt
host, port, http = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = {}
def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while True:
            b = s.recv(100)
            if b == b"":
                return True
    except socket.timeout:
        return False
    except OSError:
        return True
# Silent after accept: the connect timeout (connections.mqtt.header_timeout_ms = 500) closes it.
s = socket.create_connection((host, port))
out["connect_timeout"] = closed_within(s, 3)
# keep-alive 1 s, then silence: closed after 1.5 s.
s = socket.create_connection((host, port))
s.sendall(b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x01\x00\x02ka")
s.settimeout(2); s.recv(4)  # CONNACK
t = time.time()
out["keep_alive_closed"] = closed_within(s, 4)
out["keep_alive_after_s"] = round(time.time() - t, 1)
# A second CONNECT (MQTT 5): DISCONNECT 0x82.
s = socket.create_connection((host, port))
c5 = b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x01x"
s.sendall(c5); s.settimeout(3); s.recv(100)
s.sendall(c5)
data = s.recv(100)
out["second_connect"] = list(data[:3])
# Takeover: a second client with the same id; the first hears 0x8E.
reasons = []
a = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="same", protocol=mqtt.MQTTv5, reconnect_on_failure=False)
a.on_disconnect = lambda c, ud, fl, rc, p: reasons.append(int(rc.value))
a.connect(host, port); a.loop_start(); time.sleep(0.3)
b = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="same", protocol=mqtt.MQTTv5)
b.connect(host, port); b.loop_start(); time.sleep(0.8)
a.loop_stop(); b.loop_stop(); b.disconnect()
out["takeover_reason"] = reasons[0] if reasons else None
# The mapped topic is deleted: appends fail. MQTT 5 gets PUBACK 0x80; 3.1.1 is disconnected.
req = urllib.request.Request(f"http://{http}/v3/clusters/fleetwatch/topics/telemetry.raw", method="DELETE")
urllib.request.urlopen(req).read()
acks = {}
v5 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v5-fail", protocol=mqtt.MQTTv5)
v5.on_publish = lambda c, ud, mid, rc, p: acks.__setitem__(mid, int(rc.value))
v5.connect(host, port); v5.loop_start()
i = v5.publish("fleet/V1/telemetry", b"x", qos=1); i.wait_for_publish(5); time.sleep(0.2)
out["v5_failed_append_rc"] = acks.get(i.mid)
v5.loop_stop(); v5.disconnect()
gone = []
v3 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v3-fail", protocol=mqtt.MQTTv311, reconnect_on_failure=False)
v3.on_disconnect = lambda c, ud, fl, rc, p: gone.append(1)
v3.connect(host, port); v3.loop_start()
i = v3.publish("fleet/V1/telemetry", b"x", qos=1)
for _ in range(30):
    if gone: break
    time.sleep(0.1)
out["v3_failed_append_disconnected"] = bool(gone) and not i.is_published()
v3.loop_stop()
print(json.dumps(out))
"#;

#[test]
fn timeouts_second_connect_takeover_and_failed_appends_get_the_right_answer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleetwatch.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let s = Server::start_with_global(
        &dir.path().join("data"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--set",
            "connections.mqtt.header_timeout_ms=500",
        ],
    );
    let m = s.addr("mqtt");
    let http = s.addr("http").to_string();
    let out = py(EDGES, &[&m.ip().to_string(), &m.port().to_string(), &http]);
    assert_eq!(out["connect_timeout"], true, "{out}");
    assert_eq!(out["keep_alive_closed"], true, "{out}");
    let after = out["keep_alive_after_s"].as_f64().unwrap();
    assert!((1.0..3.5).contains(&after), "closed after {after} s: {out}");
    assert_eq!(
        out["second_connect"],
        serde_json::json!([0xe0, 2, 0x82]),
        "{out}"
    );
    assert_eq!(out["takeover_reason"], 0x8E, "{out}");
    assert_eq!(out["v5_failed_append_rc"], 0x80, "{out}");
    assert_eq!(out["v3_failed_append_disconnected"], true, "{out}");
}

const CUT_MID_STREAM: &str = r#"
import json, socket, sys, threading, time
import paho.mqtt.client as mqtt
host, port = sys.argv[1], int(sys.argv[2])
# A relay that cuts the first connection after 20 kB from the client.
lsock = socket.socket(); lsock.bind(("127.0.0.1", 0)); lsock.listen(8)
rport = lsock.getsockname()[1]
cuts = []
def pipe(a, b, limit):
    sent = 0
    try:
        while True:
            d = a.recv(4096)
            if not d: break
            b.sendall(d); sent += len(d)
            if limit and sent > limit:
                cuts.append(sent)
                break
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
        s.close()
def relay():
    n = 0
    while True:
        c, _ = lsock.accept()
        u = socket.create_connection((host, port))
        limit = 20000 if n == 0 else 0
        n += 1
        threading.Thread(target=pipe, args=(c, u, limit), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c, 0), daemon=True).start()
threading.Thread(target=relay, daemon=True).start()
acked = []
sent = {}
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flaky-car", clean_session=False, protocol=mqtt.MQTTv311)
c.max_inflight_messages_set(50)
c.on_publish = lambda cl, ud, mid, rc, p: acked.append(sent[mid])
c.reconnect_delay_set(0.1, 0.5)
c.connect("127.0.0.1", rport, keepalive=5)
c.loop_start()
for i in range(600):
    info = c.publish("fleet/FLAKY/telemetry", f"n{i}".encode() + b"x" * 100, qos=1)
    sent[info.mid] = f"n{i}"
for _ in range(200):
    if len(acked) >= 600: break
    time.sleep(0.1)
c.loop_stop(); c.disconnect()
print(json.dumps({"acked": acked, "cuts": cuts}))
"#;

#[test]
fn a_qos1_publisher_cut_mid_stream_resends_and_nothing_acknowledged_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    let m = s.addr("mqtt");
    let out = py(
        CUT_MID_STREAM,
        &[&m.ip().to_string(), &m.port().to_string()],
    );
    assert_eq!(
        out["cuts"].as_array().unwrap().len(),
        1,
        "the relay cut once: {out}"
    );
    let acked: Vec<String> = out["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        acked.len(),
        600,
        "paho resent what was cut and got every PUBACK: {}",
        acked.len()
    );
    s.stop();
    let stored: std::collections::HashSet<String> =
        records(&dir.path().join("data"), "telemetry.raw")
            .iter()
            .map(|r| {
                r["value"]
                    .as_str()
                    .unwrap()
                    .split('x')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
    for a in &acked {
        assert!(stored.contains(a), "PUBACKed {a} is missing");
    }
}

#[test]
fn mqtt5_topic_aliases_resolve_and_an_unknown_alias_is_refused() {
    use bytes::BytesMut;
    use fleetwatch_ingest::packet::{Codec, Connect, Packet, Publish, QoS, Version};
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), "");
    let mut sock = std::net::TcpStream::connect(s.addr("mqtt")).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut codec = Codec::client(Version::V5, u32::MAX);
    let mut out = BytesMut::new();
    let publish = |topic: &str, alias: u16, id: u16| {
        Packet::Publish(Box::new(Publish {
            topic: topic.into(),
            payload: format!("p{id}").into(),
            qos: QoS::AtLeastOnce,
            retain: false,
            dup: false,
            packet_id: std::num::NonZeroU16::new(id),
            topic_alias: std::num::NonZeroU16::new(alias),
            user_properties: Vec::new(),
            content_type: None,
        }))
    };
    for p in [
        Packet::Connect(Box::new(Connect::new(Version::V5, "aliased"))),
        publish("fleet/A1/telemetry", 1, 1),
        publish("", 1, 2),
        publish("", 7, 3),
    ] {
        codec.encode(p, &mut out).unwrap();
    }
    sock.write_all(&out).unwrap();
    let mut inbuf = BytesMut::new();
    let mut got = Vec::new();
    loop {
        match codec.decode(&mut inbuf).unwrap() {
            Some(p) => got.push(p),
            None => {
                let mut chunk = [0u8; 1024];
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => inbuf.extend_from_slice(&chunk[..k]),
                }
            }
        }
    }
    let id = |n| std::num::NonZeroU16::new(n).unwrap();
    assert!(
        matches!(got[0], Packet::ConnAck(ref a) if a.topic_alias_max == 64),
        "{got:?}"
    );
    assert_eq!(
        got[1..],
        [
            Packet::PubAck(id(1), 0),
            Packet::PubAck(id(2), 0),
            Packet::Disconnect(0x94, None)
        ],
        "alias 7 was never set: DISCONNECT topic alias invalid"
    );
    s.stop();
    let recs: Vec<(String, String)> = records(&dir.path().join("data"), "telemetry.raw")
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().into(),
                r["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        recs,
        vec![("A1".into(), "p1".into()), ("A1".into(), "p2".into())]
    );
}
