//! The simulator as its users rely on it: reproducible bytes, valid and complete JSON,
//! physically consistent telemetry, labels that point at real events, rates as configured.

#![allow(clippy::unwrap_used)]

use fleetwatch_sim::{Batch, SimConfig, Simulator, Stream};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Every event of `ticks` ticks (then `finish`), as (stream, key, json bytes).
fn run(cfg: SimConfig, ticks: usize, ticks_per_batch: usize) -> Vec<(Stream, String, Vec<u8>)> {
    let mut sim = Simulator::new(cfg).unwrap();
    let mut batch = Batch::new();
    let mut out = Vec::new();
    let drain = |b: &mut Batch, out: &mut Vec<_>| {
        for e in b.iter() {
            out.push((e.stream, e.key.to_string(), e.json.to_vec()));
        }
        b.clear();
    };
    for t in 0..ticks {
        sim.tick(&mut batch);
        if (t + 1) % ticks_per_batch == 0 {
            drain(&mut batch, &mut out);
        }
    }
    sim.finish(&mut batch);
    drain(&mut batch, &mut out);
    out
}

fn cfg(seed: u64, cars: u32) -> SimConfig {
    SimConfig {
        seed,
        cars,
        ..SimConfig::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_whatever_the_batching_and_another_seed_differs() {
    let a = run(cfg(7, 50), 600, 1);
    let b = run(cfg(7, 50), 600, 37);
    assert_eq!(a, b);
    let c = run(cfg(8, 50), 600, 1);
    assert_ne!(a, c);
}

#[test]
fn every_event_is_json_with_the_documented_fields_and_unique_ids() {
    let events = run(cfg(3, 100), 1800, 100);
    let telemetry = [
        "event_id",
        "vin",
        "ts",
        "powertrain",
        "lat",
        "lon",
        "speed_kmh",
        "rpm",
        "gear",
        "engine_temp_c",
        "coolant_temp_c",
        "oil_pressure_kpa",
        "battery_v",
        "tyre_fl_kpa",
        "tyre_fr_kpa",
        "tyre_rl_kpa",
        "tyre_rr_kpa",
        "energy_level_pct",
        "odometer_km",
        "dtc",
    ];
    let payment = [
        "event_id",
        "ts",
        "vin",
        "account_id",
        "card_number",
        "card_holder",
        "amount",
        "currency",
        "merchant_category",
        "merchant_id",
        "lat",
        "lon",
    ];
    let label = [
        "event_id", "key", "type", "kind", "start_ts", "end_ts", "events",
    ];
    let mut ids = HashSet::new();
    let mut seen = [0usize; 3];
    for (stream, key, json) in &events {
        let v: Value = serde_json::from_slice(json)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(json)));
        let (fields, i): (&[&str], usize) = match stream {
            Stream::Telemetry => (&telemetry, 0),
            Stream::Payment => (&payment, 1),
            Stream::Label => (&label, 2),
        };
        seen[i] += 1;
        let obj = v.as_object().unwrap();
        for f in fields {
            assert!(obj.contains_key(*f), "{stream:?} lacks {f}: {v}");
        }
        assert_eq!(obj.len(), fields.len(), "{stream:?} has extra fields: {v}");
        if *stream != Stream::Label {
            assert_eq!(v["vin"], key.as_str());
            assert!(
                ids.insert(v["event_id"].as_str().unwrap().to_string()),
                "{v}"
            );
            assert!(
                v.to_string().find("anomal").is_none(),
                "no label inside events: {v}"
            );
        }
        if *stream == Stream::Payment {
            let card = v["card_number"].as_str().unwrap();
            assert_eq!(card.len(), 16);
            assert!(luhn(card), "{card}");
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "all three streams: {seen:?}");
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[test]
fn telemetry_without_anomalies_is_physically_consistent() {
    let c = SimConfig {
        sensor_anomaly_rate: 0.0,
        fraud_rate: 0.0,
        ..cfg(11, 40)
    };
    let events = run(c, 3 * 3600, 600);
    let mut last: HashMap<String, Value> = HashMap::new();
    let mut moving = 0;
    for (stream, key, json) in &events {
        if *stream != Stream::Telemetry {
            continue;
        }
        let v: Value = serde_json::from_slice(json).unwrap();
        let f = |k: &str| v[k].as_f64().unwrap();
        let (speed, rpm, gear) = (f("speed_kmh"), f("rpm"), f("gear"));
        assert!((0.0..=250.0).contains(&speed), "{v}");
        assert!((0.0..=16000.0).contains(&rpm), "{v}");
        assert!((-40.0..=130.0).contains(&f("engine_temp_c")), "{v}");
        assert!((10.0..=16.0).contains(&f("battery_v")), "{v}");
        for t in ["tyre_fl_kpa", "tyre_fr_kpa", "tyre_rl_kpa", "tyre_rr_kpa"] {
            assert!((150.0..=320.0).contains(&f(t)), "{t}: {v}");
        }
        assert!((0.0..=100.0).contains(&f("energy_level_pct")), "{v}");
        if v["powertrain"] == "ice" && speed > 5.0 {
            moving += 1;
            assert!(gear >= 1.0, "a moving car is in gear: {v}");
            // rpm follows speed and gear: wheel rpm × gear ratio × axle within the engine's range.
            assert!(rpm >= 600.0, "{v}");
        }
        if speed == 0.0 && gear == 0.0 && v["powertrain"] == "ice" {
            assert!(rpm <= 1000.0, "parked or idling: {v}");
        }
        if let Some(prev) = last.get(key) {
            let p = |k: &str| prev[k].as_f64().unwrap();
            let dt_h = (f("ts") - p("ts")) / 3.6e6;
            let d_odo = f("odometer_km") - p("odometer_km");
            assert!(d_odo >= 0.0, "odometer monotonic: {prev} → {v}");
            let vmax = speed.max(p("speed_kmh"));
            assert!(
                d_odo <= vmax * dt_h + 0.01,
                "odometer ≈ ∫speed: {prev} → {v}"
            );
            // GPS moves no further than the distance driven (plus rounding).
            let dlat = (f("lat") - p("lat")) * 111.2;
            let dlon = (f("lon") - p("lon")) * 111.2 * (f("lat").to_radians().cos());
            let moved = (dlat * dlat + dlon * dlon).sqrt();
            assert!(
                moved <= d_odo * 1.2 + 0.01,
                "GPS jump {moved} km vs {d_odo}: {prev} → {v}"
            );
            assert!(
                v["dtc"].as_array().unwrap().is_empty(),
                "no DTC without faults: {v}"
            );
        }
        last.insert(key.clone(), v);
    }
    assert!(moving > 1000, "cars do drive: {moving}");
}

#[test]
fn labels_point_at_real_events_and_rates_follow_the_config() {
    let c = SimConfig {
        sensor_anomaly_rate: 0.02,
        fraud_rate: 0.05,
        payments_per_hour: 60.0,
        ..cfg(5, 100)
    };
    let events = run(c, 2 * 3600, 3600);
    let mut by_id: HashMap<String, (Stream, String, i64)> = HashMap::new();
    let mut labels = Vec::new();
    let (mut telemetry, mut payments) = (0usize, 0usize);
    for (stream, key, json) in &events {
        let v: Value = serde_json::from_slice(json).unwrap();
        match stream {
            Stream::Label => labels.push(v),
            s => {
                if *s == Stream::Telemetry {
                    telemetry += 1;
                } else {
                    payments += 1;
                }
                by_id.insert(
                    v["event_id"].as_str().unwrap().to_string(),
                    (*s, key.clone(), v["ts"].as_i64().unwrap()),
                );
            }
        }
    }
    let (mut sensor_events, mut fraud_events) = (0u64, 0u64);
    let mut types = HashSet::new();
    for l in &labels {
        let id = l["event_id"].as_str().unwrap();
        let (stream, key, ts) = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no event {id}: {l}"));
        assert_eq!(l["key"], key.as_str(), "{l}");
        let (start, end) = (
            l["start_ts"].as_i64().unwrap(),
            l["end_ts"].as_i64().unwrap(),
        );
        assert_eq!(*ts, start, "the label names the episode's first event: {l}");
        assert!(end >= start, "{l}");
        let n = l["events"].as_u64().unwrap();
        assert!(n >= 1);
        if n == 1 {
            assert_eq!(start, end, "{l}");
        }
        match l["kind"].as_str().unwrap() {
            "sensor" => {
                assert_eq!(*stream, Stream::Telemetry);
                sensor_events += n;
            }
            "fraud" => {
                assert_eq!(*stream, Stream::Payment);
                fraud_events += n;
            }
            k => panic!("kind {k}"),
        }
        types.insert(l["type"].as_str().unwrap().to_string());
    }
    let sensor_rate = sensor_events as f64 / telemetry as f64;
    let fraud_rate = fraud_events as f64 / payments as f64;
    eprintln!(
        "{telemetry} telemetry, {payments} payments, sensor rate {sensor_rate:.4}, fraud rate {fraud_rate:.4}, types {types:?}"
    );
    assert!(
        (0.01..=0.04).contains(&sensor_rate),
        "sensor rate {sensor_rate}"
    );
    assert!(
        (0.025..=0.10).contains(&fraud_rate),
        "fraud rate {fraud_rate}"
    );
    assert!(types.len() >= 8, "most anomaly types occur: {types:?}");
}

#[test]
fn no_anomalies_configured_means_no_labels() {
    let c = SimConfig {
        sensor_anomaly_rate: 0.0,
        fraud_rate: 0.0,
        ..cfg(2, 100)
    };
    let events = run(c, 3600, 3600);
    assert!(events.iter().all(|(s, _, _)| *s != Stream::Label));
}
