//! Query runtimes: persistent queries (read by explicit assignment from checkpointed
//! positions, write the sink, checkpoint), push and pull queries (rows to a client), and
//! `INSERT … VALUES`.
//!
//! Effectively once: a checkpoint holds the source positions *and* the sink's end offsets
//! at that moment; every output record carries a small header naming the query and its
//! source record (partition, offset). After a crash the query resumes from the positions,
//! reads the sink past the checkpointed ends, and skips the outputs of source records it
//! finds there already (per source partition, outputs are in source order, so the last
//! offset seen is enough). This holds with other writers on the same sink (`INSERT INTO`)
//! because the header names the query.

use crate::catalog::{Format, Source};
use crate::error::{SqlError, SqlResult};
use crate::exec::{Decoder, Evaluator, RowFailure};
use crate::functions::FunctionRegistry;
use crate::lock;
use crate::plan::SelectPlan;
use arrow::array::{Array, Int64Array, RecordBatch};
use bytes::Bytes;
use fleetwatch_columnar::{JsonEncoder, JsonOptions, RowEncoder};
use fleetwatch_core::partitioner::partition_for_key;
use fleetwatch_core::{
    ConsumedRecord, Header, Log, OffsetSpec, ReadLimits, Record, TopicSubscription,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Where a query without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest records (`auto.offset.reset = earliest`).
    Earliest,
    /// New records only (`latest`, ksqlDB's default).
    Latest,
}

impl Start {
    /// From `auto.offset.reset` in the request's properties.
    pub fn from_props(props: &BTreeMap<String, Value>, default: Start) -> Start {
        match props.get("auto.offset.reset").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("earliest") => Start::Earliest,
            Some(s) if s.eq_ignore_ascii_case("latest") => Start::Latest,
            _ => default,
        }
    }
}

/// A persistent query's state, as `SHOW QUERIES` shows it.
#[derive(Debug, Clone, Default)]
pub struct QueryStatus {
    /// Stopped for good (terminated).
    pub stopped: bool,
    /// The last error, while it is failing.
    pub error: Option<String>,
    /// Source records processed.
    pub processed: u64,
    /// Rows that failed (in the processing log).
    pub failed: u64,
}

impl QueryStatus {
    /// `RUNNING`, `ERROR` or `TERMINATED`.
    pub fn state(&self) -> &'static str {
        if self.stopped {
            "TERMINATED"
        } else if self.error.is_some() {
            "ERROR"
        } else {
            "RUNNING"
        }
    }

    /// Whether it will not run again.
    pub fn is_terminal(&self) -> bool {
        self.stopped
    }
}

/// What a persistent query's task needs.
pub struct QueryContext {
    /// Its id.
    pub id: String,
    /// The log.
    pub log: Arc<dyn Log>,
    /// Its plan.
    pub plan: Arc<SelectPlan>,
    /// Where it writes.
    pub sink: Arc<Source>,
    /// Its status.
    pub status: Arc<Mutex<QueryStatus>>,
    /// Stops it.
    pub cancel: CancellationToken,
    /// Checkpoints go here, keyed by query id.
    pub checkpoint_topic: String,
    /// Failed rows go here.
    pub processing_log_topic: String,
    /// How often to checkpoint.
    pub checkpoint_interval: Duration,
    /// Where to start without a checkpoint.
    pub start: Start,
    /// The schema registry (AVRO, JSON_SR).
    pub registry: Option<Arc<fleetwatch_schema::Registry>>,
    /// Where it reports.
    pub metrics: Option<crate::metrics::SqlMetrics>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq)]
struct Checkpoint {
    /// Next offset to read, per source partition.
    positions: Vec<(i32, i64)>,
    /// End offset of what this query had written, per sink partition.
    outputs: Vec<(i32, i64)>,
}

/// The latest checkpoint of a query, if any.
async fn load_checkpoint(
    log: &Arc<dyn Log>,
    topic: &str,
    id: &str,
) -> SqlResult<Option<Checkpoint>> {
    let end = log.offset_for(topic, 0, OffsetSpec::Latest).await?;
    let mut pos = log.offset_for(topic, 0, OffsetSpec::Earliest).await?;
    let mut found = None;
    while pos < end {
        let b = log.read(topic, 0, pos, ReadLimits::default()).await?;
        if b.records.is_empty() {
            break;
        }
        for r in &b.records {
            pos = r.offset + 1;
            if r.record.key.as_deref() == Some(id.as_bytes())
                && let Some(v) = &r.record.value
                && let Ok(c) = serde_json::from_slice::<Checkpoint>(v)
            {
                found = Some(c);
            }
        }
    }
    Ok(found)
}

