//! The `_schemas` record format, as Confluent's Schema Registry writes it (pure encode and
//! decode, no IO). Key → value, both JSON; a null value (tombstone) deletes:
//!
//! ```text
//! {"keytype":"SCHEMA","subject":s,"version":v,"magic":1} → {"subject","version","id","schemaType","schema","references","deleted"}
//! {"keytype":"CONFIG","subject":s|null,"magic":0}        → {"compatibilityLevel": "BACKWARD"}
//! {"keytype":"MODE","subject":s|null,"magic":0}          → {"mode": "READWRITE"}
//! {"keytype":"NOOP","magic":0}                           → (ignored: Confluent's leader writes it to sync)
//! ```
//!
//! Other keytypes Confluent writes (`DELETE_SUBJECT`, `CLEAR_SUBJECT`, `CONTEXT`) are not
//! decoded here: such a record is an error of [`decode`], which replay skips with a warning.

use crate::error::{RegistryError, RegistryResult};
use crate::types::{Compatibility, Mode, SchemaReference, SchemaType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "UPPERCASE")]
pub(crate) enum Key {
    Schema {
        subject: String,
        version: i32,
        magic: i32,
    },
    Config {
        subject: Option<String>,
        magic: i32,
    },
    Mode {
        subject: Option<String>,
        magic: i32,
    },
    /// Written by Confluent's leader to sync; nothing to apply.
    Noop {
        #[serde(default)]
        magic: i32,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaValue {
    pub(crate) subject: String,
    pub(crate) version: i32,
    pub(crate) id: i32,
    #[serde(default)]
    pub(crate) schema_type: SchemaType,
    pub(crate) schema: String,
    #[serde(default)]
    pub(crate) references: Vec<SchemaReference>,
    #[serde(default)]
    pub(crate) deleted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigValue {
    pub(crate) compatibility_level: Compatibility,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModeValue {
    pub(crate) mode: Mode,
}
/// One decoded `_schemas` record: what replay applies.
#[derive(Debug, Clone)]
pub(crate) enum Decoded {
    /// A schema under a subject's version (`None`: the version was deleted permanently).
    Schema {
        subject: String,
        version: i32,
        value: Option<SchemaValue>,
    },
    /// A compatibility level (`subject` `None`: the global one; `level` `None`: cleared).
    Config {
        subject: Option<String>,
        level: Option<Compatibility>,
    },
    /// A mode (same conventions).
    Mode {
        subject: Option<String>,
        mode: Option<Mode>,
    },
    /// Nothing to apply.
    Noop,
}

/// Decodes one record; the error says what did not check out (replay skips it).
pub(crate) fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Decoded, String> {
    let key: Key = serde_json::from_slice(key).map_err(|e| format!("unknown key: {e}"))?;
    fn val<T: serde::de::DeserializeOwned>(
        v: Option<&[u8]>,
        what: &str,
    ) -> Result<Option<T>, String> {
        v.map(|v| {
            serde_json::from_slice::<T>(v).map_err(|e| format!("unreadable {what} value: {e}"))
        })
        .transpose()
    }
    Ok(match key {
        Key::Schema {
            subject, version, ..
        } => {
            let value: Option<SchemaValue> = val(value, "SCHEMA")?;
            if let Some(v) = &value
                && (v.subject != subject || v.version != version)
            {
                return Err(format!(
                    "SCHEMA value for {:?} version {} is under the key of {subject:?} version {version}",
                    v.subject, v.version
                ));
            }
            Decoded::Schema {
                subject,
                version,
                value,
            }
        }
        Key::Config { subject, .. } => Decoded::Config {
            subject,
            level: val::<ConfigValue>(value, "CONFIG")?.map(|c| c.compatibility_level),
        },
        Key::Mode { subject, .. } => Decoded::Mode {
            subject,
            mode: val::<ModeValue>(value, "MODE")?.map(|m| m.mode),
        },
        Key::Noop { .. } => Decoded::Noop,
    })
}

fn json<T: Serialize>(v: &T) -> RegistryResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| RegistryError::Store(e.to_string()))
}

/// The key of a SCHEMA record.
pub(crate) fn schema_key(subject: &str, version: i32) -> Key {
    Key::Schema {
        subject: subject.to_string(),
        version,
        magic: 1,
    }
}

/// The key of a CONFIG record.
pub(crate) fn config_key(subject: Option<&str>) -> Key {
    Key::Config {
        subject: subject.map(String::from),
        magic: 0,
    }
}

/// The key of a MODE record.
pub(crate) fn mode_key(subject: Option<&str>) -> Key {
    Key::Mode {
        subject: subject.map(String::from),
        magic: 0,
    }
}

/// Encodes a key.
pub(crate) fn encode_key(k: &Key) -> RegistryResult<Vec<u8>> {
    json(k)
}

/// Encodes a SCHEMA value.
pub(crate) fn encode_schema(v: &SchemaValue) -> RegistryResult<Vec<u8>> {
    json(v)
}

/// Encodes a CONFIG value.
pub(crate) fn encode_config(level: Compatibility) -> RegistryResult<Vec<u8>> {
    json(&ConfigValue {
        compatibility_level: level,
    })
}

/// Encodes a MODE value.
pub(crate) fn encode_mode(mode: Mode) -> RegistryResult<Vec<u8>> {
    json(&ModeValue { mode })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (key, value, expected)
    type RawCase = (&'static [u8], Option<&'static [u8]>, &'static str);

    #[test]
    fn confluent_records_decode() {
        // as Confluent's KafkaStore writes them
        let schema = decode(
            br#"{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}"#,
            Some(br#"{"subject":"s","version":2,"id":7,"schema":"\"string\"","deleted":false}"#),
        )
        .unwrap();
        match schema {
            Decoded::Schema {
                subject,
                version,
                value: Some(v),
            } => {
                assert_eq!((subject.as_str(), version, v.id), ("s", 2, 7));
                assert_eq!(
                    (v.schema_type, v.schema.as_str(), v.deleted),
                    (SchemaType::Avro, "\"string\"", false)
                );
                assert!(v.references.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let cases: Vec<RawCase> = vec![
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}"#,
                None,
                "Schema { subject: \"s\", version: 2, value: None }",
            ),
            (
                br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
                Some(br#"{"compatibilityLevel":"FULL"}"#),
                "Config { subject: None, level: Some(Full) }",
            ),
            (
                br#"{"keytype":"CONFIG","subject":"s","magic":0}"#,
                None,
                "Config { subject: Some(\"s\"), level: None }",
            ),
            (
                br#"{"keytype":"MODE","subject":"s","magic":0}"#,
                Some(br#"{"mode":"IMPORT"}"#),
                "Mode { subject: Some(\"s\"), mode: Some(Import) }",
            ),
            (br#"{"keytype":"NOOP","magic":0}"#, None, "Noop"),
        ];
        for (k, v, want) in cases {
            assert_eq!(format!("{:?}", decode(k, v).unwrap()), want);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_tombstone() {
        let cases: Vec<RawCase> = vec![
            (b"\xff\x00", None, "unknown key"),
            (
                br#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#,
                Some(br#"{"subject":"s","version":1}"#),
                "unknown key",
            ),
            (
                br#"{"keytype":"CONFIG","subject":"s","magic":0}"#,
                Some(b"{oops"),
                "unreadable CONFIG",
            ),
            (
                br#"{"keytype":"MODE","subject":null,"magic":0}"#,
                Some(br#"{"mode":"SIDEWAYS"}"#),
                "unreadable MODE",
            ),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(br#"{"subject":"t","version":1,"id":1,"schema":"x"}"#),
                "under the key",
            ),
        ];
        for (k, v, want) in cases {
            let e = decode(k, v).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn encodings_round_trip() {
        let key = encode_key(&schema_key("s", 3)).unwrap();
        assert_eq!(
            key,
            br#"{"keytype":"SCHEMA","subject":"s","version":3,"magic":1}"#
        );
        assert_eq!(
            encode_key(&config_key(None)).unwrap(),
            br#"{"keytype":"CONFIG","subject":null,"magic":0}"#
        );
        assert_eq!(
            encode_config(Compatibility::BackwardTransitive).unwrap(),
            br#"{"compatibilityLevel":"BACKWARD_TRANSITIVE"}"#
        );
        assert_eq!(
            encode_mode(Mode::Readonly).unwrap(),
            br#"{"mode":"READONLY"}"#
        );
        let v = SchemaValue {
            subject: "s".into(),
            version: 3,
            id: 9,
            schema_type: SchemaType::Json,
            schema: "{}".into(),
            references: Vec::new(),
            deleted: true,
        };
        let bytes = encode_schema(&v).unwrap();
        match decode(&key, Some(&bytes)).unwrap() {
            Decoded::Schema {
                value: Some(back), ..
            } => {
                assert_eq!(
                    (back.id, back.schema_type, back.deleted),
                    (9, SchemaType::Json, true)
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
