//! The Schema Registry against Python `confluent-kafka`: its `SchemaRegistryClient`, Avro and
//! JSON serializers; bytes made by the Python serializer read by `fleetwatch consume`, and
//! bytes made by `fleetwatch produce` read by the Python deserializer; state across a
//! restart.

use crate::api::py;
use fleetwatch_testkit::server::{Server, get_json, run_cli};
use serde_json::{Value, json};

const AVSC: &str = r#"{"type":"record","name":"CarReading","namespace":"fleetwatch","fields":[{"name":"car","type":"string"},{"name":"speed","type":"double"},{"name":"tags","type":{"type":"array","items":"string"},"default":[]},{"name":"note","type":["null","string"],"default":null}]}"#;

const CLIENT: &str = r#"
import base64, json, sys
from confluent_kafka.schema_registry import SchemaRegistryClient, Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroSerializer, AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer, JSONDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField

url, avsc = sys.argv[1], sys.argv[2]
sr = SchemaRegistryClient({"url": url})
out = {}
sid = sr.register_schema("cars-value", Schema(avsc, "AVRO"))
out["id"] = sid
out["id_again"] = sr.register_schema("cars-value", Schema(avsc, "AVRO"))
out["id_other_subject"] = sr.register_schema("cars-copy-value", Schema(avsc, "AVRO"))
found = sr.lookup_schema("cars-value", Schema(avsc, "AVRO"))
out["lookup"] = [found.schema_id, found.version]
latest = sr.get_latest_version("cars-value")
out["latest"] = [latest.schema_id, latest.version]
out["subjects"] = sorted(sr.get_subjects())
bad = json.loads(avsc)
bad["fields"].append({"name": "must", "type": "int"})
try:
    sr.register_schema("cars-value", Schema(json.dumps(bad), "AVRO"))
    out["incompatible"] = "accepted"
except SchemaRegistryError as e:
    out["incompatible"] = [e.http_status_code, e.error_code, e.error_message]
sr.set_compatibility("cars-copy-value", "FULL")
out["compat"] = sr.get_compatibility("cars-copy-value")
out["deleted"] = sr.delete_subject("cars-copy-value")
out["subjects_after"] = sorted(sr.get_subjects())
try:
    sr.get_latest_version("no-such-subject")
except SchemaRegistryError as e:
    out["missing"] = [e.http_status_code, e.error_code]

ctx = SerializationContext("cars", MessageField.VALUE)
ser = AvroSerializer(sr, avsc)
de = AvroDeserializer(sr)
records = [{"car": "c%d" % i, "speed": 10.5 * i, "tags": ["t%d" % i], "note": None if i % 2 else "n%d" % i} for i in range(5)]
blobs = [ser(r, ctx) for r in records]
out["avro_round_trip"] = [de(b, ctx) for b in blobs] == records
out["avro_b64"] = [base64.b64encode(b).decode() for b in blobs]
out["avro_records"] = records

js = json.dumps({"type": "object", "properties": {"car": {"type": "string"}, "rpm": {"type": "integer"}}, "required": ["car"]})
jctx = SerializationContext("rpm", MessageField.VALUE)
jser = JSONSerializer(js, sr)
jde = JSONDeserializer(js)
doc = {"car": "c1", "rpm": 3000}
jb = jser(doc, jctx)
out["json_round_trip"] = jde(jb, jctx) == doc
out["json_b64"] = base64.b64encode(jb).decode()
print(json.dumps(out))
"#;

