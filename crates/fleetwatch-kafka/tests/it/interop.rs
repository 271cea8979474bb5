//! Records written by fleetwatch are read by Python `confluent-kafka` with the same keys,
//! partitions and values, and the reverse; keyed partitions agree with Kafka's murmur2.

use bytes::Bytes;
use fleetwatch_core::partitioner::partition_for_key;
use fleetwatch_core::{LogAdmin, LogData, ReadLimits, Record, TopicConfig};
use fleetwatch_kafka::KafkaConfig;
use fleetwatch_testkit::tansu::{bootstrap, python};
use std::process::Command;
use std::time::Duration;

const READER: &str = r#"
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
b, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": b, "group.id": "py-" + topic, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "fetch.wait.max.ms": 10})
c.assign([TopicPartition(topic, p, 0) for p in range(4)])
out, deadline = [], time.time() + 60
while len(out) < n and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    out.append({"p": m.partition(), "o": m.offset(), "k": m.key().decode(), "v": m.value().decode(),
                "h": [[k, v.decode() if v is not None else None] for k, v in (m.headers() or [])]})
print(json.dumps(out))
"#;

const WRITER: &str = r#"
import sys
from confluent_kafka import Producer
b, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": b, "partitioner": "murmur2_random"})
for i in range(n):
    p.produce(topic, key=("car-%d" % i).encode(), value=("py-%d" % i).encode())
assert p.flush(30) == 0
"#;

fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_reads_what_fleetwatch_wrote() {
    let log = KafkaConfig::at(bootstrap()).build().unwrap();
    let topic = format!("interop-out-{}", std::process::id());
    log.create_topic(&topic, TopicConfig::with_partitions(4))
        .await
        .unwrap();
    let n = 40;
    let mut expected = Vec::new();
    for i in 0..n {
        let key = format!("car-{i}");
        let p = partition_for_key(key.as_bytes(), 4);
        let rec = Record::new(
            Some(Bytes::from(key.clone())),
            Some(Bytes::from(format!("fw-{i}"))),
        )
        .with_header("source", Some(Bytes::from_static(b"fleetwatch")));
        let ack = log.append(&topic, p, &[rec]).await.unwrap();
        expected.push((p, ack.offsets[0], key, format!("fw-{i}")));
    }
    let got: Vec<serde_json::Value> =
        serde_json::from_str(&run_python(READER, &[bootstrap(), &topic, &n.to_string()])).unwrap();
    assert_eq!(got.len(), n);
    for (p, o, k, v) in expected {
        let m = got
            .iter()
            .find(|m| m["k"] == k)
            .unwrap_or_else(|| panic!("python did not see key {k}"));
        assert_eq!(m["p"], p, "partition of {k}");
        assert_eq!(m["o"], o, "offset of {k}");
        assert_eq!(m["v"], v);
        assert_eq!(m["h"], serde_json::json!([["source", "fleetwatch"]]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetwatch_reads_what_python_wrote_on_the_same_partitions() {
    let log = KafkaConfig::at(bootstrap()).build().unwrap();
    let topic = format!("interop-in-{}", std::process::id());
    log.create_topic(&topic, TopicConfig::with_partitions(4))
        .await
        .unwrap();
    let n = 40;
    run_python(WRITER, &[bootstrap(), &topic, &n.to_string()]);
    let mut seen = 0;
    for p in 0..4 {
        let mut next = 0;
        loop {
            let b = log
                .read(
                    &topic,
                    p,
                    next,
                    ReadLimits::waiting(Duration::from_millis(500)),
                )
                .await
                .unwrap();
            if b.records.is_empty() {
                break;
            }
            next = b.next_offset(next);
            for r in b.records {
                let key = r.record.key.unwrap();
                assert_eq!(
                    partition_for_key(&key, 4),
                    p,
                    "python put {:?} on partition {p}; fleetwatch's murmur2 disagrees",
                    String::from_utf8_lossy(&key)
                );
                let i: usize = String::from_utf8_lossy(&key)[4..].parse().unwrap();
                assert_eq!(r.record.value.unwrap(), Bytes::from(format!("py-{i}")));
                seen += 1;
            }
        }
    }
    assert_eq!(seen, n);
}
