//! The model registry, kept in the log: topic `_fw_models` (1 partition, infinite
//! retention), so it replicates with the log and needs no other store.
//!
//! ## Events (key: the model name; header `fw.model.event`)
//!
//! - `chunk`: ≤ 512 KiB of one blob of one upload (headers `fw.model.upload`,
//!   `fw.model.blob`, `fw.model.chunk` = `i/n`); the value is the raw bytes. Bundles larger
//!   than the 1 MiB record limit (a 200-tree forest) fit this way.
//! - `version_created`: `{version, upload, manifest}`, written **after** every chunk of its
//!   upload: it commits the version. Chunks without one (a crashed upload) are ignored. A
//!   version whose chunks are missing, or whose bytes do not match the manifest's sha256, is
//!   kept as *broken* with the reason; it cannot be promoted, and the aliases stay where
//!   they were, so the previous `production` keeps serving.
//! - `alias_moved`: `{alias, version | null, threshold | null, rollback}`.
//! - `version_flagged`: `{version, archived}` — `archived` is a version flag, not an alias:
//!   an archived version keeps its number and bytes but takes no new alias and no traffic.
//! - `traffic_set`: a [`TrafficSplit`] `{arms: [{target, weight_bp}], shadows, salt}` — the
//!   model's A/B split over aliases or versions (basis points summing to 10,000; no arms
//!   clears it), shared by the stream scorer and the model server. A request without an
//!   explicit version or alias goes by it: bucket = Kafka's positive murmur2 of
//!   `salt ‖ routing key` mod 10,000, so the unit of randomisation is the key (the car) and
//!   the salt decorrelates buckets from partitioning. Shadows score off the output path.
//! - `deleted`: `{version | null}` — a tombstone: the version (or the whole model) is gone
//!   from the registry, but its bytes stay in the log until retention (infinite here)
//!   removes them.
//!
//! Names match `[a-z0-9_.-]{1,128}`; versions are int64, increasing per name (never
//! reused, not even after a delete), immutable. Aliases (`production`, `canary`, any name
//! matching `[a-z][a-z0-9_.-]{0,63}`, so `m@3` is always a version) are the one rollout
//! concept. Route order: explicit version > explicit alias > the model's traffic split >
//! `production` ([`ModelRegistry::route`]). The first version of a model becomes `production`.
//!
//! ## Cache
//!
//! Every ready version is materialised under `<cache>/<name>/<version>/` (manifest last, each
//! file synced and renamed into place). [`ModelRegistry::open`] replays the topic and
//! rewrites whatever is missing or does not verify, so the cache is rebuilt after a crash;
//! reading a version whose files fail verification rebuilds it from the log again.

use crate::bundle::{Bundle, Manifest, manifest_from_value, sha256_hex};
use crate::error::{MlError, MlResult};
use bytes::Bytes;
use fleetwatch_core::{Header, Log, OffsetSpec, ReadLimits, Record, TopicConfig, now_ms};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The registry topic.
pub const TOPIC: &str = "_fw_models";
/// Largest chunk of a blob.
pub const CHUNK_BYTES: usize = 512 * 1024;
/// The alias rollouts move.
pub const PRODUCTION: &str = "production";

const H_EVENT: &str = "fw.model.event";
const H_UPLOAD: &str = "fw.model.upload";
const H_BLOB: &str = "fw.model.blob";
const H_CHUNK: &str = "fw.model.chunk";

/// Checks a model name against `[a-z0-9_.-]{1,128}`.
///
/// # Errors
/// The name breaks the rule (quoted in the message).
pub fn check_name(name: &str) -> MlResult<()> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(MlError::Name(format!(
            "model name {name:?} must match [a-z0-9_.-]{{1,128}}"
        )))
    }
}

/// Checks an alias name against `[a-z][a-z0-9_.-]{0,63}` (`archived` is a version flag, not
/// an alias).
///
/// # Errors
/// The name breaks the rule.
pub fn check_alias(alias: &str) -> MlResult<()> {
    let b = alias.as_bytes();
    let ok = (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
        });
    if !ok {
        return Err(MlError::Name(format!(
            "alias {alias:?} must match [a-z][a-z0-9_.-]{{0,63}} (no leading digit: m@3 is a version)"
        )));
    }
    if alias == "archived" {
        return Err(MlError::Name(
            "\"archived\" is a version flag, not an alias".into(),
        ));
    }
    Ok(())
}

/// A reference to a model: `m`, `m@3`, `m@canary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// The model: routed to `production`.
    Model(String),
    /// One version.
    Version(String, i64),
    /// An alias.
    Alias(String, String),
}

