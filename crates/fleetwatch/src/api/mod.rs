//! The HTTP API on `http.listen`: Confluent REST Proxy v2 produce and consumer endpoints,
//! v3-style topic and consumer-group admin, `/health` and `/metrics`.

mod consumers;
pub mod error;
pub mod types;

use crate::config::HttpConfig;
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use error::{ApiError, ApiResult};
use fleetwatch_core::partitioner::Partitioner;
use fleetwatch_core::{
    Header, INTERNAL_OFFSETS_TOPIC, Log, LogError, OffsetSpec, Record, TopicConfig, now_ms,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use types::*;

/// The cluster id reported by the v3 endpoints.
pub const CLUSTER_ID: &str = "fleetwatch";

/// Shared state of the HTTP API.
pub struct AppState {
    /// The log (metered).
    pub log: Arc<dyn Log>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// `[http]` settings.
    pub http: HttpConfig,
    /// Round-robin for unkeyed records.
    pub partitioner: Partitioner,
    /// Consumer instances.
    pub consumers: consumers::Instances,
    /// What recovery cut at start, for `/health`.
    pub recovery_cuts: Vec<String>,
}

impl AppState {
    /// State over `log`.
    pub fn new(
        log: Arc<dyn Log>,
        metrics: Arc<Metrics>,
        http: HttpConfig,
        recovery_cuts: Vec<String>,
    ) -> Arc<Self> {
        Arc::new(AppState {
            log,
            metrics,
            http,
            partitioner: Partitioner::new(),
            consumers: consumers::Instances::default(),
            recovery_cuts,
        })
    }
}

/// Key/value encoding of REST Proxy v2 records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Embedded JSON: keys and values are JSON documents.
    Json,
    /// Base64 strings of raw bytes.
    Binary,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Json => CT_JSON_V2,
            Format::Binary => CT_BINARY_V2,
        }
    }
}

/// A JSON response with REST Proxy's content type.
fn v2_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, CT_V2)], bytes).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            format!("encoding response: {e}"),
        )
        .into_response(),
    }
}

/// Parses a JSON body, naming where it is wrong.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> ApiResult<T> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                41301,
                format!("{what}: request body is larger than http.max_request_bytes"),
            )
        } else {
            ApiError::malformed(format!("{what}: {e}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("{what}: invalid JSON body: {e}")))
}

/// Like [`parse_body`], but an empty body is the default value.
fn parse_optional_body<T: serde::de::DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> ApiResult<T> {
    match &body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
        _ => parse_body(body, what),
    }
}

fn content_format(headers: &HeaderMap) -> ApiResult<Format> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        CT_JSON_V2 | "application/json" | "application/vnd.kafka.v2+json" => Ok(Format::Json),
        CT_BINARY_V2 => Ok(Format::Binary),
        other if other.starts_with("application/vnd.kafka.") => {
            Err(ApiError::unsupported_media(format!(
                "embedded format of {other:?} is not supported: use {CT_JSON_V2} or {CT_BINARY_V2}"
            )))
        }
        other => Err(ApiError::unsupported_media(format!(
            "content type {other:?} is not supported: use {CT_JSON_V2} or {CT_BINARY_V2}"
        ))),
    }
}

/// Encodes a key or value of a produce request as bytes.
fn to_bytes(v: Option<serde_json::Value>, format: Format, at: &str) -> ApiResult<Option<Bytes>> {
    match (v, format) {
        (None | Some(serde_json::Value::Null), _) => Ok(None),
        (Some(v), Format::Json) => serde_json::to_vec(&v)
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| ApiError::conversion(format!("{at}: {e}"))),
        (Some(serde_json::Value::String(s)), Format::Binary) => B64
            .decode(s.as_bytes())
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| ApiError::conversion(format!("{at} is not valid base64: {e}"))),
        (Some(other), Format::Binary) => Err(ApiError::conversion(format!(
            "{at} must be a base64 string in binary format, not {other}"
        ))),
    }
}

/// Decodes stored bytes for a consumer in `format`.
pub(crate) fn from_bytes(b: Option<&Bytes>, format: Format) -> Option<serde_json::Value> {
    let b = b?;
    Some(match format {
        Format::Binary => serde_json::Value::String(B64.encode(b)),
        Format::Json => serde_json::from_slice(b).unwrap_or_else(|_| {
            // Bytes that are not JSON are shown as a string rather than dropped.
            serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
        }),
    })
}

