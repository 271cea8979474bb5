//! ksqlDB's REST API over the [`Engine`]: `POST /ksql`, `POST /query` (chunked JSON),
//! `POST /query-stream` (delimited or `application/json`, HTTP/1.1 or h2c), `POST
//! /close-query`, `POST /inserts-stream`, `GET /info`, `GET /healthcheck`, `GET
//! /status/{commandId}` — with ksqlDB's entity and error shapes (`statement_error` 40001,
//! `generic_error` 50000), so ksqlDB clients work unchanged.
//!
//! A push query streams until its LIMIT, `/close-query`, or the client going away: the
//! response body is the query's stream, so a closed connection (or an HTTP/2 stream reset)
//! drops it and the query stops reading.

use crate::engine::{Engine, Outcome, StatementStream};
use crate::error::SqlError;
use crate::lock;
use crate::plan::SelectPlan;
use crate::query::{RowStream, Start};
use crate::types::{quoted, type_name};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// ksqlDB's error codes.
pub mod code {
    /// A statement that cannot run (bad SQL, unknown names, wrong types).
    pub const BAD_STATEMENT: u32 = 40001;
    /// A query sent to `/ksql` (it belongs on `/query`).
    pub const QUERY_ENDPOINT: u32 = 40002;
    /// A request body that is not what the endpoint takes.
    pub const BAD_REQUEST: u32 = 40000;
    /// Something unknown (no such query id).
    pub const NOT_FOUND: u32 = 40400;
    /// A server-side failure.
    pub const SERVER_ERROR: u32 = 50000;
}

/// ksqlDB's shape for errors that have no more specific code (for the shared HTTP layers).
pub fn ksql_error(status: StatusCode, message: String) -> Response {
    let code = u32::from(status.as_u16()) * 100;
    (
        status,
        axum::Json(json!({"@type": "generic_error", "error_code": code, "message": message})),
    )
        .into_response()
}

fn statement_error(text: &str, e: &SqlError) -> Response {
    let (status, code, kind) = match e {
        SqlError::Parse(_) | SqlError::Statement(_) | SqlError::NotFound(_) => (
            StatusCode::BAD_REQUEST,
            code::BAD_STATEMENT,
            "statement_error",
        ),
        SqlError::Log(_) | SqlError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            code::SERVER_ERROR,
            "generic_error",
        ),
    };
    (
        status,
        axum::Json(json!({
            "@type": kind,
            "error_code": code,
            "message": e.to_string(),
            "statementText": text,
            "entities": [],
        })),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"@type": "generic_error", "error_code": code::BAD_REQUEST, "message": message.into()})),
    )
        .into_response()
}

/// What the REST handlers share.
#[derive(Clone)]
pub struct RestState {
    engine: Engine,
    /// Running transient queries, for `/close-query`.
    transient: Arc<Mutex<BTreeMap<String, CancellationToken>>>,
    /// The last status of each command id, for `/status`.
    statuses: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Stops every stream when the server stops.
    shutdown: CancellationToken,
}

impl RestState {
    /// State over an engine; `shutdown` ends open streams when the server stops.
    pub fn new(engine: Engine, shutdown: CancellationToken) -> Self {
        RestState {
            engine,
            transient: Arc::default(),
            statuses: Arc::default(),
            shutdown,
        }
    }
}

/// The routes.
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/ksql", post(ksql))
        .route("/ksql/terminate", post(terminate_all))
        .route("/query", post(query))
        .route("/query-stream", post(query_stream))
        .route("/close-query", post(close_query))
        .route("/inserts-stream", post(inserts_stream))
        .route("/info", get(info))
        .route("/healthcheck", get(healthcheck))
        .route("/status/{*command}", get(status))
        .with_state(state)
}

/// Reads a JSON body whatever its content type (ksqlDB clients send several).
#[allow(clippy::result_large_err)]
fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the request body is not JSON: {e}")))
}

fn props_of(v: Option<&Value>) -> BTreeMap<String, Value> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

