//! The registry: state rebuilt from the `_schemas` topic, and every operation of the REST
//! API. One instance (`leader = true`) writes; every instance tails the topic, so followers
//! serve reads and ids stay stable across restarts and sites.
//!
//! Split along its pure cores:
//!
//! - [`records`]: the `_schemas` record format (keys and values as Confluent writes them),
//!   pure encode and decode;
//! - [`state`]: the replayable state machine (apply one raw record → new state,
//!   deterministic; undecodable records skipped with a warning) and its queries;
//! - this module: the driver — replaying and tailing the log, and the leader's writes
//!   (each operation decides on a snapshot of the state, writes records, then waits until it
//!   has applied them, so a write is visible when it returns).
//!
//! Ids and versions only grow: the next id is the highest seen + 1 and the next version of a
//! subject its highest + 1, with checked arithmetic (2^31-1 is the last; past it the
//! registration is refused with 42205, never wrapped or reused).

mod records;
mod state;

use crate::compat::{self, Parsed};
use crate::error::{RegistryError, RegistryResult};
use crate::types::*;
use crate::{avro, json_schema};
use bytes::Bytes;
use fleetwatch_core::{INTERNAL_SCHEMAS_TOPIC, Log, OffsetSpec, ReadLimits, Record, TopicConfig};
use records::{Key, SchemaValue};
use serde::{Deserialize, Serialize};
use state::{State, Stored, VersionEntry};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// `[schema_registry]` configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Listen address of the REST API (Confluent's port 8081 by default; 0 = any free).
    pub listen: String,
    /// Whether this instance writes. Others serve reads and refuse writes (50003).
    pub leader: bool,
    /// Compatibility level when none is configured.
    pub default_compatibility: Compatibility,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            listen: "0.0.0.0:8081".into(),
            leader: true,
            default_compatibility: Compatibility::Backward,
        }
    }
}

/// The schema registry over a log.
pub struct Registry {
    avro_cache: RwLock<HashMap<i32, Arc<avro::ParsedAvro>>>,
    log: Arc<dyn Log>,
    config: SchemaRegistryConfig,
    state: RwLock<State>,
    applied_tx: watch::Sender<i64>,
    write_lock: tokio::sync::Mutex<()>,
}

/// A schema prepared for registration: its identity and parsed form.
struct Candidate {
    schema_type: SchemaType,
    identity: String,
    references: Vec<SchemaReference>,
    parsed: Parsed,
}

impl SchemaRegistryConfig {
    /// Opens the registry on `log`: creates `_schemas` if needed and replays it.
    pub async fn build(&self, log: Arc<dyn Log>) -> RegistryResult<Arc<Registry>> {
        Registry::open(log, self.clone()).await
    }
}

