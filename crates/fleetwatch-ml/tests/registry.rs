//! The model registry in the log: chunked bundles larger than the record limit round-trip
//! on both backends, the cache is rebuilt from the topic, aliases and rollback follow the
//! event history, a broken version never takes production from a good one, names follow
//! their rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use fleetwatch_core::{Header, Log, OffsetSpec, ReadLimits, Record};
use fleetwatch_ml::bundle::Bundle;
use fleetwatch_ml::data::{FrozenRange, PartitionRange};
use fleetwatch_ml::options::ModelOptions;
use fleetwatch_ml::registry::{
    self, ModelRef, ModelRegistry, PRODUCTION, TrafficArm, TrafficSplit, VersionStatus,
};
use fleetwatch_ml::table::Table;
use fleetwatch_ml::train::fit_table;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A bundle of `model_type` fitted on 4,000 rows of a noisy plane (seeded).
fn bundle(model_type: &str, extra: &[(&str, Value)], seed: u64) -> Bundle {
    let mut rng = fleetwatch_sim::rng::Rng::seed_from_u64(seed);
    let mut next = move || rng.range(-1.0, 1.0);
    let names = ["a", "b", "c", "d"];
    let mut values = Vec::new();
    for _ in 0..4000 {
        let (x, y) = (next() * 10.0, next() * 5.0);
        values.extend([x, y, x + y + next() * 0.1, x - 2.0 * y + next() * 0.1]);
    }
    let table = Table::from_rows(&names, &values);
    let mut options: BTreeMap<String, Value> = BTreeMap::new();
    options.insert("model_type".into(), json!(model_type));
    options.insert("seed".into(), json!(seed));
    for (k, v) in extra {
        options.insert((*k).into(), v.clone());
    }
    let opts = ModelOptions::parse(&options).unwrap();
    let range = FrozenRange {
        topic: "t".into(),
        partitions: vec![PartitionRange {
            partition: 0,
            start: 0,
            end: 4000,
        }],
    };
    fit_table(&table, None, &opts, range, &mut |_| {})
        .unwrap()
        .bundle
}

/// Chunk events in the registry topic.
async fn chunks(log: &dyn Log) -> Vec<Record> {
    let end = log
        .offset_for(registry::TOPIC, 0, OffsetSpec::Latest)
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at < end {
        let b = log
            .read(
                registry::TOPIC,
                0,
                at,
                ReadLimits {
                    max_records: 100,
                    max_bytes: 64 << 20,
                    max_wait: Duration::from_millis(100),
                },
            )
            .await
            .unwrap();
        for c in b.records {
            at = c.offset + 1;
            if c.record
                .headers
                .iter()
                .any(|h| h.key == "fw.model.event" && h.value.as_deref() == Some(b"chunk"))
            {
                out.push(c.record);
            }
        }
    }
    out
}