async fn partition_count(state: &AppState, topic: &str) -> ApiResult<i32> {
    match state.log.partition_count(topic).await {
        Err(LogError::UnknownTopic(_)) if state.http.auto_create_partitions > 0 => {
            state
                .log
                .ensure_topic(
                    topic,
                    TopicConfig::with_partitions(state.http.auto_create_partitions),
                )
                .await?;
            Ok(state.log.partition_count(topic).await?)
        }
        other => Ok(other?),
    }
}

async fn produce(
    state: &AppState,
    topic: &str,
    fixed_partition: Option<i32>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let format = content_format(headers)?;
    let req: ProduceRequest = parse_body(body, &format!("produce to {topic}"))?;
    if req.records.is_empty() {
        return Err(ApiError::malformed(
            "records: at least one record is required",
        ));
    }
    let n = partition_count(state, topic).await?;
    let now = now_ms();
    let mut groups: BTreeMap<i32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
    for (i, r) in req.records.into_iter().enumerate() {
        let key = to_bytes(r.key, format, &format!("records[{i}].key"))?;
        let value = to_bytes(r.value, format, &format!("records[{i}].value"))?;
        let mut rec_headers = Vec::with_capacity(r.headers.len());
        for (j, h) in r.headers.into_iter().enumerate() {
            let value = match h.value {
                None => None,
                Some(s) => Some(Bytes::from(B64.decode(s.as_bytes()).map_err(|e| {
                    ApiError::conversion(format!(
                        "records[{i}].headers[{j}].value is not valid base64: {e}"
                    ))
                })?)),
            };
            rec_headers.push(Header { key: h.name, value });
        }
        let partition = match fixed_partition.or(r.partition) {
            Some(p) if (0..n).contains(&p) => p,
            Some(p) => {
                return Err(LogError::UnknownPartition {
                    topic: topic.to_string(),
                    partition: p,
                    partitions: n,
                }
                .into());
            }
            None => state.partitioner.partition(key.as_deref(), n),
        };
        let record = Record {
            key,
            value,
            headers: rec_headers,
            timestamp: r.timestamp.unwrap_or(now),
            timestamp_type: fleetwatch_core::TimestampType::CreateTime,
        };
        let g = groups.entry(partition).or_default();
        g.0.push(i);
        g.1.push(record);
    }
    let total: usize = groups.values().map(|g| g.0.len()).sum();
    let results = futures::future::join_all(groups.into_iter().map(|(p, (idx, recs))| {
        let log = state.log.clone();
        async move { (p, idx, log.append(topic, p, &recs).await) }
    }))
    .await;
    let mut offsets: Vec<Option<ProduceOffset>> = vec![None; total];
    let mut first_error: Option<LogError> = None;
    let mut any_ok = false;
    for (p, idx, result) in results {
        match result {
            Ok(ack) => {
                any_ok = true;
                for (i, o) in idx.into_iter().zip(ack.offsets) {
                    offsets[i] = Some(ProduceOffset {
                        partition: p,
                        offset: o,
                        error_code: None,
                        error: None,
                    });
                }
            }
            Err(e) => {
                let (_, code) = error::status_and_code(&e);
                for i in idx {
                    offsets[i] = Some(ProduceOffset {
                        partition: p,
                        offset: -1,
                        error_code: Some(code),
                        error: Some(e.to_string()),
                    });
                }
                first_error.get_or_insert(e);
            }
        }
    }
    if let (false, Some(e)) = (any_ok, first_error) {
        return Err(e.into());
    }
    Ok(v2_json(
        StatusCode::OK,
        &ProduceResponse {
            key_schema_id: None,
            value_schema_id: None,
            offsets: offsets.into_iter().flatten().collect(),
        },
    ))
}

async fn post_topic(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    produce(&state, &topic, None, &headers, body).await
}

async fn post_partition(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, i32)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    produce(&state, &topic, Some(partition), &headers, body).await
}

async fn list_topics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let topics = state.log.list_topics().await?;
    Ok(v2_json(StatusCode::OK, &topics))
}

async fn topic_data(state: &AppState, topic: &str) -> ApiResult<TopicData> {
    let d = state.log.describe_topic(topic).await?;
    Ok(TopicData {
        kind: "KafkaTopic".into(),
        cluster_id: CLUSTER_ID.into(),
        topic_name: d.name.clone(),
        partitions_count: d.partitions.len() as i32,
        is_internal: d.name.starts_with('_'),
        configs: d
            .config
            .to_properties()
            .into_iter()
            .map(|(name, value)| ConfigEntry { name, value })
            .collect(),
        partitions: d
            .partitions
            .iter()
            .map(|p| PartitionData {
                partition_id: p.partition,
                beginning_offset: p.log_start_offset,
                end_offset: p.high_watermark,
            })
            .collect(),
    })
}