impl ModelRef {
    /// Parses `m`, `m@3`, `m@alias`.
    ///
    /// # Errors
    /// A bad name, version or alias.
    pub fn parse(text: &str) -> MlResult<Self> {
        match text.split_once('@') {
            None => {
                check_name(text)?;
                Ok(ModelRef::Model(text.into()))
            }
            Some((m, r)) => {
                check_name(m)?;
                if r.bytes().next().is_some_and(|c| c.is_ascii_digit()) {
                    let v = r.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
                        MlError::Name(format!("{text:?}: version {r:?} is not a positive integer"))
                    })?;
                    Ok(ModelRef::Version(m.into(), v))
                } else {
                    check_alias(r)?;
                    Ok(ModelRef::Alias(m.into(), r.into()))
                }
            }
        }
    }

    /// The model name.
    pub fn name(&self) -> &str {
        match self {
            ModelRef::Model(n) | ModelRef::Version(n, _) | ModelRef::Alias(n, _) => n,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionCreated {
    version: i64,
    upload: String,
    manifest: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct AliasMoved {
    alias: String,
    version: Option<i64>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    rollback: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct VersionFlagged {
    version: i64,
    archived: bool,
}

/// One arm of a traffic split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficArm {
    /// An alias (`canary`) or a version number (`7`).
    pub target: String,
    /// Its share, basis points (1 – 10,000).
    pub weight_bp: u32,
}

/// A model's traffic split (empty `arms`: none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSplit {
    /// The arms, in order: bucket ranges are laid out in this order.
    pub arms: Vec<TrafficArm>,
    /// Versions or aliases that also score every request, off the output path.
    #[serde(default)]
    pub shadows: Vec<String>,
    /// Hashed in front of the key.
    #[serde(default)]
    pub salt: String,
}

impl TrafficSplit {
    /// The bucket (0 – 9,999) of a routing key under this split's salt.
    pub fn bucket(&self, routing_key: &[u8]) -> u32 {
        let mut k = Vec::with_capacity(self.salt.len() + routing_key.len());
        k.extend_from_slice(self.salt.as_bytes());
        k.extend_from_slice(routing_key);
        fleetwatch_core::partitioner::partition_for_key(&k, 10_000) as u32
    }

    /// The arm a routing key falls in.
    pub fn arm(&self, routing_key: &[u8]) -> Option<&TrafficArm> {
        let b = self.bucket(routing_key);
        let mut upto = 0;
        self.arms.iter().find(|a| {
            upto += a.weight_bp;
            b < upto
        })
    }

    /// Whether `target` (an alias or a version number as text) is an arm or a shadow.
    pub fn uses(&self, target: &str) -> bool {
        self.arms.iter().any(|a| a.target == target) || self.shadows.iter().any(|s| s == target)
    }
}

/// An arm or shadow target as a reference of model `name`.
fn target_ref(name: &str, target: &str) -> ModelRef {
    match target.parse::<i64>() {
        Ok(v) => ModelRef::Version(name.to_string(), v),
        Err(_) => ModelRef::Alias(name.to_string(), target.to_string()),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Deleted {
    version: Option<i64>,
}

/// Whether a version can serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum VersionStatus {
    /// Complete and verified.
    Ready,
    /// Chunks missing or corrupt: the reason.
    Broken(String),
}

/// One version, as the registry knows it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// The version.
    pub version: i64,
    /// Ready or broken.
    pub status: VersionStatus,
    /// The bundle's digest.
    pub digest: String,
    /// Its manifest.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// The algorithm.
    pub algorithm: String,
    /// When it was made.
    pub created_at: String,
    /// The threshold stored with it.
    pub threshold: f64,
    /// Total blob bytes.
    pub bytes: u64,
    /// Archived: kept, but takes no new alias and no traffic.
    pub archived: bool,
    /// Offset of its `version_created` event.
    pub offset: i64,
}

/// An alias and where it points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasInfo {
    /// The version.
    pub version: i64,
    /// A threshold that overrides the version's, if set.
    pub threshold: Option<f64>,
}

/// One model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelInfo {
    /// Its name.
    pub name: String,
    /// Live versions.
    pub versions: BTreeMap<i64, VersionInfo>,
    /// Aliases.
    pub aliases: BTreeMap<String, AliasInfo>,
    /// Every holder of `production`, oldest first, as moves and rollbacks left it (a
    /// rollback pops).
    pub production_history: Vec<i64>,
    /// The highest version ever created (deleted ones included).
    pub last_version: i64,
    /// The traffic split (no arms: none).
    pub traffic: TrafficSplit,
    /// Alias moves, oldest first: (alias, version or none, offset).
    #[serde(skip)]
    pub events: Vec<(String, Option<i64>, i64)>,
}

