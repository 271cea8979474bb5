//! REST Proxy v2 consumer instances: each is a member of a consumer group held by the
//! server between requests; idle ones expire after `http.consumer_instance_timeout_ms`.

use super::error::{ApiError, ApiResult};
use super::types::*;
use super::{AppState, Format, embedded, parse_body, parse_optional_body, v2_json};
use crate::error::Code;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleetwatch_core::{
    GroupConsumer, JoinOptions, LogError, OffsetCommit, OffsetSpec, ReadLimits, TopicPartition,
    Watermarks,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One consumer instance. Its settings are fixed at creation; what changes is split so that
/// nothing waits behind a long fetch: the subscription and last use are behind a plain mutex
/// (held for microseconds), the group member behind an async one that a fetch holds only in
/// short slices, yielding as soon as another request wants it ([`Instance::want`]), and a
/// delete cancels a running fetch at once.
struct Instance {
    group: String,
    name: String,
    format: Format,
    reset: OffsetSpec,
    auto_commit: bool,
    meta: Mutex<Meta>,
    member: tokio::sync::Mutex<Option<Box<dyn GroupConsumer>>>,
    /// Requests waiting for the member; a fetch in progress yields to them.
    waiting: AtomicUsize,
    /// Fired when the instance is deleted or expires.
    closing: CancellationToken,
}

struct Meta {
    topics: Vec<String>,
    last_used: Instant,
}

/// A fetch waits for data in slices of at most this long, so that a commit, seek or
/// subscription change waits at most this long behind it.
const FETCH_SLICE: Duration = Duration::from_millis(100);

impl Instance {
    fn meta(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts as activity for expiry.
    fn touch(&self) {
        self.meta().last_used = Instant::now();
    }

    /// The member, for a request other than a fetch: a fetch in progress yields to it.
    /// (Activity was counted when the instance was looked up.)
    async fn want(&self) -> tokio::sync::MutexGuard<'_, Option<Box<dyn GroupConsumer>>> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = self.member.lock().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        guard
    }
}

type Shared = Arc<Instance>;

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
        let inst = self
            .map()
            .get(&(group.to_string(), instance.to_string()))
            .cloned()
            .ok_or_else(|| ApiError::no_instance(group, instance))?;
        inst.touch();
        Ok(inst)
    }

    fn remove(&self, group: &str, instance: &str) -> Option<Shared> {
        let inst = self
            .map()
            .remove(&(group.to_string(), instance.to_string()));
        if let Some(i) = &inst {
            i.closing.cancel();
        }
        inst
    }
}

async fn leave(inst: &Instance) -> Result<(), fleetwatch_core::LogError> {
    let member = inst.want().await.take();
    match member {
        Some(m) => m.leave().await,
        None => Ok(()),
    }
}

/// Removes instances idle for longer than the configured timeout, until cancelled; then
/// leaves every group so that other members take over at once.
pub async fn run_expiry(
    state: Arc<AppState>,
    cancel: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let timeout = Duration::from_millis(state.config.consumer_instance_timeout_ms);
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
        state
            .metrics
            .consumer_instances
            .set(state.consumers.len() as i64);
        let idle: Vec<(String, String)> = state
            .consumers
            .map()
            .iter()
            .filter(|(_, v)| v.meta().last_used.elapsed() > timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for (group, name) in idle {
            if let Some(inst) = state.consumers.remove(&group, &name) {
                tracing::info!(group = %group, instance = %name, "consumer instance expired");
                if let Err(e) = leave(&inst).await {
                    tracing::warn!(group = %group, instance = %name, error = %e, "leaving the group");
                }
            }
        }
    }
    let all: Vec<Shared> = state.consumers.map().drain().map(|(_, v)| v).collect();
    for inst in all {
        inst.closing.cancel();
        let _ = leave(&inst).await;
    }
    state.metrics.consumer_instances.set(0);
    Ok(())
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
                Code::InvalidConsumerConfig,
                format!("format {other:?} is not supported: use \"json\" or \"binary\""),
            ));
        }
    };
    let reset = match req.auto_offset_reset.as_deref().unwrap_or("latest") {
        "earliest" | "smallest" => OffsetSpec::Earliest,
        "latest" | "largest" => OffsetSpec::Latest,
        other => {
            return Err(ApiError::new(
                Code::InvalidConsumerConfig,
                format!("auto.offset.reset {other:?} must be \"earliest\" or \"latest\""),
            ));
        }
    };
    let auto_commit = match req.auto_commit_enable.as_deref().unwrap_or("false") {
        v if v.eq_ignore_ascii_case("true") => true,
        v if v.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(ApiError::new(
                Code::InvalidConsumerConfig,
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
                Code::InstanceExists,
                format!("consumer instance {name:?} already exists in group {group:?}"),
            ));
        }
        map.insert(
            key,
            Arc::new(Instance {
                group: group.clone(),
                name: name.clone(),
                format,
                reset,
                auto_commit,
                meta: Mutex::new(Meta {
                    topics: Vec::new(),
                    last_used: Instant::now(),
                }),
                member: tokio::sync::Mutex::new(None),
                waiting: AtomicUsize::new(0),
                closing: CancellationToken::new(),
            }),
        );
        state.metrics.consumer_instances.set(map.len() as i64);
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
    state
        .metrics
        .consumer_instances
        .set(state.consumers.len() as i64);
    leave(&inst).await?;
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
    let mut member = inst.want().await;
    if let Some(old) = member.take() {
        old.leave().await?;
    }
    let mut opts = JoinOptions::new(inst.group.clone(), req.topics.clone());
    opts.client_id = inst.name.clone();
    opts.reset = inst.reset;
    opts.session_timeout = Duration::from_millis(state.config.consumer_session_timeout_ms);
    *member = Some(state.log.join_group(opts).await?);
    inst.meta().topics = req.topics;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn get_subscription(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    let topics = inst.meta().topics.clone();
    Ok(v2_json(StatusCode::OK, &Subscription { topics }))
}