async fn ksql(State(s): State<RestState>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(sql) = body.get("ksql").and_then(Value::as_str) else {
        return bad_request("the body needs \"ksql\": the statements to run");
    };
    let props = props_of(body.get("streamsProperties"));
    // Queries belong on /query (checked before anything runs, as ksqlDB does).
    if let Ok(stmts) = crate::parser::parse(sql)
        && let Some(q) = stmts.iter().find(|st| {
            matches!(
                st.kind,
                crate::parser::KsqlStatement::Query(_) | crate::parser::KsqlStatement::Print { .. }
            )
        })
    {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "@type": "statement_error",
                "error_code": code::QUERY_ENDPOINT,
                "message": "The following statement types should be issued to the websocket endpoint '/query':\n\t* PRINT\n\t* SELECT",
                "statementText": q.text,
                "entities": [],
            })),
        )
            .into_response();
    }
    match s.engine.execute(sql, &props).await {
        Ok(outcomes) => {
            let entities: Vec<Value> = outcomes
                .into_iter()
                .filter_map(|o| match o {
                    Outcome::Entity(v) => Some(v),
                    _ => None,
                })
                .collect();
            {
                let mut st = lock(&s.statuses);
                for e in &entities {
                    if let (Some(id), Some(cs)) = (
                        e.get("commandId").and_then(Value::as_str),
                        e.get("commandStatus"),
                    ) {
                        st.insert(id.to_string(), cs.clone());
                    }
                }
            }
            axum::Json(Value::Array(entities)).into_response()
        }
        Err((e, text)) => statement_error(&text, &e),
    }
}

async fn terminate_all(State(s): State<RestState>) -> Response {
    match s.engine.execute("TERMINATE ALL;", &BTreeMap::new()).await {
        Ok(_) => axum::Json(json!({})).into_response(),
        Err((e, text)) => statement_error(&text, &e),
    }
}

/// A statement for the streaming endpoints: a SELECT or a PRINT.
#[allow(clippy::result_large_err)]
async fn stream_statement(
    s: &RestState,
    sql: &str,
    props: &BTreeMap<String, Value>,
) -> Result<StatementStream, Response> {
    match s.engine.execute(sql, props).await {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(Outcome::Stream(st)) if outcomes.is_empty() => Ok(st),
            _ => Err(bad_request(
                "this endpoint takes one SELECT or PRINT statement; send other statements to /ksql",
            )),
        },
        Err((e, text)) => Err(statement_error(&text, &e)),
    }
}

fn query_id(plan: &SelectPlan) -> String {
    let n: u64 =
        fleetwatch_core::now_ms() as u64 ^ (std::process::id() as u64) << 40 ^ rand_u32() as u64;
    format!(
        "transient_{}_{}",
        plan.source.name,
        n % 10_000_000_000_000_000
    )
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(fleetwatch_core::now_ms() as u64);
    h.finish() as u32
}

fn schema_text(plan: &SelectPlan) -> String {
    plan.columns
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                quoted(&c.name),
                type_name(&c.data_type),
                if c.key { " KEY" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How rows are framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `/query`: a JSON array of `{"header"}`, `{"row"}` … `{"finalMessage"}` objects.
    Query,
    /// `/query-stream` delimited: header object, then one JSON array per line.
    Delimited,
    /// `/query-stream` with `Accept: application/json`: one JSON array.
    JsonArray,
}

/// Streams a SELECT's rows with a framing; ends at LIMIT, close-query, shutdown, or when
/// the client goes away (the body is dropped).
async fn stream_select(
    s: RestState,
    plan: Arc<SelectPlan>,
    props: &BTreeMap<String, Value>,
    framing: Framing,
) -> Response {
    let id = query_id(&plan);
    let pull = plan.emit.is_none();
    let start = Start::from_props(props, Start::Latest);
    let rows = match RowStream::open(
        s.engine.log().clone(),
        plan.clone(),
        start,
        pull,
        s.engine.config().processing_log_topic(),
        id.clone(),
        s.engine.registry(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return statement_error("", &e),
    };
    let cancel = s.shutdown.child_token();
    lock(&s.transient).insert(id.clone(), cancel.clone());
    let header = match framing {
        Framing::Query => format!(
            "[{{\"header\":{{\"queryId\":{},\"schema\":{}}}}}",
            json!(id),
            json!(schema_text(&plan))
        ),
        Framing::Delimited | Framing::JsonArray => {
            let h = json!({
                "queryId": id,
                "columnNames": plan.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                "columnTypes": plan.columns.iter().map(|c| type_name(&c.data_type)).collect::<Vec<_>>(),
            });
            if framing == Framing::Delimited {
                format!("{h}\n")
            } else {
                format!("[{h}")
            }
        }
    };
    struct Guard {
        id: String,
        transient: Arc<Mutex<BTreeMap<String, CancellationToken>>>,
        open: Option<fleetwatch_metrics::IntGauge>,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            lock(&self.transient).remove(&self.id);
            if let Some(g) = &self.open {
                g.dec();
            }
        }
    }
    let open = s
        .engine
        .config()
        .metrics
        .as_ref()
        .map(|m| m.push_queries.clone());
    if let Some(g) = &open {
        g.inc();
    }
    let guard = Guard {
        id: id.clone(),
        transient: s.transient.clone(),
        open,
    };
    let limited = plan.limit.is_some();
    let body =
        futures::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(header)) })
            .chain(futures::stream::unfold(
                Some((rows, cancel, guard)),
                move |st| async move {
                    let (mut rows, cancel, guard) = st?;
                    let next = tokio::select! {
                        r = rows.next() => r,
                        () = cancel.cancelled() => Ok(None),
                    };
                    let tail = |msg: Option<&str>| -> Bytes {
                        match (framing, msg) {
                            (Framing::Query, Some(m)) => {
                                Bytes::from(format!(",\n{{\"finalMessage\":{}}}]\n", json!(m)))
                            }
                            (Framing::Query, None) => Bytes::from_static(b"]\n"),
                            (Framing::JsonArray, _) => Bytes::from_static(b"]\n"),
                            (Framing::Delimited, _) => Bytes::new(),
                        }
                    };
                    match next {
                        Ok(Some(batch)) => {
                            let mut out = String::new();
                            for r in batch {
                                match framing {
                                    Framing::Query => out.push_str(&format!(
                                        ",\n{{\"row\":{{\"columns\":{}}}}}",
                                        Value::Array(r)
                                    )),
                                    Framing::Delimited => {
                                        out.push_str(&format!("{}\n", Value::Array(r)))
                                    }
                                    Framing::JsonArray => {
                                        out.push_str(&format!(",\n{}", Value::Array(r)))
                                    }
                                }
                            }
                            Some((Ok(Bytes::from(out)), Some((rows, cancel, guard))))
                        }
                        Ok(None) => {
                            let msg = if limited {
                                "Limit Reached"
                            } else {
                                "Query Completed"
                            };
                            Some((Ok(tail(Some(msg))), None))
                        }
                        Err(e) => {
                            let m = format!("Query failed: {e}");
                            Some((Ok(tail(Some(&m))), None))
                        }
                    }
                },
            ));
    let content_type = match framing {
        Framing::Query => "application/json",
        Framing::Delimited => "application/vnd.ksqlapi.delimited.v1",
        Framing::JsonArray => "application/json",
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| ksql_error(StatusCode::INTERNAL_SERVER_ERROR, "response".into()))
}

