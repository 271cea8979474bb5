//! Running a planned stateless query on batches of records: decode (values and keys into
//! Arrow columns, pseudo-columns beside them), filter, project, encode.
//!
//! Errors stay per row, as in ksqlDB: a record that cannot be decoded is skipped; an
//! expression that fails on a row makes that column NULL (a filter that fails drops the
//! row); each is a [`RowFailure`] for the processing log, and the query goes on. The whole
//! batch is evaluated at once; only when that fails is it evaluated row by row to find the
//! rows at fault.

use crate::catalog::{Format, Source};
use crate::error::{SqlError, SqlResult, clean_datafusion};
use crate::plan::SelectPlan;
use arrow::array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, new_null_array,
};
use arrow::compute::{concat, filter_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use fleetwatch_columnar::{
    DelimitedDecoder, DelimitedEncoder, JsonDecoder, JsonEncoder, JsonOptions, KafkaDecoder,
    KafkaEncoder, RowDecoder, RowEncoder,
};
use fleetwatch_core::{ConsumedRecord, Record};
use std::sync::Arc;

/// Why a row was dropped or got a NULL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum FailureKind {
    /// The record's key or value is not a row of the source.
    #[serde(rename = "DESERIALIZATION_ERROR")]
    Deserialization,
    /// An expression failed on the row.
    #[serde(rename = "RECORD_PROCESSING_ERROR")]
    Expression,
    /// The output row could not be written.
    #[serde(rename = "SERIALIZATION_ERROR")]
    Serialization,
}

/// One row that failed, for the processing log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// What went wrong, naming the column.
    pub message: String,
}

/// Values in the Schema Registry's wire format: a magic byte, the schema id, the payload.
/// Avro payloads are decoded by a plan per writer schema id (straight into Arrow); JSON_SR
/// payloads are JSON.
struct WireDecoder {
    registry: Arc<fleetwatch_schema::Registry>,
    schema: SchemaRef,
    avro: bool,
    by_id: std::collections::HashMap<i32, fleetwatch_columnar::AvroDecoder>,
    json: Option<JsonDecoder>,
    /// Rows already finished, in arrival order, when the writer schema changed mid-batch.
    parts: Vec<RecordBatch>,
    current: Option<i32>,
}

impl WireDecoder {
    fn flush_current(&mut self) {
        if let Some(id) = self.current
            && let Some(d) = self.by_id.get_mut(&id)
            && !d.is_empty()
        {
            self.parts.push(d.finish());
        }
    }
}

impl RowDecoder for WireDecoder {
    fn append(&mut self, value: &[u8]) -> Result<(), fleetwatch_columnar::RowError> {
        let (id, payload) = fleetwatch_schema::wire::unframe(value)
            .map_err(|e| fleetwatch_columnar::RowError::new(e.to_string()))?;
        if !self.avro {
            return match self.json.as_mut() {
                Some(j) => j.append(payload),
                None => Err(fleetwatch_columnar::RowError::new("no JSON decoder")),
            };
        }
        if self.current != Some(id) {
            self.flush_current();
            if !self.by_id.contains_key(&id) {
                let parsed = self.registry.avro_by_id(id).map_err(|e| {
                    fleetwatch_columnar::RowError::new(format!("schema id {id}: {e}"))
                })?;
                let d = fleetwatch_columnar::AvroDecoder::new(self.schema.clone(), &parsed.schema)
                    .map_err(|e| {
                        fleetwatch_columnar::RowError::new(format!(
                            "schema id {id} does not fit the columns: {e}"
                        ))
                    })?;
                self.by_id.insert(id, d);
            }
            self.current = Some(id);
        }
        match self.by_id.get_mut(&id) {
            Some(d) => d.append(payload),
            None => Err(fleetwatch_columnar::RowError::new(format!(
                "schema id {id}"
            ))),
        }
    }

    fn append_null(&mut self) {
        if let Some(j) = self.json.as_mut() {
            return j.append_null();
        }
        if let Some(d) = self.current.and_then(|id| self.by_id.get_mut(&id)) {
            return d.append_null();
        }
        // No decoder yet: a batch of one all-NULL row of the columns.
        let cols = self
            .schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        if let Ok(b) = RecordBatch::try_new(self.schema.clone(), cols) {
            self.parts.push(b);
        }
    }

