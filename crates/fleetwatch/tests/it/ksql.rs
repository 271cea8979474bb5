//! The ksqlDB-compatible SQL API of `serve`, driven by real clients: Python `ksql-python-ng`
//! (HTTP/1.1 `/ksql`, HTTP/2 `/query-stream` and `/inserts-stream` through httpx) and
//! `curl --http2-prior-knowledge`; push queries that end when the client goes away; a
//! persistent query that survives a SIGKILL with output equal to an uninterrupted run.

use crate::api::{http, metric, py};
use fleetwatch_testkit::server::Server;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn ksql(s: &Server, sql: &str) -> Value {
    let body =
        json!({"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest"}}).to_string();
    let text = http(
        "POST",
        &format!("http://{}/ksql", s.addr("ksql")),
        "application/vnd.ksql.v1+json",
        body,
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Rows of a pull query over `/query` (HTTP/1.1), as arrays.
fn pull(s: &Server, sql: &str) -> Vec<Value> {
    let body = json!({"ksql": sql}).to_string();
    let text = http(
        "POST",
        &format!("http://{}/query", s.addr("ksql")),
        "application/json",
        body,
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.get("row").map(|r| r["columns"].clone()))
        .collect()
}

const PY_CLIENT: &str = r#"
import json, sys, httpx
from ksql import KSQLAPI
url = sys.argv[1]
c = KSQLAPI(url, timeout=20)
out = {}
out["create"] = c.ksql("CREATE STREAM payments (vin STRING KEY, card STRING, holder STRING, amount DOUBLE, loc STRUCT<lat DOUBLE, lon DOUBLE>) WITH (kafka_topic='payments.sql', value_format='JSON', partitions=2);")
out["csas"] = c.ksql("CREATE STREAM payments_clean WITH (kafka_topic='payments.clean') AS SELECT vin, MASK_KEEP_RIGHT(card, 4) AS card, MASK(holder) AS holder, amount, GEO_DISTANCE(loc->lat, loc->lon, 48.1374, 11.5755) AS km FROM payments WHERE amount > 1 EMIT CHANGES;", stream_properties={"auto.offset.reset": "earliest"})
out["inserts"] = c.inserts_stream("PAYMENTS", [
    {"VIN": "V1", "CARD": "4111111111111111", "HOLDER": "Jane Doe", "AMOUNT": 12.5, "LOC": {"LAT": 48.1374, "LON": 11.5755}},
    {"VIN": "V2", "CARD": "5500000000000004", "HOLDER": "Max Muster", "AMOUNT": 0.5, "LOC": {"LAT": 48.7758, "LON": 9.1829}},
    {"VIN": "V3", "CARD": "340000000000009", "HOLDER": "Erika M", "AMOUNT": 99.0, "LOC": {"LAT": 48.7758, "LON": 9.1829}},
    {"VIN": "V4", "NOPE": 1},
])
# HTTP/2 push query with a LIMIT, through ksql-python-ng (delimited /query-stream).
chunks = list(c.query("SELECT vin, card, km FROM payments_clean EMIT CHANGES LIMIT 2;", use_http2=True, stream_properties={"auto.offset.reset": "earliest"}))
out["h2"] = "".join(chunks)
out["queries"] = c.ksql("SHOW QUERIES;")
out["describe"] = c.ksql("DESCRIBE payments_clean;")
out["functions"] = c.ksql("DESCRIBE FUNCTION MASK_KEEP_RIGHT;")
# A client that goes away: read the header of an endless push query, then drop the stream.
with httpx.Client(http2=True, http1=False, timeout=10) as h:
    with h.stream("POST", url + "/query-stream", content=json.dumps({"sql": "SELECT * FROM payments EMIT CHANGES;", "properties": {}})) as r:
        first = next(r.iter_lines())
        out["h2_header"] = json.loads(first)
out["h2_version"] = r.http_version
print(json.dumps(out))
"#;

#[test]
fn ksql_python_ng_and_curl_drive_the_engine_over_http1_and_h2c() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let url = format!("http://{}", s.addr("ksql"));
    let info: Value =
        serde_json::from_str(&http("GET", &format!("{url}/info"), "", String::new())).unwrap();
    assert_eq!(info["KsqlServerInfo"]["serverStatus"], "RUNNING");
    let out = py(PY_CLIENT, &[&url]);
    assert_eq!(
        out["create"][0]["commandStatus"]["message"], "Stream created",
        "{out}"
    );
    let qid = out["csas"][0]["commandStatus"]["queryId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(qid, "CSAS_PAYMENTS_CLEAN_1");
    // Three rows acknowledged, the one with an unknown column refused naming it.
    let acks = out["inserts"].as_array().unwrap();
    assert_eq!(acks.len(), 4, "{out}");
    assert!(acks[..3].iter().all(|a| a["status"] == "ok"), "{out}");
    assert_eq!(acks[3]["status"], "error");
    assert!(
        acks[3]["message"].as_str().unwrap().contains("NOPE"),
        "{out}"
    );
    // The HTTP/2 push query: a header line, then the two masked rows over the amount filter.
    let lines: Vec<Value> = out["h2"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines[0]["columnNames"],
        json!(["VIN", "CARD", "KM"]),
        "{out}"
    );
    assert_eq!(
        lines[0]["columnTypes"],
        json!(["STRING", "STRING", "DOUBLE"])
    );
    let mut rows: Vec<(String, String, f64)> = lines[1..]
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().into(),
                r[1].as_str().unwrap().into(),
                r[2].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("V1", "nnnnnnnnnnnn1111")
    );
    assert_eq!(rows[0].2, 0.0);
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("V3", "nnnnnnnnnnn0009")
    );
    assert!(
        (rows[1].2 - 190.4).abs() < 1.0,
        "Munich–Stuttgart is about 190 km: {}",
        rows[1].2
    );
    assert_eq!(out["queries"][0]["queries"][0]["id"], qid.as_str());
    assert_eq!(out["queries"][0]["queries"][0]["state"], "RUNNING");
    assert_eq!(
        out["describe"][0]["sourceDescription"]["topic"],
        "payments.clean"
    );
    assert_eq!(out["functions"][0]["name"], "MASK_KEEP_RIGHT");
    assert_eq!(out["h2_version"], "HTTP/2");

    // The push query whose client went away is gone (close-query no longer knows it).
    let gone = out["h2_header"]["queryId"].as_str().unwrap().to_string();
    wait_for(10, "the abandoned HTTP/2 push query to stop", || {
        let r = http(
            "POST",
            &format!("{url}/close-query"),
            "application/json",
            json!({"queryId": gone}).to_string(),
        );
        r.contains("No query with id")
    });

    // HTTP/1.1: a raw client reads an endless push query's header and hangs up.
    let mut tcp = std::net::TcpStream::connect(s.addr("ksql")).unwrap();
    let body = json!({"ksql": "SELECT * FROM payments EMIT CHANGES;"}).to_string();
    write!(tcp, "POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut buf = [0u8; 4096];
    let n = tcp.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut seen = head.clone();
    while !seen.contains("queryId") {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let id_at = seen.find("transient_").unwrap();
    let id: String = seen[id_at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    drop(tcp);
    wait_for(10, "the abandoned HTTP/1.1 push query to stop", || {
        let r = http(
            "POST",
            &format!("{url}/close-query"),
            "application/json",
            json!({"queryId": id}).to_string(),
        );
        r.contains("No query with id")
    });

    // curl with HTTP/2 prior knowledge, application/json framing: one JSON array.
    let o = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-H", "Accept: application/json", "-X", "POST", &format!("{url}/query-stream"), "-d"])
        .arg(json!({"sql": "SELECT vin, amount FROM payments WHERE amount > 50 EMIT CHANGES LIMIT 1;", "properties": {"auto.offset.reset": "earliest"}}).to_string())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v[0]["columnNames"], json!(["VIN", "AMOUNT"]));
    assert_eq!(v[1], json!(["V3", 99.0]));

    // A pull query over a stream reads to the current end and completes.
    let mut all = pull(&s, "SELECT vin, holder FROM payments_clean;");
    all.sort_by_key(|r| r[0].as_str().unwrap().to_string());
    assert_eq!(
        all,
        vec![json!(["V1", "Xxxx-Xxx"]), json!(["V3", "Xxxxx-X"])]
    );

    // Errors: ksqlDB's shapes, with the line and column of bad SQL.
    let e = ksql(&s, "CREATE STREAM x AS\n  SELEC * FROM payments;");
    assert_eq!(e["@type"], "statement_error");
    assert_eq!(e["error_code"], 40001);
    assert!(
        e["message"].as_str().unwrap().starts_with("line 2:3:"),
        "{e}"
    );
    let e = ksql(&s, "SELECT * FROM payments EMIT CHANGES;");
    assert_eq!(e["error_code"], 40002);
    let e = ksql(
        &s,
        "CREATE STREAM y AS SELECT vin, nope FROM payments EMIT CHANGES;",
    );
    assert!(e["message"].as_str().unwrap().contains("NOPE"), "{e}");
    // The engine's metrics, on /metrics of the http listener.
    let q = r#"{query="CSAS_PAYMENTS_CLEAN_1"}"#;
    assert_eq!(
        metric(&s, &format!("fleetwatch_sql_records_in_total{q}")),
        Some(3.0)
    );
    assert_eq!(
        metric(&s, &format!("fleetwatch_sql_records_out_total{q}")),
        Some(2.0)
    );
    assert_eq!(
        metric(&s, r#"fleetwatch_sql_queries{state="RUNNING"}"#),
        Some(1.0)
    );
    assert!(metric(&s, &format!("fleetwatch_sql_batch_seconds_count{q}")).unwrap() >= 1.0);
    wait_for(10, "no open push query", || {
        metric(&s, "fleetwatch_sql_push_queries") == Some(0.0)
    });
    let health: Value = serde_json::from_str(&http(
        "GET",
        &format!("{url}/healthcheck"),
        "",
        String::new(),
    ))
    .unwrap();
    assert_eq!(health["isHealthy"], true);
    s.stop();
}

fn produce(s: &Server, topic: &str, from: usize, to: usize) {
    let records: Vec<Value> = (from..to)
        .map(|i| json!({"key": format!("V{}", i % 7), "value": {"seq": i, "card": format!("4{i:015}"), "amount": (i % 50) as f64}}))
        .collect();
    let body = json!({"records": records}).to_string();
    let r = http(
        "POST",
        &s.url(&format!("/topics/{topic}")),
        "application/vnd.kafka.json.v2+json",
        body,
    );
    assert!(r.contains("offsets"), "{r}");
}

/// Output values of the sink, as (seq, card) sorted.
async fn sink_rows(data: &std::path::Path) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = crate::api::read_topic(data, "pay.masked")
        .await
        .into_iter()
        .map(|r| {
            let j: Value = serde_json::from_slice(r.record.value.as_deref().unwrap()).unwrap();
            (
                j["SEQ"].as_i64().unwrap(),
                j["CARD"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_persistent_query_killed_mid_stream_writes_what_an_uninterrupted_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &["--set", "ksql.checkpoint_interval_ms=20"]);
    ksql(
        &s,
        "CREATE STREAM pay (vin STRING KEY, seq BIGINT, card STRING, amount DOUBLE) WITH (kafka_topic='pay', value_format='JSON', partitions=3);",
    );
    let r = ksql(
        &s,
        "CREATE STREAM masked WITH (kafka_topic='pay.masked', partitions=2) AS SELECT vin, seq, MASK_LEFT(card, 12) AS card FROM pay WHERE amount >= 10 EMIT CHANGES;",
    );
    assert_eq!(r[0]["commandStatus"]["status"], "SUCCESS", "{r}");
    let mut sent = 0;
    // Kill it while it is busy, three times over.
    let mut s = s;
    for round in 0..3 {
        for _ in 0..5 {
            produce(&s, "pay", sent, sent + 200);
            sent += 200;
        }
        std::thread::sleep(Duration::from_millis(30 * (round + 1)));
        s.kill();
        s = Server::start(&data, &["--set", "ksql.checkpoint_interval_ms=20"]);
    }
    let total = sent + 1000;
    produce(&s, "pay", sent, total);
    let expected: Vec<(i64, String)> = (0..total)
        .filter(|i| i % 50 >= 10)
        .map(|i| {
            (
                i as i64,
                format!("nnnnnnnnnnnn{}", &format!("4{i:015}")[12..]),
            )
        })
        .collect();
    // Wait for the query to catch up (it reports what it processed).
    wait_for(60, "the restarted query to process every record", || {
        let q = ksql(&s, "SHOW QUERIES;");
        q[0]["queries"][0]["state"] == "RUNNING"
            && pull(&s, "SELECT seq FROM masked;").len() >= expected.len()
    });
    s.stop();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(sink_rows(&data));
    assert_eq!(
        got.len(),
        expected.len(),
        "duplicates or losses after SIGKILLs"
    );
    assert_eq!(got, expected);
}

const AVRO_CLIENT: &str = r#"
import base64, json, sys, time
import requests
from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
from confluent_kafka.schema_registry.avro import AvroSerializer, AvroDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField
sr_url, rest, ksql, avsc = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sr = SchemaRegistryClient({"url": sr_url})
ser = AvroSerializer(sr, avsc)
ctx = SerializationContext("cardata", MessageField.VALUE)
rows = [{"time": 1796000000 + i, "car": "car-%d" % i, "speed": 10.0 * i, "coolant_temp": 90.5} for i in range(6)]
blobs = [ser(r, ctx) for r in rows]
r = requests.post(rest + "/topics/cardata", headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
                  json={"records": [{"key": base64.b64encode(r["car"].encode()).decode(), "value": base64.b64encode(b).decode()} for r, b in zip(rows, blobs)]})
assert r.status_code == 200, r.text
def ksql_(sql):
    r = requests.post(ksql + "/ksql", json={"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest"}})
    return r.status_code, r.json()
out = {}
# Columns left out: read from the registry's latest cardata-value schema.
out["create"] = ksql_("CREATE STREAM cardata (car_key STRING KEY) WITH (kafka_topic='cardata', value_format='AVRO');")
out["describe"] = ksql_("DESCRIBE cardata;")
out["csas"] = ksql_("CREATE STREAM fast_cars WITH (kafka_topic='fast_cars', value_format='AVRO') AS SELECT car_key, MASK_KEEP_LEFT(car, 4) AS car, speed, coolant_temp FROM cardata WHERE speed >= 30 EMIT CHANGES;")
# Read the sink back as a Confluent client would: its registered schema, its wire format.
de = AvroDeserializer(sr)
got = []
requests.post(rest + "/consumers/avro", headers={"Content-Type": "application/vnd.kafka.v2+json"}, json={"name": "c", "format": "binary", "auto.offset.reset": "earliest"}).raise_for_status()
requests.post(rest + "/consumers/avro/instances/c/subscription", json={"topics": ["fast_cars"]}).raise_for_status()
deadline = time.time() + 20
while len(got) < 3 and time.time() < deadline:
    r = requests.get(rest + "/consumers/avro/instances/c/records?timeout=500", headers={"Accept": "application/vnd.kafka.binary.v2+json"})
    for rec in r.json():
        got.append({"key": base64.b64decode(rec["key"]).decode(), "value": de(base64.b64decode(rec["value"]), SerializationContext("fast_cars", MessageField.VALUE))})
out["sink"] = sorted(got, key=lambda g: g["key"])
out["subject"] = sr.get_latest_version("fast_cars-value").schema.schema_str
# A pull query over the Avro source, and a bad datum in the middle goes to the processing log.
requests.post(rest + "/topics/cardata", headers={"Content-Type": "application/vnd.kafka.binary.v2+json"},
              json={"records": [{"value": base64.b64encode(b"\x00\x00\x00\x00\x01garbage").decode()}]}).raise_for_status()
r = requests.post(ksql + "/query", json={"ksql": "SELECT car, speed FROM cardata;"})
out["pull"] = [x["row"]["columns"] for x in r.json() if "row" in x]
print(json.dumps(out))
"#;

#[test]
fn avro_sources_take_their_columns_from_the_registry_and_avro_sinks_register_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &["--set", "http.auto_create_partitions=2"],
    );
    let avsc = r#"{"type":"record","name":"cardata","namespace":"com.hivemq.avro","fields":[{"name":"time","type":"long"},{"name":"car","type":"string"},{"name":"speed","type":"float"},{"name":"coolant_temp","type":["null","float"],"default":null}]}"#;
    let out = py(
        AVRO_CLIENT,
        &[
            &format!("http://{}", s.addr("schema_registry")),
            s.url("").trim_end_matches('/'),
            &format!("http://{}", s.addr("ksql")),
            avsc,
        ],
    );
    assert_eq!(out["create"][0], 200, "{out}");
    let fields: Vec<String> = out["describe"][1][0]["sourceDescription"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["name"].as_str().unwrap(),
                f["schema"]["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            "CAR_KEY STRING",
            "TIME BIGINT",
            "CAR STRING",
            "SPEED DOUBLE",
            "COOLANT_TEMP DOUBLE"
        ],
        "{out}"
    );
    assert_eq!(out["csas"][0], 200, "{out}");
    let sink = out["sink"].as_array().unwrap();
    assert_eq!(sink.len(), 3, "{out}");
    assert_eq!(sink[0]["key"], "car-3");
    assert_eq!(
        sink[0]["value"],
        json!({"CAR": "car-n", "SPEED": 30.0, "COOLANT_TEMP": 90.5}),
        "{out}"
    );
    assert_eq!(sink[2]["key"], "car-5");
    assert!(
        out["subject"]
            .as_str()
            .unwrap()
            .contains("KsqlDataSourceSchema"),
        "{out}"
    );
    // The pull query reads every good datum; the garbage one is skipped.
    assert_eq!(out["pull"].as_array().unwrap().len(), 6, "{out}");
    s.stop();
}
