//! `fleetwatch bench schema` ([`run`], [`table`]): the Schema Registry's costs, as JSON on
//! stdout and a short table on stderr.
//!
//! - `avro_encode`: the fast writer on values built from their schema (`encode_trusted`),
//!   on this thread, of the `cardata-v1` record of the reference demo;
//! - `avro_encode_checked`: the same, checking each value against the schema (`encode`);
//! - `avro_decode`: decoding those datums back to values;
//! - `http_register`: registrations one after another over HTTP against an in-process
//!   registry over an embedded log (each is appended to `_schemas` before it is answered);
//! - `http_lookup`: `GET /schemas/ids/{id}` from concurrent clients for a few seconds
//!   (server and clients share the machine, so `cpu_seconds` is both).

use super::{Phase, Rates, Timer, round};
use fleetwatch_log::EmbeddedConfig;
use serde::Serialize;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The car sensor record of the reference demo (`schemas/cardata-v1.avsc`).
pub const CARDATA_V1: &str = include_str!("../../../../schemas/cardata-v1.avsc");

/// The `i`-th cardata-v1 test value.
pub fn cardata_value(i: usize) -> apache_avro::types::Value {
    use apache_avro::types::Value as V;
    let f = |base: f32| V::Float(base + (i % 97) as f32 * 0.25);
    let mut fields = vec![
        ("time".to_string(), V::Long(1_700_000_000 + i as i64)),
        ("car".to_string(), V::String(format!("car-{}", i % 1000))),
    ];
    for name in [
        "coolant_temp",
        "intake_air_temp",
        "intake_air_flow_speed",
        "battery_percentage",
        "battery_voltage",
        "current_draw",
        "speed",
        "engine_vibration_amplitude",
        "throttle_pos",
    ] {
        fields.push((name.to_string(), f(10.0)));
    }
    for name in [
        "tire_pressure_1_1",
        "tire_pressure_1_2",
        "tire_pressure_2_1",
        "tire_pressure_2_2",
    ] {
        fields.push((name.to_string(), V::Int(30 + (i % 5) as i32)));
    }
    for name in [
        "accelerometer_1_1_value",
        "accelerometer_1_2_value",
        "accelerometer_2_1_value",
        "accelerometer_2_2_value",
    ] {
        fields.push((name.to_string(), f(0.5)));
    }
    fields.push(("control_unit_firmware".to_string(), V::Int(2000)));
    V::Record(fields)
}

/// Options of `bench schema`.
#[derive(Debug, Clone)]
pub struct SchemaBenchOptions {
    /// Records to encode and decode.
    pub records: usize,
    /// How long to run the HTTP lookup load.
    pub http_seconds: f64,
    /// Concurrent HTTP clients.
    pub http_clients: usize,
}

/// Registrations over HTTP, one after another.
#[derive(Debug, Clone, Serialize)]
pub struct HttpRegister {
    /// Schemas registered.
    pub registrations: u32,
    /// Registrations per wall-clock second.
    pub registrations_per_sec: f64,
    /// Mean latency of one, ms.
    pub mean_latency_ms: f64,
}

/// Schema-id lookups over HTTP from concurrent clients.
#[derive(Debug, Clone, Serialize)]
pub struct HttpLookup {
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered.
    pub requests: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Requests per wall-clock second.
    pub requests_per_sec: f64,
    /// CPU seconds of the process (server and clients).
    pub cpu_seconds: f64,
}

/// The targets the figures are read against.
#[derive(Debug, Clone, Serialize)]
pub struct Targets {
    /// Fast writer, one core.
    pub avro_encode_records_per_sec_per_core: &'static str,
    /// Decoder, one core.
    pub avro_decode_records_per_sec_per_core: &'static str,
    /// Lookups, the whole machine.
    pub http_lookup_requests_per_sec: &'static str,
}

/// What [`run`] measured (the module doc says what each part is).
#[derive(Debug, Clone, Serialize)]
pub struct SchemaReport {
    /// `"schema"`.
    pub bench: &'static str,
    /// The record encoded.
    pub record: &'static str,
    /// Bytes of one encoded datum.
    pub datum_bytes: usize,
    /// Records encoded and decoded per phase.
    pub records: usize,
    /// Fast writer.
    pub avro_encode: Rates,
    /// Checked writer.
    pub avro_encode_checked: Rates,
    /// Decoder.
    pub avro_decode: Rates,
    /// Registrations over HTTP.
    pub http_register: HttpRegister,
    /// Lookups over HTTP.
    pub http_lookup: HttpLookup,
    /// Targets.
    pub targets: Targets,
}