    fn len(&self) -> usize {
        let cur = self
            .current
            .and_then(|id| self.by_id.get(&id))
            .map_or(0, |d| d.len());
        self.parts.iter().map(RecordBatch::num_rows).sum::<usize>()
            + cur
            + self.json.as_ref().map_or(0, |j| j.len())
    }

    fn finish(&mut self) -> RecordBatch {
        if let Some(j) = self.json.as_mut() {
            return j.finish();
        }
        self.flush_current();
        let parts = std::mem::take(&mut self.parts);
        match parts.len() {
            0 => RecordBatch::new_empty(self.schema.clone()),
            1 => parts
                .into_iter()
                .next()
                .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())),
            _ => arrow::compute::concat_batches(&self.schema, &parts)
                .unwrap_or_else(|_| RecordBatch::new_empty(self.schema.clone())),
        }
    }
}

/// Decodes records of a source into batches of its schema.
pub struct Decoder {
    source: Arc<Source>,
    schema: SchemaRef,
    value: Box<dyn RowDecoder + Send>,
    key: Option<Box<dyn RowDecoder + Send>>,
    /// Index (in the value batch) of the TIMESTAMP column.
    timestamp: Option<usize>,
    /// `TIMESTAMP_FORMAT` of a string TIMESTAMP column (Java pattern, UTC).
    timestamp_format: Option<crate::functions::JavaFormat>,
    /// Per value column of the source: whether it is decoded (`None`: all). Columns a query
    /// does not use are skipped by the decoder and NULL in the batch.
    decoded: Option<Vec<bool>>,
}

fn decoder_for(
    format: Format,
    schema: SchemaRef,
    wrap: bool,
    delimiter: u8,
    what: &str,
) -> SqlResult<Box<dyn RowDecoder + Send>> {
    let fe = |e: fleetwatch_columnar::FormatError| SqlError::statement(format!("{what}: {e}"));
    Ok(match format {
        Format::Json => Box::new(
            JsonDecoder::new(
                schema,
                JsonOptions {
                    wrap_single_value: wrap,
                },
            )
            .map_err(fe)?,
        ),
        Format::Delimited => Box::new(DelimitedDecoder::new(schema, delimiter).map_err(fe)?),
        Format::Kafka => Box::new(KafkaDecoder::new(schema).map_err(fe)?),
        Format::Avro | Format::JsonSr => {
            return Err(SqlError::statement(format!(
                "{what}: the {} format is not supported yet by queries (use JSON, DELIMITED or KAFKA)",
                format.name()
            )));
        }
        Format::None => return Err(SqlError::statement(format!("{what}: NONE has no columns"))),
    })
}

impl Decoder {
    /// A decoder for a source's records (AVRO and JSON_SR need [`Decoder::with_registry`]).
    pub fn new(source: Arc<Source>) -> SqlResult<Decoder> {
        Self::with_registry(source, None)
    }

    /// A decoder that looks writer schemas up in the registry (AVRO, JSON_SR).
    pub fn with_registry(
        source: Arc<Source>,
        registry: Option<Arc<fleetwatch_schema::Registry>>,
    ) -> SqlResult<Decoder> {
        Self::for_columns(source, registry, None)
    }

    /// A decoder of only the value columns a plan uses (the others are skipped while
    /// scanning, not converted, and NULL in the batch): what queries use.
    pub fn for_plan(
        plan: &SelectPlan,
        registry: Option<Arc<fleetwatch_schema::Registry>>,
    ) -> SqlResult<Decoder> {
        let used = plan.used_columns();
        let n_pseudo = crate::catalog::PSEUDO_COLUMNS.len();
        let keys = plan.source.key_columns().count();
        let mut decoded: Vec<bool> = plan
            .source
            .value_columns()
            .enumerate()
            .map(|(i, _)| used.contains(&(n_pseudo + keys + i)))
            .collect();
        if let Some(ts) = &plan.source.timestamp
            && let Some(i) = plan.source.value_columns().position(|c| &c.name == ts)
        {
            decoded[i] = true;
        }
        // Only formats that find fields by name can skip some (DELIMITED is positional).
        let by_name = matches!(
            plan.source.value_format,
            Format::Json | Format::Avro | Format::JsonSr
        ) && (plan.source.value_columns().count() != 1
            || plan.source.wrap_single_value);
        if !by_name || decoded.iter().all(|d| *d) {
            return Self::for_columns(plan.source.clone(), registry, None);
        }
        Self::for_columns(plan.source.clone(), registry, Some(decoded))
    }

