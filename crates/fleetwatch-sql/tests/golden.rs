//! Golden SQL scripts: every `tests/golden/*.sql` runs on a fresh engine, once on the
//! embedded log and once on the Kafka backend (the test binary's shared tansu broker).
//!
//! # The script format
//!
//! A script is SQL with directives in comments. A directive is a line starting `--@`; its
//! *body* is every following line up to the next directive. In bodies, blank lines and plain
//! `--` comment lines are ignored. A body of SQL may hold a `----` line: what follows it is
//! what is expected.
//!
//! | directive | body |
//! |---|---|
//! | `--@ hash-keys` | a `HASH_PII` key file (`name = base64`, see `fleetwatch_pii::HashKeys::parse`), for the engine's `FunctionContext`; only before the first statement or a `restart` |
//! | `--@ file <name>` | a file written to the script's own directory; `$DIR` in SQL is that directory (for `RUN SCRIPT`) |
//! | `--@ input <topic> [partition=N] [partitions=N] [timestamps]` | records appended to the topic, one per line: `KEY\|VALUE` (`[TS\|]` first with `timestamps`), split at the first `\|`s. `null` is an absent key or value (a tombstone), `hex:0a0b…` raw bytes, anything else the UTF-8 text. Without `partition=` a keyed record goes where a producer would put it (murmur2), an unkeyed one to 0. An unknown topic is created with `partitions=` (default 1) |
//! | `--@ statement ok` | statements, run in one `Engine::execute` call (as one REST request); they must all succeed. After `----`, checks on the outcomes (below) |
//! | `--@ statement error <substring>` | statements; `execute` must fail with an error whose text contains the substring (case-sensitive) |
//! | `--@ query [ordered]` | one `SELECT`, then `----`, then the expected rows, one JSON array per line. Without `EMIT CHANGES` it is a pull query (to the end of the source as it is now); with it a push query, which must have a `LIMIT` of the expected row count or is read until that many rows came. Rows compare as a multiset unless `ordered` |
//! | `--@ output <topic> [ordered] [partition=N] [partitions] [timestamps]` | the topic's whole content, one record per line as in `input` (`P\|` first with `partitions`, then `TS\|` with `timestamps`). Waits up to 10 s for that many records, then 300 ms more for any extra. Lines compare as a multiset unless `ordered` (then partition by partition, in offset order) |
//! | `--@ processing-log <n>` | exactly `n` new entries in the processing log (since the last `processing-log`); each body line is a substring that must occur in a distinct one of them |
//! | `--@ only embedded\|kafka <reason>` | (none) the rest of the script runs only on that backend; the other prints `SKIPPED` with the reason (for a known backend gap, which the report must name) |
//! | `--@ restart [commands=N]` | stops the engine, builds a new one on the same log, `recover()`s (returning `N` commands when given) and runs it: persistent queries resume from their checkpoints |
//!
//! Outcome checks (after `----` of a `statement ok`) are `POINTER OP VALUE` lines. `POINTER`
//! walks the JSON array of outcomes (an entity as it is, `null` for none, `{"stream":
//! "select"|"print"}` for a streaming statement): `/1/sourceDescription/fields/0/name`; a
//! segment `[field=text]` picks the first array element whose `field` is the string `text`.
//! `OP` is `=` (equal to the JSON `VALUE`), `~` (the value, as text if a string, else as
//! JSON, contains `VALUE`), `!~` (does not), `#` (an array or object of `VALUE` elements).
//!
//! Scripts start with `auto.offset.reset = earliest` (as ksqlDB's test runner does).
//! `SET` and `UNSET` keep their effect for the rest of the script, as in ksqlDB's CLI: the
//! runner keeps the properties and passes them with each request.
//!
//! Every scalar function of the registry must be called in some `statement ok` or `query`
//! (a test fails naming those that are not). `GOLDEN=name` runs only scripts whose file name
//! contains `name`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use bytes::Bytes;
use fleetwatch_core::{
    AppendAck, GroupConsumer, GroupDescription, JoinOptions, Log, LogAdmin, LogData, LogError,
    LogGroups, LogHealth, LogResult, OffsetCommit, OffsetSpec, ReadBatch, ReadLimits, Record,
    TopicConfig, TopicDescription,
};
use fleetwatch_sql::engine::{Engine, EngineConfig, Outcome, StatementStream};
use fleetwatch_sql::functions::{FunctionContext, FunctionRegistry};
use fleetwatch_sql::parser::{self, KsqlStatement};
use fleetwatch_sql::query::{RowStream, Start};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------
// Scripts

#[derive(Debug, Clone)]
enum Check {
    Eq(Value),
    Contains(String),
    NotContains(String),
    Len(usize),
}

