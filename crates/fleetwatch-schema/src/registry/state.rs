//! The registry's state, replayed from `_schemas`: a deterministic state machine (apply one
//! raw record → new state; sans-IO) and the queries the driver asks of it. Applying is
//! idempotent per record and depends only on the records before it, so replaying the topic
//! from the start always rebuilds the same state; a record that does not decode is skipped
//! with a warning.

use super::records::{self, Decoded};
use crate::compat::Parsed;
use crate::error::{RegistryError, RegistryResult};
use crate::types::*;
use crate::{avro, json_schema};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) schema_type: SchemaType,
    pub(crate) schema: String,
    pub(crate) references: Vec<SchemaReference>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionEntry {
    pub(crate) id: i32,
    pub(crate) deleted: bool,
}

pub(crate) type Identity = (SchemaType, String, Vec<SchemaReference>);

#[derive(Default)]
pub(crate) struct State {
    pub(crate) schemas: HashMap<i32, Stored>,
    pub(crate) by_identity: HashMap<Identity, i32>,
    pub(crate) subjects: BTreeMap<String, BTreeMap<i32, VersionEntry>>,
    pub(crate) subject_config: HashMap<String, Compatibility>,
    pub(crate) subject_mode: HashMap<String, Mode>,
    pub(crate) global_config: Option<Compatibility>,
    pub(crate) global_mode: Option<Mode>,
    pub(crate) max_id: i32,
    /// Next offset of `_schemas` to apply.
    pub(crate) applied: i64,
}