/// What a reference resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The model.
    pub name: String,
    /// The version.
    pub version: i64,
    /// The alias it came through, if any.
    pub alias: Option<String>,
    /// The threshold to use (an alias's override, else the version's).
    pub threshold: f64,
}

/// (model, upload, blob): the chunks of one blob of one upload.
type ChunkKey = (String, String, String);
/// The count of chunks a blob announces, and those seen by index.
type Chunks = (usize, BTreeMap<usize, Bytes>);

#[derive(Default)]
struct State {
    models: BTreeMap<String, ModelInfo>,
    /// Chunks by (model, upload, blob): index → bytes, and the count they announce.
    pending: HashMap<ChunkKey, Chunks>,
    next_offset: i64,
}

/// The registry over a log, with its local cache.
pub struct ModelRegistry {
    log: Arc<dyn Log>,
    cache: PathBuf,
    state: tokio::sync::Mutex<State>,
}

fn header<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .rev()
        .find(|h| h.key == key)
        .and_then(|h| h.value.as_deref())
        .and_then(|v| std::str::from_utf8(v).ok())
}

fn hdr(key: &str, value: impl Into<String>) -> Header {
    Header {
        key: key.into(),
        value: Some(Bytes::from(value.into())),
    }
}

impl ModelRegistry {
    /// Opens the registry: creates the topic if needed, replays it and rebuilds the cache
    /// under `cache`.
    ///
    /// # Errors
    /// Log errors; the cache directory cannot be written.
    pub async fn open(log: Arc<dyn Log>, cache: impl Into<PathBuf>) -> MlResult<Self> {
        log.ensure_topic(TOPIC, TopicConfig::internal(1)).await?;
        let reg = ModelRegistry {
            log,
            cache: cache.into(),
            state: tokio::sync::Mutex::new(State::default()),
        };
        reg.refresh().await?;
        Ok(reg)
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    fn version_dir(&self, name: &str, version: i64) -> PathBuf {
        self.cache.join(name).join(version.to_string())
    }

    /// Applies every event written since the last refresh (other writers' too).
    ///
    /// # Errors
    /// Log errors; the cache cannot be written.
    pub async fn refresh(&self) -> MlResult<()> {
        let mut st = self.state.lock().await;
        let end = self.log.offset_for(TOPIC, 0, OffsetSpec::Latest).await?;
        if st.next_offset == 0 {
            st.next_offset = self.log.offset_for(TOPIC, 0, OffsetSpec::Earliest).await?;
        }
        let limits = ReadLimits {
            max_records: 64,
            max_bytes: 16 << 20,
            max_wait: Duration::ZERO,
        };
        while st.next_offset < end {
            let batch = self.log.read(TOPIC, 0, st.next_offset, limits).await?;
            if batch.records.is_empty() {
                break;
            }
            for c in batch.records {
                st.next_offset = c.offset + 1;
                self.apply(&mut st, c.offset, &c.record)?;
            }
        }
        Ok(())
    }

    fn apply(&self, st: &mut State, offset: i64, r: &Record) -> MlResult<()> {
        let Some(name) = r
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(str::to_string)
        else {
            tracing::warn!(
                offset,
                "model registry: an event without a model name, skipped"
            );
            return Ok(());
        };
        let value = r.value.clone().unwrap_or_default();
        let event = header(r, H_EVENT).unwrap_or("");
        let bad =
            |what: &str| tracing::warn!(offset, model = %name, "model registry: {what}, skipped");
        match event {
            "chunk" => {
                let (Some(upload), Some(blob), Some((i, n))) = (
                    header(r, H_UPLOAD),
                    header(r, H_BLOB),
                    header(r, H_CHUNK).and_then(|c| c.split_once('/')),
                ) else {
                    bad("a chunk without its headers");
                    return Ok(());
                };
                let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<usize>()) else {
                    bad("a chunk with a bad index");
                    return Ok(());
                };
                let e = st
                    .pending
                    .entry((name, upload.to_string(), blob.to_string()))
                    .or_default();
                e.0 = n;
                e.1.insert(i, value);
            }
            "version_created" => {
                let Ok(vc) = serde_json::from_slice::<VersionCreated>(&value) else {
                    bad("an unreadable version_created");
                    return Ok(());
                };
                let model = st.models.entry(name.clone()).or_insert_with(|| ModelInfo {
                    name: name.clone(),
                    ..Default::default()
                });
                if vc.version <= model.last_version {
                    bad("a version number already taken (a concurrent registration lost)");
                    // Its chunks are of no use.
                    st.pending.retain(|k, _| !(k.0 == name && k.1 == vc.upload));
                    return Ok(());
                }
                model.last_version = vc.version;
                let (status, info, bundle) = match manifest_from_value(vc.manifest) {
                    Err(e) => (VersionStatus::Broken(e.to_string()), None, None),
                    Ok(m) => {
                        let mut blobs = BTreeMap::new();
                        let mut problem = None;
                        for b in &m.blobs {
                            match st.pending.remove(&(
                                name.clone(),
                                vc.upload.clone(),
                                b.name.clone(),
                            )) {
                                None => {
                                    problem = Some(format!("blob {}: no chunks in the log", b.name))
                                }
                                Some((n, chunks)) => {
                                    if chunks.len() != n || (0..n).any(|i| !chunks.contains_key(&i))
                                    {
                                        problem = Some(format!(
                                            "blob {}: {} of {n} chunks in the log",
                                            b.name,
                                            chunks.len()
                                        ));
                                        continue;
                                    }
                                    let mut bytes = Vec::with_capacity(b.bytes as usize);
                                    for c in chunks.values() {
                                        bytes.extend_from_slice(c);
                                    }
                                    blobs.insert(b.name.clone(), bytes);
                                }
                            }
                        }
                        let bundle = Bundle {
                            manifest: m.clone(),
                            blobs,
                        };
                        if problem.is_none()
                            && let Err(e) = bundle.verify()
                        {
                            problem = Some(e.to_string());
                        }
                        match problem {
                            Some(p) => (VersionStatus::Broken(p), Some(m), None),
                            None => (VersionStatus::Ready, Some(m), Some(bundle)),
                        }
                    }
                };
                st.pending.retain(|k, _| !(k.0 == name && k.1 == vc.upload));
                if let VersionStatus::Broken(reason) = &status {
                    tracing::warn!(model = %name, version = vc.version, %reason, "model version is broken");
                }
                let digest = bundle.as_ref().map(Bundle::digest).unwrap_or_default();
                if let Some(b) = &bundle {
                    self.materialise(&name, vc.version, b)?;
                }
                let first = model.versions.is_empty() && !model.aliases.contains_key(PRODUCTION);
                let info_ref = info.as_ref();
                model.versions.insert(
                    vc.version,
                    VersionInfo {
                        version: vc.version,
                        status: status.clone(),
                        digest,
                        algorithm: info_ref.map(|m| m.algorithm.clone()).unwrap_or_default(),
                        created_at: info_ref.map(|m| m.created_at.clone()).unwrap_or_default(),
                        threshold: info_ref.map_or(f64::NAN, |m| m.threshold.value),
                        bytes: info_ref.map_or(0, |m| m.blobs.iter().map(|b| b.bytes).sum()),
                        archived: false,
                        manifest: info,
                        offset,
                    },
                );
                // The first ready version of a model becomes production.
                if first
                    && status == VersionStatus::Ready
                    && model.last_version == vc.version
                    && model.production_history.is_empty()
                {
                    model.aliases.insert(
                        PRODUCTION.into(),
                        AliasInfo {
                            version: vc.version,
                            threshold: None,
                        },
                    );
                    model.production_history.push(vc.version);
                    model
                        .events
                        .push((PRODUCTION.into(), Some(vc.version), offset));
                }
            }
            "alias_moved" => {
                let Ok(am) = serde_json::from_slice::<AliasMoved>(&value) else {
                    bad("an unreadable alias_moved");
                    return Ok(());
                };
                let Some(model) = st.models.get_mut(&name) else {
                    bad("an alias of an unknown model");
                    return Ok(());
                };
                match am.version {
                    None => {
                        model.aliases.remove(&am.alias);
                    }
                    Some(v) => {
                        model.aliases.insert(
                            am.alias.clone(),
                            AliasInfo {
                                version: v,
                                threshold: am.threshold,
                            },
                        );
                    }
                }
                if am.alias == PRODUCTION {
                    let h = &mut model.production_history;
                    match (am.rollback, am.version) {
                        (true, Some(v)) => {
                            while h.last().is_some_and(|&top| top != v) {
                                h.pop();
                            }
                            if h.is_empty() {
                                h.push(v);
                            }
                        }
                        (_, Some(v)) => {
                            if h.last() != Some(&v) {
                                h.push(v);
                            }
                        }
                        (_, None) => h.clear(),
                    }
                }
                model.events.push((am.alias, am.version, offset));
            }
            "version_flagged" => {
                let Ok(f) = serde_json::from_slice::<VersionFlagged>(&value) else {
                    bad("an unreadable version_flagged");
                    return Ok(());
                };
                if let Some(v) = st
                    .models
                    .get_mut(&name)
                    .and_then(|m| m.versions.get_mut(&f.version))
                {
                    v.archived = f.archived;
                }
            }
            "traffic_set" => {
                let Ok(t) = serde_json::from_slice::<TrafficSplit>(&value) else {
                    bad("an unreadable traffic_set");
                    return Ok(());
                };
                if let Some(m) = st.models.get_mut(&name) {
                    m.traffic = t;
                }
            }
            "deleted" => {
                let Ok(d) = serde_json::from_slice::<Deleted>(&value) else {
                    bad("an unreadable deleted");
                    return Ok(());
                };
                let Some(model) = st.models.get_mut(&name) else {
                    return Ok(());
                };
                match d.version {
                    None => {
                        model.versions.clear();
                        model.aliases.clear();
                        model.production_history.clear();
                        model.traffic = TrafficSplit::default();
                    }
                    Some(v) => {
                        model.versions.remove(&v);
                        model.aliases.retain(|_, a| a.version != v);
                        model.production_history.retain(|&x| x != v);
                    }
                }
                let dir = match d.version {
                    Some(v) => self.version_dir(&name, v),
                    None => self.cache.join(&name),
                };
                let _ = std::fs::remove_dir_all(dir);
            }
            _ => bad("an event of an unknown kind"),
        }
        Ok(())
    }

