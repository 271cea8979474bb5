//! Request and response bodies of the Schema Registry REST API, and the registry's value
//! types — shared by the server, the CLI and tests.

use crate::error::{RegistryError, RegistryResult};
use serde::{Deserialize, Serialize};

/// The format of a schema.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, PartialOrd, Ord,
)]
pub enum SchemaType {
    /// Apache Avro (the default when `schemaType` is absent).
    #[default]
    #[serde(rename = "AVRO")]
    Avro,
    /// JSON Schema.
    #[serde(rename = "JSON")]
    Json,
    /// Protocol Buffers (not supported yet: registering one is a 42201 error).
    #[serde(rename = "PROTOBUF")]
    Protobuf,
}

impl SchemaType {
    /// Parses `AVRO`, `JSON`, `PROTOBUF` (case-insensitively).
    pub fn parse(s: &str) -> RegistryResult<Self> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            other => Err(RegistryError::InvalidSchema(format!(
                "unknown schema type {other:?}: use AVRO or JSON"
            ))),
        }
    }

    /// `AVRO`, `JSON` or `PROTOBUF`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    fn is_avro(t: &SchemaType) -> bool {
        *t == SchemaType::Avro
    }
}

/// A reference from a schema to a schema registered under another subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct SchemaReference {
    /// The name the referencing schema uses (Avro: the full name of the type).
    pub name: String,
    /// Subject of the referenced schema.
    pub subject: String,
    /// Version of the referenced schema.
    pub version: i32,
}

/// Compatibility levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// No check.
    None,
    /// The new schema reads data written with the latest one.
    #[default]
    Backward,
    /// … with every earlier one.
    BackwardTransitive,
    /// Data written with the new schema is read by the latest one.
    Forward,
    /// … by every earlier one.
    ForwardTransitive,
    /// Backward and forward against the latest.
    Full,
    /// Backward and forward against all.
    FullTransitive,
}

impl Compatibility {
    /// Parses a level, case-insensitively.
    pub fn parse(s: &str) -> RegistryResult<Self> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => Compatibility::None,
            "BACKWARD" => Compatibility::Backward,
            "BACKWARD_TRANSITIVE" => Compatibility::BackwardTransitive,
            "FORWARD" => Compatibility::Forward,
            "FORWARD_TRANSITIVE" => Compatibility::ForwardTransitive,
            "FULL" => Compatibility::Full,
            "FULL_TRANSITIVE" => Compatibility::FullTransitive,
            _ => return Err(RegistryError::InvalidCompatibilityLevel(s.to_string())),
        })
    }

    /// (checks backward, checks forward, against every earlier version)
    pub fn rules(self) -> (bool, bool, bool) {
        match self {
            Compatibility::None => (false, false, false),
            Compatibility::Backward => (true, false, false),
            Compatibility::BackwardTransitive => (true, false, true),
            Compatibility::Forward => (false, true, false),
            Compatibility::ForwardTransitive => (false, true, true),
            Compatibility::Full => (true, true, false),
            Compatibility::FullTransitive => (true, true, true),
        }
    }
}

/// Registry modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    /// Reads and writes.
    #[default]
    Readwrite,
    /// Reads only.
    Readonly,
    /// Writes must give `id` and `version` (a replicator copying another registry).
    Import,
}

impl Mode {
    /// Parses a mode, case-insensitively.
    pub fn parse(s: &str) -> RegistryResult<Self> {
        match s.to_ascii_uppercase().as_str() {
            "READWRITE" => Ok(Mode::Readwrite),
            "READONLY" => Ok(Mode::Readonly),
            "IMPORT" => Ok(Mode::Import),
            _ => Err(RegistryError::InvalidMode(s.to_string())),
        }
    }
}

/// `POST /subjects/{s}/versions` and `POST /subjects/{s}` bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The schema text.
    pub schema: String,
    /// `AVRO` (default) or `JSON`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    /// References to other subjects' schemas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// IMPORT mode only: the id to register under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// IMPORT mode only: the version to register as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
}

/// A registered schema under a subject, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectVersion {
    /// Subject.
    pub subject: String,
    /// Version (1, 2, …).
    pub version: i32,
    /// Global schema id.
    pub id: i32,
    /// Omitted for AVRO, as Confluent does.
    #[serde(default, skip_serializing_if = "SchemaType::is_avro")]
    pub schema_type: SchemaType,
    /// The schema text (normalised).
    pub schema: String,
    /// References, when any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
}

/// `GET /schemas/ids/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaById {
    /// The schema text.
    pub schema: String,
    /// Omitted for AVRO.
    #[serde(default, skip_serializing_if = "SchemaType::is_avro")]
    pub schema_type: SchemaType,
    /// References, when any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
}

/// `POST /compatibility/…` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatibilityResult {
    /// The verdict.
    pub is_compatible: bool,
    /// Reasons (with `verbose=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
}
