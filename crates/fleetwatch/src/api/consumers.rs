//! REST Proxy v2 consumer instances: each is a member of a consumer group held by the
//! server between requests; idle ones expire after `http.consumer_instance_timeout_ms`.

use super::error::{ApiError, ApiResult};
use super::types::*;
use super::{AppState, Format, from_bytes, parse_body, parse_optional_body, v2_json};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleetwatch_core::{
    GroupConsumer, JoinOptions, OffsetCommit, OffsetSpec, ReadLimits, TopicPartition,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Instance {
    group: String,
    name: String,
    format: Format,
    reset: OffsetSpec,
    auto_commit: bool,
    topics: Vec<String>,
    member: Option<Box<dyn GroupConsumer>>,
    last_used: Instant,
}

type Shared = Arc<tokio::sync::Mutex<Instance>>;

/// The consumer instances of the HTTP API.
#[derive(Default)]
pub struct Instances {
    map: Mutex<HashMap<(String, String), Shared>>,
    seq: AtomicU64,
}

impl Instances {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Shared>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of open instances.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    fn get(&self, group: &str, instance: &str) -> ApiResult<Shared> {
        self.map()
            .get(&(group.to_string(), instance.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::no_instance(group, instance))
    }

    fn remove(&self, group: &str, instance: &str) -> Option<Shared> {
        self.map()
            .remove(&(group.to_string(), instance.to_string()))
    }
}

/// Removes instances idle for longer than the configured timeout, until cancelled.
pub async fn run_expiry(state: Arc<AppState>, cancel: CancellationToken) {
    let timeout = Duration::from_millis(state.http.consumer_instance_timeout_ms);
    let mut tick = tokio::time::interval(
        timeout
            .min(Duration::from_secs(5))
            .max(Duration::from_millis(100)),
    );
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let all: Vec<((String, String), Shared)> = state
            .consumers
            .map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((group, name), inst) in all {
            let Ok(mut guard) = inst.try_lock() else {
                continue;
            };
            if guard.last_used.elapsed() > timeout {
                tracing::info!(group = %group, instance = %name, "consumer instance expired");
                if let Some(m) = guard.member.take() {
                    let _ = m.leave().await;
                }
                drop(guard);
                state.consumers.remove(&group, &name);
            }
        }
    }
    // Leave every group on shutdown so that other members take over at once.
    let all: Vec<Shared> = state.consumers.map().drain().map(|(_, v)| v).collect();
    for inst in all {
        if let Some(m) = inst.lock().await.member.take() {
            let _ = m.leave().await;
        }
    }
}

fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string()
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    fleetwatch_core::validate_group_id(&group)?;
    let req: CreateConsumer = parse_optional_body(body, "create consumer")?;
    let format = match req.format.as_deref().unwrap_or("binary") {
        "binary" => Format::Binary,
        "json" => Format::Json,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                42204,
                format!("format {other:?} is not supported: use \"json\" or \"binary\""),
            ));
        }
    };
    let reset = match req.auto_offset_reset.as_deref().unwrap_or("latest") {
        "earliest" | "smallest" => OffsetSpec::Earliest,
        "latest" | "largest" => OffsetSpec::Latest,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                42204,
                format!("auto.offset.reset {other:?} must be \"earliest\" or \"latest\""),
            ));
        }
    };
    let auto_commit = match req.auto_commit_enable.as_deref().unwrap_or("false") {
        v if v.eq_ignore_ascii_case("true") => true,
        v if v.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                42204,
                format!("auto.commit.enable {other:?} must be \"true\" or \"false\""),
            ));
        }
    };
    let name = req.name.unwrap_or_else(|| {
        format!(
            "rest-consumer-{}",
            state.consumers.seq.fetch_add(1, Ordering::Relaxed)
        )
    });
    let key = (group.clone(), name.clone());
    {
        let mut map = state.consumers.map();
        if map.contains_key(&key) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                40902,
                format!("consumer instance {name:?} already exists in group {group:?}"),
            ));
        }
        map.insert(
            key,
            Arc::new(tokio::sync::Mutex::new(Instance {
                group: group.clone(),
                name: name.clone(),
                format,
                reset,
                auto_commit,
                topics: Vec::new(),
                member: None,
                last_used: Instant::now(),
            })),
        );
    }
    Ok(v2_json(
        StatusCode::OK,
        &CreatedConsumer {
            base_uri: format!(
                "http://{}/consumers/{group}/instances/{name}",
                host(&headers)
            ),
            instance_id: name,
        },
    ))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state
        .consumers
        .remove(&group, &instance)
        .ok_or_else(|| ApiError::no_instance(&group, &instance))?;
    if let Some(m) = inst.lock().await.member.take() {
        m.leave().await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn subscribe(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: Subscription = parse_body(body, "subscription")?;
    if req.topics.is_empty() {
        return Err(ApiError::malformed(
            "subscription: topics must not be empty",
        ));
    }
    let inst = state.consumers.get(&group, &instance)?;
    let mut inst = inst.lock().await;
    inst.last_used = Instant::now();
    if let Some(old) = inst.member.take() {
        old.leave().await?;
    }
    let mut opts = JoinOptions::new(inst.group.clone(), req.topics.clone());
    opts.client_id = inst.name.clone();
    opts.reset = inst.reset;
    opts.session_timeout = Duration::from_millis(state.http.consumer_session_timeout_ms);
    inst.member = Some(state.log.join_group(opts).await?);
    inst.topics = req.topics;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn get_subscription(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    let inst = inst.lock().await;
    Ok(v2_json(
        StatusCode::OK,
        &Subscription {
            topics: inst.topics.clone(),
        },
    ))
}

pub async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    let mut inst = inst.lock().await;
    if let Some(m) = inst.member.take() {
        m.leave().await?;
    }
    inst.topics.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn not_subscribed(group: &str, instance: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        40903,
        format!("consumer instance {instance:?} of group {group:?} is not subscribed to any topic"),
    )
}

pub async fn assignments(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    let mut inst = inst.lock().await;
    inst.last_used = Instant::now();
    let partitions = match inst.member.as_mut() {
        Some(m) => m.assignment().await?.partitions,
        None => Vec::new(),
    };
    Ok(v2_json(
        StatusCode::OK,
        &PartitionsBody {
            partitions: partitions
                .into_iter()
                .map(|tp| TopicPartitionJson {
                    topic: tp.topic,
                    partition: tp.partition,
                })
                .collect(),
        },
    ))
}

#[derive(Deserialize)]
pub struct RecordsQuery {
    timeout: Option<u64>,
    max_bytes: Option<usize>,
}

pub async fn records(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    Query(q): Query<RecordsQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    let mut inst = inst.lock().await;
    inst.last_used = Instant::now();
    let format = inst.format;
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let wants_other = match format {
            Format::Json => accept.contains(CT_BINARY_V2),
            Format::Binary => accept.contains(CT_JSON_V2),
        };
        if wants_other {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                40601,
                format!(
                    "the consumer was created with format {format:?}; ask for {}",
                    format.content_type()
                ),
            ));
        }
    }
    let limits = ReadLimits {
        max_records: 10_000,
        max_bytes: q.max_bytes.unwrap_or(64 * 1024 * 1024).max(1),
        max_wait: Duration::from_millis(q.timeout.unwrap_or(1000).min(60_000)),
    };
    let auto_commit = inst.auto_commit;
    let member = inst
        .member
        .as_mut()
        .ok_or_else(|| not_subscribed(&group, &instance))?;
    let batches = member.poll(limits).await?;
    if auto_commit {
        member.commit_position().await?;
    }
    let mut out = Vec::new();
    for b in batches {
        for r in b.records {
            out.push(ConsumedJson {
                topic: b.topic.clone(),
                key: from_bytes(r.record.key.as_ref(), format),
                value: from_bytes(r.record.value.as_ref(), format),
                partition: r.partition,
                offset: r.offset,
                timestamp: r.record.timestamp,
            });
        }
    }
    let body = serde_json::to_vec(&out)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, e.to_string()))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response())
}