/// Avro encode/decode of the cardata-v1 record on this thread, then `GET /schemas/ids/{id}`
/// over HTTP against an in-process registry (server and clients share the machine).
pub async fn run(o: SchemaBenchOptions) -> anyhow::Result<SchemaReport> {
    use fleetwatch_schema::avro;
    use fleetwatch_schema::codec::AvroCodec;
    let parsed = avro::parse(CARDATA_V1, &[])?;
    let codec = AvroCodec::new(&parsed)?;
    let values: Vec<apache_avro::types::Value> = (0..1000).map(cardata_value).collect();
    let mut buf = Vec::with_capacity(256);
    let mut datums: Vec<Vec<u8>> = Vec::with_capacity(values.len());
    for v in &values {
        buf.clear();
        codec.encode(v, &mut buf)?;
        datums.push(buf.clone());
    }
    let datum_bytes = datums[0].len();
    let encode_with = |trusted: bool, buf: &mut Vec<u8>| -> anyhow::Result<Phase> {
        let timer = Timer::start();
        for i in 0..o.records {
            buf.clear();
            let v = &values[i % values.len()];
            if trusted {
                codec.encode_trusted(v, buf)?;
            } else {
                codec.encode(v, buf)?;
            }
        }
        Ok(timer.stop())
    };
    let encode = encode_with(true, &mut buf)?;
    let encode_checked = encode_with(false, &mut buf)?;
    let timer = Timer::start();
    for i in 0..o.records {
        let v = codec.decode(&datums[i % datums.len()])?;
        std::hint::black_box(v);
    }
    let decode = timer.stop();

    // HTTP: a registry over an embedded log in a temporary directory.
    let dir = tempfile::tempdir()?;
    let log: std::sync::Arc<dyn fleetwatch_core::Log> =
        std::sync::Arc::new(EmbeddedConfig::at(dir.path()).build()?);
    let registry = fleetwatch_schema::SchemaRegistryConfig::default()
        .build(log)
        .await?;
    let req = fleetwatch_schema::types::RegisterRequest {
        schema: CARDATA_V1.to_string(),
        ..Default::default()
    };
    let id = registry.register("cardata-value", &req, false).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let server = {
        let c = cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, fleetwatch_schema::http::router(registry))
                .with_graceful_shutdown(async move { c.cancelled().await })
                .await
        })
    };
    let client = reqwest::Client::new();
    // Registrations, one after another: each is appended to `_schemas` and applied before
    // it is answered, so this is the write path's latency.
    let registrations = if o.http_seconds >= 1.0 { 200 } else { 20 };
    let t0 = Instant::now();
    for i in 0..registrations {
        let schema =
            format!(r#"{{"type":"record","name":"R{i}","fields":[{{"name":"a","type":"int"}}]}}"#);
        let r = client
            .post(format!("http://{addr}/subjects/bench-{i}/versions"))
            .json(&serde_json::json!({ "schema": schema }))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "registration failed: {}",
            r.status()
        );
    }
    let register_seconds = t0.elapsed().as_secs_f64();
    let url = format!("http://{addr}/schemas/ids/{id}");
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(o.http_seconds);
    let timer = Timer::start();
    let mut tasks = Vec::new();
    for _ in 0..o.http_clients.max(1) {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = client.get(&url).send().await?;
                anyhow::ensure!(r.status().is_success(), "lookup failed: {}", r.status());
                r.bytes().await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut lookups = 0u64;
    for t in tasks {
        lookups += t.await??;
    }
    let http = timer.stop();
    cancel.cancel();
    let _ = server.await;
    let bytes = (o.records * datum_bytes) as u64;
    Ok(SchemaReport {
        bench: "schema",
        record: "cardata-v1 (schemas/cardata-v1.avsc)",
        datum_bytes,
        records: o.records,
        avro_encode: Rates::of(&encode, o.records, bytes),
        avro_encode_checked: Rates::of(&encode_checked, o.records, bytes),
        avro_decode: Rates::of(&decode, o.records, bytes),
        http_register: HttpRegister {
            registrations,
            registrations_per_sec: round(f64::from(registrations) / register_seconds),
            mean_latency_ms: round(register_seconds * 1000.0 / f64::from(registrations)),
        },
        http_lookup: HttpLookup {
            clients: o.http_clients,
            requests: lookups,
            seconds: round(http.seconds),
            requests_per_sec: round(lookups as f64 / http.seconds),
            cpu_seconds: round(http.cpu),
        },
        targets: Targets {
            avro_encode_records_per_sec_per_core: ">= 1000000",
            avro_decode_records_per_sec_per_core: ">= 1000000",
            http_lookup_requests_per_sec: ">= 50000 (2 cores)",
        },
    })
}

/// The short table of `bench schema`.
pub fn table(r: &SchemaReport) -> String {
    format!(
        "avro_encode    {:>14} rec/s {:>8} cpu-s/M\navro_encode_checked {:>9} rec/s {:>8} cpu-s/M\navro_decode    {:>14} rec/s {:>8} cpu-s/M\nhttp_register  {:>14} req/s (sequential)\nhttp_lookup    {:>14} req/s ({} clients)\n",
        r.avro_encode.records_per_sec,
        r.avro_encode.cpu_seconds_per_million,
        r.avro_encode_checked.records_per_sec,
        r.avro_encode_checked.cpu_seconds_per_million,
        r.avro_decode.records_per_sec,
        r.avro_decode.cpu_seconds_per_million,
        r.http_register.registrations_per_sec,
        r.http_lookup.requests_per_sec,
        r.http_lookup.clients,
    )
}