impl State {
    /// Applies one raw `_schemas` record: deterministic, depending only on the state and
    /// the record. A record that does not decode is skipped with a warning (replay goes on).
    pub(crate) fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        match records::decode(key, value) {
            Ok(d) => self.apply_decoded(d),
            Err(e) => tracing::warn!(error = %e, "skipping a _schemas record that does not decode"),
        }
    }

    fn apply_decoded(&mut self, d: Decoded) {
        match d {
            Decoded::Schema {
                subject,
                version,
                value: Some(v),
            } => {
                let identity = (v.schema_type, v.schema.clone(), v.references.clone());
                self.by_identity.entry(identity).or_insert(v.id);
                self.schemas.entry(v.id).or_insert(Stored {
                    schema_type: v.schema_type,
                    schema: v.schema,
                    references: v.references,
                });
                self.max_id = self.max_id.max(v.id);
                self.subjects.entry(subject).or_default().insert(
                    version,
                    VersionEntry {
                        id: v.id,
                        deleted: v.deleted,
                    },
                );
            }
            Decoded::Schema {
                subject,
                version,
                value: None,
            } => {
                if let Some(vs) = self.subjects.get_mut(&subject) {
                    vs.remove(&version);
                    if vs.is_empty() {
                        self.subjects.remove(&subject);
                    }
                }
            }
            Decoded::Config { subject, level } => match (subject, level) {
                (None, l) => self.global_config = l,
                (Some(s), Some(l)) => {
                    self.subject_config.insert(s, l);
                }
                (Some(s), None) => {
                    self.subject_config.remove(&s);
                }
            },
            Decoded::Mode { subject, mode } => match (subject, mode) {
                (None, m) => self.global_mode = m,
                (Some(s), Some(m)) => {
                    self.subject_mode.insert(s, m);
                }
                (Some(s), None) => {
                    self.subject_mode.remove(&s);
                }
            },
            Decoded::Noop => {}
        }
    }

    pub(crate) fn live_versions(&self, subject: &str) -> Vec<(i32, VersionEntry)> {
        self.subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, e)| !e.deleted)
                    .map(|(v, e)| (*v, *e))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn version_of(
        &self,
        subject: &str,
        spec: &str,
        include_deleted: bool,
    ) -> RegistryResult<(i32, VersionEntry)> {
        let vs = self
            .subjects
            .get(subject)
            .filter(|vs| include_deleted || vs.values().any(|e| !e.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let not_found = || RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version: spec.to_string(),
        };
        if spec == "latest" || spec == "-1" {
            return vs
                .iter()
                .rev()
                .find(|(_, e)| include_deleted || !e.deleted)
                .map(|(v, e)| (*v, *e))
                .ok_or_else(not_found);
        }
        let v: i32 = spec
            .parse()
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| RegistryError::InvalidVersion(spec.to_string()))?;
        match vs.get(&v) {
            Some(e) if include_deleted || !e.deleted => Ok((v, *e)),
            _ => Err(not_found()),
        }
    }

    pub(crate) fn subject_version(
        &self,
        subject: &str,
        version: i32,
        e: VersionEntry,
    ) -> RegistryResult<SubjectVersion> {
        let s = self
            .schemas
            .get(&e.id)
            .ok_or_else(|| RegistryError::SchemaNotFound(e.id.to_string()))?;
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version,
            id: e.id,
            schema_type: s.schema_type,
            schema: s.schema.clone(),
            references: s.references.clone(),
        })
    }

    pub(crate) fn compatibility(&self, subject: &str, default: Compatibility) -> Compatibility {
        self.subject_config
            .get(subject)
            .copied()
            .or(self.global_config)
            .unwrap_or(default)
    }

    pub(crate) fn mode(&self, subject: &str) -> Mode {
        self.subject_mode
            .get(subject)
            .copied()
            .or(self.global_mode)
            .unwrap_or(Mode::Readwrite)
    }

    /// Visits every schema `refs` reach, dependencies before the schemas that use them.
    pub(crate) fn visit_references(
        &self,
        refs: &[SchemaReference],
        depth: usize,
        visit: &mut dyn FnMut(&SchemaReference, &Stored) -> RegistryResult<()>,
    ) -> RegistryResult<()> {
        if depth > 32 {
            return Err(RegistryError::InvalidSchema(
                "references nest deeper than 32 levels".into(),
            ));
        }
        for r in refs {
            let (_, e) = self
                .version_of(&r.subject, &r.version.to_string(), false)
                .map_err(|_| {
                    RegistryError::InvalidSchema(format!(
                        "reference {:?} names subject {:?} version {}, which is not registered",
                        r.name, r.subject, r.version
                    ))
                })?;
            let s = self
                .schemas
                .get(&e.id)
                .ok_or_else(|| RegistryError::SchemaNotFound(e.id.to_string()))?;
            self.visit_references(&s.references, depth + 1, visit)?;
            visit(r, s)?;
        }
        Ok(())
    }

    pub(crate) fn parse(
        &self,
        t: SchemaType,
        text: &str,
        refs: &[SchemaReference],
    ) -> RegistryResult<Parsed> {
        match t {
            SchemaType::Avro => {
                let mut texts: Vec<String> = Vec::new();
                self.visit_references(refs, 0, &mut |_, s| {
                    if !texts.contains(&s.schema) {
                        texts.push(s.schema.clone());
                    }
                    Ok(())
                })?;
                Ok(Parsed::Avro(avro::parse(text, &texts)?))
            }
            SchemaType::Json => {
                let mut docs = Vec::new();
                self.visit_references(refs, 0, &mut |r, s| {
                    let doc = serde_json::from_str(&s.schema).map_err(|e| {
                        RegistryError::InvalidSchema(format!("reference {:?}: {e}", r.name))
                    })?;
                    docs.push((r.name.clone(), doc));
                    Ok(())
                })?;
                Ok(Parsed::Json(json_schema::parse_with_references(
                    text, &docs,
                )?))
            }
            SchemaType::Protobuf => Err(RegistryError::InvalidSchema(
                "PROTOBUF schemas are not supported yet: use AVRO or JSON".into(),
            )),
        }
    }

    pub(crate) fn parse_id(&self, id: i32) -> RegistryResult<Parsed> {
        let s = self
            .schemas
            .get(&id)
            .ok_or_else(|| RegistryError::SchemaNotFound(id.to_string()))?;
        self.parse(s.schema_type, &s.schema, &s.references)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A raw record: key and value text.
    type RawRecord = (String, Option<String>);

    fn schema_key(subject: &str, version: i32) -> String {
        format!(r#"{{"keytype":"SCHEMA","subject":"{subject}","version":{version},"magic":1}}"#)
    }

    fn schema(
        subject: &str,
        version: i32,
        id: i32,
        text: &str,
        deleted: bool,
    ) -> (String, Option<String>) {
        (
            schema_key(subject, version),
            Some(format!(
                r#"{{"subject":"{subject}","version":{version},"id":{id},"schema":{},"deleted":{deleted}}}"#,
                serde_json::to_string(text).unwrap()
            )),
        )
    }

    fn raw(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_string(), v.map(String::from))
    }

    /// What a test looks at: live and deleted versions per subject, configs, modes, max id.
    fn summary(st: &State) -> String {
        let subjects: Vec<String> = st
            .subjects
            .iter()
            .map(|(s, vs)| {
                let vs: Vec<String> = vs
                    .iter()
                    .map(|(v, e)| format!("{v}:{}{}", e.id, if e.deleted { "d" } else { "" }))
                    .collect();
                format!("{s}=[{}]", vs.join(","))
            })
            .collect();
        let mut configs: Vec<String> = st
            .subject_config
            .iter()
            .map(|(s, c)| format!("{s}:{c:?}"))
            .collect();
        configs.sort();
        let mut modes: Vec<String> = st
            .subject_mode
            .iter()
            .map(|(s, m)| format!("{s}:{m:?}"))
            .collect();
        modes.sort();
        format!(
            "{} config={:?}[{}] mode={:?}[{}] max_id={} ids={}",
            subjects.join(" "),
            st.global_config,
            configs.join(","),
            st.global_mode,
            modes.join(","),
            st.max_id,
            st.schemas.len()
        )
    }

    #[test]
    fn replaying_sequences_of_raw_records() {
        let s1 = r#""string""#;
        let s2 = r#""int""#;
        let cases: Vec<(&str, Vec<RawRecord>, &str)> = vec![
            ("empty", vec![], " config=None[] mode=None[] max_id=0 ids=0"),
            (
                "register two versions, same schema under another subject",
                vec![
                    schema("a", 1, 1, s1, false),
                    schema("a", 2, 2, s2, false),
                    schema("b", 1, 1, s1, false),
                ],
                "a=[1:1,2:2] b=[1:1] config=None[] mode=None[] max_id=2 ids=2",
            ),
            (
                "soft delete then hard delete (tombstone) of a version",
                vec![
                    schema("a", 1, 1, s1, false),
                    schema("a", 1, 1, s1, true),
                    raw(&schema_key("a", 1), None),
                ],
                " config=None[] mode=None[] max_id=1 ids=1",
            ),
            (
                "a hard delete keeps the id (never reused) and the subject's other versions",
                vec![
                    schema("a", 1, 1, s1, false),
                    schema("a", 2, 2, s2, false),
                    raw(&schema_key("a", 1), None),
                ],
                "a=[2:2] config=None[] mode=None[] max_id=2 ids=2",
            ),
            (
                "global and subject config, then the subject's cleared",
                vec![
                    raw(
                        r#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
                        Some(r#"{"compatibilityLevel":"FULL"}"#),
                    ),
                    raw(
                        r#"{"keytype":"CONFIG","subject":"a","magic":0}"#,
                        Some(r#"{"compatibilityLevel":"NONE"}"#),
                    ),
                    raw(
                        r#"{"keytype":"CONFIG","subject":"b","magic":0}"#,
                        Some(r#"{"compatibilityLevel":"FORWARD"}"#),
                    ),
                    raw(r#"{"keytype":"CONFIG","subject":"a","magic":0}"#, None),
                ],
                " config=Some(Full)[b:Forward] mode=None[] max_id=0 ids=0",
            ),
            (
                "modes, import with a high id",
                vec![
                    raw(
                        r#"{"keytype":"MODE","subject":"imp","magic":0}"#,
                        Some(r#"{"mode":"IMPORT"}"#),
                    ),
                    schema("imp", 5, 100, s1, false),
                    raw(
                        r#"{"keytype":"MODE","subject":null,"magic":0}"#,
                        Some(r#"{"mode":"READONLY"}"#),
                    ),
                    raw(r#"{"keytype":"MODE","subject":"imp","magic":0}"#, None),
                ],
                "imp=[5:100] config=None[] mode=Some(Readonly)[] max_id=100 ids=1",
            ),
            (
                "garbage, unknown keytypes, NOOP and unreadable values are skipped; replay goes on",
                vec![
                    raw("not json", Some("x")),
                    raw(
                        r#"{"keytype":"DELETE_SUBJECT","subject":"a","magic":0}"#,
                        Some(r#"{"subject":"a","version":1}"#),
                    ),
                    raw(r#"{"keytype":"NOOP","magic":0}"#, None),
                    schema("a", 1, 1, s1, false),
                    raw(&schema_key("a", 2), Some("{broken")),
                    raw(
                        r#"{"keytype":"CONFIG","subject":"a","magic":0}"#,
                        Some(r#"{"compatibilityLevel":"NONE"}"#),
                    ),
                    // an unreadable CONFIG value is not a tombstone: the level stays
                    raw(
                        r#"{"keytype":"CONFIG","subject":"a","magic":0}"#,
                        Some("[]"),
                    ),
                    schema("a", 2, 2, s2, false),
                ],
                "a=[1:1,2:2] config=None[a:None] mode=None[] max_id=2 ids=2",
            ),
            (
                "an id keeps its first schema (a later record cannot rebind it)",
                vec![schema("a", 1, 1, s1, false), schema("b", 1, 1, s2, false)],
                "a=[1:1] b=[1:1] config=None[] mode=None[] max_id=1 ids=1",
            ),
        ];
        for (what, recs, want) in cases {
            let mut st = State::default();
            for (k, v) in &recs {
                st.apply(k.as_bytes(), v.as_deref().map(str::as_bytes));
            }
            assert_eq!(summary(&st), want, "{what}");
            // deterministic and idempotent: replaying the same records again changes nothing
            for (k, v) in &recs {
                st.apply(k.as_bytes(), v.as_deref().map(str::as_bytes));
            }
            let mut again = State::default();
            for (k, v) in &recs {
                again.apply(k.as_bytes(), v.as_deref().map(str::as_bytes));
            }
            assert_eq!(summary(&again), want, "{what} (replayed)");
        }
    }

    #[test]
    fn the_same_schema_text_keeps_its_first_id() {
        let mut st = State::default();
        for (k, v) in [
            schema("a", 1, 3, "\"string\"", false),
            schema("b", 1, 4, "\"string\"", false),
        ] {
            st.apply(k.as_bytes(), v.as_deref().map(str::as_bytes));
        }
        let identity = (SchemaType::Avro, "\"string\"".to_string(), Vec::new());
        assert_eq!(st.by_identity.get(&identity), Some(&3));
    }
}