pub async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    leave(&inst).await?;
    inst.meta().topics.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn not_subscribed(group: &str, instance: &str) -> ApiError {
    ApiError::new(
        Code::NotSubscribed,
        format!("consumer instance {instance:?} of group {group:?} is not subscribed to any topic"),
    )
}

pub async fn assignments(
    State(state): State<Arc<AppState>>,
    Path((group, instance)): Path<(String, String)>,
) -> ApiResult<Response> {
    let inst = state.consumers.get(&group, &instance)?;
    let mut member = inst.want().await;
    let partitions = match member.as_mut() {
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

/// One record of a fetch answer, serialised straight from the stored bytes.
#[derive(serde::Serialize)]
struct ConsumedOut<'a> {
    topic: &'a str,
    key: Option<super::Embedded<'a>>,
    value: Option<super::Embedded<'a>>,
    partition: i32,
    offset: i64,
    timestamp: i64,
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
    let format = inst.format;
    if let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        let wants_other = match format {
            Format::Json => accept.contains(CT_BINARY_V2),
            Format::Binary => accept.contains(CT_JSON_V2),
        };
        if wants_other {
            return Err(ApiError::new(
                Code::NotAcceptable,
                format!(
                    "the consumer was created with format {format:?}; ask for {}",
                    format.content_type()
                ),
            ));
        }
    }
    let asked = q.timeout.unwrap_or(1000);
    let wait = Duration::from_millis(asked.min(state.config.consumer_request_timeout_ms));
    let max_bytes = q.max_bytes.unwrap_or(64 * 1024 * 1024).max(1);
    let deadline = tokio::time::Instant::now() + wait;
    let mut member = inst.member.lock().await;
    let batches = loop {
        let m = member
            .as_mut()
            .ok_or_else(|| not_subscribed(&group, &instance))?;
        let now = tokio::time::Instant::now();
        let slice = deadline.saturating_duration_since(now).min(FETCH_SLICE);
        let limits = ReadLimits {
            max_records: 10_000,
            max_bytes,
            max_wait: slice,
        };
        let batches = tokio::select! {
            polled = m.poll(limits) => polled?,
            _ = inst.closing.cancelled() => return Err(ApiError::no_instance(&group, &instance)),
        };
        if !batches.is_empty()
            || tokio::time::Instant::now() >= deadline
            || inst.waiting.load(Ordering::SeqCst) > 0
        {
            break batches;
        }
    };
    if inst.auto_commit
        && let Some(m) = member.as_mut()
    {
        m.commit_position().await?;
    }
    drop(member);
    inst.touch();
    let mut out = Vec::new();
    for b in &batches {
        for r in &b.records {
            out.push(ConsumedOut {
                topic: &b.topic,
                key: embedded(r.record.key.as_ref(), format),
                value: embedded(r.record.value.as_ref(), format),
                partition: r.partition,
                offset: r.offset,
                timestamp: r.record.timestamp,
            });
        }
    }
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::new(Code::Storage, e.to_string()))?;
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
    let mut guard = inst.want().await;
    let member = guard
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
    let mut guard = inst.want().await;
    let member = guard
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
            Position::At(o) => {
                let owned = member.assignment().await?.partitions;
                if !owned.contains(&tp) {
                    return Err(ApiError::new(
                        Code::NotSubscribed,
                        format!(
                            "{}-{} is not assigned to consumer instance {instance:?} of group {group:?}",
                            tp.topic, tp.partition
                        ),
                    ));
                }
                // A position outside the partition is refused (41601), not silently moved.
                let log_start = state
                    .log
                    .offset_for(&tp.topic, tp.partition, OffsetSpec::Earliest)
                    .await?;
                let high = state
                    .log
                    .offset_for(&tp.topic, tp.partition, OffsetSpec::Latest)
                    .await?;
                let w = Watermarks { log_start, high };
                if !w.contains(o) {
                    return Err(LogError::OffsetOutOfRange {
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        offset: o,
                        log_start,
                        high_watermark: high,
                    }
                    .into());
                }
                o
            }
            Position::Spec(spec) => state.log.offset_for(&tp.topic, tp.partition, spec).await?,
        };
        member
            .seek(&tp, offset)
            .await
            .map_err(|e| ApiError::new(Code::NotSubscribed, e.to_string()))?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