    /// Writes a verified bundle into the cache unless an identical one is there.
    fn materialise(&self, name: &str, version: i64, bundle: &Bundle) -> MlResult<()> {
        let dir = self.version_dir(name, version);
        if let Ok(b) = Bundle::read_dir(&dir)
            && b.digest() == bundle.digest()
        {
            return Ok(());
        }
        let _ = std::fs::remove_dir_all(&dir);
        bundle.write_dir(&dir)
    }

    /// Registers a bundle as the next version of `name`; returns the version.
    ///
    /// # Errors
    /// A bad name, a bundle that does not verify, log errors, a concurrent registration
    /// that took the version number (retry).
    pub async fn register(&self, name: &str, bundle: &Bundle) -> MlResult<i64> {
        check_name(name)?;
        bundle.verify()?;
        self.refresh().await?;
        let version = {
            let st = self.state.lock().await;
            st.models.get(name).map_or(0, |m| m.last_version) + 1
        };
        let upload = format!(
            "{}-{}-{}",
            now_ms(),
            std::process::id(),
            &bundle.digest()[..12]
        );
        let key = Some(Bytes::from(name.to_string()));
        for (blob, bytes) in &bundle.blobs {
            let n = bytes.len().div_ceil(CHUNK_BYTES).max(1);
            for i in 0..n {
                let part = &bytes
                    [(i * CHUNK_BYTES).min(bytes.len())..((i + 1) * CHUNK_BYTES).min(bytes.len())];
                let mut r = Record::new(key.clone(), Some(Bytes::copy_from_slice(part)));
                r.headers = vec![
                    hdr(H_EVENT, "chunk"),
                    hdr(H_UPLOAD, upload.clone()),
                    hdr(H_BLOB, blob.clone()),
                    hdr(H_CHUNK, format!("{i}/{n}")),
                ];
                self.log.append(TOPIC, 0, &[r]).await?;
            }
        }
        let manifest =
            serde_json::to_value(&bundle.manifest).map_err(|e| MlError::bundle(e.to_string()))?;
        let value = serde_json::to_vec(&VersionCreated {
            version,
            upload: upload.clone(),
            manifest,
        })
        .map_err(|e| MlError::bundle(e.to_string()))?;
        let mut r = Record::new(key, Some(Bytes::from(value)));
        r.headers = vec![hdr(H_EVENT, "version_created"), hdr(H_UPLOAD, upload)];
        let ack = self.log.append(TOPIC, 0, &[r]).await?;
        self.refresh().await?;
        let st = self.state.lock().await;
        match st.models.get(name).and_then(|m| m.versions.get(&version)) {
            Some(v) if ack.offsets.first() == Some(&v.offset) => match &v.status {
                VersionStatus::Ready => Ok(version),
                VersionStatus::Broken(reason) => Err(MlError::bundle(format!(
                    "{name}@{version} was written but is broken: {reason}"
                ))),
            },
            _ => Err(MlError::bundle(format!(
                "{name}@{version}: another registration took this version number first; register again"
            ))),
        }
    }

