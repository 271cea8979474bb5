//! The engine: runs statements against the catalog and the log, keeps DDL and persistent
//! queries in the command topic (infinite retention) and replays it at start, and owns the
//! persistent queries' tasks (caller-driven: [`Engine::run`] supervises them until its
//! cancellation token fires).
//!
//! Statement results are ksqlDB's REST entities (`@type` …) as JSON, so the REST layer only
//! frames them.

use crate::catalog::{Catalog, Format, Source, SourceProps, check_columns};
use crate::error::{SqlError, SqlResult};
use crate::functions::{FunctionContext, FunctionRegistry};
use crate::lock;
use crate::parser::{self, KsqlQuery, KsqlStatement, ShowWhat, SourceKind, Statement};
use crate::plan::{SelectPlan, plan_select};
use crate::query::{self, QueryStatus, Start};
use crate::types::{quoted, type_name};
use fleetwatch_core::{Log, LogError, OffsetSpec, ReadLimits, Record, TopicConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `ksql.service.id`: prefixes the internal topics.
    pub service_id: String,
    /// How often queries checkpoint their positions.
    pub checkpoint_interval: Duration,
    /// Partitions of topics a query creates when neither the statement nor the source says.
    pub default_partitions: i32,
    /// `HASH_PII`'s keys.
    pub functions: FunctionContext,
    /// Where queries report (none: not measured).
    pub metrics: Option<crate::metrics::SqlMetrics>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            service_id: "default_".into(),
            checkpoint_interval: Duration::from_millis(500),
            default_partitions: 1,
            functions: FunctionContext::default(),
            metrics: None,
        }
    }
}

impl EngineConfig {
    /// The command topic (ksqlDB's name).
    pub fn command_topic(&self) -> String {
        format!("_confluent-ksql-{}_command_topic", self.service_id)
    }

    /// The processing log topic.
    pub fn processing_log_topic(&self) -> String {
        format!("{}ksql_processing_log", self.service_id)
    }

    /// The topic of query checkpoints.
    pub fn checkpoint_topic(&self) -> String {
        format!("_fleetwatch-ksql-{}checkpoints", self.service_id)
    }
}

/// A running (or failed, or stopped) persistent query.
#[derive(Debug)]
pub struct PersistentQuery {
    /// Its id (`CSAS_CLEAN_1`).
    pub id: String,
    /// The statement.
    pub statement: String,
    /// The source read.
    pub source: String,
    /// The sink written.
    pub sink: String,
    /// The sink's topic.
    pub sink_topic: String,
    /// Its status, updated by its task.
    pub status: Arc<Mutex<QueryStatus>>,
    /// Stops it.
    pub cancel: CancellationToken,
    /// The plan, for `EXPLAIN`.
    pub plan: Arc<SelectPlan>,
    /// Where it starts without a checkpoint (`auto.offset.reset` of its statement).
    pub start: Start,
}

struct State {
    catalog: Catalog,
    queries: BTreeMap<String, PersistentQuery>,
    /// Commands applied (sequence numbers).
    sequence: i64,
    query_counter: u64,
    /// Queries to start once `run` starts (restored or created before it).
    pending: Vec<String>,
    running: bool,
}

/// The SQL engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    log: Arc<dyn Log>,
    registry: Option<Arc<fleetwatch_schema::Registry>>,
    config: EngineConfig,
    functions: FunctionRegistry,
    state: Mutex<State>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// A command as stored in the command topic.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Command {
    statement: String,
    #[serde(rename = "streamsProperties", default)]
    properties: BTreeMap<String, Value>,
}

/// A statement's result: an entity, none (`INSERT … VALUES`, `SET`), or a streaming query.
#[derive(Debug)]
pub enum Outcome {
    /// A ksqlDB entity.
    Entity(Value),
    /// Nothing to show.
    Nothing,
    /// A push/pull query or PRINT: the caller streams it.
    Stream(StatementStream),
}

/// A query for the streaming endpoints.
#[derive(Debug)]
pub enum StatementStream {
    /// `SELECT …`.
    Select(Arc<SelectPlan>, KsqlQuery),
    /// `PRINT …`.
    Print {
        /// The topic.
        topic: String,
        /// From the start.
        from_beginning: bool,
        /// Every n-th.
        interval: Option<u64>,
        /// At most.
        limit: Option<u64>,
    },
}

impl Engine {
    /// An engine over `log`; call [`Engine::recover`] then [`Engine::run`].
    pub fn new(log: Arc<dyn Log>, config: EngineConfig) -> Engine {
        Self::with_registry(log, config, None)
    }

