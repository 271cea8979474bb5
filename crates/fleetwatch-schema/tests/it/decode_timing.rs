//! A quick timing of `Registry::decode_value` over cardata-like values (`--ignored`; prints,
//! asserts nothing about time).

use crate::registry::{open, req};
use std::time::Instant;

const CARDATA: &str = include_str!("../../../../schemas/cardata-v1.avsc");

#[tokio::test]
#[ignore = "a timing, run by hand: cargo test -p fleetwatch-schema --release -- --ignored decode_timing"]
async fn decode_value_timing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = open(dir.path()).await;
    let id = r
        .register("cardata-value", &req(CARDATA), false)
        .await
        .unwrap();
    let parsed = r.avro_by_id(id).unwrap();
    let codec = fleetwatch_schema::codec::AvroCodec::new(&parsed).unwrap();
    let apache_avro::Schema::Record(rec) = &parsed.schema else {
        panic!("cardata is a record")
    };
    let fields: Vec<(String, apache_avro::Schema)> = rec
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.schema.clone()))
        .collect();
    let frames: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            let mut doc = serde_json::Map::new();
            for (name, schema) in &fields {
                let v = match schema {
                    apache_avro::Schema::Long => serde_json::json!(1_700_000_000 + i),
                    apache_avro::Schema::Int => serde_json::json!(30 + i % 5),
                    apache_avro::Schema::String => serde_json::json!(format!("car-{}", i % 100)),
                    _ => serde_json::json!(10.0 + (i % 97) as f64 * 0.25),
                };
                doc.insert(name.clone(), v);
            }
            let datum = codec.encode_json(&serde_json::Value::Object(doc)).unwrap();
            fleetwatch_schema::wire::frame(id, &datum)
        })
        .collect();
    let n = 300_000;
    let t0 = Instant::now();
    for i in 0..n {
        let v = r.decode_value(&frames[i % frames.len()]).unwrap();
        std::hint::black_box(v);
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "TIMING decode_value: {n} values in {s:.3} s = {:.0} values/s, {:.2} µs/value",
        n as f64 / s,
        s * 1e6 / n as f64
    );
}
