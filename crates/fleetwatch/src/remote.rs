//! The CLI beside a running server: `topics`, `produce` and `consume` through its HTTP APIs
//! (REST Proxy and Schema Registry) instead of opening the log, which the server owns.
//!
//! Used when `--server URL` is given, or when the embedded data directory is owned by a live
//! `serve` (it records its addresses in `<data_dir>/server.json` and removes the file when it
//! stops). Records cross as REST Proxy binary records (base64), so bytes are kept exactly;
//! Schema Registry values are registered and looked up over its HTTP API.

use crate::cli::{
    SchemaFile, Start, StdinLines, ValueEncoder, ValueFormat, attach_decoded, record_json,
    split_line,
};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use fleetwatch_core::{ConsumedRecord, Record};
use fleetwatch_schema::codec::AvroDecoder;
use fleetwatch_schema::wire;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BINARY_V2: &str = "application/vnd.kafka.binary.v2+json";
const V2: &str = "application/vnd.kafka.v2+json";

/// What `serve` records in its data directory while it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerFile {
    /// Its process id.
    pub pid: u32,
    /// Base URL of the REST Proxy API.
    pub http: String,
    /// Base URL of the Schema Registry.
    pub schema_registry: String,
    /// Base URL of the ksqlDB-compatible SQL API (empty when `[ksql]` is off).
    #[serde(default)]
    pub ksql: String,
}

/// `<data_dir>/server.json`.
pub fn server_file(data_dir: &Path) -> PathBuf {
    data_dir.join("server.json")
}

/// The server that owns `data_dir` now, if one does (its file exists and its process lives).
pub fn running_server(data_dir: &Path) -> Option<ServerFile> {
    let text = std::fs::read_to_string(server_file(data_dir)).ok()?;
    let s: ServerFile = serde_json::from_str(&text).ok()?;
    Path::new(&format!("/proc/{}", s.pid)).exists().then_some(s)
}

/// A running server's APIs.
pub struct Remote {
    http: String,
    registry: Option<String>,
    client: reqwest::Client,
}

async fn check(r: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    if r.status().is_success() {
        return Ok(r);
    }
    let status = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let msg = body["message"].as_str().unwrap_or("").to_string();
    let code = &body["error_code"];
    bail!("{what}: the server answered {status} (error_code {code}): {msg}")
}

impl Remote {
    /// The server at `http` (REST Proxy URL) and optionally its Schema Registry URL.
    pub fn new(http: impl Into<String>, registry: Option<String>) -> Self {
        Remote {
            http: http.into().trim_end_matches('/').to_string(),
            registry: registry.map(|r| r.trim_end_matches('/').to_string()),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    async fn get(&self, path: &str, what: &str) -> anyhow::Result<Value> {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .with_context(|| format!("{what}: cannot reach the server at {}", self.http))?;
        Ok(check(r, what).await?.json().await?)
    }

    /// `topics list`.
    pub async fn topics_list(&self) -> anyhow::Result<()> {
        let topics: Vec<String> =
            serde_json::from_value(self.get("/topics", "listing topics").await?)?;
        for t in topics {
            println!("{t}");
        }
        Ok(())
    }

    /// `topics create`.
    pub async fn topics_create(
        &self,
        name: &str,
        partitions: i32,
        settings: &[String],
    ) -> anyhow::Result<()> {
        let mut configs = Vec::new();
        for s in settings {
            let (k, v) = s.split_once('=').with_context(|| {
                format!("--topic-config {s:?}: expected NAME=VALUE, e.g. retention.ms=86400000")
            })?;
            configs.push(json!({"name": k.trim(), "value": v.trim()}));
        }
        let r = self
            .client
            .post(self.url("/v3/clusters/fleetwatch/topics"))
            .json(&json!({"topic_name": name, "partitions_count": partitions, "configs": configs}))
            .send()
            .await?;
        check(r, &format!("creating topic {name}")).await?;
        println!("created topic {name} with {partitions} partition(s)");
        Ok(())
    }

    /// `topics describe`: the same JSON as without a server.
    pub async fn topics_describe(&self, name: &str) -> anyhow::Result<()> {
        let d = self
            .get(
                &format!("/v3/clusters/fleetwatch/topics/{name}"),
                &format!("describing {name}"),
            )
            .await?;
        let configs: serde_json::Map<String, Value> = d["configs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| Some((c["name"].as_str()?.to_string(), c["value"].clone())))
            .collect();
        let partitions: Vec<Value> = d["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                json!({"partition": p["partition_id"], "log_start_offset": p["beginning_offset"],
                       "high_watermark": p["end_offset"]})
            })
            .collect();
        let out = json!({"name": d["topic_name"], "partitions": partitions, "configs": configs});
        println!("{}", serde_json::to_string_pretty(&out)?);
        Ok(())
    }