#[derive(Debug, Clone)]
enum Directive {
    HashKeys(String),
    File {
        name: String,
        text: String,
    },
    Input {
        topic: String,
        partition: Option<i32>,
        partitions: i32,
        records: Vec<Record>,
    },
    Statement {
        sql: String,
        error: Option<String>,
        checks: Vec<(String, Check)>,
    },
    Query {
        sql: String,
        ordered: bool,
        rows: Vec<Value>,
    },
    Output {
        topic: String,
        ordered: bool,
        partition: Option<i32>,
        show_partitions: bool,
        timestamps: bool,
        lines: Vec<String>,
    },
    ProcessingLog {
        n: usize,
        patterns: Vec<String>,
    },
    Restart {
        commands: Option<usize>,
    },
    /// The rest of the script runs only on this backend; the others print the reason.
    Only {
        backend: Backend,
        reason: String,
    },
}

#[derive(Debug, Clone)]
struct Step {
    line: usize,
    directive: Directive,
}

#[derive(Debug, Clone)]
struct Script {
    name: String,
    steps: Vec<Step>,
}

struct Options {
    flags: Vec<String>,
    values: BTreeMap<String, String>,
}

impl Options {
    fn parse(words: &[&str]) -> Options {
        let mut flags = Vec::new();
        let mut values = BTreeMap::new();
        for w in words {
            match w.split_once('=') {
                Some((k, v)) => {
                    values.insert(k.to_string(), v.to_string());
                }
                None => flags.push(w.to_string()),
            }
        }
        Options { flags, values }
    }

    fn flag(&self, f: &str) -> bool {
        self.flags.iter().any(|x| x == f)
    }

    fn num<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, String> {
        self.values
            .get(k)
            .map(|v| v.parse().map_err(|_| format!("{k}={v}: not a number")))
            .transpose()
    }

    fn check_known(&self, flags: &[&str], values: &[&str]) -> Result<(), String> {
        for f in &self.flags {
            if !flags.contains(&f.as_str()) {
                return Err(format!("unknown option {f:?}"));
            }
        }
        for k in self.values.keys() {
            if !values.contains(&k.as_str()) {
                return Err(format!("unknown option {k:?}"));
            }
        }
        Ok(())
    }
}

fn parse_bytes(s: &str) -> Result<Option<Bytes>, String> {
    if s == "null" {
        return Ok(None);
    }
    if let Some(h) = s.strip_prefix("hex:") {
        if h.len() % 2 != 0 {
            return Err(format!("odd number of hex digits in {s:?}"));
        }
        let bytes = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|e| format!("{s:?}: {e}")))
            .collect::<Result<Vec<u8>, String>>()?;
        return Ok(Some(Bytes::from(bytes)));
    }
    Ok(Some(Bytes::from(s.to_string())))
}

fn show_bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) && !s.starts_with("hex:") && s != "null" => {
                s.to_string()
            }
            _ => format!(
                "hex:{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        },
    }
}

fn parse_check(line: &str) -> Result<(String, Check), String> {
    let (pointer, rest) = line
        .split_once(' ')
        .ok_or_else(|| format!("expected `POINTER OP VALUE`, got {line:?}"))?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(' ').unwrap_or((rest, ""));
    let value = value.trim();
    let check = match op {
        "=" => Check::Eq(
            serde_json::from_str(value).map_err(|e| format!("{value:?} is not JSON: {e}"))?,
        ),
        "~" => Check::Contains(value.to_string()),
        "!~" => Check::NotContains(value.to_string()),
        "#" => Check::Len(
            value
                .parse()
                .map_err(|_| format!("{value:?}: not a count"))?,
        ),
        other => return Err(format!("unknown operator {other:?} (= ~ !~ #)")),
    };
    Ok((pointer.to_string(), check))
}

/// Splits a body at `----`.
fn split_expected(body: &[String]) -> (String, Vec<String>, bool) {
    match body.iter().position(|l| l.trim() == "----") {
        Some(i) => (body[..i].join("\n"), body[i + 1..].to_vec(), true),
        None => (body.join("\n"), Vec::new(), false),
    }
}

