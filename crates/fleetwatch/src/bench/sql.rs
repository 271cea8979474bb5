//! `fleetwatch bench sql`: the streaming SQL engine on one pinned core.
//!
//! The query is the reference architecture's cleaning step — a filter, a projection and PII
//! masking (`MASK_KEEP_LEFT` of the VIN, `MASK` of the driver's name):
//!
//! ```sql
//! SELECT VIN_MASKED…, TS, SPEED, RPM, COOLANT, MASK(DRIVER) FROM telemetry WHERE SPEED > 5
//! ```
//!
//! Phases (each figure says what it includes):
//! - `operator_json_telemetry`: filter + projection + masking on Arrow batches already
//!   decoded from ~200-byte JSON telemetry (target ≥ 5,000,000 events/s);
//! - `decode_json_telemetry` / `encode_json_output`: the format work alone;
//! - `end_to_end_json_telemetry`: a persistent query (`CREATE STREAM … AS SELECT`) in the
//!   engine on a fresh embedded log: read from the log, JSON decode, evaluate, JSON encode,
//!   append to the output topic, checkpoint — from the statement until the last output is
//!   in the log (target ≥ 1,000,000 events/s);
//! - `operator_avro_cardata` and `decode_avro_cardata`: the same kind of query over the Avro
//!   `cardata-v1` record of the reference demo.
//!
//! CPU seconds per million events are the process's CPU time over the phase.