    /// `topics delete`.
    pub async fn topics_delete(&self, name: &str) -> anyhow::Result<()> {
        let r = self
            .client
            .delete(self.url(&format!("/v3/clusters/fleetwatch/topics/{name}")))
            .send()
            .await?;
        check(r, &format!("deleting topic {name}")).await?;
        println!("deleted topic {name}");
        Ok(())
    }

    fn registry(&self) -> anyhow::Result<&str> {
        self.registry
            .as_deref()
            .context("this needs the server's Schema Registry address (--server-registry URL)")
    }

    /// Registers a schema file over HTTP and returns the encoder for it.
    async fn encoder(
        &self,
        format: ValueFormat,
        topic: &str,
        schema: Option<&Path>,
        subject: Option<&str>,
    ) -> anyhow::Result<ValueEncoder> {
        let Some(f) = SchemaFile::for_produce(format, topic, schema, subject)? else {
            return Ok(ValueEncoder::Raw);
        };
        let r = self
            .client
            .post(format!(
                "{}/subjects/{}/versions",
                self.registry()?,
                f.subject
            ))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&json!({"schema": f.text, "schemaType": f.schema_type}))
            .send()
            .await?;
        let what = format!("registering {} under {}", f.path.display(), f.subject);
        let v: Value = check(r, &what).await?.json().await?;
        let id = v["id"]
            .as_i64()
            .context("the registry answered without an id")? as i32;
        f.encoder(id)
    }

    /// `produce` through the REST Proxy: `batch` lines per request, binary records.
    #[allow(clippy::too_many_arguments)]
    pub async fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key_separator: Option<&str>,
        batch: usize,
        format: ValueFormat,
        schema: Option<&Path>,
        subject: Option<&str>,
    ) -> anyhow::Result<()> {
        let enc = self.encoder(format, topic, schema, subject).await?;
        let avro = enc.avro_codec()?;
        let path = match partition {
            Some(p) => format!("/topics/{topic}/partitions/{p}"),
            None => format!("/topics/{topic}"),
        };
        let mut stdin = StdinLines::new();
        let mut total = 0usize;
        loop {
            let mut records = Vec::new();
            let mut last = 0;
            while records.len() < batch {
                let Some((n, line)) = stdin.next().await? else {
                    break;
                };
                last = n;
                let (key, value) = split_line(line, key_separator, n)?;
                let value = enc.encode(avro.as_ref(), value, n)?;
                records.push(json!({
                    "key": key.map(|k| B64.encode(k)),
                    "value": B64.encode(value),
                }));
            }
            if records.is_empty() {
                break;
            }
            let count = records.len();
            let r = self
                .client
                .post(self.url(&path))
                .header("Content-Type", BINARY_V2)
                .json(&json!({"records": records}))
                .send()
                .await?;
            let v: Value = check(
                r,
                &format!("producing to {topic} (stdin up to line {last})"),
            )
            .await?
            .json()
            .await?;
            if let Some(bad) = v["offsets"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| !o["error_code"].is_null())
            {
                bail!(
                    "producing to {topic} (stdin up to line {last}): {}",
                    bad["error"]
                );
            }
            total += count;
        }
        eprintln!("produced {total} record(s) to {topic}");
        Ok(())
    }

    /// `consume` through a REST Proxy consumer instance (deleted at the end).
    #[allow(clippy::too_many_arguments)]
    pub async fn consume(
        &self,
        topic: &str,
        partition: Option<i32>,
        start: Start,
        group: Option<&str>,
        max_messages: Option<usize>,
        follow: bool,
        idle_timeout: Duration,
        format: ValueFormat,
    ) -> anyhow::Result<()> {
        if let Start::Timestamp(_) = start {
            bail!(
                "--timestamp is not supported through a running server (the REST Proxy API has no offsets-by-time); stop the server or use --offset"
            );
        }
        let group = group.map_or_else(
            || {
                format!(
                    "fleetwatch-cli-{}-{}",
                    std::process::id(),
                    fleetwatch_core::now_ms()
                )
            },
            String::from,
        );
        let reset = if matches!(start, Start::Latest) {
            "latest"
        } else {
            "earliest"
        };
        let r = self
            .client
            .post(self.url(&format!("/consumers/{group}")))
            .header("Content-Type", V2)
            .json(&json!({"format": "binary", "auto.offset.reset": reset, "auto.commit.enable": "false"}))
            .send()
            .await?;
        let created: Value = check(r, "creating a consumer instance")
            .await?
            .json()
            .await?;
        let inst = created["instance_id"]
            .as_str()
            .context("no instance_id")?
            .to_string();
        let base = self.url(&format!("/consumers/{group}/instances/{inst}"));
        let result = self
            .consume_with(
                &base,
                topic,
                partition,
                start,
                max_messages,
                follow,
                idle_timeout,
                format,
            )
            .await;
        let _ = self.client.delete(&base).send().await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn consume_with(
        &self,
        base: &str,
        topic: &str,
        partition: Option<i32>,
        start: Start,
        max_messages: Option<usize>,
        follow: bool,
        idle_timeout: Duration,
        format: ValueFormat,
    ) -> anyhow::Result<()> {
        let r = self
            .client
            .post(format!("{base}/subscription"))
            .json(&json!({"topics": [topic]}))
            .send()
            .await?;
        check(r, "subscribing").await?;
        if let Start::Offset(off) = start {
            // Positions need an assignment: wait for it, then seek every owned partition.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let a: Value = check(
                    self.client
                        .get(format!("{base}/assignments"))
                        .send()
                        .await?,
                    "assignments",
                )
                .await?
                .json()
                .await?;
                let parts: Vec<Value> = a["partitions"].as_array().cloned().unwrap_or_default();
                if !parts.is_empty() {
                    let offsets: Vec<Value> = parts
                        .iter()
                        .filter(|p| partition.is_none_or(|want| p["partition"] == want))
                        .map(
                            |p| json!({"topic": topic, "partition": p["partition"], "offset": off}),
                        )
                        .collect();
                    let r = self
                        .client
                        .post(format!("{base}/positions"))
                        .json(&json!({"offsets": offsets}))
                        .send()
                        .await?;
                    check(r, &format!("seeking to offset {off}")).await?;
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the consumer instance got no partitions of {topic} in 30 s");
                }
            }
        }
        let mut decoder = RemoteDecoder {
            registry: self.registry.clone(),
            client: self.client.clone(),
            cache: HashMap::new(),
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let max = max_messages.unwrap_or(usize::MAX);
        let mut seen = 0;
        let mut idle_since = Instant::now();
        while seen < max && (follow || idle_since.elapsed() < idle_timeout) {
            let wait = if follow {
                1000
            } else {
                idle_timeout
                    .saturating_sub(idle_since.elapsed())
                    .as_millis()
                    .max(1) as u64
            };
            let r = self
                .client
                .get(format!("{base}/records?timeout={wait}"))
                .header("Accept", BINARY_V2)
                .send()
                .await?;
            let recs: Vec<Value> = check(r, "fetching records").await?.json().await?;
            for v in recs {
                let p = v["partition"].as_i64().unwrap_or(0) as i32;
                if partition.is_some_and(|want| want != p) {
                    continue;
                }
                let b64 = |f: &Value| -> anyhow::Result<Option<Bytes>> {
                    f.as_str()
                        .map(|s| B64.decode(s).map(Bytes::from))
                        .transpose()
                        .context("a record the server sent is not base64")
                };
                let rec = ConsumedRecord {
                    partition: p,
                    offset: v["offset"].as_i64().unwrap_or(-1),
                    record: Record {
                        key: b64(&v["key"])?,
                        value: b64(&v["value"])?,
                        headers: Vec::new(),
                        timestamp: v["timestamp"].as_i64().unwrap_or(0),
                        timestamp_type: fleetwatch_core::TimestampType::CreateTime,
                    },
                };
                let mut line = record_json(topic, &rec);
                if format != ValueFormat::Raw
                    && let Some(val) = rec.record.value.as_ref()
                {
                    let decoded = decoder.decode(val).await.map_err(|e| format!("{e:#}"));
                    attach_decoded(&mut line, decoded);
                }
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
                seen += 1;
                idle_since = Instant::now();
                if seen >= max {
                    break;
                }
            }
            out.flush()?;
        }
        out.flush()?;
        Ok(())
    }
}