const READER: &str = r#"
import base64, json, sys
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import SerializationContext, MessageField
url, blobs = sys.argv[1], json.loads(sys.argv[2])
de = AvroDeserializer(SchemaRegistryClient({"url": url}))
ctx = SerializationContext("fw", MessageField.VALUE)
print(json.dumps([de(base64.b64decode(b), ctx) for b in blobs]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_client_and_serializers_work_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[]);
    let out = py(CLIENT, &[&s.registry, AVSC]);
    let id = out["id"].as_i64().unwrap();
    assert_eq!(out["id_again"], id, "same schema, same id");
    assert_eq!(out["id_other_subject"], id, "same id under another subject");
    assert_eq!(out["lookup"], json!([id, 1]));
    assert_eq!(out["latest"], json!([id, 1]));
    assert_eq!(out["subjects"], json!(["cars-copy-value", "cars-value"]));
    assert_eq!(out["incompatible"][0], 409, "{out}");
    assert!(
        out["incompatible"][2].as_str().unwrap().contains("must"),
        "{out}"
    );
    assert_eq!(out["compat"], "FULL");
    assert_eq!(out["deleted"], json!([1]));
    assert_eq!(out["subjects_after"], json!(["cars-value"]));
    assert_eq!(out["missing"], json!([404, 40401]));
    assert_eq!(out["avro_round_trip"], true);
    assert_eq!(out["json_round_trip"], true);

    // The Python serializer's bytes, produced through the REST API…
    let c = reqwest::Client::new();
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": "cars"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut records: Vec<Value> = out["avro_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"value": b}))
        .collect();
    records.push(json!({"value": out["json_b64"]}));
    records.push(json!({"value": "AQAAAAFoaQ=="})); // magic byte 1: not the wire format
    records.push(json!({"value": "AAAAJw9oaQ=="})); // schema id 9999: not registered
    let r = c
        .post(s.url("/topics/cars/partitions/0"))
        .header("Content-Type", "application/vnd.kafka.binary.v2+json")
        .json(&json!({"records": records}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.stop().success());

    // …are decoded by `fleetwatch consume --value-format avro`.
    let (ok, stdout, err) = run_cli(
        &data,
        &[
            "consume",
            "-t",
            "cars",
            "--from-beginning",
            "--value-format",
            "avro",
            "--idle-timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok, "{err}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    let decoded: Vec<&Value> = lines[..5].iter().map(|l| &l["value"]).collect();
    let want: Vec<&Value> = out["avro_records"].as_array().unwrap().iter().collect();
    assert_eq!(decoded, want);
    assert_eq!(lines[0]["schema_id"], id);
    assert_eq!(
        lines[5]["value"],
        json!({"car": "c1", "rpm": 3000}),
        "JSON Schema values decode too"
    );
    assert!(
        lines[6]["value_error"]
            .as_str()
            .unwrap()
            .contains("magic byte 0x01"),
        "{}",
        lines[6]
    );

    // `fleetwatch produce --value-format avro` registers and encodes; Python decodes.
    let avsc = dir.path().join("car.avsc");
    std::fs::write(&avsc, AVSC).unwrap();
    assert!(run_cli(&data, &["topics", "create", "fw"], "").0);
    let (ok, _, err) = run_cli(
        &data,
        &[
            "produce",
            "-t",
            "fw",
            "--value-format",
            "avro",
            "--schema",
            avsc.to_str().unwrap(),
        ],
        "{\"car\":\"z1\",\"speed\":1.5}\n{\"car\":\"z2\",\"speed\":2,\"note\":\"x\",\"tags\":[\"a\"]}\n",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = run_cli(
        &data,
        &[
            "produce",
            "-t",
            "fw",
            "--value-format",
            "avro",
            "--schema",
            avsc.to_str().unwrap(),
        ],
        "{\"car\":\"z3\"}\n",
    );
    assert!(!ok);
    assert!(
        err.contains("stdin line 1") && err.contains("speed"),
        "{err}"
    );

    // After a restart: the same ids, subjects and versions.
    let s = Server::start(&data, &[]);
    let by_id: Value = get_json(&c, format!("{}/schemas/ids/{id}", s.registry)).await;
    assert!(by_id["schema"].as_str().unwrap().contains("CarReading"));
    let subjects: Value = get_json(&c, format!("{}/subjects", s.registry)).await;
    assert_eq!(subjects, json!(["cars-value", "fw-value", "rpm-value"]));
    let fw: Value = get_json(
        &c,
        format!("{}/subjects/fw-value/versions/latest", s.registry),
    )
    .await;
    assert_eq!(
        fw["id"], id,
        "fleetwatch produce registered the same schema: same id"
    );

    // read the fw records raw over REST and decode them in Python
    c.post(s.url("/consumers/py"))
        .json(&json!({"name": "r", "format": "binary", "auto.offset.reset": "earliest"}))
        .send()
        .await
        .unwrap();
    let inst = s.url("/consumers/py/instances/r");
    c.post(format!("{inst}/subscription"))
        .json(&json!({"topics": ["fw"]}))
        .send()
        .await
        .unwrap();
    let mut blobs = Vec::new();
    for _ in 0..10 {
        let got: Vec<Value> = get_json(&c, format!("{inst}/records?timeout=300")).await;
        blobs.extend(got.into_iter().map(|r| r["value"].clone()));
        if blobs.len() >= 2 {
            break;
        }
    }
    let decoded = py(READER, &[&s.registry, &Value::Array(blobs).to_string()]);
    assert_eq!(
        decoded,
        json!([
            {"car": "z1", "speed": 1.5, "tags": [], "note": null},
            {"car": "z2", "speed": 2.0, "tags": ["a"], "note": "x"}
        ])
    );
}

#[tokio::test]
async fn registry_errors_are_confluent_shaped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"), &[]);
    let c = reqwest::Client::new();
    let sr = &s.registry;
    let post = |path: &str, body: Value| {
        c.post(format!("{sr}{path}"))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&body)
            .send()
    };
    let err = |r: reqwest::Response| async move {
        let st = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        (
            st,
            v["error_code"].as_u64().unwrap(),
            v["message"].as_str().unwrap().to_string(),
        )
    };
    let (st, code, msg) = err(post(
        "/subjects/s/versions",
        json!({"schema": "{\"type\":\"recrd\"}"}),
    )
    .await
    .unwrap())
    .await;
    assert_eq!((st, code), (422, 42201));
    assert!(msg.contains("recrd"), "{msg}");
    let (st, code, _) = err(post(
        "/subjects/s/versions",
        json!({"schema": "{}", "schemaType": "XML"}),
    )
    .await
    .unwrap())
    .await;
    assert_eq!((st, code), (422, 42201));
    let (st, code, _) = err(c
        .get(format!("{sr}/subjects/nope/versions/1"))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!((st, code), (404, 40401));
    let (st, code, _) = err(c.get(format!("{sr}/schemas/ids/77")).send().await.unwrap()).await;
    assert_eq!((st, code), (404, 40403));
    let (st, code, _) = err(c
        .put(format!("{sr}/config"))
        .json(&json!({"compatibility": "SIDEWAYS"}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!((st, code), (422, 42203));
    let (st, code, _) = err(c
        .put(format!("{sr}/mode"))
        .json(&json!({"mode": "LOUD"}))
        .send()
        .await
        .unwrap())
    .await;
    assert_eq!((st, code), (422, 42204));
    let (st, code, _) = err(post("/subjects/s/versions", json!({"nope": 1}))
        .await
        .unwrap())
    .await;
    assert_eq!(st, 400, "{code}");
    // the registry keeps serving
    let r = post("/subjects/s/versions", json!({"schema": "\"string\""}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.schemaregistry.v1+json"
    );
    let types: Value = get_json(&c, format!("{sr}/schemas/types")).await;
    assert_eq!(types, json!(["JSON", "AVRO"]));
    let v: Value = c
        .post(format!(
            "{sr}/compatibility/subjects/s/versions/latest?verbose=True"
        ))
        .json(&json!({"schema": "\"int\""}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["is_compatible"], false);
    assert!(!v["messages"].as_array().unwrap().is_empty());
}
