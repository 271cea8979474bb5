//! `topics`, `produce` and `consume`: the log from the command line, through the configured
//! backend (the embedded data directory, or a Kafka cluster).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use fleetwatch_core::partitioner::Partitioner;
use fleetwatch_core::produce::ProduceRecord;
use fleetwatch_core::{
    ConsumedRecord, JoinOptions, Log, OffsetSpec, ReadLimits, Record, TopicConfig,
    TopicSubscription,
};
use fleetwatch_schema::avro::ParsedAvro;
use fleetwatch_schema::codec::{AvroCodec, JsonSchemaCodec};
use fleetwatch_schema::types::RegisterRequest;
use fleetwatch_schema::{Registry, SchemaRegistryConfig, json_schema, wire};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `topics create`.
pub async fn topics_create(
    log: &dyn Log,
    name: &str,
    partitions: i32,
    settings: &[String],
) -> anyhow::Result<()> {
    let mut config = TopicConfig::with_partitions(partitions);
    for s in settings {
        let (k, v) = s.split_once('=').with_context(|| {
            format!("--topic-config {s:?}: expected NAME=VALUE, e.g. retention.ms=86400000")
        })?;
        config.apply_property(k.trim(), v.trim())?;
    }
    log.create_topic(name, config).await?;
    println!("created topic {name} with {partitions} partition(s)");
    Ok(())
}

