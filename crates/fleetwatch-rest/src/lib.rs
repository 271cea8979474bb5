//! # fleetwatch-rest — the Confluent REST Proxy–compatible HTTP API
//!
//! Owns the API on `http.listen`: REST Proxy v2 produce (JSON-embedded and binary records)
//! and consumer instances (members of consumer groups held between requests), v3-style topic
//! and consumer-group admin, its request/response types ([`types`]), its error codes and the
//! one error → HTTP mapping ([`error`]), and its config ([`RestConfig`]).
//!
//! It stands on the `fleetwatch_core::Log` trait only, and routes produce requests through
//! `fleetwatch_core::produce` like every other producer; it must not know which backend is
//! below, nor how it is served: the app gives [`router`] the common HTTP layers of
//! `fleetwatch-server` and serves it. Internal topics are refused to clients here (delete,
//! produce, config changes, creation), as core decides which are internal.

mod config;
mod consumers;
pub mod error;
mod produce;
pub mod types;

pub use config::RestConfig;
pub use produce::parse_produce_body;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use error::{ApiError, ApiResult, Code};
use fleetwatch_core::partitioner::Partitioner;
use fleetwatch_core::{Log, LogError, OffsetSpec, TopicConfig, check_client_write};
use fleetwatch_metrics::{IntGauge, Metrics, MetricsResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use types::*;

/// The cluster id reported by the v3 endpoints.
pub const CLUSTER_ID: &str = "fleetwatch";

/// This API's metrics (the log's own are counted by whoever wraps the `Log`).
#[derive(Clone)]
pub struct RestMetrics {
    /// Consumer instances open.
    pub consumer_instances: IntGauge,
}

impl RestMetrics {
    /// Registers them.
    pub fn new(metrics: &Metrics) -> MetricsResult<Self> {
        Ok(RestMetrics {
            consumer_instances: metrics.gauge1(
                "fleetwatch_consumer_instances",
                "Consumer instances open in the REST Proxy API.",
            )?,
        })
    }
}

/// Shared state of the API.
pub struct AppState {
    /// The log.
    pub log: Arc<dyn Log>,
    /// `[http]` settings.
    pub config: RestConfig,
    /// Round-robin for unkeyed records.
    pub partitioner: Partitioner,
    /// Consumer instances.
    consumers: consumers::Instances,
    metrics: RestMetrics,
}

impl AppState {
    /// State over `log`.
    pub fn new(log: Arc<dyn Log>, config: RestConfig, metrics: RestMetrics) -> Arc<Self> {
        Arc::new(AppState {
            log,
            config,
            partitioner: Partitioner::new(),
            consumers: consumers::Instances::default(),
            metrics,
        })
    }

    /// Number of open consumer instances.
    pub fn consumer_instances(&self) -> usize {
        self.consumers.len()
    }
}

pub use consumers::run_expiry;

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
pub(crate) fn v2_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, CT_V2)], bytes).into_response(),
        Err(e) => ApiError::new(Code::Storage, format!("encoding response: {e}")).into_response(),
    }
}

/// Parses a JSON body, naming where it is wrong.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> ApiResult<T> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                Code::TooLarge,
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
pub(crate) fn parse_optional_body<T: serde::de::DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
) -> ApiResult<T> {
    match &body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(T::default()),
        _ => parse_body(body, what),
    }
}

pub(crate) fn content_format(headers: &HeaderMap) -> ApiResult<Format> {
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

/// A stored key or value as a consumer of `format` sees it: the JSON text exactly as it was
/// produced (big integers, key order and duplicate keys intact), base64 for binary, and a
/// JSON string for stored bytes that are not JSON.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Embedded<'a> {
    Raw(&'a serde_json::value::RawValue),
    Text(String),
}

pub(crate) fn embedded(b: Option<&Bytes>, format: Format) -> Option<Embedded<'_>> {
    let b = b?;
    Some(match format {
        Format::Binary => Embedded::Text(B64.encode(b)),
        Format::Json => match serde_json::from_slice::<&serde_json::value::RawValue>(b) {
            Ok(raw) => Embedded::Raw(raw),
            // Bytes that are not JSON are shown as a string rather than dropped.
            Err(_) => Embedded::Text(String::from_utf8_lossy(b).into_owned()),
        },
    })
}

async fn post_topic(
    State(state): State<Arc<AppState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    produce::produce(&state, &topic, None, &headers, body).await
}

async fn post_partition(
    State(state): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, i32)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    produce::produce(&state, &topic, Some(partition), &headers, body).await
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
        is_internal: fleetwatch_core::is_internal_topic(&d.name),
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
            Code::ClusterNotFound,
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
            Err(e) if e.code() == Code::TopicNotFound => {}
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
    check_client_write(&req.topic_name, "creation")?;
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
    check_client_write(&topic, "delete")?;
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
            Code::GroupNotFound,
            format!("consumer group {group:?} not found"),
        ));
    }
    Ok(v2_json(StatusCode::OK, &group_data(&state, &group).await?))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        Code::NoEndpoint,
        format!("no such endpoint: {}", uri.path()),
    )
}

/// The router of the API (without the common layers: the server adds them).
pub fn router(state: Arc<AppState>) -> Router {
    let c = "/consumers/{group}/instances/{instance}";
    Router::new()
        .route("/", get(|| async { axum::Json(serde_json::json!({})) }))
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
        .with_state(state)
}