impl Registry {
    /// Opens the registry: ensures the `_schemas` topic (one partition, kept forever) and
    /// replays it.
    pub async fn open(
        log: Arc<dyn Log>,
        config: SchemaRegistryConfig,
    ) -> RegistryResult<Arc<Registry>> {
        log.ensure_topic(INTERNAL_SCHEMAS_TOPIC, TopicConfig::internal(1))
            .await?;
        let start = log
            .offset_for(INTERNAL_SCHEMAS_TOPIC, 0, OffsetSpec::Earliest)
            .await?;
        let (applied_tx, _) = watch::channel(start);
        let registry = Arc::new(Registry {
            avro_cache: RwLock::new(HashMap::new()),
            log,
            config,
            state: RwLock::new(State {
                applied: start,
                ..Default::default()
            }),
            applied_tx,
            write_lock: tokio::sync::Mutex::new(()),
        });
        registry.sync(Duration::ZERO).await?;
        Ok(registry)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `_schemas` records up to the end, waiting up to `wait` for new ones. The
    /// wait holds no lock: writers and the tailer may sync at once, and each record is
    /// applied exactly once, in offset order, under the state lock.
    async fn sync(&self, wait: Duration) -> RegistryResult<()> {
        let mut wait = wait;
        loop {
            let from = self.read().applied;
            let limits = ReadLimits {
                max_records: 10_000,
                max_bytes: 8 << 20,
                max_wait: wait,
            };
            wait = Duration::ZERO;
            let batch = self
                .log
                .read(INTERNAL_SCHEMAS_TOPIC, 0, from, limits)
                .await?;
            if batch.records.is_empty() {
                return Ok(());
            }
            let applied = {
                let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
                for r in &batch.records {
                    if r.offset < st.applied {
                        continue; // applied meanwhile by another sync
                    }
                    if let Some(k) = &r.record.key {
                        st.apply(k, r.record.value.as_deref());
                    }
                    st.applied = r.offset + 1;
                }
                st.applied
            };
            self.applied_tx.send_replace(applied);
        }
    }

    /// Follows `_schemas` until cancelled, so that followers (and a leader whose topic is
    /// also written by a replicator) see every change. The caller spawns it.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.sync(Duration::from_secs(1)) => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "schema registry: reading _schemas failed; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    }

    async fn write(&self, records: Vec<(Key, Option<Vec<u8>>)>) -> RegistryResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let recs: RegistryResult<Vec<Record>> = records
            .into_iter()
            .map(|(k, v)| {
                let key = records::encode_key(&k)?;
                Ok(Record::new(Some(Bytes::from(key)), v.map(Bytes::from)))
            })
            .collect();
        let ack = self
            .log
            .append(INTERNAL_SCHEMAS_TOPIC, 0, &recs?)
            .await
            .map_err(|e| match e {
                fleetwatch_core::LogError::RecordTooLarge { size, limit, .. } => {
                    RegistryError::SchemaTooLarge { size, limit }
                }
                e => RegistryError::Log(e),
            })?;
        let end = ack.offsets.last().map_or(0, |o| o + 1);
        while self.read().applied < end {
            self.sync(Duration::from_millis(100)).await?;
        }
        Ok(())
    }

    fn check_leader(&self) -> RegistryResult<()> {
        if self.config.leader {
            Ok(())
        } else {
            Err(RegistryError::NotLeader)
        }
    }

    fn candidate(
        &self,
        st: &State,
        req: &RegisterRequest,
        normalize: bool,
    ) -> RegistryResult<Candidate> {
        let schema_type = match &req.schema_type {
            Some(t) => SchemaType::parse(t)?,
            None => SchemaType::Avro,
        };
        let parsed = st.parse(schema_type, &req.schema, &req.references)?;
        if let Parsed::Avro(a) = &parsed {
            avro::check_finite(a)?;
        }
        let identity = match (&parsed, schema_type) {
            (Parsed::Json(v), _) => json_schema::identity(v),
            _ => avro::identity(&req.schema, normalize)?,
        };
        Ok(Candidate {
            schema_type,
            identity,
            references: req.references.clone(),
            parsed,
        })
    }