    /// An engine that reads and writes AVRO and JSON_SR through the schema registry.
    pub fn with_registry(
        log: Arc<dyn Log>,
        config: EngineConfig,
        registry: Option<Arc<fleetwatch_schema::Registry>>,
    ) -> Engine {
        let functions = FunctionRegistry::ksql(&config.functions);
        Engine {
            inner: Arc::new(Inner {
                log,
                registry,
                config,
                functions,
                state: Mutex::new(State {
                    catalog: Catalog::default(),
                    queries: BTreeMap::new(),
                    sequence: -1,
                    query_counter: 0,
                    pending: Vec::new(),
                    running: false,
                }),
                cancel: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// The schema registry, if any.
    pub fn registry(&self) -> Option<Arc<fleetwatch_schema::Registry>> {
        self.inner.registry.clone()
    }

    /// The functions.
    pub fn functions(&self) -> &FunctionRegistry {
        &self.inner.functions
    }

    /// The config.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The log.
    pub fn log(&self) -> &Arc<dyn Log> {
        &self.inner.log
    }

    /// A copy of the catalog.
    pub fn catalog(&self) -> Catalog {
        lock(&self.inner.state).catalog.clone()
    }

    /// The last command's sequence number.
    pub fn sequence(&self) -> i64 {
        lock(&self.inner.state).sequence
    }

    /// Creates the internal topics and replays the command topic: the catalog and the
    /// persistent queries come back as they were (queries start with [`Engine::run`]).
    pub async fn recover(&self) -> SqlResult<usize> {
        let log = &self.inner.log;
        let infinite = TopicConfig {
            retention_ms: None,
            ..TopicConfig::with_partitions(1)
        };
        log.ensure_topic(&self.inner.config.command_topic(), infinite.clone())
            .await?;
        log.ensure_topic(&self.inner.config.checkpoint_topic(), infinite)
            .await?;
        log.ensure_topic(
            &self.inner.config.processing_log_topic(),
            TopicConfig::with_partitions(1),
        )
        .await?;
        let topic = self.inner.config.command_topic();
        let end = log.offset_for(&topic, 0, OffsetSpec::Latest).await?;
        let mut pos = log.offset_for(&topic, 0, OffsetSpec::Earliest).await?;
        let mut applied = 0;
        while pos < end {
            let batch = log.read(&topic, 0, pos, ReadLimits::default()).await?;
            if batch.records.is_empty() {
                break;
            }
            for r in &batch.records {
                pos = r.offset + 1;
                let Some(v) = &r.record.value else { continue };
                let cmd: Command = match serde_json::from_slice(v) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(offset = r.offset, error = %e, "skipping an unreadable command");
                        continue;
                    }
                };
                match parser::parse_one(&cmd.statement) {
                    Ok(stmt) => {
                        if let Err(e) = self.apply(&stmt, &cmd.properties, true).await {
                            tracing::warn!(offset = r.offset, statement = %cmd.statement, error = %e, "a stored command failed on replay");
                        }
                        applied += 1;
                    }
                    Err(e) => {
                        tracing::warn!(offset = r.offset, error = %e, "a stored command does not parse")
                    }
                }
                lock(&self.inner.state).sequence = r.offset;
            }
        }
        Ok(applied)
    }

    /// Runs the persistent queries until `cancel` fires; then stops them and waits.
    pub async fn run(&self, cancel: CancellationToken) -> SqlResult<()> {
        let pending = {
            let mut st = lock(&self.inner.state);
            st.running = true;
            std::mem::take(&mut st.pending)
        };
        for id in pending {
            self.start_query(&id);
        }
        cancel.cancelled().await;
        self.inner.cancel.cancel();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        Ok(())
    }

    fn start_query(&self, id: &str) {
        let st = lock(&self.inner.state);
        let Some(q) = st.queries.get(id) else { return };
        let Some(sink) = st.catalog.get(&q.sink) else {
            return;
        };
        let ctx = query::QueryContext {
            id: q.id.clone(),
            log: self.inner.log.clone(),
            plan: q.plan.clone(),
            sink,
            status: q.status.clone(),
            cancel: q.cancel.clone(),
            checkpoint_topic: self.inner.config.checkpoint_topic(),
            processing_log_topic: self.inner.config.processing_log_topic(),
            checkpoint_interval: self.inner.config.checkpoint_interval,
            start: q.start,
            registry: self.inner.registry.clone(),
            metrics: self.inner.config.metrics.clone(),
        };
        let root = self.inner.cancel.clone();
        self.inner.tracker.spawn(async move {
            tokio::select! {
                () = query::run_persistent(ctx) => {}
                () = root.cancelled() => {}
            }
        });
    }

    /// Runs every statement of `sql`; stops at the first that fails (earlier ones stay
    /// applied, as in ksqlDB). Returns one outcome per statement.
    pub async fn execute(
        &self,
        sql: &str,
        properties: &BTreeMap<String, Value>,
    ) -> Result<Vec<Outcome>, (SqlError, String)> {
        let statements =
            parser::parse(sql).map_err(|e| (SqlError::Parse(e), sql.trim().to_string()))?;
        let mut props = properties.clone();
        let mut out = Vec::with_capacity(statements.len());
        for s in statements {
            match &s.kind {
                KsqlStatement::Set { name, value } => {
                    props.insert(name.clone(), Value::String(value.clone()));
                    out.push(Outcome::Nothing);
                    continue;
                }
                KsqlStatement::Unset(name) => {
                    props.remove(name);
                    out.push(Outcome::Nothing);
                    continue;
                }
                KsqlStatement::RunScript(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        (
                            SqlError::statement(format!("RUN SCRIPT {path:?}: {e}")),
                            s.text.clone(),
                        )
                    })?;
                    let inner = Box::pin(self.execute(&text, &props)).await?;
                    out.extend(inner);
                    continue;
                }
                _ => {}
            }
            let o = self.apply(&s, &props, false).await.map_err(|e| {
                let e = match e {
                    SqlError::Statement(m) => {
                        SqlError::Statement(self.inner.functions.user_names(&m))
                    }
                    other => other,
                };
                (e, s.text.clone())
            })?;
            out.push(o);
        }
        Ok(out)
    }