pub async fn commit(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: OffsetsBody = parse_optional_body(body, "commit offsets")?;
    let inst = state.consumers.get(&group, &instance)?;
    let mut inst = inst.lock().await;
    inst.last_used = Instant::now();
    let member = inst
        .member
        .as_mut()
        .ok_or_else(|| not_subscribed(&group, &instance))?;
    if req.offsets.is_empty() {
        member.commit_position().await?;
    } else {
        let offsets: Vec<OffsetCommit> = req
            .offsets
            .iter()
            .map(|o| OffsetCommit {
                partition: TopicPartition::new(&o.topic, o.partition),
                offset: o.offset,
                metadata: Some(o.metadata.clone()).filter(|m| !m.is_empty()),
            })
            .collect();
        if let Some(c) = offsets.iter().find(|c| c.offset < 0) {
            return Err(ApiError::invalid_param(format!(
                "offset {} for {}-{} must not be negative",
                c.offset, c.partition.topic, c.partition.partition
            )));
        }
        member.commit(&offsets).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn committed(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: PartitionsBody = parse_optional_body(body, "committed offsets")?;
    state.consumers.get(&group, &instance)?;
    let all = state.log.committed_offsets(&group).await?;
    let offsets: Vec<TopicPartitionOffset> =
        all.into_iter()
            .filter(|c| {
                req.partitions.is_empty()
                    || req.partitions.iter().any(|p| {
                        p.topic == c.partition.topic && p.partition == c.partition.partition
                    })
            })
            .map(|c| TopicPartitionOffset {
                topic: c.partition.topic,
                partition: c.partition.partition,
                offset: c.offset,
                metadata: c.metadata.unwrap_or_default(),
            })
            .collect();
    Ok(v2_json(StatusCode::OK, &OffsetsBody { offsets }))
}

/// `POST …/positions`: the next fetch reads each partition from the given offset.
pub async fn seek(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: OffsetsBody = parse_body(body, "seek")?;
    let targets: Vec<(TopicPartition, Position)> = req
        .offsets
        .into_iter()
        .map(|o| {
            (
                TopicPartition::new(o.topic, o.partition),
                Position::At(o.offset),
            )
        })
        .collect();
    seek_all(&state, &group, &instance, targets).await
}

/// `POST …/positions/beginning`.
pub async fn seek_beginning(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    seek_to(&state, &group, &instance, body, OffsetSpec::Earliest).await
}

/// `POST …/positions/end`.
pub async fn seek_end(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    seek_to(&state, &group, &instance, body, OffsetSpec::Latest).await
}

async fn seek_to(
    state: &AppState,
    group: &str,
    instance: &str,
    body: Result<Bytes, BytesRejection>,
    spec: OffsetSpec,
) -> ApiResult<Response> {
    let req: PartitionsBody = parse_body(body, "seek")?;
    let targets = req
        .partitions
        .into_iter()
        .map(|p| {
            (
                TopicPartition::new(p.topic, p.partition),
                Position::Spec(spec),
            )
        })
        .collect();
    seek_all(state, group, instance, targets).await
}

enum Position {
    At(i64),
    Spec(OffsetSpec),
}

async fn seek_all(
    state: &AppState,
    group: &str,
    instance: &str,
    targets: Vec<(TopicPartition, Position)>,
) -> ApiResult<Response> {
    if targets.is_empty() {
        return Err(ApiError::malformed("no partitions given"));
    }
    let inst = state.consumers.get(group, instance)?;
    let mut inst = inst.lock().await;
    inst.last_used = Instant::now();
    let member = inst
        .member
        .as_mut()
        .ok_or_else(|| not_subscribed(group, instance))?;
    for (tp, pos) in targets {
        let offset = match pos {
            Position::At(o) if o < 0 => {
                return Err(ApiError::invalid_param(format!(
                    "offset {o} for {}-{} must not be negative",
                    tp.topic, tp.partition
                )));
            }
            Position::At(o) => o,
            Position::Spec(spec) => state.log.offset_for(&tp.topic, tp.partition, spec).await?,
        };
        member
            .seek(&tp, offset)
            .await
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, 40903, e.to_string()))?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
