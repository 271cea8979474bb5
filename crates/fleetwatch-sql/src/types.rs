//! ksqlDB's SQL types and their Arrow representation.
//!
//! | SQL | Arrow |
//! |---|---|
//! | `BOOLEAN` | `Boolean` |
//! | `INT` / `INTEGER` | `Int32` |
//! | `BIGINT` | `Int64` |
//! | `DOUBLE` | `Float64` |
//! | `DECIMAL(p, s)` | `Decimal128(p, s)` |
//! | `STRING` / `VARCHAR` | `Utf8` |
//! | `BYTES` | `Binary` |
//! | `TIMESTAMP` | `Timestamp(Millisecond)` |
//! | `DATE` | `Date32` |
//! | `TIME` | `Time32(Millisecond)` |
//! | `ARRAY<T>` | `List` (item nullable) |
//! | `MAP<STRING, V>` | `Map` (`key` Utf8, `value` nullable) |
//! | `STRUCT<F T, …>` | `Struct` |
//!
//! Expressions may compute other Arrow types (`Utf8View`, `Float32`, `Int16`…); they are
//! shown as the nearest SQL type.

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use std::fmt;
use std::sync::Arc;

/// A ksqlDB SQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlType {
    /// `BOOLEAN`.
    Boolean,
    /// `INT`.
    Int,
    /// `BIGINT`.
    BigInt,
    /// `DOUBLE`.
    Double,
    /// `DECIMAL(precision, scale)`.
    Decimal(u8, i8),
    /// `STRING`.
    String,
    /// `BYTES`.
    Bytes,
    /// `TIMESTAMP` (milliseconds since the epoch, UTC).
    Timestamp,
    /// `DATE` (days since the epoch).
    Date,
    /// `TIME` (milliseconds of the day).
    Time,
    /// `ARRAY<T>`.
    Array(Box<SqlType>),
    /// `MAP<K, V>` (ksqlDB keys are strings).
    Map(Box<SqlType>, Box<SqlType>),
    /// `STRUCT<name T, …>`.
    Struct(Vec<(String, SqlType)>),
}

impl SqlType {
    /// The Arrow type of a column of this type.
    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Int => DataType::Int32,
            SqlType::BigInt => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            SqlType::String => DataType::Utf8,
            SqlType::Bytes => DataType::Binary,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Array(t) => DataType::List(Arc::new(Field::new("item", t.to_arrow(), true))),
            SqlType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![
                        Field::new("key", k.to_arrow(), false),
                        Field::new("value", v.to_arrow(), true),
                    ])),
                    false,
                )),
                false,
            ),
            SqlType::Struct(fields) => DataType::Struct(Fields::from(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(n, t.to_arrow(), true))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// The SQL type shown for an Arrow type (`None` for types SQL cannot name).
    pub fn from_arrow(t: &DataType) -> Option<SqlType> {
        Some(match t {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16 => SqlType::Int,
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::BigInt,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) => SqlType::Decimal(*p, *s),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SqlType::String,
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => SqlType::Bytes,
            DataType::Timestamp(_, _) | DataType::Date64 => SqlType::Timestamp,
            DataType::Date32 => SqlType::Date,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            DataType::List(f)
            | DataType::LargeList(f)
            | DataType::ListView(f)
            | DataType::FixedSizeList(f, _) => {
                SqlType::Array(Box::new(SqlType::from_arrow(f.data_type())?))
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => SqlType::Map(
                    Box::new(SqlType::from_arrow(kv[0].data_type())?),
                    Box::new(SqlType::from_arrow(kv[1].data_type())?),
                ),
                _ => return None,
            },
            DataType::Struct(fields) => SqlType::Struct(
                fields
                    .iter()
                    .map(|f| Some((f.name().clone(), SqlType::from_arrow(f.data_type())?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            DataType::Null => SqlType::String,
            _ => return None,
        })
    }

    /// Whether this is a scalar (not ARRAY, MAP or STRUCT).
    pub fn is_scalar(&self) -> bool {
        !matches!(
            self,
            SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_)
        )
    }
}

/// The SQL name of an Arrow type (`BIGINT`, `STRUCT<LAT DOUBLE>`…), or its Arrow name.
pub fn type_name(t: &DataType) -> String {
    SqlType::from_arrow(t).map_or_else(|| t.to_string(), |s| s.to_string())
}

/// Writes an identifier as ksqlDB shows it in schemas: back-quoted.
pub fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Int => f.write_str("INTEGER"),
            SqlType::BigInt => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal(p, s) => write!(f, "DECIMAL({p}, {s})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Array(t) => write!(f, "ARRAY<{t}>"),
            SqlType::Map(k, v) => write!(f, "MAP<{k}, {v}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {t}", quoted(n))?;
                }
                f.write_str(">")
            }
        }
    }
}