/// `topics describe`: JSON on stdout.
pub async fn topics_describe(log: &dyn Log, name: &str) -> anyhow::Result<()> {
    let d = log.describe_topic(name).await?;
    let configs: BTreeMap<String, String> = d.config.to_properties().into_iter().collect();
    let out = json!({
        "name": d.name,
        "partitions": d.partitions.iter().map(|p| json!({
            "partition": p.partition,
            "log_start_offset": p.log_start_offset,
            "high_watermark": p.high_watermark,
        })).collect::<Vec<_>>(),
        "configs": configs,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// How record values are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ValueFormat {
    /// The bytes as they are (a line of text).
    #[default]
    Raw,
    /// Avro in the Schema Registry wire format (a JSON line in, a JSON document out).
    Avro,
    /// JSON validated by a JSON Schema, in the wire format (`JSON_SR`).
    JsonSr,
}

/// Turns a produced line into the value's bytes.
pub enum ValueEncoder {
    /// As it is.
    Raw,
    /// Avro datum of a registered schema.
    Avro {
        /// Schema id.
        id: i32,
        /// The parsed schema.
        schema: Arc<ParsedAvro>,
    },
    /// A JSON document checked against a registered JSON Schema.
    JsonSchema {
        /// Schema id.
        id: i32,
        /// Its validator.
        codec: Box<JsonSchemaCodec>,
    },
}

/// The schema a `produce --value-format avro|json-sr` registers before it encodes.
pub struct SchemaFile {
    /// Its file (for messages).
    pub path: PathBuf,
    /// `--subject`, or `<topic>-value`.
    pub subject: String,
    /// The schema text.
    pub text: String,
    /// `AVRO` or `JSON`.
    pub schema_type: &'static str,
}

impl SchemaFile {
    /// What `format` needs registered (`None` for raw values).
    pub fn for_produce(
        format: ValueFormat,
        topic: &str,
        schema_file: Option<&Path>,
        subject: Option<&str>,
    ) -> anyhow::Result<Option<SchemaFile>> {
        if format == ValueFormat::Raw {
            return Ok(None);
        }
        let path =
            schema_file.context("--schema FILE is required with --value-format avro or json-sr")?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading schema file {}", path.display()))?;
        Ok(Some(SchemaFile {
            path: path.to_path_buf(),
            subject: subject.map_or_else(|| format!("{topic}-value"), String::from),
            text,
            schema_type: if format == ValueFormat::Avro {
                "AVRO"
            } else {
                "JSON"
            },
        }))
    }

    /// The encoder for this schema, registered under `id`.
    pub fn encoder(&self, id: i32) -> anyhow::Result<ValueEncoder> {
        Ok(if self.schema_type == "AVRO" {
            ValueEncoder::Avro {
                id,
                schema: Arc::new(fleetwatch_schema::avro::parse(&self.text, &[])?),
            }
        } else {
            ValueEncoder::JsonSchema {
                id,
                codec: Box::new(JsonSchemaCodec::new(&json_schema::parse(&self.text)?)?),
            }
        })
    }
}

impl ValueEncoder {
    /// Registers `schema_file` under `{topic}-value` (or `subject`) when the format needs one.
    pub async fn new(
        format: ValueFormat,
        log: Arc<dyn Log>,
        topic: &str,
        schema_file: Option<&Path>,
        subject: Option<&str>,
    ) -> anyhow::Result<Self> {
        let Some(f) = SchemaFile::for_produce(format, topic, schema_file, subject)? else {
            return Ok(ValueEncoder::Raw);
        };
        let registry = SchemaRegistryConfig::default().build(log).await?;
        let req = RegisterRequest {
            schema: f.text.clone(),
            schema_type: Some(f.schema_type.into()),
            ..Default::default()
        };
        let id = registry
            .register(&f.subject, &req, false)
            .await
            .with_context(|| {
                format!(
                    "registering {} under subject {}",
                    f.path.display(),
                    f.subject
                )
            })?;
        f.encoder(id)
    }

    /// The Avro codec, built once per `produce` (it resolves the schema's names).
    pub(crate) fn avro_codec(&self) -> anyhow::Result<Option<AvroCodec<'_>>> {
        Ok(match self {
            ValueEncoder::Avro { schema, .. } => Some(AvroCodec::new(schema)?),
            _ => None,
        })
    }

    pub(crate) fn encode(
        &self,
        avro: Option<&AvroCodec<'_>>,
        text: String,
        line_no: usize,
    ) -> anyhow::Result<Bytes> {
        let doc = || -> anyhow::Result<Value> {
            serde_json::from_str(&text)
                .with_context(|| format!("stdin line {line_no}: invalid JSON"))
        };
        Ok(match self {
            ValueEncoder::Raw => Bytes::from(text),
            ValueEncoder::Avro { id, .. } => {
                let codec = avro.context("the Avro codec was not built")?;
                let datum = codec
                    .encode_json(&doc()?)
                    .with_context(|| format!("stdin line {line_no}"))?;
                Bytes::from(wire::frame(*id, &datum))
            }
            ValueEncoder::JsonSchema { id, codec } => {
                codec
                    .validate(&doc()?)
                    .with_context(|| format!("stdin line {line_no}"))?;
                Bytes::from(wire::frame(*id, text.as_bytes()))
            }
        })
    }
}

/// Reads stdin line by line without blocking the async threads.
pub struct StdinLines {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>,
    line_no: usize,
}

impl StdinLines {
    /// Stdin.
    pub fn new() -> Self {
        use tokio::io::AsyncBufReadExt;
        StdinLines {
            lines: tokio::io::BufReader::with_capacity(1 << 16, tokio::io::stdin()).lines(),
            line_no: 0,
        }
    }

    /// The next line and its number (from 1), or `None` at the end.
    pub async fn next(&mut self) -> anyhow::Result<Option<(usize, String)>> {
        self.line_no += 1;
        let n = self.line_no;
        Ok(self
            .lines
            .next_line()
            .await
            .with_context(|| format!("reading stdin line {n}"))?
            .map(|l| (n, l)))
    }
}

impl Default for StdinLines {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits a produced line into key and value text.
pub fn split_line(
    line: String,
    key_separator: Option<&str>,
    line_no: usize,
) -> anyhow::Result<(Option<Bytes>, String)> {
    Ok(match key_separator {
        Some(sep) => match line.split_once(sep) {
            Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
            None => bail!(
                "stdin line {line_no}: no key separator {sep:?} in {:?}",
                truncate(&line)
            ),
        },
        None => (None, line),
    })
}

/// `produce`: one record per stdin line, `batch` lines per request, routed like every other
/// producer (`fleetwatch_core::produce`: by key hash, round-robin, or `partition`).
pub async fn produce(
    log: &dyn Log,
    topic: &str,
    partition: Option<i32>,
    key_separator: Option<&str>,
    batch: usize,
    encoder: &ValueEncoder,
) -> anyhow::Result<()> {
    let n = log.partition_count(topic).await?;
    if let Some(p) = partition
        && !(0..n).contains(&p)
    {
        bail!("--partition {p}: topic {topic} has partitions 0..{}", n - 1);
    }
    let partitioner = Partitioner::new();
    let avro = encoder.avro_codec()?;
    let mut stdin = StdinLines::new();
    let mut total = 0usize;
    let mut last_line = 0;
    loop {
        let mut pending: Vec<ProduceRecord> = Vec::with_capacity(batch.min(10_000));
        while pending.len() < batch {
            let Some((line_no, line)) = stdin.next().await? else {
                break;
            };
            last_line = line_no;
            let (key, value) = split_line(line, key_separator, line_no)?;
            let value = encoder.encode(avro.as_ref(), value, line_no)?;
            pending.push(ProduceRecord {
                partition,
                record: Record::new(key, Some(value)),
            });
        }
        if pending.is_empty() {
            break;
        }
        let count = pending.len();
        let outcomes = fleetwatch_core::produce::produce(log, &partitioner, topic, pending)
            .await
            .with_context(|| format!("producing to {topic} (stdin up to line {last_line})"))?;
        if let Some(o) = outcomes.iter().find(|o| o.result.is_err()) {
            let e = o
                .result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
            bail!(
                "appending to {topic}-{} (stdin up to line {last_line}): {e}; {} record(s) produced before this batch, {ok} of this batch's {count} stored",
                o.partition,
                total
            );
        }
        total += count;
    }
    log.flush().await?;
    eprintln!("produced {total} record(s) to {topic}");
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn bytes_field(obj: &mut serde_json::Map<String, Value>, name: &str, b: Option<&Bytes>) {
    match b {
        None => {
            obj.insert(name.into(), Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => {
                obj.insert(name.into(), Value::String(s.to_string()));
            }
            Err(_) => {
                obj.insert(format!("{name}_b64"), Value::String(B64.encode(b)));
            }
        },
    }
}

/// One consumed record as a JSON line: strings for UTF-8 keys and values, `key_b64` /
/// `value_b64` (base64) for other bytes.
pub fn record_json(topic: &str, r: &ConsumedRecord) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("topic".into(), json!(topic));
    obj.insert("partition".into(), json!(r.partition));
    obj.insert("offset".into(), json!(r.offset));
    obj.insert("timestamp".into(), json!(r.record.timestamp));
    bytes_field(&mut obj, "key", r.record.key.as_ref());
    bytes_field(&mut obj, "value", r.record.value.as_ref());
    if !r.record.headers.is_empty() {
        let hs: Vec<Value> = r
            .record
            .headers
            .iter()
            .map(|h| {
                let mut m = serde_json::Map::new();
                m.insert("key".into(), json!(h.key));
                bytes_field(&mut m, "value", h.value.as_ref());
                Value::Object(m)
            })
            .collect();
        obj.insert("headers".into(), Value::Array(hs));
    }
    Value::Object(obj)
}

/// Where `consume` starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// The end (only new records), like kafka-console-consumer.
    Latest,
    /// The first record held.
    Beginning,
    /// This offset.
    Offset(i64),
    /// The first record at or after this time (ms).
    Timestamp(i64),
}

/// `consume` options.
pub struct ConsumeOptions {
    /// Topic.
    pub topic: String,
    /// Only this partition (default: all).
    pub partition: Option<i32>,
    /// Start position (without a group).
    pub start: Start,
    /// Consume as a member of this group, committing as it goes.
    pub group: Option<String>,
    /// Stop after this many records.
    pub max_messages: Option<usize>,
    /// Keep waiting for new records instead of stopping when idle.
    pub follow: bool,
    /// Stop after this long without new records (unless `follow`).
    pub idle_timeout: Duration,
    /// Decode wire-format values through this registry.
    pub decoder: Option<Arc<Registry>>,
}

/// Puts a decoded value (and its schema id) into a [`record_json`] line in place of the raw
/// bytes; a value that does not decode is shown with the reason (`value_error`), not dropped.
pub fn attach_decoded(line: &mut Value, decoded: Result<(i32, Value), String>) {
    let Value::Object(obj) = line else {
        return;
    };
    match decoded {
        Ok((id, doc)) => {
            obj.remove("value_b64");
            obj.insert("value".into(), doc);
            obj.insert("schema_id".into(), json!(id));
        }
        Err(e) => {
            obj.insert("value_error".into(), json!(e));
        }
    }
}

fn emit(
    out: &mut impl Write,
    topic: &str,
    r: &ConsumedRecord,
    decoder: Option<&Registry>,
) -> anyhow::Result<()> {
    let mut line = record_json(topic, r);
    if let (Some(reg), Some(v)) = (decoder, r.record.value.as_ref()) {
        attach_decoded(&mut line, reg.decode_value(v).map_err(|e| e.to_string()));
    }
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `consume`: JSON lines on stdout.
pub async fn consume(log: Arc<dyn Log>, o: ConsumeOptions) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let max = o.max_messages.unwrap_or(usize::MAX);
    let mut seen = 0usize;
    let mut idle_since = Instant::now();
    let wait = Duration::from_millis(200);
    if let Some(group) = &o.group {
        let mut opts = JoinOptions::new(group.clone(), vec![o.topic.clone()]);
        opts.client_id = "fleetwatch-cli".into();
        opts.reset = match o.start {
            Start::Latest => OffsetSpec::Latest,
            _ => OffsetSpec::Earliest,
        };
        let mut member = log.join_group(opts).await?;
        while seen < max && (o.follow || idle_since.elapsed() < o.idle_timeout) {
            let batches = member
                .poll(ReadLimits {
                    max_records: (max - seen).min(10_000),
                    max_wait: wait,
                    ..Default::default()
                })
                .await?;
            for b in &batches {
                for r in &b.records {
                    emit(&mut out, &b.topic, r, o.decoder.as_deref())?;
                    seen += 1;
                }
            }
            if !batches.is_empty() {
                idle_since = Instant::now();
                out.flush()?;
                member.commit_position().await?;
            }
        }
        member.commit_position().await?;
        member.leave().await?;
    } else {
        let n = log.partition_count(&o.topic).await?;
        let partitions: Vec<i32> = match o.partition {
            Some(p) if (0..n).contains(&p) => vec![p],
            Some(p) => bail!(
                "--partition {p}: topic {} has partitions 0..{}",
                o.topic,
                n - 1
            ),
            None => (0..n).collect(),
        };
        let mut positions = Vec::new();
        for p in &partitions {
            let pos = match o.start {
                Start::Latest => log.offset_for(&o.topic, *p, OffsetSpec::Latest).await?,
                Start::Beginning => log.offset_for(&o.topic, *p, OffsetSpec::Earliest).await?,
                Start::Timestamp(ts) => {
                    log.offset_for(&o.topic, *p, OffsetSpec::Timestamp(ts))
                        .await?
                }
                Start::Offset(off) => off,
            };
            positions.push((*p, pos));
        }
        // One subscription over every partition: woken by an append to any of them.
        let mut sub = TopicSubscription::new(log.clone(), o.topic.clone(), positions);
        while seen < max && (o.follow || idle_since.elapsed() < o.idle_timeout) {
            let wait = if o.follow {
                Duration::from_secs(1)
            } else {
                o.idle_timeout.saturating_sub(idle_since.elapsed())
            };
            let records = sub
                .next_batch(ReadLimits {
                    max_records: (max - seen).min(10_000),
                    max_wait: wait,
                    ..Default::default()
                })
                .await
                .with_context(|| format!("reading {} at {:?}", o.topic, sub.positions()))?;
            for r in &records {
                emit(&mut out, &o.topic, r, o.decoder.as_deref())?;
                seen += 1;
            }
            if !records.is_empty() {
                idle_since = Instant::now();
                out.flush()?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