fn parse_script(name: &str, text: &str) -> Result<Script, String> {
    let mut steps = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let Some(head) = line.strip_prefix("--@") else {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with("--") {
                return Err(format!("{name}:{}: text outside a directive", i + 1));
            }
            i += 1;
            continue;
        };
        let at = i + 1;
        i += 1;
        let mut body = Vec::new();
        let mut raw_body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("--@") {
            raw_body.push(lines[i].to_string());
            let t = lines[i].trim();
            if !t.is_empty() && !t.starts_with("--") || t == "----" {
                body.push(lines[i].trim_end().to_string());
            }
            i += 1;
        }
        let words: Vec<&str> = head.split_whitespace().collect();
        let err = |m: String| format!("{name}:{at}: {m}");
        let Some(&kind) = words.first() else {
            return Err(err("empty directive".into()));
        };
        let directive = match kind {
            "hash-keys" => Directive::HashKeys(body.join("\n")),
            "file" => Directive::File {
                name: words
                    .get(1)
                    .ok_or_else(|| err("file needs a name".into()))?
                    .to_string(),
                text: raw_body.join("\n"),
            },
            "input" => {
                let topic = words
                    .get(1)
                    .ok_or_else(|| err("input needs a topic".into()))?
                    .to_string();
                let o = Options::parse(&words[2..]);
                o.check_known(&["timestamps"], &["partition", "partitions"])
                    .map_err(err)?;
                let ts = o.flag("timestamps");
                let mut records = Vec::new();
                for l in &body {
                    let (t, rest) = if ts {
                        let (t, rest) = l
                            .split_once('|')
                            .ok_or_else(|| err(format!("expected TS|KEY|VALUE: {l:?}")))?;
                        (
                            Some(
                                t.parse::<i64>()
                                    .map_err(|_| err(format!("bad timestamp {t:?}")))?,
                            ),
                            rest,
                        )
                    } else {
                        (None, l.as_str())
                    };
                    let (k, v) = rest
                        .split_once('|')
                        .ok_or_else(|| err(format!("expected KEY|VALUE: {l:?}")))?;
                    let mut r =
                        Record::new(parse_bytes(k).map_err(err)?, parse_bytes(v).map_err(err)?);
                    if let Some(t) = t {
                        r = r.with_timestamp(t);
                    }
                    records.push(r);
                }
                Directive::Input {
                    topic,
                    partition: o.num("partition").map_err(err)?,
                    partitions: o.num("partitions").map_err(err)?.unwrap_or(1),
                    records,
                }
            }
            "statement" => {
                let (sql, expected, _) = split_expected(&body);
                let error = match words.get(1).copied() {
                    Some("ok") => None,
                    Some("error") => {
                        let s = head
                            .trim_start()
                            .strip_prefix("statement")
                            .unwrap()
                            .trim_start();
                        let s = s.strip_prefix("error").unwrap().trim();
                        if s.is_empty() {
                            return Err(err("statement error needs a substring".into()));
                        }
                        Some(s.to_string())
                    }
                    _ => return Err(err("statement ok | statement error <substring>".into())),
                };
                if error.is_some() && !expected.is_empty() {
                    return Err(err("a failing statement has no outcomes to check".into()));
                }
                let checks = expected
                    .iter()
                    .map(|l| parse_check(l.trim()).map_err(err))
                    .collect::<Result<_, _>>()?;
                if sql.trim().is_empty() {
                    return Err(err("no statement".into()));
                }
                Directive::Statement { sql, error, checks }
            }
            "query" => {
                let o = Options::parse(&words[1..]);
                o.check_known(&["ordered"], &[]).map_err(err)?;
                let (sql, expected, sep) = split_expected(&body);
                if !sep {
                    return Err(err("a query needs `----` and its expected rows".into()));
                }
                let rows = expected
                    .iter()
                    .map(|l| {
                        let v: Value = serde_json::from_str(l.trim())
                            .map_err(|e| err(format!("row {l:?} is not JSON: {e}")))?;
                        if v.is_array() {
                            Ok(v)
                        } else {
                            Err(err(format!("row {l:?} is not a JSON array")))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                Directive::Query {
                    sql,
                    ordered: o.flag("ordered"),
                    rows,
                }
            }
            "output" => {
                let topic = words
                    .get(1)
                    .ok_or_else(|| err("output needs a topic".into()))?
                    .to_string();
                let o = Options::parse(&words[2..]);
                o.check_known(&["ordered", "partitions", "timestamps"], &["partition"])
                    .map_err(err)?;
                Directive::Output {
                    topic,
                    ordered: o.flag("ordered"),
                    partition: o.num("partition").map_err(err)?,
                    show_partitions: o.flag("partitions"),
                    timestamps: o.flag("timestamps"),
                    lines: body.iter().map(|l| l.trim().to_string()).collect(),
                }
            }
            "processing-log" => {
                let n = words
                    .get(1)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| err("processing-log <n>".into()))?;
                if body.len() > n {
                    return Err(err(format!("{} patterns for {n} entries", body.len())));
                }
                Directive::ProcessingLog {
                    n,
                    patterns: body.iter().map(|l| l.trim().to_string()).collect(),
                }
            }
            "restart" => {
                let o = Options::parse(&words[1..]);
                o.check_known(&[], &["commands"]).map_err(err)?;
                Directive::Restart {
                    commands: o.num("commands").map_err(err)?,
                }
            }
            "only" => {
                let backend = match words.get(1).copied() {
                    Some("embedded") => Backend::Embedded,
                    Some("kafka") => Backend::Kafka,
                    _ => return Err(err("only embedded|kafka <reason>".into())),
                };
                let reason = words[2..].join(" ");
                if reason.is_empty() {
                    return Err(err("`only` needs a reason".into()));
                }
                Directive::Only { backend, reason }
            }
            other => return Err(err(format!("unknown directive {other:?}"))),
        };
        steps.push(Step {
            line: at,
            directive,
        });
    }
    if !steps.iter().any(|s| {
        matches!(
            s.directive,
            Directive::Statement { .. } | Directive::Query { .. }
        )
    }) {
        return Err(format!("{name}: no statements"));
    }
    Ok(Script {
        name: name.to_string(),
        steps,
    })
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn load_scripts() -> Vec<Script> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no scripts in {}",
        scripts_dir().display()
    );
    let filter = std::env::var("GOLDEN").ok();
    paths
        .iter()
        .filter(|p| {
            filter
                .as_deref()
                .is_none_or(|f| p.file_name().unwrap().to_string_lossy().contains(f))
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            parse_script(&name, &std::fs::read_to_string(p).unwrap()).unwrap()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// A log under a topic prefix, so scripts share one Kafka broker without seeing each other.

struct Prefixed {
    inner: Arc<dyn Log>,
    prefix: String,
}

impl Prefixed {
    fn t(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    fn strip(&self, e: LogError) -> LogError {
        let s = |n: String| {
            n.strip_prefix(&self.prefix)
                .map(str::to_string)
                .unwrap_or(n)
        };
        match e {
            LogError::UnknownTopic(n) => LogError::UnknownTopic(s(n)),
            LogError::TopicExists(n) => LogError::TopicExists(s(n)),
            other => other,
        }
    }
}

#[async_trait]
impl LogAdmin for Prefixed {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn health(&self) -> LogHealth {
        self.inner.health()
    }
    async fn create_topic(&self, name: &str, config: TopicConfig) -> LogResult<()> {
        self.inner
            .create_topic(&self.t(name), config)
            .await
            .map_err(|e| self.strip(e))
    }
    async fn partition_count(&self, name: &str) -> LogResult<i32> {
        self.inner
            .partition_count(&self.t(name))
            .await
            .map_err(|e| self.strip(e))
    }
    async fn list_topics(&self) -> LogResult<Vec<String>> {
        Ok(self
            .inner
            .list_topics()
            .await?
            .into_iter()
            .filter_map(|t| t.strip_prefix(&self.prefix).map(str::to_string))
            .collect())
    }
    async fn describe_topic(&self, name: &str) -> LogResult<TopicDescription> {
        let mut d = self
            .inner
            .describe_topic(&self.t(name))
            .await
            .map_err(|e| self.strip(e))?;
        d.name = name.to_string();
        Ok(d)
    }
    async fn delete_topic(&self, name: &str) -> LogResult<()> {
        self.inner
            .delete_topic(&self.t(name))
            .await
            .map_err(|e| self.strip(e))
    }
}

#[async_trait]
impl LogData for Prefixed {
    async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> LogResult<AppendAck> {
        self.inner
            .append(&self.t(topic), partition, records)
            .await
            .map_err(|e| self.strip(e))
    }
    async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        limits: ReadLimits,
    ) -> LogResult<ReadBatch> {
        self.inner
            .read(&self.t(topic), partition, offset, limits)
            .await
            .map_err(|e| self.strip(e))
    }
    async fn offset_for(&self, topic: &str, partition: i32, spec: OffsetSpec) -> LogResult<i64> {
        self.inner
            .offset_for(&self.t(topic), partition, spec)
            .await
            .map_err(|e| self.strip(e))
    }
    async fn flush(&self) -> LogResult<()> {
        self.inner.flush().await
    }
}

#[async_trait]
impl LogGroups for Prefixed {
    // The engine reads by explicit assignment; a group call here means it changed, and the
    // scripts should then cover groups on both backends.
    async fn join_group(&self, _options: JoinOptions) -> LogResult<Box<dyn GroupConsumer>> {
        Err(LogError::Invalid {
            what: "golden test log".into(),
            reason: "consumer groups are not expected from the SQL engine".into(),
        })
    }
    async fn committed_offsets(&self, _group: &str) -> LogResult<Vec<OffsetCommit>> {
        Ok(Vec::new())
    }
    async fn list_groups(&self) -> LogResult<Vec<String>> {
        Ok(Vec::new())
    }
    async fn describe_group(&self, group: &str) -> LogResult<GroupDescription> {
        Ok(GroupDescription {
            group: group.to_string(),
            ..GroupDescription::default()
        })
    }
}

// ---------------------------------------------------------------------------------------
// Running

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Embedded,
    Kafka,
}

struct Running {
    engine: Engine,
    stop: CancellationToken,
    task: JoinHandle<fleetwatch_sql::error::SqlResult<()>>,
}

struct Runner {
    log: Arc<dyn Log>,
    config: EngineConfig,
    running: Option<Running>,
    props: BTreeMap<String, Value>,
    dir: tempfile::TempDir,
    plog_seen: usize,
    transient: u64,
}

async fn start(log: &Arc<dyn Log>, config: &EngineConfig) -> Result<(Running, usize), String> {
    let engine = Engine::new(log.clone(), config.clone());
    let n = engine
        .recover()
        .await
        .map_err(|e| format!("recover: {e}"))?;
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let e = engine.clone();
        let s = stop.clone();
        async move { e.run(s).await }
    });
    Ok((Running { engine, stop, task }, n))
}