    fn schema_value(
        subject: &str,
        version: i32,
        id: i32,
        c: &Stored,
        deleted: bool,
    ) -> RegistryResult<Vec<u8>> {
        records::encode_schema(&SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: c.schema_type,
            schema: c.schema.clone(),
            references: c.references.clone(),
            deleted,
        })
    }

    /// `POST /subjects/{s}/versions`: registers (or finds) a schema; returns its id.
    pub async fn register(
        &self,
        subject: &str,
        req: &RegisterRequest,
        normalize: bool,
    ) -> RegistryResult<i32> {
        self.check_leader()?;
        validate_subject(subject)?;
        let _w = self.write_lock.lock().await;
        self.sync(Duration::ZERO).await?;
        let (records, id) = {
            let st = self.read();
            let c = self.candidate(&st, req, normalize)?;
            let mode = st.mode(subject);
            if mode == Mode::Readonly {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is in read-only mode"
                )));
            }
            let identity = (c.schema_type, c.identity.clone(), c.references.clone());
            let live = st.live_versions(subject);
            // Already registered under this subject: same id, no new version.
            if req.id.is_none()
                && let Some(id) = st.by_identity.get(&identity)
                && live.iter().any(|(_, e)| e.id == *id)
            {
                return Ok(*id);
            }
            if req.id.is_some() && mode != Mode::Import {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is not in import mode: an id may only be given in IMPORT mode"
                )));
            }
            if let Some(id) = req.id
                && id < 1
            {
                return Err(RegistryError::InvalidId(id));
            }
            if mode != Mode::Import {
                let level = st.compatibility(subject, self.config.default_compatibility);
                if level != Compatibility::None {
                    let mut existing = Vec::new();
                    for (v, e) in &live {
                        existing.push((*v, st.parse_id(e.id)?));
                    }
                    let reasons = compat::check(level, &c.parsed, &existing);
                    if !reasons.is_empty() {
                        return Err(RegistryError::Incompatible {
                            subject: subject.to_string(),
                            reasons,
                        });
                    }
                }
            }
            let id = match req.id {
                Some(id) => {
                    if let Some(other) = st.schemas.get(&id)
                        && (other.schema_type, other.schema.as_str(), &other.references)
                            != (c.schema_type, c.identity.as_str(), &c.references)
                    {
                        return Err(RegistryError::OperationNotPermitted(format!(
                            "Overwrite new schema with id {id} is not permitted: id {id} holds another schema"
                        )));
                    }
                    id
                }
                // never wraps: ids only grow, and 2^31-1 is the last one
                None => match st.by_identity.get(&identity) {
                    Some(id) => *id,
                    None => st
                        .max_id
                        .checked_add(1)
                        .ok_or(RegistryError::IdsExhausted(st.max_id))?,
                },
            };
            let max_version = st
                .subjects
                .get(subject)
                .and_then(|vs| vs.keys().next_back().copied())
                .unwrap_or(0);
            let version = match req.version {
                Some(v) if v < 1 => return Err(RegistryError::InvalidVersion(v.to_string())),
                Some(v) => {
                    if st
                        .subjects
                        .get(subject)
                        .is_some_and(|vs| vs.get(&v).is_some_and(|e| e.id != id))
                    {
                        return Err(RegistryError::OperationNotPermitted(format!(
                            "Version {v} of subject {subject} already holds another schema"
                        )));
                    }
                    v
                }
                None => max_version
                    .checked_add(1)
                    .ok_or_else(|| RegistryError::VersionsExhausted(subject.to_string()))?,
            };
            let stored = Stored {
                schema_type: c.schema_type,
                schema: c.identity,
                references: c.references,
            };
            let value = Self::schema_value(subject, version, id, &stored, false)?;
            (
                vec![(records::schema_key(subject, version), Some(value))],
                id,
            )
        };
        self.write(records).await?;
        Ok(id)
    }

    /// `POST /subjects/{s}`: finds the version of `subject` holding this schema.
    pub fn lookup(
        &self,
        subject: &str,
        req: &RegisterRequest,
        normalize: bool,
        deleted: bool,
    ) -> RegistryResult<SubjectVersion> {
        let st = self.read();
        if !st.subjects.contains_key(subject) {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let c = self.candidate(&st, req, normalize)?;
        let identity = (c.schema_type, c.identity, c.references);
        let id = st.by_identity.get(&identity).ok_or_else(|| {
            RegistryError::SchemaNotFound("not registered under this subject".into())
        })?;
        let (v, e) = st
            .subjects
            .get(subject)
            .and_then(|vs| {
                vs.iter()
                    .rev()
                    .find(|(_, e)| e.id == *id && (deleted || !e.deleted))
            })
            .map(|(v, e)| (*v, *e))
            .ok_or_else(|| {
                RegistryError::SchemaNotFound("not registered under this subject".into())
            })?;
        st.subject_version(subject, v, e)
    }

    /// `GET /subjects`.
    pub fn subjects(&self, prefix: Option<&str>, deleted: bool) -> Vec<String> {
        let st = self.read();
        st.subjects
            .iter()
            .filter(|(s, vs)| {
                prefix.is_none_or(|p| s.starts_with(p))
                    && (deleted || vs.values().any(|e| !e.deleted))
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// `GET /subjects/{s}/versions`.
    pub fn versions(&self, subject: &str, deleted: bool) -> RegistryResult<Vec<i32>> {
        let st = self.read();
        let vs: Vec<i32> = st
            .subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, e)| deleted || !e.deleted)
                    .map(|(v, _)| *v)
                    .collect()
            })
            .unwrap_or_default();
        if vs.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(vs)
    }

    /// `GET /subjects/{s}/versions/{v}`.
    pub fn get_version(
        &self,
        subject: &str,
        spec: &str,
        deleted: bool,
    ) -> RegistryResult<SubjectVersion> {
        let st = self.read();
        let (v, e) = st.version_of(subject, spec, deleted)?;
        st.subject_version(subject, v, e)
    }

    /// `GET /subjects/{s}/versions/{v}/referencedby`: ids of schemas referencing it.
    pub fn referenced_by(&self, subject: &str, spec: &str) -> RegistryResult<Vec<i32>> {
        let st = self.read();
        let (v, _) = st.version_of(subject, spec, false)?;
        let mut ids: Vec<i32> = st
            .schemas
            .iter()
            .filter(|(id, s)| {
                s.references
                    .iter()
                    .any(|r| r.subject == subject && r.version == v)
                    && st
                        .subjects
                        .values()
                        .any(|vs| vs.values().any(|e| e.id == **id && !e.deleted))
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn check_writable(&self, st: &State, subject: &str) -> RegistryResult<()> {
        if st.mode(subject) == Mode::Readonly {
            return Err(RegistryError::OperationNotPermitted(format!(
                "Subject {subject} is in read-only mode"
            )));
        }
        Ok(())
    }

    fn check_not_referenced(st: &State, subject: &str, version: i32) -> RegistryResult<()> {
        let referenced = st.schemas.iter().any(|(id, s)| {
            s.references
                .iter()
                .any(|r| r.subject == subject && r.version == version)
                && st
                    .subjects
                    .values()
                    .any(|vs| vs.values().any(|e| e.id == *id && !e.deleted))
        });
        if referenced {
            return Err(RegistryError::ReferenceExists {
                subject: subject.to_string(),
                version,
            });
        }
        Ok(())
    }

    /// `DELETE /subjects/{s}/versions/{v}[?permanent=true]`.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: &str,
        permanent: bool,
    ) -> RegistryResult<i32> {
        self.check_leader()?;
        let _w = self.write_lock.lock().await;
        self.sync(Duration::ZERO).await?;
        let (records, version) = {
            let st = self.read();
            self.check_writable(&st, subject)?;
            let (v, e) = st.version_of(subject, spec, permanent)?;
            let key = records::schema_key(subject, v);
            if permanent {
                if !e.deleted {
                    return Err(RegistryError::VersionNotSoftDeleted {
                        subject: subject.to_string(),
                        version: v,
                    });
                }
                (vec![(key, None)], v)
            } else {
                Self::check_not_referenced(&st, subject, v)?;
                let stored = st
                    .schemas
                    .get(&e.id)
                    .ok_or_else(|| RegistryError::SchemaNotFound(e.id.to_string()))?;
                (
                    vec![(
                        key,
                        Some(Self::schema_value(subject, v, e.id, stored, true)?),
                    )],
                    v,
                )
            }
        };
        self.write(records).await?;
        Ok(version)
    }

    /// `DELETE /subjects/{s}[?permanent=true]`: returns the versions deleted.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> RegistryResult<Vec<i32>> {
        self.check_leader()?;
        let _w = self.write_lock.lock().await;
        self.sync(Duration::ZERO).await?;
        let (records, versions) = {
            let st = self.read();
            self.check_writable(&st, subject)?;
            let all = st
                .subjects
                .get(subject)
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
            let live: Vec<(i32, VersionEntry)> = all
                .iter()
                .filter(|(_, e)| !e.deleted)
                .map(|(v, e)| (*v, *e))
                .collect();
            let mut records = Vec::new();
            if permanent {
                if !live.is_empty() {
                    return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
                }
                for v in all.keys() {
                    records.push((records::schema_key(subject, *v), None));
                }
                records.push((records::config_key(Some(subject)), None));
                records.push((records::mode_key(Some(subject)), None));
                (records, all.keys().copied().collect())
            } else {
                if live.is_empty() {
                    return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
                }
                for (v, _) in &live {
                    Self::check_not_referenced(&st, subject, *v)?;
                }
                for (v, e) in &live {
                    let stored = st
                        .schemas
                        .get(&e.id)
                        .ok_or_else(|| RegistryError::SchemaNotFound(e.id.to_string()))?;
                    records.push((
                        records::schema_key(subject, *v),
                        Some(Self::schema_value(subject, *v, e.id, stored, true)?),
                    ));
                }
                (records, live.iter().map(|(v, _)| *v).collect())
            }
        };
        self.write(records).await?;
        Ok(versions)
    }

    /// `GET /schemas/ids/{id}`.
    pub fn schema_by_id(&self, id: i32) -> RegistryResult<SchemaById> {
        let st = self.read();
        let s = st
            .schemas
            .get(&id)
            .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
        Ok(SchemaById {
            schema: s.schema.clone(),
            schema_type: s.schema_type,
            references: s.references.clone(),
        })
    }

    /// The parsed Avro schema of an id (cached: a schema id never changes meaning).
    pub fn avro_by_id(&self, id: i32) -> RegistryResult<Arc<avro::ParsedAvro>> {
        if let Some(p) = self
            .avro_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return Ok(p.clone());
        }
        let parsed = match self.read().parse_id(id)? {
            Parsed::Avro(a) => Arc::new(a),
            Parsed::Json(_) => {
                return Err(RegistryError::Wire(format!(
                    "schema {id} is a JSON Schema, not Avro"
                )));
            }
        };
        self.avro_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, parsed.clone());
        Ok(parsed)
    }

    /// Decodes a value in the wire format to JSON: Avro datums through their schema, JSON
    /// Schema documents as they are. Returns the schema id too.
    pub fn decode_value(&self, bytes: &[u8]) -> RegistryResult<(i32, serde_json::Value)> {
        let (id, payload) = crate::wire::unframe(bytes)?;
        let schema_type = self
            .read()
            .schemas
            .get(&id)
            .map(|s| s.schema_type)
            .ok_or_else(|| {
                RegistryError::Wire(format!("schema id {id} of the message is not registered"))
            })?;
        match schema_type {
            SchemaType::Avro => {
                // the parsed schema is cached per id; decoding needs nothing built per message
                let parsed = self.avro_by_id(id)?;
                let value = crate::datum::decode_json(&parsed, payload)
                    .map_err(|e| RegistryError::Wire(format!("schema {id}: {e}")))?;
                Ok((id, value))
            }
            _ => {
                crate::datum::check_json_text(payload)
                    .map_err(|e| RegistryError::Wire(format!("schema {id}: {e}")))?;
                serde_json::from_slice(payload)
                    .map(|v| (id, v))
                    .map_err(|e| {
                        RegistryError::Wire(format!("schema {id}: payload is not JSON: {e}"))
                    })
            }
        }
    }

    /// `GET /schemas/ids/{id}/versions`: (subject, version) pairs using the id.
    pub fn versions_by_id(&self, id: i32, deleted: bool) -> RegistryResult<Vec<(String, i32)>> {
        let st = self.read();
        if !st.schemas.contains_key(&id) {
            return Err(RegistryError::SchemaNotFound(id.to_string()));
        }
        Ok(st
            .subjects
            .iter()
            .flat_map(|(s, vs)| {
                vs.iter()
                    .filter(|(_, e)| e.id == id && (deleted || !e.deleted))
                    .map(move |(v, _)| (s.clone(), *v))
            })
            .collect())
    }

    /// `GET /schemas?subjectPrefix=…`: latest (or every) version of matching subjects.
    pub fn schemas(
        &self,
        prefix: Option<&str>,
        deleted: bool,
        latest_only: bool,
    ) -> Vec<SubjectVersion> {
        let st = self.read();
        let mut out = Vec::new();
        for (s, vs) in &st.subjects {
            if prefix.is_some_and(|p| !s.starts_with(p)) {
                continue;
            }
            let mut chosen: Vec<(i32, VersionEntry)> = vs
                .iter()
                .filter(|(_, e)| deleted || !e.deleted)
                .map(|(v, e)| (*v, *e))
                .collect();
            if latest_only {
                chosen = chosen.pop().into_iter().collect();
            }
            for (v, e) in chosen {
                if let Ok(sv) = st.subject_version(s, v, e) {
                    out.push(sv);
                }
            }
        }
        out
    }

    /// `GET /config[/{s}]`.
    pub fn get_config(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> RegistryResult<Compatibility> {
        let st = self.read();
        match subject {
            None => Ok(st
                .global_config
                .unwrap_or(self.config.default_compatibility)),
            Some(s) => match st.subject_config.get(s) {
                Some(c) => Ok(*c),
                None if default_to_global => Ok(st
                    .global_config
                    .unwrap_or(self.config.default_compatibility)),
                None => Err(RegistryError::ConfigNotSet(s.to_string())),
            },
        }
    }

    /// `PUT /config[/{s}]`.
    pub async fn set_config(
        &self,
        subject: Option<&str>,
        level: Compatibility,
    ) -> RegistryResult<()> {
        self.check_leader()?;
        let _w = self.write_lock.lock().await;
        let value = records::encode_config(level)?;
        self.write(vec![(records::config_key(subject), Some(value))])
            .await
    }

    /// `DELETE /config[/{s}]`: returns the level that was set.
    pub async fn delete_config(&self, subject: Option<&str>) -> RegistryResult<Compatibility> {
        self.check_leader()?;
        let previous = self.get_config(subject, subject.is_none())?;
        let _w = self.write_lock.lock().await;
        self.write(vec![(records::config_key(subject), None)])
            .await?;
        Ok(previous)
    }

    /// `GET /mode[/{s}]`.
    pub fn get_mode(&self, subject: Option<&str>, default_to_global: bool) -> RegistryResult<Mode> {
        let st = self.read();
        match subject {
            None => Ok(st.global_mode.unwrap_or(Mode::Readwrite)),
            Some(s) => match st.subject_mode.get(s) {
                Some(m) => Ok(*m),
                None if default_to_global => Ok(st.global_mode.unwrap_or(Mode::Readwrite)),
                None => Err(RegistryError::ModeNotSet(s.to_string())),
            },
        }
    }

    /// `PUT /mode[/{s}]`.
    pub async fn set_mode(&self, subject: Option<&str>, mode: Mode) -> RegistryResult<()> {
        self.check_leader()?;
        let _w = self.write_lock.lock().await;
        let value = records::encode_mode(mode)?;
        self.write(vec![(records::mode_key(subject), Some(value))])
            .await
    }

    /// `DELETE /mode/{s}`: returns the mode that was set.
    pub async fn delete_mode(&self, subject: &str) -> RegistryResult<Mode> {
        self.check_leader()?;
        let previous = self.get_mode(Some(subject), false)?;
        let _w = self.write_lock.lock().await;
        self.write(vec![(records::mode_key(Some(subject)), None)])
            .await?;
        Ok(previous)
    }

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`: checks without registering.
    /// Without a version, against the versions the subject's level names (all, when
    /// transitive); with one, against that version only.
    pub fn check_compatibility(
        &self,
        subject: &str,
        version: Option<&str>,
        req: &RegisterRequest,
        normalize: bool,
    ) -> RegistryResult<CompatibilityResult> {
        let st = self.read();
        let c = self.candidate(&st, req, normalize)?;
        let level = st.compatibility(subject, self.config.default_compatibility);
        let mut existing = Vec::new();
        match version {
            Some(spec) => {
                let (v, e) = st.version_of(subject, spec, false)?;
                existing.push((v, st.parse_id(e.id)?));
            }
            None => {
                for (v, e) in st.live_versions(subject) {
                    existing.push((v, st.parse_id(e.id)?));
                }
            }
        }
        let level = if version.is_some() {
            // one explicit version: its rules, not transitive
            match level {
                Compatibility::BackwardTransitive => Compatibility::Backward,
                Compatibility::ForwardTransitive => Compatibility::Forward,
                Compatibility::FullTransitive => Compatibility::Full,
                l => l,
            }
        } else {
            level
        };
        let messages = compat::check(level, &c.parsed, &existing);
        Ok(CompatibilityResult {
            is_compatible: messages.is_empty(),
            messages,
        })
    }

    /// Whether this instance writes.
    pub fn is_leader(&self) -> bool {
        self.config.leader
    }

    /// The configuration.
    pub fn config(&self) -> &SchemaRegistryConfig {
        &self.config
    }
}

/// Subjects: 1 to 255 printable characters.
fn validate_subject(subject: &str) -> RegistryResult<()> {
    if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
        return Err(RegistryError::BadRequest(format!(
            "subject {subject:?} must be 1 to 255 printable characters"
        )));
    }
    Ok(())
}