/// Decodes wire-format values by the schema id each carries, fetching each schema once.
struct RemoteDecoder {
    registry: Option<String>,
    client: reqwest::Client,
    cache: HashMap<i32, Option<AvroDecoder>>,
}

impl RemoteDecoder {
    async fn decode(&mut self, bytes: &[u8]) -> anyhow::Result<(i32, Value)> {
        let (id, payload) = wire::unframe(bytes)?;
        if !self.cache.contains_key(&id) {
            let reg = self
                .registry
                .as_deref()
                .context("no Schema Registry address")?;
            let r = self
                .client
                .get(format!("{reg}/schemas/ids/{id}"))
                .send()
                .await?;
            let v: Value = check(r, &format!("looking up schema {id}"))
                .await?
                .json()
                .await?;
            let kind = v["schemaType"].as_str().unwrap_or("AVRO");
            let dec = if kind == "AVRO" {
                let text = v["schema"].as_str().context("no schema text")?;
                Some(AvroDecoder::new(std::sync::Arc::new(
                    fleetwatch_schema::avro::parse(text, &[])?,
                )))
            } else {
                None
            };
            self.cache.insert(id, dec);
        }
        match self.cache.get(&id) {
            Some(Some(dec)) => Ok((id, dec.decode_json(payload)?)),
            _ => Ok((
                id,
                serde_json::from_slice(payload).context("a JSON_SR value that is not JSON")?,
            )),
        }
    }
}