async fn stop(r: Running) -> Result<(), String> {
    r.stop.cancel();
    match tokio::time::timeout(WAIT, r.task).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("run: {e}")),
        Ok(Err(e)) => Err(format!("run panicked: {e}")),
        Err(_) => Err("the engine did not stop within 10 s".into()),
    }
}

async fn read_topic(log: &Arc<dyn Log>, topic: &str) -> Result<Vec<(i32, i64, Record)>, String> {
    let n = log
        .partition_count(topic)
        .await
        .map_err(|e| format!("{topic}: {e}"))?;
    let mut out = Vec::new();
    for p in 0..n {
        let end = log
            .offset_for(topic, p, OffsetSpec::Latest)
            .await
            .map_err(|e| e.to_string())?;
        let mut pos = log
            .offset_for(topic, p, OffsetSpec::Earliest)
            .await
            .map_err(|e| e.to_string())?;
        while pos < end {
            let b = log
                .read(topic, p, pos, ReadLimits::default())
                .await
                .map_err(|e| e.to_string())?;
            if b.records.is_empty() {
                break;
            }
            pos = b.next_offset(pos);
            out.extend(b.records.into_iter().map(|r| (p, r.offset, r.record)));
        }
    }
    Ok(out)
}

fn pointer<'a>(mut v: &'a Value, path: &str) -> Option<&'a Value> {
    for seg in path.split('/').skip(1) {
        v = if let Some(sel) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let (k, want) = sel.split_once('=')?;
            v.as_array()?
                .iter()
                .find(|e| e.get(k).and_then(Value::as_str) == Some(want))?
        } else {
            match v {
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                Value::Object(o) => o.get(seg)?,
                _ => return None,
            }
        };
    }
    Some(v)
}

