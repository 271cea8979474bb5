//! The catalog: streams and tables over topics, with their columns and formats.
//!
//! Every source has the pseudo-columns `ROWTIME` (the record's timestamp, or the
//! `TIMESTAMP` column's value, epoch ms), `ROWPARTITION` and `ROWOFFSET` first in its Arrow
//! schema; `SELECT *` leaves them out, as ksqlDB does.

use crate::error::SqlError;
use crate::parser::{ColumnDef, PropValue, Props, SourceKind};
use crate::types::{SqlType, quoted};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The pseudo-columns, in schema order.
pub const PSEUDO_COLUMNS: [&str; 3] = ["ROWTIME", "ROWPARTITION", "ROWOFFSET"];

/// A key or value serialization format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    /// JSON objects (or bare values with `WRAP_SINGLE_VALUE=false`).
    #[serde(rename = "JSON")]
    Json,
    /// Avro with the Schema Registry's wire format.
    #[serde(rename = "AVRO")]
    Avro,
    /// JSON with the Schema Registry's wire format.
    #[serde(rename = "JSON_SR")]
    JsonSr,
    /// Comma-separated (or `VALUE_DELIMITER`) text.
    #[serde(rename = "DELIMITED")]
    Delimited,
    /// One primitive value in Kafka's serializers' encoding.
    #[serde(rename = "KAFKA")]
    Kafka,
    /// No key.
    #[serde(rename = "NONE")]
    None,
}

impl Format {
    /// Parses a format name.
    pub fn parse(s: &str, what: &str) -> Result<Format, SqlError> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "JSON" => Format::Json,
            "AVRO" => Format::Avro,
            "JSON_SR" => Format::JsonSr,
            "DELIMITED" => Format::Delimited,
            "KAFKA" => Format::Kafka,
            "NONE" => Format::None,
            "PROTOBUF" | "PROTOBUF_NOSR" => {
                return Err(SqlError::statement(format!(
                    "{what} '{s}' is not supported (use JSON, AVRO, JSON_SR, DELIMITED or KAFKA)"
                )));
            }
            _ => {
                return Err(SqlError::statement(format!(
                    "unknown {what} '{s}' (use JSON, AVRO, JSON_SR, DELIMITED or KAFKA)"
                )));
            }
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Avro => "AVRO",
            Format::JsonSr => "JSON_SR",
            Format::Delimited => "DELIMITED",
            Format::Kafka => "KAFKA",
            Format::None => "NONE",
        }
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: SqlType,
    /// Read from (and written to) the record key.
    pub key: bool,
}

/// A stream or table.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name.
    pub name: String,
    /// STREAM or TABLE.
    pub kind: SourceKind,
    /// The topic it reads.
    pub topic: String,
    /// How keys are written.
    pub key_format: Format,
    /// How values are written.
    pub value_format: Format,
    /// Key columns first, then value columns, as declared.
    pub columns: Vec<Column>,
    /// The value column whose value is the event time (`TIMESTAMP`), if any.
    pub timestamp: Option<String>,
    /// `TIMESTAMP_FORMAT` when that column is a string.
    pub timestamp_format: Option<String>,
    /// Values are bare (not in an object) for single-column sources.
    pub wrap_single_value: bool,
    /// `VALUE_DELIMITER` for DELIMITED.
    pub delimiter: u8,
    /// The registry schema id the columns came from (AVRO / JSON_SR).
    pub value_schema_id: Option<i32>,
    /// Partitions of the topic.
    pub partitions: i32,
    /// The statement that created it.
    pub statement: String,
    /// The persistent query writing it, for `CREATE … AS SELECT`.
    pub written_by: Option<String>,
}