/// `PRINT topic`: one line per record, as ksqlDB prints them.
async fn stream_print(
    s: RestState,
    topic: String,
    from_beginning: bool,
    interval: Option<u64>,
    limit: Option<u64>,
) -> Response {
    use fleetwatch_core::{OffsetSpec, ReadLimits, TopicSubscription};
    let log = s.engine.log().clone();
    let n = match log.partition_count(&topic).await {
        Ok(n) => n,
        Err(e) => return statement_error("", &SqlError::Log(e)),
    };
    let mut positions = Vec::new();
    for p in 0..n {
        let spec = if from_beginning {
            OffsetSpec::Earliest
        } else {
            OffsetSpec::Latest
        };
        match log.offset_for(&topic, p, spec).await {
            Ok(o) => positions.push((p, o)),
            Err(e) => return statement_error("", &SqlError::Log(e)),
        }
    }
    let sub = TopicSubscription::new(log, topic, positions);
    let every = interval.unwrap_or(1).max(1);
    let cancel = s.shutdown.child_token();
    let body = futures::stream::unfold(Some((sub, 0u64, 0u64)), move |st| {
        let cancel = cancel.clone();
        async move {
            let (mut sub, mut seen, mut printed) = st?;
            if limit.is_some_and(|l| printed >= l) {
                return None;
            }
            let batch = tokio::select! {
                b = sub.next_batch(ReadLimits::waiting(std::time::Duration::from_millis(500))) => b,
                () = cancel.cancelled() => return None,
            };
            let mut out = String::new();
            match batch {
                Ok(records) => {
                    for r in records {
                        seen += 1;
                        if (seen - 1) % every != 0 || limit.is_some_and(|l| printed >= l) {
                            continue;
                        }
                        printed += 1;
                        let ts = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(
                            r.record.timestamp,
                        )
                        .map_or_else(
                            || r.record.timestamp.to_string(),
                            |d| d.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string(),
                        );
                        let text = |b: &Option<bytes::Bytes>| {
                            b.as_ref().map_or_else(
                                || "<null>".to_string(),
                                |b| String::from_utf8_lossy(b).to_string(),
                            )
                        };
                        out.push_str(&format!(
                            "rowtime: {ts}, key: {}, value: {}, partition: {}\n",
                            text(&r.record.key),
                            text(&r.record.value),
                            r.partition
                        ));
                    }
                }
                Err(e) => {
                    out.push_str(&format!("error: {e}\n"));
                    return Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), None));
                }
            }
            Some((Ok(Bytes::from(out)), Some((sub, seen, printed))))
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| ksql_error(StatusCode::INTERNAL_SERVER_ERROR, "response".into()))
}