/// The columns ksqlDB reads from a JSON Schema document (`JSON_SR`): the top-level
/// `properties`, names upper-cased; `string` → STRING, `integer` → BIGINT, `number` →
/// DOUBLE, `boolean` → BOOLEAN, `array` → ARRAY of its `items`, `object` with
/// `properties` → STRUCT, with only `additionalProperties` → MAP<STRING, …>; a
/// `["null", T]` type or `oneOf` with null is T.
pub fn columns_from_json_schema(
    doc: &serde_json::Value,
) -> Result<Vec<(String, DataType)>, String> {
    let props = doc
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .ok_or("the JSON Schema has no top-level \"properties\"")?;
    props
        .iter()
        .map(|(n, s)| Ok((n.to_uppercase(), json_schema_type(s, n)?.to_arrow())))
        .collect()
}

fn json_schema_type(s: &serde_json::Value, at: &str) -> Result<SqlType, String> {
    use serde_json::Value;
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .ok_or_else(|| format!("{at}: only null in its type"))?
            .to_string(),
        _ => {
            if let Some(alts) = s
                .get("oneOf")
                .or_else(|| s.get("anyOf"))
                .and_then(Value::as_array)
            {
                let non_null: Vec<&Value> = alts
                    .iter()
                    .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                    .collect();
                if let [one] = non_null[..] {
                    return json_schema_type(one, at);
                }
            }
            return Err(format!("{at}: a type SQL cannot read (no single \"type\")"));
        }
    };
    Ok(match ty.as_str() {
        "string" => SqlType::String,
        "integer" => SqlType::BigInt,
        "number" => SqlType::Double,
        "boolean" => SqlType::Boolean,
        "array" => SqlType::Array(Box::new(match s.get("items") {
            Some(i) => json_schema_type(i, at)?,
            None => return Err(format!("{at}: an array without \"items\"")),
        })),
        "object" => match s.get("properties").and_then(Value::as_object) {
            Some(p) => SqlType::Struct(
                p.iter()
                    .map(|(n, f)| {
                        Ok((
                            n.to_uppercase(),
                            json_schema_type(f, &format!("{at}->{n}"))?,
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()?,
            ),
            None => match s.get("additionalProperties") {
                Some(v @ Value::Object(_)) => SqlType::Map(
                    Box::new(SqlType::String),
                    Box::new(json_schema_type(v, at)?),
                ),
                _ => return Err(format!("{at}: an object without properties")),
            },
        },
        other => {
            return Err(format!(
                "{at}: the JSON Schema type {other:?} has no SQL type"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_round_trip_and_names() {
        let t = SqlType::Struct(vec![
            ("LAT".into(), SqlType::Double),
            ("TAGS".into(), SqlType::Array(Box::new(SqlType::String))),
            (
                "M".into(),
                SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Int)),
            ),
            ("D".into(), SqlType::Decimal(10, 2)),
            ("TS".into(), SqlType::Timestamp),
        ]);
        assert_eq!(SqlType::from_arrow(&t.to_arrow()), Some(t.clone()));
        assert_eq!(
            t.to_string(),
            "STRUCT<`LAT` DOUBLE, `TAGS` ARRAY<STRING>, `M` MAP<STRING, INTEGER>, `D` DECIMAL(10, 2), `TS` TIMESTAMP>"
        );
        assert_eq!(type_name(&DataType::Utf8View), "STRING");
        assert_eq!(type_name(&DataType::Int16), "INTEGER");
    }
}
