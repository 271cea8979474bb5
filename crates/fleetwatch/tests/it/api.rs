//! Helpers the black-box tests share.

use fleetwatch_testkit::server::Server;
use serde_json::{Value, json};

pub const JSON_V2: &str = "application/vnd.kafka.json.v2+json";

/// Creates a topic through the v3 API (retention one hour), asserting 201.
pub async fn create_topic(c: &reqwest::Client, s: &Server, name: &str, partitions: i32) {
    let r = c
        .post(s.url("/v3/clusters/fleetwatch/topics"))
        .json(&json!({"topic_name": name, "partitions_count": partitions,
                      "configs": [{"name": "retention.ms", "value": "3600000"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Status, `error_code` and `message` of an error answer (panics, showing the body, if it is
/// not in that shape).
pub async fn error_of(r: reqwest::Response) -> (u16, u64, String) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (
        status,
        v["error_code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no error_code: {v}")),
        v["message"].as_str().unwrap().to_string(),
    )
}

/// Creates consumer instance `i` of `group` with these settings, asserting 200; returns its
/// base URL.
pub async fn consumer(c: &reqwest::Client, s: &Server, group: &str, settings: Value) -> String {
    let mut body = settings;
    body["name"] = json!("i");
    let r = c
        .post(s.url(&format!("/consumers/{group}")))
        .header("Content-Type", "application/vnd.kafka.v2+json")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    s.url(&format!("/consumers/{group}/instances/i"))
}

/// Runs a Python script (`FLEETWATCH_PYTHON`, with the venv's clients) and parses the JSON
/// it prints; a failing script fails the test with its stderr.
pub fn py(script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(fleetwatch_testkit::tansu::python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every record of `topic` in the embedded data directory `data` (no server may own it),
/// partition by partition, in offset order.
pub async fn read_topic(
    data: &std::path::Path,
    topic: &str,
) -> Vec<fleetwatch_core::ConsumedRecord> {
    use fleetwatch_core::{LogAdmin, LogData, OffsetSpec, ReadLimits};
    let log = fleetwatch_log::EmbeddedConfig::at(data).build().unwrap();
    let mut all = Vec::new();
    for p in 0..log.partition_count(topic).await.unwrap() {
        let mut next = log
            .offset_for(topic, p, OffsetSpec::Earliest)
            .await
            .unwrap();
        loop {
            let b = log
                .read(topic, p, next, ReadLimits::default())
                .await
                .unwrap();
            if b.records.is_empty() {
                break;
            }
            next = b.next_offset(next);
            all.extend(b.records);
        }
    }
    all
}

/// Blocking HTTP through reqwest on a throwaway runtime (these tests are synchronous).
pub fn http(method: &str, url: &str, content_type: &str, body: String) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let req = match method {
            "GET" => c.get(url),
            _ => c.post(url).header("content-type", content_type).body(body),
        };
        req.send().await.unwrap().text().await.unwrap()
    })
}

/// The value of one sample on `/metrics` (`name{labels}` exactly as exposed), if present.
pub fn metric(s: &Server, sample: &str) -> Option<f64> {
    let text = http("GET", &s.url("/metrics"), "", String::new());
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