    /// Appends one event of model `name` (its value as JSON) and applies it.
    async fn append_event(&self, name: &str, event: &str, value: &impl Serialize) -> MlResult<()> {
        let value = serde_json::to_vec(value).map_err(|e| MlError::bundle(e.to_string()))?;
        let mut r = Record::new(
            Some(Bytes::from(name.to_string())),
            Some(Bytes::from(value)),
        );
        r.headers = vec![hdr(H_EVENT, event)];
        self.log.append(TOPIC, 0, &[r]).await?;
        self.refresh().await
    }

    /// A model, as it stands (after a refresh).
    ///
    /// # Errors
    /// Unknown model.
    pub async fn model(&self, name: &str) -> MlResult<ModelInfo> {
        self.refresh().await?;
        let st = self.state.lock().await;
        st.models
            .get(name)
            .filter(|m| !m.versions.is_empty())
            .cloned()
            .ok_or_else(|| MlError::NotFound(format!("model {name:?} is not registered")))
    }

    /// Every model with at least one live version, by name.
    ///
    /// # Errors
    /// Log errors.
    pub async fn list(&self) -> MlResult<Vec<ModelInfo>> {
        self.refresh().await?;
        let st = self.state.lock().await;
        Ok(st
            .models
            .values()
            .filter(|m| !m.versions.is_empty())
            .cloned()
            .collect())
    }

