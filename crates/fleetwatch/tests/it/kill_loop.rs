//! SIGKILL `serve` in the middle of a produce load, again and again; every acknowledged
//! record must be there afterwards, at its acknowledged offset, in order, exactly once.
//! `FLEETWATCH_KILL_LOOPS` sets the number of kills (default 10; CI runs 50).

use fleetwatch_testkit::server::Server;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_survives_sigkill_loops() {
    let loops: usize = std::env::var("FLEETWATCH_KILL_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c = reqwest::Client::new();
    let mut acked: Vec<(i32, i64, String)> = Vec::new();
    let mut next_id = 0u64;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..loops {
        let s = Server::start(&data, &["--log-level", "error"]);
        if round == 0 {
            let r = c
                .post(s.url("/v3/clusters/fleetwatch/topics"))
                .json(&json!({"topic_name": "load", "partitions_count": 2}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let c = c.clone();
            let url = s.url("/topics/load");
            let stop = stop.clone();
            let start_id = next_id;
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut id = start_id;
                while !stop.load(Ordering::SeqCst) {
                    let n = 1 + (id % 4) as usize;
                    let records: Vec<Value> = (0..n)
                        .map(|k| json!({"key": format!("k{}", (id + k as u64) % 7), "value": format!("v{}", id + k as u64)}))
                        .collect();
                    let sent: Vec<String> = (0..n).map(|k| format!("v{}", id + k as u64)).collect();
                    id += n as u64;
                    let resp = c
                        .post(&url)
                        .header("Content-Type", "application/vnd.kafka.json.v2+json")
                        .json(&json!({"records": records}))
                        .send()
                        .await;
                    let Ok(resp) = resp else { break };
                    if resp.status() != 200 {
                        break;
                    }
                    let Ok(body) = resp.json::<Value>().await else {
                        break;
                    };
                    for (o, v) in body["offsets"].as_array().unwrap().iter().zip(sent) {
                        got.push((
                            o["partition"].as_i64().unwrap() as i32,
                            o["offset"].as_i64().unwrap(),
                            v,
                        ));
                    }
                }
                (got, id)
            })
        };
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        tokio::time::sleep(Duration::from_millis(80 + (seed >> 33) % 250)).await;
        s.kill();
        stop.store(true, Ordering::SeqCst);
        let (got, id) = producer.await.unwrap();
        assert!(
            round > 0 || !got.is_empty(),
            "the producer got no acknowledgement at all"
        );
        acked.extend(got);
        next_id = id;
    }
    // Open the data directory directly and check.
    let mut stored: HashMap<String, Vec<(i32, i64)>> = HashMap::new();
    for r in crate::api::read_topic(&data, "load").await {
        let v = String::from_utf8(r.record.value.unwrap().to_vec()).unwrap();
        stored.entry(v).or_default().push((r.partition, r.offset));
    }
    for (v, places) in &stored {
        assert_eq!(places.len(), 1, "{v} stored more than once: {places:?}");
    }
    let mut last: HashMap<i32, i64> = HashMap::new();
    for (p, o, v) in &acked {
        let v = format!("\"{v}\"");
        let places = stored
            .get(&v)
            .unwrap_or_else(|| panic!("acknowledged {v} at {p}/{o} is lost"));
        assert_eq!(places[0], (*p, *o), "{v} acknowledged at {p}/{o}");
        let prev = last.insert(*p, *o);
        assert!(
            prev.is_none_or(|x| x < *o),
            "acknowledgements out of order on partition {p}"
        );
    }
    println!(
        "kill loop: {loops} SIGKILLs, {} acknowledged records all present",
        acked.len()
    );
}