fn check_outcomes(outcomes: &Value, checks: &[(String, Check)]) -> Result<(), String> {
    for (p, c) in checks {
        let got = pointer(outcomes, p);
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let ok = match (c, got) {
            (_, None) => false,
            (Check::Eq(want), Some(g)) => g == want,
            (Check::Contains(s), Some(g)) => text(g).contains(s.as_str()),
            (Check::NotContains(s), Some(g)) => !text(g).contains(s.as_str()),
            (Check::Len(n), Some(Value::Array(a))) => a.len() == *n,
            (Check::Len(n), Some(Value::Object(o))) => o.len() == *n,
            (Check::Len(_), Some(_)) => false,
        };
        if !ok {
            let shown = got.map_or_else(
                || format!("nothing there; the outcomes are {outcomes:#}"),
                |g| format!("{g:#}"),
            );
            return Err(format!("{p} {c:?}: got {shown}"));
        }
    }
    Ok(())
}

fn compare(
    what: &str,
    mut got: Vec<String>,
    mut want: Vec<String>,
    ordered: bool,
) -> Result<(), String> {
    if !ordered {
        got.sort();
        want.sort();
    }
    if got == want {
        return Ok(());
    }
    Err(format!(
        "{what} differ{}\n  expected:\n    {}\n  got:\n    {}",
        if ordered { " (ordered)" } else { "" },
        want.join("\n    "),
        got.join("\n    ")
    ))
}

impl Runner {
    fn engine(&self) -> &Engine {
        &self.running.as_ref().expect("started").engine
    }

    fn substitute(&self, sql: &str) -> String {
        sql.replace("$DIR", &self.dir.path().display().to_string())
    }