    /// Resolves a reference: explicit version > explicit alias > `production`.
    ///
    /// # Errors
    /// Unknown model, version or alias; a model without `production`.
    pub async fn resolve(&self, r: &ModelRef) -> MlResult<Resolved> {
        let m = self.model(r.name()).await?;
        let (version, alias, threshold) = match r {
            ModelRef::Version(_, v) => (*v, None, None),
            ModelRef::Alias(_, a) => {
                let ai = m.aliases.get(a).ok_or_else(|| {
                    MlError::NotFound(format!(
                        "model {:?} has no alias {a:?} (aliases: {})",
                        m.name,
                        m.aliases.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                (ai.version, Some(a.clone()), ai.threshold)
            }
            ModelRef::Model(_) => {
                let ai = m.aliases.get(PRODUCTION).ok_or_else(|| {
                    MlError::NotFound(format!(
                        "model {:?} has no production version: promote one (m@v)",
                        m.name
                    ))
                })?;
                (ai.version, Some(PRODUCTION.to_string()), ai.threshold)
            }
        };
        let v = m.versions.get(&version).ok_or_else(|| {
            MlError::NotFound(format!(
                "model {:?} has no version {version} (versions: {})",
                m.name,
                m.versions
                    .keys()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        Ok(Resolved {
            name: m.name.clone(),
            version,
            alias,
            threshold: threshold.unwrap_or(v.threshold),
        })
    }

    /// The bundle of a version, from the cache (rebuilt from the log if its files do not
    /// verify).
    ///
    /// # Errors
    /// Unknown or broken version; the log no longer holds it.
    pub async fn bundle(&self, name: &str, version: i64) -> MlResult<Bundle> {
        let m = self.model(name).await?;
        let v = m
            .versions
            .get(&version)
            .ok_or_else(|| MlError::NotFound(format!("model {name:?} has no version {version}")))?;
        if let VersionStatus::Broken(reason) = &v.status {
            return Err(MlError::bundle(format!(
                "{name}@{version} is broken: {reason}"
            )));
        }
        match Bundle::read_dir(&self.version_dir(name, version)) {
            Ok(b) if b.digest() == v.digest => Ok(b),
            other => {
                if let Err(e) = other {
                    tracing::warn!(model = name, version, error = %e, "model cache does not verify: rebuilding it from the log");
                }
                // Replay from the start into a fresh state: it rewrites the cache.
                let fresh = ModelRegistry {
                    log: self.log.clone(),
                    cache: self.cache.clone(),
                    state: tokio::sync::Mutex::new(State::default()),
                };
                let _ = std::fs::remove_dir_all(self.version_dir(name, version));
                fresh.refresh().await?;
                Bundle::read_dir(&self.version_dir(name, version))
            }
        }
    }

    /// Points `alias` at `version` (with an optional threshold override).
    ///
    /// # Errors
    /// A bad alias, an unknown or broken version.
    pub async fn move_alias(
        &self,
        name: &str,
        alias: &str,
        version: i64,
        threshold: Option<f64>,
    ) -> MlResult<()> {
        check_alias(alias)?;
        let m = self.model(name).await?;
        match m.versions.get(&version).map(|v| &v.status) {
            None => {
                return Err(MlError::NotFound(format!(
                    "model {name:?} has no version {version}"
                )));
            }
            Some(VersionStatus::Broken(r)) => {
                return Err(MlError::bundle(format!(
                    "{name}@{version} is broken ({r}): it cannot take an alias"
                )));
            }
            Some(VersionStatus::Ready) => {}
        }
        if m.versions[&version].archived {
            return Err(MlError::options(format!(
                "{name}@{version} is archived: it takes no new alias (unarchive it first)"
            )));
        }
        if threshold.is_some_and(|t| !t.is_finite()) {
            return Err(MlError::options(
                "a threshold override must be a finite number",
            ));
        }
        self.append_event(
            name,
            "alias_moved",
            &AliasMoved {
                alias: alias.into(),
                version: Some(version),
                threshold,
                rollback: false,
            },
        )
        .await
    }

    /// Removes an alias.
    ///
    /// # Errors
    /// Unknown model or alias.
    pub async fn remove_alias(&self, name: &str, alias: &str) -> MlResult<()> {
        let m = self.model(name).await?;
        if !m.aliases.contains_key(alias) {
            return Err(MlError::NotFound(format!(
                "model {name:?} has no alias {alias:?}"
            )));
        }
        if m.traffic.uses(alias) {
            return Err(MlError::options(format!(
                "{name}@{alias} is in the traffic split: change the split first"
            )));
        }
        self.append_event(
            name,
            "alias_moved",
            &AliasMoved {
                alias: alias.into(),
                version: None,
                threshold: None,
                rollback: false,
            },
        )
        .await
    }

    /// `promote m@v` / `promote m@alias`: moves `production` there; returns the version.
    ///
    /// # Errors
    /// A reference without a version or alias, unknown or broken version.
    pub async fn promote(&self, r: &ModelRef) -> MlResult<i64> {
        if let ModelRef::Model(n) = r {
            return Err(MlError::options(format!(
                "promote needs a version or alias: {n}@3 or {n}@canary"
            )));
        }
        let res = self.resolve(r).await?;
        self.move_alias(&res.name, PRODUCTION, res.version, None)
            .await?;
        Ok(res.version)
    }

    /// Moves `production` back to its previous holder; returns that version.
    ///
    /// # Errors
    /// No earlier holder that still exists and is ready.
    pub async fn rollback(&self, name: &str) -> MlResult<i64> {
        let m = self.model(name).await?;
        let h = &m.production_history;
        let current = h.last().copied();
        // The latest earlier holder that is not the current one and can still serve.
        let prev = h
            .iter()
            .rev()
            .skip(1)
            .find(|v| {
                Some(**v) != current
                    && m.versions
                        .get(v)
                        .is_some_and(|v| v.status == VersionStatus::Ready && !v.archived)
            })
            .copied()
            .ok_or_else(|| {
                MlError::NotFound(format!(
                    "model {name:?}: production has no earlier holder to roll back to"
                ))
            })?;
        self.append_event(
            name,
            "alias_moved",
            &AliasMoved {
                alias: PRODUCTION.into(),
                version: Some(prev),
                threshold: None,
                rollback: true,
            },
        )
        .await?;
        Ok(prev)
    }

    /// Deletes a version (or, with `None`, the whole model): a tombstone in the log.
    ///
    /// # Errors
    /// Unknown model or version; the version is `production` of a model with other
    /// versions (move production first).
    pub async fn delete(&self, name: &str, version: Option<i64>) -> MlResult<()> {
        let m = self.model(name).await?;
        if let Some(v) = version {
            if !m.versions.contains_key(&v) {
                return Err(MlError::NotFound(format!(
                    "model {name:?} has no version {v}"
                )));
            }
            if m.aliases.get(PRODUCTION).is_some_and(|a| a.version == v) && m.versions.len() > 1 {
                return Err(MlError::options(format!(
                    "{name}@{v} is production: promote or roll back to another version first"
                )));
            }
            let via = m
                .aliases
                .iter()
                .find(|(a, i)| i.version == v && m.traffic.uses(a))
                .map(|(a, _)| a.clone())
                .or_else(|| m.traffic.uses(&v.to_string()).then(|| v.to_string()));
            if let Some(a) = via {
                return Err(MlError::options(format!(
                    "{name}@{v} takes traffic through {name}@{a}: change the split first"
                )));
            }
        }
        self.append_event(name, "deleted", &Deleted { version })
            .await
    }

    /// Archives a version (or, with `archived = false`, brings it back). An archived
    /// version keeps its number and bytes but takes no new alias and no rollback.
    ///
    /// # Errors
    /// Unknown version; archiving a version an alias points at (move the alias first).
    pub async fn set_archived(&self, name: &str, version: i64, archived: bool) -> MlResult<()> {
        let m = self.model(name).await?;
        if !m.versions.contains_key(&version) {
            return Err(MlError::NotFound(format!(
                "model {name:?} has no version {version}"
            )));
        }
        if archived && m.traffic.uses(&version.to_string()) {
            return Err(MlError::options(format!(
                "{name}@{version} takes traffic: change the split before archiving it"
            )));
        }
        if archived && let Some((a, _)) = m.aliases.iter().find(|(_, i)| i.version == version) {
            return Err(MlError::options(format!(
                "{name}@{version} is {name}@{a}: move the alias before archiving it"
            )));
        }
        self.append_event(
            name,
            "version_flagged",
            &VersionFlagged { version, archived },
        )
        .await
    }

    /// Sets the model's traffic split; one without arms clears it.
    ///
    /// # Errors
    /// An unknown alias or version, a broken or archived version, a zero weight, weights not
    /// summing to 10,000 basis points, a shadow that is also an arm.
    pub async fn set_traffic(&self, name: &str, split: &TrafficSplit) -> MlResult<()> {
        let m = self.model(name).await?;
        let check = |target: &str| -> MlResult<()> {
            match target_ref(name, target) {
                ModelRef::Version(_, v) => match m.versions.get(&v) {
                    None => Err(MlError::NotFound(format!(
                        "model {name:?} has no version {v}"
                    ))),
                    Some(i) if i.status != VersionStatus::Ready => Err(MlError::bundle(format!(
                        "{name}@{v} is broken: it cannot take traffic"
                    ))),
                    Some(i) if i.archived => Err(MlError::options(format!(
                        "{name}@{v} is archived: it takes no traffic"
                    ))),
                    Some(_) => Ok(()),
                },
                _ if m.aliases.contains_key(target) => Ok(()),
                _ => Err(MlError::NotFound(format!(
                    "model {name:?} has no alias {target:?} (aliases: {})",
                    m.aliases.keys().cloned().collect::<Vec<_>>().join(", ")
                ))),
            }
        };
        for a in &split.arms {
            check(&a.target)?;
            if a.weight_bp == 0 {
                return Err(MlError::options(format!(
                    "traffic to {name}@{}: a weight must be at least 1 basis point (leave the arm out instead)",
                    a.target
                )));
            }
            if split.arms.iter().filter(|b| b.target == a.target).count() > 1 {
                return Err(MlError::options(format!(
                    "{name}@{} is given twice",
                    a.target
                )));
            }
        }
        for sh in &split.shadows {
            check(sh)?;
            if split.arms.iter().any(|a| &a.target == sh) {
                return Err(MlError::options(format!(
                    "{name}@{sh} is an arm: a shadow scores off the output path, it cannot be both"
                )));
            }
        }
        let total: u32 = split.arms.iter().map(|a| a.weight_bp).sum();
        if !split.arms.is_empty() && total != 10_000 {
            return Err(MlError::options(format!(
                "traffic split of {name}: the weights add up to {total} basis points, not 10000"
            )));
        }
        self.append_event(name, "traffic_set", split).await
    }

    /// Routes a request: an explicit version or alias as [`ModelRegistry::resolve`]; a bare
    /// model through its traffic split by `routing_key` ([`TrafficSplit::bucket`]), else
    /// `production`.
    ///
    /// # Errors
    /// As [`ModelRegistry::resolve`].
    pub async fn route(&self, r: &ModelRef, routing_key: &[u8]) -> MlResult<Resolved> {
        if let ModelRef::Model(name) = r {
            let m = self.model(name).await?;
            if let Some(arm) = m.traffic.arm(routing_key) {
                return self.resolve(&target_ref(name, &arm.target)).await;
            }
        }
        self.resolve(r).await
    }

    /// The hex sha256 of arbitrary bytes (re-exported for callers printing digests).
    pub fn sha256(bytes: &[u8]) -> String {
        sha256_hex(bytes)
    }
}