    fn for_columns(
        source: Arc<Source>,
        registry: Option<Arc<fleetwatch_schema::Registry>>,
        decoded: Option<Vec<bool>>,
    ) -> SqlResult<Decoder> {
        let full_values = source.value_schema();
        let value_schema = match &decoded {
            None => full_values.clone(),
            Some(d) => Arc::new(Schema::new(
                full_values
                    .fields()
                    .iter()
                    .zip(d)
                    .filter(|(_, keep)| **keep)
                    .map(|(f, _)| f.as_ref().clone())
                    .collect::<Vec<_>>(),
            )),
        };
        let value: Box<dyn RowDecoder + Send> = match (source.value_format, registry) {
            (Format::Avro | Format::JsonSr, Some(registry)) => {
                let avro = source.value_format == Format::Avro;
                Box::new(WireDecoder {
                    registry,
                    schema: value_schema.clone(),
                    avro,
                    by_id: Default::default(),
                    json: if avro {
                        None
                    } else {
                        Some(
                            JsonDecoder::new(
                                value_schema.clone(),
                                JsonOptions {
                                    wrap_single_value: source.wrap_single_value,
                                },
                            )
                            .map_err(|e| {
                                SqlError::statement(format!("{} values: {e}", source.name))
                            })?,
                        )
                    },
                    parts: Vec::new(),
                    current: None,
                })
            }
            (Format::Avro | Format::JsonSr, None) => {
                return Err(SqlError::statement(format!(
                    "{}: VALUE_FORMAT '{}' needs the schema registry",
                    source.name,
                    source.value_format.name()
                )));
            }
            (f, _) => decoder_for(
                f,
                value_schema.clone(),
                source.wrap_single_value,
                source.delimiter,
                &format!("{} values", source.name),
            )?,
        };
        let keys: Vec<_> = source.key_columns().collect();
        let key = if keys.is_empty() {
            None
        } else {
            let ks = Arc::new(Schema::new(
                keys.iter()
                    .map(|c| arrow::datatypes::Field::new(&c.name, c.ty.to_arrow(), true))
                    .collect::<Vec<_>>(),
            ));
            if source.key_format == Format::Kafka && keys.len() > 1 {
                return Err(SqlError::statement(format!(
                    "{}: KEY_FORMAT 'KAFKA' holds one key column; use KEY_FORMAT='JSON' for several",
                    source.name
                )));
            }
            // A single JSON key is a bare value, as ksqlDB writes it.
            Some(decoder_for(
                source.key_format,
                ks,
                keys.len() > 1,
                b',',
                &format!("{} keys", source.name),
            )?)
        };
        let timestamp = source
            .timestamp
            .as_ref()
            .and_then(|t| value_schema.fields().iter().position(|f| f.name() == t));
        let timestamp_format = match &source.timestamp_format {
            Some(f) => Some(
                crate::functions::JavaFormat::parse(f)
                    .map_err(|e| SqlError::statement(format!("TIMESTAMP_FORMAT: {e}")))?,
            ),
            None => None,
        };
        Ok(Decoder {
            decoded,
            timestamp_format,
            schema: source.schema(),
            source,
            value,
            key,
            timestamp,
        })
    }

    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Decodes records; those that fail are skipped and reported.
    pub fn decode(
        &mut self,
        records: &[ConsumedRecord],
        failures: &mut Vec<RowFailure>,
    ) -> SqlResult<RecordBatch> {
        let n = records.len();
        let mut rowtime = Vec::with_capacity(n);
        let mut partition = Vec::with_capacity(n);
        let mut offset = Vec::with_capacity(n);
        let mut key_ok: Vec<bool> = Vec::with_capacity(n);
        let mut any_bad_key = false;
        for r in records {
            let res = match &r.record.value {
                Some(v) => self.value.append(v),
                None => {
                    self.value.append_null();
                    Ok(())
                }
            };
            if let Err(e) = res {
                failures.push(RowFailure {
                    kind: FailureKind::Deserialization,
                    partition: r.partition,
                    offset: r.offset,
                    message: format!("{}: value: {e}", self.source.name),
                });
                continue;
            }
            if let Some(k) = self.key.as_mut() {
                let ok = match &r.record.key {
                    Some(key) => match k.append(key) {
                        Ok(()) => true,
                        Err(e) => {
                            failures.push(RowFailure {
                                kind: FailureKind::Deserialization,
                                partition: r.partition,
                                offset: r.offset,
                                message: format!("{}: key: {e}", self.source.name),
                            });
                            k.append_null();
                            false
                        }
                    },
                    None => {
                        k.append_null();
                        true
                    }
                };
                any_bad_key |= !ok;
                key_ok.push(ok);
            }
            rowtime.push(r.record.timestamp);
            partition.push(r.partition);
            offset.push(r.offset);
        }
        let values = self.value.finish();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let rowtime = match self.timestamp {
            Some(i) => event_time(values.column(i), &rowtime, self.timestamp_format.as_ref()),
            None => Arc::new(Int64Array::from(rowtime)) as ArrayRef,
        };
        cols.push(rowtime);
        cols.push(Arc::new(Int32Array::from(partition)));
        cols.push(Arc::new(Int64Array::from(offset)));
        if let Some(k) = self.key.as_mut() {
            cols.extend(k.finish().columns().iter().cloned());
        }
        match &self.decoded {
            None => cols.extend(values.columns().iter().cloned()),
            Some(d) => {
                let n = values.num_rows();
                let mut got = values.columns().iter();
                for (f, keep) in self.source.value_columns().zip(d) {
                    match if *keep { got.next() } else { None } {
                        Some(c) => cols.push(c.clone()),
                        None => cols.push(new_null_array(&f.ty.to_arrow(), n)),
                    }
                }
            }
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols).map_err(|e| {
            SqlError::Internal(format!("assembling a batch of {}: {e}", self.source.name))
        })?;
        if any_bad_key {
            let mask = BooleanArray::from(key_ok);
            return filter_record_batch(&batch, &mask)
                .map_err(|e| SqlError::Internal(e.to_string()));
        }
        Ok(batch)
    }
}

