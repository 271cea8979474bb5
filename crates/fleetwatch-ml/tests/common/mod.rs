//! Shared by the integration tests: the simulator's fleet written into a log.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use fleetwatch_core::partitioner::partition_for_key;
use fleetwatch_core::{Log, Record, TopicConfig};
use fleetwatch_sim::{AnomalyKind, AnomalyType, Batch, SimConfig, Simulator, Stream};
use std::sync::Arc;

/// The telemetry topic the tests train on.
pub const TELEMETRY: &str = "telemetry.raw";
/// The labels topic.
pub const LABELS: &str = "labels";
/// Partitions of the telemetry topic.
pub const PARTITIONS: i32 = 4;

/// The numeric telemetry fields a sensor model reads.
pub const SENSORS: [&str; 11] = [
    "speed_kmh",
    "rpm",
    "engine_temp_c",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "battery_v",
    "tyre_fl_kpa",
    "tyre_fr_kpa",
    "tyre_rl_kpa",
    "tyre_rr_kpa",
    "energy_level_pct",
];

/// An embedded log on a temporary directory (the directory lives as long as the guard).
pub fn embedded() -> (Arc<dyn Log>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = fleetwatch_log::EmbeddedConfig::at(dir.path())
        .build()
        .unwrap();
    (Arc::new(log), dir)
}

/// Simulates `cars` cars for `ticks` seconds with sensor faults only (default magnitude)
/// and writes telemetry (keyed by VIN, `PARTITIONS` partitions, record time = event time)
/// and labels into `log`. Returns (telemetry events, label events).
pub async fn write_fleet(
    log: &dyn Log,
    cars: u32,
    ticks: u32,
    sensor_rate: f64,
    seed: u64,
) -> (usize, usize) {
    write_fleet_every(log, cars, ticks, 1000, sensor_rate, seed).await
}

/// [`write_fleet`] with `interval_ms` between ticks.
pub async fn write_fleet_every(
    log: &dyn Log,
    cars: u32,
    ticks: u32,
    interval_ms: u32,
    sensor_rate: f64,
    seed: u64,
) -> (usize, usize) {
    let sensors = AnomalyType::ALL
        .into_iter()
        .filter(|t| t.kind() == AnomalyKind::Sensor)
        .collect();
    write_fleet_with(log, cars, ticks, interval_ms, sensor_rate, sensors, seed).await
}

/// [`write_fleet_every`] with only the anomaly types `anomalies`.
pub async fn write_fleet_with(
    log: &dyn Log,
    cars: u32,
    ticks: u32,
    interval_ms: u32,
    sensor_rate: f64,
    anomalies: Vec<AnomalyType>,
    seed: u64,
) -> (usize, usize) {
    log.ensure_topic(TELEMETRY, TopicConfig::with_partitions(PARTITIONS))
        .await
        .unwrap();
    log.ensure_topic(LABELS, TopicConfig::with_partitions(1))
        .await
        .unwrap();
    let cfg = SimConfig {
        seed,
        cars,
        interval_ms,
        sensor_anomaly_rate: sensor_rate,
        fraud_rate: 0.0,
        payments_per_hour: 0.0,
        anomalies,
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(cfg).unwrap();
    let mut batch = Batch::new();
    let (mut telemetry, mut labels) = (0, 0);
    let mut per_partition: Vec<Vec<Record>> = vec![Vec::new(); PARTITIONS as usize];
    let mut label_records = Vec::new();
    for t in 0..=ticks {
        if t < ticks {
            sim.tick(&mut batch);
        } else {
            sim.finish(&mut batch);
        }
        for e in batch.iter() {
            let mut r = Record::new(
                Some(Bytes::copy_from_slice(e.key.as_bytes())),
                Some(Bytes::copy_from_slice(e.json)),
            );
            r.timestamp = e.ts_ms;
            match e.stream {
                Stream::Telemetry => {
                    per_partition[partition_for_key(e.key.as_bytes(), PARTITIONS) as usize].push(r);
                    telemetry += 1;
                }
                Stream::Label => {
                    label_records.push(r);
                    labels += 1;
                }
                Stream::Payment => {}
            }
        }
        batch.clear();
        if t % 30 == 0 || t == ticks {
            for (p, recs) in per_partition.iter_mut().enumerate() {
                for chunk in recs.chunks(2000) {
                    log.append(TELEMETRY, p as i32, chunk).await.unwrap();
                }
                recs.clear();
            }
            if !label_records.is_empty() {
                log.append(LABELS, 0, &label_records).await.unwrap();
                label_records.clear();
            }
        }
    }
    (telemetry, labels)
}
