//! `fleetwatch serve` on the Kafka backend (a real tansu broker): the same HTTP API works
//! unchanged.

use fleetwatch_testkit::server::{Server, get_json};
use fleetwatch_testkit::tansu::bootstrap;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_works_unchanged_on_the_kafka_backend() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with_global(
        &dir.path().join("unused"),
        &["--backend", "kafka", "--bootstrap-servers", bootstrap()],
    );
    let c = reqwest::Client::new();
    let topic = format!("rest-on-kafka-{}", std::process::id());
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": topic, "partitions_count": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let r = c
        .post(s.url(&format!("/topics/{topic}")))
        .header("Content-Type", "application/vnd.kafka.json.v2+json")
        .json(&json!({"records": [{"key": "a", "value": 1}, {"key": "b", "value": 2}, {"key": "a", "value": 3}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["offsets"].as_array().unwrap().len(), 3);
    let h: Value = get_json(&c, s.url("/health")).await;
    assert_eq!(h["backend"], "kafka");
    c.post(s.url("/consumers/kg"))
        .json(&json!({"name": "k1", "format": "json", "auto.offset.reset": "earliest"}))
        .send()
        .await
        .unwrap();
    let inst = s.url("/consumers/kg/instances/k1");
    let r = c
        .post(format!("{inst}/subscription"))
        .json(&json!({"topics": [topic]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let mut got: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while got.len() < 3 && std::time::Instant::now() < deadline {
        let r = c
            .get(format!("{inst}/records?timeout=1000"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        got.extend(r.json::<Vec<Value>>().await.unwrap());
    }
    let mut vals: Vec<i64> = got.iter().map(|r| r["value"].as_i64().unwrap()).collect();
    vals.sort();
    assert_eq!(vals, vec![1, 2, 3]);
    let a: Vec<i64> = got
        .iter()
        .filter(|r| r["key"] == "a")
        .map(|r| r["value"].as_i64().unwrap())
        .collect();
    assert_eq!(a, vec![1, 3], "per-key order");
    let r = c.delete(inst).send().await.unwrap();
    assert_eq!(r.status(), 204);

    // The schema registry keeps its state in `_schemas` on the cluster too.
    let subject = format!("{topic}-value");
    let r = c
        .post(format!("{}/subjects/{subject}/versions", s.registry))
        .json(&json!({"schema": "{\"type\":\"record\",\"name\":\"K\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let latest: Value = get_json(
        &c,
        format!("{}/subjects/{subject}/versions/latest", s.registry),
    )
    .await;
    assert_eq!(latest["id"], id);
}