    /// Stores a command durably (before it takes effect, so a crash cannot lose it).
    async fn store(&self, s: &Statement, props: &BTreeMap<String, Value>) -> SqlResult<i64> {
        let cmd = Command {
            statement: s.text.clone(),
            properties: props.clone(),
        };
        let value = serde_json::to_vec(&cmd).map_err(|e| SqlError::Internal(e.to_string()))?;
        let ack = self
            .inner
            .log
            .append(
                &self.inner.config.command_topic(),
                0,
                &[Record::from_value(value)],
            )
            .await?;
        let seq = ack.base_offset();
        lock(&self.inner.state).sequence = seq;
        Ok(seq)
    }

    async fn apply(
        &self,
        s: &Statement,
        props: &BTreeMap<String, Value>,
        replay: bool,
    ) -> SqlResult<Outcome> {
        let text = s.text.as_str();
        match &s.kind {
            KsqlStatement::CreateSource {
                kind,
                name,
                or_replace,
                if_not_exists,
                columns,
                props: with,
            } => {
                let exists = lock(&self.inner.state).catalog.get(name).is_some();
                if exists && *if_not_exists {
                    return Ok(Outcome::Entity(status(
                        text,
                        &format!("{}/{}/create", kind_lower(*kind), quoted(name)),
                        "SUCCESS",
                        &format!(
                            "Cannot add {} {}: A {} with the same name already exists.",
                            kind_lower(*kind),
                            quoted(name),
                            kind_lower(*kind)
                        ),
                        None,
                        self.sequence(),
                    )));
                }
                if exists && !*or_replace {
                    return Err(SqlError::statement(format!(
                        "Cannot add {} '{name}': A {} with the same name already exists",
                        kind_lower(*kind),
                        kind_lower(*kind)
                    )));
                }
                let p = SourceProps::from(with)?;
                let topic = p.topic.clone().ok_or_else(|| {
                    SqlError::statement(
                        "Missing required property \"KAFKA_TOPIC\" which has no default value.",
                    )
                })?;
                let value_format = p.value_format.ok_or_else(|| SqlError::statement("Statement is missing the 'VALUE_FORMAT' property from the WITH clause. Either provide one or set a default via the 'ksql.persistence.default.format.value' config."))?;
                let mut cols = check_columns(name, *kind, columns)?;
                let mut value_schema_id = None;
                let wire = matches!(value_format, Format::Avro | Format::JsonSr);
                if wire {
                    // Value columns left out: read them from the registry's latest
                    // `<topic>-value` schema, as ksqlDB does; given: register them.
                    let (id, inferred) =
                        self.value_schema(name, &topic, value_format, &cols).await?;
                    value_schema_id = Some(id);
                    cols.extend(inferred);
                } else if cols.iter().all(|c| c.key) {
                    return Err(SqlError::statement(format!(
                        "{name}: no value columns; only VALUE_FORMAT 'AVRO' or 'JSON_SR' can read them from the Schema Registry"
                    )));
                }
                // A missing topic is created only once every check has passed.
                let mut create_topic = false;
                let partitions = match self.inner.log.partition_count(&topic).await {
                    Ok(n) => n,
                    Err(LogError::UnknownTopic(_)) => match p.partitions {
                        Some(n) => {
                            create_topic = !replay;
                            n
                        }
                        None => {
                            return Err(SqlError::statement(format!(
                                "Topic '{topic}' does not exist. If you want to create a new topic for the stream/table please re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS')."
                            )));
                        }
                    },
                    Err(e) => return Err(e.into()),
                };
                if let Some(ts) = &p.timestamp
                    && !cols.iter().any(|c| &c.name == ts && !c.key)
                {
                    return Err(SqlError::statement(format!(
                        "The TIMESTAMP column set in the WITH clause does not exist in the schema: '{ts}'"
                    )));
                }
                let source = Source {
                    name: name.clone(),
                    kind: *kind,
                    topic,
                    key_format: p.key_format.unwrap_or(Format::Kafka),
                    value_format,
                    columns: cols,
                    timestamp: p.timestamp,
                    timestamp_format: p.timestamp_format,
                    wrap_single_value: p.wrap_single_value.unwrap_or(true),
                    delimiter: p.delimiter.unwrap_or(b','),
                    value_schema_id,
                    partitions,
                    statement: text.to_string(),
                    written_by: None,
                };
                // Check the formats can read it.
                crate::exec::Decoder::with_registry(
                    Arc::new(source.clone()),
                    self.inner.registry.clone(),
                )?;
                if create_topic {
                    self.inner
                        .log
                        .ensure_topic(&source.topic, TopicConfig::with_partitions(partitions))
                        .await?;
                }
                let seq = if replay {
                    self.sequence()
                } else {
                    self.store(s, props).await?
                };
                lock(&self.inner.state).catalog.put(source);
                let what = if *kind == SourceKind::Stream {
                    "Stream"
                } else {
                    "Table"
                };
                Ok(Outcome::Entity(status(
                    text,
                    &format!("{}/{}/create", kind_lower(*kind), quoted(name)),
                    "SUCCESS",
                    &format!("{what} created"),
                    None,
                    seq,
                )))
            }
            KsqlStatement::CreateAs {
                kind,
                name,
                or_replace,
                if_not_exists,
                props: with,
                query,
            } => {
                if *kind == SourceKind::Table {
                    return Err(SqlError::statement(
                        "CREATE TABLE … AS SELECT needs aggregations or a table source, which are not supported yet",
                    ));
                }
                let catalog = self.catalog();
                if catalog.get(name).is_some() {
                    if *if_not_exists {
                        return Ok(Outcome::Nothing);
                    }
                    if !*or_replace {
                        return Err(SqlError::statement(format!(
                            "Cannot add stream '{name}': A stream with the same name already exists"
                        )));
                    }
                }
                let plan = Arc::new(plan_select(&catalog, &self.inner.functions, query)?);
                if plan.source.kind == SourceKind::Table {
                    return Err(SqlError::statement(
                        "queries over tables are not supported yet",
                    ));
                }
                let keys: Vec<_> = plan.source.key_columns().map(|c| c.name.clone()).collect();
                if !plan.repartitioned && !keys.is_empty() && !plan.columns.iter().any(|c| c.key) {
                    return Err(SqlError::statement(format!(
                        "The query used to build `{name}` must include the key column(s) {} in its projection (eg, SELECT {}...).",
                        keys.join(", "),
                        keys.join(", ")
                    )));
                }
                let p = SourceProps::from(with)?;
                let topic = p.topic.clone().unwrap_or_else(|| name.clone());
                let value_format = p.value_format.unwrap_or(plan.source.value_format);
                let key_format = p.key_format.unwrap_or(plan.source.key_format);
                let partitions = p.partitions.unwrap_or(
                    plan.source
                        .partitions
                        .max(self.inner.config.default_partitions),
                );
                let mut cols = plan.sql_columns()?;
                cols.sort_by_key(|c| !c.key);
                let id = {
                    let mut st = lock(&self.inner.state);
                    st.query_counter += 1;
                    format!("CSAS_{}_{}", name, st.query_counter)
                };
                let value_schema_id = match value_format {
                    Format::Avro => Some(self.register_avro(&topic, &plan.value_schema()).await?),
                    Format::JsonSr => {
                        return Err(SqlError::statement(
                            "writing VALUE_FORMAT 'JSON_SR' is not supported yet (use JSON or AVRO)",
                        ));
                    }
                    _ => None,
                };
                let sink = Source {
                    name: name.clone(),
                    kind: SourceKind::Stream,
                    topic: topic.clone(),
                    key_format,
                    value_format,
                    columns: cols,
                    timestamp: None,
                    timestamp_format: None,
                    wrap_single_value: p.wrap_single_value.unwrap_or(true),
                    delimiter: p.delimiter.unwrap_or(b','),
                    value_schema_id,
                    partitions,
                    statement: text.to_string(),
                    written_by: Some(id.clone()),
                };
                crate::exec::encoder_for(&plan, &sink, key_format)?;
                let seq = if replay {
                    self.sequence()
                } else {
                    self.store(s, props).await?
                };
                self.inner
                    .log
                    .ensure_topic(&topic, TopicConfig::with_partitions(partitions))
                    .await?;
                self.add_query(
                    &id,
                    text,
                    plan,
                    sink,
                    Start::from_props(props, Start::Latest),
                );
                Ok(Outcome::Entity(status(
                    text,
                    &format!("stream/{}/create", quoted(name)),
                    "SUCCESS",
                    &format!("Created query with ID {id}"),
                    Some(&id),
                    seq,
                )))
            }
            KsqlStatement::InsertSelect {
                target,
                props: _,
                query,
            } => {
                let catalog = self.catalog();
                let sink = catalog.require(target)?;
                let plan = Arc::new(plan_select(&catalog, &self.inner.functions, query)?);
                let want: Vec<_> = sink
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.clone()))
                    .collect();
                let got: Vec<_> = plan
                    .sql_columns()?
                    .into_iter()
                    .map(|c| (c.name, c.ty))
                    .collect();
                let mut w = want.clone();
                let mut g = got.clone();
                w.sort_by(|a, b| a.0.cmp(&b.0));
                g.sort_by(|a, b| a.0.cmp(&b.0));
                if w != g {
                    return Err(SqlError::statement(format!(
                        "Incompatible schema between results and sink. Result schema is {}, but the sink schema is {}.",
                        got.iter()
                            .map(|(n, t)| format!("{} {t}", quoted(n)))
                            .collect::<Vec<_>>()
                            .join(", "),
                        want.iter()
                            .map(|(n, t)| format!("{} {t}", quoted(n)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                crate::exec::Encoder::new(
                    &plan,
                    sink.key_format,
                    sink.value_format,
                    sink.wrap_single_value,
                )?;
                let id = {
                    let mut st = lock(&self.inner.state);
                    st.query_counter += 1;
                    format!("INSERTQUERY_{}", st.query_counter)
                };
                let seq = if replay {
                    self.sequence()
                } else {
                    self.store(s, props).await?
                };
                self.add_query(
                    &id,
                    text,
                    plan,
                    (*sink).clone(),
                    Start::from_props(props, Start::Latest),
                );
                Ok(Outcome::Entity(status(
                    text,
                    &format!("stream/{}/create", quoted(target)),
                    "SUCCESS",
                    &format!("Created query with ID {id}"),
                    Some(&id),
                    seq,
                )))
            }
            KsqlStatement::InsertValues {
                target,
                columns,
                values,
            } => {
                let sink = self.catalog().require(target)?;
                query::insert_values(
                    &self.inner.log,
                    &self.inner.functions,
                    &sink,
                    columns.as_deref(),
                    values,
                )
                .await?;
                Ok(Outcome::Nothing)
            }
            KsqlStatement::Query(q) => {
                let plan = plan_select(&self.catalog(), &self.inner.functions, q)?;
                Ok(Outcome::Stream(StatementStream::Select(
                    Arc::new(plan),
                    q.clone(),
                )))
            }
            KsqlStatement::Print {
                topic,
                from_beginning,
                interval,
                limit,
            } => {
                self.inner.log.partition_count(topic).await.map_err(|_| SqlError::statement(format!("Could not find topic '{topic}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive.")))?;
                Ok(Outcome::Stream(StatementStream::Print {
                    topic: topic.clone(),
                    from_beginning: *from_beginning,
                    interval: *interval,
                    limit: *limit,
                }))
            }
            KsqlStatement::Show { what, extended } => {
                self.show(text, *what, *extended).await.map(Outcome::Entity)
            }
            KsqlStatement::Describe {
                name,
                all,
                extended,
            } => {
                let catalog = self.catalog();
                match (name, all) {
                    (Some(n), _) => {
                        let s = catalog.require(n)?;
                        Ok(Outcome::Entity(json!({
                            "@type": "sourceDescription",
                            "statementText": text,
                            "sourceDescription": self.describe(&s, *extended),
                            "warnings": [],
                        })))
                    }
                    (None, Some(k)) => {
                        let list: Vec<Value> = catalog
                            .all()
                            .filter(|s| s.kind == *k)
                            .map(|s| self.describe(s, *extended))
                            .collect();
                        Ok(Outcome::Entity(json!({
                            "@type": "source_descriptions",
                            "statementText": text,
                            "sourceDescriptions": list,
                            "warnings": [],
                        })))
                    }
                    (None, None) => Err(SqlError::statement("DESCRIBE needs a name")),
                }
            }
            KsqlStatement::DescribeFunction(name) => {
                let e = self.inner.functions.entry(name).ok_or_else(|| {
                    SqlError::statement(format!("Can't find any functions with the name '{name}'"))
                })?;
                let functions: Vec<Value> = e
                    .doc
                    .variants
                    .iter()
                    .map(|v| {
                        json!({
                            "arguments": v.args.iter().map(|(n, t)| json!({"name": n, "type": t.sql_name(), "description": "", "isVariadic": false})).collect::<Vec<_>>(),
                            "returnType": v.returns,
                            "description": v.description,
                            "argumentTypes": v.args.iter().map(|(_, t)| t.sql_name()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                Ok(Outcome::Entity(json!({
                    "@type": "describe_function",
                    "statementText": text,
                    "name": e.doc.name,
                    "description": e.doc.description,
                    "author": "fleetwatch",
                    "version": env!("CARGO_PKG_VERSION"),
                    "path": "internal",
                    "functions": functions,
                    "type": e.kind,
                    "warnings": [],
                })))
            }
            KsqlStatement::Explain {
                query_id,
                statement,
            } => {
                let (id, plan, stmt) = match (query_id, statement) {
                    (Some(id), _) => {
                        let st = lock(&self.inner.state);
                        let q = st.queries.get(id).ok_or_else(|| SqlError::statement(format!("Query with id:{id} does not exist, use SHOW QUERIES to view the full set of queries.")))?;
                        (q.id.clone(), q.plan.clone(), q.statement.clone())
                    }
                    (None, Some(s)) => {
                        let q = match &s.kind {
                            KsqlStatement::Query(q)
                            | KsqlStatement::CreateAs { query: q, .. }
                            | KsqlStatement::InsertSelect { query: q, .. } => q,
                            _ => {
                                return Err(SqlError::statement(
                                    "EXPLAIN takes a query id or a SELECT, CREATE … AS SELECT or INSERT … SELECT",
                                ));
                            }
                        };
                        (
                            String::new(),
                            Arc::new(plan_select(&self.catalog(), &self.inner.functions, q)?),
                            s.text.clone(),
                        )
                    }
                    _ => {
                        return Err(SqlError::statement(
                            "EXPLAIN needs a query id or a statement",
                        ));
                    }
                };
                Ok(Outcome::Entity(json!({
                    "@type": "queryDescription",
                    "statementText": text,
                    "queryDescription": {
                        "id": id,
                        "statementText": stmt,
                        "fields": fields(&plan.schema(), &plan.columns.iter().filter(|c| c.key).map(|c| c.name.clone()).collect::<Vec<_>>()),
                        "sources": [plan.source.name],
                        "executionPlan": explain(&plan),
                        "state": "RUNNING",
                    },
                    "warnings": [],
                })))
            }
            KsqlStatement::Drop {
                kind,
                name,
                if_exists,
                delete_topic,
            } => {
                let existing = self.catalog().get(name);
                let Some(src) = existing else {
                    if *if_exists {
                        return Ok(Outcome::Entity(status(
                            text,
                            &format!("{}/{}/drop", kind_lower(*kind), quoted(name)),
                            "SUCCESS",
                            &format!("Source `{name}` does not exist."),
                            None,
                            self.sequence(),
                        )));
                    }
                    return Err(SqlError::statement(format!(
                        "{} {name} does not exist.",
                        if *kind == SourceKind::Stream {
                            "Stream"
                        } else {
                            "Table"
                        }
                    )));
                };
                if src.kind != *kind {
                    return Err(SqlError::statement(format!(
                        "Incompatible data source type is {}, but statement was DROP {}",
                        src.kind.keyword(),
                        kind.keyword()
                    )));
                }
                {
                    let st = lock(&self.inner.state);
                    let users: Vec<&str> = st
                        .queries
                        .values()
                        .filter(|q| {
                            (q.source == *name || q.sink == *name) && !lock(&q.status).is_terminal()
                        })
                        .map(|q| q.id.as_str())
                        .collect();
                    if !users.is_empty() {
                        return Err(SqlError::statement(format!(
                            "Cannot drop {name}.\nThe following queries read from or write to this source: [{}].\nYou need to terminate them before dropping {name}.",
                            users.join(", ")
                        )));
                    }
                }
                let seq = if replay {
                    self.sequence()
                } else {
                    self.store(s, props).await?
                };
                lock(&self.inner.state).catalog.remove(name);
                if *delete_topic && !replay {
                    self.inner.log.delete_topic(&src.topic).await?;
                }
                Ok(Outcome::Entity(status(
                    text,
                    &format!("{}/{}/drop", kind_lower(*kind), quoted(name)),
                    "SUCCESS",
                    &format!("Source `{name}` (topic: {}) was dropped.", src.topic),
                    None,
                    seq,
                )))
            }
            KsqlStatement::Terminate(which) => {
                let ids: Vec<String> = {
                    let st = lock(&self.inner.state);
                    match which {
                        Some(id) => {
                            if !st.queries.contains_key(id) {
                                return Err(SqlError::statement(format!("Unknown queryId: {id}")));
                            }
                            vec![id.clone()]
                        }
                        None => st.queries.keys().cloned().collect(),
                    }
                };
                let seq = if replay {
                    self.sequence()
                } else {
                    self.store(s, props).await?
                };
                let mut st = lock(&self.inner.state);
                for id in &ids {
                    if let Some(q) = st.queries.remove(id) {
                        q.cancel.cancel();
                    }
                }
                st.pending.retain(|p| !ids.contains(p));
                Ok(Outcome::Entity(status(
                    text,
                    &format!(
                        "terminate/{}/execute",
                        which.clone().unwrap_or_else(|| "ALL".into())
                    ),
                    "SUCCESS",
                    "Query terminated.",
                    None,
                    seq,
                )))
            }
            KsqlStatement::Set { .. } | KsqlStatement::Unset(_) | KsqlStatement::RunScript(_) => {
                Ok(Outcome::Nothing)
            }
        }
    }

    fn registry_or_err(&self, what: &str) -> SqlResult<&Arc<fleetwatch_schema::Registry>> {
        self.inner.registry.as_ref().ok_or_else(|| {
            SqlError::statement(format!(
                "{what} needs the schema registry, and this engine has none"
            ))
        })
    }

    /// Registers the Avro schema of value columns under `<topic>-value` (ksqlDB's record
    /// name); the same schema again gives the same id.
    async fn register_avro(
        &self,
        topic: &str,
        values: &arrow::datatypes::Schema,
    ) -> SqlResult<i32> {
        let reg = self.registry_or_err("VALUE_FORMAT 'AVRO'")?;
        let schema = fleetwatch_columnar::avro_schema_for(
            values,
            "KsqlDataSourceSchema",
            "io.confluent.ksql.avro_schemas",
        )
        .map_err(|e| SqlError::statement(format!("no Avro schema for these columns: {e}")))?;
        let req = fleetwatch_schema::types::RegisterRequest {
            schema: schema.to_string(),
            ..Default::default()
        };
        reg.register(&format!("{topic}-value"), &req, false)
            .await
            .map_err(|e| {
                SqlError::statement(format!(
                    "registering the value schema of {topic} (subject {topic}-value): {e}"
                ))
            })
    }

    /// The value schema of a source in AVRO / JSON_SR: the registry's latest when no value
    /// column is declared (returned as columns), else the declared ones registered.
    async fn value_schema(
        &self,
        name: &str,
        topic: &str,
        format: Format,
        declared: &[crate::catalog::Column],
    ) -> SqlResult<(i32, Vec<crate::catalog::Column>)> {
        let reg = self.registry_or_err(&format!("VALUE_FORMAT '{}'", format.name()))?;
        let values: Vec<&crate::catalog::Column> = declared.iter().filter(|c| !c.key).collect();
        if !values.is_empty() {
            if format == Format::JsonSr {
                // Reading JSON_SR with declared columns: the payload is plain JSON; any
                // registered id is accepted.
                let id = reg
                    .get_version(&format!("{topic}-value"), "latest", false)
                    .map(|v| v.id)
                    .unwrap_or(0);
                return Ok((id, Vec::new()));
            }
            let schema = arrow::datatypes::Schema::new(
                values
                    .iter()
                    .map(|c| arrow::datatypes::Field::new(&c.name, c.ty.to_arrow(), true))
                    .collect::<Vec<_>>(),
            );
            return Ok((self.register_avro(topic, &schema).await?, Vec::new()));
        }
        let subject = format!("{topic}-value");
        let v = reg.get_version(&subject, "latest", false).map_err(|e| {
            SqlError::statement(format!(
                "{name}: no value columns given and none in the schema registry: subject {subject}: {e}"
            ))
        })?;
        let fields = match format {
            Format::Avro => {
                let parsed = reg
                    .avro_by_id(v.id)
                    .map_err(|e| SqlError::statement(format!("{subject}: {e}")))?;
                fleetwatch_columnar::arrow_schema_from_avro(&parsed.schema, true)
                    .map_err(|e| SqlError::statement(format!("{subject}: {e}")))?
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().clone()))
                    .collect::<Vec<_>>()
            }
            _ => {
                let doc: serde_json::Value = serde_json::from_str(&v.schema)
                    .map_err(|e| SqlError::statement(format!("{subject}: {e}")))?;
                crate::types::columns_from_json_schema(&doc)
                    .map_err(|e| SqlError::statement(format!("{subject}: {e}")))?
            }
        };
        let mut cols = Vec::with_capacity(fields.len());
        for (n, t) in fields {
            if declared.iter().any(|c| c.name == n) {
                continue; // a declared key column of the same name
            }
            let ty = crate::types::SqlType::from_arrow(&t).ok_or_else(|| {
                SqlError::statement(format!(
                    "{subject}: field {n} has a type SQL cannot hold ({t})"
                ))
            })?;
            cols.push(crate::catalog::Column {
                name: n,
                ty,
                key: false,
            });
        }
        Ok((v.id, cols))
    }

    fn add_query(&self, id: &str, text: &str, plan: Arc<SelectPlan>, sink: Source, start: Start) {
        let mut st = lock(&self.inner.state);
        let q = PersistentQuery {
            id: id.to_string(),
            statement: text.to_string(),
            source: plan.source.name.clone(),
            sink: sink.name.clone(),
            sink_topic: sink.topic.clone(),
            status: Arc::new(Mutex::new(QueryStatus::default())),
            cancel: self.inner.cancel.child_token(),
            plan,
            start,
        };
        if st.catalog.get(&sink.name).is_none() || sink.written_by.as_deref() == Some(id) {
            st.catalog.put(sink);
        }
        st.queries.insert(id.to_string(), q);
        let running = st.running;
        if !running {
            st.pending.push(id.to_string());
        }
        drop(st);
        if running {
            self.start_query(id);
        }
    }

    /// `SHOW QUERIES` rows (also used by metrics and tests).
    pub fn queries(&self) -> Vec<(String, String, String, QueryStatus)> {
        let st = lock(&self.inner.state);
        st.queries
            .values()
            .map(|q| {
                (
                    q.id.clone(),
                    q.statement.clone(),
                    q.sink.clone(),
                    lock(&q.status).clone(),
                )
            })
            .collect()
    }

    async fn show(&self, text: &str, what: ShowWhat, extended: bool) -> SqlResult<Value> {
        let catalog = self.catalog();
        Ok(match what {
            ShowWhat::Streams | ShowWhat::Tables => {
                let kind = if what == ShowWhat::Streams {
                    SourceKind::Stream
                } else {
                    SourceKind::Table
                };
                let list: Vec<Value> = catalog
                    .all()
                    .filter(|s| s.kind == kind)
                    .map(|s| {
                        if extended {
                            self.describe(s, true)
                        } else {
                            json!({"type": kind.keyword(), "name": s.name, "topic": s.topic, "keyFormat": s.key_format.name(), "valueFormat": s.value_format.name(), "isWindowed": false})
                        }
                    })
                    .collect();
                match (what, extended) {
                    (_, true) => {
                        json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": list, "warnings": []})
                    }
                    (ShowWhat::Streams, false) => {
                        json!({"@type": "streams", "statementText": text, "streams": list, "warnings": []})
                    }
                    _ => {
                        json!({"@type": "tables", "statementText": text, "tables": list, "warnings": []})
                    }
                }
            }
            ShowWhat::Queries => {
                let st = lock(&self.inner.state);
                let list: Vec<Value> = st
                    .queries
                    .values()
                    .map(|q| {
                        let s = lock(&q.status).clone();
                        json!({
                            "queryString": q.statement,
                            "sinks": [q.sink],
                            "sinkKafkaTopics": [q.sink_topic],
                            "id": q.id,
                            "statusCount": {s.state(): 1},
                            "queryType": "PERSISTENT",
                            "state": s.state(),
                            "error": s.error,
                            "processed": s.processed,
                            "failed": s.failed,
                        })
                    })
                    .collect();
                json!({"@type": "queries", "statementText": text, "queries": list, "warnings": []})
            }
            ShowWhat::Topics => {
                let mut topics = self.inner.log.list_topics().await?;
                topics.retain(|t| extended || !t.starts_with('_'));
                topics.sort();
                let mut list = Vec::new();
                for t in topics {
                    let n = self.inner.log.partition_count(&t).await.unwrap_or(0);
                    list.push(json!({"name": t, "replicaInfo": vec![1; n.max(0) as usize]}));
                }
                json!({"@type": "kafka_topics", "statementText": text, "topics": list, "warnings": []})
            }
            ShowWhat::Functions => {
                let list: Vec<Value> = self
                    .inner
                    .functions
                    .entries()
                    .map(
                        |e| json!({"name": e.doc.name, "type": e.kind, "category": e.doc.category}),
                    )
                    .collect();
                json!({"@type": "function_names", "statementText": text, "functions": list, "warnings": []})
            }
            ShowWhat::Properties => {
                let c = &self.inner.config;
                let props = [
                    ("ksql.service.id", c.service_id.clone()),
                    ("ksql.persistence.default.format.key", "KAFKA".to_string()),
                    ("auto.offset.reset", "latest".to_string()),
                    (
                        "ksql.streams.commit.interval.ms",
                        c.checkpoint_interval.as_millis().to_string(),
                    ),
                    ("ksql.internal.topic.replicas", "1".to_string()),
                ];
                let list: Vec<Value> = props
                    .iter()
                    .map(|(n, v)| json!({"name": n, "scope": "KSQL", "value": v}))
                    .collect();
                json!({"@type": "properties", "statementText": text, "properties": list, "overwrittenProperties": [], "defaultProperties": [], "warnings": []})
            }
        })
    }

    fn describe(&self, s: &Source, extended: bool) -> Value {
        let st = lock(&self.inner.state);
        let read: Vec<Value> = st.queries.values().filter(|q| q.source == s.name).map(|q| json!({"id": q.id, "queryString": q.statement, "sinks": [q.sink], "sinkKafkaTopics": [q.sink_topic], "queryType": "PERSISTENT", "state": lock(&q.status).state()})).collect();
        let write: Vec<Value> = st.queries.values().filter(|q| q.sink == s.name).map(|q| json!({"id": q.id, "queryString": q.statement, "sinks": [q.sink], "sinkKafkaTopics": [q.sink_topic], "queryType": "PERSISTENT", "state": lock(&q.status).state()})).collect();
        let mut flds = Vec::with_capacity(s.columns.len());
        for c in &s.columns {
            let mut f = json!({"name": c.name, "schema": schema_json(&c.ty.to_arrow())});
            if c.key {
                f["type"] = json!("KEY");
            }
            flds.push(f);
        }
        json!({
            "name": s.name,
            "windowType": null,
            "readQueries": read,
            "writeQueries": write,
            "fields": flds,
            "type": s.kind.keyword(),
            "timestamp": s.timestamp.clone().unwrap_or_default(),
            "statistics": "",
            "errorStats": "",
            "extended": extended,
            "keyFormat": s.key_format.name(),
            "valueFormat": s.value_format.name(),
            "topic": s.topic,
            "partitions": s.partitions,
            "replication": 1,
            "statement": s.statement,
            "queryOffsetSummaries": [],
            "sourceConstraints": [],
        })
    }
}

fn kind_lower(k: SourceKind) -> &'static str {
    match k {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    }
}

/// ksqlDB's `currentStatus` entity.
fn status(
    text: &str,
    command_id: &str,
    st: &str,
    message: &str,
    query_id: Option<&str>,
    seq: i64,
) -> Value {
    json!({
        "@type": "currentStatus",
        "statementText": text,
        "commandId": command_id,
        "commandStatus": {"status": st, "message": message, "queryId": query_id},
        "commandSequenceNumber": seq,
        "warnings": [],
    })
}

/// ksqlDB's schema JSON of a type: `{"type": "STRUCT", "fields": […], "memberSchema": …}`.
pub fn schema_json(t: &arrow::datatypes::DataType) -> Value {
    use arrow::datatypes::DataType as D;
    match t {
        D::Struct(fs) => {
            json!({"type": "STRUCT", "fields": fs.iter().map(|f| json!({"name": f.name(), "schema": schema_json(f.data_type())})).collect::<Vec<_>>(), "memberSchema": null})
        }
        D::List(f) => {
            json!({"type": "ARRAY", "fields": null, "memberSchema": schema_json(f.data_type())})
        }
        D::Map(e, _) => match e.data_type() {
            D::Struct(kv) if kv.len() == 2 => {
                json!({"type": "MAP", "fields": null, "memberSchema": schema_json(kv[1].data_type())})
            }
            _ => json!({"type": "MAP", "fields": null, "memberSchema": null}),
        },
        other => {
            let n = type_name(other);
            let base = n.split('(').next().unwrap_or(&n).to_string();
            json!({"type": if base == "STRING" { "STRING".to_string() } else { base }, "fields": null, "memberSchema": null})
        }
    }
}

/// `fields` of a query description.
fn fields(schema: &arrow::datatypes::Schema, keys: &[String]) -> Vec<Value> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let mut v = json!({"name": f.name(), "schema": schema_json(f.data_type())});
            if keys.contains(f.name()) {
                v["type"] = json!("KEY");
            }
            v
        })
        .collect()
}

/// A readable execution plan.
pub fn explain(plan: &SelectPlan) -> String {
    let mut s = format!(
        " > [ SINK ] | Schema: {} |\n",
        plan.columns
            .iter()
            .map(|c| format!(
                "{} {}{}",
                quoted(&c.name),
                type_name(&c.data_type),
                if c.key { " KEY" } else { "" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s.push_str(&format!(
        "\t\t > [ PROJECT ] | {} |\n",
        plan.columns
            .iter()
            .map(|c| format!("{} AS {}", c.logical, c.name))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(f) = &plan.filter_text {
        s.push_str(&format!("\t\t\t\t > [ FILTER ] | {f} |\n"));
    }
    s.push_str(&format!(
        "\t\t\t\t\t\t > [ SOURCE ] | {} (topic {}, {} partitions, {}) |\n",
        plan.source.name,
        plan.source.topic,
        plan.source.partitions,
        plan.source.value_format.name()
    ));
    s
}