impl Source {
    /// The key columns.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    /// The value columns.
    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.key)
    }

    /// The Arrow schema queries see: pseudo-columns, keys, values.
    pub fn schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new("ROWTIME", DataType::Int64, true),
            Field::new("ROWPARTITION", DataType::Int32, true),
            Field::new("ROWOFFSET", DataType::Int64, true),
        ];
        fields.extend(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, c.ty.to_arrow(), true)),
        );
        Arc::new(Schema::new(fields))
    }

    /// The Arrow schema of the value columns (what the value decoder produces).
    pub fn value_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.value_columns()
                .map(|c| Field::new(&c.name, c.ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema as ksqlDB prints it: `` `VIN` STRING KEY, `SPEED` DOUBLE ``.
    pub fn schema_text(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                let key = match (c.key, self.kind) {
                    (true, SourceKind::Stream) => " KEY",
                    (true, SourceKind::Table) => " PRIMARY KEY",
                    _ => "",
                };
                format!("{} {}{key}", quoted(&c.name), c.ty)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `WITH (…)` of a source, validated.
#[derive(Debug, Clone)]
pub struct SourceProps {
    /// `KAFKA_TOPIC`.
    pub topic: Option<String>,
    /// `KEY_FORMAT` (or `FORMAT`).
    pub key_format: Option<Format>,
    /// `VALUE_FORMAT` (or `FORMAT`).
    pub value_format: Option<Format>,
    /// `PARTITIONS`.
    pub partitions: Option<i32>,
    /// `TIMESTAMP`.
    pub timestamp: Option<String>,
    /// `TIMESTAMP_FORMAT`.
    pub timestamp_format: Option<String>,
    /// `WRAP_SINGLE_VALUE`.
    pub wrap_single_value: Option<bool>,
    /// `VALUE_DELIMITER`.
    pub delimiter: Option<u8>,
}

impl SourceProps {
    /// Checks the properties; unknown ones are an error naming the known.
    pub fn from(props: &Props) -> Result<SourceProps, SqlError> {
        let mut p = SourceProps {
            topic: None,
            key_format: None,
            value_format: None,
            partitions: None,
            timestamp: None,
            timestamp_format: None,
            wrap_single_value: None,
            delimiter: None,
        };
        for (k, v) in props {
            let text = v.as_text();
            match k.as_str() {
                "KAFKA_TOPIC" => p.topic = Some(text),
                "VALUE_FORMAT" => p.value_format = Some(Format::parse(&text, "VALUE_FORMAT")?),
                "KEY_FORMAT" => p.key_format = Some(Format::parse(&text, "KEY_FORMAT")?),
                "FORMAT" => {
                    let f = Format::parse(&text, "FORMAT")?;
                    p.key_format = Some(f);
                    p.value_format = Some(f);
                }
                "PARTITIONS" => {
                    p.partitions = Some(match (v, text.parse::<i32>()) {
                        (PropValue::Num(_), Ok(n)) if n >= 1 => n,
                        _ => {
                            return Err(SqlError::statement(format!(
                                "PARTITIONS must be a whole number ≥ 1, got {text}"
                            )));
                        }
                    })
                }
                "REPLICAS"
                | "KEY_SCHEMA_ID"
                | "VALUE_SCHEMA_FULL_NAME"
                | "VALUE_AVRO_SCHEMA_FULL_NAME"
                | "RETENTION_MS" => {}
                "TIMESTAMP" => p.timestamp = Some(text.to_uppercase()),
                "TIMESTAMP_FORMAT" => p.timestamp_format = Some(text),
                "WRAP_SINGLE_VALUE" => {
                    p.wrap_single_value = Some(match v {
                        PropValue::Bool(b) => *b,
                        _ => {
                            return Err(SqlError::statement(
                                "WRAP_SINGLE_VALUE must be true or false",
                            ));
                        }
                    })
                }
                "VALUE_DELIMITER" => {
                    p.delimiter = Some(match text.to_ascii_uppercase().as_str() {
                        "TAB" => b'\t',
                        "SPACE" => b' ',
                        t if t.len() == 1 => t.as_bytes()[0],
                        _ => {
                            return Err(SqlError::statement(
                                "VALUE_DELIMITER must be one character, TAB or SPACE",
                            ));
                        }
                    })
                }
                other => {
                    return Err(SqlError::statement(format!(
                        "unknown property {other} (known: KAFKA_TOPIC, KEY_FORMAT, VALUE_FORMAT, FORMAT, PARTITIONS, REPLICAS, TIMESTAMP, TIMESTAMP_FORMAT, WRAP_SINGLE_VALUE, VALUE_DELIMITER)"
                    )));
                }
            }
        }
        Ok(p)
    }
}

/// Checks declared columns: unique names, keys allowed by the key format.
pub fn check_columns(
    name: &str,
    kind: SourceKind,
    cols: &[ColumnDef],
) -> Result<Vec<Column>, SqlError> {
    let mut seen = BTreeMap::new();
    for c in cols {
        if PSEUDO_COLUMNS.contains(&c.name.as_str()) {
            return Err(SqlError::statement(format!(
                "{name}: {} is a reserved column name",
                c.name
            )));
        }
        if seen.insert(c.name.clone(), ()).is_some() {
            return Err(SqlError::statement(format!(
                "{name}: the column {} is declared twice",
                c.name
            )));
        }
    }
    if kind == SourceKind::Table && !cols.iter().any(|c| c.key) {
        return Err(SqlError::statement(format!(
            "{name}: a table needs a PRIMARY KEY column"
        )));
    }
    // Keys first (ksqlDB's order), then values in declared order.
    let mut out: Vec<Column> = cols
        .iter()
        .filter(|c| c.key)
        .map(|c| Column {
            name: c.name.clone(),
            ty: c.ty.clone(),
            key: true,
        })
        .collect();
    out.extend(cols.iter().filter(|c| !c.key).map(|c| Column {
        name: c.name.clone(),
        ty: c.ty.clone(),
        key: false,
    }));
    Ok(out)
}

/// All sources by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    sources: BTreeMap<String, Arc<Source>>,
}

impl Catalog {
    /// A source by name.
    pub fn get(&self, name: &str) -> Option<Arc<Source>> {
        self.sources.get(name).cloned()
    }

    /// A source by name, or an error naming the known ones.
    pub fn require(&self, name: &str) -> Result<Arc<Source>, SqlError> {
        self.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.sources.keys().map(String::as_str).collect();
            SqlError::statement(format!(
                "{name} does not exist{}",
                if known.is_empty() {
                    " (no streams or tables yet)".to_string()
                } else {
                    format!(" (known: {})", known.join(", "))
                }
            ))
        })
    }

    /// Adds or replaces a source.
    pub fn put(&mut self, s: Source) {
        self.sources.insert(s.name.clone(), Arc::new(s));
    }

    /// Removes a source.
    pub fn remove(&mut self, name: &str) -> Option<Arc<Source>> {
        self.sources.remove(name)
    }

    /// Every source.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Source>> {
        self.sources.values()
    }
}