async fn query(State(s): State<RestState>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(sql) = body.get("ksql").and_then(Value::as_str) else {
        return bad_request("the body needs \"ksql\": one SELECT or PRINT statement");
    };
    let props = props_of(body.get("streamsProperties"));
    match stream_statement(&s, sql, &props).await {
        Ok(StatementStream::Select(plan, _)) => {
            stream_select(s, plan, &props, Framing::Query).await
        }
        Ok(StatementStream::Print {
            topic,
            from_beginning,
            interval,
            limit,
        }) => stream_print(s, topic, from_beginning, interval, limit).await,
        Err(r) => r,
    }
}

async fn query_stream(State(s): State<RestState>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(sql) = body.get("sql").and_then(Value::as_str) else {
        return bad_request("the body needs \"sql\": one SELECT statement");
    };
    let props = props_of(body.get("properties"));
    let json_array = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("delimited"));
    match stream_statement(&s, sql, &props).await {
        Ok(StatementStream::Select(plan, _)) => {
            stream_select(
                s,
                plan,
                &props,
                if json_array {
                    Framing::JsonArray
                } else {
                    Framing::Delimited
                },
            )
            .await
        }
        Ok(StatementStream::Print { .. }) => bad_request("PRINT is served on /query"),
        Err(r) => r,
    }
}

async fn close_query(State(s): State<RestState>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(id) = body.get("queryId").and_then(Value::as_str) else {
        return bad_request("the body needs \"queryId\"");
    };
    match lock(&s.transient).remove(id) {
        Some(c) => {
            c.cancel();
            StatusCode::OK.into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"@type": "generic_error", "error_code": code::NOT_FOUND, "message": format!("No query with id {id}")})),
        )
            .into_response(),
    }
}

/// `/inserts-stream`: a first line `{"target": "S"}`, then one JSON object per row; each
/// row is answered `{"status":"ok","seq":n}` or an error with its `seq`.
async fn inserts_stream(State(s): State<RestState>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        return bad_request("the body needs a first line {\"target\": \"STREAM\"}");
    };
    let target = match serde_json::from_str::<Value>(first)
        .ok()
        .and_then(|v| v.get("target").and_then(Value::as_str).map(str::to_string))
    {
        Some(t) => t,
        None => return bad_request("the first line must be {\"target\": \"STREAM\"}"),
    };
    let Some(sink) = s
        .engine
        .catalog()
        .get(&target.to_uppercase())
        .or_else(|| s.engine.catalog().get(&target))
    else {
        return bad_request(format!(
            "Cannot insert values into an unknown stream: {target}"
        ));
    };
    let mut out = String::new();
    for (seq, line) in lines.enumerate() {
        let res = match serde_json::from_str::<serde_json::Map<String, Value>>(line) {
            Ok(obj) => crate::query::insert_json_row(s.engine.log(), &sink, &obj).await,
            Err(e) => Err(SqlError::statement(format!(
                "row {seq} is not a JSON object: {e}"
            ))),
        };
        match res {
            Ok(()) => out.push_str(&format!("{}\n", json!({"status": "ok", "seq": seq}))),
            Err(e) => out.push_str(&format!(
                "{}\n",
                json!({"status": "error", "seq": seq, "error_code": code::BAD_STATEMENT, "message": e.to_string()})
            )),
        }
    }
    (
        [(header::CONTENT_TYPE, "application/vnd.ksqlapi.delimited.v1")],
        out,
    )
        .into_response()
}

async fn info(State(s): State<RestState>) -> Response {
    axum::Json(json!({
        "KsqlServerInfo": {
            "version": "0.29.0",
            "kafkaClusterId": format!("fleetwatch-{}", s.engine.log().backend_name()),
            "ksqlServiceId": s.engine.config().service_id,
            "serverStatus": "RUNNING",
        }
    }))
    .into_response()
}

async fn healthcheck(State(s): State<RestState>) -> Response {
    let log_ok = true;
    let degraded = s.engine.log().health().status() != "ok";
    let body = json!({
        "isHealthy": log_ok,
        "details": {
            "metastore": {"isHealthy": true},
            "kafka": {"isHealthy": !degraded},
            "commandRunner": {"isHealthy": true},
        },
        "ksqlServiceId": s.engine.config().service_id,
    });
    let status = if log_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn status(State(s): State<RestState>, Path(command): Path<String>) -> Response {
    match lock(&s.statuses).get(&command) {
        Some(v) => axum::Json(v.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"@type": "generic_error", "error_code": code::NOT_FOUND, "message": format!("Command not found: {command}")})),
        )
            .into_response(),
    }
}