/// A 200-tree forest (> 1 MiB) round-trips through chunks; a second registry on the same log
/// with an empty cache rebuilds it; a corrupted cache file is rebuilt on read.
async fn big_bundle_round_trips(log: Arc<dyn Log>, name: &str) {
    let forest = bundle(
        "isolation_forest",
        &[("num_trees", json!(200)), ("max_samples", json!(1024))],
        3,
    );
    let bytes: usize = forest.blobs.values().map(Vec::len).sum();
    assert!(
        bytes > 1 << 20,
        "the forest must exceed the 1 MiB record limit: {bytes} bytes"
    );
    let cache1 = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open(log.clone(), cache1.path())
        .await
        .unwrap();
    let v = reg.register(name, &forest).await.unwrap();
    assert_eq!(v, 1);
    let n_chunks = chunks(log.as_ref()).await.len();
    assert!(
        n_chunks >= bytes.div_ceil(registry::CHUNK_BYTES),
        "{n_chunks} chunks for {bytes} bytes"
    );
    let back = reg.bundle(name, 1).await.unwrap();
    assert_eq!(back.digest(), forest.digest());
    assert_eq!(back.blobs, forest.blobs);

    // Another process with an empty cache: everything comes from the topic.
    let cache2 = tempfile::tempdir().unwrap();
    let reg2 = ModelRegistry::open(log.clone(), cache2.path())
        .await
        .unwrap();
    let dir = cache2.path().join(name).join("1");
    assert!(
        dir.join("manifest.json").is_file(),
        "open() materialises every ready version"
    );
    let info = reg2.model(name).await.unwrap();
    assert_eq!(info.versions[&1].status, VersionStatus::Ready);
    assert_eq!(
        info.aliases[PRODUCTION].version, 1,
        "the first version becomes production"
    );
    // A torn cache file (as after a crash mid-write) is detected and rebuilt from the log.
    let weights = dir.join(fleetwatch_ml::bundle::WEIGHTS);
    let mut w = std::fs::read(&weights).unwrap();
    w.truncate(w.len() / 2);
    std::fs::write(&weights, &w).unwrap();
    let rebuilt = reg2.bundle(name, 1).await.unwrap();
    assert_eq!(rebuilt.digest(), forest.digest());
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        forest.blobs[fleetwatch_ml::bundle::WEIGHTS]
    );
    // The same after a restart: a third open over the torn cache rewrites it.
    std::fs::write(&weights, b"garbage").unwrap();
    drop(reg2);
    let reg3 = ModelRegistry::open(log.clone(), cache2.path())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        forest.blobs[fleetwatch_ml::bundle::WEIGHTS]
    );
    assert_eq!(
        reg3.bundle(name, 1).await.unwrap().digest(),
        forest.digest()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_bundle_round_trips_on_the_embedded_log() {
    let (log, _dir) = common::embedded();
    big_bundle_round_trips(log, "forest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_bundle_round_trips_on_kafka() {
    let addr = tokio::task::spawn_blocking(fleetwatch_testkit::tansu::bootstrap)
        .await
        .unwrap();
    let log: Arc<dyn Log> = Arc::new(fleetwatch_kafka::KafkaConfig::at(addr).build().unwrap());
    // The registry topic is shared by the broker's tests: a name of this run's own.
    let name = format!("forest-{}", std::process::id());
    let forest = bundle(
        "isolation_forest",
        &[("num_trees", json!(200)), ("max_samples", json!(1024))],
        3,
    );
    let cache = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open(log.clone(), cache.path())
        .await
        .unwrap();
    let before = chunks(log.as_ref()).await.len();
    let v = reg.register(&name, &forest).await.unwrap();
    assert!(chunks(log.as_ref()).await.len() - before >= 3);
    let cache2 = tempfile::tempdir().unwrap();
    let reg2 = ModelRegistry::open(log.clone(), cache2.path())
        .await
        .unwrap();
    assert_eq!(reg2.bundle(&name, v).await.unwrap().blobs, forest.blobs);
    assert_eq!(
        reg2.resolve(&ModelRef::parse(&name).unwrap())
            .await
            .unwrap()
            .version,
        v
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_and_rollback_follow_the_history() {
    let (log, _dir) = common::embedded();
    let cache = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open(log.clone(), cache.path())
        .await
        .unwrap();
    for seed in 1..=3 {
        let v = reg
            .register(
                "engine",
                &bundle("kmeans", &[("num_clusters", json!(3))], seed),
            )
            .await
            .unwrap();
        assert_eq!(v, seed as i64);
    }
    let r = |s: &str| ModelRef::parse(s).unwrap();
    assert_eq!(
        reg.resolve(&r("engine")).await.unwrap().version,
        1,
        "only the first version takes production by itself"
    );
    assert_eq!(reg.promote(&r("engine@2")).await.unwrap(), 2);
    assert_eq!(reg.promote(&r("engine@3")).await.unwrap(), 3);
    assert_eq!(
        reg.model("engine").await.unwrap().production_history,
        vec![1, 2, 3]
    );
    assert_eq!(reg.rollback("engine").await.unwrap(), 2);
    assert_eq!(reg.resolve(&r("engine")).await.unwrap().version, 2);
    assert_eq!(reg.rollback("engine").await.unwrap(), 1);
    assert!(
        reg.rollback("engine").await.is_err(),
        "nothing before the first holder"
    );
    // A canary with a threshold override: retuning needs no new version.
    reg.move_alias("engine", "canary", 3, Some(4.5))
        .await
        .unwrap();
    let c = reg.resolve(&r("engine@canary")).await.unwrap();
    assert_eq!(
        (c.version, c.alias.as_deref(), c.threshold),
        (3, Some("canary"), 4.5)
    );
    let v3 = reg.resolve(&r("engine@3")).await.unwrap();
    assert_eq!(v3.alias, None, "an explicit version goes past every alias");
    assert_ne!(
        v3.threshold, 4.5,
        "an explicit version uses its own threshold"
    );
    assert_eq!(reg.promote(&r("engine@canary")).await.unwrap(), 3);
    // Another registry replaying the same log sees the same state.
    let cache2 = tempfile::tempdir().unwrap();
    let again = ModelRegistry::open(log.clone(), cache2.path())
        .await
        .unwrap();
    let m = again.model("engine").await.unwrap();
    assert_eq!(m.production_history, vec![1, 3]);
    assert_eq!(m.aliases["canary"].threshold, Some(4.5));
    assert_eq!(again.rollback("engine").await.unwrap(), 1);
    // Delete: production cannot go while others exist; a deleted version's number is never reused.
    assert!(reg.delete("engine", Some(1)).await.is_err());
    reg.delete("engine", Some(2)).await.unwrap();
    assert!(reg.resolve(&r("engine@2")).await.is_err());
    let v4 = reg
        .register(
            "engine",
            &bundle("kmeans", &[("num_clusters", json!(3))], 9),
        )
        .await
        .unwrap();
    assert_eq!(v4, 4);
    reg.remove_alias("engine", "canary").await.unwrap();
    assert!(reg.resolve(&r("engine@canary")).await.is_err());
    reg.delete("engine", None).await.unwrap();
    assert!(reg.model("engine").await.is_err());
    assert!(reg.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_version_keeps_the_previous_production() {
    let (log, _dir) = common::embedded();
    let cache = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open(log.clone(), cache.path())
        .await
        .unwrap();
    let good = bundle("kmeans", &[("num_clusters", json!(2))], 1);
    reg.register("pay", &good).await.unwrap();
    // Version 2: a corrupt chunk (one byte flipped), written as a registering process would.
    let other = bundle("kmeans", &[("num_clusters", json!(2))], 2);
    let hdr = |k: &str, v: &str| Header {
        key: k.into(),
        value: Some(Bytes::from(v.to_string())),
    };
    let mut weights = other.blobs[fleetwatch_ml::bundle::WEIGHTS].clone();
    weights[40] ^= 0xff;
    let key = Some(Bytes::from_static(b"pay"));
    let mut chunk = Record::new(key.clone(), Some(Bytes::from(weights)));
    chunk.headers = vec![
        hdr("fw.model.event", "chunk"),
        hdr("fw.model.upload", "u2"),
        hdr("fw.model.blob", fleetwatch_ml::bundle::WEIGHTS),
        hdr("fw.model.chunk", "0/1"),
    ];
    log.append(registry::TOPIC, 0, &[chunk]).await.unwrap();
    let created = |version: i64, upload: &str| {
        let v = json!({"version": version, "upload": upload, "manifest": serde_json::to_value(&other.manifest).unwrap()});
        let mut r = Record::new(
            key.clone(),
            Some(Bytes::from(serde_json::to_vec(&v).unwrap())),
        );
        r.headers = vec![
            hdr("fw.model.event", "version_created"),
            hdr("fw.model.upload", upload),
        ];
        r
    };
    log.append(registry::TOPIC, 0, &[created(2, "u2")])
        .await
        .unwrap();
    // Version 3: its chunks never made it to the log.
    log.append(registry::TOPIC, 0, &[created(3, "u3")])
        .await
        .unwrap();

    let m = reg.model("pay").await.unwrap();
    match &m.versions[&2].status {
        VersionStatus::Broken(reason) => assert!(reason.contains("sha256"), "{reason}"),
        s => panic!("v2 should be broken: {s:?}"),
    }
    match &m.versions[&3].status {
        VersionStatus::Broken(reason) => assert!(reason.contains("no chunks"), "{reason}"),
        s => panic!("v3 should be broken: {s:?}"),
    }
    assert_eq!(
        reg.resolve(&ModelRef::parse("pay").unwrap())
            .await
            .unwrap()
            .version,
        1,
        "production stays on v1"
    );
    let err = reg
        .promote(&ModelRef::parse("pay@2").unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken"), "{err}");
    assert!(reg.bundle("pay", 2).await.is_err());
    assert_eq!(reg.bundle("pay", 1).await.unwrap().digest(), good.digest());
    // The next registration still gets a fresh number.
    assert_eq!(reg.register("pay", &other).await.unwrap(), 4);
}

#[test]
fn names_and_aliases_follow_their_rules() {
    for bad in ["", "Engine", "engine model", "a/b", &"x".repeat(129)] {
        let e = registry::check_name(bad).unwrap_err().to_string();
        assert!(e.contains("[a-z0-9_.-]{1,128}"), "{bad:?}: {e}");
    }
    for good in ["engine", "fraud.v2", "a-b_c", "3"] {
        registry::check_name(good).unwrap();
    }
    for bad in ["3", "3x", "Canary", "-x", &"a".repeat(65)] {
        let e = registry::check_alias(bad).unwrap_err().to_string();
        assert!(e.contains("[a-z][a-z0-9_.-]{0,63}"), "{bad:?}: {e}");
    }
    assert!(
        registry::check_alias("archived")
            .unwrap_err()
            .to_string()
            .contains("version flag")
    );
    registry::check_alias("canary").unwrap();
    assert_eq!(
        ModelRef::parse("m@3").unwrap(),
        ModelRef::Version("m".into(), 3)
    );
    assert_eq!(
        ModelRef::parse("m@canary").unwrap(),
        ModelRef::Alias("m".into(), "canary".into())
    );
    assert_eq!(ModelRef::parse("m").unwrap(), ModelRef::Model("m".into()));
    assert!(ModelRef::parse("M@3").is_err());
    assert!(ModelRef::parse("m@").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_split_and_archived_versions() {
    let (log, _dir) = common::embedded();
    let cache = tempfile::tempdir().unwrap();
    let reg = ModelRegistry::open(log.clone(), cache.path())
        .await
        .unwrap();
    for seed in 1..=3 {
        reg.register(
            "fraud",
            &bundle("kmeans", &[("num_clusters", json!(2))], seed),
        )
        .await
        .unwrap();
    }
    reg.move_alias("fraud", "canary", 2, None).await.unwrap();
    let split = |pairs: &[(&str, u32)], salt: &str| TrafficSplit {
        arms: pairs
            .iter()
            .map(|(t, w)| TrafficArm {
                target: (*t).to_string(),
                weight_bp: *w,
            })
            .collect(),
        shadows: Vec::new(),
        salt: salt.into(),
    };
    // Bad splits are named.
    let e = reg
        .set_traffic(
            "fraud",
            &split(&[("production", 9000), ("canary", 2000)], ""),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("11000"), "{e}");
    let e = reg
        .set_traffic("fraud", &split(&[("production", 10000), ("nope", 0)], ""))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    let e = reg
        .set_traffic("fraud", &split(&[("production", 5000), ("9", 5000)], ""))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no version 9"), "{e}");
    let mut with_shadow = split(&[("production", 8000), ("canary", 2000)], "ab-11");
    with_shadow.shadows = vec!["canary".into()];
    assert!(
        reg.set_traffic("fraud", &with_shadow)
            .await
            .unwrap_err()
            .to_string()
            .contains("cannot be both")
    );
    with_shadow.shadows = vec!["3".into()];
    reg.set_traffic("fraud", &with_shadow).await.unwrap();
    assert_eq!(reg.model("fraud").await.unwrap().traffic, with_shadow);
    // Route order: explicit version > explicit alias > traffic split > production.
    let bare = ModelRef::parse("fraud").unwrap();
    let mut to_canary = 0;
    for i in 0..2000 {
        let key = format!("WVWZZZ1JZ3W{i:06}");
        let a = reg.route(&bare, key.as_bytes()).await.unwrap();
        assert_eq!(
            a,
            reg.route(&bare, key.as_bytes()).await.unwrap(),
            "one key, one arm"
        );
        assert_eq!(
            with_shadow.bucket(key.as_bytes()) < 8000,
            a.alias.as_deref() == Some("production")
        );
        if a.alias.as_deref() == Some("canary") {
            assert_eq!(a.version, 2);
            to_canary += 1;
        } else {
            assert_eq!((a.alias.as_deref(), a.version), (Some("production"), 1));
        }
    }
    assert!(
        (300..500).contains(&to_canary),
        "20 % of 2,000 keys to canary, got {to_canary}"
    );
    // Another salt, other buckets: the split does not follow partitioning.
    let other = split(&[("production", 8000), ("canary", 2000)], "other-salt");
    let differ = (0..2000).filter(|i| {
        let k = format!("WVWZZZ1JZ3W{i:06}");
        (other.bucket(k.as_bytes()) < 8000) != (with_shadow.bucket(k.as_bytes()) < 8000)
    });
    assert!(differ.count() > 200);
    // The hashed bytes are salt then key (core's Kafka murmur2, positive, mod 10,000).
    assert_eq!(
        with_shadow.bucket(b"car-1"),
        (fleetwatch_core::partitioner::partition_for_key(b"ab-11car-1", 10_000)) as u32
    );
    assert_eq!(
        reg.route(&ModelRef::parse("fraud@3").unwrap(), b"k")
            .await
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        reg.route(&ModelRef::parse("fraud@production").unwrap(), b"k")
            .await
            .unwrap()
            .version,
        1
    );
    // Moving the alias moves its traffic; what takes traffic cannot go.
    reg.move_alias("fraud", "canary", 3, None).await.unwrap();
    let mut moved = 0;
    for i in 0..200 {
        let k = format!("k{i}");
        let r = reg.route(&bare, k.as_bytes()).await.unwrap();
        if r.alias.as_deref() == Some("canary") {
            assert_eq!(r.version, 3, "the canary's traffic follows the alias");
            moved += 1;
        }
    }
    assert!(moved > 10, "{moved}");
    assert!(
        reg.remove_alias("fraud", "canary")
            .await
            .unwrap_err()
            .to_string()
            .contains("traffic split")
    );
    assert!(
        reg.delete("fraud", Some(3))
            .await
            .unwrap_err()
            .to_string()
            .contains("traffic")
    );
    reg.set_traffic("fraud", &TrafficSplit::default())
        .await
        .unwrap();
    assert_eq!(
        reg.route(&bare, b"anything")
            .await
            .unwrap()
            .alias
            .as_deref(),
        Some("production")
    );

    // Archived: a version flag, not an alias.
    assert!(
        reg.set_archived("fraud", 3, true)
            .await
            .unwrap_err()
            .to_string()
            .contains("canary")
    );
    reg.set_archived("fraud", 2, true).await.unwrap();
    let m = reg.model("fraud").await.unwrap();
    assert!(m.versions[&2].archived && !m.versions[&3].archived);
    assert!(
        reg.move_alias("fraud", "blue", 2, None)
            .await
            .unwrap_err()
            .to_string()
            .contains("archived")
    );
    assert_eq!(
        reg.resolve(&ModelRef::parse("fraud@2").unwrap())
            .await
            .unwrap()
            .version,
        2,
        "still reachable by number"
    );
    // Rollback skips an archived holder.
    reg.promote(&ModelRef::parse("fraud@3").unwrap())
        .await
        .unwrap();
    reg.set_archived("fraud", 2, false).await.unwrap();
    reg.promote(&ModelRef::parse("fraud@2").unwrap())
        .await
        .unwrap();
    reg.promote(&ModelRef::parse("fraud@3").unwrap())
        .await
        .unwrap();
    reg.move_alias("fraud", "canary", 1, None).await.unwrap();
    reg.set_archived("fraud", 2, true).await.unwrap();
    assert_eq!(
        reg.rollback("fraud").await.unwrap(),
        1,
        "history 1,3,2,3: 2 is archived, so back to 1"
    );
    // The flags and the split survive a replay.
    let cache2 = tempfile::tempdir().unwrap();
    let again = ModelRegistry::open(log.clone(), cache2.path())
        .await
        .unwrap();
    let m = again.model("fraud").await.unwrap();
    assert!(m.versions[&2].archived);
    assert!(m.traffic.arms.is_empty());
}