    /// Keeps `SET`/`UNSET` for later requests, as ksqlDB's CLI does.
    fn track_properties(&mut self, sql: &str) {
        let Ok(stmts) = parser::parse(sql) else {
            return;
        };
        for s in stmts {
            match s.kind {
                KsqlStatement::Set { name, value } => {
                    self.props.insert(name, Value::String(value));
                }
                KsqlStatement::Unset(name) => {
                    self.props.remove(&name);
                }
                _ => {}
            }
        }
    }

    async fn step(&mut self, d: &Directive) -> Result<(), String> {
        match d {
            Directive::HashKeys(text) => {
                let keys = fleetwatch_pii::HashKeys::parse(text, "hash-keys")
                    .map_err(|e| e.to_string())?;
                self.config.functions = FunctionContext {
                    hash_keys: Some(Arc::new(keys)),
                };
                if let Some(r) = self.running.take() {
                    stop(r).await?;
                    self.running = Some(start(&self.log, &self.config).await?.0);
                }
            }
            Directive::File { name, text } => {
                std::fs::write(self.dir.path().join(name), self.substitute(text))
                    .map_err(|e| e.to_string())?;
            }
            Directive::Input {
                topic,
                partition,
                partitions,
                records,
            } => {
                let n = match self.log.partition_count(topic).await {
                    Ok(n) => n,
                    Err(LogError::UnknownTopic(_)) => {
                        self.log
                            .ensure_topic(topic, TopicConfig::with_partitions(*partitions))
                            .await
                            .map_err(|e| e.to_string())?;
                        *partitions
                    }
                    Err(e) => return Err(e.to_string()),
                };
                for r in records {
                    let p = partition.unwrap_or_else(|| {
                        r.key
                            .as_ref()
                            .map_or(0, |k| fleetwatch_core::partitioner::partition_for_key(k, n))
                    });
                    self.log
                        .append(topic, p, std::slice::from_ref(r))
                        .await
                        .map_err(|e| format!("append to {topic}/{p}: {e}"))?;
                }
            }
            Directive::Statement { sql, error, checks } => {
                let sql = self.substitute(sql);
                let res = self.engine().execute(&sql, &self.props).await;
                self.track_properties(&sql);
                match (res, error) {
                    (Ok(outcomes), None) => {
                        let v = Value::Array(
                            outcomes
                                .into_iter()
                                .map(|o| match o {
                                    Outcome::Entity(v) => v,
                                    Outcome::Nothing => Value::Null,
                                    Outcome::Stream(StatementStream::Select(..)) => {
                                        serde_json::json!({"stream": "select"})
                                    }
                                    Outcome::Stream(StatementStream::Print { .. }) => {
                                        serde_json::json!({"stream": "print"})
                                    }
                                })
                                .collect(),
                        );
                        check_outcomes(&v, checks)?;
                    }
                    (Ok(_), Some(want)) => {
                        return Err(format!(
                            "succeeded, but an error with {want:?} was expected"
                        ));
                    }
                    (Err((e, text)), None) => return Err(format!("failed: {e} (in {text:?})")),
                    (Err((e, _)), Some(want)) => {
                        let got = e.to_string();
                        if !got.contains(want.as_str()) {
                            return Err(format!("the error {got:?} does not contain {want:?}"));
                        }
                    }
                }
            }
            Directive::Query { sql, ordered, rows } => {
                let got = self.query(&self.substitute(sql), rows.len()).await?;
                let show = |r: &[Value]| r.iter().map(Value::to_string).collect::<Vec<_>>();
                compare("rows", show(&got), show(rows), *ordered)?;
            }
            Directive::Output {
                topic,
                ordered,
                partition,
                show_partitions,
                timestamps,
                lines,
            } => {
                let render = |recs: Vec<(i32, i64, Record)>| -> Vec<String> {
                    recs.into_iter()
                        .filter(|(p, _, _)| partition.is_none_or(|w| w == *p))
                        .map(|(p, _, r)| {
                            let mut s = String::new();
                            if *show_partitions {
                                s.push_str(&format!("{p}|"));
                            }
                            if *timestamps {
                                s.push_str(&format!("{}|", r.timestamp));
                            }
                            s.push_str(&show_bytes(r.key.as_deref()));
                            s.push('|');
                            s.push_str(&show_bytes(r.value.as_deref()));
                            s
                        })
                        .collect()
                };
                let deadline = Instant::now() + WAIT;
                loop {
                    let got = match read_topic(&self.log, topic).await {
                        Ok(r) => render(r),
                        Err(_) if Instant::now() < deadline => Vec::new(),
                        Err(e) => return Err(e),
                    };
                    if got.len() >= lines.len() || Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(SETTLE).await;
                let got = render(read_topic(&self.log, topic).await?);
                compare(&format!("records of {topic}"), got, lines.clone(), *ordered)?;
            }
            Directive::ProcessingLog { n, patterns } => {
                let topic = self.config.processing_log_topic();
                let want = self.plog_seen + n;
                let deadline = Instant::now() + WAIT;
                while read_topic(&self.log, &topic).await?.len() < want && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::time::sleep(SETTLE).await;
                let all = read_topic(&self.log, &topic).await?;
                let new: Vec<String> = all
                    .iter()
                    .skip(self.plog_seen)
                    .map(|(_, _, r)| show_bytes(r.value.as_deref()))
                    .collect();
                if new.len() != *n {
                    return Err(format!(
                        "{} new processing-log entries, expected {n}:\n    {}",
                        new.len(),
                        new.join("\n    ")
                    ));
                }
                let mut free: Vec<bool> = vec![true; new.len()];
                for p in patterns {
                    match (0..new.len()).find(|i| free[*i] && new[*i].contains(p.as_str())) {
                        Some(i) => free[i] = false,
                        None => {
                            return Err(format!(
                                "no (other) new processing-log entry contains {p:?}:\n    {}",
                                new.join("\n    ")
                            ));
                        }
                    }
                }
                self.plog_seen = all.len();
            }
            Directive::Only { .. } => {}
            Directive::Restart { commands } => {
                if let Some(r) = self.running.take() {
                    stop(r).await?;
                }
                let (r, n) = start(&self.log, &self.config).await?;
                self.running = Some(r);
                if let Some(want) = commands
                    && n != *want
                {
                    return Err(format!("recover() applied {n} commands, expected {want}"));
                }
            }
        }
        Ok(())
    }

    async fn query(&mut self, sql: &str, expected: usize) -> Result<Vec<Value>, String> {
        let mut outcomes = self
            .engine()
            .execute(sql, &self.props)
            .await
            .map_err(|(e, t)| format!("failed: {e} (in {t:?})"))?;
        if outcomes.len() != 1 {
            return Err(format!("{} statements in a query block", outcomes.len()));
        }
        let Some(Outcome::Stream(StatementStream::Select(plan, q))) = outcomes.pop() else {
            return Err("not a SELECT".into());
        };
        let pull = q.emit.is_none();
        self.transient += 1;
        let mut rows = RowStream::open(
            self.log.clone(),
            plan.clone(),
            Start::from_props(&self.props, Start::Latest),
            pull,
            self.config.processing_log_topic(),
            format!("transient_{}", self.transient),
            None,
        )
        .await
        .map_err(|e| format!("open: {e}"))?;
        let mut out = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if !pull && plan.limit.is_none() && out.len() >= expected {
                // No LIMIT: read on a little for rows that should not be there.
                let extra = tokio::time::timeout(SETTLE, rows.next()).await;
                if let Ok(Ok(Some(r))) = extra {
                    out.extend(r.into_iter().map(Value::Array));
                }
                break;
            }
            let next = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                rows.next(),
            )
            .await;
            match next {
                Err(_) => {
                    return Err(format!(
                        "the query did not finish within 10 s; rows so far: {}",
                        out.iter()
                            .map(Value::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                Ok(Err(e)) => return Err(format!("query failed: {e}")),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(r))) => out.extend(r.into_iter().map(Value::Array)),
            }
        }
        Ok(out)
    }
}

async fn make_log(backend: Backend, idx: usize) -> (Arc<dyn Log>, Option<tempfile::TempDir>) {
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            let log = fleetwatch_log::EmbeddedConfig::at(dir.path())
                .build()
                .unwrap();
            (Arc::new(log), Some(dir))
        }
        Backend::Kafka => {
            let addr = tokio::task::spawn_blocking(fleetwatch_testkit::tansu::bootstrap)
                .await
                .unwrap();
            let log = fleetwatch_kafka::KafkaConfig::at(addr).build().unwrap();
            let prefix = format!("g{}-{idx}-", std::process::id());
            (
                Arc::new(Prefixed {
                    inner: Arc::new(log),
                    prefix,
                }),
                None,
            )
        }
    }
}

