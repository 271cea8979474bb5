//! Compatibility of a new schema with a subject's existing versions, per level.

use crate::avro::{self, ParsedAvro};
use crate::json_schema;
use crate::types::Compatibility;

/// A schema parsed for checks.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// Avro.
    Avro(ParsedAvro),
    /// JSON Schema.
    Json(serde_json::Value),
}

/// Reasons `reader` cannot read data written with `writer` (empty: it can).
pub fn can_read(reader: &Parsed, writer: &Parsed) -> Vec<String> {
    match (reader, writer) {
        (Parsed::Avro(r), Parsed::Avro(w)) => avro::can_read(r, w),
        (Parsed::Json(r), Parsed::Json(w)) => json_schema::reader_accepts(r, w),
        _ => vec![
            "SCHEMA_TYPE_CHANGED: the new schema's type differs from the existing one's".into(),
        ],
    }
}

/// Checks `new` against `existing` (oldest first) under `level`; returns the reasons it is
/// incompatible, each prefixed with the version it breaks against.
pub fn check(level: Compatibility, new: &Parsed, existing: &[(i32, Parsed)]) -> Vec<String> {
    let (backward, forward, transitive) = level.rules();
    let targets: &[(i32, Parsed)] = if transitive {
        existing
    } else {
        existing.last().map(std::slice::from_ref).unwrap_or(&[])
    };
    let mut reasons = Vec::new();
    for (version, old) in targets {
        if backward {
            for r in can_read(new, old) {
                reasons.push(format!(
                    "{{oldSchemaVersion: {version}, direction: BACKWARD, {r}}}"
                ));
            }
        }
        if forward {
            for r in can_read(old, new) {
                reasons.push(format!(
                    "{{oldSchemaVersion: {version}, direction: FORWARD, {r}}}"
                ));
            }
        }
    }
    reasons
}
