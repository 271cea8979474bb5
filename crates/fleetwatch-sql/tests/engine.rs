//! The engine on the embedded log: DDL, a persistent query with PII masking, the
//! processing log, SHOW/DESCRIBE, and a restart that resumes from the command topic and the
//! checkpoint without writing any output twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use fleetwatch_core::{Log, OffsetSpec, ReadLimits, Record};
use fleetwatch_log::EmbeddedConfig;
use fleetwatch_sql::engine::{Engine, EngineConfig, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn exec(e: &Engine, sql: &str) -> Vec<Value> {
    let props: BTreeMap<String, Value> =
        [("auto.offset.reset".to_string(), Value::from("earliest"))].into();
    match e.execute(sql, &props).await {
        Ok(v) => v
            .into_iter()
            .filter_map(|o| match o {
                Outcome::Entity(v) => Some(v),
                _ => None,
            })
            .collect(),
        Err((err, text)) => panic!("{text}: {err}"),
    }
}

async fn read_all(log: &Arc<dyn Log>, topic: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for p in 0..log.partition_count(topic).await.unwrap() {
        let end = log.offset_for(topic, p, OffsetSpec::Latest).await.unwrap();
        let mut pos = 0;
        while pos < end {
            let b = log
                .read(topic, p, pos, ReadLimits::default())
                .await
                .unwrap();
            for r in &b.records {
                out.push((
                    r.record
                        .key
                        .as_ref()
                        .map(|k| String::from_utf8_lossy(k).to_string()),
                    String::from_utf8_lossy(r.record.value.as_deref().unwrap_or_default())
                        .to_string(),
                ));
            }
            pos = b.next_offset(pos);
        }
    }
    out.sort();
    out
}

async fn wait_for(log: &Arc<dyn Log>, topic: &str, n: usize) -> Vec<(Option<String>, String)> {
    for _ in 0..200 {
        let rows = read_all(log, topic).await;
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    read_all(log, topic).await
}

async fn payment(log: &Arc<dyn Log>, vin: &str, card: &str, amount: &str) {
    let v = format!(r#"{{"card":"{card}","amount":{amount},"holder":"Jane Doe"}}"#);
    log.append(
        "payments.raw",
        0,
        &[Record::new(
            Some(Bytes::from(vin.to_string())),
            Some(Bytes::from(v)),
        )],
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_query_masks_survives_a_restart_and_logs_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let log: Arc<dyn Log> = Arc::new(EmbeddedConfig::at(dir.path()).build().unwrap());
    let config = EngineConfig {
        checkpoint_interval: Duration::from_millis(10),
        ..EngineConfig::default()
    };
    let engine = Engine::new(log.clone(), config.clone());
    engine.recover().await.unwrap();
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let e = engine.clone();
        let s = stop.clone();
        async move { e.run(s).await }
    });
    let r = exec(
        &engine,
        "CREATE STREAM payments (vin STRING KEY, card STRING, amount DOUBLE, holder STRING) \
         WITH (kafka_topic='payments.raw', value_format='JSON', partitions=2);",
    )
    .await;
    assert_eq!(r[0]["commandStatus"]["message"], "Stream created");
    payment(&log, "V1", "4111111111111111", "12.5").await;
    payment(&log, "V2", "5500000000000004", "\"not a number\"").await;
    payment(&log, "V3", "340000000000009", "3").await;
    let r = exec(
        &engine,
        "CREATE STREAM payments_clean WITH (kafka_topic='payments.clean') AS \
         SELECT vin, MASK_KEEP_RIGHT(card, 4) AS card, amount, MASK(holder) AS holder FROM payments WHERE amount > 1 EMIT CHANGES;",
    )
    .await;
    let id = r[0]["commandStatus"]["queryId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(id, "CSAS_PAYMENTS_CLEAN_1");
    let rows = wait_for(&log, "payments.clean", 2).await;
    assert_eq!(
        rows,
        vec![
            (
                Some("V1".into()),
                r#"{"CARD":"nnnnnnnnnnnn1111","AMOUNT":12.5,"HOLDER":"Xxxx-Xxx"}"#.into()
            ),
            (
                Some("V3".into()),
                r#"{"CARD":"nnnnnnnnnnn0009","AMOUNT":3.0,"HOLDER":"Xxxx-Xxx"}"#.into()
            ),
        ]
    );
    // The bad row is in the processing log, naming the column and the offset.
    let plog = wait_for(&log, "default_ksql_processing_log", 1).await;
    assert_eq!(plog.len(), 1, "{plog:?}");
    let entry: Value = serde_json::from_str(&plog[0].1).unwrap();
    assert_eq!(entry["message"]["offset"], 1);
    assert!(
        entry["message"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("AMOUNT"),
        "{entry}"
    );
    let shown = exec(
        &engine,
        "SHOW QUERIES; DESCRIBE payments_clean; SHOW STREAMS;",
    )
    .await;
    assert_eq!(shown[0]["queries"][0]["id"], id.as_str());
    assert_eq!(shown[0]["queries"][0]["state"], "RUNNING");
    assert_eq!(shown[1]["sourceDescription"]["fields"][0]["name"], "VIN");
    assert_eq!(shown[1]["sourceDescription"]["fields"][0]["type"], "KEY");
    assert_eq!(shown[2]["streams"].as_array().unwrap().len(), 2);

    // Restart: a new engine over the same log gets the catalog and the query back and goes
    // on from its checkpoint: old rows are not written again, new ones are.
    stop.cancel();
    run.await.unwrap().unwrap();
    drop(engine);
    let engine = Engine::new(log.clone(), config);
    assert_eq!(engine.recover().await.unwrap(), 2);
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let e = engine.clone();
        let s = stop.clone();
        async move { e.run(s).await }
    });
    payment(&log, "V4", "6011000000000004", "40").await;
    let rows = wait_for(&log, "payments.clean", 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows_later = read_all(&log, "payments.clean").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows_later, rows);
    assert_eq!(rows[2].0.as_deref(), Some("V4"));

    // Statement errors name what is wrong before anything runs.
    let err = engine
        .execute("SELECT nope FROM payments EMIT CHANGES;", &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.0.to_string().contains("NOPE"), "{}", err.0);
    let err = engine
        .execute("SELECT * FROM nowhere EMIT CHANGES;", &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(
        err.0.to_string().contains("NOWHERE does not exist"),
        "{}",
        err.0
    );
    let err = engine
        .execute(
            "SELECT NO_SUCH_FN(card) FROM payments EMIT CHANGES;",
            &BTreeMap::new(),
        )
        .await
        .unwrap_err();
    assert!(err.0.to_string().contains("NO_SUCH_FN"), "{}", err.0);
    let err = engine
        .execute("DROP STREAM payments;", &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.0.to_string().contains(&id), "{}", err.0);
    exec(
        &engine,
        &format!("TERMINATE {id}; DROP STREAM payments_clean;"),
    )
    .await;
    assert!(engine.catalog().get("PAYMENTS_CLEAN").is_none());
    stop.cancel();
    run.await.unwrap().unwrap();
}