async fn run_script(backend: Backend, idx: usize, script: &Script) -> Result<Duration, String> {
    let began = Instant::now();
    let (log, _guard) = make_log(backend, idx).await;
    let config = EngineConfig {
        checkpoint_interval: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let mut runner = Runner {
        log,
        config,
        running: None,
        // As ksqlDB's test runner: queries read from the start unless a script says otherwise.
        props: BTreeMap::from([("auto.offset.reset".to_string(), Value::from("earliest"))]),
        dir: tempfile::tempdir().unwrap(),
        plog_seen: 0,
        transient: 0,
    };
    let mut result = Ok(());
    for s in &script.steps {
        if let Directive::Only { backend: b, reason } = &s.directive {
            if *b != backend {
                eprintln!(
                    "golden {backend:?} {}:{}: SKIPPED from here: {reason}",
                    script.name, s.line
                );
                break;
            }
            continue;
        }
        if runner.running.is_none()
            && !matches!(s.directive, Directive::HashKeys(_) | Directive::File { .. })
        {
            match start(&runner.log, &runner.config).await {
                Ok((r, _)) => runner.running = Some(r),
                Err(e) => {
                    result = Err(format!("{}:{}: {e}", script.name, s.line));
                    break;
                }
            }
        }
        if let Err(e) = runner.step(&s.directive).await {
            result = Err(format!("{}:{}: {e}", script.name, s.line));
            break;
        }
    }
    if let Some(r) = runner.running.take()
        && let Err(e) = stop(r).await
        && result.is_ok()
    {
        result = Err(format!("{}: {e}", script.name));
    }
    result.map(|()| began.elapsed())
}

async fn run_all(backend: Backend) {
    use futures::StreamExt;
    let scripts = load_scripts();
    let results: Vec<(String, Result<Duration, String>)> =
        futures::stream::iter(scripts.iter().enumerate())
            .map(|(i, s)| async move { (s.name.clone(), run_script(backend, i, s).await) })
            .buffer_unordered(4)
            .collect()
            .await;
    let mut failed = Vec::new();
    for (name, r) in &results {
        match r {
            Ok(d) => eprintln!("golden {backend:?} {name}: ok in {:.1} s", d.as_secs_f64()),
            Err(e) => {
                eprintln!("golden {backend:?} {name}: FAILED\n{e}\n");
                failed.push(name.clone());
            }
        }
    }
    assert!(failed.is_empty(), "{backend:?}: failed scripts: {failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_scripts_on_the_embedded_log() {
    run_all(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_scripts_on_kafka() {
    run_all(Backend::Kafka).await;
}

/// Whether `sql` calls `name(`: the name as a whole word followed by `(`.
fn calls(sql: &str, name: &str) -> bool {
    let up = sql.to_ascii_uppercase();
    let b = up.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut from = 0;
    while let Some(i) = up[from..].find(name) {
        let at = from + i;
        let end = at + name.len();
        let before_ok = at == 0 || !ident(b[at - 1]);
        let rest = up[end..].trim_start();
        if before_ok && rest.starts_with('(') {
            return true;
        }
        from = end;
    }
    false
}

#[test]
fn every_registered_function_is_called_by_a_script() {
    let mut sql = String::new();
    for e in std::fs::read_dir(scripts_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let script = parse_script(&name, &std::fs::read_to_string(&p).unwrap()).unwrap();
        for s in script.steps {
            match s.directive {
                Directive::Statement {
                    sql: text,
                    error: None,
                    ..
                }
                | Directive::Query { sql: text, .. }
                | Directive::File { text, .. } => {
                    sql.push_str(&text);
                    sql.push('\n');
                }
                _ => {}
            }
        }
    }
    let registry = FunctionRegistry::ksql(&FunctionContext::default());
    let missing: Vec<&str> = registry
        .entries()
        .map(|e| e.doc.name)
        .filter(|n| !calls(&sql, n))
        .collect();
    assert!(
        missing.is_empty(),
        "functions no golden script calls (in a `statement ok` or `query`): {missing:?}"
    );
}

#[test]
fn the_script_format_rejects_what_it_cannot_check() {
    assert!(
        parse_script("x", "SELECT 1;")
            .unwrap_err()
            .contains("outside a directive")
    );
    assert!(
        parse_script("x", "--@ query\nSELECT * FROM s;")
            .unwrap_err()
            .contains("----")
    );
    assert!(
        parse_script("x", "--@ output t bogus\n--@ statement ok\nSHOW STREAMS;")
            .unwrap_err()
            .contains("unknown option")
    );
    assert!(
        parse_script("x", "--@ statement error\nSHOW STREAMS;")
            .unwrap_err()
            .contains("substring")
    );
    assert!(calls("select mask_left (x, 1)", "MASK_LEFT"));
    assert!(!calls("select mask_left_x(x, 1)", "MASK_LEFT"));
    assert!(!calls("select xmask(x)", "MASK"));
    assert_eq!(show_bytes(Some(&[0, 0, 0, 5])), "hex:00000005");
    assert_eq!(
        parse_bytes("hex:00000005").unwrap().unwrap().as_ref(),
        &[0, 0, 0, 5]
    );
    let v = serde_json::json!([{"fields": [{"name": "A", "type": "KEY"}]}]);
    assert_eq!(
        pointer(&v, "/0/fields/[name=A]/type"),
        Some(&Value::from("KEY"))
    );
    assert!(check_outcomes(&v, &[("/0/fields".into(), Check::Len(2))]).is_err());
}