async fn save_checkpoint(
    log: &Arc<dyn Log>,
    topic: &str,
    id: &str,
    c: &Checkpoint,
) -> SqlResult<()> {
    let v = serde_json::to_vec(c).map_err(|e| SqlError::Internal(e.to_string()))?;
    log.append(
        topic,
        0,
        &[Record::new(
            Some(Bytes::from(id.to_string())),
            Some(Bytes::from(v)),
        )],
    )
    .await?;
    Ok(())
}

/// Writes failed rows to the processing log (best effort: a failure there is logged).
pub async fn log_failures(
    log: &Arc<dyn Log>,
    topic: &str,
    query: &str,
    source: &Source,
    failures: &[RowFailure],
) {
    if failures.is_empty() {
        return;
    }
    let now = fleetwatch_core::now_ms();
    let records: Vec<Record> = failures
        .iter()
        .map(|f| {
            let v = json!({
                "level": "ERROR",
                "logger": format!("processing.{query}"),
                "time": now,
                "message": {
                    "type": f.kind,
                    "query": query,
                    "topic": source.topic,
                    "partition": f.partition,
                    "offset": f.offset,
                    "errorMessage": f.message,
                },
            });
            Record::new(
                Some(Bytes::from(query.to_string())),
                Some(Bytes::from(v.to_string())),
            )
            .with_timestamp(now)
        })
        .collect();
    if let Err(e) = log.append(topic, 0, &records).await {
        tracing::warn!(query, error = %e, "cannot write the processing log");
    }
}

/// The ROWTIME of each output row.
fn rowtimes(input: &RecordBatch, rows: &[u32]) -> Vec<i64> {
    let rt = input.column(0).as_any().downcast_ref::<Int64Array>();
    rows.iter()
        .map(|r| rt.map_or(0, |a| a.value(*r as usize)))
        .collect()
}

/// The header each output record of a persistent query carries: which query wrote it from
/// which source record (`tag` u32, partition i32, offset i64, big-endian) — what makes
/// outputs written before a crash recognisable after it.
pub const SOURCE_HEADER: &str = "fw.src";
const SOURCE_TAG_LEN: usize = 16;

/// A query's 4-byte tag (FNV-1a of its id).
fn query_tag(id: &str) -> u32 {
    id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Reads sink partition `p` over `[from, end)` and records, per source partition, the last
/// source offset this query (by `tag`) wrote.
async fn scan_written(
    log: &Arc<dyn Log>,
    topic: &str,
    p: i32,
    from: i64,
    end: i64,
    tag: u32,
    written: &mut BTreeMap<i32, i64>,
) -> SqlResult<()> {
    let mut pos = from.max(log.offset_for(topic, p, OffsetSpec::Earliest).await?);
    while pos < end {
        let b = log.read(topic, p, pos, ReadLimits::default()).await?;
        if b.records.is_empty() {
            break;
        }
        for r in &b.records {
            let Some(h) = r
                .record
                .headers
                .iter()
                .rev()
                .find(|h| h.key == SOURCE_HEADER)
            else {
                continue;
            };
            let Some(v) = h.value.as_deref().filter(|v| v.len() == SOURCE_TAG_LEN) else {
                continue;
            };
            let t = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            if t != tag {
                continue;
            }
            let sp = i32::from_be_bytes([v[4], v[5], v[6], v[7]]);
            let so = i64::from_be_bytes([v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]]);
            let e = written.entry(sp).or_insert(so);
            *e = (*e).max(so);
        }
        pos = b.next_offset(pos);
    }
    Ok(())
}

fn source_offsets(input: &RecordBatch, rows: &[u32]) -> Vec<i64> {
    let o = input.column(2).as_any().downcast_ref::<Int64Array>();
    rows.iter()
        .map(|r| o.map_or(0, |a| a.value(*r as usize)))
        .collect()
}

fn source_partitions(input: &RecordBatch, rows: &[u32]) -> Vec<i32> {
    let p = input
        .column(1)
        .as_any()
        .downcast_ref::<arrow::array::Int32Array>();
    rows.iter()
        .map(|r| p.map_or(0, |a| a.value(*r as usize)))
        .collect()
}