/// ROWTIME from a TIMESTAMP / BIGINT column (or a STRING one with `TIMESTAMP_FORMAT`); the
/// record time where it is NULL or does not parse.
fn event_time(
    col: &ArrayRef,
    record_time: &[i64],
    format: Option<&crate::functions::JavaFormat>,
) -> ArrayRef {
    let from: Option<Vec<Option<i64>>> = match col.data_type() {
        DataType::Utf8 => match (
            format,
            col.as_any().downcast_ref::<arrow::array::StringArray>(),
        ) {
            (Some(f), Some(a)) => Some(
                a.iter()
                    .map(|v| v.and_then(|s| f.parse_ms(s, &crate::functions::Zone::Utc).ok()))
                    .collect(),
            ),
            _ => None,
        },
        DataType::Int64 => Some(
            col.as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
        ),
        DataType::Timestamp(TimeUnit::Millisecond, _) => Some(
            col.as_any()
                .downcast_ref::<arrow::array::TimestampMillisecondArray>()
                .map(|a| a.iter().collect())
                .unwrap_or_default(),
        ),
        _ => None,
    };
    match from {
        Some(v) => Arc::new(Int64Array::from(
            v.into_iter()
                .zip(record_time)
                .map(|(e, r)| e.unwrap_or(*r))
                .collect::<Vec<_>>(),
        )),
        None => Arc::new(Int64Array::from(record_time.to_vec())),
    }
}

/// What one batch of a query gave.
#[derive(Debug)]
pub struct Output {
    /// The output columns (all of them, keys included).
    pub batch: RecordBatch,
    /// For each output row, its row in the input batch.
    pub rows: Vec<u32>,
}

/// Evaluates a plan's filter and projections on source batches.
pub struct Evaluator {
    plan: Arc<SelectPlan>,
    schema: SchemaRef,
}