async fn get_topic(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
) -> ApiResult<Response> {
    let d = topic_data(&state, &topic).await?;
    // REST Proxy v2 shape: name, configs as a map, partitions.
    let configs: BTreeMap<String, String> =
        d.configs.into_iter().map(|c| (c.name, c.value)).collect();
    let partitions: Vec<serde_json::Value> = d
        .partitions
        .iter()
        .map(|p| serde_json::json!({"partition": p.partition_id, "leader": 0, "replicas": [{"broker": 0, "leader": true, "in_sync": true}]}))
        .collect();
    Ok(v2_json(
        StatusCode::OK,
        &serde_json::json!({"name": d.topic_name, "configs": configs, "partitions": partitions}),
    ))
}

async fn get_partitions(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
) -> ApiResult<Response> {
    let n = state.log.partition_count(&topic).await?;
    let parts: Vec<serde_json::Value> = (0..n)
        .map(|p| serde_json::json!({"partition": p, "leader": 0, "replicas": [{"broker": 0, "leader": true, "in_sync": true}]}))
        .collect();
    Ok(v2_json(StatusCode::OK, &parts))
}

async fn check_partition(state: &AppState, topic: &str, partition: i32) -> ApiResult<()> {
    let n = state.log.partition_count(topic).await?;
    if !(0..n).contains(&partition) {
        return Err(LogError::UnknownPartition {
            topic: topic.to_string(),
            partition,
            partitions: n,
        }
        .into());
    }
    Ok(())
}

async fn get_partition(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, i32)>,
) -> ApiResult<Response> {
    check_partition(&state, &topic, partition).await?;
    Ok(v2_json(
        StatusCode::OK,
        &serde_json::json!({"partition": partition, "leader": 0, "replicas": [{"broker": 0, "leader": true, "in_sync": true}]}),
    ))
}

async fn get_partition_offsets(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, i32)>,
) -> ApiResult<Response> {
    check_partition(&state, &topic, partition).await?;
    let beginning_offset = state
        .log
        .offset_for(&topic, partition, OffsetSpec::Earliest)
        .await?;
    let end_offset = state
        .log
        .offset_for(&topic, partition, OffsetSpec::Latest)
        .await?;
    Ok(v2_json(
        StatusCode::OK,
        &PartitionOffsets {
            beginning_offset,
            end_offset,
        },
    ))
}

fn check_cluster(cluster: &str) -> ApiResult<()> {
    if cluster != CLUSTER_ID {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            40404,
            format!("cluster {cluster:?} not found (this one is {CLUSTER_ID:?})"),
        ));
    }
    Ok(())
}

async fn v3_clusters() -> Response {
    v2_json(
        StatusCode::OK,
        &ListOf {
            kind: "KafkaClusterList".into(),
            data: vec![serde_json::json!({"kind": "KafkaCluster", "cluster_id": CLUSTER_ID})],
        },
    )
}

