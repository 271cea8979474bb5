//! [`KafkaLog`]: the clients it holds and the helpers its three trait impls share.

use crate::config::KafkaConfig;
use crate::data::SharedReader;
use crate::error::{Op, classify};
use crate::groups::OffsetsClient;
use crate::lru::Lru;
use fleetwatch_core::{LogError, LogResult};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub(crate) struct Inner {
    pub(crate) config: KafkaConfig,
    pub(crate) producer: FutureProducer,
    pub(crate) admin: AdminClient<DefaultClientContext>,
    /// Metadata, watermarks, lookups by time and group lists.
    pub(crate) meta: Arc<BaseConsumer>,
    /// One reader per recently read partition, at most `max_cached_readers`.
    pub(crate) readers: Mutex<Lru<(String, i32), SharedReader>>,
    /// One committed-offsets client per recently asked group, at most `max_offset_clients`.
    pub(crate) offsets_clients: Mutex<Lru<String, OffsetsClient>>,
    pub(crate) partitions: Mutex<HashMap<String, i32>>,
    pub(crate) member_seq: AtomicU64,
}

/// The Kafka backend. Cheap to clone.
///
/// Clients (each a librdkafka instance with its own threads: about 2 + one per broker):
/// one producer, one admin client, one metadata client, up to `max_cached_readers` readers
/// and up to `max_offset_clients` committed-offsets clients, created on first use, plus one
/// consumer per joined group member.
#[derive(Clone)]
pub struct KafkaLog {
    pub(crate) inner: Arc<Inner>,
}

impl KafkaLog {
    /// Validates `config` and creates the clients (the cluster is contacted on first use).
    pub fn new(config: KafkaConfig) -> LogResult<Self> {
        config.validate()?;
        let producer: FutureProducer = config
            .producer_config()
            .create()
            .map_err(|e| classify(&e, &Op::new("creating the producer")))?;
        let admin: AdminClient<DefaultClientContext> = config
            .client_config()
            .create()
            .map_err(|e| classify(&e, &Op::new("creating the admin client")))?;
        let meta: BaseConsumer = config
            .metadata_config()
            .create()
            .map_err(|e| classify(&e, &Op::new("creating the metadata client")))?;
        Ok(KafkaLog {
            inner: Arc::new(Inner {
                readers: Mutex::new(Lru::new(config.max_cached_readers)),
                offsets_clients: Mutex::new(Lru::new(config.max_offset_clients)),
                config,
                producer,
                admin,
                meta: Arc::new(meta),
                partitions: Mutex::new(HashMap::new()),
                member_seq: AtomicU64::new(0),
            }),
        })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.config.timeout()
    }
}

/// A mutex guard, also after a panic elsewhere (the guarded maps stay consistent: every
/// update is a single insert or remove).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs librdkafka's blocking calls off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> LogResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        if e.is_cancelled() {
            LogError::Closed
        } else {
            LogError::Internal(format!("a blocking Kafka call panicked: {e}"))
        }
    })
}

/// Drops clients off the async runtime: closing a librdkafka client joins its threads.
pub(crate) async fn close_off_runtime<T: Send + 'static>(clients: Vec<T>) -> LogResult<()> {
    if clients.is_empty() {
        return Ok(());
    }
    blocking(move || drop(clients)).await
}