impl Evaluator {
    /// An evaluator for a plan.
    pub fn new(plan: Arc<SelectPlan>) -> Self {
        let schema = plan.schema();
        Evaluator { plan, schema }
    }

    /// The plan.
    pub fn plan(&self) -> &SelectPlan {
        &self.plan
    }

    /// Filters and projects one batch of the source's schema.
    pub fn eval(&self, input: &RecordBatch, failures: &mut Vec<RowFailure>) -> SqlResult<Output> {
        let n = input.num_rows();
        let (batch, rows): (RecordBatch, Vec<u32>) = match &self.plan.filter {
            None => (input.clone(), (0..n as u32).collect()),
            Some(f) => {
                let mask = match f.evaluate(input).and_then(|v| v.into_array(n)) {
                    Ok(a) => as_mask(&a),
                    Err(_) => {
                        // Find the failing rows; they are dropped.
                        let mut keep = Vec::with_capacity(n);
                        for i in 0..n {
                            let row = input.slice(i, 1);
                            match f.evaluate(&row).and_then(|v| v.into_array(1)) {
                                Ok(a) => keep.push(as_mask(&a).value(0)),
                                Err(e) => {
                                    failures.push(failure(
                                        input,
                                        i,
                                        format!("WHERE: {}", clean_datafusion(&e)),
                                    ));
                                    keep.push(false);
                                }
                            }
                        }
                        BooleanArray::from(keep)
                    }
                };
                let rows: Vec<u32> = (0..n as u32).filter(|i| mask.value(*i as usize)).collect();
                let filtered = filter_record_batch(input, &mask)
                    .map_err(|e| SqlError::Internal(e.to_string()))?;
                (filtered, rows)
            }
        };
        let m = batch.num_rows();
        let mut cols = Vec::with_capacity(self.plan.columns.len());
        for c in &self.plan.columns {
            let arr = match c.expr.evaluate(&batch).and_then(|v| v.into_array(m)) {
                Ok(a) => a,
                Err(_) => {
                    let mut parts: Vec<ArrayRef> = Vec::with_capacity(m);
                    for i in 0..m {
                        let row = batch.slice(i, 1);
                        match c.expr.evaluate(&row).and_then(|v| v.into_array(1)) {
                            Ok(a) => parts.push(a),
                            Err(e) => {
                                failures.push(failure(
                                    &batch,
                                    i,
                                    format!("column {}: {}", c.name, clean_datafusion(&e)),
                                ));
                                parts.push(new_null_array(&c.data_type, 1));
                            }
                        }
                    }
                    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                    if refs.is_empty() {
                        new_null_array(&c.data_type, 0)
                    } else {
                        concat(&refs).map_err(|e| SqlError::Internal(e.to_string()))?
                    }
                }
            };
            let arr = if arr.data_type() == &c.data_type {
                arr
            } else {
                arrow::compute::cast(&arr, &c.data_type)
                    .map_err(|e| SqlError::Internal(e.to_string()))?
            };
            cols.push(arr);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)
            .map_err(|e| SqlError::Internal(e.to_string()))?;
        Ok(Output { batch, rows })
    }
}

fn as_mask(a: &ArrayRef) -> BooleanArray {
    match a.as_any().downcast_ref::<BooleanArray>() {
        // NULL is not true: the row is dropped.
        Some(b) => b.iter().map(|v| Some(v.unwrap_or(false))).collect(),
        None => BooleanArray::from(vec![false; a.len()]),
    }
}

fn failure(batch: &RecordBatch, row: usize, message: String) -> RowFailure {
    let p = batch
        .column(1)
        .as_any()
        .downcast_ref::<Int32Array>()
        .map_or(-1, |a| a.value(row));
    let o = batch
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map_or(-1, |a| a.value(row));
    RowFailure {
        kind: FailureKind::Expression,
        partition: p,
        offset: o,
        message,
    }
}

/// The encoder of a plan's output into a sink, by the sink's formats (AVRO with the schema
/// id registered for it).
pub fn encoder_for(plan: &SelectPlan, sink: &Source, key_format: Format) -> SqlResult<Encoder> {
    match sink.value_format {
        Format::Avro => {
            let id = sink.value_schema_id.ok_or_else(|| {
                SqlError::statement(format!(
                    "{}: no registered AVRO value schema to write with",
                    sink.name
                ))
            })?;
            Encoder::new_avro(plan, key_format, sink.wrap_single_value, id)
        }
        f => Encoder::new(plan, key_format, f, sink.wrap_single_value),
    }
}