async fn v3_list_topics(
    State(state): State<Arc<AppState>>,
    Path(cluster): Path<String>,
) -> ApiResult<Response> {
    check_cluster(&cluster)?;
    let mut data = Vec::new();
    for t in state.log.list_topics().await? {
        match topic_data(&state, &t).await {
            Ok(d) => data.push(d),
            // deleted meanwhile
            Err(e) if e.code() == 40401 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(v2_json(
        StatusCode::OK,
        &ListOf {
            kind: "KafkaTopicList".into(),
            data,
        },
    ))
}

async fn v3_create_topic(
    State(state): State<Arc<AppState>>,
    Path(cluster): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    check_cluster(&cluster)?;
    let req: CreateTopic = parse_body(body, "create topic")?;
    let mut config = TopicConfig::with_partitions(req.partitions_count.unwrap_or(1));
    for c in &req.configs {
        config.apply_property(&c.name, &c.value)?;
    }
    config.validate()?;
    state.log.create_topic(&req.topic_name, config).await?;
    let d = topic_data(&state, &req.topic_name).await?;
    Ok(v2_json(StatusCode::CREATED, &d))
}

async fn v3_get_topic(
    State(state): State<Arc<AppState>>,
    Path((cluster, topic)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_cluster(&cluster)?;
    Ok(v2_json(StatusCode::OK, &topic_data(&state, &topic).await?))
}

async fn v3_delete_topic(
    State(state): State<Arc<AppState>>,
    Path((cluster, topic)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_cluster(&cluster)?;
    if topic == INTERNAL_OFFSETS_TOPIC {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!("{topic} is internal and cannot be deleted"),
        ));
    }
    state.log.delete_topic(&topic).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn group_data(state: &AppState, group: &str) -> ApiResult<GroupData> {
    let d = state.log.describe_group(group).await?;
    Ok(GroupData {
        consumer_group_id: d.group,
        generation: d.generation,
        consumers: d
            .members
            .into_iter()
            .map(|m| GroupMember {
                consumer_id: m.member_id,
                client_id: m.client_id,
                assignments: m
                    .assignment
                    .into_iter()
                    .map(|tp| TopicPartitionJson {
                        topic: tp.topic,
                        partition: tp.partition,
                    })
                    .collect(),
            })
            .collect(),
        lags: d
            .offsets
            .into_iter()
            .map(|o| GroupLag {
                lag: o.lag(),
                topic_name: o.partition.topic,
                partition_id: o.partition.partition,
                current_offset: o.committed,
                log_end_offset: o.high_watermark,
            })
            .collect(),
    })
}

async fn v3_list_groups(
    State(state): State<Arc<AppState>>,
    Path(cluster): Path<String>,
) -> ApiResult<Response> {
    check_cluster(&cluster)?;
    let mut data = Vec::new();
    for g in state.log.list_groups().await? {
        data.push(group_data(&state, &g).await?);
    }
    Ok(v2_json(
        StatusCode::OK,
        &ListOf {
            kind: "KafkaConsumerGroupList".into(),
            data,
        },
    ))
}

async fn v3_get_group(
    State(state): State<Arc<AppState>>,
    Path((cluster, group)): Path<(String, String)>,
) -> ApiResult<Response> {
    check_cluster(&cluster)?;
    let known = state.log.list_groups().await?;
    if !known.contains(&group) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            40405,
            format!("consumer group {group:?} not found"),
        ));
    }
    Ok(v2_json(StatusCode::OK, &group_data(&state, &group).await?))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let ok = state.log.list_topics().await.is_ok();
    let body = Health {
        status: if ok { "ok" } else { "unavailable" }.into(),
        backend: state.log.backend_name().into(),
        recovery_cuts: state.recovery_cuts.clone(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.refresh_lag(&*state.log).await;
    state
        .metrics
        .consumer_instances
        .set(state.consumers.len() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        40400,
        format!("no such endpoint: {}", uri.path()),
    )
}

async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    state
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// The router of the HTTP API.
pub fn router(state: Arc<AppState>) -> Router {
    let c = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/", get(|| async { axum::Json(serde_json::json!({})) }))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/topics", get(list_topics))
        .route("/topics/{topic}", get(get_topic).post(post_topic))
        .route("/topics/{topic}/partitions", get(get_partitions))
        .route(
            "/topics/{topic}/partitions/{partition}",
            get(get_partition).post(post_partition),
        )
        .route(
            "/topics/{topic}/partitions/{partition}/offsets",
            get(get_partition_offsets),
        )
        .route("/consumers/{group}", axum::routing::post(consumers::create))
        .route(c, axum::routing::delete(consumers::delete))
        .route(
            &format!("{c}/subscription"),
            get(consumers::get_subscription)
                .post(consumers::subscribe)
                .delete(consumers::unsubscribe),
        )
        .route(&format!("{c}/assignments"), get(consumers::assignments))
        .route(&format!("{c}/records"), get(consumers::records))
        .route(
            &format!("{c}/positions"),
            axum::routing::post(consumers::seek),
        )
        .route(
            &format!("{c}/positions/beginning"),
            axum::routing::post(consumers::seek_beginning),
        )
        .route(
            &format!("{c}/positions/end"),
            axum::routing::post(consumers::seek_end),
        )
        .route(
            &format!("{c}/offsets"),
            get(consumers::committed).post(consumers::commit),
        )
        .route("/v3/clusters", get(v3_clusters))
        .route(
            "/v3/clusters/{cluster}/topics",
            get(v3_list_topics).post(v3_create_topic),
        )
        .route(
            "/v3/clusters/{cluster}/topics/{topic}",
            get(v3_get_topic).delete(v3_delete_topic),
        )
        .route(
            "/v3/clusters/{cluster}/consumer-groups",
            get(v3_list_groups),
        )
        .route(
            "/v3/clusters/{cluster}/consumer-groups/{group}",
            get(v3_get_group),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(state.http.max_request_bytes))
        .with_state(state)
}

pub(crate) use consumers::run_expiry;