use crate::bench::{Rates, Timer, fresh_dir};
use fleetwatch_core::{ConsumedRecord, Log, OffsetSpec, Record, TopicConfig};
use fleetwatch_sql::catalog::{Catalog, Column, Format, Source};
use fleetwatch_sql::exec::{Decoder, Encoder, Evaluator};
use fleetwatch_sql::functions::{FunctionContext, FunctionRegistry};
use fleetwatch_sql::parser::{KsqlStatement, SourceKind, parse_one};
use fleetwatch_sql::types::SqlType;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Options.
#[derive(Debug, Clone)]
pub struct SqlBenchOptions {
    /// Events per phase.
    pub events: usize,
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Where the end-to-end phase's log goes (`None`: skip it).
    pub dir: Option<PathBuf>,
    /// Whether the thread was pinned to one CPU.
    pub pinned: bool,
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct SqlPhase {
    /// Its name.
    pub name: String,
    /// What the figure includes.
    pub includes: &'static str,
    /// Input events.
    pub events: u64,
    /// Rows out (after the filter).
    pub rows_out: u64,
    /// Rates (records = input events; bytes = input bytes).
    pub rates: Rates,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct SqlBenchReport {
    /// The query.
    pub query: String,
    /// Mean JSON telemetry event, bytes.
    pub mean_json_event_bytes: f64,
    /// Mean cardata-v1 Avro datum, bytes.
    pub mean_avro_datum_bytes: f64,
    /// Pinned to one CPU.
    pub pinned: bool,
    /// Phases.
    pub phases: Vec<SqlPhase>,
    /// Targets: operator-only ≥ 5 M/s, end to end ≥ 1 M/s.
    pub operator_target_met: bool,
    /// End-to-end target met (false when the phase was skipped).
    pub end_to_end_target_met: bool,
}

const CREATE: &str = "CREATE STREAM telemetry (vin STRING KEY, ts BIGINT, lat DOUBLE, lon DOUBLE, speed DOUBLE, rpm INT, gear INT, coolant DOUBLE, oil DOUBLE, battery DOUBLE, fuel DOUBLE, driver STRING) WITH (kafka_topic='bench.telemetry', value_format='JSON', partitions=1)";
const SELECT: &str = "SELECT vin, MASK_KEEP_LEFT(vin, 11) AS vin_masked, ts, speed, rpm, coolant, MASK(driver) AS driver FROM telemetry WHERE speed > 5";
const DRIVERS: [&str; 4] = [
    "Jane Doe",
    "Max Mustermann",
    "Erika Musterfrau",
    "Luca Rossi",
];

/// A ~200-byte telemetry event.
fn telemetry(i: usize) -> (String, String) {
    let vin = format!("WVWZZZ1JZ3W{:06}", i % 1000);
    let v = format!(
        r#"{{"ts":{},"lat":{:.5},"lon":{:.5},"speed":{:.1},"rpm":{},"gear":{},"coolant":{:.1},"oil":{:.2},"battery":{:.2},"fuel":{:.1},"driver":"{}"}}"#,
        1_796_000_000_000i64 + i as i64 * 10,
        48.1 + (i % 1000) as f64 * 0.0001,
        11.5 + (i % 777) as f64 * 0.0001,
        (i % 130) as f64 + 0.5,
        800 + (i % 4000),
        1 + i % 6,
        85.0 + (i % 20) as f64 * 0.5,
        3.0 + (i % 10) as f64 * 0.05,
        12.0 + (i % 30) as f64 * 0.07,
        10.0 + (i % 80) as f64,
        DRIVERS[i % DRIVERS.len()]
    );
    (vin, v)
}

fn source_from(sql: &str, topic: &str, format: Format) -> anyhow::Result<Source> {
    let KsqlStatement::CreateSource {
        name,
        kind,
        columns,
        ..
    } = parse_one(sql)?.kind
    else {
        anyhow::bail!("not a CREATE STREAM")
    };
    Ok(Source {
        columns: fleetwatch_sql::catalog::check_columns(&name, kind, &columns)?,
        name,
        kind,
        topic: topic.into(),
        key_format: Format::Kafka,
        value_format: format,
        timestamp: None,
        timestamp_format: None,
        wrap_single_value: true,
        delimiter: b',',
        value_schema_id: None,
        partitions: 1,
        statement: sql.into(),
        written_by: None,
    })
}

fn plan(catalog: &Catalog, sql: &str) -> anyhow::Result<Arc<fleetwatch_sql::plan::SelectPlan>> {
    let functions = FunctionRegistry::ksql(&FunctionContext::default());
    let KsqlStatement::Query(q) = parse_one(sql)?.kind else {
        anyhow::bail!("not a SELECT")
    };
    Ok(Arc::new(fleetwatch_sql::plan::plan_select(
        catalog, &functions, &q,
    )?))
}

fn records(values: impl Iterator<Item = (String, Vec<u8>)>) -> Vec<ConsumedRecord> {
    values
        .enumerate()
        .map(|(i, (k, v))| ConsumedRecord {
            partition: 0,
            offset: i as i64,
            record: Record::new(Some(k.into_bytes().into()), Some(v.into()))
                .with_timestamp(i as i64),
        })
        .collect()
}

/// Operator-only and format phases over in-memory records.
fn in_memory(
    name: &str,
    source: Source,
    select: &str,
    recs: &[ConsumedRecord],
    batch_rows: usize,
    phases: &mut Vec<SqlPhase>,
) -> anyhow::Result<()> {
    let bytes: u64 = recs
        .iter()
        .map(|r| r.record.value.as_ref().map_or(0, |v| v.len() as u64))
        .sum();
    let mut catalog = Catalog::default();
    let source = Arc::new(source);
    catalog.put((*source).clone());
    let plan = plan(&catalog, select)?;
    let mut failures = Vec::new();
    // Decode every column (what a query using all of them pays).
    let mut all = Decoder::new(source.clone())?;
    let t = Timer::start();
    for chunk in recs.chunks(batch_rows) {
        all.decode(chunk, &mut failures)?;
    }
    let p = t.stop();
    phases.push(SqlPhase {
        name: format!("decode_{name}_all_columns"),
        includes: "record values → Arrow batches of every column of the source (+ key, pseudo-columns)",
        events: recs.len() as u64,
        rows_out: recs.len() as u64,
        rates: Rates::of(&p, recs.len(), bytes),
    });
    // Decode what the query reads (the others are skipped while scanning): what queries do.
    // Each batch is dropped as a stream would (memory is reused, not grown).
    let mut decoder = Decoder::for_plan(&plan, None)?;
    let t = Timer::start();
    for chunk in recs.chunks(batch_rows) {
        decoder.decode(chunk, &mut failures)?;
    }
    let p = t.stop();
    anyhow::ensure!(
        failures.is_empty(),
        "decode failures: {:?}",
        &failures[..failures.len().min(3)]
    );
    phases.push(SqlPhase {
        name: format!("decode_{name}"),
        includes: "record values → Arrow batches of the columns the query reads (others skipped while scanning)",
        events: recs.len() as u64,
        rows_out: recs.len() as u64,
        rates: Rates::of(&p, recs.len(), bytes),
    });
    // The operator's input, decoded beforehand (not timed).
    let batches: Vec<_> = recs
        .chunks(batch_rows)
        .map(|chunk| decoder.decode(chunk, &mut failures))
        .collect::<Result<_, _>>()?;
    // Operator only: filter + projection + masking; outputs dropped batch by batch.
    let eval = Evaluator::new(plan.clone());
    let t = Timer::start();
    let mut rows_out = 0u64;
    for b in &batches {
        rows_out += eval.eval(b, &mut failures)?.batch.num_rows() as u64;
    }
    let p = t.stop();
    phases.push(SqlPhase {
        name: format!("operator_{name}"),
        includes: "WHERE + projection + MASK functions on decoded Arrow batches (DataFusion PhysicalExprs)",
        events: recs.len() as u64,
        rows_out,
        rates: Rates::of(&p, recs.len(), bytes),
    });
    // Encode the output (JSON values, KAFKA keys); only the encoding is timed.
    let mut enc = Encoder::new(&plan, Format::Kafka, Format::Json, true)?;
    let mut out_bytes = 0u64;
    let mut timed = crate::bench::Phase {
        seconds: 0.0,
        cpu: 0.0,
    };
    for b in &batches {
        let o = eval.eval(b, &mut failures)?;
        let ts = vec![0; o.batch.num_rows()];
        let t = Timer::start();
        for r in enc.encode(&o.batch, &ts)? {
            out_bytes += r.value.map_or(0, |v| v.len() as u64);
        }
        let p = t.stop();
        timed.seconds += p.seconds;
        timed.cpu += p.cpu;
    }
    phases.push(SqlPhase {
        name: format!("encode_{name}_output_json"),
        includes: "output rows → JSON values and KAFKA keys as records",
        events: rows_out,
        rows_out,
        rates: Rates::of(&timed, rows_out as usize, out_bytes),
    });
    Ok(())
}

/// The cardata-v1 record as Avro datums (fleetwatch-schema's writer, checked against the
/// schema).
fn cardata(n: usize) -> anyhow::Result<(Vec<ConsumedRecord>, apache_avro::Schema)> {
    let schema = apache_avro::Schema::parse_str(crate::bench::schema::CARDATA_V1)?;
    let mut out = Vec::with_capacity(n);
    let parsed = fleetwatch_schema::avro::parse(crate::bench::schema::CARDATA_V1, &[])?;
    let codec = fleetwatch_schema::codec::AvroCodec::new(&parsed)?;
    let mut distinct: Vec<Vec<u8>> = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut buf = Vec::new();
        codec.encode(&crate::bench::schema::cardata_value(i), &mut buf)?;
        distinct.push(buf);
    }
    for i in 0..n {
        out.push((
            format!("car-{}", i % 1000),
            distinct[i % distinct.len()].clone(),
        ));
    }
    Ok((records(out.into_iter()), schema))
}

/// The end-to-end phase: a persistent query in the engine over an embedded log.
async fn end_to_end(dir: &std::path::Path, n: usize) -> anyhow::Result<SqlPhase> {
    let log: Arc<dyn Log> = Arc::new(fleetwatch_log::EmbeddedConfig::at(dir).build()?);
    log.create_topic("bench.telemetry", TopicConfig::with_partitions(1))
        .await?;
    let mut bytes = 0u64;
    let mut i = 0;
    while i < n {
        let end = (i + 2000).min(n);
        let batch: Vec<Record> = (i..end)
            .map(|j| {
                let (k, v) = telemetry(j);
                bytes += v.len() as u64;
                Record::new(Some(k.into_bytes().into()), Some(v.into_bytes().into()))
                    .with_timestamp(j as i64)
            })
            .collect();
        log.append("bench.telemetry", 0, &batch).await?;
        i = end;
    }
    let expected = (0..n).filter(|j| (j % 130) as f64 + 0.5 > 5.0).count() as i64;
    let engine = fleetwatch_sql::engine::Engine::new(
        log.clone(),
        fleetwatch_sql::engine::EngineConfig {
            checkpoint_interval: Duration::from_millis(500),
            ..Default::default()
        },
    );
    engine.recover().await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let runner = {
        let (e, s) = (engine.clone(), stop.clone());
        tokio::spawn(async move { e.run(s).await })
    };
    let props = [(
        "auto.offset.reset".to_string(),
        serde_json::Value::from("earliest"),
    )]
    .into();
    engine
        .execute(&format!("{CREATE};"), &props)
        .await
        .map_err(|(e, t)| anyhow::anyhow!("{t}: {e}"))?;
    let t = Timer::start();
    engine
        .execute(&format!("CREATE STREAM clean WITH (kafka_topic='bench.clean', partitions=1) AS {SELECT} EMIT CHANGES;"), &props)
        .await
        .map_err(|(e, t)| anyhow::anyhow!("{t}: {e}"))?;
    loop {
        let end = log
            .offset_for("bench.clean", 0, OffsetSpec::Latest)
            .await
            .unwrap_or(0);
        if end >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let p = t.stop();
    stop.cancel();
    runner.await??;
    drop(engine);
    drop(log);
    Ok(SqlPhase {
        name: "end_to_end_json_telemetry".into(),
        includes: "persistent query: log read + JSON decode + WHERE/projection/masking + JSON encode + append to the output topic + checkpoints, until the last output is in the log",
        events: n as u64,
        rows_out: expected as u64,
        rates: Rates::of(&p, n, bytes),
    })
}

/// Runs the phases.
pub async fn run(o: SqlBenchOptions) -> anyhow::Result<SqlBenchReport> {
    let json: Vec<(String, Vec<u8>)> = (0..o.events)
        .map(|i| {
            let (k, v) = telemetry(i);
            (k, v.into_bytes())
        })
        .collect();
    let mean_json =
        json.iter().map(|(_, v)| v.len()).sum::<usize>() as f64 / json.len().max(1) as f64;
    let recs = records(json.into_iter());
    let mut phases = Vec::new();
    in_memory(
        "json_telemetry",
        source_from(CREATE, "bench.telemetry", Format::Json)?,
        SELECT,
        &recs,
        o.batch_rows,
        &mut phases,
    )?;
    drop(recs);
    // cardata-v1 in Avro: columns from the schema (as ksqlDB infers them).
    let (avro, schema) = cardata(o.events)?;
    let mean_avro = avro
        .iter()
        .map(|r| r.record.value.as_ref().map_or(0, |v| v.len()))
        .sum::<usize>() as f64
        / avro.len().max(1) as f64;
    let arrow = fleetwatch_columnar::arrow_schema_from_avro(&schema, true)?;
    let mut columns = vec![Column {
        name: "CAR_KEY".into(),
        ty: SqlType::String,
        key: true,
    }];
    for f in arrow.fields() {
        let ty = SqlType::from_arrow(f.data_type())
            .ok_or_else(|| anyhow::anyhow!("cardata column {} has no SQL type", f.name()))?;
        columns.push(Column {
            name: f.name().clone(),
            ty,
            key: false,
        });
    }
    let cardata_source = Source {
        name: "CARDATA".into(),
        kind: SourceKind::Stream,
        topic: "bench.cardata".into(),
        key_format: Format::Kafka,
        value_format: Format::Avro,
        columns,
        timestamp: None,
        timestamp_format: None,
        wrap_single_value: true,
        delimiter: b',',
        value_schema_id: Some(1),
        partitions: 1,
        statement: String::new(),
        written_by: None,
    };
    avro_phases(cardata_source, &schema, &avro, o.batch_rows, &mut phases)?;
    if let Some(base) = &o.dir {
        let dir = fresh_dir(base, "sql")?;
        let r = end_to_end(&dir, o.events).await;
        let _ = std::fs::remove_dir_all(&dir);
        phases.push(r?);
    }
    let rate = |n: &str| {
        phases
            .iter()
            .find(|p| p.name == n)
            .map_or(0.0, |p| p.rates.records_per_sec)
    };
    Ok(SqlBenchReport {
        query: SELECT.into(),
        mean_json_event_bytes: crate::bench::round(mean_json),
        mean_avro_datum_bytes: crate::bench::round(mean_avro),
        pinned: o.pinned,
        operator_target_met: rate("operator_json_telemetry") >= 5_000_000.0,
        end_to_end_target_met: rate("end_to_end_json_telemetry") >= 1_000_000.0,
        phases,
    })
}

/// Avro decoding straight into Arrow, then the operator, for cardata-v1.
fn avro_phases(
    source: Source,
    writer: &apache_avro::Schema,
    recs: &[ConsumedRecord],
    batch_rows: usize,
    phases: &mut Vec<SqlPhase>,
) -> anyhow::Result<()> {
    use fleetwatch_columnar::{AvroDecoder, RowDecoder};
    let bytes: u64 = recs
        .iter()
        .map(|r| r.record.value.as_ref().map_or(0, |v| v.len() as u64))
        .sum();
    let mut dec = AvroDecoder::new(source.value_schema(), writer)?;
    let t = Timer::start();
    let mut batches = Vec::new();
    for chunk in recs.chunks(batch_rows) {
        for r in chunk {
            if let Some(v) = &r.record.value {
                dec.append(v).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        batches.push(dec.finish());
    }
    let p = t.stop();
    phases.push(SqlPhase {
        name: "decode_avro_cardata".into(),
        includes: "Avro datums → Arrow columns (a plan compiled from the writer schema)",
        events: recs.len() as u64,
        rows_out: recs.len() as u64,
        rates: Rates::of(&p, recs.len(), bytes),
    });
    // The operator needs the source's full schema (pseudo-columns and key first).
    let schema = source.schema();
    let full: Vec<arrow::array::RecordBatch> = batches
        .iter()
        .map(|b| {
            let n = b.num_rows();
            let mut cols: Vec<arrow::array::ArrayRef> = vec![
                Arc::new(arrow::array::Int64Array::from(vec![0i64; n])),
                Arc::new(arrow::array::Int32Array::from(vec![0i32; n])),
                Arc::new(arrow::array::Int64Array::from(
                    (0..n as i64).collect::<Vec<_>>(),
                )),
                Arc::new(arrow::array::StringArray::from(vec!["car"; n])),
            ];
            cols.extend(b.columns().iter().cloned());
            arrow::array::RecordBatch::try_new(schema.clone(), cols)
        })
        .collect::<Result<_, _>>()?;
    let mut catalog = Catalog::default();
    catalog.put(source);
    let plan = plan(
        &catalog,
        "SELECT car_key, MASK_KEEP_LEFT(CAR, 4) AS car, TIME, SPEED, COOLANT_TEMP, BATTERY_VOLTAGE, TIRE_PRESSURE_1_1 FROM cardata WHERE SPEED > 12",
    )?;
    let eval = Evaluator::new(plan);
    let mut failures = Vec::new();
    let t = Timer::start();
    let mut rows_out = 0u64;
    for b in &full {
        rows_out += eval.eval(b, &mut failures)?.batch.num_rows() as u64;
    }
    let p = t.stop();
    phases.push(SqlPhase {
        name: "operator_avro_cardata".into(),
        includes: "WHERE + projection + MASK_KEEP_LEFT on Arrow batches decoded from cardata-v1 Avro",
        events: recs.len() as u64,
        rows_out,
        rates: Rates::of(&p, recs.len(), bytes),
    });
    Ok(())
}

/// The table.
pub fn table(r: &SqlBenchReport) -> String {
    let mut s = String::new();
    for p in &r.phases {
        s.push_str(&format!(
            "{:<30} {:>12} ev/s {:>9} MiB/s {:>8} cpu-s/M\n",
            p.name, p.rates.records_per_sec, p.rates.mib_per_sec, p.rates.cpu_seconds_per_million
        ));
    }
    s.push_str(&format!(
        "operator ≥ 5,000,000 events/s: {}; end to end ≥ 1,000,000 events/s: {}\n",
        r.operator_target_met, r.end_to_end_target_met
    ));
    s
}