/// Encodes output rows as records of a sink: key columns to the key, the rest to the value.
pub struct Encoder {
    value: Box<dyn RowEncoder + Send>,
    key: Option<Box<dyn RowEncoder + Send>>,
    key_idx: Vec<usize>,
    value_idx: Vec<usize>,
    value_schema: SchemaRef,
    key_schema: SchemaRef,
    buf: Vec<u8>,
    ends: Vec<usize>,
    kbuf: Vec<u8>,
    kends: Vec<usize>,
    /// Values are framed in the registry's wire format with this schema id.
    wire_id: Option<i32>,
    framed: Vec<u8>,
}

impl Encoder {
    /// An encoder for a plan's output in these formats.
    pub fn new(
        plan: &SelectPlan,
        key_format: Format,
        value_format: Format,
        wrap_single_value: bool,
    ) -> SqlResult<Encoder> {
        let key_idx: Vec<usize> = plan
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.key)
            .map(|(i, _)| i)
            .collect();
        let value_idx: Vec<usize> = plan
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.key)
            .map(|(i, _)| i)
            .collect();
        let value: Box<dyn RowEncoder + Send> = match value_format {
            Format::Json => Box::new(JsonEncoder::new(JsonOptions { wrap_single_value })),
            Format::Delimited => Box::new(DelimitedEncoder::new(b',')),
            Format::Kafka => Box::new(KafkaEncoder::new()),
            f => {
                return Err(SqlError::statement(format!(
                    "writing the {} format is not supported yet (use JSON, DELIMITED or KAFKA)",
                    f.name()
                )));
            }
        };
        let key: Option<Box<dyn RowEncoder + Send>> = if key_idx.is_empty() {
            None
        } else {
            Some(match key_format {
                Format::Kafka if key_idx.len() == 1 => Box::new(KafkaEncoder::new()),
                Format::Kafka => {
                    return Err(SqlError::statement(
                        "KEY_FORMAT 'KAFKA' holds one key column; use KEY_FORMAT='JSON' for several",
                    ));
                }
                Format::Json => Box::new(JsonEncoder::new(JsonOptions {
                    wrap_single_value: key_idx.len() > 1,
                })),
                f => {
                    return Err(SqlError::statement(format!(
                        "KEY_FORMAT '{}' is not supported yet (use KAFKA or JSON)",
                        f.name()
                    )));
                }
            })
        };
        let schema = plan.schema();
        Ok(Encoder {
            value,
            key,
            value_schema: Arc::new(
                schema
                    .project(&value_idx)
                    .map_err(|e| SqlError::Internal(e.to_string()))?,
            ),
            key_schema: Arc::new(
                schema
                    .project(&key_idx)
                    .map_err(|e| SqlError::Internal(e.to_string()))?,
            ),
            key_idx,
            value_idx,
            buf: Vec::new(),
            ends: Vec::new(),
            kbuf: Vec::new(),
            kends: Vec::new(),
            wire_id: None,
            framed: Vec::new(),
        })
    }

    /// An encoder writing values as Avro in the registry's wire format under `schema_id`
    /// (the schema [`fleetwatch_columnar::avro_schema_for`] gives for the value columns).
    pub fn new_avro(
        plan: &SelectPlan,
        key_format: Format,
        wrap_single_value: bool,
        schema_id: i32,
    ) -> SqlResult<Encoder> {
        let mut e = Encoder::new(plan, key_format, Format::Json, wrap_single_value)?;
        e.value = Box::new(
            fleetwatch_columnar::AvroEncoder::new(&e.value_schema)
                .map_err(|err| SqlError::statement(format!("writing AVRO: {err}")))?,
        );
        e.wire_id = Some(schema_id);
        Ok(e)
    }

    /// The records of one output batch, with the given timestamps.
    pub fn encode(&mut self, out: &RecordBatch, timestamps: &[i64]) -> SqlResult<Vec<Record>> {
        let n = out.num_rows();
        let values = RecordBatch::try_new(
            self.value_schema.clone(),
            self.value_idx
                .iter()
                .map(|i| out.column(*i).clone())
                .collect(),
        )
        .map_err(|e| SqlError::Internal(e.to_string()))?;
        self.buf.clear();
        self.ends.clear();
        self.value
            .encode(&values, &mut self.buf, &mut self.ends)
            .map_err(|e| SqlError::statement(format!("writing a value: {e}")))?;
        if let Some(id) = self.wire_id {
            // Prefix every value with the magic byte and the schema id.
            self.framed.clear();
            self.framed.reserve(self.buf.len() + 5 * n);
            let mut start = 0;
            for e in self.ends.iter_mut() {
                self.framed.push(0);
                self.framed.extend_from_slice(&id.to_be_bytes());
                self.framed.extend_from_slice(&self.buf[start..*e]);
                start = *e;
                *e = self.framed.len();
            }
            std::mem::swap(&mut self.buf, &mut self.framed);
        }
        let buf = Bytes::from(std::mem::take(&mut self.buf));
        let mut keys: Option<(Bytes, Vec<usize>, Vec<bool>)> = None;
        if let Some(k) = self.key.as_mut() {
            let kb = RecordBatch::try_new(
                self.key_schema.clone(),
                self.key_idx
                    .iter()
                    .map(|i| out.column(*i).clone())
                    .collect(),
            )
            .map_err(|e| SqlError::Internal(e.to_string()))?;
            let nulls: Vec<bool> = (0..n)
                .map(|r| kb.columns().iter().all(|c| c.is_null(r)))
                .collect();
            self.kbuf.clear();
            self.kends.clear();
            k.encode(&kb, &mut self.kbuf, &mut self.kends)
                .map_err(|e| SqlError::statement(format!("writing a key: {e}")))?;
            keys = Some((
                Bytes::from(std::mem::take(&mut self.kbuf)),
                std::mem::take(&mut self.kends),
                nulls,
            ));
        }
        let mut records = Vec::with_capacity(n);
        let mut start = 0;
        for r in 0..n {
            let end = self.ends[r];
            let value = buf.slice(start..end);
            start = end;
            let key = keys.as_ref().and_then(|(kb, ke, nulls)| {
                let ks = if r == 0 { 0 } else { ke[r - 1] };
                (!nulls[r]).then(|| kb.slice(ks..ke[r]))
            });
            // Built directly: `Record::new` would read the clock for a time replaced at once.
            records.push(Record {
                key,
                value: Some(value),
                headers: Vec::with_capacity(1),
                timestamp: timestamps.get(r).copied().unwrap_or(0),
                timestamp_type: fleetwatch_core::TimestampType::CreateTime,
            });
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::functions::{FunctionContext, FunctionRegistry};
    use crate::parser::{KsqlStatement, parse_one};

    fn source(sql: &str) -> Source {
        let KsqlStatement::CreateSource {
            name,
            kind,
            columns,
            ..
        } = parse_one(sql).unwrap().kind
        else {
            panic!()
        };
        Source {
            columns: crate::catalog::check_columns(&name, kind, &columns).unwrap(),
            name,
            kind,
            topic: "t".into(),
            key_format: Format::Kafka,
            value_format: Format::Json,
            timestamp: None,
            timestamp_format: None,
            wrap_single_value: true,
            delimiter: b',',
            value_schema_id: None,
            partitions: 1,
            statement: sql.into(),
            written_by: None,
        }
    }

    fn rec(offset: i64, key: &str, value: &str) -> ConsumedRecord {
        ConsumedRecord {
            partition: 0,
            offset,
            record: Record::new(
                Some(Bytes::from(key.to_string())),
                Some(Bytes::from(value.to_string())),
            )
            .with_timestamp(1000 + offset),
        }
    }

    fn run(
        select: &str,
        records: &[ConsumedRecord],
    ) -> (Vec<(Option<String>, String)>, Vec<RowFailure>) {
        let mut catalog = Catalog::default();
        catalog.put(source(
            "CREATE STREAM p (vin STRING KEY, card STRING, amount DOUBLE, loc STRUCT<lat DOUBLE, lon DOUBLE>, tags ARRAY<STRING>, n STRING) WITH (kafka_topic='t')",
        ));
        let functions = FunctionRegistry::ksql(&FunctionContext::default());
        let KsqlStatement::Query(q) = parse_one(select).unwrap().kind else {
            panic!()
        };
        let plan = Arc::new(
            crate::plan::plan_select(&catalog, &functions, &q)
                .unwrap_or_else(|e| panic!("{select}: {e}")),
        );
        let mut dec = Decoder::new(plan.source.clone()).unwrap();
        let mut failures = Vec::new();
        let batch = dec.decode(records, &mut failures).unwrap();
        let out = Evaluator::new(plan.clone())
            .eval(&batch, &mut failures)
            .unwrap();
        let mut enc = Encoder::new(&plan, Format::Kafka, Format::Json, true).unwrap();
        let recs = enc
            .encode(&out.batch, &vec![0; out.batch.num_rows()])
            .unwrap();
        let rows = recs
            .into_iter()
            .map(|r| {
                (
                    r.key.map(|k| String::from_utf8(k.to_vec()).unwrap()),
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        (rows, failures)
    }

    #[test]
    fn filter_project_mask_struct_and_key() {
        let recs = [
            rec(
                0,
                "V1",
                r#"{"card":"4111111111111111","amount":12.5,"loc":{"lat":48.1,"lon":11.5},"tags":["a","b"]}"#,
            ),
            rec(1, "V2", r#"{"card":"5500000000000004","amount":3.0}"#),
            rec(2, "V3", r#"{"card":"x", "amount": "lots"}"#),
            rec(
                3,
                "V4",
                r#"{"card":"340000000000009","amount":99,"loc":{"lat":1,"lon":2}}"#,
            ),
        ];
        let (rows, failures) = run(
            "SELECT vin, mask_keep_right(card, 4) AS card, loc->lat, ucase('x') AS u, amount * 2 AS twice, tags[1] AS t0 FROM p WHERE amount > 10 EMIT CHANGES",
            &recs,
        );
        assert_eq!(
            rows,
            vec![
                (
                    Some("V1".into()),
                    r#"{"CARD":"nnnnnnnnnnnn1111","LAT":48.1,"U":"X","TWICE":25.0,"T0":"a"}"#
                        .into()
                ),
                (
                    Some("V4".into()),
                    r#"{"CARD":"nnnnnnnnnnn0009","LAT":1.0,"U":"X","TWICE":198.0,"T0":null}"#
                        .into()
                ),
            ]
        );
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(
            (failures[0].kind.clone(), failures[0].offset),
            (FailureKind::Deserialization, 2)
        );
        assert!(failures[0].message.contains("AMOUNT"), "{failures:?}");
    }

    #[test]
    fn a_failing_expression_nulls_only_its_rows() {
        let recs = [
            rec(0, "V1", r#"{"n":"12"}"#),
            rec(1, "V2", r#"{"n":"twelve"}"#),
            rec(2, "V3", r#"{"n":"7"}"#),
        ];
        let (rows, failures) = run("SELECT vin, CAST(n AS INT) AS i FROM p EMIT CHANGES", &recs);
        let values: Vec<&str> = rows.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, vec![r#"{"I":12}"#, r#"{"I":null}"#, r#"{"I":7}"#]);
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].kind.clone(), failures[0].offset),
            (FailureKind::Expression, 1)
        );
        assert!(failures[0].message.starts_with("column I:"), "{failures:?}");
    }

    #[test]
    fn partition_by_rekeys_and_select_star_leaves_pseudo_columns_out() {
        let recs = [rec(0, "V1", r#"{"card":"c1","amount":1}"#)];
        let (rows, _) = run("SELECT * FROM p PARTITION BY card EMIT CHANGES", &recs);
        assert_eq!(rows[0].0.as_deref(), Some("c1"));
        assert_eq!(
            rows[0].1,
            r#"{"VIN":"V1","AMOUNT":1.0,"LOC":null,"TAGS":null,"N":null}"#
        );
        let (rows, _) = run(
            "SELECT vin, rowtime AS rt, rowoffset AS ro FROM p EMIT CHANGES",
            &recs,
        );
        assert_eq!(rows[0].1, r#"{"RT":1000,"RO":0}"#);
    }
}
