//! Decode and encode throughput of the JSON and Avro codecs on a telemetry record of 16
//! fields (~200 bytes of JSON), in batches of 8192 rows. Prints one JSON object.
//!
//! `cargo bench -p fleetwatch-columnar --bench codec` (add `-- --quick` for a short run).

use fleetwatch_columnar::{
    AvroDecoder, AvroEncoder, JsonDecoder, JsonEncoder, JsonOptions, RecordBatch, RowDecoder,
    RowEncoder, avro_schema_for,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_schema::{DataType, Field, Schema};

const BATCH: usize = 8192;

fn schema() -> Arc<Schema> {
    let d = |n: &str| Field::new(n, DataType::Float64, true);
    Arc::new(Schema::new(vec![
        Field::new("VIN", DataType::Utf8, true),
        Field::new("TS", DataType::Int64, true),
        d("LAT"),
        d("LON"),
        d("SPEED"),
        Field::new("RPM", DataType::Int32, true),
        Field::new("GEAR", DataType::Int32, true),
        d("COOLANT_TEMP"),
        d("OIL_TEMP"),
        d("TYRE_FL"),
        d("TYRE_FR"),
        d("TYRE_RL"),
        d("TYRE_RR"),
        d("FUEL"),
        d("ODOMETER"),
        Field::new(
            "DTC",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
    ]))
}

/// A deterministic pseudo-random source (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() % 1_000_000) as f64 / 1_000_000.0 * (hi - lo)
    }
}

fn rows(n: usize) -> Vec<String> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|i| {
            let dtc = if i % 10 == 0 { r#"["P0300","P0171"]"# } else { "[]" };
            format!(
                r#"{{"vin":"WVWZZZ1JZ{:08}","ts":{},"lat":{:.6},"lon":{:.6},"speed":{:.2},"rpm":{},"gear":{},"coolant_temp":{:.1},"oil_temp":{:.1},"tyre_fl":{:.2},"tyre_fr":{:.2},"tyre_rl":{:.2},"tyre_rr":{:.2},"fuel":{:.1},"odometer":{:.1},"dtc":{}}}"#,
                i % 5000,
                1_780_000_000_000u64 + i as u64 * 10,
                r.f(47.0, 49.0),
                r.f(9.0, 12.0),
                r.f(0.0, 180.0),
                800 + r.next() % 5000,
                1 + r.next() % 6,
                r.f(80.0, 105.0),
                r.f(90.0, 120.0),
                r.f(2.1, 2.6),
                r.f(2.1, 2.6),
                r.f(2.1, 2.6),
                r.f(2.1, 2.6),
                r.f(0.0, 100.0),
                r.f(1000.0, 250_000.0),
                dtc
            )
        })
        .collect()
}

struct Measure {
    rows: usize,
    bytes: usize,
    elapsed: Duration,
}

impl Measure {
    fn json(&self) -> String {
        let s = self.elapsed.as_secs_f64();
        format!(
            r#"{{"rows_per_s":{:.0},"mb_per_s":{:.1}}}"#,
            self.rows as f64 / s,
            self.bytes as f64 / s / 1e6
        )
    }
}

/// Runs `f` (one pass over all rows) until `min` has passed; returns the total.
fn run(min: Duration, rows: usize, bytes: usize, mut f: impl FnMut()) -> Measure {
    f(); // warm up
    let start = Instant::now();
    let mut passes = 0;
    while passes == 0 || start.elapsed() < min {
        f();
        passes += 1;
    }
    Measure {
        rows: rows * passes,
        bytes: bytes * passes,
        elapsed: start.elapsed(),
    }
}

fn decode_all(d: &mut dyn RowDecoder, values: &[&[u8]], out: &mut Vec<RecordBatch>) {
    out.clear();
    for v in values {
        if d.append(v).is_err() {
            panic!("bench row does not decode");
        }
        if d.len() == BATCH {
            out.push(d.finish());
        }
    }
    if !d.is_empty() {
        out.push(d.finish());
    }
}

fn encode_all(e: &mut dyn RowEncoder, batches: &[RecordBatch], buf: &mut Vec<u8>) {
    let mut ends = Vec::with_capacity(BATCH);
    for b in batches {
        buf.clear();
        ends.clear();
        if e.encode(b, buf, &mut ends).is_err() {
            panic!("bench batch does not encode");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let min = Duration::from_millis(if quick { 200 } else { 2000 });
    let n = 65_536;
    let schema = schema();
    let json_rows = rows(n);
    let json_values: Vec<&[u8]> = json_rows.iter().map(|r| r.as_bytes()).collect();
    let json_bytes: usize = json_rows.iter().map(String::len).sum();

    let mut dec = JsonDecoder::new(schema.clone(), JsonOptions::default())?;
    let mut batches = Vec::new();
    let json_decode = run(min, n, json_bytes, || {
        decode_all(&mut dec, &json_values, &mut batches)
    });

    let mut buf = Vec::new();
    let mut enc = JsonEncoder::default();
    let mut out_bytes = 0;
    for b in &batches {
        let mut ends = Vec::new();
        let mut o = Vec::new();
        enc.encode(b, &mut o, &mut ends)?;
        out_bytes += o.len();
    }
    let json_encode = run(min, n, out_bytes, || {
        encode_all(&mut enc, &batches, &mut buf)
    });

    // Avro: the same rows, written by the Avro encoder.
    let writer = avro_schema_for(
        &schema,
        "KsqlDataSourceSchema",
        "io.confluent.ksql.avro_schemas",
    )?;
    let writer = apache_avro::Schema::parse(&writer)?;
    let mut aenc = AvroEncoder::new(&schema)?;
    let mut avro_buf = Vec::new();
    let mut avro_ends = Vec::new();
    for b in &batches {
        aenc.encode(b, &mut avro_buf, &mut avro_ends)?;
    }
    let mut avro_values = Vec::with_capacity(n);
    let mut s = 0;
    for &e in &avro_ends {
        avro_values.push(&avro_buf[s..e]);
        s = e;
    }
    let avro_bytes = avro_buf.len();
    let mut adec = AvroDecoder::new(schema.clone(), &writer)?;
    let mut abatches = Vec::new();
    let avro_decode = run(min, n, avro_bytes, || {
        decode_all(&mut adec, &avro_values, &mut abatches)
    });
    let avro_encode = run(min, n, avro_bytes, || {
        encode_all(&mut aenc, &batches, &mut buf)
    });

    println!(
        r#"{{"bench":"columnar_codec","rows":{n},"batch_rows":{BATCH},"json_row_bytes":{:.0},"avro_row_bytes":{:.0},"json_decode":{},"json_encode":{},"avro_decode":{},"avro_encode":{}}}"#,
        json_bytes as f64 / n as f64,
        avro_bytes as f64 / n as f64,
        json_decode.json(),
        json_encode.json(),
        avro_decode.json(),
        avro_encode.json(),
    );
    Ok(())
}