/// Runs a persistent query until it is cancelled; failures are retried with backoff and
/// shown in its status meanwhile.
pub async fn run_persistent(ctx: QueryContext) {
    let mut backoff = Duration::from_millis(200);
    // The state gauge follows the query: RUNNING, or ERROR while it retries.
    let gauge = |state: &str, d: i64| {
        if let Some(m) = &ctx.metrics {
            m.queries.with_label_values(&[state]).add(d);
        }
    };
    gauge("RUNNING", 1);
    let mut failing = false;
    loop {
        let r = run_once(&ctx, &mut failing, &gauge).await;
        match r {
            Ok(()) => {
                lock(&ctx.status).stopped = true;
                gauge(if failing { "ERROR" } else { "RUNNING" }, -1);
                return;
            }
            Err(e) => {
                tracing::warn!(query = %ctx.id, error = %e, "persistent query failed; retrying");
                lock(&ctx.status).error = Some(e.to_string());
                if !failing {
                    failing = true;
                    gauge("RUNNING", -1);
                    gauge("ERROR", 1);
                }
                tokio::select! {
                    () = ctx.cancel.cancelled() => {
                        lock(&ctx.status).stopped = true;
                        gauge("ERROR", -1);
                        return;
                    }
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn run_once(
    ctx: &QueryContext,
    failing: &mut bool,
    gauge: &impl Fn(&str, i64),
) -> SqlResult<()> {
    let log = &ctx.log;
    let source = ctx.plan.source.clone();
    let n = log.partition_count(&source.topic).await?;
    let sink_parts = log.partition_count(&ctx.sink.topic).await?;
    let checkpoint = load_checkpoint(log, &ctx.checkpoint_topic, &ctx.id).await?;
    let mut positions: Vec<(i32, i64)> = Vec::with_capacity(n as usize);
    for p in 0..n {
        let saved = checkpoint
            .as_ref()
            .and_then(|c| c.positions.iter().find(|(q, _)| *q == p).map(|(_, o)| *o));
        let pos = match saved {
            Some(o) => o,
            None => {
                let spec = match ctx.start {
                    Start::Earliest => OffsetSpec::Earliest,
                    Start::Latest => OffsetSpec::Latest,
                };
                log.offset_for(&source.topic, p, spec).await?
            }
        };
        positions.push((p, pos));
    }
    // Sink ends now; and, after a crash, the last source offset (per source partition)
    // whose output this query had already written past its checkpoint: those outputs are
    // recomputed but not written again.
    let tag = query_tag(&ctx.id);
    let mut out_end: BTreeMap<i32, i64> = BTreeMap::new();
    let mut written: BTreeMap<i32, i64> = BTreeMap::new();
    for p in 0..sink_parts {
        let end = log
            .offset_for(&ctx.sink.topic, p, OffsetSpec::Latest)
            .await?;
        out_end.insert(p, end);
        if let Some(c) = &checkpoint {
            let from = c
                .outputs
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(0, |(_, at)| *at);
            scan_written(log, &ctx.sink.topic, p, from, end, tag, &mut written).await?;
        }
    }
    let snapshot = |positions: &[(i32, i64)], out_end: &BTreeMap<i32, i64>| Checkpoint {
        positions: positions.to_vec(),
        outputs: out_end.iter().map(|(p, o)| (*p, *o)).collect(),
    };
    if checkpoint.is_none() {
        save_checkpoint(
            log,
            &ctx.checkpoint_topic,
            &ctx.id,
            &snapshot(&positions, &out_end),
        )
        .await?;
    }
    let mut decoder = Decoder::for_plan(&ctx.plan, ctx.registry.clone())?;
    let evaluator = Evaluator::new(ctx.plan.clone());
    let mut encoder = crate::exec::encoder_for(&ctx.plan, &ctx.sink, ctx.sink.key_format)?;
    let mut sub = TopicSubscription::new(log.clone(), source.topic.clone(), positions.clone());
    let mut last_checkpoint = Instant::now();
    let mut dirty = false;
    lock(&ctx.status).error = None;
    if *failing {
        *failing = false;
        gauge("ERROR", -1);
        gauge("RUNNING", 1);
    }
    let m = ctx.metrics.as_ref().map(|m| {
        (
            m.records_in.with_label_values(&[ctx.id.as_str()]),
            m.records_out.with_label_values(&[ctx.id.as_str()]),
            m.batch_seconds.with_label_values(&[ctx.id.as_str()]),
            m.clone(),
        )
    });
    let limits = ReadLimits {
        max_records: 4096,
        max_bytes: 4 * 1024 * 1024,
        max_wait: Duration::from_millis(200),
    };
    let mut failures = Vec::new();
    loop {
        // Cancellation first, and checked again once a read returns: a terminated query
        // writes nothing it read after TERMINATE.
        let read = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => None,
            r = sub.next_batch(limits) => Some(r?),
        };
        let records: Vec<ConsumedRecord> = match read {
            Some(r) if !ctx.cancel.is_cancelled() => r,
            _ => {
                if dirty {
                    save_checkpoint(
                        log,
                        &ctx.checkpoint_topic,
                        &ctx.id,
                        &snapshot(&positions, &out_end),
                    )
                    .await?;
                }
                return Ok(());
            }
        };
        if !records.is_empty() {
            let started = Instant::now();
            failures.clear();
            let input = decoder.decode(&records, &mut failures)?;
            let out = evaluator.eval(&input, &mut failures)?;
            let ts = rowtimes(&input, &out.rows);
            let src_parts = source_partitions(&input, &out.rows);
            let src_offsets = source_offsets(&input, &out.rows);
            let encoded = encoder.encode(&out.batch, &ts)?;
            let mut tags = Vec::with_capacity(encoded.len() * SOURCE_TAG_LEN);
            for (sp, so) in src_parts.iter().zip(&src_offsets) {
                tags.extend_from_slice(&tag.to_be_bytes());
                tags.extend_from_slice(&sp.to_be_bytes());
                tags.extend_from_slice(&so.to_be_bytes());
            }
            let tags = Bytes::from(tags);
            let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
            for (i, mut r) in encoded.into_iter().enumerate() {
                if written
                    .get(&src_parts[i])
                    .is_some_and(|w| src_offsets[i] <= *w)
                {
                    continue; // written before the crash
                }
                let p = match &r.key {
                    Some(k) => partition_for_key(k, sink_parts),
                    None => src_parts[i].rem_euclid(sink_parts),
                };
                r.headers.push(Header {
                    key: SOURCE_HEADER.to_string(),
                    value: Some(tags.slice(i * SOURCE_TAG_LEN..(i + 1) * SOURCE_TAG_LEN)),
                });
                by_partition.entry(p).or_default().push(r);
            }
            let mut written = 0u64;
            for (p, recs) in by_partition {
                let ack = log.append(&ctx.sink.topic, p, &recs).await?;
                written += recs.len() as u64;
                if let Some(last) = ack.offsets.last() {
                    out_end.insert(p, last + 1);
                }
            }
            if let Some((inc, outc, secs, all)) = &m {
                inc.inc_by(records.len() as u64);
                outc.inc_by(written);
                secs.observe(started.elapsed().as_secs_f64());
                for f in &failures {
                    let kind = match f.kind {
                        crate::exec::FailureKind::Deserialization => "deserialization",
                        crate::exec::FailureKind::Expression => "expression",
                        crate::exec::FailureKind::Serialization => "serialization",
                    };
                    all.rows_failed
                        .with_label_values(&[ctx.id.as_str(), kind])
                        .inc();
                }
            }
            log_failures(log, &ctx.processing_log_topic, &ctx.id, &source, &failures).await;
            // Positions advance only once the outputs are durable.
            for r in &records {
                if let Some(e) = positions.iter_mut().find(|(p, _)| *p == r.partition) {
                    e.1 = e.1.max(r.offset + 1);
                }
            }
            dirty = true;
            let mut st = lock(&ctx.status);
            st.processed += records.len() as u64;
            st.failed += failures.len() as u64;
        }
        if dirty && last_checkpoint.elapsed() >= ctx.checkpoint_interval {
            save_checkpoint(
                log,
                &ctx.checkpoint_topic,
                &ctx.id,
                &snapshot(&positions, &out_end),
            )
            .await?;
            last_checkpoint = Instant::now();
            dirty = false;
        }
    }
}

/// A push or pull query's rows, batch by batch: each row as JSON values in column order.
pub struct RowStream {
    sub: TopicSubscription,
    decoder: Decoder,
    evaluator: Evaluator,
    encoder: JsonEncoder,
    /// Pull queries stop at these ends.
    ends: Option<Vec<(i32, i64)>>,
    remaining: Option<u64>,
    log: Arc<dyn Log>,
    processing_log: String,
    id: String,
}

impl RowStream {
    /// Opens a query's stream: from the end (push, `latest`), the start (`earliest`), or
    /// from the start up to the current end (`pull`).
    pub async fn open(
        log: Arc<dyn Log>,
        plan: Arc<SelectPlan>,
        start: Start,
        pull: bool,
        processing_log: String,
        id: String,
        registry: Option<Arc<fleetwatch_schema::Registry>>,
    ) -> SqlResult<RowStream> {
        let source = plan.source.clone();
        let n = log.partition_count(&source.topic).await?;
        let mut positions = Vec::new();
        let mut ends = Vec::new();
        for p in 0..n {
            let spec = if pull || start == Start::Earliest {
                OffsetSpec::Earliest
            } else {
                OffsetSpec::Latest
            };
            positions.push((p, log.offset_for(&source.topic, p, spec).await?));
            ends.push((
                p,
                log.offset_for(&source.topic, p, OffsetSpec::Latest).await?,
            ));
        }
        Ok(RowStream {
            sub: TopicSubscription::new(log.clone(), source.topic.clone(), positions),
            decoder: Decoder::for_plan(&plan, registry)?,
            remaining: plan.limit,
            evaluator: Evaluator::new(plan),
            encoder: JsonEncoder::new(JsonOptions {
                wrap_single_value: true,
            }),
            ends: pull.then_some(ends),
            log,
            processing_log,
            id,
        })
    }

    /// The next rows (`None` when a pull query or a LIMIT is done).
    pub async fn next(&mut self) -> SqlResult<Option<Vec<Vec<Value>>>> {
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            if let Some(ends) = &self.ends
                && self
                    .sub
                    .positions()
                    .iter()
                    .all(|(p, o)| ends.iter().any(|(q, e)| q == p && o >= e))
            {
                return Ok(None);
            }
            let wait = if self.ends.is_some() {
                Duration::ZERO
            } else {
                Duration::from_millis(500)
            };
            let mut records = self.sub.next_batch(ReadLimits::waiting(wait)).await?;
            if let Some(ends) = &self.ends {
                records.retain(|r| ends.iter().any(|(p, e)| *p == r.partition && r.offset < *e));
            }
            if records.is_empty() {
                if self.ends.is_some() {
                    continue;
                }
                return Ok(Some(Vec::new()));
            }
            let mut failures = Vec::new();
            let input = self.decoder.decode(&records, &mut failures)?;
            let out = self.evaluator.eval(&input, &mut failures)?;
            log_failures(
                &self.log,
                &self.processing_log,
                &self.id,
                &self.evaluator.plan().source,
                &failures,
            )
            .await;
            let mut rows = batch_rows(&mut self.encoder, &out.batch)?;
            if let Some(r) = self.remaining.as_mut() {
                rows.truncate(*r as usize);
                *r -= rows.len() as u64;
            }
            if !rows.is_empty() {
                return Ok(Some(rows));
            }
        }
    }
}

/// Rows of a batch as JSON values in column order.
pub fn batch_rows(encoder: &mut JsonEncoder, batch: &RecordBatch) -> SqlResult<Vec<Vec<Value>>> {
    let mut buf = Vec::new();
    let mut ends = Vec::new();
    encoder
        .encode(batch, &mut buf, &mut ends)
        .map_err(|e| SqlError::Internal(e.to_string()))?;
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut start = 0;
    let mut rows = Vec::with_capacity(ends.len());
    for e in ends {
        let mut obj: serde_json::Map<String, Value> = serde_json::from_slice(&buf[start..e])
            .map_err(|e| SqlError::Internal(e.to_string()))?;
        start = e;
        rows.push(
            names
                .iter()
                .map(|n| obj.remove(n).unwrap_or(Value::Null))
                .collect(),
        );
    }
    Ok(rows)
}

/// `INSERT INTO s [(cols)] VALUES (…)`: one record, keyed and partitioned like query output.
pub async fn insert_values(
    log: &Arc<dyn Log>,
    functions: &FunctionRegistry,
    sink: &Source,
    columns: Option<&[String]>,
    values: &[datafusion_sql::sqlparser::ast::Expr],
) -> SqlResult<()> {
    let names: Vec<String> = match columns {
        Some(c) => c.to_vec(),
        None => sink.columns.iter().map(|c| c.name.clone()).collect(),
    };
    if names.len() != values.len() {
        return Err(SqlError::statement(format!(
            "Expected number columns and values to match: {}, {}",
            names.len(),
            values.len()
        )));
    }
    let mut given: BTreeMap<&str, &datafusion_sql::sqlparser::ast::Expr> = BTreeMap::new();
    for (n, v) in names.iter().zip(values) {
        if n == "ROWTIME" {
            given.insert("ROWTIME", v);
            continue;
        }
        if !sink.columns.iter().any(|c| &c.name == n) {
            return Err(SqlError::statement(format!(
                "Column name {n} does not exist."
            )));
        }
        given.insert(n.as_str(), v);
    }
    let schema = sink.schema();
    let one = RecordBatch::try_new_with_options(
        Arc::new(arrow::datatypes::Schema::empty()),
        vec![],
        &arrow::array::RecordBatchOptions::new().with_row_count(Some(1)),
    )
    .map_err(|e| SqlError::Internal(e.to_string()))?;
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let arr = match given.get(f.name().as_str()) {
            Some(e) => {
                let phys = crate::plan::plan_constant(functions, e, f.data_type())?;
                phys.evaluate(&one)
                    .and_then(|v| v.into_array(1))
                    .map_err(|e| {
                        SqlError::statement(format!(
                            "{}: {}",
                            f.name(),
                            crate::error::clean_datafusion(&e)
                        ))
                    })?
            }
            None if f.name() == "ROWTIME" => {
                Arc::new(Int64Array::from(vec![fleetwatch_core::now_ms()]))
            }
            None => arrow::array::new_null_array(f.data_type(), 1),
        };
        cols.push(arr);
    }
    let batch =
        RecordBatch::try_new(schema, cols).map_err(|e| SqlError::Internal(e.to_string()))?;
    let rowtime = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map_or(0, |a| a.value(0));
    write_row(log, sink, batch.columns()[3..].to_vec(), rowtime).await
}

/// Writes one row of a sink's columns (keys, then values), keyed, encoded and partitioned
/// as a query projecting every column would write it.
async fn write_row(
    log: &Arc<dyn Log>,
    sink: &Source,
    columns: Vec<arrow::array::ArrayRef>,
    rowtime: i64,
) -> SqlResult<()> {
    let key_format = if sink.columns.iter().any(|c| c.key) {
        sink.key_format
    } else {
        Format::None
    };
    let plan_like = crate::plan::columns_plan(&Arc::new(sink.clone()));
    let mut enc = crate::exec::encoder_for(&plan_like, sink, key_format)?;
    let out = RecordBatch::try_new(plan_like.schema(), columns)
        .map_err(|e| SqlError::Internal(e.to_string()))?;
    for r in enc.encode(&out, &[rowtime])? {
        let p = match &r.key {
            Some(k) => partition_for_key(k, sink.partitions.max(1)),
            None => 0,
        };
        log.append(&sink.topic, p, &[r]).await?;
    }
    Ok(())
}

/// `/inserts-stream`: one row given as a JSON object (fields matched to columns ignoring
/// case), written keyed and partitioned like query output.
pub async fn insert_json_row(
    log: &Arc<dyn Log>,
    sink: &Source,
    row: &serde_json::Map<String, Value>,
) -> SqlResult<()> {
    use fleetwatch_columnar::{JsonDecoder, RowDecoder};
    let all = Arc::new(arrow::datatypes::Schema::new(
        sink.columns
            .iter()
            .map(|c| arrow::datatypes::Field::new(&c.name, c.ty.to_arrow(), true))
            .collect::<Vec<_>>(),
    ));
    for k in row.keys() {
        if !sink.columns.iter().any(|c| c.name.eq_ignore_ascii_case(k))
            && !k.eq_ignore_ascii_case("ROWTIME")
        {
            return Err(SqlError::statement(format!(
                "Column name {} does not exist.",
                k.to_uppercase()
            )));
        }
    }
    let rowtime = row
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ROWTIME"))
        .and_then(|(_, v)| v.as_i64())
        .unwrap_or_else(fleetwatch_core::now_ms);
    let mut dec = JsonDecoder::new(
        all,
        JsonOptions {
            wrap_single_value: true,
        },
    )
    .map_err(|e| SqlError::Internal(e.to_string()))?;
    let text = serde_json::to_vec(row).map_err(|e| SqlError::Internal(e.to_string()))?;
    dec.append(&text)
        .map_err(|e| SqlError::statement(e.to_string()))?;
    let batch = dec.finish();
    write_row(log, sink, batch.columns().to_vec(), rowtime).await
}
